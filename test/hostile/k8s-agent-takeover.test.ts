// Hostile: one compromised node must not take over the others (issue 10, A2).
// Against a real kube-apiserver (test/helpers/envtest.ts) with the chart's
// RBAC and admission policies from manifests/:
//
// 1. The agent identity of node-a — a ServiceAccount token bound to a Pod on
//    node-a, as the kubelet hands it to the agent — may write its own Lease
//    peripety-agent-node-a, and nothing else: not node-b's Lease, not the
//    controller's leader Lease, not an Event about another Node; a token of
//    the agent's ServiceAccount that is bound to no node is refused outright.
//    Its Lease may name as owner (metadata.ownerReferences) only its own Pod,
//    the one its token is bound to, and never with blockOwnerDeletion.
// 2. The controller sends its token (which every agent accepts) only to an
//    endpoint on the node's own address: a Lease naming another address —
//    here node-b's own Lease, which node-b may write, pointing at a listener
//    on 127.0.0.2 — gets no push and no command; not one request reaches
//    that listener, the resource's status says why, and
//    peripety_controller_push_refused_total{reason="foreign_address"} counts it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { FakeAgent } from '../helpers/fake-agent.ts';
import { rbacYaml } from '../helpers/manifests.ts';
import { agentKubeconfig, applyAgentAdmission, createNode, SBE_PATH, until } from '../helpers/operator.ts';

const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases`;
const EVENTS = '/apis/events.k8s.io/v1/namespaces/default/events';
const MERGE = 'application/merge-patch+json';
/** not node-b's address: where a compromised node-b would like the controller's token to go */
const FOREIGN = '127.0.0.2';

interface Lease {
  metadata: { name: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { holderIdentity?: string };
}

interface CrStatus {
  nodesSelected?: number;
  nodesApplied?: number;
  nodesFailed?: number;
  failures?: { node: string; message: string }[];
  command?: { request: string; phase: string; nodesFailed?: number; failures?: { node: string; message: string }[] };
}

describe('hostile: one node cannot take over the others (real API server)', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 240_000 }, () => {
  let env: Envtest;
  let nodeA: string;
  let nodeB: string;
  let policies = 0;
  const fakes: FakeAgent[] = [];
  const controllers: Controller[] = [];

  const lease = (name: string, holder: string, endpoint = 'http://127.0.0.1:1'): Lease & Record<string, unknown> => ({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
    metadata: { name, annotations: { 'peripety.io/endpoint': endpoint } }, spec: { holderIdentity: holder },
  });
  const event = (name: string, node: string): Record<string, unknown> => ({
    apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name, namespace: 'default' },
    eventTime: new Date().toISOString().replace(/Z$/, '000Z'), reportingController: 'peripety.io/agent', reportingInstance: `peripety-agent-${node}`,
    action: 'Observed', reason: 'Probe', note: 'hostile test', type: 'Normal', regarding: { apiVersion: 'v1', kind: 'Node', name: node },
  });
  const admin = async (method: string, p: string, body?: unknown, contentType?: string): Promise<void> => {
    const r = await env.request(method, p, body, contentType ? { contentType } : {});
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${p} as admin: ${r.status} ${r.text.slice(0, 300)}`);
  };

  before(async () => {
    env = await startEnvtest();
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller', 'agent') });
    policies = await applyAgentAdmission(env);
    console.log(`# agent admission policies from manifests/: ${policies}`);
    await createNode(env, 'node-a', { zone: 'a' }, [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: 'node-a' }]);
    // node-b's own address is 127.0.0.3 (nothing listens there); FOREIGN is not among its addresses
    await createNode(env, 'node-b', { zone: 'b' }, [{ type: 'InternalIP', address: '127.0.0.3' }, { type: 'Hostname', address: 'node-b' }]);
    nodeA = await agentKubeconfig(env, 'node-a');
    nodeB = await agentKubeconfig(env, 'node-b');
  });

  after(async () => {
    for (const c of controllers) await c.stop({ release: false }).catch(() => undefined);
    for (const f of fakes) await f.stop().catch(() => undefined);
    await env?.stop();
  });

  it('an agent writes only its own Lease and Events about its own Node; a token bound to no node writes nothing', async () => {
    // what the policy keys on: the API server's own view of each identity (SelfSubjectReview)
    const whoami = async (kubeconfig: string): Promise<Record<string, string[]>> => {
      const r = await env.request<{ status?: { userInfo?: { extra?: Record<string, string[]> } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }, { kubeconfig });
      assert.equal(r.status, 201, r.text.slice(0, 300));
      return r.body.status?.userInfo?.extra ?? {};
    };
    assert.deepEqual((await whoami(nodeA))['authentication.kubernetes.io/node-name'], ['node-a']);
    assert.deepEqual((await whoami(nodeB))['authentication.kubernetes.io/node-name'], ['node-b']);
    assert.equal((await whoami(env.kubeconfigAgent))['authentication.kubernetes.io/node-name'], undefined);

    // the objects of others: node-b's registration, the controller's leader Lease, an Event about node-b
    const r = await env.request('POST', LEASES, lease('peripety-agent-node-b', 'node-b'), { kubeconfig: nodeB });
    assert.equal(r.status, 201, `node-b creates its own Lease: ${r.text.slice(0, 300)}`);
    await admin('POST', LEASES, lease('peripety-controller', 'controller-0'));
    await admin('POST', EVENTS, event('node-b.probe', 'node-b'));

    const got: { what: string; status: number; message: string }[] = [];
    const as = async (what: string, kubeconfig: string, method: string, p: string, body?: unknown, contentType?: string): Promise<number> => {
      const res = await env.request<{ message?: string }>(method, p, body, { kubeconfig, ...(contentType ? { contentType } : {}) });
      got.push({ what, status: res.status, message: (typeof res.body === 'object' && res.body?.message) || '' });
      return res.status;
    };
    const replace = async (what: string, kubeconfig: string, name: string, f: (l: Lease) => void): Promise<number> => {
      const cur = (await env.request<Lease>('GET', `${LEASES}/${name}`)).body;
      f(cur);
      return as(what, kubeconfig, 'PUT', `${LEASES}/${name}`, cur);
    };
    const hijack = (l: Lease): void => {
      l.metadata.annotations = { ...l.metadata.annotations, 'peripety.io/endpoint': `http://${FOREIGN}:9477` };
    };

    // allowed: its own Lease
    await as('node-a creates its own Lease', nodeA, 'POST', LEASES, lease('peripety-agent-node-a', 'node-a'));
    await replace('node-a updates its own Lease', nodeA, 'peripety-agent-node-a', (l) => (l.metadata.annotations!['peripety.io/hash'] = 'abc'));
    await as('node-a creates an Event about node-a', nodeA, 'POST', EVENTS, event('node-a.probe', 'node-a'));
    const allowed = got.length;

    // refused: everybody else's
    await replace('node-a updates node-b\'s Lease', nodeA, 'peripety-agent-node-b', hijack);
    await replace('node-a updates the leader Lease', nodeA, 'peripety-controller', (l) => (l.spec = { ...l.spec, holderIdentity: 'node-a' }));
    await as('node-a deletes node-b\'s Lease', nodeA, 'DELETE', `${LEASES}/peripety-agent-node-b`);
    await as('node-a deletes the leader Lease', nodeA, 'DELETE', `${LEASES}/peripety-controller`);
    await as('node-a creates a Lease for node-c', nodeA, 'POST', LEASES, lease('peripety-agent-node-c', 'node-c'));
    await as('node-a creates another Lease', nodeA, 'POST', LEASES, lease('some-other-lease', 'node-a'));
    await replace('node-a names node-b as holder of its own Lease', nodeA, 'peripety-agent-node-a', (l) => (l.spec = { ...l.spec, holderIdentity: 'node-b' }));
    await as('node-a creates an Event about node-b', nodeA, 'POST', EVENTS, event('node-a.about-b', 'node-b'));
    await as('node-a patches an Event about node-b', nodeA, 'PATCH', `${EVENTS}/node-b.probe`, { series: { count: 9999, lastObservedTime: new Date().toISOString().replace(/Z$/, '000Z') } }, MERGE);
    await replace('an unbound agent token updates node-a\'s Lease', env.kubeconfigAgent, 'peripety-agent-node-a', (l) => (l.metadata.annotations!['peripety.io/hash'] = 'unbound'));
    await as('an unbound agent token creates a Lease', env.kubeconfigAgent, 'POST', LEASES, lease('peripety-agent-nowhere', 'nowhere'));
    await as('an unbound agent token creates an Event', env.kubeconfigAgent, 'POST', EVENTS, event('nowhere.probe', 'node-a'));

    console.log(got.map((g) => `# ${g.what}: ${g.status}${g.status >= 300 ? ` (${g.message.slice(0, 160)})` : ''}`).join('\n'));
    const wrongAllowed = got.slice(0, allowed).filter((g) => g.status < 200 || g.status > 299);
    assert.deepEqual(wrongAllowed, [], 'the agent may write its own Lease and Events about its own Node');
    const notRefused = got.slice(allowed).filter((g) => g.status !== 403);
    assert.deepEqual(notRefused.map((g) => `${g.what}: ${g.status}`), [], 'every write to another node\'s or the controller\'s object is refused (403)');
    // the refusals are the admission policy's (or RBAC's for delete), with a message that says why
    for (const g of got.slice(allowed)) {
      if (/deletes|creates another Lease/.test(g.what) && /cannot delete|cannot create/.test(g.message)) continue;
      assert.match(g.message, /may write only its own Lease|only Events regarding its own Node|may change only Events|not bound to a node|must name its node/, g.what);
    }
    // and nothing changed
    const b = (await env.request<Lease>('GET', `${LEASES}/peripety-agent-node-b`)).body;
    assert.equal(b.metadata.annotations?.['peripety.io/endpoint'], 'http://127.0.0.1:1');
    const leader = (await env.request<Lease>('GET', `${LEASES}/peripety-controller`)).body;
    assert.equal(leader.spec?.holderIdentity, 'controller-0');
  });

  it('an agent may make only its own Pod the owner of its Lease: no other Pod, no other kind, no second owner, no blockOwnerDeletion', async () => {
    // ownerReferences let the garbage collector delete the Lease with the agent's Pod (helm uninstall
    // leaves nothing); a compromised agent must not use them to get another object's deletion tied to
    // its Lease, or to keep its Lease alive on a Pod that is not its own
    const pod = async (name: string): Promise<{ name: string; uid: string }> => {
      const r = await env.request<{ metadata: { name: string; uid: string } }>('GET', `/api/v1/namespaces/${ENVTEST_NAMESPACE}/pods/${name}`);
      assert.equal(r.status, 200, r.text.slice(0, 300));
      return { name: r.body.metadata.name, uid: r.body.metadata.uid };
    };
    const a = await pod('peripety-agent-node-a');
    const b = await pod('peripety-agent-node-b');
    const whoami = await env.request<{ status?: { userInfo?: { extra?: Record<string, string[]> } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }, { kubeconfig: nodeA });
    const extra = whoami.body.status?.userInfo?.extra ?? {};
    assert.deepEqual([extra['authentication.kubernetes.io/pod-name'], extra['authentication.kubernetes.io/pod-uid']], [[a.name], [a.uid]], 'the extras the policy keys on');

    const name = 'peripety-agent-node-a';
    await env.request('DELETE', `${LEASES}/${name}`);
    const ref = (p: { name: string; uid: string }, more: Record<string, unknown> = {}): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Pod', name: p.name, uid: p.uid, ...more });
    const withOwners = (owners: Record<string, unknown>[] | undefined): Record<string, unknown> => {
      const l = lease(name, 'node-a');
      return { ...l, metadata: { ...l.metadata, ...(owners ? { ownerReferences: owners } : {}) } };
    };
    const got: { what: string; status: number; message: string }[] = [];
    const write = async (what: string, owners: Record<string, unknown>[] | undefined): Promise<void> => {
      const cur = await env.request<Lease>('GET', `${LEASES}/${name}`);
      const body = withOwners(owners);
      const res = cur.status === 404
        ? await env.request<{ message?: string }>('POST', LEASES, body, { kubeconfig: nodeA })
        : await env.request<{ message?: string }>('PUT', `${LEASES}/${name}`, { ...body, metadata: { ...(body.metadata as object), resourceVersion: cur.body.metadata.resourceVersion } }, { kubeconfig: nodeA });
      got.push({ what: `${cur.status === 404 ? 'create' : 'update'}: ${what}`, status: res.status, message: (typeof res.body === 'object' && res.body?.message) || '' });
    };
    const node = (await env.request<{ metadata: { uid: string } }>('GET', '/api/v1/nodes/node-a')).body.metadata.uid;

    // refused, first on create (no Lease yet), then on update of a Lease that node-a wrote
    await write('owner: node-b\'s Pod', [ref(b)]);
    await write('no owner', undefined);
    await write('owner: node-b\'s Pod', [ref(b)]);
    await write('owner: its Pod\'s name with another uid', [ref({ name: a.name, uid: b.uid })]);
    await write('owner: another Pod name with its uid', [ref({ name: b.name, uid: a.uid })]);
    await write('owner: its Node (not a Pod)', [{ apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: node }]);
    await write('owner: a Pod of another API group', [ref(a, { apiVersion: 'example.com/v1' })]);
    await write('owners: its Pod and node-b\'s', [ref(a), ref(b)]);
    // (two equal references would not do: the API server keeps one of them before admission)
    await write('owners: its Pod and its Node', [ref(a), { apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: node }]);
    await write('owner: its Pod with blockOwnerDeletion', [ref(a, { blockOwnerDeletion: true })]);
    // allowed: its own Pod (a controller reference too), and no owner at all
    await write('owner: its own Pod', [ref(a)]);
    await write('owner: its own Pod as controller', [ref(a, { controller: true })]);
    await write('no owner again', undefined);
    await env.request('DELETE', `${LEASES}/${name}`);
    await write('owner: its own Pod', [ref(a)]);

    console.log(got.map((g) => `# ${g.what}: ${g.status}${g.status >= 300 ? ` (${g.message.slice(0, 200)})` : ''}`).join('\n'));
    const allowed = new Set([1, 10, 11, 12, 13]);
    const wrong = got.filter((g, i) => (allowed.has(i) ? g.status < 200 || g.status > 299 : g.status !== 403));
    assert.deepEqual(wrong.map((g) => `${g.what}: ${g.status}`), [], 'only the agent\'s own Pod may own its Lease');
    for (const g of got.filter((_, i) => !allowed.has(i))) assert.match(g.message, /may be owned only by its own Pod/, g.what);
    const final = (await env.request<{ metadata: { ownerReferences?: unknown[] } }>('GET', `${LEASES}/${name}`)).body;
    assert.deepEqual(final.metadata.ownerReferences, [ref(a)]);
  });

  it('the controller sends its token only to the node\'s own address: a foreign endpoint gets no push and no command', async () => {
    // node-a: a (fake) agent on node-a's own address
    const a = new FakeAgent(env, 'node-a');
    // node-b's Lease names a listener on FOREIGN, which is not node-b's address; so does a Lease of a node that does not exist
    const foreign = new FakeAgent(env, 'node-b', undefined, { host: FOREIGN });
    const ghost = new FakeAgent(env, 'node-ghost', undefined, { host: FOREIGN });
    fakes.push(a, foreign, ghost);
    for (const f of fakes) await f.start();
    // a compromised node-b may point its own Lease anywhere: the admission policy allows that (its own Lease)
    const endpoint = (await env.request<Lease>('GET', `${LEASES}/peripety-agent-node-b`)).body.metadata.annotations?.['peripety.io/endpoint'];
    assert.match(endpoint ?? '', new RegExp(`^http://${FOREIGN.replaceAll('.', '\\.')}:\\d+$`));
    const cur = (await env.request<Lease>('GET', `${LEASES}/peripety-agent-node-b`)).body;
    const own = await env.request('PUT', `${LEASES}/peripety-agent-node-b`, { ...cur, metadata: { ...cur.metadata, annotations: { ...cur.metadata.annotations, 'peripety.io/endpoint': endpoint } } }, { kubeconfig: nodeB });
    assert.equal(own.status, 200, `node-b writes its own Lease: ${own.text.slice(0, 300)}`);

    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    const c = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity: 'ctl-hostile', log: process.env.CTL_DEBUG ? createLogger('debug') : silentLogger(), resyncMs: 30_000 });
    controllers.push(c);
    await c.start();

    await admin('POST', SBE_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'everywhere' },
      spec: { backend: 'memory', filters: ['1 1 EQ'] },
    });
    await a.waitFor((x) => x.pushes.some((p) => JSON.stringify(p.storage).includes('everywhere')), 30_000, 'the push of "everywhere" to node-a');
    // settled: every selected node is applied or failed
    const status = async (): Promise<CrStatus> => (await env.request<{ status?: CrStatus }>('GET', `${SBE_PATH}/everywhere`)).body.status ?? {};
    const settled = await until('the status of "everywhere" to count both nodes', async () => {
      const s = await status();
      return s.nodesSelected === 2 && (s.nodesApplied ?? 0) + (s.nodesFailed ?? 0) === 2 ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    console.log(`# status: applied ${settled.nodesApplied}/2, failed ${settled.nodesFailed}: ${JSON.stringify(settled.failures ?? [])}`);

    // a one-off command on every selected node
    await admin('PATCH', `${SBE_PATH}/everywhere`, { metadata: { annotations: { 'peripety.io/command': 'restart@1' } } }, MERGE);
    const done = await until('the restart to complete', async () => {
      const s = await status();
      return s.command?.request === 'restart@1' && s.command.phase !== 'Running' ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    console.log(`# command: ${done.command?.phase}, ${JSON.stringify(done.command?.failures ?? [])}`);
    assert.ok(a.commands.some((x) => x.path === '/v1/backends/everywhere:restart'), 'node-a\'s agent got the command');

    const metric = (await c.metrics.registry.getSingleMetric('peripety_controller_push_refused_total')?.get())?.values ?? [];
    const refused = (reason: string) => metric.find((v) => v.labels.reason === reason)?.value ?? 0;
    const leaked = [...foreign.requests, ...ghost.requests];
    console.log(`# requests at ${FOREIGN}: ${leaked.length} (with a bearer token: ${leaked.filter((x) => x.authorization?.startsWith('Bearer ')).length}); `
      + `push_refused_total: ${metric.map((v) => `${v.labels.reason}=${v.value}`).join(' ')}`);
    assert.deepEqual(leaked.map((x) => `${x.method} ${x.path} auth=${x.authorization ? 'Bearer …' : 'none'}`), [], `no request (and so no token) reaches ${FOREIGN}`);
    assert.equal(settled.nodesApplied, 1);
    assert.equal(settled.nodesFailed, 1);
    assert.equal(settled.failures?.[0]?.node, 'node-b');
    assert.match(settled.failures[0].message, /127\.0\.0\.2 is not an address of Node node-b \(InternalIP\/ExternalIP: 127\.0\.0\.3\)/);
    assert.equal(done.command?.phase, 'Failed');
    assert.equal(done.command?.failures?.[0]?.node, 'node-b');
    assert.match(done.command?.failures?.[0]?.message ?? '', /not an address of Node node-b/);
    assert.ok(refused('foreign_address') >= 2, `the push and the command are counted as refused (foreign_address=${refused('foreign_address')})`);
    assert.ok(refused('no_node') >= 1, `the Lease of a node that does not exist is counted as refused (no_node=${refused('no_node')})`);
  });
});
