// The sqlite backend's database thread (src/storage/backends/sqlite-thread.ts):
// what happens when it dies in the middle of a batch, and when the backend is
// shut down while a batch is being written. "Nothing acknowledged that was
// not committed": a persist resolves only for a committed batch, a batch the
// thread did not answer is rejected (and, through the storage worker,
// spooled and replayed), and a batch committed but not answered is stored
// once when it is written again.
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Ack } from '../../../../src/contracts/ack.ts';
import type { StorageEvent } from '../../../../src/events/schema.ts';
import { SqliteConfig } from '../../../../src/storage/backends/options.ts';
import { SqliteBackend } from '../../../../src/storage/backends/sqlite.ts';
import { BackendWorker } from '../../../../src/storage/worker.ts';
import { onAck } from '../../../helpers/ack.ts';
import { context, evs, tempDir, type TempDir } from './events.ts';

/** event_id → how many rows hold it, read by a connection of our own */
function storedCounts(file: string): Map<string, number> {
  const peek = new DatabaseSync(file, { readOnly: true });
  try {
    const m = new Map<string, number>();
    for (const r of peek.prepare('SELECT event_id, count(*) AS n FROM events GROUP BY event_id').all()) m.set(String(r.event_id), Number(r.n));
    return m;
  } finally {
    peek.close();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** persist, retrying while the thread's restart backoff refuses (as the storage worker does) */
async function persistRetrying(b: SqliteBackend, list: StorageEvent[]): Promise<number> {
  for (let tries = 1; ; tries++) {
    try {
      await b.persist(list);
      return tries;
    } catch (err) {
      if (tries >= 100 || !/restarting in/.test((err as Error).message)) throw err;
      await sleep(50);
    }
  }
}

describe('sqlite: the database thread', () => {
  let t: TempDir;
  let b: SqliteBackend | null = null;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await b?.shutdown();
    b = null;
    t.cleanup();
  });
  const open = async () => {
    b = new SqliteBackend('db', SqliteConfig.parse({ MaxAgeDays: 36_500 }), context(t.dir));
    await b.start();
    return b;
  };

  it('dies before COMMIT: the batch is rejected, none of it is stored, and a new thread stores it once', async () => {
    const db = await open();
    await db.persist(evs(0, 10));
    await db.injectFault('exit-before-commit');
    const batch = evs(10, 60);
    await assert.rejects(db.persist(batch), /sqlite backend db: insert failed: the database thread exited \(code 70\) unexpectedly before answering persist/);
    assert.equal(db.health().ok, false);
    assert.match(db.health().detail ?? '', /database thread exited/);
    const after = storedCounts(db.path);
    assert.equal(after.size, 10, 'the open transaction was rolled back');
    // the next batch starts a new thread (after the restart backoff) and is stored
    await persistRetrying(db, batch);
    const counts = storedCounts(db.path);
    assert.equal(counts.size, 60);
    assert.ok([...counts.values()].every((n) => n === 1));
    assert.deepEqual(db.health(), { ok: true });
    assert.equal(db.rowCount, 60);
    // and queries on the main connection see it
    assert.equal((await db.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events.length, 60);
  });

  it('dies after COMMIT, before answering: rejected although stored; writing it again stores nothing twice', async () => {
    const db = await open();
    await db.injectFault('exit-after-commit');
    const batch = evs(0, 40);
    await assert.rejects(db.persist(batch), /database thread exited/);
    assert.equal(storedCounts(db.path).size, 40, 'committed before the thread died');
    await persistRetrying(db, batch);
    const counts = storedCounts(db.path);
    assert.equal(counts.size, 40);
    assert.ok([...counts.values()].every((n) => n === 1));
    assert.equal(db.rowCount, 40);
  });

  it('shut down while a batch is being written: the batch commits and resolves, then the thread is gone', async () => {
    const db = await open();
    const big = evs(0, 5000);
    const persisting = db.persist(big);
    const stopping = db.shutdown();
    await persisting;
    await stopping;
    await assert.rejects(db.persist(evs(5000, 5001)), /not started/);
    assert.equal(storedCounts(db.path).size, 5000);
    b = null;
    // a new backend opens the same file and counts what was committed
    const again = await open();
    assert.equal(again.rowCount, 5000);
  });

  it('stops the thread when idle and starts a new one for the next batch, without a restart backoff', async () => {
    b = new SqliteBackend('db', SqliteConfig.parse({ MaxAgeDays: 36_500 }), context(t.dir), { threadIdleMs: 50 });
    const db = b;
    await db.start();
    assert.equal(db.threadRunning, true);
    await db.persist(evs(0, 10));
    for (let i = 0; i < 200 && db.threadRunning; i++) await sleep(10);
    assert.equal(db.threadRunning, false, 'stopped after 50 ms without a request');
    assert.deepEqual(db.health(), { ok: true });
    // at once: no "restarting in" refusal, as after a crash
    await db.persist(evs(10, 20));
    assert.equal(db.threadRunning, true);
    assert.equal(db.rowCount, 20);
    assert.equal(storedCounts(db.path).size, 20);
    // batches posted around the moment of the idle stop (some while it is under way) wait for it, start the next thread and are stored
    for (let i = 0; i < 20; i++) {
      await sleep(40 + (i % 5) * 5);
      await db.persist(evs(20 + i * 5, 25 + i * 5));
    }
    assert.equal(storedCounts(db.path).size, 120);
    assert.equal(db.rowCount, 120);
  });

  it('with the storage worker: a thread that dies mid-batch loses nothing; every ack is released once, after its event is stored or spooled', async () => {
    const db = await open();
    const w = new BackendWorker({
      name: 'db', backend: db, spoolDir: path.join(t.dir, 'spool'), log: context(t.dir).log,
      maxWaitMs: 1, retryMinMs: 20, retryMaxMs: 200, maxBatch: 64, stopTimeoutMs: 5000,
    });
    await w.open();
    await db.injectFault('exit-before-commit');
    const list = evs(0, 400);
    const released: number[] = new Array<number>(list.length).fill(0);
    const unsafe: string[] = [];
    const acks: Ack[] = list.map((e, i) => onAck(() => {
      released[i]!++;
      // acknowledged means committed in the database or written to the spool
      if (!storedCounts(db.path).has(e.event_id) && w.spoolBytes === 0) unsafe.push(e.event_id);
    }));
    for (let i = 0; i < list.length; i++) {
      w.enqueue(list[i]!, acks[i]!);
      if (i % 50 === 0) await sleep(1);
    }
    for (let i = 0; i < 400 && storedCounts(db.path).size < list.length; i++) await sleep(25);
    await w.stop();
    const counts = storedCounts(db.path);
    assert.equal(counts.size, list.length, 'every event stored');
    assert.ok([...counts.values()].every((n) => n === 1), 'none twice');
    assert.ok(released.every((n) => n === 1), 'each ack released once');
    assert.deepEqual(unsafe, []);
    assert.equal(w.dropped, 0);
    assert.ok(w.stats.failed > 0, 'the crash did fail a batch');
  });
});
