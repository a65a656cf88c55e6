// The on-disk spool of one storage backend (docs/storage.md "Delivery guarantees"): where events go
// while the backend is down or too slow, replayed in order once it keeps up.
//
// Layout under `<stateDir>/spool/<backend>/`: append-only segment files
// `000000000001.jsonl`, … (one JSON event per line) and `offset.json`, the
// replay position in the oldest segment. Every append is fsynced before it
// resolves: a spooled event counts as acknowledged, so the kernel read
// position may move past it. The reader advances the offset (and deletes a
// segment) only after the backend stored the batch; a crash in between
// replays the batch again, which backends absorb (idempotent by eventKey).
// New writes after a restart always start a new segment, so a line torn by a
// crash stays at the end of an old segment, where the reader skips it.
//
// Sharing: while the agent switches configurations, an old and a new manager
// both have a worker for the same backend name, hence the same directory. One
// SharedSpool per directory (in this process) serializes their operations;
// both append, only the most recently opened handle reads (replays), and when
// it closes the role passes back. One agent process owns a state directory.
import { constants as fsConstants } from 'node:fs';
import { lstat, open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import { parseEventLine } from './types.ts';
import { makeDirs, MAX_STATE_FILE_BYTES, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, readRegularFile, tightenMode } from '../fsutil/safe-files.ts';
import { eventJson } from '../events/json.ts';

export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_SPOOL_SEGMENT_BYTES = 8 * 1024 * 1024;
const SEGMENT_RE = /^(\d{12})\.jsonl$/;
const OFFSET_FILE = 'offset.json';
const READ_CHUNK = 256 * 1024;

const OffsetFile = z.object({ seq: z.number().int().nonnegative(), offset: z.number().int().nonnegative() });

interface SpoolOptions {
  dir: string;
  /** cap on the bytes of all segment files; an append that does not fit is cut, the rest is the caller's to drop */
  maxBytes?: number;
  /** a new segment starts once the current one is this large */
  segmentBytes?: number;
  log: Logger;
}

/** Events read for replay; commit it once the backend stored them. */
interface SpoolBatch {
  readonly events: StorageEvent[];
  /** lines skipped as unreadable (torn by a crash, edited by hand) */
  readonly corrupt: number;
  /** @internal where the reader stands after this batch */
  readonly seq: number;
  readonly end: number;
}

export interface SpoolHandle {
  readonly dir: string;
  /** bytes of all segment files (including the replayed head of the oldest) */
  readonly bytes: number;
  /** events left to replay */
  readonly hasData: boolean;
  /** true for the handle that replays (the most recently opened one) */
  readonly isReader: boolean;
  /** Append in order and fsync; resolves with how many events fit under the byte cap (a prefix). Rejects on I/O errors. */
  append(events: readonly StorageEvent[]): Promise<number>;
  /** The next events to replay (at most `max`), or null when empty or not the reader. */
  read(max: number): Promise<SpoolBatch | null>;
  /** Advance past a batch the backend stored. */
  commit(batch: SpoolBatch): Promise<void>;
  close(): Promise<void>;
}

interface Segment {
  seq: number;
  size: number;
}

const shared = new Map<string, SharedSpool>();

/** Open (or join) the spool in `opts.dir`; `onData` is called when another handle appended or this one became the reader. */
export async function openSpool(opts: SpoolOptions, onData: () => void): Promise<SpoolHandle> {
  const dir = path.resolve(opts.dir);
  let s = shared.get(dir);
  if (!s) {
    s = new SharedSpool(dir, opts);
    shared.set(dir, s);
  }
  const handle = new Handle(s, onData);
  s.handles.push(handle);
  try {
    await s.ready;
  } catch (err) {
    await s.release(handle);
    throw err;
  }
  return handle;
}

class Handle implements SpoolHandle {
  readonly s: SharedSpool;
  readonly onData: () => void;
  closed = false;

  constructor(s: SharedSpool, onData: () => void) {
    this.s = s;
    this.onData = onData;
  }

  get dir(): string {
    return this.s.dir;
  }

  get bytes(): number {
    return this.closed ? 0 : this.s.totalBytes;
  }

  get hasData(): boolean {
    return !this.closed && this.s.hasData;
  }

  get isReader(): boolean {
    return !this.closed && this.s.reader() === this;
  }

  append(events: readonly StorageEvent[]): Promise<number> {
    if (this.closed) return Promise.reject(new Error('spool closed'));
    return this.s.exclusive(() => this.s.append(events, this));
  }

  read(max: number): Promise<SpoolBatch | null> {
    if (this.closed) return Promise.resolve(null);
    return this.s.exclusive(() => (this.s.reader() === this ? this.s.read(max) : Promise.resolve(null)));
  }

  commit(batch: SpoolBatch): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.s.exclusive(() => this.s.commit(batch.seq, batch.end));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.s.release(this);
  }
}

class SharedSpool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly log: Logger;
  readonly handles: Handle[] = [];
  readonly ready: Promise<void>;
  /** oldest first; the read position is in segments[0] */
  private segments: Segment[] = [];
  private readOff = 0;
  private nextSeq = 1;
  /** the segment appends go to (always the last one), null until the first append of this run */
  private writer: { fh: FileHandle; seg: Segment } | null = null;
  private readerFh: { fh: FileHandle; seq: number } | null = null;
  totalBytes = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.maxBytes = Math.max(1, opts.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES);
    this.segmentBytes = Math.max(1, opts.segmentBytes ?? Math.min(DEFAULT_SPOOL_SEGMENT_BYTES, Math.ceil(this.maxBytes / 4)));
    this.log = opts.log;
    this.ready = this.exclusive(() => this.load());
    // a failed load is reported to every opener; keep the chain usable
    this.ready.catch(() => {});
  }

  get hasData(): boolean {
    return this.totalBytes - this.readOff > 0;
  }

  reader(): Handle | undefined {
    return this.handles[this.handles.length - 1];
  }

  /** Run operations one at a time, in call order. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private file(seq: number): string {
    return path.join(this.dir, `${String(seq).padStart(12, '0')}.jsonl`);
  }

  private async load(): Promise<void> {
    // Private, also when an earlier version left them 0755/0644: spooled events are kernel messages.
    // (only the spool's own directory: its parent may be anything, e.g. a temporary directory in tests;
    // the agent makes <state-dir>/spool private at start)
    makeDirs(this.dir);
    tightenMode(this.dir, PRIVATE_DIR_MODE, true);
    const names = await readdir(this.dir);
    const segs: Segment[] = [];
    for (const n of names) {
      const m = SEGMENT_RE.exec(n);
      if (!m) continue;
      // lstat: a link or device with a segment's name is ignored, never followed
      const st = await lstat(path.join(this.dir, n));
      if (!st.isFile()) {
        this.log.warn({ spool: this.dir, file: n }, 'spool: not a regular file; ignored');
        continue;
      }
      tightenMode(path.join(this.dir, n), PRIVATE_FILE_MODE);
      segs.push({ seq: Number(m[1]), size: st.size });
    }
    segs.sort((a, b) => a.seq - b.seq);
    let off: z.infer<typeof OffsetFile> | null = null;
    try {
      const r = OffsetFile.safeParse(JSON.parse(readRegularFile(path.join(this.dir, OFFSET_FILE), 'spool offset', { maxBytes: MAX_STATE_FILE_BYTES, noFollow: true })));
      // an unreadable offset replays the oldest segment from its start: duplicates, never loss
      if (r.success) off = r.data;
    } catch {
      off = null;
    }
    if (off !== null) {
      // segments before the offset were fully replayed; the crash came before their deletion
      while (segs.length > 0 && segs[0]!.seq < off.seq) await this.removeFile(this.file(segs.shift()!.seq));
      if (segs.length > 0 && segs[0]!.seq === off.seq) this.readOff = Math.min(off.offset, segs[0]!.size);
    }
    this.segments = segs;
    this.totalBytes = segs.reduce((a, s) => a + s.size, 0);
    this.nextSeq = segs.length > 0 ? segs[segs.length - 1]!.seq + 1 : 1;
    await unlink(path.join(this.dir, `${OFFSET_FILE}.tmp`)).catch(() => {});
    // an empty leftover: start clean
    if (!this.hasData) await this.clear();
    else this.log.info({ spool: this.dir, bytes: this.totalBytes - this.readOff, segments: segs.length }, 'spool holds events from an earlier run: replaying them first');
  }

  async append(events: readonly StorageEvent[], from: Handle): Promise<number> {
    let n = 0;
    let bytes = 0;
    const parts: string[] = [];
    for (const ev of events) {
      const line = `${eventJson(ev)}\n`;
      const b = Buffer.byteLength(line);
      if (this.totalBytes + bytes + b > this.maxBytes) break;
      parts.push(line);
      bytes += b;
      n++;
    }
    if (n === 0) return 0;
    const buf = Buffer.from(parts.join(''));
    if (this.writer === null || this.writer.seg.size >= this.segmentBytes) await this.rotate();
    const w = this.writer!;
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await w.fh.write(buf, done, buf.length - done);
        done += bytesWritten;
      }
      await w.fh.datasync();
    } catch (err) {
      // part of this append may be on disk: seal the segment at its real size; the reader skips a torn line,
      // and the caller keeps the events (a second copy is absorbed by the backend's idempotency)
      this.writer = null;
      await w.fh.close().catch(() => {});
      try {
        const size = (await lstat(this.file(w.seg.seq))).size;
        this.totalBytes += size - w.seg.size;
        w.seg.size = size;
      } catch {
        // the file is gone or unreadable: the reader finds out
      }
      throw err;
    }
    w.seg.size += buf.length;
    this.totalBytes += buf.length;
    const r = this.reader();
    if (r && r !== from) r.onData();
    return n;
  }

  private async rotate(): Promise<void> {
    if (this.writer) {
      const old = this.writer;
      this.writer = null;
      await old.fh.close();
    }
    const seg: Segment = { seq: this.nextSeq++, size: 0 };
    const fh = await open(this.file(seg.seq), 'ax', 0o600);
    this.segments.push(seg);
    this.writer = { fh, seg };
    // the new file's directory entry must survive a crash too
    try {
      const d = await open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      // some filesystems refuse fsync on a directory; the data itself is synced per append
    }
  }

  async read(max: number): Promise<SpoolBatch | null> {
    let skipped = 0;
    for (;;) {
      const head = this.segments[0];
      if (head === undefined || !this.hasData) return null; // skipped lines before the end were logged
      if (this.readOff >= head.size) {
        // consumed (or empty after a failed append): move on
        await this.advance();
        continue;
      }
      let fh: FileHandle;
      try {
        fh = await this.readHandle(head.seq);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // removed behind our back: its events are gone; step over it rather than retry forever
        this.log.error({ spool: this.dir, segment: head.seq, bytes: head.size - this.readOff }, 'spool: a segment file disappeared; its events are lost');
        this.readOff = head.size;
        await this.advance();
        continue;
      }
      const remain = head.size - this.readOff;
      let chunk = Math.min(remain, READ_CHUNK);
      let buf = Buffer.alloc(0);
      let got = 0;
      let lastNl = -1;
      for (;;) {
        buf = Buffer.allocUnsafe(chunk);
        got = (await fh.read(buf, 0, chunk, this.readOff)).bytesRead;
        lastNl = got > 0 ? buf.lastIndexOf(0x0a, got - 1) : -1;
        if (lastNl >= 0 || chunk >= remain || got < chunk) break;
        chunk = Math.min(remain, chunk * 2);
      }
      const events: StorageEvent[] = [];
      let corrupt = 0;
      let consumed = 0;
      if (lastNl < 0) {
        // no line end up to the segment's end: a line torn by a crash (or a file cut short behind our back)
        corrupt = 1;
        consumed = remain;
      } else {
        // byte offsets on the buffer: a newline byte never occurs inside a multi-byte UTF-8 sequence
        let start = 0;
        while (events.length < max && start <= lastNl) {
          const nl = buf.indexOf(0x0a, start);
          const ev = parseEventLine(buf.toString('utf8', start, nl));
          start = nl + 1;
          if (ev === null) corrupt++;
          else events.push(ev);
        }
        consumed = start;
      }
      if (corrupt > 0) this.log.warn({ spool: this.dir, segment: head.seq, lines: corrupt }, 'spool: skipped unreadable lines');
      skipped += corrupt;
      const batch: SpoolBatch = { events, corrupt: skipped, seq: head.seq, end: this.readOff + consumed };
      if (events.length > 0) return batch;
      // nothing readable in this stretch: step over it and go on
      await this.commit(batch.seq, batch.end);
    }
  }

  private async readHandle(seq: number): Promise<FileHandle> {
    if (this.readerFh && this.readerFh.seq === seq) return this.readerFh.fh;
    if (this.readerFh) await this.readerFh.fh.close().catch(() => {});
    this.readerFh = null;
    const fh = await open(this.file(seq), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    this.readerFh = { fh, seq };
    return fh;
  }

  async commit(seq: number, end: number): Promise<void> {
    const head = this.segments[0];
    // stale (a batch read before a crash-free re-read already moved on)
    if (head === undefined || head.seq !== seq || end <= this.readOff) return;
    this.readOff = Math.min(end, head.size);
    await this.advance();
  }

  /** Drop fully replayed segments, then record the position (or clear an empty spool). */
  private async advance(): Promise<void> {
    while (this.segments.length > 0) {
      const head = this.segments[0]!;
      if (this.readOff < head.size) break;
      if (this.segments.length === 1) {
        // the last segment is the one appends go to: the spool is empty
        await this.clear();
        return;
      }
      this.segments.shift();
      this.totalBytes -= head.size;
      this.readOff = 0;
      await this.closeReadHandle();
      await this.removeFile(this.file(head.seq));
    }
    await this.writeOffset();
  }

  /** Best effort: a segment that stays behind is replayed again after a restart (duplicates, never loss). */
  private async removeFile(file: string): Promise<void> {
    try {
      await unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ spool: this.dir, file, err: (err as Error).message }, 'spool: could not remove a replayed file');
    }
  }

  private async writeOffset(): Promise<void> {
    const head = this.segments[0];
    if (head === undefined) return;
    // Not fsynced: a lost update only replays a batch again, which the backend absorbs.
    const tmp = path.join(this.dir, `${OFFSET_FILE}.tmp`);
    // never through a link planted under the temporary name
    await writeFile(tmp, JSON.stringify({ seq: head.seq, offset: this.readOff }), {
      mode: PRIVATE_FILE_MODE, flag: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW,
    });
    await rename(tmp, path.join(this.dir, OFFSET_FILE));
  }

  private async closeReadHandle(): Promise<void> {
    if (this.readerFh) await this.readerFh.fh.close().catch(() => {});
    this.readerFh = null;
  }

  private async closeWriter(): Promise<void> {
    if (!this.writer) return;
    const w = this.writer;
    this.writer = null;
    await w.fh.close().catch(() => {});
  }

  /** Everything replayed: remove the files, start the next outage with a fresh segment. */
  private async clear(): Promise<void> {
    await this.closeReadHandle();
    await this.closeWriter();
    const segs = this.segments;
    this.segments = [];
    this.totalBytes = 0;
    this.readOff = 0;
    // the offset first: if a segment cannot be removed, it is replayed from its start after a restart
    await this.removeFile(path.join(this.dir, OFFSET_FILE));
    for (const s of segs) await this.removeFile(this.file(s.seq));
  }

  async release(h: Handle): Promise<void> {
    const wasReader = this.reader() === h;
    const i = this.handles.indexOf(h);
    if (i >= 0) this.handles.splice(i, 1);
    if (this.handles.length === 0) {
      if (shared.get(this.dir) === this) shared.delete(this.dir);
      await this.exclusive(async () => {
        await this.closeReadHandle();
        await this.closeWriter();
      });
      return;
    }
    if (wasReader) this.reader()!.onData();
  }
}
