import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlCache } from '../../../src/contracts/ttl-cache.ts';

describe('TtlCache', () => {
  it('expires an entry after its TTL (the cache default, or the one set() gives)', () => {
    let now = 1000;
    const c = new TtlCache<string>({ ttlMs: 10, max: 10, now: () => now });
    c.set('a', 'A');
    c.set('short', 'S', 2);
    assert.equal(c.get('a'), 'A');
    assert.equal(c.get('short'), 'S');
    now += 2;
    assert.equal(c.get('short'), undefined);
    assert.equal(c.size, 1, 'an expired entry is dropped when read');
    now += 7;
    assert.equal(c.get('a'), 'A');
    now += 1;
    assert.equal(c.get('a'), undefined);
    assert.equal(c.size, 0);
  });

  it('set() again replaces the value and restarts the TTL', () => {
    let now = 0;
    const c = new TtlCache<number>({ ttlMs: 10, max: 10, now: () => now });
    c.set('a', 1);
    now = 8;
    c.set('a', 2);
    now = 15;
    assert.equal(c.get('a'), 2);
    assert.equal(c.size, 1);
  });

  it('by default evicts in set order: hits do not make an entry young', () => {
    const c = new TtlCache<number>({ ttlMs: 1e9, max: 3 });
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    for (let i = 0; i < 10; i++) assert.equal(c.get('a'), 1);
    c.set('d', 4);
    assert.equal(c.size, 3);
    assert.equal(c.get('a'), undefined, 'the oldest set goes first, however often it was read');
    assert.deepEqual(['b', 'c', 'd'].map((k) => c.get(k)), [2, 3, 4]);
    c.set('b', 22); // set again: young
    c.set('e', 5);
    assert.equal(c.get('c'), undefined);
    assert.equal(c.get('b'), 22);
  });

  it('with refreshOnHit, a key read after half the bound was set since survives a flood', () => {
    const c = new TtlCache<number>({ ttlMs: 1e9, max: 4, refreshOnHit: true });
    c.set('hot', 0);
    for (let i = 0; i < 100; i++) {
      c.set(`x${i}`, i);
      assert.equal(c.get('hot'), 0, `after ${i + 1} new keys`);
      assert.ok(c.size <= 4);
    }
    const two = new TtlCache<number>({ ttlMs: 1e9, max: 2, refreshOnHit: true });
    two.set('sdb', 1);
    two.set('sdc', 2);
    two.get('sdb');
    two.set('sdd', 3);
    assert.equal(two.get('sdc'), undefined, 'the least recently used went');
    assert.equal(two.get('sdb'), 1);
  });

  it('stays within its bound under a flood of new keys', () => {
    const c = new TtlCache<number>({ ttlMs: 1e9, max: 3 });
    for (let i = 0; i < 10_000; i++) c.set(`k${i}`, i);
    assert.equal(c.size, 3);
    assert.equal(c.get('k9996'), undefined);
    assert.equal(c.get('k9999'), 9999);
    assert.equal(new TtlCache<number>({ ttlMs: 1, max: 0 }).size, 0);
    const one = new TtlCache<number>({ ttlMs: 1e9, max: 0 });
    one.set('a', 1);
    one.set('b', 2);
    assert.equal(one.size, 1, 'a bound below 1 counts as 1');
  });

  it('deleteWhere() and clear() drop entries, expired or not', () => {
    let now = 0;
    const c = new TtlCache<{ deps: string[] }>({ ttlMs: 10, max: 10, now: () => now });
    c.set('a', { deps: ['sdb'] });
    c.set('b', { deps: ['sdc'] });
    c.set('c', { deps: ['sdb', 'dm-0'] });
    c.deleteWhere((v) => v.deps.includes('sdb'));
    assert.equal(c.size, 1);
    assert.deepEqual(c.get('b'), { deps: ['sdc'] });
    now = 100;
    c.clear();
    assert.equal(c.size, 0);
  });
});
