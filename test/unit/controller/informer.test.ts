// The list-and-watch cache (src/k8s/informer.ts) against a scripted API:
// events from a list and a watch, the watch resumed from the last
// resourceVersion, a 410 relisting with the differences as events, a failure
// reported once, the transform applied to what is cached.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WatchEvent } from '../../../src/k8s/http.ts';
import { Informer, type KubeObject, stripManagedFields } from '../../../src/k8s/informer.ts';
import { leanLease, leanNode, leanResource } from '../../../src/controller/cache.ts';

interface Obj extends KubeObject { spec?: { v?: number } }

const obj = (name: string, rv: string, v = 0): Obj => ({ metadata: { name, resourceVersion: rv, managedFields: [{ manager: 'kubectl' }] }, spec: { v } });

/** A scripted API: lists answered from `lists` in order; each watch is recorded and driven by the test. */
class FakeApi {
  lists: (() => unknown)[] = [];
  watches: { path: string; onEvent: (e: WatchEvent) => void; done: (err?: Error) => void; stopped: boolean }[] = [];
  calls: string[] = [];
  async call<T>(method: string, path: string): Promise<T> {
    this.calls.push(`${method} ${path}`);
    const next = this.lists.shift();
    if (!next) throw new Error('no list scripted');
    return next() as T;
  }
  watch(path: string, onEvent: (e: WatchEvent) => void, done: (err?: Error) => void) {
    const w = { path, onEvent, done, stopped: false };
    this.watches.push(w);
    return { stop: () => { w.stopped = true; } };
  }
  get last() {
    return this.watches[this.watches.length - 1]!;
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function recorder(inf: Informer<Obj>): string[] {
  const out: string[] = [];
  inf.on('add', (o) => out.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  inf.on('update', (o) => out.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  inf.on('delete', (o) => out.push(`delete ${o.metadata?.name}`));
  inf.on('error', (e) => out.push(`error ${(e as Error).message}`));
  return out;
}

describe('Informer', () => {
  it('lists, then watches from the list\'s version; events change the cache; managedFields are not kept', async () => {
    const api = new FakeApi();
    api.lists.push(() => ({ metadata: { resourceVersion: '10' }, items: [obj('a', '5'), obj('b', '6')] }));
    const inf = new Informer<Obj>(api, '/apis/x/v1/things');
    const ev = recorder(inf);
    assert.equal(inf.synced, false);
    await inf.start();
    assert.equal(inf.synced, true);
    assert.deepEqual(ev, ['add a@5', 'add b@6']);
    assert.match(api.last.path, /^\/apis\/x\/v1\/things\?watch=1&allowWatchBookmarks=true&timeoutSeconds=\d+&resourceVersion=10$/);
    assert.equal(inf.get('a')?.metadata?.managedFields, undefined, 'managedFields stripped');
    api.last.onEvent({ type: 'MODIFIED', object: obj('a', '11', 1) });
    api.last.onEvent({ type: 'ADDED', object: obj('c', '12') });
    api.last.onEvent({ type: 'DELETED', object: obj('b', '13') });
    api.last.onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } });
    assert.deepEqual(ev.slice(2), ['update a@11', 'add c@12', 'delete b']);
    assert.deepEqual(inf.list().map((o) => `${o.metadata?.name}:${o.spec?.v}`).sort(), ['a:1', 'c:0']);
    // the server ends the watch (its timeout): watched again from the last version seen, no list
    api.last.done();
    assert.equal(api.watches.length, 2);
    assert.match(api.last.path, /resourceVersion=20$/);
    assert.equal(api.calls.length, 1);
    await inf.stop();
    assert.equal(api.last.stopped, true);
  });

  it('lists page by page with continue tokens; the watch starts at the snapshot\'s version', async () => {
    const api = new FakeApi();
    api.lists.push(() => ({ metadata: { resourceVersion: '50', continue: 'tok/1' }, items: [obj('a', '5'), obj('b', '6')] }));
    api.lists.push(() => ({ metadata: { resourceVersion: '50' }, items: [obj('c', '7')] }));
    const inf = new Informer<Obj>(api, '/api/v1/nodes');
    const ev = recorder(inf);
    await inf.start();
    assert.deepEqual(api.calls, ['GET /api/v1/nodes?limit=250', 'GET /api/v1/nodes?limit=250&continue=tok%2F1']);
    assert.deepEqual(ev, ['add a@5', 'add b@6', 'add c@7']);
    assert.match(api.last.path, /resourceVersion=50$/);
    await inf.stop();
  });

  it('410 Gone lists again and reports what changed meanwhile as events', async () => {
    const api = new FakeApi();
    api.lists.push(() => ({ metadata: { resourceVersion: '10' }, items: [obj('a', '5'), obj('b', '6'), obj('c', '7')] }));
    api.lists.push(() => ({ metadata: { resourceVersion: '30' }, items: [obj('a', '5'), obj('b', '25', 2), obj('d', '26')] }));
    const inf = new Informer<Obj>(api, '/p');
    const ev = recorder(inf);
    await inf.start();
    const first = api.last;
    first.onEvent({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } });
    await tick();
    assert.equal(first.stopped, true);
    assert.deepEqual(ev.slice(3), ['update b@25', 'add d@26', 'delete c']);
    assert.match(api.last.path, /resourceVersion=30$/);
    // and a 410 answer to the watch request itself
    api.lists.push(() => ({ metadata: { resourceVersion: '40' }, items: [] }));
    api.last.done(Object.assign(new Error('HTTP 410'), { code: 410 }));
    await tick();
    assert.deepEqual(ev.slice(6).sort(), ['delete a', 'delete b', 'delete d']);
    assert.match(api.last.path, /resourceVersion=40$/);
    await inf.stop();
  });

  it('a failed list or watch is one error event and the informer stops until started again', async () => {
    const api = new FakeApi();
    const inf = new Informer<Obj>(api, '/p');
    const ev = recorder(inf);
    api.lists.push(() => { throw Object.assign(new Error('HTTP 403: forbidden'), { code: 403 }); });
    await inf.start();
    assert.deepEqual(ev, ['error HTTP 403: forbidden']);
    assert.equal(inf.synced, false);
    assert.equal(api.watches.length, 0);
    api.lists.push(() => ({ metadata: { resourceVersion: '1' }, items: [obj('a', '1')] }));
    await inf.start();
    assert.equal(inf.synced, true);
    api.last.done(new Error('connection reset'));
    api.last.done(); // a late second callback of the same watch does nothing
    assert.deepEqual(ev.slice(1), ['add a@1', 'error connection reset']);
    assert.equal(api.watches.length, 1, 'not watched again by itself');
    // an ERROR event that is not 410
    api.lists.push(() => ({ metadata: { resourceVersion: '2' }, items: [obj('a', '1')] }));
    await inf.start();
    const w = api.last;
    w.onEvent({ type: 'ERROR', object: { code: 500, message: 'internal error' } });
    assert.equal(w.stopped, true);
    assert.equal(ev[ev.length - 1], 'error watch /p: internal error');
    // a watch of a stopped informer delivers nothing any more
    w.onEvent({ type: 'ADDED', object: obj('z', '3') });
    assert.equal(inf.get('z'), undefined);
  });

  it('the controller\'s transforms keep only what it reads of Nodes and Leases', () => {
    const node = leanNode({
      metadata: { name: 'n1', uid: 'u', resourceVersion: '3', labels: { a: 'b' }, annotations: { big: 'x'.repeat(1000) }, managedFields: [{}] },
      status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], images: [{ names: ['x'] }] } as never,
    });
    assert.deepEqual(node, { metadata: { name: 'n1', uid: 'u', resourceVersion: '3', labels: { a: 'b' } }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] } });
    const lease = leanLease({
      metadata: { name: 'l', namespace: 'ns', uid: 'u', resourceVersion: '4', annotations: { 'peripety.io/endpoint': 'http://10.0.0.1:9477' }, managedFields: [{}], ownerReferences: [] },
      spec: { holderIdentity: 'agent', renewTime: '2026-01-01T00:00:00.000000Z', leaseDurationSeconds: 30, acquireTime: 'x', leaseTransitions: 2 },
    });
    assert.deepEqual(lease, {
      metadata: { name: 'l', namespace: 'ns', uid: 'u', resourceVersion: '4', annotations: { 'peripety.io/endpoint': 'http://10.0.0.1:9477' } },
      spec: { renewTime: '2026-01-01T00:00:00.000000Z', leaseDurationSeconds: 30 },
    });
    const sbe = { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', spec: { backend: 'memory' }, status: { ready: '1/1' },
      metadata: { name: 's', generation: 2, managedFields: [{}], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{…}', 'peripety.io/command': 'flush' } } };
    assert.deepEqual(leanResource(sbe), { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', spec: { backend: 'memory' }, status: { ready: '1/1' },
      metadata: { name: 's', generation: 2, annotations: { 'peripety.io/command': 'flush' } } });
    assert.equal(sbe.metadata.managedFields.length, 1, 'the object given is not changed');
    const plain = { metadata: { name: 'x' } };
    assert.equal(leanResource(plain), plain);
    assert.equal(stripManagedFields(plain), plain, 'nothing to strip: the same object');
  });
});
