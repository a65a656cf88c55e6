// `File: "jsonl"`: events as newline-delimited JSON (the wire format, one
// object per line), for shipping with ordinary log tools.
//
// Files: `StoragePath` names them; `%host%` is the node name (characters
// other than letters, digits, `.`, `_`, `-` become `_`), `%date%` is the UTC
// date (YYYY-MM-DD) of the *event time* (extentions.timestamp_us, else
// timestamp), `%count%` the rotation counter of that date. Placeholders may
// only appear in the file name, and `%count%` must (rotated files need
// distinct names).
//
// Why the event time and not the write time: every file then holds only
// events of its own date, so a query skips files outside its time range and
// can stop at `limit` after the newest dates without reading older ones. An
// event that arrives late (a replay of yesterday's records) goes to a file of
// its own date, not into today's. A file rotates when it would exceed
// MaxSize, and events of a new date start a new file. Without `%date%` in
// the template a file rotates when the event date moves past the date of its
// last event, and a query reads every file.
//
// Durability: with `Fsync: "batch"` (default) a persist resolves after the
// written files (and, for a new file, its directory) are fsynced: an
// acknowledged batch survives an OS crash. With `"never"` it resolves once
// the data is in the kernel: it survives the agent being killed, not an OS
// crash. Acknowledged (docs/architecture.md "Acknowledgement") means written
// to the file, fsynced unless `Fsync: "never"`.
//
// Idempotence: the keys (event_id/event_type) of the last DedupWindow stored
// events are kept in memory, and rebuilt at start from the tail of the most
// recently written files (at most DEDUP_TAIL_BYTES). A replayed event is
// skipped when its key is among them; a replay of events older than that
// window would be stored again. After a failed write the keys of that batch
// are forgotten, so the retry stores them again rather than risk losing any
// (a duplicate after an I/O error, never a loss). A failed batch is first
// cut back out of the files it reached (each file truncated to its size
// before the batch), so a disk-full retry stores every event once; only when
// that truncation fails too may the retry leave a duplicate.
//
// Files: every file under the template is opened with O_NOFOLLOW and must be
// a regular file (a device, FIFO or symbolic link with a matching name is
// refused at start and at open), new files and directories are private
// (0600, 0700) and existing files are made 0600. In Kubernetes mode
// (ctx.confineTo) StoragePath must stay inside the agent's state directory.
//
// A line that does not parse as an event (a write cut short by a crash) is
// skipped with a warning; appending to such a file starts on a fresh line.
import { constants as fsConstants } from 'node:fs';
import { open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { StorageEvent } from '../../events/schema.ts';
import { matchesFilter } from '../../filter/compile.ts';
import type { Logger } from '../../log/logger.ts';
import type { Backend, BackendContext, BackendHealth, BackendPlugin, EventQuery, QueryResult } from '../types.ts';
import { eventTimeUs } from '../../events/time.ts';
import { eventKey, parseEventLine } from '../types.ts';
import { checkRegularOrAbsent, confine, confineReal, describeKind, makeDirs, PRIVATE_FILE_MODE, tightenDirInside, tightenMode, UnsafePathError } from '../../fsutil/safe-files.ts';
import { BACKEND_PLUGINS, JsonlConfig } from './options.ts';
import { eventJson } from '../../events/json.ts';


/** how much of the newest files is read at start to rebuild the recent keys */
const DEDUP_TAIL_BYTES = 32 * 1024 * 1024;
const MiB = 1024 * 1024;
const DAY_US = 86_400_000_000;
const READ_CHUNK = 256 * 1024;
/** a longer line is not an event we wrote: skipped without buffering it whole */
const MAX_LINE_BYTES = 16 * MiB;
/** open files kept at once: the current date plus a few late ones */
const MAX_OPEN_FILES = 4;
const MIN_DATE = '1970-01-01';
const MAX_DATE = '9999-12-31';

/** UTC date of a time in µs, clamped so every event has a file name. */
export function utcDate(us: number): string {
  const ms = Math.floor(us / 1000);
  if (!(ms >= 0)) return MIN_DATE;
  if (ms >= 253_402_300_800_000) return MAX_DATE;
  return new Date(ms).toISOString().slice(0, 10);
}

/** The time range [start, end) of a date's files in µs; the clamped ends are open. */
function dateRangeUs(date: string): [number, number] {
  const start = Date.parse(`${date}T00:00:00Z`) * 1000;
  return [date === MIN_DATE ? -Infinity : start, date === MAX_DATE ? Infinity : start + DAY_US];
}

interface FileInfo {
  path: string;
  /** '' when the template has no %date% */
  date: string;
  count: number;
}

/** The file names of one host under a StoragePath template. */
export class FileTemplate {
  readonly dir: string;
  readonly hasDate: boolean;
  private readonly base: string;
  private readonly pattern: RegExp;

  constructor(template: string, stateDir: string, hostname: string) {
    const full = path.resolve(stateDir, template);
    this.dir = path.dirname(full);
    const host = hostname.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+$/, '_') || 'unknown';
    this.base = path.basename(full).replaceAll('%host%', host);
    this.hasDate = this.base.includes('%date%');
    const re = this.base
      .split(/(%date%|%count%)/)
      .map((part) => {
        if (part === '%date%') return '(?<date>\\d{4}-\\d{2}-\\d{2})';
        if (part === '%count%') return '(?<count>\\d{1,15})';
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('');
    this.pattern = new RegExp(`^${re}$`);
  }

  path(date: string, count: number): string {
    return path.join(this.dir, this.base.replace('%date%', date).replace('%count%', String(count)));
  }

  parse(name: string): FileInfo | null {
    const m = this.pattern.exec(name);
    if (m === null) return null;
    const count = Number(m.groups!.count);
    const date = m.groups!.date ?? '';
    if (date !== '' && Number.isNaN(Date.parse(`${date}T00:00:00Z`))) return null;
    return { path: path.join(this.dir, name), date, count };
  }

  /** This host's files, oldest first (date, then count). */
  async list(): Promise<FileInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const files: FileInfo[] = [];
    for (const n of names) {
      const f = this.parse(n);
      if (f !== null) files.push(f);
    }
    return files.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.count - b.count));
  }
}

interface OpenFile {
  info: FileInfo;
  handle: FileHandle;
  /** bytes fully written: readers stop here */
  size: number;
  dirty: boolean;
  /** a new directory entry to fsync */
  created: boolean;
  /** date of the last event written (for rotation without %date%) */
  lastDate: string;
  closed: boolean;
}

interface Line {
  text: string;
  /** false only for the last line of a file, when it lacks its newline */
  terminated: boolean;
}

/**
 * Lines of [from, to) of a file, streamed in chunks. Starting mid-file the
 * first (partial) line is dropped. Too long lines are skipped and counted.
 */
async function* readLines(file: string, from: number, to: number | null, tooLong: { n: number }): AsyncGenerator<Line> {
  let handle: FileHandle;
  try {
    handle = await openRegular(file, fsConstants.O_RDONLY);
  } catch (err) {
    // Retention may delete a file between listing and reading.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const end = to ?? (await handle.stat()).size;
    let pos = from > 0 ? from - 1 : 0;
    // From mid-file: read from the byte before and drop everything up to the first newline.
    let skipping = from > 0;
    let carry: Buffer[] = [];
    let carryLen = 0;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    while (pos < end) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(READ_CHUNK, end - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl === -1 || nl >= bytesRead) break;
        if (skipping) {
          skipping = false;
        } else if (carryLen + nl - start > MAX_LINE_BYTES) {
          tooLong.n++;
        } else if (carryLen > 0) {
          carry.push(buf.subarray(start, nl));
          yield { text: Buffer.concat(carry).toString('utf8'), terminated: true };
        } else {
          yield { text: buf.toString('utf8', start, nl), terminated: true };
        }
        carry = [];
        carryLen = 0;
        start = nl + 1;
      }
      if (start < bytesRead && !skipping) {
        if (carryLen + bytesRead - start > MAX_LINE_BYTES) {
          tooLong.n++;
          carry = [];
          carryLen = MAX_LINE_BYTES + 1;
          skipping = true;
        } else {
          carry.push(Buffer.from(buf.subarray(start, bytesRead)));
          carryLen += bytesRead - start;
        }
      }
    }
    if (carryLen > 0 && carryLen <= MAX_LINE_BYTES) yield { text: Buffer.concat(carry).toString('utf8'), terminated: false };
  } finally {
    await handle.close();
  }
}

interface Hit {
  ev: StorageEvent;
  timeUs: number;
  /** write order, for equal times */
  seq: number;
}

/** a before b in the result (newest first; equal times: written later first) */
function newer(a: Hit, b: Hit): boolean {
  return a.timeUs > b.timeUs || (a.timeUs === b.timeUs && a.seq > b.seq);
}

/** The `k` newest hits seen, in O(k) memory (a min-heap on age). */
class NewestK {
  private readonly heap: Hit[] = [];
  private readonly k: number;

  constructor(k: number) {
    this.k = k;
  }

  push(h: Hit): void {
    const heap = this.heap;
    if (heap.length < this.k) {
      heap.push(h);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!newer(heap[p]!, heap[i]!)) break;
        [heap[p], heap[i]] = [heap[i]!, heap[p]!];
        i = p;
      }
    } else if (this.k > 0 && newer(h, heap[0]!)) {
      heap[0] = h;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && newer(heap[m]!, heap[l]!)) m = l;
        if (r < heap.length && newer(heap[m]!, heap[r]!)) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
  }

  newestFirst(): Hit[] {
    return this.heap.sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0));
  }
}

/** Insertion-ordered set that forgets its oldest entries beyond a capacity. */
class RecentKeys {
  private readonly set = new Set<string>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  has(k: string): boolean {
    return this.set.has(k);
  }

  add(k: string): void {
    if (this.capacity === 0) return;
    this.set.delete(k);
    this.set.add(k);
    if (this.set.size > this.capacity) this.set.delete(this.set.values().next().value!);
  }

  delete(k: string): void {
    this.set.delete(k);
  }

  get size(): number {
    return this.set.size;
  }
}

export class JsonlBackend implements Backend {
  readonly name: string;
  readonly template: FileTemplate;
  private readonly config: JsonlConfig;
  private readonly log: Logger;
  /** open files by date ('' without %date%), least recently used first */
  private readonly writers = new Map<string, OpenFile>();
  private readonly recent: RecentKeys;
  private chain: Promise<void> = Promise.resolve();
  private started = false;
  private closed = false;
  private lastError: string | null = null;
  /** files already warned about, so that every query does not warn again */
  private readonly warned = new Set<string>();
  private readonly confineTo: string | null;
  private readonly stateDir: string;

  constructor(name: string, config: JsonlConfig, ctx: BackendContext) {
    this.name = name;
    this.config = config;
    this.log = ctx.log.child({ backend: name, file: 'jsonl' });
    this.confineTo = ctx.confineTo ?? null;
    this.stateDir = ctx.stateDir;
    if (this.confineTo !== null) confine(this.confineTo, config.StoragePath, `jsonl backend ${name}: StoragePath`);
    this.template = new FileTemplate(config.StoragePath, ctx.stateDir, ctx.hostname);
    this.recent = new RecentKeys(config.DedupWindow);
  }

  async start(): Promise<void> {
    if (this.started) return;
    try {
      makeDirs(this.template.dir);
      tightenDirInside(this.stateDir, this.template.dir);
      if (this.confineTo !== null) confineReal(this.confineTo, path.join(this.template.dir, 'x'), `jsonl backend ${this.name}: StoragePath`);
      // a device or link with the name of one of our files is refused before anything reads or writes it
      for (const f of await this.template.list()) {
        checkRegularOrAbsent(f.path, `jsonl backend ${this.name}: file`);
        tightenMode(f.path, PRIVATE_FILE_MODE);
      }
      await this.applyRetention();
      await this.rebuildRecentKeys();
    } catch (err) {
      if (err instanceof UnsafePathError) throw err;
      throw new Error(`jsonl backend ${this.name}: cannot start in ${this.template.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.started = true;
    this.closed = false;
    this.lastError = null;
  }

  /** The keys of the last events written before a restart (newest files by mtime, their tails). */
  private async rebuildRecentKeys(): Promise<void> {
    if (this.config.DedupWindow === 0) return;
    const files = await this.template.list();
    const withTime = await Promise.all(
      files.map(async (f) => {
        try {
          const s = await stat(f.path);
          return { f, mtime: s.mtimeMs, size: s.size };
        } catch {
          return null;
        }
      }),
    );
    const byRecency = withTime.filter((x) => x !== null).sort((a, b) => b.mtime - a.mtime);
    let budget = DEDUP_TAIL_BYTES;
    let found = 0;
    const perFile: string[][] = [];
    const tooLong = { n: 0 };
    for (const { f, size } of byRecency) {
      if (budget <= 0 || found >= this.config.DedupWindow) break;
      const from = Math.max(0, size - budget);
      budget -= size - from;
      const keys: string[] = [];
      for await (const line of readLines(f.path, from, size, tooLong)) {
        const ev = parseEventLine(line.text);
        if (ev !== null) keys.push(eventKey(ev));
      }
      perFile.push(keys);
      found += keys.length;
    }
    // Oldest first, so the window forgets the oldest keys first.
    for (let i = perFile.length - 1; i >= 0; i--) for (const k of perFile[i]!) this.recent.add(k);
    this.log.debug({ keys: this.recent.size }, 'jsonl recent keys rebuilt');
  }

  persist(events: readonly StorageEvent[]): Promise<void> {
    // One writer at a time: rotation and retention assume it.
    const run = this.chain.then(() => this.write(events));
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(events: readonly StorageEvent[]): Promise<void> {
    if (!this.started || this.closed) throw new Error(`jsonl backend ${this.name} is not started`);
    // Group by file date, keeping the batch's order inside each group.
    const groups = new Map<string, { key: string; line: string; date: string }[]>();
    const inBatch = new Set<string>();
    for (const ev of events) {
      const key = eventKey(ev);
      if (this.recent.has(key) || inBatch.has(key)) continue;
      inBatch.add(key);
      const date = utcDate(eventTimeUs(ev));
      const g = this.template.hasDate ? date : '';
      let list = groups.get(g);
      if (list === undefined) groups.set(g, (list = []));
      list.push({ key, line: eventJson(ev), date });
    }
    if (groups.size === 0) return;
    const added: string[] = [];
    const touched = new Set<OpenFile>();
    /** each file's size before this batch: a failed batch is cut back to it */
    const before = new Map<OpenFile, number>();
    let createdFile = false;
    try {
      for (const [g, items] of groups) {
        let f = await this.fileFor(g, items[0]!.date);
        let pending: string[] = [];
        let pendingBytes = 0;
        let pendingKeys: string[] = [];
        const flush = async (): Promise<void> => {
          if (pending.length === 0) return;
          if (!before.has(f)) before.set(f, f.size);
          await writeAll(f.handle, Buffer.from(pending.join('')));
          f.size += pendingBytes;
          f.dirty = true;
          touched.add(f);
          for (const k of pendingKeys) {
            this.recent.add(k);
            added.push(k);
          }
          pending = [];
          pendingBytes = 0;
          pendingKeys = [];
        };
        for (const it of items) {
          const text = `${it.line}\n`;
          const bytes = Buffer.byteLength(text);
          const used = f.size + pendingBytes;
          const newDay = !this.template.hasDate && f.lastDate !== '' && it.date > f.lastDate;
          if (used > 0 && (used + bytes > this.config.MaxSize || newDay)) {
            await flush();
            f = await this.rotate(f);
            createdFile = true;
          }
          if (f.created) createdFile = true;
          pending.push(text);
          pendingBytes += bytes;
          pendingKeys.push(it.key);
          if (it.date > f.lastDate) f.lastDate = it.date;
        }
        await flush();
      }
      if (this.config.Fsync === 'batch') await this.sync(touched);
    } catch (err) {
      // Stored once: take the batch back out of every file it reached, so the
      // retry (the manager spools and replays the whole batch) does not
      // store its first part twice. If that fails too, at least once: the
      // retry writes these again rather than trusting a failed write.
      const cut = await this.cutBack(before);
      for (const k of added) this.recent.delete(k);
      if (!cut) this.log.warn({ events: added.length }, 'jsonl could not cut a failed batch out of its files; the retry may store part of it twice');
      this.lastError = `write failed: ${(err as Error).message}`;
      await this.closeAll(false);
      throw new Error(`jsonl backend ${this.name}: ${this.lastError}`, { cause: err });
    }
    this.lastError = null;
    if (createdFile) {
      await this.applyRetention().catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'jsonl retention failed');
      });
    }
  }

  /** Truncate each file back to its size before the failed batch; false when one could not be. */
  private async cutBack(before: Map<OpenFile, number>): Promise<boolean> {
    let ok = true;
    for (const [f, size] of before) {
      try {
        if (!f.closed) await f.handle.truncate(size);
        else {
          // closed by a rotation inside the batch: reopen it (never through a link)
          const h = await openRegular(f.info.path, fsConstants.O_WRONLY);
          try {
            await h.truncate(size);
          } finally {
            await h.close();
          }
        }
        f.size = size;
      } catch (err) {
        ok = false;
        this.log.warn({ path: f.info.path, err: (err as Error).message }, 'jsonl truncate after a failed write failed');
      }
    }
    return ok;
  }

  private async sync(files: Set<OpenFile>): Promise<void> {
    let dir = false;
    for (const f of files) {
      // a file closed by rotation was synced as it closed
      if (f.closed) continue;
      if (f.dirty) await f.handle.sync();
      f.dirty = false;
      if (f.created) dir = true;
      f.created = false;
    }
    if (dir) await syncDir(this.template.dir);
  }

  /** The file that takes the next events of a date group: open, resumed from disk, or new. */
  private async fileFor(group: string, firstDate: string): Promise<OpenFile> {
    const cur = this.writers.get(group);
    if (cur !== undefined) {
      this.writers.delete(group);
      this.writers.set(group, cur);
      return cur;
    }
    const existing = (await this.template.list()).filter((f) => f.date === group);
    const last = existing.at(-1);
    if (last !== undefined) {
      const s = await stat(last.path).catch(() => null);
      if (s !== null && s.size < this.config.MaxSize) {
        const f = await this.openFile(last, false);
        if (!this.template.hasDate) f.lastDate = (await newestEventDate(last.path, f.size)) ?? firstDate;
        return f;
      }
    }
    const f = await this.openFile({ path: this.template.path(group, (last?.count ?? -1) + 1), date: group, count: (last?.count ?? -1) + 1 }, true);
    return f;
  }

  private async rotate(f: OpenFile): Promise<OpenFile> {
    await this.closeFile(f);
    const next = f.info.count + 1;
    return this.openFile({ path: this.template.path(f.info.date, next), date: f.info.date, count: next }, true);
  }

  private async openFile(info: FileInfo, create: boolean): Promise<OpenFile> {
    // O_APPEND: every write lands at the end, and the last byte can be read back (O_RDWR).
    const handle = await openRegular(info.path, fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT, `jsonl backend ${this.name}: file`);
    let size: number;
    try {
      const st = await handle.stat();
      if ((st.mode & 0o077) !== 0) await handle.chmod(PRIVATE_FILE_MODE);
      size = st.size;
      if (size > 0) {
        const b = Buffer.alloc(1);
        await handle.read(b, 0, 1, size - 1);
        if (b[0] !== 0x0a) {
          // The last write was cut short (a crash): its partial line stays, skipped by readers.
          this.log.warn({ path: info.path }, 'jsonl file ends in a partial line; new events start on a fresh line');
          await writeAll(handle, Buffer.from('\n'));
          size += 1;
        }
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    const f: OpenFile = { info, handle, size, dirty: false, created: create || size === 0, lastDate: '', closed: false };
    this.writers.set(info.date, f);
    while (this.writers.size > MAX_OPEN_FILES) {
      const [, lru] = this.writers.entries().next().value!;
      await this.closeFile(lru);
    }
    return f;
  }

  private async closeFile(f: OpenFile): Promise<void> {
    if (this.writers.get(f.info.date) === f) this.writers.delete(f.info.date);
    if (f.closed) return;
    f.closed = true;
    try {
      if (f.dirty && this.config.Fsync === 'batch') await f.handle.sync();
      if (f.created && this.config.Fsync === 'batch') await syncDir(this.template.dir);
      f.dirty = false;
      f.created = false;
    } finally {
      await f.handle.close();
    }
  }

  private async closeAll(flush: boolean): Promise<void> {
    const files = [...this.writers.values()];
    this.writers.clear();
    for (const f of files) {
      try {
        if (flush) await this.closeFile(f);
        else if (!f.closed) {
          f.closed = true;
          await f.handle.close();
        }
      } catch (err) {
        this.log.warn({ path: f.info.path, err: (err as Error).message }, 'jsonl close failed');
      }
    }
  }

  /** Delete the oldest files beyond MaxFiles (never one that is open). */
  private async applyRetention(): Promise<void> {
    const files = await this.template.list();
    const openPaths = new Set([...this.writers.values()].map((f) => f.info.path));
    let excess = files.length - this.config.MaxFiles;
    for (const f of files) {
      if (excess <= 0) break;
      if (openPaths.has(f.path)) continue;
      try {
        await unlink(f.path);
        this.log.debug({ path: f.path }, 'jsonl retention deleted a file');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      excess--;
    }
  }

  async findEvents(query: EventQuery): Promise<QueryResult> {
    if (!this.started) throw new Error(`jsonl backend ${this.name} is not started`);
    const newest = query.newest > 0 ? query.newest : Infinity;
    const oldest = query.oldest > 0 ? query.oldest : -Infinity;
    const limit = query.limit > 0 ? Math.floor(query.limit) : Infinity;
    // Open files: read only what was fully written (a write may be under way).
    const written = new Map([...this.writers.values()].map((f) => [f.info.path, f.size]));
    const files = await this.template.list();
    // Date groups, newest first; inside a group the files in write order.
    const groups: FileInfo[][] = [];
    for (const f of files) {
      const g = groups.at(-1);
      if (g !== undefined && g[0]!.date === f.date) g.push(f);
      else groups.push([f]);
    }
    groups.reverse();
    const events: StorageEvent[] = [];
    let isTruncated = false;
    let seq = 0;
    for (const group of groups) {
      if (this.template.hasDate) {
        const [start, end] = dateRangeUs(group[0]!.date);
        if (start > newest) continue;
        // Groups are disjoint in time and newest first: the rest are older still.
        if (end - 1 <= oldest) break;
      }
      const want = limit === Infinity ? Infinity : limit + 1 - events.length;
      const all: Hit[] = [];
      const top = want === Infinity ? null : new NewestK(want);
      for (const f of group) {
        let bad = 0;
        const tooLong = { n: 0 };
        for await (const line of readLines(f.path, 0, written.get(f.path) ?? null, tooLong)) {
          const ev = parseEventLine(line.text);
          seq++;
          if (ev === null) {
            bad++;
            continue;
          }
          const timeUs = eventTimeUs(ev);
          if (timeUs > newest || timeUs <= oldest || !matchesFilter(query.filter, ev)) continue;
          const hit = { ev, timeUs, seq };
          if (top === null) all.push(hit);
          else top.push(hit);
        }
        if ((bad > 0 || tooLong.n > 0) && !this.warned.has(f.path)) {
          if (this.warned.size > 10_000) this.warned.clear();
          this.warned.add(f.path);
          this.log.warn({ path: f.path, lines: bad + tooLong.n }, 'jsonl lines that are not events were skipped (a write cut short by a crash?)');
        }
      }
      const hits = top === null ? all.sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0)) : top.newestFirst();
      for (const h of hits) events.push(h.ev);
      if (events.length > limit) {
        events.length = limit;
        isTruncated = true;
        break;
      }
    }
    return { events, isTruncated };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.closeAll(true);
    this.started = false;
  }

  health(): BackendHealth {
    if (!this.started) return { ok: false, detail: this.closed ? 'shut down' : 'not started' };
    if (this.lastError !== null) return { ok: false, detail: this.lastError };
    return { ok: true };
  }
}

/**
 * Open a file of ours: never through a symbolic link, never a device or FIFO
 * (O_NONBLOCK: a FIFO does not block the open), created 0600.
 */
async function openRegular(file: string, flags: number, what = 'jsonl file'): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, flags | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY, PRIVATE_FILE_MODE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new UnsafePathError(`${what} ${file} is a symbolic link; it is not followed`);
    if (code === 'ENXIO') throw new UnsafePathError(`${what} ${file} is a FIFO (named pipe); only a regular file is accepted`);
    throw err;
  }
  const st = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw err;
  });
  if (!st.isFile()) {
    await handle.close();
    throw new UnsafePathError(`${what} ${file} is ${describeKind(st)}; only a regular file is accepted`);
  }
  return handle;
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/** A new file's name is durable only once its directory is. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** The newest UTC event date among the last events of a file (its last 64 KiB; late events may come last). */
async function newestEventDate(file: string, size: number): Promise<string | null> {
  let date: string | null = null;
  for await (const line of readLines(file, Math.max(0, size - 65536), size, { n: 0 })) {
    const ev = parseEventLine(line.text);
    if (ev === null) continue;
    const d = utcDate(eventTimeUs(ev));
    if (date === null || d > date) date = d;
  }
  return date;
}

export const jsonlBackend: BackendPlugin<JsonlConfig> = {
  ...BACKEND_PLUGINS.jsonl,
  build(name: string, config: JsonlConfig, ctx: BackendContext): Backend {
    return new JsonlBackend(name, config, ctx);
  },
};
