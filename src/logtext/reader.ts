// Reading a text of kernel log lines in any mix of formats, line by line:
// the state that one line alone cannot carry — a /dev/kmsg record's
// dictionary lines, a journal export's fields, an indented continuation line,
// `dmesg -H`'s times relative to the line before. Pure: lines in, items out.
import { parseKmsgRecord } from '../kmsg/record.ts';
import { journalFields, parseTextLine, stripQuote, type TextContext, type TextFormat, type TextRecord } from './formats.ts';

export type TextItem =
  | { kind: 'kernel'; value: TextRecord; line: number }
  | { kind: 'other'; format: TextFormat; line: number }
  /** a line in no known format, given as it was (the caller may read it as a bare message) */
  | { kind: 'unknown'; text: string; line: number }
  /** a line that looked like a /dev/kmsg record but is not a valid one */
  | { kind: 'error'; error: string; line: number };

const KMSG_PREFIX_RE = /^\d{1,4},\d{1,20},\d{1,20},[^;\n]{0,100};/;
// the lvm2 test suite's elapsed time before the /dev/kmsg records it copies: `[ 0:10.188] 3,2032,1282850590,-;…`
const ELAPSED_BEFORE_KMSG_RE = /^\[ {0,8}\d{1,6}:\d{2}\.\d{3}\] (?=\d{1,4},\d{1,20},\d{1,20},)/;
const EXPORT_FIELD_RE = /^([A-Z0-9_]{1,64})=(.*)$/s;
/** the fields of one journal export entry kept at most (an entry has ~30) */
const MAX_EXPORT_FIELDS = 256;
/** lines joined into one record at most */
const MAX_CONTINUATION_LINES = 64;

export class TextReader {
  private readonly ctx: TextContext;
  private readonly out: (item: TextItem) => void;
  private lineNo = 0;
  /** a kmsg record waiting for its dictionary lines */
  private kmsg: { text: string; line: number } | null = null;
  /** a text-format kernel record waiting for indented continuation lines */
  private held: { value: TextRecord; line: number; parts: number } | null = null;
  /** a journal export entry being read */
  private entry: { fields: Map<string, string>; line: number } | null = null;
  /** `dmesg -H`: the last absolute time, for the `[+0.000123]` lines after it */
  private lastWallUs: number | null = null;
  /** the mail-quote depth of the line before (`> > ` is 2) */
  private quoteDepth = 0;

  constructor(ctx: TextContext, out: (item: TextItem) => void) {
    this.ctx = ctx;
    this.out = out;
  }

  line(raw: string): void {
    this.lineNo++;
    let text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    // a mail quote (`> `, `> > > `) is taken off first: what it quotes may be indented, a continuation line
    // of the record before it at the same quote depth (another depth is another mail's paste)
    let depth = 0;
    if (text.charCodeAt(0) === 62) {
      const stripped = stripQuote(text);
      for (let i = 0; i < text.length - stripped.length; i++) if (text.charCodeAt(i) === 62) depth++;
      text = stripped;
    }
    if (depth !== this.quoteDepth) {
      this.quoteDepth = depth;
      this.flushKmsg();
      this.flushHeld();
    }

    if (this.entry !== null) {
      if (text === '') return this.endEntry();
      const f = EXPORT_FIELD_RE.exec(text);
      if (f && this.entry.fields.size < MAX_EXPORT_FIELDS) this.entry.fields.set(f[1]!, f[2]!);
      return;
    }
    if (this.kmsg !== null && text.charCodeAt(0) === 32 && text.trim() !== '') {
      this.kmsg.text += text + '\n';
      return;
    }
    this.flushKmsg();

    if (text.trim() === '') {
      this.flushHeld();
      return;
    }
    if (text.charCodeAt(0) === 91 && ELAPSED_BEFORE_KMSG_RE.test(text)) text = text.replace(ELAPSED_BEFORE_KMSG_RE, '');
    if (KMSG_PREFIX_RE.test(text)) {
      this.flushHeld();
      this.kmsg = { text: text + '\n', line: this.lineNo };
      return;
    }
    if (/^__(?:CURSOR|REALTIME_TIMESTAMP)=/.test(text)) {
      this.flushHeld();
      this.entry = { fields: new Map(), line: this.lineNo };
      const f = EXPORT_FIELD_RE.exec(text)!;
      this.entry.fields.set(f[1]!, f[2]!);
      return;
    }

    const indented = /^\s/.test(text);
    const parsed = parseTextLine(indented ? text.trimStart() : text, this.ctx);
    if (parsed.kind === 'unknown' && indented && this.held !== null && this.held.parts < MAX_CONTINUATION_LINES) {
      // an indented line that is not a record of its own continues the record before it
      const r = this.held.value.record;
      this.held = { ...this.held, value: { ...this.held.value, record: { ...r, message: `${r.message}\n${text.trim()}` } }, parts: this.held.parts + 1 };
      return;
    }
    this.flushHeld();
    if (parsed.kind === 'other') return this.out({ kind: 'other', format: parsed.format, line: this.lineNo });
    if (parsed.kind === 'unknown') return this.out({ kind: 'unknown', text: text.trim(), line: this.lineNo });
    let value = parsed.value;
    if (value.format === 'dmesg-human') {
      if (value.wallUs !== null && value.wallUs < 0) {
        // relative: `-(delta) - 1` (formats.ts); added to the line before, or no time if there was none
        const delta = -value.wallUs - 1;
        value = { ...value, wallUs: this.lastWallUs === null ? null : this.lastWallUs + delta };
      }
      this.lastWallUs = value.wallUs;
    }
    this.held = { value, line: this.lineNo, parts: 1 };
  }

  /** The input paused or ended: hand on what is held. */
  flush(): void {
    this.flushKmsg();
    this.flushHeld();
    if (this.entry !== null) this.endEntry();
  }

  private flushKmsg(): void {
    if (this.kmsg === null) return;
    const { text, line } = this.kmsg;
    this.kmsg = null;
    const r = parseKmsgRecord(text);
    if (!r.ok) this.out({ kind: 'error', error: r.error, line });
    else this.out({ kind: 'kernel', value: { format: 'kmsg', record: r.record, host: null, wallUs: null }, line });
  }

  private flushHeld(): void {
    if (this.held === null) return;
    const { value, line } = this.held;
    this.held = null;
    this.out({ kind: 'kernel', value, line });
  }

  private endEntry(): void {
    const e = this.entry!;
    this.entry = null;
    const parsed = journalFields((k) => e.fields.get(k), 'journal-export');
    if (parsed.kind === 'kernel') this.out({ kind: 'kernel', value: parsed.value, line: e.line });
    else if (parsed.kind === 'other') this.out({ kind: 'other', format: 'journal-export', line: e.line });
    else this.out({ kind: 'unknown', text: '', line: e.line });
  }
}

/** A whole text → its items (tests and small inputs). */
export function readText(text: string, ctx: TextContext): TextItem[] {
  const items: TextItem[] = [];
  const r = new TextReader(ctx, (i) => items.push(i));
  for (const l of text.split('\n')) r.line(l);
  r.flush();
  return items;
}
