// Memory relief (src/cli/memory-relief.ts): when it gives memory back, with
// fake process actions; and the real actions (V8's gc, the allocator addon)
// against this process.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { GROWTH_BYTES, processActions, QUIET_ELU, type ReliefActions, reliefDue, startMemoryRelief } from '../../src/cli/memory-relief.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { loadMemoryNative } from '../../src/native/memory.ts';

const MiB = 1024 * 1024;

describe('memory relief', () => {
  it('is due only when the loop went quiet and the RSS grew enough since the last one', () => {
    const state = { baselineRss: 100 * MiB };
    assert.equal(reliefDue(state, 0, 100 * MiB + GROWTH_BYTES), true);
    assert.equal(reliefDue(state, QUIET_ELU / 2, 300 * MiB), true);
    assert.equal(reliefDue(state, QUIET_ELU, 300 * MiB), false, 'busy: never during a storm');
    assert.equal(reliefDue(state, 0.9, 300 * MiB), false);
    assert.equal(reliefDue(state, 0, 100 * MiB + GROWTH_BYTES - 1), false, 'not grown enough');
  });

  it('runs gc and trim once after a busy period, counts them, and waits for new growth', async () => {
    const calls: string[] = [];
    let rss = 100 * MiB;
    let elu = 0.9;
    const actions: ReliefActions = {
      rss: () => rss,
      elu: () => elu,
      gc: () => calls.push('gc'),
      trim: () => (calls.push('trim'), true),
    };
    const registry = new Registry();
    const tick = () => new Promise((r) => setTimeout(r, 15));
    const stop = startMemoryRelief({ log: silentLogger(), registry, actions, intervalMs: 5 });
    try {
      rss = 300 * MiB; // a storm: busy and big
      await tick();
      assert.equal(calls.length, 0, 'nothing while busy');
      elu = 0.01; // quiet now; the gc brings it down
      actions.gc = () => {
        calls.push('gc');
        rss = 120 * MiB;
      };
      await tick();
      assert.deepEqual(calls.slice(0, 2), ['gc', 'trim']);
      await tick();
      assert.equal(calls.length, 2, 'once: 120 MiB is the new baseline');
      const text = await registry.metrics();
      assert.match(text, /^peripety_memory_reliefs_total 1$/m);
      assert.match(text, new RegExp(`^peripety_memory_released_bytes_total ${180 * MiB}$`, 'm'));
    } finally {
      stop();
    }
  });

  it('the real actions: a full gc frees garbage; malloc_trim and mallinfo2 answer', async () => {
    const a = await processActions();
    assert.equal(typeof a.elu(), 'number');
    let junk: object[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    const before = process.memoryUsage().heapUsed;
    junk = null;
    a.gc();
    assert.equal(junk, null);
    assert.ok(process.memoryUsage().heapUsed < before, 'the gc collected the array');
    assert.equal(a.trim(), true);
    const n = loadMemoryNative();
    assert.ok([0, 1].includes(n.trim()));
    const [arena, inUse, free] = n.stats();
    assert.ok(arena > 0 && inUse > 0 && free >= 0 && inUse + free <= arena + 1, `mallinfo2: ${n.stats().join(' ')}`);
  });
});
