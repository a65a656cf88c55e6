// `File: "sqlite"`: the default store on every node, an embedded database
// through node:sqlite (no native dependency of our own).
//
// Durability: the database runs in WAL mode. With `Synchronous: "NORMAL"`
// (default) a persist resolves once its transaction is committed to the WAL:
// it survives the agent being killed (SIGKILL, OOM), and only an OS crash or
// power loss can lose the last committed transactions (never corrupt the
// database). `Synchronous: "FULL"` fsyncs the WAL at every commit, so an
// acknowledged batch survives an OS crash too, at the cost of one fsync per
// batch. So acknowledged (docs/architecture.md "Acknowledgement") means
// committed: on disk in the WAL.
//
// Threads (issue 14): DatabaseSync is synchronous, and inserting a storm's
// batches on the event loop made the kmsg reader wait for the disk (41% of
// the loop). So writing runs in a worker_threads Worker of its own
// (sqlite-thread.ts) with its own connection: persist() posts the batch's
// column values and resolves when the thread answers that its transaction
// committed; retention (chunks of RETENTION_CHUNK rows, yielding between
// them) and the WAL checkpoints (once per 64 MiB of WAL, around 100 ms) run
// there too. Opening, the file checks, the schema and queries stay on the
// main thread with a second connection (WAL lets it read beside the writer):
// a query needs the compiled filter, a function that cannot be posted, and
// stops reading rows at limit+1 (an unbounded query, limit 0, reads its
// whole range). ReadOnly has no thread (nothing to write).
//
// The thread's failures are persist rejections (the storage worker then
// spools the batch and retries, src/storage/worker.ts): an SQLite error
// (disk full, I/O error) is the thread's answer; the thread dying (a crash,
// out of memory) rejects every batch it had not answered, and the next
// persist starts a new thread, no sooner than a backoff (THREAD_RESTART_*)
// after the last start. A batch whose COMMIT ran but whose answer was lost is
// written again by the retry: INSERT OR IGNORE keeps one copy.
//
// Idempotence: UNIQUE(event_id, event_type) with INSERT OR IGNORE, so a
// replayed batch, however old, is stored once.
//
// Files: the database and its -wal, -shm and -journal siblings must each be
// a regular file or absent (checked with lstat: a symbolic link is refused,
// not followed), because SQLite would otherwise open a block device as a
// database and write its header over the first 32 KiB. A new database file is
// created 0600 by us (SQLite gives -wal/-shm the database's mode), and
// existing ones are made 0600. In Kubernetes mode (ctx.confineTo) Path must
// stay inside the agent's state directory.
//
// Retention: rows older than MaxAgeDays (event time against the wall clock)
// and the oldest rows beyond MaxRows are deleted at start, every minute and
// after a batch that took the table over MaxRows, so the table can exceed
// MaxRows briefly (by at most about one batch).
import { closeSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { SEVERITIES, SYSTEMS, type StorageEvent } from '../../events/schema.ts';
import type { FilterHints } from '../../filter/types.ts';
import type { Logger } from '../../log/logger.ts';
import type { Backend, BackendContext, BackendHealth, BackendPlugin, EventQuery, QueryResult } from '../types.ts';
import { eventTimeUs, nowUs } from '../../events/time.ts';
import { checkRegularOrAbsent, confine, confineReal, makeDirs, openPrivateFile, PRIVATE_FILE_MODE, tightenDirInside, tightenMode, UnsafePathError } from '../../fsutil/safe-files.ts';
import { isCorruptDatabaseError, quarantineCorrupt } from '../quarantine.ts';
import { BACKEND_PLUGINS, SqliteConfig } from './options.ts';
import { COLUMN_COUNT, type ThreadReply, type ThreadRequest, type ThreadStart } from './sqlite-protocol.ts';


/** The schema this code writes (PRAGMA user_version); a migration bumps it. */
const SCHEMA_VERSION = 1;
/** rows per DELETE: a chunk on a large database takes a few milliseconds */
export const RETENTION_CHUNK = 1000;
const RETENTION_INTERVAL_MS = 60_000;
/** also run retention after this many batches, so a burst is trimmed before the next tick */
const RETENTION_EVERY_BATCHES = 256;
const DAY_US = 86_400_000_000;
/** 64 MiB of 4 KiB pages */
const WAL_CHECKPOINT_PAGES = 16_384;
/**
 * The writer's page cache (KiB). 4 MiB, not 16: under the storm bench (200,000
 * lines at 10k/s, two alternated pairs) 16 MiB filled up and stayed resident:
 * peak RSS 154–160 vs 143–146 MiB, 120 vs 105–106 MiB after the storm, storm
 * CPU per record no worse (41–42 vs 38–40 µs). The index pages that fall out
 * of it are still in the kernel's page cache; bench/storage.bench.ts alone pays
 * ~2 µs more per event for it (13.5 → 15.6).
 */
const WRITER_CACHE_KIB = 4096;
/** a wait for another writer's lock; in the thread, so it blocks no event loop */
const BUSY_TIMEOUT_MS = 1000;
/** the thread's start (and a restart after it died) must answer within this */
const THREAD_OPEN_TIMEOUT_MS = 30_000;
/** shutdown waits this long for the thread to finish its batch and close, then terminates it */
const THREAD_CLOSE_TIMEOUT_MS = 10_000;
const THREAD_RESTART_MIN_MS = 250;
const THREAD_RESTART_MAX_MS = 30_000;
/**
 * A thread without a request for this long is stopped and its isolate's
 * heap given back: the idle agent's RSS 45 s after its start came back to
 * within a few MiB of the agent without a thread (with the thread running:
 * +21 MiB; docs/performance.md). The next batch starts one (50–130 ms
 * measured on a busy machine). Most nodes log a storage event now and then,
 * so most of the time there is no thread.
 */
export const THREAD_IDLE_MS = 30_000;
/**
 * A batch slower than this (post to answer) is logged, at most once per
 * SLOW_LOG_INTERVAL_MS with a count: it is what fills the storage worker's
 * queue (and, 5000 events behind, sends events to the spool), so the log
 * says where the time went: inserting, COMMIT (with SQLite's automatic WAL
 * checkpoint), or waiting for the thread (queued behind other work, or not
 * scheduled on a busy machine).
 */
const SLOW_BATCH_MS = 250;
const SLOW_LOG_INTERVAL_MS = 10_000;
/** while the thread is stopped for idleness, periodic retention (which would start it) runs at most this often */
const IDLE_RETENTION_MS = 3_600_000;
/**
 * The thread's V8 heap. It holds one batch of column values at a time (a
 * few hundred KiB from the storage worker; a caller may post bigger ones,
 * the storage bench 50,000 events): the old-generation limit is a cap
 * against a runaway, not a reservation (RSS follows use). The young
 * generation is what a batch's garbage goes through: 2 MiB took ~3 MiB less
 * RSS than 4 and ~7 less than 8 over 100,000 rows (docs/performance.md,
 * "Storage off the event loop"), 1 no less than 2.
 */
const THREAD_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 2 } as const;
/** the thread's file: .ts when we run from source, .js once compiled */
const THREAD_URL = new URL(`./sqlite-thread${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url);
/** the database file and the files SQLite opens next to it */
const SIBLINGS = ['', '-wal', '-shm', '-journal'] as const;

const COLUMNS = [
  'time_us', 'timestamp', 'hostname', 'severity', 'system', 'event_type',
  'event_id', 'dev_wwid', 'dev_name', 'msg', 'extentions',
] as const;

const SCHEMA_V1 = `
CREATE TABLE events (
  time_us    INTEGER NOT NULL,
  timestamp  INTEGER NOT NULL,
  hostname   TEXT NOT NULL,
  severity   TEXT NOT NULL,
  system     TEXT NOT NULL,
  event_type TEXT NOT NULL,
  event_id   TEXT NOT NULL,
  dev_wwid   TEXT NOT NULL,
  dev_name   TEXT NOT NULL,
  msg        TEXT NOT NULL,
  extentions TEXT NOT NULL,
  UNIQUE (event_id, event_type)
);
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_system_time ON events (system, time_us);
CREATE INDEX events_type_time ON events (event_type, time_us);
CREATE INDEX events_wwid_time ON events (dev_wwid, time_us);
CREATE INDEX events_host_time ON events (hostname, time_us);
PRAGMA user_version = 1;
`;

/** hint fields that may go into SQL, in a fixed order so equal hint sets give the same statement */
const HINT_FIELDS = ['system', 'event_type', 'dev_wwid', 'hostname', 'event_id', 'dev_name'] as const;
const SEVERITY_SET: ReadonlySet<string> = new Set(SEVERITIES);
const SYSTEM_SET: ReadonlySet<string> = new Set(SYSTEMS);
const QUERY_CACHE_MAX = 64;

interface RetentionResult {
  byAge: number;
  byRows: number;
}

export class SqliteBackend implements Backend {
  readonly name: string;
  readonly path: string;
  private readonly config: SqliteConfig;
  private readonly log: Logger;
  /** the main thread's connection: opening, the schema, queries */
  private db: DatabaseSync | null = null;
  /** the writer (not ReadOnly): its thread, null between a death and the restart */
  private thread: Worker | null = null;
  /** the thread's start in progress (shared by the persists that wait for it) */
  private threadStarting: Promise<Worker> | null = null;
  private threadStartedAt = -Infinity;
  private restartDelayMs = THREAD_RESTART_MIN_MS;
  /** stops the thread when no request came for threadIdleMs */
  private idleTimer: NodeJS.Timeout | null = null;
  /** the thread being closed (idle or shutdown): its exit is expected */
  private stoppingThread: Worker | null = null;
  /** the idle stop in progress: a batch waits for it, then starts a new thread */
  private retiring: Promise<void> | null = null;
  /** the thread was stopped for idleness (not dead): the next batch starts one without backoff */
  private idleStopped = false;
  private lastRetentionAt = -Infinity;
  private slowBatches = 0;
  private lastSlowLog = -Infinity;
  private readonly threadIdleMs: number;
  private readonly pending = new Map<number, { resolve: (r: ThreadReply & { ok: true }) => void; reject: (e: Error) => void; op: ThreadRequest['op'] }>();
  private nextId = 1;
  private readonly queries = new Map<string, StatementSync>();
  /** exact, as the thread counts it: count(*) at start plus inserts minus deletes */
  private rows = 0;
  private batchesSinceRetention = 0;
  /** deleted by retention since runRetention() last reported */
  private unreported: RetentionResult = { byAge: 0, byRows: 0 };
  private retention: Promise<RetentionResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private lastError: string | null = null;
  private readonly confineTo: string | null;
  private readonly stateDir: string;

  /** `threadIdleMs`: tests shorten THREAD_IDLE_MS */
  constructor(name: string, config: SqliteConfig, ctx: BackendContext, tuning: { threadIdleMs?: number } = {}) {
    this.name = name;
    this.threadIdleMs = tuning.threadIdleMs ?? THREAD_IDLE_MS;
    this.config = config;
    this.log = ctx.log.child({ backend: name, file: 'sqlite' });
    this.confineTo = ctx.confineTo ?? null;
    this.stateDir = ctx.stateDir;
    const p = config.Path ?? 'events.db';
    this.path = this.confineTo !== null ? confine(this.confineTo, p, `sqlite backend ${name}: Path`) : path.resolve(ctx.stateDir, p);
  }

  /**
   * Refuse a database path (or sibling) that is not a regular file; create
   * a missing database file privately, and make existing files 0600.
   */
  private checkFiles(ro: boolean): void {
    const what = `sqlite backend ${this.name}: Path`;
    if (!ro) {
      makeDirs(path.dirname(this.path));
      tightenDirInside(this.stateDir, path.dirname(this.path));
    }
    if (this.confineTo !== null) confineReal(this.confineTo, this.path, what);
    for (const suffix of SIBLINGS) checkRegularOrAbsent(`${this.path}${suffix}`, what);
    if (ro) return;
    if (checkRegularOrAbsent(this.path, what) === 'absent') {
      try {
        closeSync(openPrivateFile(this.path, what, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL));
      } catch (err) {
        // created by someone else in between: checked again below
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    for (const suffix of SIBLINGS) {
      checkRegularOrAbsent(`${this.path}${suffix}`, what);
      tightenMode(`${this.path}${suffix}`, PRIVATE_FILE_MODE);
    }
  }

  async start(): Promise<void> {
    if (this.db !== null) return;
    this.closing = false;
    const ro = this.config.ReadOnly;
    let db: DatabaseSync;
    try {
      this.checkFiles(ro);
    } catch (err) {
      if (err instanceof UnsafePathError) throw err;
      throw new Error(`sqlite backend ${this.name}: cannot open ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      // Short: a wait for a lock blocks the event loop (only another writer on the same file holds one).
      db = new DatabaseSync(this.path, { readOnly: ro, timeout: 1000 });
    } catch (err) {
      throw new Error(`sqlite backend ${this.name}: cannot open ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.prepareDatabase(db);
    } catch (err) {
      db.close();
      if (ro || !isCorruptDatabaseError(err)) throw new Error(`sqlite backend ${this.name}: ${this.path}: ${(err as Error).message}`, { cause: err });
      // not a database (any more): move it aside and start a fresh one (storage/quarantine.ts)
      const aside = quarantineCorrupt(this.path);
      this.log.error({ path: this.path, movedTo: aside, err: (err as Error).message }, 'corrupt database moved aside; starting a fresh one');
      // the fresh file is created private, like the first one
      this.checkFiles(false);
      db = new DatabaseSync(this.path, { readOnly: false, timeout: 1000 });
      try {
        this.prepareDatabase(db);
      } catch (err2) {
        db.close();
        throw new Error(`sqlite backend ${this.name}: ${this.path}: ${(err2 as Error).message}`, { cause: err2 });
      }
    }
    this.db = db;
    if (!ro) {
      // -wal and -shm exist now: private too (an old -wal may have had any mode)
      for (const suffix of SIBLINGS) tightenMode(`${this.path}${suffix}`, PRIVATE_FILE_MODE);
      try {
        await this.startThread();
      } catch (err) {
        this.db = null;
        db.close();
        throw new Error(`sqlite backend ${this.name}: ${this.path}: ${(err as Error).message}`, { cause: err });
      }
      this.timer = setInterval(() => {
        // no thread started for it every minute while idle; age retention can wait an hour
        if (!this.idleStopped || performance.now() - this.lastRetentionAt >= IDLE_RETENTION_MS) this.scheduleRetention();
      }, RETENTION_INTERVAL_MS);
      // Retention must not keep the agent alive on its own.
      this.timer.unref();
      this.scheduleRetention();
    }
    this.lastError = null;
    this.log.debug({ path: this.path, rows: this.rows }, 'sqlite backend started');
  }

  private prepareDatabase(db: DatabaseSync): void {
    const version = Number(db.prepare('PRAGMA user_version').get()!.user_version);
    if (version > SCHEMA_VERSION) {
      throw new Error(`database schema version ${version} is newer than this agent's (${SCHEMA_VERSION}); upgrade the agent or use another Path`);
    }
    if (this.config.ReadOnly) {
      if (version !== SCHEMA_VERSION) throw new Error('not a peripety event database (no events table)');
      return;
    }
    const mode = String(db.prepare('PRAGMA journal_mode = WAL').get()!.journal_mode);
    if (mode !== 'wal') throw new Error(`cannot switch to WAL mode (journal_mode is ${mode}); is the file system local?`);
    db.exec(`PRAGMA synchronous = ${this.config.Synchronous}`);
    // Checkpoint every 64 MiB of WAL instead of SQLite's 4 MiB: events have
    // random ids, so a batch dirties pages all over the unique index, and
    // with the default nearly every commit paid a checkpoint (with fsync) for
    // them. Afterwards the WAL file is cut back to the same size. (The
    // writer thread sets the same on its connection; this one only creates
    // the schema and reads, with SQLite's default page cache.)
    db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.exec(`PRAGMA journal_size_limit = ${WAL_CHECKPOINT_PAGES * 4096}`);
    db.exec('PRAGMA temp_store = MEMORY');
    if (version === 0) {
      const existing = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
      if (existing !== undefined) throw new Error('has an events table without a schema version: not created by peripety');
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(SCHEMA_V1);
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    }
    // Future schema versions migrate here, one step at a time, each in its own transaction.
  }

  // ---- the writer thread ----

  /** Start the thread and open its connection; rejects (and leaves no thread) when it cannot. */
  private startThread(): Promise<Worker> {
    if (this.threadStarting !== null) return this.threadStarting;
    const run = (async () => {
      this.threadStartedAt = performance.now();
      const start: ThreadStart = {
        path: this.path,
        synchronous: this.config.Synchronous,
        columns: COLUMNS,
        walCheckpointPages: WAL_CHECKPOINT_PAGES,
        cacheKiB: WRITER_CACHE_KIB,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
      };
      const w = new Worker(THREAD_URL, { workerData: start, resourceLimits: THREAD_RESOURCE_LIMITS, name: `sqlite ${this.name}` });
      this.thread = w;
      // Referenced only while a request waits for its answer: an idle backend keeps no process alive.
      w.unref();
      w.on('message', (r: ThreadReply) => this.answered(r));
      w.on('error', (err) => {
        this.log.error({ err: err.message }, 'sqlite database thread failed');
      });
      w.on('exit', (code) => this.threadExited(w, code));
      try {
        const opened = await this.request({ op: 'open', id: 0 }, THREAD_OPEN_TIMEOUT_MS);
        this.rows = opened.rows;
      } catch (err) {
        // not usable: gone before the error is returned, so no thread is left behind
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        this.thread = null;
        void w.terminate();
        await exited;
        throw err;
      }
      return w;
    })();
    this.threadStarting = run;
    const clear = () => {
      this.threadStarting = null;
    };
    run.then(clear, clear);
    return run;
  }

  private threadExited(w: Worker, code: number): void {
    if (this.thread !== w) return;
    this.thread = null;
    const expected = this.closing || this.stoppingThread === w;
    const why = `the database thread exited (code ${code})${expected ? '' : ' unexpectedly'}`;
    if (!expected) {
      this.lastError = why;
      this.log.error({ code, unanswered: this.pending.size }, 'sqlite database thread exited; unanswered batches fail (the storage worker spools and retries them), the next batch starts a new thread');
    }
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new Error(`${why} before answering ${p.op}`));
  }

  private answered(r: ThreadReply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) {
      this.thread?.unref();
      this.armIdle();
    }
    if (r.ok) p.resolve(r);
    else p.reject(Object.assign(new Error(r.code !== undefined ? `${r.error} (SQLite code ${r.code})` : r.error), { sqliteCode: r.code }));
  }

  private armIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.closing || this.thread === null || this.thread === this.stoppingThread) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.closing || this.pending.size > 0 || this.threadStarting !== null || this.retention !== null || this.thread === null) return;
      this.idleStopped = true;
      this.log.debug({ idleMs: this.threadIdleMs }, 'sqlite: stopping the idle database thread');
      this.retiring = this.stopThread().finally(() => {
        this.retiring = null;
      });
    }, this.threadIdleMs);
    this.idleTimer.unref();
  }

  /** One request to the thread; its answer, or a rejection (an SQLite error, the thread gone, no answer in `timeoutMs`). */
  private request(req: ThreadRequest, timeoutMs = Infinity): Promise<ThreadReply & { ok: true }> {
    const w = this.thread;
    if (w === null) return Promise.reject(new Error('the database thread is not running'));
    const id = this.nextId++;
    const msg = { ...req, id };
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const done = () => {
        if (timer !== null) clearTimeout(timer);
      };
      this.pending.set(id, {
        op: req.op,
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          // no answer: the thread is stuck or lost; a new one starts on the next batch
          this.log.error({ op: req.op, timeoutMs }, 'sqlite database thread did not answer; terminating it');
          void w.terminate();
        }, timeoutMs);
      }
      w.ref();
      w.postMessage(msg);
    });
  }

  /** the running thread, or a new one when it was stopped for idleness, or died and the restart backoff has passed */
  private async writer(): Promise<Worker> {
    if (this.retiring !== null) await this.retiring;
    if (this.thread !== null && this.threadStarting === null) return this.thread;
    if (this.threadStarting !== null) return this.threadStarting;
    if (this.closing) throw new Error('shut down');
    if (this.idleStopped) {
      this.idleStopped = false;
      return this.startThread();
    }
    const wait = this.threadStartedAt + this.restartDelayMs - performance.now();
    if (wait > 0) throw new Error(`the database thread is down; restarting in ${Math.ceil(wait)} ms`);
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, THREAD_RESTART_MAX_MS);
    this.log.warn({ path: this.path }, 'sqlite: starting a new database thread');
    return this.startThread();
  }

  async persist(events: readonly StorageEvent[]): Promise<void> {
    if (this.db === null || this.config.ReadOnly || this.closing) {
      throw new Error(`sqlite backend ${this.name} is not ${this.config.ReadOnly ? 'writable (ReadOnly)' : 'started'}`);
    }
    if (events.length === 0) return;
    // One flat array of column values: cheaper to clone into the thread
    // than the event objects (measured: ~0.7 µs per event here, ~0.2 there).
    const cols: unknown[] = new Array<unknown>(events.length * COLUMN_COUNT);
    let i = 0;
    for (const ev of events) {
      cols[i++] = eventTimeUs(ev);
      cols[i++] = ev.timestamp;
      cols[i++] = ev.hostname;
      cols[i++] = ev.severity;
      cols[i++] = ev.system;
      cols[i++] = ev.event_type;
      cols[i++] = ev.event_id;
      cols[i++] = ev.dev_wwid;
      cols[i++] = ev.dev_name;
      cols[i++] = ev.msg;
      cols[i++] = JSON.stringify(ev.extentions);
    }
    let r: ThreadReply & { ok: true };
    let posted = 0;
    try {
      await this.writer();
      posted = performance.now();
      r = await this.request({ op: 'persist', id: 0, cols, cutoffUs: this.cutoffUs(), maxRows: this.config.MaxRows, chunk: RETENTION_CHUNK });
    } catch (err) {
      this.lastError = `insert failed: ${(err as Error).message}`;
      throw new Error(`sqlite backend ${this.name}: ${this.lastError}`, { cause: err });
    }
    this.lastError = null;
    this.restartDelayMs = THREAD_RESTART_MIN_MS;
    const tookMs = performance.now() - posted;
    if (tookMs >= SLOW_BATCH_MS) this.slowBatch(tookMs, events.length, r);
    this.rows = r.rows;
    this.retained(r.byAge ?? 0, r.byRows ?? 0);
    if (++this.batchesSinceRetention >= RETENTION_EVERY_BATCHES) this.scheduleRetention();
  }

  private slowBatch(tookMs: number, events: number, r: ThreadReply & { ok: true }): void {
    this.slowBatches++;
    const now = performance.now();
    if (now - this.lastSlowLog < SLOW_LOG_INTERVAL_MS) return;
    this.lastSlowLog = now;
    const insertMs = r.insertMs ?? 0;
    const commitMs = r.commitMs ?? 0;
    this.log.warn({
      events, tookMs: Math.round(tookMs), insertMs: Math.round(insertMs), commitMs: Math.round(commitMs),
      waitMs: Math.round(Math.max(0, tookMs - insertMs - commitMs)), slowBatches: this.slowBatches,
    }, 'sqlite: slow batch (commitMs includes WAL checkpoints; waitMs is time the thread was busy with something else or not scheduled)');
    this.slowBatches = 0;
  }

  /**
   * Test hook (hostile tests): the thread exits during the next persist,
   * before or after its COMMIT, as a crash would.
   */
  async injectFault(kind: 'exit-before-commit' | 'exit-after-commit'): Promise<void> {
    await this.request({ op: 'fault', id: 0, kind });
  }

  private scheduleRetention(): void {
    if (this.retention !== null || this.closing || this.db === null || this.config.ReadOnly) return;
    void this.runRetention().catch((err: unknown) => {
      this.lastError = `retention failed: ${(err as Error).message}`;
      this.log.error({ err: (err as Error).message }, 'sqlite retention failed');
    });
  }

  private cutoffUs(): number {
    return nowUs() - this.config.MaxAgeDays * DAY_US;
  }

  private retained(byAge: number, byRows: number): void {
    if (byAge + byRows === 0) return;
    this.unreported.byAge += byAge;
    this.unreported.byRows += byRows;
    this.log.debug({ byAge, byRows, rows: this.rows }, 'sqlite retention deleted rows');
  }

  /**
   * Delete rows older than MaxAgeDays (by event time, against the wall
   * clock) and then the oldest rows beyond MaxRows, RETENTION_CHUNK rows per
   * transaction, in the thread (which yields to batches between chunks).
   * Concurrent calls share one run. The result counts what retention deleted
   * since the previous call, this run included: a batch that took the table
   * over MaxRows runs retention itself before it is acknowledged.
   */
  runRetention(): Promise<RetentionResult> {
    if (this.retention !== null) return this.retention;
    const run = this.retain().finally(() => {
      this.retention = null;
    });
    this.retention = run;
    return run;
  }

  private async retain(): Promise<RetentionResult> {
    this.batchesSinceRetention = 0;
    this.lastRetentionAt = performance.now();
    if (this.db === null || this.config.ReadOnly || this.closing) return { byAge: 0, byRows: 0 };
    await this.writer();
    const r = await this.request({ op: 'retain', id: 0, cutoffUs: this.cutoffUs(), maxRows: this.config.MaxRows, chunk: RETENTION_CHUNK });
    this.rows = r.rows;
    this.retained(r.byAge ?? 0, r.byRows ?? 0);
    const result = this.unreported;
    this.unreported = { byAge: 0, byRows: 0 };
    return result;
  }

  async findEvents(query: EventQuery): Promise<QueryResult> {
    const db = this.db;
    if (db === null) throw new Error(`sqlite backend ${this.name} is not started`);
    const limit = query.limit > 0 ? Math.floor(query.limit) : Infinity;
    const filter = query.filter;
    const { sql, params } = buildQuery(query.newest, query.oldest, filter?.hints ?? {});
    let stmt = this.queries.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare(sql);
      if (this.queries.size >= QUERY_CACHE_MAX) this.queries.delete(this.queries.keys().next().value!);
      this.queries.set(sql, stmt);
    }
    const events: StorageEvent[] = [];
    let isTruncated = false;
    let bad = 0;
    for (const row of stmt.iterate(...params)) {
      const ev = rowToEvent(row);
      if (ev === null) {
        bad++;
        continue;
      }
      if (filter !== null && filter.evaluate(ev) !== 'MATCH') continue;
      if (events.length === limit) {
        // One more than asked: the result is cut. Leaving the loop resets the statement.
        isTruncated = true;
        break;
      }
      events.push(ev);
    }
    if (bad > 0) this.log.warn({ rows: bad }, 'sqlite rows that are not valid events were skipped');
    return { events, isTruncated };
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.retention !== null) await this.retention.catch(() => {});
    await this.threadStarting?.catch(() => {});
    await this.retiring;
    await this.stopThread();
    this.idleStopped = false;
    const db = this.db;
    this.db = null;
    this.queries.clear();
    if (db === null || !db.isOpen) return;
    db.close();
  }

  /**
   * Close the writer: the thread answers the batches posted before (they
   * commit or fail as usual), optimizes and closes its connection, and
   * exits. Terminated when it does not within THREAD_CLOSE_TIMEOUT_MS (an
   * uncommitted transaction is then rolled back by SQLite at the next open).
   */
  private async stopThread(): Promise<void> {
    const w = this.thread;
    if (w === null) return;
    this.stoppingThread = w;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    try {
      await this.request({ op: 'close', id: 0 }, THREAD_CLOSE_TIMEOUT_MS);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'sqlite: closing the database thread failed');
      void w.terminate();
    }
    // referenced until it is gone: whoever awaits shutdown() must not see the process end first
    w.ref();
    await exited;
    if (this.stoppingThread === w) this.stoppingThread = null;
  }

  health(): BackendHealth {
    if (this.db === null) return { ok: false, detail: this.closing ? 'shut down' : 'not started' };
    if (this.lastError !== null) return { ok: false, detail: this.lastError };
    return { ok: true };
  }

  /** whether the database thread runs now (it is stopped when idle, started by the next batch) */
  get threadRunning(): boolean {
    return this.thread !== null;
  }

  /** rows held now (exact for this backend's writes, as of the thread's last answer) */
  get rowCount(): number {
    return this.rows;
  }
}

/**
 * The time range, the hint equalities and the timestamp bounds go into SQL;
 * ORDER BY time_us DESC then lets SQLite walk an index backwards (time_us, or
 * (system|event_type|dev_wwid|hostname, time_us) when that equality is
 * pushed), so reading stops as soon as enough rows matched the full filter.
 */
export function buildQuery(newest: number, oldest: number, hints: FilterHints): { sql: string; params: SQLInputValue[] } {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (newest > 0) {
    where.push('time_us <= ?');
    params.push(newest);
  }
  if (oldest > 0) {
    where.push('time_us > ?');
    params.push(oldest);
  }
  for (const field of HINT_FIELDS) {
    const v = hints.equals?.[field];
    if (v !== undefined) {
      where.push(`${field} = ?`);
      params.push(v);
    }
  }
  // On the timestamp column, not time_us: the hint is about `.event.timestamp`, which need not agree with timestamp_us.
  if (hints.timestampMin !== undefined) {
    where.push('timestamp >= ?');
    params.push(hints.timestampMin);
  }
  if (hints.timestampMax !== undefined) {
    where.push('timestamp <= ?');
    params.push(hints.timestampMax);
  }
  const sql = `SELECT ${COLUMNS.slice(1).join(', ')} FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time_us DESC, rowid DESC`;
  return { sql, params };
}

function rowToEvent(row: Record<string, SQLOutputValue>): StorageEvent | null {
  const { timestamp, hostname, severity, system, event_type, event_id, dev_wwid, dev_name, msg, extentions } = row;
  if (
    typeof timestamp !== 'number' || typeof hostname !== 'string' || typeof severity !== 'string' ||
    typeof system !== 'string' || typeof event_type !== 'string' || typeof event_id !== 'string' ||
    typeof dev_wwid !== 'string' || typeof dev_name !== 'string' || typeof msg !== 'string' ||
    typeof extentions !== 'string' || !SEVERITY_SET.has(severity) || !SYSTEM_SET.has(system)
  ) {
    return null;
  }
  let ext: unknown;
  try {
    ext = JSON.parse(extentions);
  } catch {
    return null;
  }
  if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) return null;
  return {
    hostname,
    severity: severity as StorageEvent['severity'],
    system: system as StorageEvent['system'],
    timestamp,
    event_id,
    event_type,
    dev_wwid,
    dev_name,
    msg,
    extentions: ext as Record<string, string>,
  };
}

export const sqliteBackend: BackendPlugin<SqliteConfig> = {
  ...BACKEND_PLUGINS.sqlite,
  build(name: string, config: SqliteConfig, ctx: BackendContext): Backend {
    return new SqliteBackend(name, config, ctx);
  },
};
