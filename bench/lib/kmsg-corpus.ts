// The corpus of bench/npd.bench.ts as raw /dev/kmsg records, and the small
// arithmetic of its report. Pure (no I/O): test/unit/npd-bench.test.ts holds
// it; the Go harness (bench/lib/npd-harness.go) reads the same file format.
//
// File format: what `cat /dev/kmsg` prints — per record the line
// `PRI,SEQ,TS_USEC,FLAG;MESSAGE` and then its dictionary lines, each starting
// with a space. One read(2) of /dev/kmsg returns exactly one such record
// (with its newlines), so both sides split the file at every line that does
// not start with a space and hand each piece to their kmsg parser whole.

/** The real-world corpus entry fields the records are made of. */
export interface CorpusMessage {
  message: string;
  expect: { severity: string } | null;
}

/**
 * The kernel's escaping of a /dev/kmsg message (printk's msg_add_ext_text):
 * bytes below 0x20, from 0x7f up, and the backslash become `\xNN`. A
 * multi-line message (md's two-line failure, libata's cmd/res pair) is one
 * record whose newlines are `\x0a`. Non-ASCII characters are escaped byte by
 * byte of their UTF-8 form, as the kernel escapes the bytes it holds.
 */
export function escapeKmsg(message: string): string {
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out += b < 0x20 || b >= 0x7f || b === 0x5c ? `\\x${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/** One record as one read(2) of /dev/kmsg returns it: the line and its dictionary lines, each ending in `\n`. */
export function kmsgRecord(level: number, seq: number, tsUsec: number, message: string, dict: Record<string, string> = {}): string {
  let s = `${level},${seq},${tsUsec},-;${escapeKmsg(message)}\n`;
  for (const [k, v] of Object.entries(dict)) s += ` ${k}=${escapeKmsg(v)}\n`;
  return s;
}

/**
 * The kernel level a line gets in the corpus file: the labelled severity of
 * a storage line (error 3, warn 4, info 6), info (6) for the rest. The
 * pasted lines mostly lost their level; this is the nearest honest guess.
 */
export function levelOf(e: CorpusMessage): number {
  switch (e.expect?.severity) {
    case 'error': return 3;
    case 'warn': return 4;
    default: return 6;
  }
}

/**
 * The corpus file: one record per entry, in the corpus' order, sequence
 * numbers from `firstSeq`, timestamps 1 ms apart from 1 s after boot.
 */
export function corpusFile(entries: readonly CorpusMessage[], firstSeq = 1): string {
  let out = '';
  entries.forEach((e, i) => {
    out += kmsgRecord(levelOf(e), firstSeq + i, 1_000_000 + i * 1000, e.message);
  });
  return out;
}

/** Split a corpus file into records (each with its trailing newline), as the Go harness does. */
export function splitKmsgRecords(text: string): string[] {
  const out: string[] = [];
  let start = -1;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl + 1;
    const c = text.charCodeAt(pos);
    if (c !== 32 && c !== 10) {
      if (start >= 0) out.push(text.slice(start, pos));
      start = pos;
    }
    pos = end;
  }
  if (start >= 0) out.push(text.slice(start));
  return out;
}

/** The message field of a raw record as it is written (still escaped): after the first `;`, up to the line's end. */
export function rawMessage(record: string): string {
  const semi = record.indexOf(';');
  if (semi < 0) return '';
  const nl = record.indexOf('\n', semi + 1);
  return record.slice(semi + 1, nl < 0 ? record.length : nl);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** peripety's rate over NPD's, e.g. 2.13 (×); NaN when either is not a positive number. */
export function speedRatio(peripety: number, npd: number): number {
  if (!(peripety > 0) || !(npd > 0) || !Number.isFinite(peripety) || !Number.isFinite(npd)) return NaN;
  return peripety / npd;
}
