import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBackend, memoryBackend } from '../../../../src/storage/backends/memory.ts';
import { MemoryConfig } from '../../../../src/storage/backends/options.ts';
import type { StorageEvent } from '../../../../src/events/schema.ts';
import { eventTimeUs } from '../../../../src/events/time.ts';
import { backendContract } from './contract.ts';
import { SEC, T0, context, ev, evs, ids, configIssues } from './events.ts';
import { systemIs } from './filters.ts';

const ctx = context('/nonexistent');

backendContract('memory', () => ({ make: () => memoryBackend.build('mem', MemoryConfig.parse({ BufferSize: 100 }), ctx), cleanup: () => {} }), {
  persistent: false,
});

const issues = (input: unknown): string[] => configIssues(MemoryConfig, input);

describe('memory: configuration', () => {
  it('has defaults, also when Config is left out', () => {
    assert.deepEqual(MemoryConfig.parse({}), { BufferSize: 1000 });
    assert.deepEqual(MemoryConfig.parse(undefined), { BufferSize: 1000 });
    assert.deepEqual(MemoryConfig.parse({ BufferSize: 1_000_000 }), { BufferSize: 1_000_000 });
  });
  it('rejects bad values with clear messages', () => {
    assert.deepEqual(issues({ BufferSize: -1 }), ['BufferSize: BufferSize must be from 1 to 1000000 events']);
    assert.deepEqual(issues({ BufferSize: 0 }), ['BufferSize: BufferSize must be from 1 to 1000000 events']);
    assert.deepEqual(issues({ BufferSize: 1_000_001 }), ['BufferSize: BufferSize must be from 1 to 1000000 events']);
    assert.deepEqual(issues({ BufferSize: 2.5 }), ['BufferSize: BufferSize must be a whole number of events']);
    assert.deepEqual(issues({ BufferSize: '100' }), ['BufferSize: BufferSize must be a number of events']);
    assert.match(issues({ BufferSize: 10, Buffersize: 10 })[0]!, /Unrecognized key.*Buffersize/);
    assert.equal(issues(null).length, 1);
  });
});

describe('memory: ring buffer', () => {
  it('keeps the newest BufferSize events, overwriting the oldest', async () => {
    const b = new MemoryBackend('m', { BufferSize: 5 });
    await b.start();
    await b.persist(evs(0, 8));
    assert.equal(b.size, 5);
    assert.deepEqual(ids((await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events), [7, 6, 5, 4, 3]);
    // an evicted event is no longer held, so storing it again is not a duplicate
    await b.persist([ev(0)]);
    assert.deepEqual(ids((await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events), [7, 6, 5, 4, 0]);
    // held ones still are
    await b.persist([ev(7), ev(6)]);
    assert.equal(b.size, 5);
    await b.shutdown();
  });

  it('works with a buffer of one', async () => {
    const b = new MemoryBackend('m', { BufferSize: 1 });
    await b.start();
    await b.persist([ev(3), ev(1), ev(2)]);
    assert.deepEqual(ids((await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events), [2]);
  });

  it('answers like a sorted model under random arrival order, duplicates and eviction', async () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const cap of [1, 2, 7, 50]) {
      const b = new MemoryBackend('m', { BufferSize: cap });
      await b.start();
      let model: { e: StorageEvent; t: number; n: number }[] = [];
      let n = 0;
      for (let round = 0; round < 200; round++) {
        const batch: StorageEvent[] = [];
        for (let k = rnd(4); k >= 0; k--) {
          const i = rnd(60);
          // mostly in order, sometimes late, sometimes equal times
          const t = rnd(5) === 0 ? T0 + rnd(round + 1) * SEC : T0 + round * SEC + rnd(3);
          batch.push(ev(i, { timeUs: t }));
        }
        await b.persist(batch);
        for (const e of batch) {
          if (model.some((m) => m.e.event_id === e.event_id)) continue;
          model.push({ e, t: eventTimeUs(e), n: n++ });
          if (model.length > cap) model = model.slice(1);
        }
        const newest = rnd(3) === 0 ? 0 : T0 + rnd(round + 2) * SEC;
        const oldest = rnd(3) === 0 ? 0 : T0 + rnd(round + 1) * SEC - SEC;
        const limit = rnd(4) === 0 ? 0 : rnd(6) + 1;
        const f = rnd(2) === 0 ? null : systemIs('block');
        const want = model
          .filter((m) => (newest === 0 || m.t <= newest) && (oldest === 0 || m.t > oldest) && (f === null || m.e.system === 'block'))
          .sort((a, c) => c.t - a.t || c.n - a.n);
        const got = await b.findEvents({ filter: f, newest, oldest, limit });
        const cut = limit > 0 && want.length > limit;
        assert.deepEqual(
          got.events.map((e) => e.event_id),
          want.slice(0, limit > 0 ? limit : undefined).map((m) => m.e.event_id),
          `cap ${cap} round ${round}`,
        );
        assert.equal(got.isTruncated, cut);
      }
    }
  });
});
