// One multicast datagram (docs/multicast.md): a fixed header that says who
// sent it and in which order, then the event as JSON. Pure: no sockets, no
// clocks (the time of a signed datagram is passed in). decode() is the trust
// boundary for whatever arrives on the group, so it returns a reason instead
// of throwing.
//
// Version 1 (no shared key; what every receiver reads):
//   offset size field
//   0      4    magic "PRPT"
//   4      1    version (1)
//   5      1    flags: bit 0 = truncated; other bits reserved (sent 0, ignored)
//   6      2    reserved (sent 0, ignored)
//   8      16   sender id (random per sender instance)
//   24     8    sequence number, unsigned big endian, 1 for the first datagram
//   32     …    the StorageEvent as UTF-8 JSON
//
// Version 2 (signed with a shared key): the same first 32 bytes with
// version 2, then
//   32     8    the sender's clock, ms since the epoch, unsigned big endian
//   40     32   HMAC-SHA256(key, bytes 0–39 ‖ payload)
//   72     …    the StorageEvent as UTF-8 JSON
// The MAC covers every header byte but itself, so sender id, sequence
// number, time, flags and payload cannot be changed without the key.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { StorageEvent } from '../events/schema.ts';
import { eventJson } from '../events/json.ts';

const MAGIC = Buffer.from('PRPT', 'latin1');
const VERSION = 1;
export const HEADER_BYTES = 32;
/** the signed envelope */
const VERSION_SIGNED = 2;
const MAC_BYTES = 32;
/** version 2: the 32 bytes of version 1, the time (8) and the MAC */
export const SIGNED_HEADER_BYTES = HEADER_BYTES + 8 + MAC_BYTES;
const TIME_OFFSET = HEADER_BYTES;
const MAC_OFFSET = HEADER_BYTES + 8;
export const SENDER_ID_BYTES = 16;
export const FLAG_TRUNCATED = 0x01;
/** Fits one Ethernet frame with IPv4/IPv6 and UDP headers: no IP fragmentation. */
export const DEFAULT_MAX_DATAGRAM = 1400;
/** Below this a normal event cannot fit even after truncation. */
export const MIN_MAX_DATAGRAM = 512;
/** Under the 65,507-byte UDP payload limit of IPv4. */
export const MAX_MAX_DATAGRAM = 65000;
/** Shrinking msg stops at this many UTF-8 bytes (ellipsis included) until extentions had their turn. */
export const MSG_FLOOR_BYTES = 256;
/** Appended to a shortened string so a reader sees it was cut. */
export const ELLIPSIS = '\u2026';

interface Datagram {
  version: number;
  /** raw flag byte */
  flags: number;
  truncated: boolean;
  /** 32 lower-case hex digits */
  sender: string;
  seq: number;
  /** version 2: the sender's clock (ms since the epoch); null in version 1 */
  timeMs: number | null;
  /** the MAC was checked against the receiver's key */
  authenticated: boolean;
  event: StorageEvent;
}

/**
 * Why a datagram was refused: `malformed` (not a peripety datagram or not a
 * storage event), `unsigned` (the receiver has a key, the datagram carries no
 * MAC), `bad_mac` (the MAC does not match: forged with another key, or
 * changed on the way).
 */
type DecodeFailure = 'malformed' | 'unsigned' | 'bad_mac';

type DecodeResult = { ok: true; datagram: Datagram } | { ok: false; code: DecodeFailure; reason: string };

type EncodeResult =
  | { ok: true; buf: Buffer; truncated: boolean }
  | { ok: false; reason: string };

interface EncodeOptions {
  /** SENDER_ID_BYTES bytes */
  sender: Uint8Array;
  /** 0 … Number.MAX_SAFE_INTEGER */
  seq: number;
  /** whole datagram, header included; default DEFAULT_MAX_DATAGRAM */
  maxDatagram?: number;
  /** sign with this shared key (version 2 envelope); absent: version 1 */
  key?: Uint8Array;
  /** version 2: the time to put in the header (ms since the epoch) */
  nowMs?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function jsonBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s), 'utf8');
}

/**
 * The longest prefix of `s` (cut at a code point boundary, ending in an
 * ellipsis) whose JSON string form takes at most `budget` bytes; '' when not
 * even the ellipsis fits. JSON escapes make byte length non-linear in the
 * prefix length but monotone, so a binary search finds it.
 */
export function shrinkToJsonBytes(s: string, budget: number): string {
  if (jsonBytes(s) <= budget) return s;
  if (jsonBytes(ELLIPSIS) > budget) return '';
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (jsonBytes(cut(s, mid) + ELLIPSIS) <= budget) lo = mid;
    else hi = mid - 1;
  }
  return cut(s, lo) + ELLIPSIS;
}

/** The first `n` UTF-16 units of `s`, one fewer when that would split a surrogate pair. */
function cut(s: string, n: number): string {
  if (n > 0 && n < s.length) {
    const c = s.charCodeAt(n - 1);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return s.slice(0, n);
}

function macOf(key: Uint8Array, buf: Uint8Array): Buffer {
  return createHmac('sha256', key).update(buf.subarray(0, MAC_OFFSET)).update(buf.subarray(SIGNED_HEADER_BYTES)).digest();
}

/**
 * Encode one event. An event larger than the datagram is truncated by the
 * documented rule (see truncateEvent); the payload is always a complete JSON
 * StorageEvent. Fails only when even the truncated event does not fit (huge
 * hostname or device names) or the options are out of range.
 */
export function encode(ev: StorageEvent, opts: EncodeOptions): EncodeResult {
  // One encoder: a batch of one from the packer the sender uses, so a single
  // datagram and a batched one cannot differ. A copy: the packer's buffer is
  // sized for batches.
  const p = new DatagramPacker({ sender: opts.sender, maxDatagram: opts.maxDatagram, key: opts.key });
  const res = p.add(ev, opts.seq, opts.nowMs ?? 0);
  if (typeof res === 'object') return { ok: false, reason: res.reason };
  return { ok: true, buf: Buffer.from(p.datagrams()[0]!), truncated: res === 'truncated' };
}

/**
 * Shrink an event until its JSON takes at most `budget` bytes, or null when
 * impossible. The rule, in order, each step only as far as needed:
 *   1. extentions.truncated = "true" (counted in the size from the start);
 *   2. msg is shortened, but not below MSG_FLOOR_BYTES;
 *   3. extentions.raw_msg is shortened (down to "");
 *   4. extentions keys are dropped, largest `"key":"value"` first (ties: by
 *      key name), never `truncated` itself;
 *   5. msg is shortened below the floor, down to "".
 * A shortened string ends in "…". Every other field is kept as is.
 */
export function truncateEvent(ev: StorageEvent, budget: number): StorageEvent | null {
  const ext: Record<string, string> = { ...ev.extentions, truncated: 'true' };
  const out: StorageEvent = { ...ev, extentions: ext };
  const size = () => Buffer.byteLength(JSON.stringify(out), 'utf8');
  let total = size();
  if (total <= budget) return out;

  // 2. msg, down to the floor: the rest of the event stays as it is, so the
  // string may take what is left of the budget.
  const msgRoom = (room: number) => Math.max(room, Math.min(jsonBytes(ev.msg), MSG_FLOOR_BYTES + 2));
  out.msg = shrinkToJsonBytes(ev.msg, msgRoom(budget - (total - jsonBytes(ev.msg))));
  total = size();
  if (total <= budget) return out;

  // 3. raw_msg
  const raw = ext.raw_msg;
  if (raw !== undefined) {
    ext.raw_msg = shrinkToJsonBytes(raw, Math.max(2, budget - (total - jsonBytes(raw))));
    total = size();
    if (total <= budget) return out;
  }

  // 4. drop extentions, largest first
  const keys = Object.keys(ext)
    .filter((k) => k !== 'truncated')
    .map((k) => ({ k, n: jsonBytes(k) + jsonBytes(ext[k]!) + 1 }))
    .sort((a, b) => b.n - a.n || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  for (const { k } of keys) {
    delete ext[k];
    total = size();
    if (total <= budget) return out;
  }

  // 5. msg below the floor
  out.msg = shrinkToJsonBytes(out.msg, Math.max(2, budget - (total - jsonBytes(out.msg))));
  return size() <= budget ? out : null;
}

const malformed = (reason: string): DecodeResult => ({ ok: false, code: 'malformed', reason });

interface DecodeOptions {
  /**
   * The shared key: only version 2 datagrams whose MAC matches are accepted.
   * Without a key both versions are read and nothing is verified (anyone on
   * the group can send anything).
   */
  key?: Uint8Array;
}

/** Decode one datagram; never throws. The MAC is checked before the payload is parsed. */
export function decode(buf: Uint8Array, opts: DecodeOptions = {}): DecodeResult {
  if (buf.length < HEADER_BYTES) return malformed(`too short (${buf.length} bytes; the header is ${HEADER_BYTES})`);
  if (buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1] || buf[2] !== MAGIC[2] || buf[3] !== MAGIC[3]) {
    return malformed('not a peripety datagram (bad magic)');
  }
  const version = buf[4]!;
  if (version !== VERSION && version !== VERSION_SIGNED) return malformed(`unsupported version ${version} (this build reads ${VERSION} and ${VERSION_SIGNED})`);
  if (opts.key !== undefined && version !== VERSION_SIGNED) return { ok: false, code: 'unsigned', reason: 'the datagram is not signed and this receiver has a key' };
  const header = version === VERSION_SIGNED ? SIGNED_HEADER_BYTES : HEADER_BYTES;
  if (buf.length < header) return malformed(`too short (${buf.length} bytes; the version ${version} header is ${header})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let timeMs: number | null = null;
  if (version === VERSION_SIGNED) {
    if (opts.key !== undefined && !timingSafeEqual(macOf(opts.key, buf), buf.subarray(MAC_OFFSET, SIGNED_HEADER_BYTES))) {
      return { ok: false, code: 'bad_mac', reason: 'the MAC does not match (another key, or the datagram was changed)' };
    }
    const t = view.getBigUint64(TIME_OFFSET, false);
    if (t > BigInt(Number.MAX_SAFE_INTEGER)) return malformed('time out of range');
    timeMs = Number(t);
  }
  const flags = buf[5]!;
  const seq = view.getBigUint64(24, false);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return malformed('sequence number out of range');
  let text: string;
  try {
    text = utf8.decode(buf.subarray(header));
  } catch {
    return malformed('the payload is not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return malformed('the payload is not JSON');
  }
  const parsed = StorageEvent.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.map(String).join('.').slice(0, 80) : 'event';
    return malformed(`the payload is not a storage event (${where}: ${issue.message.slice(0, 120)})`);
  }
  return {
    ok: true,
    datagram: {
      version,
      flags,
      truncated: (flags & FLAG_TRUNCATED) !== 0,
      sender: Buffer.from(buf.buffer, buf.byteOffset + 8, SENDER_ID_BYTES).toString('hex'),
      seq: Number(seq),
      timeMs,
      authenticated: opts.key !== undefined,
      event: parsed.data,
    },
  };
}

/** What DatagramPacker.add() did with an event. */
export type PackResult = 'ok' | 'truncated' | { reason: string };

/**
 * A batch of datagrams in one buffer, for a send of many at once
 * (sendmmsg): datagram i is `buf[ends[i-1] … ends[i])` (the first starts at
 * 0). encode() is a batch of one of it. What it saves over a datagram at a time: no Buffer per datagram, the fixed header bytes
 * copied from a template, the JSON written straight into the batch without
 * counting its bytes first when it clearly fits, the sequence number without
 * a BigInt. One packer per sender, reused batch after batch (reset()); the
 * buffer grows to the largest batch, which is bounded by the batch size
 * times maxDatagram.
 */
export class DatagramPacker {
  buf: Buffer = Buffer.allocUnsafe(64 * 1024);
  ends: Int32Array = new Int32Array(512);
  /** datagrams in the batch */
  count = 0;
  private at = 0;
  private readonly max: number;
  private readonly header: number;
  private readonly key: Uint8Array | undefined;
  /** bytes 0–7 and the sender id (8–23) of every datagram of this packer */
  private readonly prefix: Buffer;
  /** why every add() fails (options out of range), or null */
  private readonly invalid: string | null;

  constructor(opts: { sender: Uint8Array; maxDatagram?: number; key?: Uint8Array }) {
    this.max = opts.maxDatagram ?? DEFAULT_MAX_DATAGRAM;
    this.header = opts.key ? SIGNED_HEADER_BYTES : HEADER_BYTES;
    this.key = opts.key;
    // the option checks, once per packer
    if (opts.sender.length !== SENDER_ID_BYTES) this.invalid = `the sender id must be ${SENDER_ID_BYTES} bytes`;
    else if (!Number.isInteger(this.max) || this.max < this.header + 2 || this.max > MAX_MAX_DATAGRAM) this.invalid = `the datagram size limit must be ${this.header + 2}-${MAX_MAX_DATAGRAM} bytes`;
    else if (opts.key !== undefined && opts.key.length === 0) this.invalid = 'the key must not be empty';
    else this.invalid = null;
    this.prefix = Buffer.alloc(24);
    MAGIC.copy(this.prefix, 0);
    this.prefix[4] = opts.key ? VERSION_SIGNED : VERSION;
    if (opts.sender.length === SENDER_ID_BYTES) this.prefix.set(opts.sender, 8);
  }

  /** Start a new batch (the bytes of the last one may be overwritten from now on). */
  reset(): void {
    this.count = 0;
    this.at = 0;
  }

  /** The datagram of `ev` with sequence number `seq` (and, signed, the time `nowMs`) appended to the batch, or why not. */
  add(ev: StorageEvent, seq: number, nowMs = 0): PackResult {
    if (this.invalid !== null) return { reason: this.invalid };
    if (!Number.isSafeInteger(seq) || seq < 0) return { reason: 'the sequence number must be a non-negative safe integer' };
    const { header, max } = this;
    let json = eventJson(ev);
    let flags = 0;
    // byte length ≤ 3 × UTF-16 length: short events need no exact count (as encode)
    if (header + json.length * 3 > max && header + Buffer.byteLength(json, 'utf8') > max) {
      const small = truncateEvent(ev, max - header);
      if (small === null) return { reason: `the event does not fit in ${max} bytes even with msg and every extention removed` };
      json = JSON.stringify(small);
      flags = FLAG_TRUNCATED;
    }
    // room for the worst case; what is written is at most max (checked above)
    this.reserve(header + Math.min(json.length * 3, max));
    const buf = this.buf;
    const at = this.at;
    this.prefix.copy(buf, at);
    buf[at + 5] = flags;
    // big-endian 64-bit: seq is a safe integer, so the high word is below 2^21
    buf.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), at + 24);
    buf.writeUInt32BE(seq >>> 0, at + 28);
    const end = at + header + buf.write(json, at + header, 'utf8');
    if (this.key) {
      const t = Math.max(0, Math.floor(nowMs));
      buf.writeUInt32BE(Math.floor(t / 0x1_0000_0000), at + TIME_OFFSET);
      buf.writeUInt32BE(t >>> 0, at + TIME_OFFSET + 4);
      macOf(this.key, buf.subarray(at, end)).copy(buf, at + MAC_OFFSET);
    }
    if (this.count === this.ends.length) {
      const more = new Int32Array(this.ends.length * 2);
      more.set(this.ends);
      this.ends = more;
    }
    this.ends[this.count++] = end;
    this.at = end;
    return flags === 0 ? 'ok' : 'truncated';
  }

  /** The datagrams of the batch as separate views (tests; the sender passes buf and ends). */
  datagrams(): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!));
    return out;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
}
