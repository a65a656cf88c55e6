// The real-world corpus (test/fixtures/real-world, its README says how it was
// collected): every line well-formed, sourced and unique, and where the
// parsers make an event for a storage line, its system and device are right.
// The recall goal is printed by `npm run bench` (bench/real-world.bench.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCorpus, scoreCorpus } from '../helpers/real-world.ts';

describe('the real-world corpus', () => {
  const entries = loadCorpus();
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
    const s = scoreCorpus(entries);
    assert.deepEqual(s.wrongIdentity.map((w) => `${w.entry.line} → ${w.got}`), []);
  });
  it('no unrelated kernel line makes an event', () => {
    const s = scoreCorpus(entries);
    assert.deepEqual(s.falsePositives.map((e) => e.line), []);
  });
});
