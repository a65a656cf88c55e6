// The push reconciler's pure decisions (src/controller/reconcile-push.ts):
// whether to push a node's configuration, and what an agent's answer means.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ANNOTATION_ENDPOINT, ANNOTATION_GENERATION, ANNOTATION_HASH } from '../../../src/contracts/lease.ts';
import type { RegisteredAgent } from '../../../src/controller/cache.ts';
import { afterPush, decidePush, PENDING_MS, type PushState, REFUSED_MS } from '../../../src/controller/reconcile-push.ts';

const url = new URL('http://10.0.0.1:9477/');
const agent: RegisteredAgent = { ok: true, endpoint: 'http://10.0.0.1:9477', url };
const lease = (generation: string, hash: string) => ({ [ANNOTATION_ENDPOINT]: agent.ok ? agent.endpoint : '', [ANNOTATION_GENERATION]: generation, [ANNOTATION_HASH]: hash });

describe('decidePush', () => {
  it('does nothing when the Lease shows the hash', () => {
    assert.deepEqual(decidePush('h1', lease('3', 'h1'), agent, undefined, 0), { do: 'nothing' });
  });

  it('pushes above both the Lease generation and the last pushed one', () => {
    assert.deepEqual(decidePush('h2', lease('3', 'h1'), agent, undefined, 0), { do: 'push', generation: 4, agentState: 'http://10.0.0.1:9477|3|h1' });
    const last: PushState = { hash: 'h0', generation: 7, agentState: 'x', at: 0, error: null, permanent: false };
    assert.deepEqual(decidePush('h2', lease('3', 'h1'), agent, last, 0), { do: 'push', generation: 8, agentState: 'http://10.0.0.1:9477|3|h1' });
  });

  it('waits for the agent to show a push while its Lease stays as it was, then pushes again', () => {
    const last: PushState = { hash: 'h2', generation: 4, agentState: 'http://10.0.0.1:9477|3|h1', at: 1000, error: null, permanent: false };
    assert.deepEqual(decidePush('h2', lease('3', 'h1'), agent, last, 1000 + PENDING_MS - 1), { do: 'nothing' });
    assert.equal(decidePush('h2', lease('3', 'h1'), agent, last, 1000 + PENDING_MS).do, 'push');
    // a restarted agent (generation 0, no hash) changes the Lease: pushed at once
    assert.equal(decidePush('h2', lease('0', ''), agent, last, 1001).do, 'push');
  });

  it('does not push a refused configuration again until something changes or REFUSED_MS pass', () => {
    const last: PushState = { hash: 'h2', generation: 4, agentState: 'http://10.0.0.1:9477|3|h1', at: 0, error: 'refused', permanent: true };
    assert.equal(decidePush('h2', lease('3', 'h1'), agent, last, REFUSED_MS - 1).do, 'nothing');
    assert.equal(decidePush('h2', lease('3', 'h1'), agent, last, REFUSED_MS).do, 'push');
    assert.equal(decidePush('h3', lease('3', 'h1'), agent, last, 1).do, 'push');
    // a transient failure is retried by the queue's backoff, not held back here
    assert.equal(decidePush('h2', lease('3', 'h1'), agent, { ...last, permanent: false }, 1).do, 'push');
  });

  it('records an agent that is not there, and counts a refused endpoint once per state', () => {
    const none = decidePush('h2', {}, { ok: false, error: 'no agent registered' }, undefined, 5);
    assert.deepEqual(none, { do: 'record', state: { hash: 'h2', generation: 0, agentState: '', at: 5, error: 'no agent registered', permanent: true } });
    const foreign: RegisteredAgent = { ok: false, error: 'not the node\'s address', refused: 'foreign_address' };
    const first = decidePush('h2', { [ANNOTATION_ENDPOINT]: 'http://10.9.9.9:1' }, foreign, undefined, 5);
    assert.equal(first.do, 'record');
    assert.equal(first.do === 'record' && first.count, 'foreign_address');
    const again = decidePush('h2', { [ANNOTATION_ENDPOINT]: 'http://10.9.9.9:1' }, foreign, first.do === 'record' ? first.state : undefined, 6);
    assert.deepEqual(again, { do: 'nothing' });
  });
});

describe('afterPush', () => {
  const p = { hash: 'h2', generation: 4, agentState: 's', endpoint: 'http://10.0.0.1:9477', now: 9 };
  it('applied: done, counted as a push', () => {
    assert.deepEqual(afterPush({ kind: 'applied' }, p), { state: { hash: 'h2', generation: 4, agentState: 's', at: 9, error: null, permanent: false }, result: {}, counted: 'push' });
  });
  it('aborted: nothing recorded or counted', () => {
    assert.deepEqual(afterPush({ kind: 'aborted' }, p), { state: null, result: {}, counted: null });
  });
  it('unreachable, 5xx, 429: a transient error', () => {
    const u = afterPush({ kind: 'unreachable', error: 'ECONNREFUSED' }, p);
    assert.deepEqual(u.result, { error: 'push to http://10.0.0.1:9477 failed: ECONNREFUSED', terminal: false });
    assert.equal(u.state?.permanent, false);
    for (const status of [429, 500, 503]) {
      const r = afterPush({ kind: 'refused', status, detail: 'busy', appliedGeneration: null }, p);
      assert.deepEqual(r.result, { error: `agent refused the configuration (HTTP ${status}): busy`, terminal: false });
      assert.equal(r.counted, 'failure');
    }
  });
  it('4xx: a terminal error, kept as permanent', () => {
    const r = afterPush({ kind: 'refused', status: 422, detail: 'bad storage', appliedGeneration: null }, p);
    assert.deepEqual(r.result, { error: 'agent refused the configuration (HTTP 422): bad storage', terminal: true });
    assert.equal(r.state?.permanent, true);
  });
  it('409: retried above the generation the agent applied', () => {
    const r = afterPush({ kind: 'refused', status: 409, detail: 'older', appliedGeneration: 11 }, p);
    assert.deepEqual(r.state, { hash: '', generation: 11, agentState: '', at: 9, error: null, permanent: false });
    assert.equal('error' in r.result && r.result.terminal, false);
  });
});
