// The status reconciler's pure part (src/controller/reconcile-status.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Accepted } from '../../../src/controller/cache.ts';
import { statusOf } from '../../../src/controller/reconcile-status.ts';

const ok: Accepted<unknown> = { version: 'u/2', ok: true, message: '', spec: {}, filterErrors: [], selector: undefined };
const NOW = '2026-01-02T03:04:05Z';

describe('statusOf', () => {
  it('counts applied and failed nodes, failures sorted by node', () => {
    const s = statusOf('sbe', ok, 2, {}, [
      { node: 'b', applied: false, failure: 'refused' },
      { node: 'a', applied: false, failure: 'unreachable' },
      { node: 'c', applied: true, failure: null },
      { node: 'd', applied: false, failure: null },
    ], NOW);
    assert.equal(s.observedGeneration, 2);
    assert.equal(s.ready, '1/4');
    assert.equal(s.nodesFailed, 2);
    assert.deepEqual(s.failures, [{ node: 'a', message: 'unreachable' }, { node: 'b', message: 'refused' }]);
    const conditions = s.conditions as { type: string; status: string; reason: string; observedGeneration: number }[];
    assert.deepEqual(conditions.map((c) => [c.type, c.status, c.reason, c.observedGeneration]), [['Accepted', 'True', 'Valid', 2], ['Ready', 'False', 'ApplyFailed', 2]]);
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const old = { conditions: [{ type: 'Ready', status: 'True' as const, observedGeneration: 1, lastTransitionTime: '2020-01-01T00:00:00Z', reason: 'Applied', message: '' }] };
    const s = statusOf('sep', ok, 1, old, [{ node: 'a', applied: true, failure: null }], NOW);
    const ready = (s.conditions as { type: string; lastTransitionTime: string }[]).find((c) => c.type === 'Ready');
    assert.equal(ready?.lastTransitionTime, '2020-01-01T00:00:00Z');
    const accepted = (s.conditions as { type: string; lastTransitionTime: string }[]).find((c) => c.type === 'Accepted');
    assert.equal(accepted?.lastTransitionTime, NOW);
  });

  it('an invalid spec is not ready, whatever the nodes', () => {
    const s = statusOf('sep', { ...ok, ok: false, message: 'spec.plugin: unknown' }, 3, {}, [{ node: 'a', applied: false, failure: null }], NOW);
    const conditions = s.conditions as { type: string; status: string; reason: string; message: string }[];
    assert.deepEqual(conditions.map((c) => [c.status, c.reason]), [['False', 'InvalidSpec'], ['False', 'NotAccepted']]);
    assert.equal(conditions[0]!.message, 'spec.plugin: unknown');
  });
});
