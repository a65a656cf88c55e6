// The static cost estimate of a filter (src/filter/cost.ts): the automaton
// size of a regex as the linear engine builds it, over-estimated, and a
// filter's total. Pure: no timing here (test/hostile/filter-cost-budget
// measures the real thing).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileFilter } from '../../../src/filter/compile.ts';
import { FILTER_COST_BUDGET, MAX_REGEX_SUBJECT, regexStates } from '../../../src/filter/cost.ts';

describe('regexStates', () => {
  it('counts atoms, alternatives, groups, captures and quantifiers', () => {
    assert.equal(regexStates('abc'), 3);
    assert.equal(regexStates('a|b'), 3, 'two atoms and the split');
    assert.equal(regexStates('(a)'), 3, 'a capture adds its two register writes');
    assert.equal(regexStates('(?:a)'), 1);
    assert.equal(regexStates('(?<n>a)'), 3);
    assert.equal(regexStates('(?<=x)a'), 2, 'lookbehind does not capture');
    assert.equal(regexStates('[a-z]'), 1);
    assert.equal(regexStates('[]a]'), 1, 'a leading ] is literal');
    assert.equal(regexStates('\\d'), 1);
    assert.equal(regexStates('a*'), 3);
    assert.equal(regexStates('a+'), 4);
    assert.equal(regexStates('a?'), 2);
    assert.equal(regexStates('a{3}'), 5);
    assert.equal(regexStates('a{2,5}'), 10);
    assert.equal(regexStates('a{2,}'), 6);
    assert.equal(regexStates('(?:ab){0,15}'), 47, 'counted repetitions are unrolled');
    assert.equal(regexStates('a{'), 2, 'a lone brace is a literal');
    assert.equal(regexStates(''), 1);
  });

  it('grows with nesting, and saturates instead of overflowing', () => {
    assert.ok(regexStates('(?:(.*)(.*)(.*)(.*)){0,15}') > 300);
    assert.ok(Number.isSafeInteger(regexStates('(?:(?:(?:(?:a{999999999}){999999999}){999999999}){999999999})')));
  });

  it('terminates on anything (unbalanced, truncated), without throwing', () => {
    const alphabet = ['(', ')', '[', ']', '{', '}', '\\', '?', '*', '+', '|', 'a', '1', ',', '<', '>', ':', '=', '!', '^'];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let k = 0; k < 5000; k++) {
      const p = Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]).join('');
      const s = regexStates(p);
      assert.ok(Number.isSafeInteger(s) && s >= 1, p);
    }
  });
});

describe('a compiled filter carries its cost', () => {
  it('one step per token, a regex its states × the subject limit, a literal pattern one pass', () => {
    const plain = compileFilter(".event.system 'block' STRCMP");
    assert.ok(plain.ok);
    assert.equal(plain.filter.cost, 3);
    const lit = compileFilter(".e.msg r'read-only' REGEX");
    assert.ok(lit.ok);
    assert.equal(lit.filter.cost, 3 + MAX_REGEX_SUBJECT);
    const re = compileFilter(".e.msg r'sd[a-z]+' REGEX");
    assert.ok(re.ok);
    assert.equal(re.filter.cost, 3 + regexStates('sd[a-z]+') * MAX_REGEX_SUBJECT);
    assert.equal(FILTER_COST_BUDGET, 2048 * 4096);
  });
});
