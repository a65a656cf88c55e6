// One-off commands from the peripety.io/command annotation (docs/controller.md
// "Commands") with REAL components: a real kube-apiserver
// (test/helpers/envtest.ts), the real controller (in this process, with the
// controller's RBAC from manifests/) and three real agents (`bin/peripety
// agent` in Kubernetes mode, test/helpers/operator.ts). The agents run no
// collector, so no root is needed. What the agents did is read from their GET
// /v1/status (a backend's `starts`, a plugin's `enabled`, the agent's
// `reloads`), not from the controller's own account of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { Controller } from '../../src/controller/controller.ts';
import type { CommandStatus } from '../../src/crd/schemas.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { mustRequest, type OperatorCluster, SBE_PATH, SEP_PATH, setupOperatorCluster, startNodeAgent, until } from '../helpers/operator.ts';

const NODES = { 'node-a': 'san', 'node-b': 'san', 'node-c': 'local' } as const;
type NodeName = keyof typeof NODES;
const NAMES = Object.keys(NODES) as NodeName[];
const SAN: NodeName[] = ['node-a', 'node-b'];

/** No collector (nothing reads /dev/kmsg): the controller's pushes replace the plugin sections anyway. */
const AGENT_CONFIG = `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false
`;

interface Status {
  reloads: number;
  plugins: { name: string; enabled: boolean }[];
  storage: { backends: { name: string; started: boolean; starts: number }[] } | null;
}
interface CrStatus {
  nodesSelected?: number;
  nodesApplied?: number;
  command?: CommandStatus;
}

describe('one-off commands from an annotation: real controller, three real agents, real kube-apiserver', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000 }, () => {
  let env: Envtest;
  let cluster: OperatorCluster;
  let controller: Controller | undefined;
  const agents = new Map<NodeName, AgentProcess>();

  const newController = async (identity: string): Promise<Controller> => {
    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    // a resync every second: the controller looks at every resource again and again, so a command run twice would show
    const c = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity, log: silentLogger(), resyncMs: 1000 });
    await c.start();
    return c;
  };
  const detail = () => [...agents].map(([n, a]) => `--- ${n}:\n${a.stderr().slice(-1500)}`).join('\n');
  const wait = <T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 20_000) => until(what, f, { timeoutMs, detail });
  const status = async (node: NodeName): Promise<Status> => {
    const r = await fetch(`${agents.get(node)!.apiUrl()}/v1/status`, { headers: { authorization: `Bearer ${await cluster.tokenFor(node)}` } });
    const text = await r.text();
    assert.equal(r.status, 200, `GET /v1/status of ${node}: ${text}`);
    return JSON.parse(text) as Status;
  };
  const backend = async (node: NodeName, name: string) => (await status(node)).storage?.backends.find((b) => b.name === name);
  const plugin = async (node: NodeName, name: string) => (await status(node)).plugins.find((p) => p.name === name);
  const crStatus = async (p: string): Promise<CrStatus> => (await env.request<{ status?: CrStatus }>('GET', p)).body.status ?? {};
  const annotate = (short: 'sbe' | 'sep', name: string, value: string) => env.kubectl(['annotate', short, name, `peripety.io/command=${value}`, '--overwrite']);
  /** waits until status.command records `request` as done (not Running), and returns it */
  const commandDone = (p: string, request: string) => wait(`status.command of ${p} for ${JSON.stringify(request)}`, async () => {
    const c = (await crStatus(p)).command;
    return c?.request === request && c.phase !== 'Running' ? c : null;
  });
  const counter = async (action: string, result: string): Promise<number> => {
    const m = /^peripety_controller_commands_total\{action="([^"]+)",result="([^"]+)"\} (\d+)$/gm;
    const text = await controller!.metrics.registry.metrics();
    for (const x of text.matchAll(m)) if (x[1] === action && x[2] === result) return Number(x[3]);
    return 0;
  };
  const starts = async (name: string): Promise<Record<string, number | undefined>> => {
    const out: Record<string, number | undefined> = {};
    for (const n of NAMES) out[n] = (await backend(n, name))?.starts;
    return out;
  };

  before(async () => {
    env = await startEnvtest();
    cluster = await setupOperatorCluster(env, Object.fromEntries(NAMES.map((n) => [n, { storage: NODES[n] }])));
    for (const n of NAMES) agents.set(n, await startNodeAgent(env, n, { config: AGENT_CONFIG }));
    controller = await newController('cmd-1');
    await mustRequest(env, 'POST', SBE_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'errors' },
      spec: { backend: 'memory', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    await wait('"errors" running on node-a and node-b, status 2/2', async () => {
      for (const n of SAN) if (!(await backend(n, 'errors'))?.started) return false;
      const s = await crStatus(`${SBE_PATH}/errors`);
      return s.nodesSelected === 2 && s.nodesApplied === 2;
    }, 30_000);
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await controller?.stop({ release: false }).catch(() => undefined);
    for (const a of agents.values()) await a.stop('SIGKILL').catch(() => undefined);
    await env?.stop();
  });

  it('restart on a StorageBackend restarts it on the selected agents once; the same value never again, also after a controller change; restart@2 again', async () => {
    const before = await starts('errors');
    assert.deepEqual(before, { 'node-a': 1, 'node-b': 1, 'node-c': undefined });
    const t0 = Date.now();
    await annotate('sbe', 'errors', 'restart');
    const c = await commandDone(`${SBE_PATH}/errors`, 'restart');
    console.log(`# annotation restart -> done on 2 agents in ${Date.now() - t0} ms`);
    assert.equal(c.phase, 'Succeeded', c.message);
    assert.equal(c.action, 'restart');
    assert.equal(c.nodesTargeted, 2);
    assert.equal(c.nodesSucceeded, 2);
    assert.equal(c.nodesFailed, 0);
    assert.ok(c.startedAt && c.completedAt && c.completedAt >= c.startedAt);
    assert.deepEqual(await starts('errors'), { 'node-a': 2, 'node-b': 2, 'node-c': undefined }, 'restarted once on each selected agent');
    assert.equal(await counter('restart', 'succeeded'), 1);

    // the same value: a few resyncs later nothing ran again
    const reconciles = async () => Number(/peripety_controller_reconciles_total\{kind="sbe",result="success"\} (\d+)/.exec(await controller!.metrics.registry.metrics())?.[1] ?? 0);
    const r0 = await reconciles();
    await wait('three more status reconciles of the backend', async () => (await reconciles()) >= r0 + 3);
    assert.deepEqual(await starts('errors'), { 'node-a': 2, 'node-b': 2, 'node-c': undefined }, 'not run again');
    // a new controller (empty memory; the leader Lease handed over) reads status.command and does not run it again either
    await controller!.stop({ release: true });
    controller = await newController('cmd-2');
    await wait('the new controller leading', async () => controller!.isLeader());
    const r1 = await reconciles();
    await wait('the new controller reconciling the backend', async () => (await reconciles()) >= r1 + 2);
    assert.deepEqual(await starts('errors'), { 'node-a': 2, 'node-b': 2, 'node-c': undefined }, 'not run again by the new controller');
    assert.deepEqual((await crStatus(`${SBE_PATH}/errors`)).command, c, 'status.command unchanged');

    await annotate('sbe', 'errors', 'restart@2');
    const c2 = await commandDone(`${SBE_PATH}/errors`, 'restart@2');
    assert.equal(c2.phase, 'Succeeded', c2.message);
    assert.equal(c2.nodesSucceeded, 2);
    assert.deepEqual(await starts('errors'), { 'node-a': 3, 'node-b': 3, 'node-c': undefined }, 'a new nonce runs again');
  });

  it('an invalid value: status says what to write, nothing runs', async () => {
    const before = await starts('errors');
    await annotate('sbe', 'errors', 'Restart');
    const c = await commandDone(`${SBE_PATH}/errors`, 'Restart');
    assert.equal(c.phase, 'Invalid');
    assert.equal(c.action, undefined);
    assert.match(c.message, /peripety\.io\/command "Restart": unknown action "Restart" \(write "restart": lower case, no spaces\)/);
    assert.equal(await counter('unknown', 'invalid'), 1);
    const r0 = Number(/peripety_controller_reconciles_total\{kind="sbe",result="success"\} (\d+)/.exec(await controller!.metrics.registry.metrics())?.[1] ?? 0);
    await wait('more reconciles', async () => Number(/peripety_controller_reconciles_total\{kind="sbe",result="success"\} (\d+)/.exec(await controller!.metrics.registry.metrics())?.[1] ?? 0) >= r0 + 2);
    assert.deepEqual(await starts('errors'), before, 'nothing ran');
    assert.equal(await counter('unknown', 'invalid'), 1, 'reported once');
  });

  it('stop and start on a StorageEventPlugin: the plugin stops and starts on the selected agents only', async () => {
    await mustRequest(env, 'POST', SEP_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name: 'san-scsi' },
      spec: { type: 'parser', plugin: 'scsi', nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    await wait('san-scsi enabled on node-a and node-b', async () => {
      for (const n of SAN) if ((await plugin(n, 'san-scsi'))?.enabled !== true) return false;
      return true;
    });
    await annotate('sep', 'san-scsi', 'stop');
    const c = await commandDone(`${SEP_PATH}/san-scsi`, 'stop');
    assert.equal(c.phase, 'Succeeded', c.message);
    assert.equal(c.nodesSucceeded, 2);
    for (const n of SAN) assert.equal((await plugin(n, 'san-scsi'))?.enabled, false, `${n}: stopped`);
    assert.equal(await plugin('node-c', 'san-scsi'), undefined);
    await annotate('sep', 'san-scsi', 'start@again');
    assert.equal((await commandDone(`${SEP_PATH}/san-scsi`, 'start@again')).phase, 'Succeeded');
    for (const n of SAN) assert.equal((await plugin(n, 'san-scsi'))?.enabled, true, `${n}: started`);
  });

  it('reload and flush go to the whole agent on the selected nodes', async () => {
    const reloads = Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, (await status(n)).reloads] as const)));
    await annotate('sep', 'san-scsi', 'reload');
    const r = await commandDone(`${SEP_PATH}/san-scsi`, 'reload');
    assert.equal(r.phase, 'Succeeded', r.message);
    for (const n of SAN) assert.equal((await status(n)).reloads, reloads[n]! + 1, `${n} reloaded`);
    assert.equal((await status('node-c')).reloads, reloads['node-c'], 'node-c is not selected');
    await annotate('sbe', 'errors', 'flush');
    const f = await commandDone(`${SBE_PATH}/errors`, 'flush');
    assert.equal(f.phase, 'Succeeded', f.message);
    assert.equal(f.nodesSucceeded, 2);
  });

  it('a command the agents refuse: Failed, with each node\'s answer', async () => {
    await mustRequest(env, 'POST', SBE_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'parked' },
      spec: { backend: 'memory', run: 'never', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'san' } } },
    });
    await wait('parked on node-a and node-b (not loaded)', async () => {
      for (const n of SAN) if ((await backend(n, 'parked')) === undefined) return false;
      return true;
    });
    await annotate('sbe', 'parked', 'start');
    const c = await commandDone(`${SBE_PATH}/parked`, 'start');
    assert.equal(c.phase, 'Failed');
    assert.equal(c.nodesTargeted, 2);
    assert.equal(c.nodesFailed, 2);
    assert.deepEqual(c.failures?.map((f) => f.node), SAN);
    assert.match(c.failures?.[0]?.message ?? '', /HTTP 409.*not loaded \(Run: never\)/);
    assert.match(c.message, /start of StorageBackend parked failed on 2 of 2 node\(s\)/);
    assert.equal(await counter('start', 'failed'), 1);
    for (const n of SAN) assert.equal((await backend(n, 'parked'))?.started, false);
  });
});
