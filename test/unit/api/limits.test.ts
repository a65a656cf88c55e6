// The pure parts of the API's limits: client keys, the connection budget with
// its reserve, the token bucket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, ConnectionBudget, ReviewAdmission, TokenBucket } from '../../../src/api/limits.ts';

describe('clientKey', () => {
  it('the address: IPv4-mapped IPv6 unwrapped, IPv6 zone dropped, each IPv6 address on its own', () => {
    assert.equal(clientKey('10.1.2.3'), '10.1.2.3');
    assert.equal(clientKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(clientKey('2001:DB8::1'), '2001:db8::1');
    assert.notEqual(clientKey('2001:db8::1'), clientKey('2001:db8::2'), 'pods of one node share a /64, not a budget');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80::1');
    assert.equal(clientKey(undefined), 'unknown');
  });
});

describe('ConnectionBudget', () => {
  it('refuses beyond the per-client share and the total, and keeps the reserve for first connections', () => {
    const b = new ConnectionBudget({ total: 6, perClient: 3, reserved: 2 });
    assert.deepEqual(['a', 'a', 'a', 'a'].map((c) => b.admit(c)), [null, null, null, 'per_client_limit']);
    assert.equal(b.admit('b'), null);
    assert.equal(b.size, 4);
    assert.equal(b.admit('b'), 'total_limit', 'b holds one: the last 2 are for clients with none');
    assert.equal(b.admit('c'), null);
    assert.equal(b.admit('d'), null);
    assert.equal(b.admit('e'), 'total_limit');
    b.release('a');
    assert.equal(b.admit('e'), null);
    assert.equal(b.clients, 5);
    for (const c of ['a', 'a', 'b', 'c', 'd', 'e']) b.release(c);
    assert.equal(b.size, 0);
    assert.equal(b.clients, 0);
    b.release('nobody');
    assert.equal(b.size, 0, 'a release without an admit changes nothing');
  });
  it('refuses impossible limits', () => {
    assert.throws(() => new ConnectionBudget({ total: 4, perClient: 5, reserved: 0 }), /perClient/);
    assert.throws(() => new ConnectionBudget({ total: 4, perClient: 2, reserved: 4 }), /reserved/);
  });
});

describe('TokenBucket', () => {
  it('gives the burst, then refills at the rate', () => {
    let now = 0;
    const t = new TokenBucket({ burst: 3, perSecond: 2, now: () => now });
    assert.deepEqual([1, 2, 3, 4].map(() => t.take()), [true, true, true, false]);
    assert.equal(t.retryAfterSeconds, 1);
    now += 499;
    assert.equal(t.take(), false);
    now += 1;
    assert.equal(t.take(), true);
    now += 60_000;
    assert.deepEqual([1, 2, 3, 4].map(() => t.take()), [true, true, true, false], 'never more than the burst');
  });
});

describe('ReviewAdmission', () => {
  const limits = { burst: 4, perSecond: 1, clientBurst: 2, clientPerSecond: 1, inFlight: 3, clientInFlight: 2 };
  it('limits the rate per client and in all, and what is in flight per client and in all; a refusal spends nothing', () => {
    let now = 0;
    const a = new ReviewAdmission(limits, () => now);
    const x1 = a.admit('x');
    const x2 = a.admit('x');
    assert.ok(x1.ok && x2.ok);
    assert.deepEqual(a.admit('x'), { ok: false, reason: 'review_busy', retryAfterSeconds: 1 }, 'x has 2 in flight');
    x1.release();
    x1.release(); // twice: released once
    assert.deepEqual(a.admit('x'), { ok: false, reason: 'review_rate_limited', retryAfterSeconds: 1 }, 'x spent its burst of 2');
    const y1 = a.admit('y');
    const z1 = a.admit('z');
    assert.ok(y1.ok && z1.ok, 'y and z have their own shares');
    assert.deepEqual(a.admit('w'), { ok: false, reason: 'review_busy', retryAfterSeconds: 1 }, '3 in flight in all (x, y, z)');
    y1.release();
    assert.deepEqual(a.admit('w'), { ok: false, reason: 'review_rate_limited', retryAfterSeconds: 1 }, 'the global burst of 4 is spent');
    now += 1_000;
    const w1 = a.admit('w');
    assert.ok(w1.ok, 'one global token back; w\'s own bucket was not spent by the refusals');
    assert.equal(a.admit('w').ok, false);
  });
  it('remembers a bounded number of clients', () => {
    const a = new ReviewAdmission({ ...limits, burst: 1000, perSecond: 1000, inFlight: 1000, maxClients: 3 }, () => 0);
    const held = a.admit('c0');
    assert.ok(held.ok);
    for (let i = 1; i < 50; i++) {
      const r = a.admit(`c${i}`);
      if (r.ok) r.release();
    }
    assert.ok(a.size <= 3, `${a.size} clients remembered`);
    assert.equal(a.admit('c0').ok, true, 'a client with a review in flight is kept (its second review allowed)');
    assert.deepEqual(a.admit('c0'), { ok: false, reason: 'review_busy', retryAfterSeconds: 1 });
  });
});
