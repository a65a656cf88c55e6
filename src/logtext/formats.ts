// The text forms in which kernel log lines reach `prpt parse`: what people
// paste into issues and what sits in log files (docs/log-formats.md). One
// line in, one answer out: a kernel record with what the line's prefix says
// (level, host, wall-clock or since-boot time), a line of a known format that
// is not from the kernel, or a line in no known format. Pure: no clock, no
// files; the caller gives the year and time zone that the format leaves out.
import type { KernelRecord } from '../contracts/record.ts';

/** The formats recognized, as reported in `prpt parse`'s summary. */
export const TEXT_FORMATS = [
  'kmsg', // a /dev/kmsg record: `3,101,1001234,-;msg` (handled by src/kmsg/record.ts)
  'dmesg', // `[  613.524384] msg`, also `dmesg -r` (`<3>[ … ] msg`), `dmesg -x`, caller ids
  'dmesg-ctime', // `dmesg -T`: `[Mon Nov 22 10:00:01 2021] msg`
  'dmesg-iso', // `dmesg --time-format iso`: `2021-11-22T10:00:01,123456+01:00 msg`
  'dmesg-human', // `dmesg -H`: `[Nov22 10:00] msg`, then `[  +0.000123] msg`
  'journal-monotonic', // `journalctl -o short-monotonic`: `[  613.524384] host kernel: msg`
  'syslog', // RFC 3164 / `journalctl` default / short-precise: `Nov 22 10:00:01[.123456] [host] kernel: msg`
  'syslog-iso', // RFC 3339 (rsyslog high precision) / `journalctl -o short-iso[-precise]`
  'journal-full', // `journalctl -o short-full`: `Mon 2021-11-22 10:00:01 CET host kernel: msg`
  'rfc5424', // `<3>1 2021-11-22T10:00:01.123Z host kernel - - - msg`
  'journal-json', // `journalctl -o json`: one JSON object per line
  'journal-export', // `journalctl -o export`: KEY=value lines, records separated by a blank line
  'angle', // `<3>msg`: a level and the message, no time
  'bare', // the message alone
] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

/** A kernel record read from text, with what the format said beyond the record. */
export interface TextRecord {
  format: TextFormat;
  record: KernelRecord;
  /** the host the line names (syslog, journal), or null */
  host: string | null;
  /** the wall-clock time the line carries, µs since the epoch, or null */
  wallUs: number | null;
}

export type TextLine =
  | { kind: 'kernel'; value: TextRecord }
  /** a line of a known log format written by something other than the kernel */
  | { kind: 'other'; format: TextFormat }
  /** a line whose prefix says nothing known (the caller may take it as a bare message) */
  | { kind: 'unknown' };

export interface TextContext {
  /** the year for formats that leave it out (RFC 3164, `dmesg -H`) */
  year: number;
  /**
   * Local wall-clock fields → µs since the epoch, for formats without a zone
   * (journalctl's default, RFC 3164, `dmesg -T`). Default: the zone of this
   * process (TZ), which is where `journalctl` and `dmesg` printed them when
   * the file comes from this machine.
   */
  localToUs?: (year: number, month: number, day: number, h: number, m: number, s: number) => number;
}

/** a message longer than this is cut (as /dev/kmsg records are: the kernel's own limit is 1 KiB) */
export const MAX_TEXT_MESSAGE = 8192;

const LEVEL_NAMES: Record<string, number> = { emerg: 0, alert: 1, crit: 2, err: 3, warn: 4, warning: 4, notice: 5, info: 6, debug: 7 };
const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

function defaultLocalToUs(year: number, month: number, day: number, h: number, m: number, s: number): number {
  return new Date(year, month, day, h, m, s).getTime() * 1000;
}

/** `613.524384` → µs; the fraction may have 1–9 digits */
function secondsToUs(sec: string, frac: string): number {
  const f = (frac + '000000').slice(0, 6);
  return Number(sec) * 1_000_000 + Number(f);
}

/** An ISO-8601 / RFC 3339 time (`T` or space, `,` or `.` before the fraction, `Z`, `±hh:mm` or `±hhmm`) → µs, or null. */
export function isoToUs(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return null;
  if (zone === undefined) {
    // no zone: local time of the machine that printed it (journalctl's short-full names a zone instead)
    ms = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime();
  } else if (zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return ms * 1000 + (frac === undefined ? 0 : Number((frac + '000000').slice(0, 6)));
}

function clip(message: string): string {
  const m = message.endsWith('\r') ? message.slice(0, -1) : message;
  return m.length > MAX_TEXT_MESSAGE ? m.slice(0, MAX_TEXT_MESSAGE) : m;
}

function record(message: string, level: number, facility: number, tsUsec: number, subsystem = '', device = ''): KernelRecord {
  return { level, facility, seq: -1, tsUsec, flag: '-', message: clip(message), subsystem, device };
}

// The kernel's own part after a prefix: an optional `<3>` level, an optional
// `[  613.524384]` since-boot time, an optional caller id (`[T5607]`, `[ C1]`),
// as `kern.log` lines and journal short-monotonic lines carry them.
const KERNEL_TAIL_RE = /^(?:<(\d{1,3})>)?(?:\[\s*(\d{1,10})\.(\d{1,9})\]\s?)?(?:\s*\[\s*[TC]\d{1,10}\]\s?)?/;

interface Tail {
  level: number;
  facility: number;
  tsUsec: number;
  message: string;
}

function kernelTail(text: string, level = -1, facility = 0): Tail {
  const m = KERNEL_TAIL_RE.exec(text)!;
  if (m[1] !== undefined) {
    const pri = Number(m[1]);
    level = pri & 7;
    facility = pri >> 3;
  }
  const tsUsec = m[2] !== undefined ? secondsToUs(m[2], m[3]!) : -1;
  return { level, facility, tsUsec, message: text.slice(m[0].length) };
}

// `host kernel: msg`, `kernel: msg`, `host kernel[0]: msg`; the tag is what
// RFC 3164 calls it, the host is optional (a file written by syslogd for its
// own machine may leave it out).
const TAG_RE = /^(?:(\S+) )?([A-Za-z_][\w./-]{0,63})(?:\[\d{1,10}\])?: ?/;

/**
 * What follows a syslog/journal time: host and tag, then the message. A tag
 * other than `kernel` (and the few spellings appliances use) is another
 * program's line.
 */
function afterTime(rest: string, format: TextFormat, wallUs: number | null, level: number, facility: number): TextLine {
  let host: string | null = null;
  let tag: string;
  let message: string;
  if (rest.startsWith('kernel:') || rest.startsWith('kernel[')) {
    const m = /^kernel(?:\[\d{1,10}\])?: ?/.exec(rest);
    if (!m) return { kind: 'unknown' };
    tag = 'kernel';
    message = rest.slice(m[0].length);
  } else {
    const m = TAG_RE.exec(rest);
    if (!m) return { kind: 'unknown' };
    host = m[1] ?? null;
    tag = m[2]!;
    message = rest.slice(m[0].length);
  }
  if (tag !== 'kernel' && tag !== 'vmunix') return { kind: 'other', format };
  // rsyslog/systemd may also keep the facility.level (`kern.err`) as a field before the tag; it is read in syslogLine
  const t = kernelTail(message, level, facility);
  return { kind: 'kernel', value: { format, record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs } };
}

function priority(pri: string | undefined): { level: number; facility: number } {
  if (pri === undefined) return { level: -1, facility: 0 };
  const n = Number(pri);
  return { level: n & 7, facility: n >> 3 };
}

const DMESG_RE = /^(?:<(\d{1,4})>)?(?:(\w+)\s*:\s*(\w+)\s*:\s)?\s*\[\s*(\d{1,10})\.(\d{1,9})\]/;
const DMESG_CUT_RE = /^\s*(\d{1,10})\.(\d{1,9})\]/; // a paste that lost the leading `[`
const CTIME_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[(?:\w{3}) (\w{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})\]\s?/;
const HUMAN_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[(\w{3}) ?(\d{1,2}) (\d{2}):(\d{2})\]\s?/;
const HUMAN_REL_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[\s*\+(\d{1,10})\.(\d{1,9})\]\s?/;
const DMESG_ISO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:,\d{1,9})?(?:[+-]\d{2}:?\d{2}|Z)) /;
const RFC3164_RE = /^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? /;
const ISO_PREFIX_RE = /^(?:<(\d{1,3})>)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) /;
const FULL_RE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?) ([A-Za-z][\w+-]{0,9}) /;
const RFC5424_RE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+) ?/;
const ANGLE_RE = /^<(\d{1,3})>(?!\d)/;

function dmesgLevel(fac: string | undefined, lvl: string | undefined): { level: number; facility: number } {
  if (lvl === undefined) return { level: -1, facility: 0 };
  return { level: LEVEL_NAMES[lvl] ?? -1, facility: fac !== undefined && fac !== 'kern' ? 1 : 0 };
}

/**
 * One line of text → what it is. JSON (`journalctl -o json`) lines are read
 * here too; `journalctl -o export` spans lines and is read by TextReader.
 */
export function parseTextLine(line: string, ctx: TextContext): TextLine {
  const toUs = ctx.localToUs ?? defaultLocalToUs;
  const text = line.length > MAX_TEXT_MESSAGE * 2 ? line.slice(0, MAX_TEXT_MESSAGE * 2) : line;

  if (text.startsWith('{')) return journalJson(text);

  // journalctl -o short-monotonic: `[  613.524384] host kernel: msg` — before plain dmesg, whose message could start the same
  let m: RegExpExecArray | null = /^\[\s*(\d{1,10})\.(\d{1,9})\] (\S+) kernel(?:\[\d+\])?: ?/.exec(text);
  if (m) {
    const t = kernelTail(text.slice(m[0].length));
    const ts = t.tsUsec >= 0 ? t.tsUsec : secondsToUs(m[1]!, m[2]!);
    return { kind: 'kernel', value: { format: 'journal-monotonic', record: record(t.message, t.level, t.facility, ts), host: m[3]!, wallUs: null } };
  }
  // the same form from another program (`[ 5.1] host systemd[1]: …`): a host, then a tag with a pid,
  // which no kernel message starts with (`sd 2:0:0:0: …` has no `[pid]`)
  if (/^\[\s*\d{1,10}\.\d{1,9}\] \S+ [\w./-]{1,64}\[\d{1,10}\]: /.test(text)) return { kind: 'other', format: 'journal-monotonic' };

  if ((m = DMESG_RE.exec(text))) {
    const { level, facility } = m[1] !== undefined ? priority(m[1]) : dmesgLevel(m[2], m[3]);
    const t = kernelTail(text.slice(m[0].length).replace(/^ /, ''), level, facility);
    return { kind: 'kernel', value: { format: 'dmesg', record: record(t.message, t.level, t.facility, secondsToUs(m[4]!, m[5]!)), host: null, wallUs: null } };
  }
  if ((m = CTIME_RE.exec(text))) {
    const month = MONTHS[m[3]!.toLowerCase()];
    if (month !== undefined) {
      const { level, facility } = dmesgLevel(m[1], m[2]);
      const t = kernelTail(text.slice(m[0].length), level, facility);
      const wall = toUs(Number(m[8]), month, Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]));
      return { kind: 'kernel', value: { format: 'dmesg-ctime', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: wall } };
    }
  }
  if ((m = HUMAN_REL_RE.exec(text))) {
    const { level, facility } = dmesgLevel(m[1], m[2]);
    const t = kernelTail(text.slice(m[0].length), level, facility);
    // the time is relative to the line before: TextReader adds it up
    return { kind: 'kernel', value: { format: 'dmesg-human', record: record(t.message, t.level, t.facility, -1), host: null, wallUs: -secondsToUs(m[3]!, m[4]!) - 1 } };
  }
  if ((m = HUMAN_RE.exec(text))) {
    const month = MONTHS[m[3]!.toLowerCase()];
    if (month !== undefined) {
      const { level, facility } = dmesgLevel(m[1], m[2]);
      const t = kernelTail(text.slice(m[0].length), level, facility);
      const wall = toUs(ctx.year, month, Number(m[4]), Number(m[5]), Number(m[6]), 0);
      return { kind: 'kernel', value: { format: 'dmesg-human', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: wall } };
    }
  }
  if ((m = RFC5424_RE.exec(text))) {
    const wall = m[2] === '-' ? null : isoToUs(m[2]!);
    if (m[2] === '-' || wall !== null) {
      const { level, facility } = priority(m[1]);
      const host = m[3] === '-' ? null : m[3]!;
      if (m[4] !== 'kernel' || facility !== 0) return { kind: 'other', format: 'rfc5424' };
      const t = kernelTail(text.slice(m[0].length).replace(/^\uFEFF/, ''), level, facility);
      return { kind: 'kernel', value: { format: 'rfc5424', record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs: wall } };
    }
  }
  // a `,` before the fraction is dmesg's (`--time-format iso`); syslog writes `.`
  if ((m = ISO_PREFIX_RE.exec(text)) && !m[2]!.includes(',')) {
    const wall = isoToUs(m[2]!);
    if (wall !== null) {
      const rest = text.slice(m[0].length);
      const { level, facility } = priority(m[1]);
      const tagged = afterTime(stripFacilityLevel(rest), 'syslog-iso', wall, level, facility);
      if (tagged.kind !== 'unknown') return withFacilityLevel(tagged, rest);
    }
  }
  if ((m = DMESG_ISO_RE.exec(text))) {
    const wall = isoToUs(m[1]!);
    if (wall !== null) {
      const t = kernelTail(text.slice(m[0].length));
      return { kind: 'kernel', value: { format: 'dmesg-iso', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: wall } };
    }
  }
  if ((m = FULL_RE.exec(text))) {
    const zone = m[2]!;
    const wall = isoToUs(zone === 'UTC' || zone === 'GMT' ? `${m[1]!}Z` : m[1]!);
    if (wall !== null) {
      const tagged = afterTime(text.slice(m[0].length), 'journal-full', wall, -1, 0);
      if (tagged.kind !== 'unknown') return tagged;
    }
  }
  if ((m = RFC3164_RE.exec(text))) {
    const month = MONTHS[m[2]!.toLowerCase()];
    if (month !== undefined && Number(m[3]) >= 1 && Number(m[3]) <= 31) {
      const wall = toUs(ctx.year, month, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) + (m[7] === undefined ? 0 : Number((m[7] + '000000').slice(0, 6)));
      const rest = text.slice(m[0].length);
      const { level, facility } = priority(m[1]);
      const tagged = afterTime(stripFacilityLevel(rest), 'syslog', wall, level, facility);
      if (tagged.kind !== 'unknown') return withFacilityLevel(tagged, rest);
    }
  }
  if ((m = DMESG_CUT_RE.exec(text))) {
    const t = kernelTail(text.slice(m[0].length).replace(/^ /, ''));
    return { kind: 'kernel', value: { format: 'dmesg', record: record(t.message, t.level, t.facility, secondsToUs(m[1]!, m[2]!)), host: null, wallUs: null } };
  }
  if ((m = ANGLE_RE.exec(text))) {
    const { level, facility } = priority(m[1]);
    return { kind: 'kernel', value: { format: 'angle', record: record(text.slice(m[0].length), level, facility, -1), host: null, wallUs: null } };
  }
  // A paste that lost the start of its prefix (`v 22 10:00:01 node-7 kernel: …`, `:01 node-7 kernel: …`):
  // a short run of prefix-like words, the last one or two a host and the `kernel:` tag.
  if ((m = /^(?:\S+ ){0,4}?(?:(\S+) )?kernel(?:\[\d{1,10}\])?: /.exec(text)) && /\d/.test(m[0]) && m[0].length <= 64) {
    const host = m[1] !== undefined && !/^[\d:.,+-]+$/.test(m[1]) ? m[1] : null;
    const t = kernelTail(text.slice(m[0].length));
    return { kind: 'kernel', value: { format: 'syslog', record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs: null } };
  }
  return { kind: 'unknown' };
}

// rsyslog templates that keep the facility and level as a word before the
// host/tag (`kern.err node-7 kernel: …`, `node-7 kern.err kernel: …`):
// dropped for the tag match, read back for the level.
const FAC_LEVEL_RE = /(?:^|(?<= ))(kern|user|daemon|syslog|local\d)\.(emerg|alert|crit|err|error|warn|warning|notice|info|debug) /;
function stripFacilityLevel(rest: string): string {
  return rest.replace(FAC_LEVEL_RE, '');
}
function withFacilityLevel(line: TextLine, rest: string): TextLine {
  if (line.kind !== 'kernel') return line;
  const m = FAC_LEVEL_RE.exec(rest.slice(0, 80));
  if (!m || line.value.record.level >= 0) return line;
  const level = LEVEL_NAMES[m[2] === 'error' ? 'err' : m[2]!] ?? -1;
  return { kind: 'kernel', value: { ...line.value, record: { ...line.value.record, level, facility: m[1] === 'kern' ? 0 : 1 } } };
}

/** journal fields → a record (shared by `-o json` and `-o export`) */
export function journalFields(get: (key: string) => string | undefined, format: TextFormat): TextLine {
  const message = get('MESSAGE');
  if (message === undefined) return { kind: 'unknown' };
  const transport = get('_TRANSPORT');
  const ident = get('SYSLOG_IDENTIFIER');
  if (transport !== 'kernel' && !(transport === undefined && ident === 'kernel')) return { kind: 'other', format };
  const pri = get('PRIORITY');
  const level = pri !== undefined && /^[0-7]$/.test(pri) ? Number(pri) : -1;
  const fac = get('SYSLOG_FACILITY');
  const facility = fac !== undefined && /^\d{1,3}$/.test(fac) ? Number(fac) : 0;
  const real = get('__REALTIME_TIMESTAMP');
  const wallUs = real !== undefined && /^\d{1,17}$/.test(real) ? Number(real) : null;
  const source = get('_SOURCE_MONOTONIC_TIMESTAMP') ?? get('__MONOTONIC_TIMESTAMP');
  const tsUsec = source !== undefined && /^\d{1,17}$/.test(source) ? Number(source) : -1;
  const host = get('_HOSTNAME') ?? null;
  return {
    kind: 'kernel',
    value: { format, record: record(message, level, facility, tsUsec, get('_KERNEL_SUBSYSTEM') ?? '', get('_KERNEL_DEVICE') ?? ''), host, wallUs },
  };
}

function journalJson(text: string): TextLine {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { kind: 'unknown' };
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return { kind: 'unknown' };
  const fields = obj as Record<string, unknown>;
  return journalFields((key) => {
    const v = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (typeof v === 'string') return v;
    // journalctl prints a field that is not valid UTF-8 as an array of byte values
    if (Array.isArray(v) && v.length <= MAX_TEXT_MESSAGE && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Buffer.from(v as number[]).toString('utf8');
    return undefined;
  }, 'journal-json');
}
