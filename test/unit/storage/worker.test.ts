import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StorageMetrics } from '../../../src/storage/metrics.ts';
import type { Ack } from '../../../src/contracts/ack.ts';
import { BackendWorker, type WorkerOptions } from '../../../src/storage/worker.ts';
import { deferred, FakeBackend, log, mkEvent, range, sleep, tmpDir, until } from './helpers.ts';
import { onAck } from '../../helpers/ack.ts';

/** Acks for events 0..n-1 that record how often each hold ended. */
function acks(n: number): { acks: Ack[]; calls: number[]; all: () => boolean; once: () => boolean } {
  const calls = new Array<number>(n).fill(0);
  return {
    acks: calls.map((_, i) => onAck(() => void calls[i]!++)),
    calls,
    all: () => calls.every((c) => c >= 1),
    once: () => calls.every((c) => c === 1),
  };
}

const fast: Partial<WorkerOptions> = { maxWaitMs: 1, retryMinMs: 10, retryMaxMs: 40, maxBatch: 16, stopTimeoutMs: 2000 };

function worker(backend: FakeBackend, spoolDir: string | null, extra: Partial<WorkerOptions> = {}): BackendWorker {
  return new BackendWorker({ ...fast, ...extra, name: backend.name, backend, spoolDir, log });
}

const ids = (ns: number[]) => ns.map((i) => mkEvent(i).event_id);

describe('BackendWorker', () => {
  it('persists in batches, in order, and acknowledges each event once after its batch is stored', async (t) => {
    const b = new FakeBackend();
    const gate = deferred();
    b.gate = gate.promise;
    const w = worker(b, path.join(await tmpDir(t), 'spool'));
    await w.open();
    const a = acks(40);
    for (const i of range(40)) w.enqueue(mkEvent(i), a.acks[i]!);
    await until(() => b.persistCalls > 0);
    assert.equal(a.calls.filter((c) => c > 0).length, 0, 'nothing acknowledged before persist resolved');
    gate.resolve();
    await until(a.all);
    assert.deepEqual(b.storedIds(), ids(range(40)));
    assert.ok(b.batches.every((n) => n <= 16), `batches ${b.batches}`);
    await w.stop();
    assert.ok(a.once());
    assert.equal(w.stats.spooled, 0);
  });

  it('a rejected batch goes to the spool with everything after it; replay keeps the order; nothing lost or doubled', async (t) => {
    const b = new FakeBackend();
    b.down = true;
    const metrics = new StorageMetrics(new Registry());
    const w = new BackendWorker({ ...fast, name: 'b', backend: b, spoolDir: path.join(await tmpDir(t), 'spool'), log, metrics: metrics.backend('b') });
    await w.open();
    const a = acks(300);
    for (const i of range(100)) w.enqueue(mkEvent(i), a.acks[i]!);
    // spooled events count as acknowledged while the backend is still down
    await until(() => a.calls.slice(0, 100).every((c) => c === 1), 5000, 'spooled acks');
    assert.ok(w.spoolBytes > 0);
    assert.equal(w.up, false);
    for (const i of range(100, 100)) w.enqueue(mkEvent(i), a.acks[i]!);
    await sleep(30);
    b.down = false;
    b.failNext = 2; // flaky on the way back
    for (const i of range(100, 200)) {
      w.enqueue(mkEvent(i), a.acks[i]!);
      if (i % 10 === 0) await sleep(1);
    }
    await until(() => b.stored.length === 300, 10000, 'all stored');
    assert.deepEqual(b.storedIds(), ids(range(300)));
    await until(() => w.spoolBytes === 0);
    await w.stop();
    assert.ok(a.once(), 'each ack released exactly once');
    assert.equal(w.dropped, 0);
    const text = await metrics.registry.metrics();
    assert.match(text, /peripety_backend_writes_total\{backend="b",result="spooled"\} [1-9]/);
    assert.match(text, /peripety_backend_writes_total\{backend="b",result="failed"\} [1-9]/);
    assert.match(text, /peripety_backend_writes_total\{backend="b",result="ok"\} [1-9]/);
  });

  it('the spool byte cap: what does not fit is dropped, counted, and acknowledged', async (t) => {
    const b = new FakeBackend();
    b.down = true;
    const line = Buffer.byteLength(`${JSON.stringify(mkEvent(0))}\n`);
    const w = worker(b, path.join(await tmpDir(t), 'spool'), { spoolMaxBytes: line * 10 + 5 });
    await w.open();
    const a = acks(30);
    for (const i of range(30)) w.enqueue(mkEvent(i), a.acks[i]!);
    await until(a.all, 5000, 'acks');
    assert.equal(w.dropped, 20);
    assert.equal(w.stats.spooled, 10);
    b.down = false;
    await until(() => b.stored.length === 10, 5000, 'replay');
    assert.deepEqual(b.storedIds(), ids(range(10)));
    await w.stop();
    assert.ok(a.once());
  });

  it('a restart replays a spool left by the previous run first', async (t) => {
    const spoolDir = path.join(await tmpDir(t), 'spool');
    const b1 = new FakeBackend();
    b1.down = true;
    const w1 = worker(b1, spoolDir);
    await w1.open();
    const a1 = acks(50);
    for (const i of range(50)) w1.enqueue(mkEvent(i), a1.acks[i]!);
    await w1.stop();
    assert.ok(a1.once());
    assert.equal(b1.stored.length, 0);

    const b2 = new FakeBackend();
    const w2 = worker(b2, spoolDir);
    await w2.open();
    const a2 = acks(10);
    for (const i of range(10)) w2.enqueue(mkEvent(50 + i), a2.acks[i]!);
    await until(() => b2.stored.length === 60, 5000, 'replayed and new');
    assert.deepEqual(b2.storedIds(), ids(range(60)), 'leftover first, then the new events');
    await w2.stop();
    assert.ok(a2.once());
  });

  it('a crash mid-replay (stop while a replay batch is in flight) replays it again; the backend absorbs the duplicate', async (t) => {
    const spoolDir = path.join(await tmpDir(t), 'spool');
    const b1 = new FakeBackend();
    b1.down = true;
    const w1 = worker(b1, spoolDir);
    await w1.open();
    for (const i of range(20)) w1.enqueue(mkEvent(i), null);
    await until(() => w1.stats.spooled === 20);
    // back up, but the first replay batch never returns before the stop deadline
    const gate = deferred();
    b1.gate = gate.promise;
    const before = b1.persistCalls;
    b1.down = false;
    await until(() => b1.persistCalls > before, 5000, 'a replay attempt behind the gate');
    await w1.stop(20);
    gate.resolve();
    await until(() => b1.stored.length > 0, 5000, 'the abandoned persist still lands');

    const w2 = worker(b1, spoolDir);
    b1.gate = null;
    await w2.open();
    await until(() => b1.stored.length === 20 && w2.spoolBytes === 0, 5000, 'replay');
    assert.deepEqual(b1.storedIds(), ids(range(20)));
    assert.ok(b1.duplicates > 0, 'the batch was replayed again');
    await w2.stop();
  });

  it('queue full without a usable spool: dropped, counted, acknowledged; never blocks', async (t) => {
    const b = new FakeBackend();
    b.down = true;
    const dir = await tmpDir(t);
    await appendFile(path.join(dir, 'file'), 'x');
    const w = worker(b, path.join(dir, 'file', 'spool'), { capacity: 20 });
    await w.open();
    assert.match(w.lastError ?? '', /spool unusable/);
    const a = acks(50);
    for (const i of range(50)) w.enqueue(mkEvent(i), a.acks[i]!);
    assert.equal(w.dropped, 30, 'over capacity: dropped at once');
    assert.equal(a.calls.filter((c) => c === 1).length, 30);
    assert.ok(w.depth <= 20);
    // held in memory (unacknowledged) until the backend is back
    b.down = false;
    await until(a.all, 5000, 'acks');
    assert.deepEqual(b.storedIds(), ids(range(20)));
    await w.stop();
    assert.ok(a.once());
  });

  it('no spool at all and a backend down at stop: the rest is dropped, counted, acknowledged', async () => {
    const b = new FakeBackend();
    b.down = true;
    const w = worker(b, null, { stopTimeoutMs: 50 });
    await w.open();
    const a = acks(10);
    for (const i of range(10)) w.enqueue(mkEvent(i), a.acks[i]!);
    await sleep(20);
    await w.stop();
    assert.ok(a.once());
    assert.equal(w.dropped, 10);
    // after stop: dropped at once
    const late = acks(1);
    w.enqueue(mkEvent(99), late.acks[0]!);
    assert.ok(late.once());
    assert.equal(w.dropped, 11);
  });

  it('a slow (but working) backend: the queue spills to the spool instead of dropping, order kept', async (t) => {
    const b = new FakeBackend();
    const gate = deferred();
    b.gate = gate.promise;
    const w = worker(b, path.join(await tmpDir(t), 'spool'), { capacity: 1000, spillAt: 10, maxBatch: 5 });
    await w.open();
    const a = acks(200);
    for (const i of range(200)) {
      w.enqueue(mkEvent(i), a.acks[i]!);
      if (i % 5 === 0) await sleep(1);
    }
    await until(() => a.calls.slice(5).every((c) => c === 1), 5000, 'acks of the spilled events');
    assert.equal(w.dropped, 0);
    assert.equal(a.calls.slice(0, 5).every((c) => c <= 1), true);
    gate.resolve();
    b.gate = null;
    await until(() => b.stored.length === 200, 5000, 'all stored');
    assert.deepEqual(b.storedIds(), ids(range(200)));
    await w.stop();
    assert.ok(a.once());
  });

  it('a persist that hangs times out: its events are spooled; when it finally resolves nothing is acknowledged twice', async (t) => {
    const b = new FakeBackend();
    const gate = deferred();
    b.gate = gate.promise;
    const w = worker(b, path.join(await tmpDir(t), 'spool'), { persistTimeoutMs: 30 });
    await w.open();
    const a = acks(10);
    for (const i of range(10)) w.enqueue(mkEvent(i), a.acks[i]!);
    await until(a.all, 5000, 'acks via the spool');
    assert.ok(w.stats.spooled >= 10);
    gate.resolve();
    b.gate = null;
    await until(() => b.stored.length === 10 && w.spoolBytes === 0, 5000, 'replay');
    assert.deepEqual(b.storedIds(), ids(range(10)));
    await w.stop();
    assert.ok(a.once());
  });

  it('a slow backend does not delay another backend\'s acknowledgements', async (t) => {
    const dir = await tmpDir(t);
    const slow = new FakeBackend('slow');
    const gate = deferred();
    slow.gate = gate.promise;
    const quick = new FakeBackend('quick');
    const ws = worker(slow, path.join(dir, 'slow'));
    const wq = worker(quick, path.join(dir, 'quick'));
    await ws.open();
    await wq.open();
    const as = acks(20);
    const aq = acks(20);
    for (const i of range(20)) {
      ws.enqueue(mkEvent(i), as.acks[i]!);
      wq.enqueue(mkEvent(i), aq.acks[i]!);
    }
    await until(aq.all, 2000, 'the quick backend');
    assert.equal(quick.stored.length, 20);
    assert.ok(as.calls.some((c) => c === 0), 'the slow one is still busy');
    gate.resolve();
    await until(as.all, 2000, 'the slow backend');
    await ws.stop();
    await wq.stop();
    assert.ok(as.once() && aq.once());
  });

  it('stop() flushes the queue to the backend', async (t) => {
    const b = new FakeBackend();
    const w = worker(b, path.join(await tmpDir(t), 'spool'), { maxWaitMs: 10_000, maxBatch: 1000 });
    await w.open();
    const a = acks(30);
    for (const i of range(30)) w.enqueue(mkEvent(i), a.acks[i]!);
    await sleep(5);
    assert.equal(b.stored.length, 0, 'still batching');
    await w.stop();
    assert.deepEqual(b.storedIds(), ids(range(30)));
    assert.ok(a.once());
  });

  it('stop() is bounded: when the backend hangs, the rest goes to the spool', async (t) => {
    const spoolDir = path.join(await tmpDir(t), 'spool');
    const b = new FakeBackend();
    b.gate = new Promise(() => {});
    const w = worker(b, spoolDir);
    await w.open();
    const a = acks(40);
    for (const i of range(40)) w.enqueue(mkEvent(i), a.acks[i]!);
    await until(() => b.persistCalls > 0);
    const t0 = Date.now();
    await w.stop(50);
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(a.once());
    assert.equal(w.dropped, 0);
    assert.equal(w.stats.spooled, 40);
    // the next run stores them, in order
    const b2 = new FakeBackend();
    const w2 = worker(b2, spoolDir);
    await w2.open();
    await until(() => b2.stored.length === 40, 5000, 'replay');
    assert.deepEqual(b2.storedIds(), ids(range(40)));
    await w2.stop();
  });

  it('mustNotLose: what it drops (queue full, stopped with events in memory) is acknowledged as lost; without it, plainly', async () => {
    for (const mustNotLose of [true, false]) {
      const b = new FakeBackend();
      b.down = true;
      const w = worker(b, null, { capacity: 10, mustNotLose, stopTimeoutMs: 50 });
      await w.open();
      const lost: boolean[] = [];
      const mk = (): Ack => onAck((l) => void lost.push(l));
      for (const i of range(15)) w.enqueue(mkEvent(i), mk());
      assert.deepEqual(lost, new Array<boolean>(5).fill(mustNotLose), 'over capacity');
      await w.stop();
      assert.equal(lost.length, 15);
      assert.deepEqual(lost.slice(5), new Array<boolean>(10).fill(mustNotLose), 'left at stop');
    }
  });

  it('mustNotLose: stored and spooled events are plain acknowledgements', async (t) => {
    const b = new FakeBackend();
    const w = worker(b, path.join(await tmpDir(t), 'spool'), { mustNotLose: true });
    await w.open();
    const lost: boolean[] = [];
    for (const i of range(10)) w.enqueue(mkEvent(i), onAck((l) => void lost.push(l)));
    await until(() => lost.length === 10);
    b.down = true;
    for (const i of range(10, 10)) w.enqueue(mkEvent(i), onAck((l) => void lost.push(l)));
    await until(() => lost.length === 20, 5000, 'spooled');
    await w.stop();
    assert.ok(lost.every((l) => !l));
  });
});
