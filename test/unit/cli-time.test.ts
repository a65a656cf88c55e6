import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimeArg } from '../../src/cli/time.ts';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const us = (s: string) => {
  const r = parseTimeArg(s, NOW);
  assert.ok(r.ok, `${s}: ${r.ok ? '' : r.error}`);
  return r.us;
};

describe('prpt time arguments', () => {
  it('now and durations ago', () => {
    assert.equal(us('now'), NOW * 1000);
    assert.equal(us('15m'), (NOW - 15 * 60_000) * 1000);
    assert.equal(us('2h'), (NOW - 7_200_000) * 1000);
    assert.equal(us('7d'), (NOW - 7 * 86_400_000) * 1000);
  });
  it('Unix seconds and microseconds', () => {
    assert.equal(us('1700000000'), 1_700_000_000_000_000);
    assert.equal(us('1700000000123456'), 1_700_000_000_123_456);
  });
  it('ISO 8601, UTC when no zone is given', () => {
    assert.equal(us('2026-11-22'), Date.parse('2026-11-22T00:00:00Z') * 1000);
    assert.equal(us('2026-11-22T10:30:00Z'), Date.parse('2026-11-22T10:30:00Z') * 1000);
    assert.equal(us('2026-11-22 10:30'), Date.parse('2026-11-22T10:30:00Z') * 1000);
    assert.equal(us('2026-11-22T10:30:00+0100'), Date.parse('2026-11-22T09:30:00Z') * 1000);
    assert.equal(us('2026-11-22T10:30:00.25Z'), Date.parse('2026-11-22T10:30:00Z') * 1000 + 250_000);
  });
  for (const bad of ['yesterday', '15x', '2026-13-40', '', '-5m', '1.5h']) {
    it(`rejects ${JSON.stringify(bad)} with a hint`, () => {
      const r = parseTimeArg(bad, NOW);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, /is not a time: use now/);
    });
  }
});
