import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from '../../../src/controller/queue.ts';
import { DONE, type Result, terminalError, transientError } from '../../../src/controller/result.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('WorkQueue', () => {
  it('dedups a key that waits', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(async (k) => {
      seen.push(k);
      if (k === 'first') await gate;
    }, { workers: 1 });
    q.add('first');
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('b');
    release();
    await q.idle();
    assert.deepEqual(seen, ['first', 'a', 'b']);
  });

  it('never runs a key twice at once; an add during a run runs it once more after', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release!: () => void;
    const q = new WorkQueue(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await new Promise<void>((r) => (release = r));
      running--;
    }, { workers: 4 });
    q.add('k');
    await tick();
    q.add('k');
    q.add('k');
    await tick();
    assert.equal(runs, 1);
    release();
    await q.idle();
    assert.equal(runs, 2);
    assert.equal(maxRunning, 1);
  });

  it('retries a failing key with exponential backoff, then forgets it', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const q = new WorkQueue(async () => {
      times.push(Date.now());
      if (times.length < 3) throw new Error('boom');
    }, { baseDelayMs: 20, maxDelayMs: 1000, onError: (_k, _e, ms) => errors.push(ms) });
    q.add('x');
    const deadline = Date.now() + 5000;
    while (times.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await q.idle();
    assert.equal(times.length, 3);
    assert.deepEqual(errors, [20, 40]);
    assert.ok(times[2]! - times[1]! >= 35, 'the second retry waits longer');
    assert.equal(q.backoff(30), 1000, 'capped');
  });

  it('is bounded: past maxKeys new keys are dropped and counted', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(() => gate, { workers: 1, maxKeys: 2 });
    q.add('running');
    await tick();
    q.add('a');
    q.add('b');
    q.add('c');
    assert.equal(q.dropped, 1);
    assert.equal(q.depth, 3);
    release();
    await q.idle();
    assert.equal(q.depth, 0);
  });

  it('stop drops waiting keys and pending retries', async () => {
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      throw new Error('x');
    }, { baseDelayMs: 10 });
    q.add('a');
    await tick();
    q.stop();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runs, 1);
  });
});

describe('WorkQueue acts on the Result', () => {
  it('a terminal error is reported and not retried; a transient one is retried', async () => {
    const runs = new Map<string, number>();
    const terminal: string[] = [];
    const retried: string[] = [];
    const q = new WorkQueue(async (k): Promise<Result> => {
      runs.set(k, (runs.get(k) ?? 0) + 1);
      if (k === 't') return terminalError('refused');
      if (k === 'r' && runs.get(k) === 1) return transientError('unreachable');
      return DONE;
    }, { baseDelayMs: 10, onTerminal: (k, e) => terminal.push(`${k}:${e}`), onError: (k, e) => retried.push(`${k}:${String(e)}`) });
    q.add('t');
    q.add('r');
    await new Promise((r) => setTimeout(r, 100));
    await q.idle();
    assert.deepEqual(Object.fromEntries(runs), { t: 1, r: 2 });
    assert.deepEqual(terminal, ['t:refused']);
    assert.deepEqual(retried, ['r:unreachable']);
  });

  it('requeue after N ms runs the key again then; 0 right after this run', async () => {
    const times: number[] = [];
    const q = new WorkQueue(async () => {
      times.push(Date.now());
      if (times.length === 1) return { requeueAfterMs: 0 };
      if (times.length === 2) return { requeueAfterMs: 50 };
      return {};
    });
    q.add('k');
    const deadline = Date.now() + 5000;
    while (times.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await q.idle();
    assert.equal(times.length, 3);
    assert.ok(times[2]! - times[1]! >= 45, 'waited for the requeue');
  });
});
