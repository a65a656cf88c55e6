// The real-world corpus (test/fixtures/real-world, its README says how it was
// collected): every line well-formed, sourced and unique; the storage lines
// give their event — as pasted ≥ 95%, as bare kernel messages ≥ 97% — with
// the right system and device; no unrelated line gives one. `npm run bench`
// prints the same figures (bench/real-world.bench.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCorpus, scoreCorpus } from '../helpers/real-world.ts';

describe('the real-world corpus', () => {
  const entries = loadCorpus();
  // every line through the parsers once (~0.2 s); the tests below read the one score
  const s = scoreCorpus(entries);
  it('is well-formed: each line has a public web source, and no line repeats', () => {
    assert.ok(entries.length > 0);
    for (const e of entries) assert.match(e.source, /^https?:\/\/[^\s]+$/, e.line);
    const seen = new Set<string>();
    for (const e of entries) {
      assert.ok(!seen.has(e.line), `duplicate line: ${e.line}`);
      seen.add(e.line);
    }
  });
  it('where an event is made for a storage line, its system and device are the right ones', () => {
    assert.deepEqual(s.wrongIdentity.map((w) => `${w.entry.line} → ${w.got}`), []);
  });
  it('gives the expected event for at least 95% of the storage lines as pasted and 97% as bare kernel messages', () => {
    const misses = s.misses.map((m) => `${m.entry.expect?.type} ← ${m.entry.line} (got ${m.got})`).join('\n');
    assert.ok(s.storage >= 250, `at least 250 storage lines (${s.storage})`);
    assert.ok(s.hitAsPasted / s.storage >= 0.95, `as pasted: ${s.hitAsPasted} of ${s.storage}; missed:\n${misses}`);
    assert.ok(s.hitBare / s.storage >= 0.97, `bare: ${s.hitBare} of ${s.storage}`);
  });
  it('no unrelated kernel line makes an event', () => {
    assert.deepEqual(s.falsePositives.map((e) => e.line), []);
  });
});
