import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { CompileResult } from '../../../src/filter/types.ts';
import { accepts, describeFilterProblem, explainFailure, PluginFilterLoader } from '../../../src/storage/filters.ts';
import { evaluations, mkEvent, testCompile } from './helpers.ts';

const loader = new PluginFilterLoader(testCompile);

function load(entries: readonly unknown[] | null) {
  const r = loader.load('b', entries);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r;
}

describe('PluginFilterLoader (seed)', () => {
  beforeEach(() => evaluations.clear());

  it('a missing Filter: OK, no filters, reported as never receiving events', () => {
    const r = load(null);
    assert.deepEqual(r.filters, []);
    assert.match(r.warning ?? '', /backend "b" has no Filter: loaded, will never receive events/);
  });

  it('an empty Filter list: OK, no filters, reported', () => {
    const r = load([]);
    assert.deepEqual(r.filters, []);
    assert.match(r.warning ?? '', /empty Filter list: loaded, will never receive events/);
  });

  it('a broken filter among good ones is skipped and reported; the others are kept in order', () => {
    const r = load(['type:A', 'x BAD y', 'type:B']);
    assert.deepEqual(r.filters.map((f) => f.source), ['type:A', 'type:B']);
    assert.equal(r.warning, null);
    assert.deepEqual(r.problems, [{ backend: 'b', index: 1, filter: 'x BAD y', position: 2, token: 'BAD', message: 'BAD is not a command' }]);
    assert.equal(describeFilterProblem(r.problems[0]!), 'backend "b": filter 1 "x BAD y" at position 2 (token "BAD"): BAD is not a command');
  });

  it('only broken filters: OK with an empty list, each reported, and the warning', () => {
    const r = load(['BAD', 'junk']);
    assert.equal(r.filters.length, 0);
    assert.equal(r.problems.length, 2);
    assert.match(r.warning ?? '', /no valid filter/);
  });

  it('reports a bounded filter string', () => {
    const r = load([`BAD ${'x'.repeat(5000)}`]);
    assert.ok(r.problems[0]!.filter.length <= 201);
  });

  it('a non-string entry or a throwing compiler breaks that entry only', () => {
    const throwing = new PluginFilterLoader((s): CompileResult => {
      if (s === 'throw') throw new Error('compiler bug');
      return testCompile(s);
    });
    const r = throwing.load('b', ['throw', 7, '1 1 EQ']);
    assert.ok(r.ok);
    assert.equal(r.filters.length, 1);
    assert.deepEqual(r.problems.map((p) => [p.index, p.message]), [[0, 'the filter compiler failed: compiler bug'], [1, 'not a string']]);
  });

  it('FAILED when the setup itself fails', () => {
    const r = loader.load('b', 'not a list' as unknown as string[]);
    assert.equal(r.ok, false);
    const many = loader.load('b', Array.from({ length: 65 }, () => '1 1 EQ'));
    assert.equal(many.ok, false);
  });
});

describe('StorageBackend.accepts (seed)', () => {
  beforeEach(() => evaluations.clear());

  it('the first MATCH wins: the second filter is not evaluated', () => {
    const { filters } = load(['1 1 EQ', 'type:DISK_ERROR']);
    assert.equal(accepts(filters, mkEvent(1)), 'OK');
    assert.equal(evaluations.get('1 1 EQ'), 1);
    assert.equal(evaluations.get('type:DISK_ERROR'), undefined);
  });

  it('a later filter matches after NO_MATCH', () => {
    const { filters } = load(['type:OTHER', 'type:DISK_ERROR']);
    assert.equal(accepts(filters, mkEvent(1)), 'OK');
    assert.equal(evaluations.get('type:OTHER'), 1);
  });

  it('no match: NOT_FOUND; no filters: NOT_FOUND', () => {
    assert.equal(accepts(load(['none', 'type:OTHER']).filters, mkEvent(1)), 'NOT_FOUND');
    assert.equal(accepts([], mkEvent(1)), 'NOT_FOUND');
  });

  it('an evaluation ERROR: FAILED at once, later filters are not tried (as the seed)', () => {
    const { filters } = load(['fail:DISK_ERROR', '1 1 EQ']);
    assert.equal(accepts(filters, mkEvent(1)), 'FAILED');
    assert.equal(evaluations.get('1 1 EQ'), undefined);
    assert.deepEqual(explainFailure(filters, mkEvent(1)), { index: 0, filter: 'fail:DISK_ERROR', error: 'division by zero at position 0' });
    // other events are not affected
    assert.equal(accepts(filters, mkEvent(2, 'OTHER')), 'OK');
    assert.equal(explainFailure(filters, mkEvent(2, 'OTHER')), null);
  });

  it('an error after a match is never reached', () => {
    assert.equal(accepts(load(['1 1 EQ', 'error']).filters, mkEvent(1)), 'OK');
  });
});
