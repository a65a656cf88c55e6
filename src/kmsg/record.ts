// Pure parsing of /dev/kmsg records (docs/events.md §5). No I/O here. The
// text forms (dmesg, journalctl, syslog files) are read by src/logtext.

import type { KernelRecord } from '../contracts/record.ts';


type RecordResult = { ok: true; record: KernelRecord } | { ok: false; error: string };

/** Longest message we keep; longer ones are cut (the kernel's own limit is ~1 KiB). */
const MAX_MESSAGE = 4096;

const BACKSLASH = 92;

/**
 * Undo the kernel's `\xNN` escaping (applied to bytes < 0x20, >= 0x7f and the
 * backslash itself). Escaped bytes >= 0x80 are usually UTF-8; decode them as
 * such. An invalid escape is kept as written.
 */
export function unescapeKmsg(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  const bytes: number[] = [];
  let highBytes = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH && s.charCodeAt(i + 1) === 120 /* x */) {
      const hex = s.slice(i + 2, i + 4);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        const b = parseInt(hex, 16);
        if (b >= 0x80) highBytes = true;
        bytes.push(b);
        i += 3;
        continue;
      }
    }
    if (c < 0x80) bytes.push(c);
    else for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
  }
  const buf = Buffer.from(bytes);
  return highBytes ? buf.toString('utf8') : buf.toString('latin1');
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

const COMMA = 44;

/** index of the first non-digit at or after `from` (before `limit`) */
function digitsEnd(s: string, from: number, limit: number): number {
  let i = from;
  while (i < limit) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  return i;
}

/**
 * The value of the decimal digits s[from, to), as Number() of that slice
 * gives it wherever it matters: exact up to 2^53 (each partial value is an
 * integer below the final one), and a longer number stays above
 * Number.MAX_SAFE_INTEGER, which the caller refuses. No slice, no string to
 * number conversion: this runs three times per kernel record.
 */
function digitsValue(s: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (s.charCodeAt(i) - 48);
  return v;
}

/** The specific complaint about a bad prefix (the slow path: only for bad records). */
function prefixError(prefix: string): string {
  const fields = prefix.split(',');
  if (fields.length < 4) return `prefix has ${fields.length} fields, expected PRI,SEQ,TS_USEC,FLAG`;
  const [priS, seqS, tsS] = fields as [string, string, string];
  if (!isDigits(priS)) return `PRI "${priS.slice(0, 20)}" is not a number`;
  if (!isDigits(seqS)) return `SEQ "${seqS.slice(0, 20)}" is not a number`;
  if (!isDigits(tsS)) return `TS_USEC "${tsS.slice(0, 20)}" is not a number`;
  return 'PRI, SEQ or TS_USEC out of range';
}

function dictValue(text: string, from: number, to: number): string {
  return unescapeKmsg(text.slice(from, to)).slice(0, 256);
}

/**
 * The subsystems storage records carry, as constant strings: a record's
 * `SUBSYSTEM=block` then needs no string of its own, and classification
 * looks up a string whose hash V8 already holds.
 */
const SUBSYSTEMS = ['block', 'scsi', 'scsi_disk', 'scsi_device', 'scsi_host', 'nvme', 'nvme-subsystem', 'ata_port', 'ata_link', 'ata_device', 'pci', 'usb'];

function knownSubsystem(text: string, from: number, to: number): string | undefined {
  const len = to - from;
  for (const name of SUBSYSTEMS) if (name.length === len && text.startsWith(name, from)) return name;
  return undefined;
}

/**
 * Parse one /dev/kmsg record: `PRI,SEQ,TS_USEC,FLAG[,…];MESSAGE\n` followed by
 * zero or more ` KEY=VALUE\n` continuation lines.
 */
export function parseKmsgRecord(text: string): RecordResult {
  const semi = text.indexOf(';');
  if (semi < 0) return { ok: false, error: 'no ";" between the prefix and the message' };
  if (semi > 128) return { ok: false, error: 'prefix longer than 128 characters' };
  // The prefix by hand, not split(','): this runs for every kernel record.
  const priEnd = digitsEnd(text, 0, semi);
  const seqEnd = priEnd < semi && text.charCodeAt(priEnd) === COMMA ? digitsEnd(text, priEnd + 1, semi) : -1;
  const tsEnd = seqEnd >= 0 && seqEnd < semi && text.charCodeAt(seqEnd) === COMMA ? digitsEnd(text, seqEnd + 1, semi) : -1;
  if (priEnd === 0 || priEnd - 0 > 20 || seqEnd <= priEnd + 1 || seqEnd - priEnd > 21 || tsEnd <= seqEnd + 1 || tsEnd - seqEnd > 21 ||
      tsEnd >= semi || text.charCodeAt(tsEnd) !== COMMA) {
    return { ok: false, error: prefixError(text.slice(0, semi)) };
  }
  const pri = digitsValue(text, 0, priEnd);
  const seq = digitsValue(text, priEnd + 1, seqEnd);
  const tsUsec = digitsValue(text, seqEnd + 1, tsEnd);
  const flagEnd = text.indexOf(',', tsEnd + 1);
  const flag = text.slice(tsEnd + 1, flagEnd >= 0 && flagEnd < semi ? flagEnd : semi);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(tsUsec) || pri > 1023) {
    return { ok: false, error: 'PRI, SEQ or TS_USEC out of range' };
  }
  let end = text.indexOf('\n', semi + 1);
  if (end < 0) end = text.length;
  let message = unescapeKmsg(text.slice(semi + 1, end));
  if (message.length > MAX_MESSAGE) message = message.slice(0, MAX_MESSAGE);
  let subsystem = '';
  let device = '';
  // continuation dictionary: lines that start with a space
  let pos = end + 1;
  while (pos < text.length) {
    let next = text.indexOf('\n', pos);
    if (next < 0) next = text.length;
    if (text.charCodeAt(pos) === 32) {
      const eq = text.indexOf('=', pos);
      // the two keys we keep, compared in place (no key string per line)
      if (eq === pos + 10 && text.startsWith('SUBSYSTEM', pos + 1)) subsystem = knownSubsystem(text, eq + 1, next) ?? dictValue(text, eq + 1, next);
      else if (eq === pos + 7 && text.startsWith('DEVICE', pos + 1)) device = dictValue(text, eq + 1, next);
    }
    pos = next + 1;
  }
  return {
    ok: true,
    record: { level: pri & 7, facility: pri >> 3, seq, tsUsec, flag: flag.slice(0, 8), message, subsystem, device },
  };
}
