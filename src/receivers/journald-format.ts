// How a storage event becomes a journal entry in journald's native protocol
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): event → field list → bytes.
// Pure: no sockets here, so the encoding is tested byte for byte without a
// journald (the adapter is journald.ts).
import type { StorageEvent } from '../events/schema.ts';

/** A journal field: name and value (UTF-8 text; the protocol allows any bytes). */
type JournalField = readonly [name: string, value: string];

interface JournalEntry {
  fields: JournalField[];
  /** extentions keys left out: no valid field name, a name already used, or over the field budget */
  skipped: string[];
}

/** journald refuses names longer than this (journal_field_valid). */
const FIELD_NAME_MAX = 64;
/**
 * journald keeps at most 1024 fields per entry (ENTRY_FIELD_COUNT_MAX),
 * counting the trusted `_PID=`, `_UID=`, `_SYSTEMD_UNIT=`, … it adds itself;
 * stay well below so no entry is refused for that.
 */
export const MAX_FIELDS = 768;
/**
 * Largest entry sent. journald accepts 32 MiB from unprivileged senders
 * (ENTRY_SIZE_UNPRIV_MAX; 8 MiB on 32-bit builds); a storage event anywhere
 * near this is broken input, and is refused here rather than there.
 */
export const MAX_ENTRY_BYTES = 8 << 20;

const EXT_PREFIX = 'PERIPETY_EXT_';

/** journald's rule for a field a client may send: A–Z, 0–9, _; not empty, ≤ 64, no leading digit or `_` (trusted fields). */
export function isValidFieldName(name: string): boolean {
  return name.length > 0 && name.length <= FIELD_NAME_MAX && /^[A-Z][A-Z0-9_]*$/.test(name);
}

/**
 * The journal field of an extentions key: `PERIPETY_EXT_` + the key upper
 * cased, every character other than A–Z, 0–9 and `_` turned into `_`
 * (`raw_msg` → `PERIPETY_EXT_RAW_MSG`, `ID_SERIAL.short` →
 * `PERIPETY_EXT_ID_SERIAL_SHORT`). null when no valid name results (an
 * empty key, or one too long for the 64-character limit): truncating
 * could make two keys one.
 */
export function extFieldName(key: string): string | null {
  if (key.length === 0) return null;
  let out = EXT_PREFIX;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 0x20); // a-z → A-Z
    else if ((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f) out += key[i];
    else out += '_';
  }
  return isValidFieldName(out) ? out : null;
}

/**
 * syslog priority: the kernel's own level when it was emerg/alert/crit (0–2:
 * more urgent than any severity says), else error → 3 (err), warn → 4
 * (warning), info → 6 (info).
 */
export function priorityOf(ev: StorageEvent): number {
  const level = ev.extentions.kernel_level;
  if (level !== undefined && /^[0-2]$/.test(level)) return Number(level);
  return ev.severity === 'error' ? 3 : ev.severity === 'warn' ? 4 : 6;
}

/**
 * MESSAGE: `<system>/<event_type> <dev> (<wwid>) on <mount>: <msg>`. No time
 * or host name: the journal records both for every entry (the event's own
 * time is PERIPETY_TIMESTAMP and PERIPETY_EXT_TIMESTAMP_US).
 */
export function journalMessage(ev: StorageEvent): string {
  const what = ev.event_type ? `${ev.system}/${ev.event_type}` : ev.system;
  const dev = ev.dev_name ? ` ${ev.dev_name}${ev.dev_wwid ? ` (${ev.dev_wwid})` : ''}` : '';
  const mp = ev.extentions.mount_point ? ` on ${ev.extentions.mount_point}` : '';
  return `${what}${dev}${mp}: ${ev.msg}`;
}

/** The entry of one event: the fixed fields, then one PERIPETY_EXT_* per extentions key (docs/receivers.md lists them). */
export function eventFields(ev: StorageEvent, identifier = 'peripety'): JournalEntry {
  const fields: JournalField[] = [
    ['MESSAGE', journalMessage(ev)],
    ['PRIORITY', String(priorityOf(ev))],
    ['SYSLOG_IDENTIFIER', identifier],
    ['PERIPETY_EVENT_TYPE', ev.event_type],
    ['PERIPETY_SYSTEM', ev.system],
    ['PERIPETY_SEVERITY', ev.severity],
    ['PERIPETY_DEV_NAME', ev.dev_name],
    ['PERIPETY_DEV_WWID', ev.dev_wwid],
    ['PERIPETY_EVENT_ID', ev.event_id],
    ['PERIPETY_HOSTNAME', ev.hostname],
    ['PERIPETY_TIMESTAMP', String(ev.timestamp)],
    ['PERIPETY_MSG', ev.msg],
  ];
  const used = new Set(fields.map(([n]) => n));
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(ev.extentions)) {
    const name = extFieldName(key);
    if (name === null || used.has(name) || fields.length >= MAX_FIELDS) {
      skipped.push(key);
      continue;
    }
    used.add(name);
    fields.push([name, value]);
  }
  return { fields, skipped };
}

/**
 * The datagram (or memfd) bytes of an entry. `NAME=value\n` for a value
 * without a newline; otherwise the binary form `NAME\n`, the value's length
 * as a 64-bit little-endian integer, the value, `\n` (the protocol requires
 * it whenever the value holds a `\n`). Names are not checked here: build
 * them with eventFields.
 */
export function encodeEntry(fields: readonly JournalField[]): Buffer {
  const values = fields.map(([, v]) => Buffer.from(v, 'utf8'));
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]![0];
    const v = values[i]!;
    size += name.length + 1 + v.length + 1 + (v.includes(0x0a) ? 8 : 0);
  }
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]![0];
    const v = values[i]!;
    o += out.write(name, o, 'latin1');
    if (v.includes(0x0a)) {
      out[o++] = 0x0a;
      out.writeBigUInt64LE(BigInt(v.length), o);
      o += 8;
    } else {
      out[o++] = 0x3d; // '='
    }
    o += v.copy(out, o);
    out[o++] = 0x0a;
  }
  return out;
}

/** The event as journal bytes (eventFields + encodeEntry). */
export function encodeEvent(ev: StorageEvent, identifier = 'peripety'): { bytes: Buffer; skipped: string[] } {
  const { fields, skipped } = eventFields(ev, identifier);
  return { bytes: encodeEntry(fields), skipped };
}

/**
 * Parse native-protocol bytes back into fields, as journald does (both
 * forms; values as raw bytes). Throws on malformed input. For tests and
 * for a listener that plays journald.
 */
export function decodeEntry(buf: Uint8Array): [string, Buffer][] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: [string, Buffer][] = [];
  let o = 0;
  while (o < b.length) {
    const nl = b.indexOf(0x0a, o);
    if (nl < 0) throw new Error(`journal entry: field at byte ${o} has no terminating newline`);
    const eq = b.indexOf(0x3d, o);
    if (eq >= 0 && eq < nl) {
      out.push([b.toString('latin1', o, eq), b.subarray(eq + 1, nl)]);
      o = nl + 1;
      continue;
    }
    const name = b.toString('latin1', o, nl);
    if (nl + 9 > b.length) throw new Error(`journal entry: binary field ${name} is cut before its length`);
    const len = b.readBigUInt64LE(nl + 1);
    const start = nl + 9;
    if (BigInt(b.length - start) < len + 1n) throw new Error(`journal entry: binary field ${name} is cut (length ${len})`);
    const end = start + Number(len);
    if (b[end] !== 0x0a) throw new Error(`journal entry: binary field ${name} is not followed by a newline`);
    out.push([name, b.subarray(start, end)]);
    o = end + 1;
  }
  return out;
}
