// diffSections (src/config/diff.ts): the one way a reload tells what changed
// (collector sections, storage backends, restart-only [main] keys, the
// multicast group of `peripety receive`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAgentConfig, restartOnlyChanges } from '../../src/agent/agent.ts';
import { diffSections, sameJson, unchanged } from '../../src/config/diff.ts';
import { DEFAULT_CONFIG_TOML } from '../../src/config/default.ts';

describe('diffSections', () => {
  it('sorts names into kept, added, removed and changed', () => {
    const d = diffSections<unknown>(
      [['kmsg', { start: 'end' }], ['udev', {}], ['old', 1]],
      [['kmsg', { start: 'end' }], ['udev', { x: 1 }], ['new', 2]],
    );
    assert.deepEqual(d, { kept: ['kmsg'], added: ['new'], removed: ['old'], changed: ['udev'], reordered: false });
    assert.equal(unchanged(d), false);
  });
  it('the same sections in the same order: unchanged', () => {
    const s = [['a', { x: [1, 2] }], ['b', null]] as const;
    const d = diffSections(s, s.map(([n, v]) => [n, structuredClone(v)] as const));
    assert.deepEqual(d, { kept: ['a', 'b'], added: [], removed: [], changed: [], reordered: false });
    assert.equal(unchanged(d), true);
    assert.equal(unchanged(diffSections([], [])), true);
  });
  it('a move counts (start and load order are the configured order), removed and added names aside', () => {
    const d = diffSections([['a', 1], ['gone', 0], ['b', 2]], [['new', 0], ['b', 2], ['a', 1]]);
    assert.equal(d.reordered, true);
    assert.deepEqual(d.kept, ['b', 'a']);
    assert.equal(unchanged(d), false);
    assert.equal(diffSections([['a', 1], ['gone', 0], ['b', 2]], [['a', 1], ['b', 2], ['new', 0]]).reordered, false);
  });
  it('values compare as JSON by default (key order counts, as in the file), or with the comparison given', () => {
    assert.equal(sameJson({ a: 1, b: 2 }, { b: 2, a: 1 }), false);
    assert.deepEqual(diffSections([['x', { a: 1, b: 2 }]], [['x', { b: 2, a: 1 }]]).changed, ['x']);
    assert.deepEqual(diffSections([['x', 'A']], [['x', 'a']], (p, q) => p.toLowerCase() === q.toLowerCase()).kept, ['x']);
  });
  it('restart-only [main] keys: the changed ones, in key order; state_dir not when --state-dir sets it', () => {
    const main = parseAgentConfig(DEFAULT_CONFIG_TOML, 'default').main;
    assert.deepEqual(restartOnlyChanges(main, { ...main }, false), []);
    const next = { ...main, state_dir: '/elsewhere', api_listen: '127.0.0.1:1', log_level: main.log_level };
    assert.deepEqual(restartOnlyChanges(main, next, false), ['api_listen', 'state_dir']);
    assert.deepEqual(restartOnlyChanges(main, next, true), ['api_listen']);
  });
});
