import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_HTTP_LIMIT, parseEventsQuery } from '../../../src/api/query.ts';

const q = (s: string) => parseEventsQuery(new URLSearchParams(s));

describe('GET /v1/events parameters', () => {
  it('defaults: no filter, unbounded time, the default limit', () => {
    const r = q('');
    assert.ok(r.ok);
    assert.deepEqual(r.request, { filter: null, newest: 0, oldest: 0, limit: 1000, unbounded: false, backend: null });
  });
  it('takes filter, range, limit and backend', () => {
    const r = q(`filter=${encodeURIComponent(".event.system 'block' STRCMP")}&newest=1700000000000000&oldest=1690000000000000&limit=5&backend=local`);
    assert.ok(r.ok);
    assert.equal(r.request.filter, ".event.system 'block' STRCMP");
    assert.equal(r.request.newest, 1700000000000000);
    assert.equal(r.request.oldest, 1690000000000000);
    assert.equal(r.request.limit, 5);
    assert.equal(r.request.backend, 'local');
  });
  it('limit=0 means everything, capped per answer and reported', () => {
    const r = q('limit=0');
    assert.ok(r.ok);
    assert.equal(r.request.limit, MAX_HTTP_LIMIT);
    assert.equal(r.request.unbounded, true);
  });
  for (const [input, want] of [
    ['newest=yesterday', /newest: must be Unix time in microseconds/],
    ['newest=-5', /newest: must be Unix time/],
    ['limit=1.5', /limit: must be a non-negative integer/],
    ['limit=5&limit=6', /given twice/],
    ['colour=red', /unknown parameter "colour"/],
    ['backend=../etc', /backend: must be a backend name/],
    [`filter=${'x'.repeat(5000)}`, /filter: at most 4096 characters/],
    ['newest=100&oldest=100', /oldest must be before newest/],
  ] as const) {
    it(`rejects ${input.slice(0, 40)}`, () => {
      const r = q(input);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, want);
    });
  }
});
