import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay } from '../../../src/contracts/backoff.ts';

describe('backoffDelay', () => {
  it('doubles from initialMs per failure up to maxMs', () => {
    const p = { initialMs: 500, maxMs: 30_000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, p)), [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });
  it('counts an attempt below 1 as the first, and stays finite for absurd counts', () => {
    const p = { initialMs: 100, maxMs: 5000 };
    assert.equal(backoffDelay(0, p), 100);
    assert.equal(backoffDelay(-3, p), 100);
    assert.equal(backoffDelay(1e6, p), 5000);
    assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, { initialMs: 0, maxMs: 10 }), 0);
  });
  it('spreads the capped wait by the jitter factor range', () => {
    const p = { initialMs: 100, maxMs: 400, jitter: { min: 0.5, max: 1 } };
    assert.equal(backoffDelay(1, p, () => 0), 50);
    assert.equal(backoffDelay(3, p, () => 0), 200);
    assert.ok(backoffDelay(3, p, () => 0.999999) < 400);
    assert.ok(backoffDelay(3, p, () => 0.999999) > 399);
    assert.equal(backoffDelay(9, p, () => 0), 200, 'jitter applies after the cap');
    const wide = { initialMs: 500, maxMs: 10_000, jitter: { min: 0.8, max: 1.2 } };
    assert.equal(backoffDelay(1, wide, () => 0), 400);
    assert.ok(Math.abs(backoffDelay(10, wide, () => 0.5) - 10_000) < 1e-6);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(20, wide);
      assert.ok(d >= 8000 && d < 12_000, String(d));
    }
  });
  it('never calls random without jitter', () => {
    assert.equal(backoffDelay(2, { initialMs: 10, maxMs: 100 }, () => assert.fail('random called')), 20);
  });
});

describe('Backoff', () => {
  it('next() counts failures, peek() does not, reset() starts over', () => {
    const b = new Backoff({ initialMs: 500, maxMs: 30_000 });
    assert.equal(b.failures, 0);
    assert.equal(b.peek(), 500);
    assert.deepEqual([b.next(), b.next(), b.next()], [500, 1000, 2000]);
    assert.equal(b.failures, 3);
    assert.equal(b.peek(), 4000);
    assert.equal(b.failures, 3);
    for (let i = 0; i < 10; i++) b.next();
    assert.equal(b.next(), 30_000);
    b.reset();
    assert.equal(b.failures, 0);
    assert.equal(b.next(), 500);
  });
  it('passes its random source to the jitter', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: { min: 0.5, max: 1 } }, () => 0);
    assert.deepEqual([b.next(), b.next()], [50, 100]);
  });
});
