// The controller against a real kube-apiserver (test/helpers/envtest.ts) with
// three fake agents (test/helpers/fake-agent.ts): pushes reach exactly the
// selected agents, status counts, filter errors, an agent restarted empty,
// and leader election (two controllers, the leader stopped, the standby takes
// over, pushes never from both). The controller runs in this process with
// the controller ServiceAccount's kubeconfig and the controller's RBAC from
// manifests/ (rendered from the Helm chart; test/helpers/manifests.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { FakeAgent } from '../helpers/fake-agent.ts';
import { rbacYaml } from '../helpers/manifests.ts';
import { createNode } from '../helpers/operator.ts';

const SBE = '/apis/peripety.io/v1alpha1/storagebackends';
const SEP = '/apis/peripety.io/v1alpha1/storageeventplugins';

interface Status {
  observedGeneration?: number;
  conditions?: { type: string; status: string; reason: string; message: string }[];
  nodesSelected?: number;
  nodesApplied?: number;
  nodesFailed?: number;
  ready?: string;
  filterErrors?: { index: number; message: string }[];
}

const backendsOf = (storage: unknown): Record<string, { Filter: string[] }> =>
  (storage as { root: { elos: { EventLogging: { Plugins: Record<string, { Filter: string[] }> } } } }).root.elos.EventLogging.Plugins;
const last = (a: FakeAgent) => a.pushes[a.pushes.length - 1];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('controller (real API server)', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000 }, () => {
  let env: Envtest;
  let agents: FakeAgent[];
  const controllers: Controller[] = [];

  const newController = (identity: string): Controller => {
    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    const c = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity, log: process.env.CTL_DEBUG ? createLogger('debug') : silentLogger(), resyncMs: 30_000 });
    controllers.push(c);
    return c;
  };
  const status = async (name: string, base = SBE): Promise<Status> => ((await env.request<{ status?: Status }>('GET', `${base}/${name}`)).body.status ?? {});
  const waitStatus = async (name: string, pred: (s: Status) => boolean, ms = 10_000, base = SBE): Promise<Status> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await status(name, base);
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`status of ${name} after ${ms} ms: ${JSON.stringify(s)}`);
      await sleep(100);
    }
  };
  const must = async (method: string, p: string, body?: unknown, contentType?: string): Promise<void> => {
    const r = await env.request(method, p, body, contentType ? { contentType } : {});
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${p}: ${r.status} ${r.text}`);
  };

  before(async () => {
    env = await startEnvtest();
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller') });
    const labels: Record<string, string> = { n1: 'san', n2: 'san', n3: 'local' };
    for (const [node, storage] of Object.entries(labels)) {
      await createNode(env, node, { storage });
    }
    agents = Object.keys(labels).map((n) => new FakeAgent(env, n));
    for (const a of agents) await a.start();
  });

  after(async () => {
    for (const c of controllers) await c.stop({ release: false }).catch(() => undefined);
    for (const a of agents ?? []) await a.stop().catch(() => undefined);
    await env?.stop();
  });

  it('pushes to exactly the selected agents and reports status', async () => {
    const a = newController('ctl-a');
    await a.start();
    const t0 = Date.now();
    // no resources yet: every agent gets the empty configuration
    for (const ag of agents) await ag.waitFor((x) => x.pushes.length >= 1, 20_000, 'the initial push');
    console.log(`# leader elected and initial configuration on 3 agents in ${Date.now() - t0} ms`);
    assert.ok(a.isLeader());
    const before = agents.map((x) => x.pushes.length);

    const t1 = Date.now();
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'san-log' },
      spec: { backend: 'memory', run: 'always', filters: ['.event.severity 3 LE'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    const [n1, n2, n3] = agents as [FakeAgent, FakeAgent, FakeAgent];
    for (const ag of [n1, n2]) await ag.waitFor((x) => x.pushes.length > before[agents.indexOf(x)]!, 15_000, 'the push of san-log');
    console.log(`# StorageBackend created -> pushed to both selected agents in ${Date.now() - t1} ms`);
    for (const ag of [n1, n2]) assert.deepEqual(backendsOf(last(ag)!.storage)['san-log']?.Filter, ['.event.severity 3 LE']);
    const s = await waitStatus('san-log', (x) => x.ready === '2/2' && x.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
    assert.equal(s.nodesSelected, 2);
    assert.equal(s.nodesApplied, 2);
    assert.equal(s.nodesFailed, 0);
    assert.equal(s.observedGeneration, 1);
    assert.equal(s.conditions?.find((c) => c.type === 'Accepted')?.status, 'True');
    assert.equal(n3.pushes.length, before[2], 'the unselected agent got no push');

    // change → pushed again with a higher generation
    const gens = [n1, n2].map((x) => last(x)!.generation);
    const t2 = Date.now();
    await must('PATCH', `${SBE}/san-log`, { spec: { filters: ['.event.severity 4 LE'] } }, 'application/merge-patch+json');
    for (const [i, ag] of [n1, n2].entries()) {
      await ag.waitFor((x) => last(x)!.generation > gens[i]!, 15_000, 'the push of the change');
      assert.deepEqual(backendsOf(last(ag)!.storage)['san-log']?.Filter, ['.event.severity 4 LE']);
    }
    console.log(`# StorageBackend changed -> pushed in ${Date.now() - t2} ms`);
    await waitStatus('san-log', (x) => x.observedGeneration === 2 && x.ready === '2/2');
    assert.equal(n3.pushes.length, before[2]);

    // a node label change: the node gets (and then loses) the backend, the counts follow
    await must('PATCH', '/api/v1/nodes/n3', { metadata: { labels: { storage: 'san' } } }, 'application/merge-patch+json');
    await n3.waitFor((x) => x.pushes.length > 0 && backendsOf(last(x)!.storage)['san-log'] !== undefined, 15_000, 'the push after the relabel');
    await waitStatus('san-log', (x) => x.nodesSelected === 3 && x.ready === '3/3');
    await must('PATCH', '/api/v1/nodes/n3', { metadata: { labels: { storage: 'local' } } }, 'application/merge-patch+json');
    await n3.waitFor((x) => backendsOf(last(x)!.storage)['san-log'] === undefined, 15_000, 'the push after the label is back');
    await waitStatus('san-log', (x) => x.nodesSelected === 2 && x.ready === '2/2');
  });

  it('reports filter errors and invalid specs, applying only what is valid', async () => {
    const [n1, , n3] = agents as [FakeAgent, FakeAgent, FakeAgent];
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'half-good' },
      spec: { backend: 'memory', filters: ['1 1 EQ', '1 BOGUS'], nodeSelector: { matchLabels: { storage: 'local' } } },
    });
    await n3.waitFor((x) => x.pushes.length > 0 && backendsOf(last(x)!.storage)['half-good'] !== undefined, 15_000, 'the push of half-good');
    assert.deepEqual(backendsOf(last(n3)!.storage)['half-good']?.Filter, ['1 1 EQ'], 'the broken filter is not rendered');
    const s = await waitStatus('half-good', (x) => x.ready === '1/1' && (x.filterErrors?.length ?? 0) > 0);
    assert.equal(s.conditions?.find((c) => c.type === 'Accepted')?.status, 'True');
    assert.equal(s.filterErrors?.[0]?.index, 1);

    const n1Pushes = n1.pushes.length;
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'no-such' },
      spec: { backend: 'nosuchbackend', filters: ['1 1 EQ'] },
    });
    const bad = await waitStatus('no-such', (x) => x.conditions?.find((c) => c.type === 'Accepted')?.status === 'False');
    assert.match(bad.conditions!.find((c) => c.type === 'Accepted')!.message, /spec\.backend: no built-in backend named "nosuchbackend"/);
    assert.equal(bad.conditions!.find((c) => c.type === 'Ready')!.status, 'False');
    assert.equal(bad.nodesSelected, 3);
    await sleep(500);
    assert.equal(n1.pushes.length, n1Pushes, 'a rejected resource pushes nothing');
    await must('DELETE', `${SBE}/no-such`);
  });

  it('StorageEventPlugin: rendered into the TOML of the selected agents, status, invalid plugin', async () => {
    const [n1, n2, n3] = agents as [FakeAgent, FakeAgent, FakeAgent];
    const n3Pushes = n3.pushes.length;
    await must('POST', SEP, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name: 'mpath' },
      spec: { type: 'parser', plugin: 'multipath', filter: { systems: ['dm'], types: ['raw'] }, nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    for (const ag of [n1, n2]) await ag.waitFor((x) => /^\[mpath\]$/m.test(last(x)!.toml), 15_000, 'the push of [mpath]');
    assert.match(last(n1)!.toml, /plugin = "multipath"/);
    const s = await waitStatus('mpath', (x) => x.ready === '2/2' && x.conditions?.find((c) => c.type === 'Ready')?.status === 'True', 10_000, SEP);
    assert.equal(s.conditions?.find((c) => c.type === 'Accepted')?.status, 'True');
    assert.equal(n3.pushes.length, n3Pushes);

    await must('POST', SEP, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name: 'nosuch' },
      spec: { type: 'parser', plugin: 'nosuchparser' },
    });
    const bad = await waitStatus('nosuch', (x) => x.conditions?.find((c) => c.type === 'Accepted')?.status === 'False', 10_000, SEP);
    assert.match(bad.conditions!.find((c) => c.type === 'Accepted')!.message, /spec\.plugin: no parser plugin named "nosuchparser"/);
    await must('DELETE', `${SEP}/nosuch`);
    await must('DELETE', `${SEP}/mpath`);
    for (const ag of [n1, n2]) await ag.waitFor((x) => !/^\[mpath\]$/m.test(last(x)!.toml), 15_000, 'the push without [mpath]');
  });

  it('brings an agent restarted with an empty state up to date', async () => {
    const n1 = agents[0]!;
    const before = last(n1)!;
    await n1.restartEmpty();
    await n1.waitFor((x) => x.hash === before.hash && last(x)!.generation > before.generation, 15_000, 'the push after the restart');
    assert.ok(last(n1)!.generation > before.generation);
  });

  it('counts an agent that refuses the configuration as failed, with its reason', async () => {
    const [n1, n2] = agents as [FakeAgent, FakeAgent, FakeAgent];
    n2.refuse = 'storage cannot start: no space left on device';
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'refused' },
      spec: { backend: 'memory', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    const s = await waitStatus('refused', (x) => x.nodesFailed === 1 && x.nodesApplied === 1, 15_000) as Status & { failures?: { node: string; message: string }[] };
    assert.equal(s.ready, '1/2');
    assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
    assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.reason, 'ApplyFailed');
    assert.equal(s.failures?.[0]?.node, 'n2');
    assert.match(s.failures?.[0]?.message ?? '', /HTTP 400.*no space left on device/);
    assert.ok(backendsOf(last(n1)!.storage).refused !== undefined);
    // fixed and restarted: brought up to date, Ready
    n2.refuse = null;
    await n2.restartEmpty();
    await waitStatus('refused', (x) => x.ready === '2/2' && x.nodesFailed === 0, 15_000);
    assert.ok(backendsOf(last(n2)!.storage).refused !== undefined);
    await must('DELETE', `${SBE}/refused`);
  });

  it('deleting a StorageBackend removes it from the selected agents', async () => {
    const [n1, n2, n3] = agents as [FakeAgent, FakeAgent, FakeAgent];
    assert.ok(backendsOf(last(n1)!.storage)['san-log'] !== undefined);
    const n3Pushes = n3.pushes.length;
    await must('DELETE', `${SBE}/san-log`);
    for (const ag of [n1, n2]) await ag.waitFor((x) => backendsOf(last(x)!.storage)['san-log'] === undefined, 15_000, 'the push without san-log');
    assert.equal(n3.pushes.length, n3Pushes);
  });

  it('leader election: the standby takes over, pushes never come from both', async () => {
    const [a] = controllers as [Controller];
    const b = newController('ctl-b');
    await b.start();
    await sleep(3000);
    assert.ok(a.isLeader());
    assert.ok(!b.isLeader(), 'the standby does not lead while the leader renews');
    // a change while A leads: pushed by A only
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'first' },
      spec: { backend: 'memory', filters: ['1 1 EQ'] },
    });
    for (const ag of agents) await ag.waitFor((x) => backendsOf(last(x)!.storage).first !== undefined, 15_000, 'the push of "first"');
    // "kill" the leader: it stops without handing back the Lease
    const killedAt = Date.now();
    await a.stop({ release: false });
    const stoppedAt = Date.now();
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'second' },
      spec: { backend: 'memory', filters: ['1 1 EQ'] },
    });
    for (const ag of agents) await ag.waitFor((x) => backendsOf(last(x)!.storage).second !== undefined, 35_000, 'the push of "second" by the standby');
    console.log(`# leader stopped -> standby pushed to all agents after ${Date.now() - killedAt} ms`);
    assert.ok(b.isLeader());
    for (const ag of agents) {
      const byA = ag.pushes.filter((p) => p.controller === 'ctl-a');
      const byB = ag.pushes.filter((p) => p.controller === 'ctl-b');
      assert.ok(byA.length > 0 && byB.length > 0, `${ag.node}: pushes from both replicas in turn`);
      assert.ok(byA.every((p) => p.at <= stoppedAt), `${ag.node}: no push from the stopped leader`);
      assert.ok(byB.every((p) => p.at > killedAt), `${ag.node}: no push from the standby while the leader led`);
      assert.deepEqual(ag.pushes.map((p) => p.controller).filter((c) => c !== 'ctl-a' && c !== 'ctl-b'), []);
    }
    await waitStatus('second', (x) => x.ready === '3/3');

    // a graceful stop hands the Lease back: the next standby takes over within its retry period
    const c = newController('ctl-c');
    await c.start();
    const handoverAt = Date.now();
    await b.stop({ release: true });
    const bStoppedAt = Date.now();
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'third' },
      spec: { backend: 'memory', filters: ['1 1 EQ'] },
    });
    for (const ag of agents) await ag.waitFor((x) => backendsOf(last(x)!.storage).third !== undefined, 15_000, 'the push of "third" after the handover');
    console.log(`# leader released the Lease -> next replica pushed to all agents after ${Date.now() - handoverAt} ms`);
    const order = ['ctl-a', 'ctl-b', 'ctl-c'];
    for (const ag of agents) {
      const seq = ag.pushes.map((p) => order.indexOf(p.controller));
      assert.deepEqual(seq, [...seq].sort((x, y) => x - y), `${ag.node}: pushes in leadership order, never interleaved: ${seq.join(',')}`);
      assert.ok(ag.pushes.filter((p) => p.controller === 'ctl-b').every((p) => p.at <= bStoppedAt));
      assert.ok(ag.pushes.filter((p) => p.controller === 'ctl-c').every((p) => p.at > handoverAt));
    }
  });
});
