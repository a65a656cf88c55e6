// Pure parsing of kernel log records: /dev/kmsg records (docs/events.md §5) and
// the dmesg / journalctl text forms (§6). No I/O here.

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
  const pri = Number(text.slice(0, priEnd));
  const seq = Number(text.slice(priEnd + 1, seqEnd));
  const tsUsec = Number(text.slice(seqEnd + 1, tsEnd));
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
      if (eq > pos && eq < next) {
        const key = text.slice(pos + 1, eq);
        const value = unescapeKmsg(text.slice(eq + 1, next)).slice(0, 256);
        if (key === 'SUBSYSTEM') subsystem = value;
        else if (key === 'DEVICE') device = value;
      }
    }
    pos = next + 1;
  }
  return {
    ok: true,
    record: { level: pri & 7, facility: pri >> 3, seq, tsUsec, flag: flag.slice(0, 8), message, subsystem, device },
  };
}

const DMESG_RE = /^(?:<(\d{1,4})>)?(?:(\w+)\s*:(\w+)\s*:\s)?\s*\[\s*(\d{1,10})\.(\d{1,9})\]\s?(.*)$/s;
const JOURNAL_HOST_RE = /^\S+ kernel: /;
const LEVEL_NAMES: Record<string, number> = { emerg: 0, alert: 1, crit: 2, err: 3, warn: 4, notice: 5, info: 6, debug: 7 };

/**
 * Parse one line of dmesg text: `[  613.524384] MSG`, `<3>[  613.524384] MSG`
 * (`dmesg -r`), `kern  :err   : [  613.524384] MSG` (`dmesg -x`) or
 * `[  613.524384] host kernel: MSG` (`journalctl -k -o short-monotonic`).
 * A line without a timestamp is taken as a bare message of unknown level.
 */
export function parseDmesgLine(line: string): RecordResult {
  const text = line.length > MAX_MESSAGE * 2 ? line.slice(0, MAX_MESSAGE * 2) : line;
  const m = DMESG_RE.exec(text);
  let level = -1;
  let facility = 0;
  let tsUsec = -1;
  let message = text;
  if (m) {
    if (m[1] !== undefined) {
      const pri = Number(m[1]);
      level = pri & 7;
      facility = pri >> 3;
    } else if (m[3] !== undefined) {
      level = LEVEL_NAMES[m[3]] ?? -1;
      if (m[2] !== undefined && m[2] !== 'kern') facility = 1;
    }
    tsUsec = Number(m[4]) * 1_000_000 + Math.round(Number(`0.${m[5]}`) * 1_000_000);
    message = m[6] ?? '';
    const host = JOURNAL_HOST_RE.exec(message);
    if (host) message = message.slice(host[0].length);
  }
  message = message.replace(/\r?\n$/, '');
  if (message.trim() === '') return { ok: false, error: 'empty message' };
  if (message.length > MAX_MESSAGE) message = message.slice(0, MAX_MESSAGE);
  return { ok: true, record: { level, facility, seq: -1, tsUsec, flag: '-', message, subsystem: '', device: '' } };
}

const KMSG_PREFIX_RE = /^\d{1,4},\d{1,20},\d{1,20},[^;\n]{0,100};/;

/**
 * Split offline input (a file of /dev/kmsg records, dmesg text, or a mix) into
 * parsed records. Each element is a result, so one bad record loses nothing else.
 */
export function* splitRecords(text: string): Generator<RecordResult & { line: number }> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.charCodeAt(0) === 32 && line.includes('=')) continue; // a stray dictionary line
    const lineNo = i + 1;
    if (KMSG_PREFIX_RE.test(line)) {
      let record = line + '\n';
      while (i + 1 < lines.length && lines[i + 1]!.charCodeAt(0) === 32) record += lines[++i]! + '\n';
      yield { ...parseKmsgRecord(record), line: lineNo };
    } else {
      yield { ...parseDmesgLine(line), line: lineNo };
    }
  }
}
