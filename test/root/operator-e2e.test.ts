// Operator end to end with REAL components (issue 5): a real kube-apiserver
// (test/helpers/envtest.ts), the real controller (in this process, controller
// ServiceAccount and RBAC from manifests/) and three real agents
// (`bin/peripety agent` child processes in Kubernetes mode, distinct
// --node-name and state directories, the agent's RBAC from manifests/:
// test/helpers/manifests.ts picks both out of the chart-rendered manifests;
// test/helpers/operator.ts sets up the cluster and starts the agents).
// StorageBackends created, changed and deleted reach exactly the selected agents (their GET /v1/status), status counts
// follow, an agent restarted with an empty state is configured again, and a
// kernel line becomes a Kubernetes Event regarding the one Node whose agent
// runs the k8s-events receiver. Root: the agents read /dev/kmsg and the test
// writes to it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { Controller } from '../../src/controller/controller.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { isRoot } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import { agentKubeconfig, agentStatus as getAgentStatus, type AgentStatus, mustRequest, type OperatorCluster, SBE_PATH as SBE, SEP_PATH as SEP, setupOperatorCluster, startNodeAgent as startAgentFor, until as poll } from '../helpers/operator.ts';

const NODES = { 'node-a': 'san', 'node-b': 'san', 'node-c': 'local' } as const;
type NodeName = keyof typeof NODES;
const NAMES = Object.keys(NODES) as NodeName[];

interface CrStatus {
  observedGeneration?: number;
  conditions?: { type: string; status: string; reason: string; message: string }[];
  nodesSelected?: number;
  nodesApplied?: number;
  nodesFailed?: number;
  ready?: string;
}
interface K8sEvent {
  metadata: { name: string; annotations?: Record<string, string> };
  regarding?: { kind?: string; name?: string };
  reason?: string;
  note?: string;
}

describe('operator end to end: real controller, three real agents, real kube-apiserver', {
  skip: !isRoot() && 'NOT ROOT: the agents read /dev/kmsg and the test writes to it',
  timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000,
}, () => {
  let env: Envtest;
  let controller: Controller | undefined;
  let cluster: OperatorCluster;
  const agents = new Map<NodeName, AgentProcess>();
  const running: AgentProcess[] = [];

  const startNodeAgent = async (node: NodeName): Promise<AgentProcess> => {
    const a = await startAgentFor(env, node);
    running.push(a);
    agents.set(node, a);
    return a;
  };
  const agentStatus = async (node: NodeName): Promise<AgentStatus> => getAgentStatus(agents.get(node)!, await cluster.tokenFor(node));
  const backendNames = async (node: NodeName): Promise<string[]> => (await agentStatus(node)).storage?.backends.map((b) => b.name).sort() ?? [];
  const until = <T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> =>
    poll(what, f, { timeoutMs, detail: () => [...agents].map(([n, a]) => `--- ${n}:\n${a.stderr().slice(-1500)}`).join('\n') });
  /** Waits until every agent's backends satisfy `want` (node → has the backend); resolves with the ms it took from t0. */
  const untilBackends = async (name: string, want: Record<NodeName, boolean>, t0: number, what: string): Promise<number> => {
    await until(what, async () => {
      for (const n of NAMES) if ((await backendNames(n)).includes(name) !== want[n]) return false;
      return true;
    });
    return Date.now() - t0;
  };
  const must = (method: string, p: string, body?: unknown, contentType?: string): Promise<void> => mustRequest(env, method, p, body, contentType);
  const crStatus = async (p: string): Promise<CrStatus> => ((await env.request<{ status?: CrStatus }>('GET', p)).body.status ?? {});
  const cond = (s: CrStatus, type: string) => s.conditions?.find((c) => c.type === type)?.status;
  const nodeEvents = async (dev: string): Promise<K8sEvent[]> => {
    const r = await env.request<{ items: K8sEvent[] }>('GET', '/apis/events.k8s.io/v1/namespaces/default/events');
    assert.equal(r.status, 200, r.text);
    return r.body.items.filter((e) => e.metadata.annotations?.['peripety.io/device'] === dev || (e.note ?? '').includes(dev));
  };

  before(async () => {
    env = await startEnvtest();
    cluster = await setupOperatorCluster(env, Object.fromEntries(Object.entries(NODES).map(([node, storage]) => [node, { storage }])));
    for (const n of NAMES) await startNodeAgent(n);
    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    controller = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity: 'e2e', log: silentLogger(), resyncMs: 30_000 });
    const t0 = Date.now();
    await controller.start();
    // the initial (empty) configuration reaches every agent: generation > 0
    await until('the initial push to all three agents', async () => {
      for (const n of NAMES) if ((await agentStatus(n)).generation < 1) return false;
      return true;
    }, 30_000);
    console.log(`# controller leading, initial configuration on 3 agents in ${Date.now() - t0} ms`);
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await controller?.stop({ release: false }).catch(() => undefined);
    for (const a of running) await a.stop('SIGKILL').catch(() => undefined);
    await env?.stop();
  });

  it('a StorageBackend created, changed, deleted: exactly the selected agents follow, status shows it', async () => {
    const t1 = Date.now();
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'san-log' },
      spec: { backend: 'memory', run: 'always', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    const created = await untilBackends('san-log', { 'node-a': true, 'node-b': true, 'node-c': false }, t1, 'san-log on node-a and node-b only');
    console.log(`# StorageBackend created -> running on node-a and node-b (not node-c) in ${created} ms`);
    const s = await until('san-log status 2/2 Ready', async () => {
      const x = await crStatus(`${SBE}/san-log`);
      return x.nodesSelected === 2 && x.nodesApplied === 2 && cond(x, 'Ready') === 'True' ? x : null;
    });
    console.log(`# StorageBackend status Ready 2/2 ${Date.now() - t1} ms after create`);
    assert.equal(s.nodesFailed ?? 0, 0);
    assert.equal(s.ready, '2/2');
    assert.equal(cond(s, 'Accepted'), 'True');
    assert.equal(s.observedGeneration, 1);
    for (const n of ['node-a', 'node-b'] as const) {
      assert.deepEqual((await agentStatus(n)).storage?.backends.find((b) => b.name === 'san-log')?.started, true, `${n}: san-log started`);
    }

    // change: the selector now picks node-a only, the filter changes
    await must('PATCH', '/api/v1/nodes/node-a', { metadata: { labels: { tier: 'gold' } } }, 'application/merge-patch+json');
    const t2 = Date.now();
    await must('PATCH', `${SBE}/san-log`, { spec: { filters: ['2 2 EQ'], nodeSelector: { matchLabels: { tier: 'gold' } } } }, 'application/merge-patch+json');
    const changed = await untilBackends('san-log', { 'node-a': true, 'node-b': false, 'node-c': false }, t2, 'san-log on node-a only after the change');
    console.log(`# StorageBackend changed (selector: node-a only) -> agents follow in ${changed} ms`);
    const s2 = await until('san-log status 1/1 Ready', async () => {
      const x = await crStatus(`${SBE}/san-log`);
      return x.observedGeneration === 2 && x.nodesSelected === 1 && x.nodesApplied === 1 && cond(x, 'Ready') === 'True' ? x : null;
    });
    assert.equal(s2.ready, '1/1');

    // delete: gone from the agent
    const t3 = Date.now();
    await must('DELETE', `${SBE}/san-log`);
    const deleted = await untilBackends('san-log', { 'node-a': false, 'node-b': false, 'node-c': false }, t3, 'san-log gone from every agent');
    console.log(`# StorageBackend deleted -> gone from the agents in ${deleted} ms`);
  });

  it('an agent restarted with an empty state gets its configuration again', async () => {
    const t0 = Date.now();
    await must('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'again' },
      spec: { backend: 'memory', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    await untilBackends('again', { 'node-a': true, 'node-b': true, 'node-c': false }, t0, '"again" on node-a and node-b');
    const before = await agentStatus('node-b');
    await agents.get('node-b')!.stop('SIGKILL');
    const t1 = Date.now();
    const b = await startNodeAgent('node-b'); // a new, empty state directory
    assert.doesNotMatch(b.stderr(), /starting with the last applied configuration/);
    const after = await until('node-b configured again', async () => {
      const s = await agentStatus('node-b');
      return s.storage?.backends.some((x) => x.name === 'again') ? s : null;
    });
    console.log(`# node-b restarted empty -> configured again ${Date.now() - t1} ms after its start`);
    assert.equal(after.hash, before.hash, 'the same rendered configuration');
    assert.ok(after.generation > before.generation, `generation ${after.generation} > ${before.generation}`);
    await must('DELETE', `${SBE}/again`);
    await untilBackends('again', { 'node-a': false, 'node-b': false, 'node-c': false }, Date.now(), '"again" gone');
  });

  it('a kernel line becomes a Kubernetes Event regarding the one Node whose agent runs k8s-events', async () => {
    const plugin = (name: string, spec: Record<string, unknown>) =>
      must('POST', SEP, { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name }, spec });
    // the pushed plugin sections replace the agent's local ones: the collector and parser come from the cluster too
    await plugin('kmsg', { type: 'collector', plugin: 'kmsg', config: { start: 'end', accept_user_facility: true } });
    await plugin('block', { type: 'parser', plugin: 'block' });
    await plugin('node-events', {
      // node-a's own identity: the chart's admission policy lets an agent write only Events regarding its own Node
      type: 'receiver', plugin: 'k8s-events', config: { kubeconfig: await agentKubeconfig(env, 'node-a') },
      nodeSelector: { matchLabels: { tier: 'gold' } },
    });
    const t0 = Date.now();
    await until('the plugin sections on the agents', async () => {
      for (const n of NAMES) {
        const names = (await agentStatus(n)).plugins.map((p) => p.name).sort();
        const want = n === 'node-a' ? ['block', 'kmsg', 'node-events'] : ['block', 'kmsg'];
        if (JSON.stringify(names) !== JSON.stringify(want)) return false;
      }
      return true;
    });
    console.log(`# StorageEventPlugins -> on the agents in ${Date.now() - t0} ms (node-events on node-a only)`);
    const s = await until('node-events status 1/1 Ready', async () => {
      const x = await crStatus(`${SEP}/node-events`);
      return x.nodesSelected === 1 && x.nodesApplied === 1 && cond(x, 'Ready') === 'True' ? x : null;
    });
    assert.equal(cond(s, 'Accepted'), 'True');

    const dev = uniqueDevice('sdz');
    const t1 = Date.now();
    injectKmsg(`I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`, 3);
    const [ev] = await until('an Event for the injected line', async () => {
      const e = await nodeEvents(dev);
      return e.length > 0 ? e : null;
    });
    console.log(`# kernel line -> Kubernetes Event regarding ${ev!.regarding?.kind}/${ev!.regarding?.name} in ${Date.now() - t1} ms`);
    assert.equal(ev!.regarding?.kind, 'Node');
    assert.equal(ev!.regarding?.name, 'node-a');
    // all three agents read the same /dev/kmsg: nothing but node-a's agent may write an Event for it
    await sleep(2000);
    const all = await nodeEvents(dev);
    assert.equal(all.length, 1, `exactly one Event: ${JSON.stringify(all.map((e) => e.regarding))}`);
  });
});
