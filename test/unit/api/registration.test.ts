// The agent's registration Lease over a scripted client: created when
// missing, updated (keeping what others wrote) with the applied generation,
// retried with backoff after failures that are logged rate-limited.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentRegistration } from '../../../src/k8s/registration.ts';
import type { Logger } from '../../../src/log/logger.ts';
import { silentLogger } from '../../../src/log/logger.ts';

type Req = { method: string; urlPath: string; body?: Record<string, unknown> };

function fakeApi(failFirst = 0) {
  const reqs: Req[] = [];
  let lease: Record<string, unknown> | null = null;
  let failures = failFirst;
  const client = {
    request: <T>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
      reqs.push({ method, urlPath, body: body as Record<string, unknown> });
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error('connect ECONNREFUSED'));
      }
      if (method === 'GET') return Promise.resolve(lease ? { status: 200, body: structuredClone(lease) as T, text: '' } : { status: 404, body: {} as T, text: 'not found' });
      lease = structuredClone(body) as Record<string, unknown>;
      return Promise.resolve({ status: method === 'POST' ? 201 : 200, body: lease as T, text: '' });
    },
  };
  return { client, reqs, lease: () => lease as { metadata: { annotations: Record<string, string>; name: string }; spec: Record<string, unknown> } | null };
}

describe('AgentRegistration', () => {
  it('creates the Lease, then updates it with the applied generation and hash', async () => {
    const api = fakeApi();
    const r = new AgentRegistration({ client: api.client, log: silentLogger(), namespace: 'ns', nodeName: 'node-1', endpoint: 'http://10.0.0.1:9477', renewMs: 20 });
    const first = r.synced();
    r.start();
    await first;
    assert.equal(api.reqs[0]!.urlPath, '/apis/coordination.k8s.io/v1/namespaces/ns/leases/peripety-agent-node-1');
    assert.equal(api.reqs[1]!.method, 'POST');
    const l = api.lease()!;
    assert.equal(l.metadata.name, 'peripety-agent-node-1');
    assert.deepEqual(l.metadata.annotations, { 'peripety.io/endpoint': 'http://10.0.0.1:9477', 'peripety.io/generation': '0', 'peripety.io/hash': '' });
    assert.equal(l.spec.holderIdentity, 'node-1');
    assert.equal(l.spec.leaseDurationSeconds, 30);
    assert.match(String(l.spec.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // someone else's annotation survives our updates
    Object.assign(l.metadata.annotations, { other: 'kept' });
    const second = r.synced();
    r.setApplied({ generation: 4, hash: 'h4' });
    await second;
    assert.equal(api.reqs.at(-1)!.method, 'PUT');
    assert.deepEqual(api.lease()!.metadata.annotations, { 'peripety.io/endpoint': 'http://10.0.0.1:9477', 'peripety.io/generation': '4', 'peripety.io/hash': 'h4', other: 'kept' });
    const n = api.reqs.length;
    await sleep(100);
    assert.ok(api.reqs.length > n, 'renewed periodically');
    await r.stop();
    const m = api.reqs.length;
    await sleep(60);
    assert.equal(api.reqs.length, m, 'nothing after stop');
  });

  it('with the agent\'s Pod: the Lease is owned by that Pod on create, and a replacement Pod takes the ownership over on update', async () => {
    const podA = { name: 'peripety-agent-aaaaa', uid: '0f8fad5b-d9cb-469f-a165-70867728950e' };
    const podB = { name: 'peripety-agent-bbbbb', uid: '7c9e6679-7425-40de-944b-e07fc1f90ae7' };
    const ref = (p: { name: string; uid: string }) => ({ apiVersion: 'v1', kind: 'Pod', name: p.name, uid: p.uid });
    const api = fakeApi();
    const a = new AgentRegistration({ client: api.client, log: silentLogger(), namespace: 'ns', nodeName: 'node-1', endpoint: 'http://10.0.0.1:9477', renewMs: 1000, owner: podA });
    const created = a.synced();
    a.start();
    await created;
    await a.stop();
    assert.equal(api.reqs.at(-1)!.method, 'POST');
    const ownersOf = () => (api.lease()!.metadata as { ownerReferences?: unknown }).ownerReferences;
    assert.deepEqual(ownersOf(), [ref(podA)]);
    // the Pod is replaced (DaemonSet update, eviction): its successor renews the same Lease
    const b = new AgentRegistration({ client: api.client, log: silentLogger(), namespace: 'ns', nodeName: 'node-1', endpoint: 'http://10.0.0.2:9477', renewMs: 1000, owner: podB });
    const updated = b.synced();
    b.start();
    await updated;
    await b.stop();
    assert.equal(api.reqs.at(-1)!.method, 'PUT');
    assert.deepEqual(ownersOf(), [ref(podB)], 'not the old Pod\'s any more: the collector would delete the Lease with it');
    assert.equal(api.lease()!.metadata.annotations['peripety.io/endpoint'], 'http://10.0.0.2:9477');
    // without a Pod (a plain host, tests): no owner written, what the Lease has is kept
    const c = new AgentRegistration({ client: api.client, log: silentLogger(), namespace: 'ns', nodeName: 'node-1', endpoint: 'http://10.0.0.3:9477', renewMs: 1000 });
    const kept = c.synced();
    c.start();
    await kept;
    await c.stop();
    assert.deepEqual(ownersOf(), [ref(podB)]);
    const fresh = fakeApi();
    const d = new AgentRegistration({ client: fresh.client, log: silentLogger(), namespace: 'ns', nodeName: 'node-2', endpoint: 'http://10.0.0.4:9477', renewMs: 1000 });
    const made = d.synced();
    d.start();
    await made;
    await d.stop();
    assert.equal('ownerReferences' in fresh.lease()!.metadata, false, 'no owner without a Pod');
  });

  it('says in peripety.io/degraded why the agent runs other than configured, and clears it when it no longer does', async () => {
    const api = fakeApi();
    let problems = ['storage backend "db" did not start: disk full'];
    const r = new AgentRegistration({ client: api.client, log: silentLogger(), namespace: 'ns', nodeName: 'n', endpoint: 'http://x:1', renewMs: 10, degraded: () => problems });
    const first = r.synced();
    r.start();
    await first;
    assert.equal(api.lease()!.metadata.annotations['peripety.io/degraded'], 'storage backend "db" did not start: disk full');
    problems = [];
    await r.synced();
    assert.equal(api.lease()!.metadata.annotations['peripety.io/degraded'], '');
    await r.stop();
  });

  it('retries failures with backoff and logs them at most once per interval', async () => {
    const api = fakeApi(3);
    const lines: unknown[] = [];
    const log = silentLogger();
    log.warn = ((obj: unknown) => lines.push(obj)) as Logger['warn'];
    log.info = (() => {}) as Logger['info'];
    const r = new AgentRegistration({ client: api.client, log, namespace: 'ns', nodeName: 'n', endpoint: 'http://x:1', maxBackoffMs: 5 });
    const ok = r.synced();
    r.start();
    await ok;
    await r.stop();
    assert.equal(api.reqs.filter((q) => q.method === 'GET').length, 4, 'three failed attempts and one that worked');
    assert.equal(lines.length, 1, 'one log line for the three failures');
    assert.ok(api.lease());
  });
});
