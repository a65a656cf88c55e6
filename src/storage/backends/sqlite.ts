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
// DatabaseSync is synchronous: every statement runs on the event loop. That
// is acceptable because each unit of work is small and bounded: one persist
// call is one transaction with a prepared statement (about 15 ms for 1000
// events; the caller bounds the batch size), retention deletes in chunks of
// RETENTION_CHUNK rows and yields between chunks, and a query stops reading
// rows at limit+1 (an unbounded query, limit 0, reads its whole range). The
// longest pause is a WAL checkpoint, once per 64 MiB of WAL (under a
// sustained burst, about every 15,000 events): around 100 ms.
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
import { SEVERITIES, SYSTEMS, type StorageEvent } from '../../events/schema.ts';
import type { FilterHints } from '../../filter/types.ts';
import type { Logger } from '../../log/logger.ts';
import type { Backend, BackendContext, BackendHealth, BackendPlugin, EventQuery, QueryResult } from '../types.ts';
import { eventTimeUs, nowUs } from '../../events/time.ts';
import { checkRegularOrAbsent, confine, confineReal, makeDirs, openPrivateFile, PRIVATE_FILE_MODE, tightenDirInside, tightenMode, UnsafePathError } from '../../fsutil/safe-files.ts';
import { isCorruptDatabaseError, quarantineCorrupt } from '../quarantine.ts';
import { BACKEND_PLUGINS, SqliteConfig } from './options.ts';


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
  private db: DatabaseSync | null = null;
  private insert: StatementSync | null = null;
  private readonly queries = new Map<string, StatementSync>();
  /** exact, kept from count(*) at start plus inserts minus deletes */
  private rows = 0;
  private batchesSinceRetention = 0;
  private retention: Promise<RetentionResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private lastError: string | null = null;
  private readonly confineTo: string | null;
  private readonly stateDir: string;

  constructor(name: string, config: SqliteConfig, ctx: BackendContext) {
    this.name = name;
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
      this.insert = db.prepare(
        `INSERT OR IGNORE INTO events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
      );
      this.rows = Number(db.prepare('SELECT count(*) AS n FROM events').get()!.n);
      this.timer = setInterval(() => this.scheduleRetention(), RETENTION_INTERVAL_MS);
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
    // them. Afterwards the WAL file is cut back to the same size.
    db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.exec(`PRAGMA journal_size_limit = ${WAL_CHECKPOINT_PAGES * 4096}`);
    // Six indexes per insert: a bigger page cache keeps their hot pages resident.
    db.exec('PRAGMA cache_size = -16384');
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

  async persist(events: readonly StorageEvent[]): Promise<void> {
    const db = this.db;
    const insert = this.insert;
    if (db === null || insert === null || this.closing) {
      throw new Error(`sqlite backend ${this.name} is not ${this.config.ReadOnly ? 'writable (ReadOnly)' : 'started'}`);
    }
    if (events.length === 0) return;
    let added = 0;
    try {
      db.exec('BEGIN IMMEDIATE');
      try {
        for (const ev of events) {
          added += Number(
            insert.run(
              eventTimeUs(ev), ev.timestamp, ev.hostname, ev.severity, ev.system, ev.event_type,
              ev.event_id, ev.dev_wwid, ev.dev_name, ev.msg, JSON.stringify(ev.extentions),
            ).changes,
          );
        }
        db.exec('COMMIT');
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      this.lastError = `insert failed: ${(err as Error).message}`;
      throw new Error(`sqlite backend ${this.name}: ${this.lastError}`, { cause: err });
    }
    this.lastError = null;
    this.rows += added;
    if (this.rows > this.config.MaxRows || ++this.batchesSinceRetention >= RETENTION_EVERY_BATCHES) {
      this.scheduleRetention();
    }
  }

  private scheduleRetention(): void {
    if (this.retention !== null || this.closing || this.db === null || this.insert === null) return;
    void this.runRetention().catch((err: unknown) => {
      this.lastError = `retention failed: ${(err as Error).message}`;
      this.log.error({ err: (err as Error).message }, 'sqlite retention failed');
    });
  }

  /**
   * Delete rows older than MaxAgeDays (by event time, against the wall
   * clock) and then the oldest rows beyond MaxRows, RETENTION_CHUNK rows per
   * transaction, yielding to the event loop between chunks. Concurrent calls
   * share one run.
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
    const result: RetentionResult = { byAge: 0, byRows: 0 };
    const db = this.db;
    if (db === null || this.config.ReadOnly) return result;
    const cutoffUs = nowUs() - this.config.MaxAgeDays * DAY_US;
    const byAge = db.prepare(
      'DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE time_us < ? ORDER BY time_us LIMIT ?)',
    );
    const oldest = db.prepare('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY time_us LIMIT ?)');
    for (;;) {
      if (this.closing || !db.isOpen) return result;
      const n = Number(byAge.run(cutoffUs, RETENTION_CHUNK).changes);
      result.byAge += n;
      this.rows -= n;
      if (n < RETENTION_CHUNK) break;
      await yieldToEventLoop();
    }
    while (this.rows > this.config.MaxRows) {
      if (this.closing || !db.isOpen) return result;
      const n = Number(oldest.run(Math.min(this.rows - this.config.MaxRows, RETENTION_CHUNK)).changes);
      result.byRows += n;
      this.rows -= n;
      if (n === 0) {
        // Someone else deleted rows: the count was stale.
        this.rows = Number(db.prepare('SELECT count(*) AS n FROM events').get()!.n);
        break;
      }
      await yieldToEventLoop();
    }
    if (result.byAge + result.byRows > 0) {
      this.log.debug({ ...result, rows: this.rows }, 'sqlite retention deleted rows');
    }
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
    if (this.retention !== null) await this.retention.catch(() => {});
    const db = this.db;
    this.db = null;
    this.insert = null;
    this.queries.clear();
    if (db === null || !db.isOpen) return;
    try {
      // Keeps the planner's statistics current for the next start; cheap when nothing changed.
      if (!this.config.ReadOnly) db.exec('PRAGMA optimize');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'sqlite optimize failed at shutdown');
    }
    db.close();
  }

  health(): BackendHealth {
    if (this.db === null) return { ok: false, detail: this.closing ? 'shut down' : 'not started' };
    if (this.lastError !== null) return { ok: false, detail: this.lastError };
    return { ok: true };
  }

  /** rows held now (exact for this connection's writes) */
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

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export const sqliteBackend: BackendPlugin<SqliteConfig> = {
  ...BACKEND_PLUGINS.sqlite,
  build(name: string, config: SqliteConfig, ctx: BackendContext): Backend {
    return new SqliteBackend(name, config, ctx);
  },
};
