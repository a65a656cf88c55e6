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
  'dmesg', // `[  613.524384] msg`, also `dmesg -r` (`<3>[ … ] msg`), `dmesg -x`, caller ids, a CPU suffix (`[ 8.888974@0]`)
  'dmesg-ctime', // `dmesg -T`: `[Mon Nov 22 10:00:01 2021] msg`
  'dmesg-iso', // `dmesg --time-format iso`: `2021-11-22T10:00:01,123456+01:00 msg`
  'dmesg-human', // `dmesg -H`: `[Nov22 10:00] msg`, then `[  +0.000123] msg` (`[  +0,000123]` in a locale with decimal commas)
  'journal-monotonic', // `journalctl -o short-monotonic`: `[  613.524384] host kernel: msg`
  'syslog', // RFC 3164 / `journalctl` default / short-precise: `Nov 22 10:00:01[.123456] [host] kernel: msg`
  'metalog', // metalog's files: `Nov 22 10:00:01 [kernel] msg` (the program in brackets, no host)
  'logread', // OpenWrt `logread`: `Sat Apr 23 15:37:18 2016 kern.err kernel: msg` (ctime, then facility.level)
  'syslog-iso', // RFC 3339 (rsyslog high precision) / `journalctl -o short-iso[-precise]`
  'journal-full', // `journalctl -o short-full`: `Mon 2021-11-22 10:00:01 CET host kernel: msg`
  'rfc5424', // `<3>1 2021-11-22T10:00:01.123Z host kernel - - - msg`
  'journal-json', // `journalctl -o json`: one JSON object per line
  'journal-export', // `journalctl -o export`: KEY=value lines, records separated by a blank line
  'angle', // `<3>msg`: a level and the message, no time
  'kernel-tag', // `kernel: msg`, `ERR kernel: [ 12.3] msg`: a syslog line whose time and host were cut off
  'anaconda', // the Anaconda installer's syslog: `23:54:39,682 INFO kernel:md0: msg`
  'talosctl', // `talosctl dmesg`: `10.5.0.2: kern:   alert: [2024-05-13T15:13:11.99476118Z]: msg`
  'level-letter', // Android kernel-log apps: `I/  229.354797  msg`
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

const LEVEL_NAMES: Record<string, number> = { emerg: 0, alert: 1, crit: 2, critical: 2, err: 3, error: 3, warn: 4, warning: 4, notice: 5, info: 6, debug: 7 };
const LEVEL_WORDS = 'emerg|alert|crit|critical|err|error|warn|warning|notice|info|debug';
/** a level word as syslog templates and busybox (`err`), SONiC and Python logging (`ERR`, `WARNING`) print it */
const LEVEL_WORD = `(?:${LEVEL_WORDS}|${LEVEL_WORDS.toUpperCase()})`;
/** `err`, `kern.err`, `user.err`, `ERR`, `WARNING` */
const FAC_LEVEL = `(?:(?:kern|user|daemon|syslog|local[0-7])\\.)?${LEVEL_WORD}`;

const FAC_LEVEL_ONLY_RE = new RegExp(`^${FAC_LEVEL}$`);

/** `kern.err` / `ERR` → level and facility (0 for the kernel's, else 1: not the kernel's own) */
function facLevel(word: string): { level: number; facility: number } {
  const w = word.toLowerCase();
  const dot = w.indexOf('.');
  const level = LEVEL_NAMES[dot < 0 ? w : w.slice(dot + 1)] ?? -1;
  return { level, facility: dot < 0 || w.startsWith('kern.') ? 0 : 1 };
}
const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

function defaultLocalToUs(year: number, month: number, day: number, h: number, m: number, s: number): number {
  return new Date(year, month, day, h, m, s).getTime() * 1000;
}

/** `613.524384` → µs; the fraction may have 1–9 digits */
function secondsToUs(sec: string, frac: string): number {
  const f = (frac + '000000').slice(0, 6);
  return Number(sec) * 1_000_000 + Number(f);
}

type LocalToUs = (year: number, month: number, day: number, h: number, m: number, s: number) => number;

/**
 * An ISO-8601 / RFC 3339 time (`T` or space, `,` or `.` before the fraction, `Z`, `±hh:mm` or `±hhmm`) → µs, or null.
 * A time without a zone is the local time of the machine that printed it (`local`, default this process's zone).
 */
export function isoToUs(text: string, local: LocalToUs = defaultLocalToUs): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return null;
  if (zone === undefined) {
    // no zone: local time of the machine that printed it (journalctl's short-full names a zone instead)
    ms = local(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
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

/** A line in no known format taken as the kernel message alone (unknown level and time), or null when it is empty. */
export function bareRecord(line: string): KernelRecord | null {
  const message = line.trim();
  return message === '' ? null : record(message, -1, 0, -1);
}

// The kernel's own part after a prefix: an optional `<3>` level, an optional
// `[  613.524384]` since-boot time, an optional caller id (`[T5607]`, `[ C1]`),
// as `kern.log` lines and journal short-monotonic lines carry them. Amlogic's
// vendor kernels print the CPU after the time: `[    8.888974@0]`.
const KERNEL_TAIL_RE = /^(?:<(\d{1,3})>)?(?:\[\s*(\d{1,10})\.(\d{1,9})(?:@\d{1,4})?\]\s?)?(?:\s*\[\s*[TC]\d{1,10}\]\s?)?/;

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
// own machine may leave it out). A facility.level or level word may stand
// before the host or the tag: rsyslog templates (`kern.err node-7 kernel:`,
// `node-7 kern.err kernel:`, `notice kernel:`), busybox syslogd
// (`beaglebone user.err kernel:`), SONiC (`sonic ERR kernel:`).
const HEADER_RE = new RegExp(`^(?:(${FAC_LEVEL}) )?(?:(\\S{1,255}) )?(?:(${FAC_LEVEL}) )?([A-Za-z_][\\w./-]{0,63})(?:\\[\\d{1,10}\\])?: ?`);

/**
 * What follows a syslog/journal time: host and tag, then the message. A tag
 * other than `kernel` (and the few spellings appliances use) is another
 * program's line.
 */
function afterTime(rest: string, format: TextFormat, wallUs: number | null, level: number, facility: number): TextLine {
  let host: string | null = null;
  let tag: string;
  let message: string;
  // an empty host field (a NAS installer's syslog: `Nov 20 16:24:11  kernel: …`, two blanks)
  if (rest.charCodeAt(0) === 32 && rest.charCodeAt(1) !== 32) rest = rest.slice(1);
  if (rest.startsWith('kernel:') || rest.startsWith('kernel[')) {
    const m = /^kernel(?:\[\d{1,10}\])?: ?/.exec(rest);
    if (!m) return { kind: 'unknown' };
    tag = 'kernel';
    message = rest.slice(m[0].length);
  } else {
    const m = HEADER_RE.exec(rest);
    if (!m) return { kind: 'unknown' };
    host = m[2] ?? null;
    tag = m[4]!;
    message = rest.slice(m[0].length);
    const word = m[1] ?? m[3];
    if (word !== undefined && level < 0) ({ level, facility } = facLevel(word));
  }
  if (tag !== 'kernel' && tag !== 'vmunix') return { kind: 'other', format };
  const t = kernelTail(message, level, facility);
  return { kind: 'kernel', value: { format, record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs } };
}

function priority(pri: string | undefined): { level: number; facility: number } {
  if (pri === undefined) return { level: -1, facility: 0 };
  const n = Number(pri);
  return { level: n & 7, facility: n >> 3 };
}

// `@0` after the time: the CPU, as Amlogic's vendor kernels (3.10, 3.14) print it
const DMESG_RE = /^(?:<(\d{1,4})>)?(?:(\w+)\s*:\s*(\w+)\s*:\s)?\s*\[\s*(\d{1,10})\.(\d{1,9})(?:@\d{1,4})?\]/;
const DMESG_CUT_RE = /^\s*(\d{1,10})\.(\d{1,9})(?:@\d{1,4})?\]/; // a paste that lost the leading `[`
const CTIME_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[(?:\w{3}) (\w{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})\]\s?/;
const HUMAN_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[(\w{3}) ?(\d{1,2}) (\d{2}):(\d{2})\]\s?/;
// the delta is printed as a floating-point number, so in the locale's way: `+0.000123` or `+0,000123`
const HUMAN_REL_RE = /^(?:(\w+)\s*:\s*(\w+)\s*:\s)?\[\s*\+(\d{1,10})[.,](\d{1,9})\]\s?/;
const DMESG_ISO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:,\d{1,9})?(?:[+-]\d{2}:?\d{2}|Z)) /;
// RFC 3164; SONiC writes the year in front (`2025 Jul  2 06:56:57.749644 host ERR kernel: …`)
const RFC3164_RE = /^(?:<(\d{1,3})>)?(?:(\d{4}) )?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? /;
// RFC 3339, also with a space for the `T` (rsyslog's `%timegenerated:::date-rfc3339%` with sed, `2024-06-20 09:42:14 notice kernel:`)
const ISO_PREFIX_RE = /^(?:<(\d{1,3})>)?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) /;
const FULL_RE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?) ([A-Za-z][\w+-]{0,9}) /;
const RFC5424_RE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+) ?/;
// The same layout without its `<PRI>1 ` header, as some collectors store it
// (`2022-12-26T07:44:45.000000+01:00 host kernel - - - msg`): only with a
// zoned time, a tag, a numeric or nil PROCID and a nil MSGID, so that a
// plain RFC 3339 line (`… host kernel: msg`) never reads as one.
const RFC5424_NOPRI_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})) (\S+) ([\w./-]{1,64}) (-|\d{1,10}) - (-|(?:\[(?:[^\]\\]|\\.)*\])+) ?/;
const ANGLE_RE = /^<(\d{1,3})>(?!\d)/;
// metalog: the program in brackets after an RFC 3164 time, no host (`[kernel] `, `[sshd] `)
const METALOG_TAG_RE = /^\[([A-Za-z_][\w./-]{0,63})\] ?/;
// OpenWrt logread: ctime (`Sat Apr 23 15:37:18 2016`, the day padded with a blank), then
// `facility.level` (and the host with `-h`) before the tag: `… kern.err kernel: [  106.44] msg`
const LOGREAD_RE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) /;

function dmesgLevel(fac: string | undefined, lvl: string | undefined): { level: number; facility: number } {
  if (lvl === undefined) return { level: -1, facility: 0 };
  return { level: LEVEL_NAMES[lvl] ?? -1, facility: fac !== undefined && fac !== 'kern' ? 1 : 0 };
}

/**
 * One line of text → what it is. JSON (`journalctl -o json`) lines are read
 * here too; `journalctl -o export` spans lines and is read by TextReader.
 */
export function parseTextLine(line: string, ctx: TextContext): TextLine {
  const cut = line.length > MAX_TEXT_MESSAGE * 2 ? line.slice(0, MAX_TEXT_MESSAGE * 2) : line;
  return readLine(cut.charCodeAt(0) === 62 /* > */ ? stripQuote(cut).trimStart() : cut, ctx, true);
}

// A mail quote: `> `, `>> `, `> > > \t` (what is left after it may be indented: a continuation line)
const QUOTE_RE = /^>(?:[ \t]{0,2}>){0,15}[ \t]?/;
/** The line without its mail-quote marks (`> `, `> > > `), as the mail's author pasted it. */
export function stripQuote(line: string): string {
  return line.charCodeAt(0) === 62 ? line.slice(QUOTE_RE.exec(line)![0].length) : line;
}

// `grep PATTERN /var/log/kern.log*` and `grep -n`: a file name (no blank), `:`, maybe a line number and `:`
const GREP_PREFIX_RE = /^[^\s:]{1,255}:(?:\d{1,10}:)?(?=\S)/;
// the line-start `kernel:` of a syslog line whose time and host were cut off, maybe after a level word
const KERNEL_TAG_RE = new RegExp(`^(?:(${FAC_LEVEL}) )?kernel(?:\\[\\d{1,10}\\])?: ?`);
// Anaconda's /tmp/syslog (Python logging): `23:54:39,682 INFO kernel:md0: …` — a time of day, no date
const ANACONDA_RE = new RegExp(`^\\d{2}:\\d{2}:\\d{2},\\d{3} (${LEVEL_WORD}) ([A-Za-z_][\\w./-]{0,63})(?:\\[\\d{1,10}\\])?: ?`);
// talosctl dmesg: `node: facility: level: [RFC 3339 time]: msg`, the names right-aligned
const TALOS_RE = /^(\S{1,255}): {1,8}([a-z][a-z0-9]{1,7}): {1,8}([a-z]{3,7}): \[(\d{4}-\d{2}-\d{2}T[\d:.]{8,20}(?:Z|[+-]\d{2}:?\d{2}))\]: ?/;
// Android kernel-log apps (Android Tuner): a level letter, `/`, the seconds since boot, two blanks
const LEVEL_LETTER_RE = /^([VDIWEF])\/\s{0,12}(\d{1,10})\.(\d{1,9}) {1,4}/;
const LETTER_LEVELS: Record<string, number> = { V: 7, D: 7, I: 6, W: 4, E: 3, F: 2 };
// journalctl's own lines between records: `-- Boot 1e4d…5d --`, `-- Logs begin at … --`, `-- No entries --`
const JOURNAL_MARKER_RE = /^-- (?:Boot [0-9a-f]{32}|Reboot|No entries|(?:Logs begin|Journal begins|Journal started) .{0,200}) --$/;

function readLine(text: string, ctx: TextContext, loose: boolean): TextLine {
  const toUs = ctx.localToUs ?? defaultLocalToUs;

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
    const wall = m[2] === '-' ? null : isoToUs(m[2]!, toUs);
    if (m[2] === '-' || wall !== null) {
      const { level, facility } = priority(m[1]);
      const host = m[3] === '-' ? null : m[3]!;
      if (m[4] !== 'kernel' || facility !== 0) return { kind: 'other', format: 'rfc5424' };
      const t = kernelTail(text.slice(m[0].length).replace(/^\uFEFF/, ''), level, facility);
      return { kind: 'kernel', value: { format: 'rfc5424', record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs: wall } };
    }
  }
  if ((m = RFC5424_NOPRI_RE.exec(text))) {
    const wall = isoToUs(m[1]!, toUs);
    if (wall !== null) {
      if (m[3] !== 'kernel') return { kind: 'other', format: 'rfc5424' };
      const t = kernelTail(text.slice(m[0].length).replace(/^\uFEFF/, ''));
      return { kind: 'kernel', value: { format: 'rfc5424', record: record(t.message, t.level, t.facility, t.tsUsec), host: m[2] === '-' ? null : m[2]!, wallUs: wall } };
    }
  }
  // a `,` before the fraction is dmesg's (`--time-format iso`); syslog writes `.`
  if ((m = ISO_PREFIX_RE.exec(text)) && !m[2]!.includes(',')) {
    const wall = isoToUs(m[2]!, toUs);
    if (wall !== null) {
      const { level, facility } = priority(m[1]);
      const tagged = afterTime(text.slice(m[0].length), 'syslog-iso', wall, level, facility);
      if (tagged.kind !== 'unknown') return tagged;
    }
  }
  if ((m = DMESG_ISO_RE.exec(text))) {
    const wall = isoToUs(m[1]!, toUs);
    if (wall !== null) {
      const t = kernelTail(text.slice(m[0].length));
      return { kind: 'kernel', value: { format: 'dmesg-iso', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: wall } };
    }
  }
  if ((m = FULL_RE.exec(text))) {
    const zone = m[2]!;
    const wall = isoToUs(zone === 'UTC' || zone === 'GMT' ? `${m[1]!}Z` : m[1]!, toUs);
    if (wall !== null) {
      const tagged = afterTime(text.slice(m[0].length), 'journal-full', wall, -1, 0);
      if (tagged.kind !== 'unknown') return tagged;
    }
  }
  if ((m = LOGREAD_RE.exec(text))) {
    const month = MONTHS[m[1]!.toLowerCase()];
    if (month !== undefined && Number(m[2]) >= 1 && Number(m[2]) <= 31) {
      const wall = toUs(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
      const tagged = afterTime(text.slice(m[0].length), 'logread', wall, -1, 0);
      if (tagged.kind !== 'unknown') return tagged;
    }
  }
  if ((m = RFC3164_RE.exec(text))) {
    const month = MONTHS[m[3]!.toLowerCase()];
    if (month !== undefined && Number(m[4]) >= 1 && Number(m[4]) <= 31) {
      const year = m[2] !== undefined ? Number(m[2]) : ctx.year;
      const wall = toUs(year, month, Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])) + (m[8] === undefined ? 0 : Number((m[8] + '000000').slice(0, 6)));
      const { level, facility } = priority(m[1]);
      const rest = text.slice(m[0].length);
      const meta = rest.charCodeAt(0) === 91 /* [ */ ? METALOG_TAG_RE.exec(rest) : null;
      if (meta) {
        if (meta[1] !== 'kernel') return { kind: 'other', format: 'metalog' };
        const t = kernelTail(rest.slice(meta[0].length), level, facility);
        return { kind: 'kernel', value: { format: 'metalog', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: wall } };
      }
      const tagged = afterTime(rest, 'syslog', wall, level, facility);
      if (tagged.kind !== 'unknown') return tagged;
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
  if ((m = KERNEL_TAG_RE.exec(text))) {
    const { level, facility } = m[1] !== undefined ? facLevel(m[1]) : { level: -1, facility: 0 };
    const t = kernelTail(text.slice(m[0].length), level, facility);
    return { kind: 'kernel', value: { format: 'kernel-tag', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: null } };
  }
  if ((m = ANACONDA_RE.exec(text))) {
    if (m[2] !== 'kernel') return { kind: 'other', format: 'anaconda' };
    const { level, facility } = facLevel(m[1]!);
    const t = kernelTail(text.slice(m[0].length), level, facility);
    return { kind: 'kernel', value: { format: 'anaconda', record: record(t.message, t.level, t.facility, t.tsUsec), host: null, wallUs: null } };
  }
  if ((m = TALOS_RE.exec(text))) {
    const wall = isoToUs(m[4]!, toUs);
    const level = LEVEL_NAMES[m[3]!];
    if (wall !== null && level !== undefined) {
      if (m[2] !== 'kern') return { kind: 'other', format: 'talosctl' };
      const t = kernelTail(text.slice(m[0].length), level, 0);
      return { kind: 'kernel', value: { format: 'talosctl', record: record(t.message, t.level, t.facility, t.tsUsec), host: m[1]!, wallUs: wall } };
    }
  }
  if ((m = LEVEL_LETTER_RE.exec(text))) {
    const t = kernelTail(text.slice(m[0].length), LETTER_LEVELS[m[1]!]!, 0);
    return { kind: 'kernel', value: { format: 'level-letter', record: record(t.message, t.level, t.facility, secondsToUs(m[2]!, m[3]!)), host: null, wallUs: null } };
  }
  if (JOURNAL_MARKER_RE.test(text)) return { kind: 'other', format: 'syslog' };
  if (!loose) return { kind: 'unknown' };
  // `grep` output over log files: the file name, then a line of a known format (never a bare message)
  if ((m = GREP_PREFIX_RE.exec(text))) {
    const inner = readLine(text.slice(m[0].length), ctx, false);
    if (inner.kind !== 'unknown') return inner;
  }
  // A paste that lost the start of its prefix (`v 22 10:00:01 node-7 kernel: …`, `:01 node-7 kernel: …`):
  // a short run of prefix-like words, the last one or two a host and the `kernel:` tag.
  if ((m = /^(?:\S+ ){0,4}?(?:(\S+) )?kernel(?:\[\d{1,10}\])?: /.exec(text)) && /\d/.test(m[0]) && m[0].length <= 64) {
    let host = m[1] !== undefined && !/^[\d:.,+-]+$/.test(m[1]) ? m[1] : null;
    let level = -1;
    let facility = 0;
    if (host !== null && FAC_LEVEL_ONLY_RE.test(host)) {
      ({ level, facility } = facLevel(host));
      host = null;
    }
    const t = kernelTail(text.slice(m[0].length), level, facility);
    return { kind: 'kernel', value: { format: 'syslog', record: record(t.message, t.level, t.facility, t.tsUsec), host, wallUs: null } };
  }
  return { kind: 'unknown' };
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
