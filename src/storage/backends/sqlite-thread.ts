// The sqlite backend's database thread (issue 14: storage off the event
// loop). node:sqlite is synchronous, and under a kmsg storm the INSERTs of a
// batch took 41% of the agent's event loop, so the kmsg reader waited for the
// disk. This worker_threads Worker owns the writing connection: it runs each
// batch as one transaction and answers once the COMMIT returned, so the
// main thread's persist() still resolves only for committed events
// (docs/architecture.md "Acknowledgement"). Retention runs here too.
//
// A Worker is a second V8 isolate (about 14 MiB of RSS), so this file imports
// nothing but node:sqlite and node:worker_threads: no zod, no pino, no code of
// the project's (the main thread validated the configuration and checked the
// files; it logs for us). The protocol is sqlite-protocol.ts: rows come as
// one flat array of column values (cheaper to clone than event objects), and
// every failure is a reply, never a thrown error the main thread would have
// to guess about.
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { COLUMN_COUNT, type ThreadReply, type ThreadRequest, type ThreadStart } from './sqlite-protocol.ts';

/**
 * Rows per INSERT statement for the bulk of a batch: one statement
 * execution per row cost ~7–9 µs of CPU per event, one per 50 rows ~6
 * (measured, docs/performance.md "Storage off the event loop"); 550
 * parameters are far below SQLite's limit of 32,766.
 */
const ROWS_PER_INSERT = 50;

const port = parentPort;
if (port === null) throw new Error('sqlite-thread.ts runs as a worker thread only');
const start = workerData as ThreadStart;

let db: DatabaseSync | null = null;
let insert: StatementSync | null = null;
let insertMany: StatementSync | null = null;
let byAge: StatementSync | null = null;
let oldest: StatementSync | null = null;
let rows = 0;
let fault: 'exit-before-commit' | 'exit-after-commit' | null = null;

function reply(r: ThreadReply): void {
  port!.postMessage(r);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorCode(err: unknown): number | undefined {
  // node:sqlite puts SQLite's extended result code on the error; its low byte is the primary code
  const c = (err as { errcode?: unknown } | null)?.errcode;
  return typeof c === 'number' ? c & 0xff : undefined;
}

function open(): number {
  const d = new DatabaseSync(start.path, { timeout: start.busyTimeoutMs });
  try {
    // Per connection: the main thread set WAL (persistent) and created the schema.
    d.exec(`PRAGMA synchronous = ${start.synchronous}`);
    d.exec(`PRAGMA wal_autocheckpoint = ${start.walCheckpointPages}`);
    d.exec(`PRAGMA journal_size_limit = ${start.walCheckpointPages * 4096}`);
    // Six indexes per insert: a bigger page cache keeps their hot pages resident.
    d.exec(`PRAGMA cache_size = -${start.cacheKiB}`);
    d.exec('PRAGMA temp_store = MEMORY');
    const row = `(${start.columns.map(() => '?').join(', ')})`;
    insert = d.prepare(`INSERT OR IGNORE INTO events (${start.columns.join(', ')}) VALUES ${row}`);
    insertMany = d.prepare(`INSERT OR IGNORE INTO events (${start.columns.join(', ')}) VALUES ${new Array<string>(ROWS_PER_INSERT).fill(row).join(', ')}`);
    byAge = d.prepare('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE time_us < ? ORDER BY time_us LIMIT ?)');
    oldest = d.prepare('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY time_us LIMIT ?)');
    rows = Number(d.prepare('SELECT count(*) AS n FROM events').get()!.n);
  } catch (err) {
    d.close();
    throw err;
  }
  db = d;
  return rows;
}

/** the last persist's split: inserting vs COMMIT (which includes SQLite's automatic WAL checkpoint) */
let insertMs = 0;
let commitMs = 0;

/** One batch, one transaction: all of it or nothing. */
function persist(cols: readonly unknown[]): number {
  const t0 = performance.now();
  const d = db!;
  const ins = insert!;
  const many = insertMany!;
  const manyValues = ROWS_PER_INSERT * COLUMN_COUNT;
  let added = 0;
  d.exec('BEGIN IMMEDIATE');
  try {
    let i = 0;
    for (; i + manyValues <= cols.length; i += manyValues) {
      added += Number(many.run(...(cols.slice(i, i + manyValues) as SQLInputValue[])).changes);
    }
    for (; i < cols.length; i += COLUMN_COUNT) {
      added += Number(ins.run(
        cols[i] as number, cols[i + 1] as number, cols[i + 2] as string, cols[i + 3] as string, cols[i + 4] as string,
        cols[i + 5] as string, cols[i + 6] as string, cols[i + 7] as string, cols[i + 8] as string, cols[i + 9] as string,
        cols[i + 10] as string,
      ).changes);
    }
    // test hook (SqliteBackend.injectFault): the thread dies with the transaction open
    if (fault === 'exit-before-commit') process.exit(70);
    const t1 = performance.now();
    insertMs = t1 - t0;
    d.exec('COMMIT');
    commitMs = performance.now() - t1;
  } catch (err) {
    if (d.isTransaction) d.exec('ROLLBACK');
    throw err;
  }
  // test hook: committed, but the answer never reaches the main thread
  if (fault === 'exit-after-commit') process.exit(70);
  rows += added;
  return added;
}

/** Delete the oldest rows beyond maxRows, a chunk per statement; false when the count was stale. */
function trimRows(maxRows: number, chunk: number): number {
  let deleted = 0;
  while (rows > maxRows) {
    const n = Number(oldest!.run(Math.min(rows - maxRows, chunk)).changes);
    deleted += n;
    rows -= n;
    if (n === 0) {
      // someone else deleted rows: the count was stale
      rows = Number(db!.prepare('SELECT count(*) AS n FROM events').get()!.n);
      break;
    }
  }
  return deleted;
}

function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Age first, then MaxRows, RETENTION chunks, yielding between them so batches are not held up. */
async function retain(cutoffUs: number, maxRows: number, chunk: number): Promise<{ byAge: number; byRows: number }> {
  const result = { byAge: 0, byRows: 0 };
  for (;;) {
    if (db === null) return result;
    const n = Number(byAge!.run(cutoffUs, chunk).changes);
    result.byAge += n;
    rows -= n;
    if (n < chunk) break;
    await yieldToMessages();
  }
  while (rows > maxRows) {
    if (db === null) return result;
    const before = rows;
    result.byRows += trimRows(Math.max(maxRows, rows - chunk), chunk);
    if (rows === before) break;
    await yieldToMessages();
  }
  return result;
}

async function handle(m: ThreadRequest): Promise<void> {
  try {
    switch (m.op) {
      case 'open':
        reply({ id: m.id, ok: true, rows: open() });
        return;
      case 'persist': {
        const added = persist(m.cols);
        // Over MaxRows after this batch: retention before the answer (the
        // batch is committed already; only its acknowledgement waits), so the
        // table stays within MaxRows plus one batch whatever the rate.
        const r = rows > m.maxRows ? await retain(m.cutoffUs, m.maxRows, m.chunk) : null;
        reply({ id: m.id, ok: true, rows, added, byAge: r?.byAge ?? 0, byRows: r?.byRows ?? 0, insertMs, commitMs });
        return;
      }
      case 'retain': {
        const r = await retain(m.cutoffUs, m.maxRows, m.chunk);
        reply({ id: m.id, ok: true, rows, byAge: r.byAge, byRows: r.byRows });
        return;
      }
      case 'fault':
        fault = m.kind;
        reply({ id: m.id, ok: true, rows });
        return;
      case 'close': {
        const d = db;
        db = null;
        insert = null;
        insertMany = null;
        if (d !== null && d.isOpen) {
          // Keeps the planner's statistics current for the next start; cheap when nothing changed.
          try {
            d.exec('PRAGMA optimize');
          } finally {
            d.close();
          }
        }
        reply({ id: m.id, ok: true, rows });
        port!.close();
        return;
      }
    }
  } catch (err) {
    reply({ id: m.id, ok: false, error: errorText(err), code: errorCode(err) });
  }
}

port.on('message', (m: ThreadRequest) => {
  void handle(m);
});
