// End to end on a real node (`npm run e2e`, as root; docs/packaging.md "The
// real node"): the image built without a registry (hack/image.sh), a
// single-node cluster with a real kubelet and containerd (hack/node.sh), the
// chart installed with helm as the README says, then what a user relies on:
// a kernel line becomes an Event on the Node, the agent's metrics and stored
// rows show it, a StorageBackend change reaches the agent, the controller
// survives losing its leader, the agent resumes after its pod is replaced
// with no lost or duplicated event, and helm upgrade / uninstall and the
// node's `down` leave nothing behind on the host.
//
// The steps depend on each other and run in order; a failed step skips the
// rest (each `it` checks `failed`). On failure the diagnostics go to
// $ARTIFACTS (default /tmp/peripety-e2e-node).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { isRoot } from '../helpers/faults.ts';
import { injectKmsg } from '../helpers/kmsg.ts';
import { parseMetrics, sumMetric } from '../helpers/prom-text.ts';
import { helm as helmIn, hostState, kubectl, kubectlJson, kubectlSpawn, nodeDown, nodeRunning, nodeUp, repoRoot, run, until, type HostState, type Node } from './node.ts';

const RELEASE = 'peripety';
const NS = 'peripety-system';
const EVENTS_NS = 'default';
const AGENT_PORT = 9477;
const AGENT = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=agent`;
const CONTROLLER = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=controller`;
const ARTIFACTS = process.env.ARTIFACTS ?? '/tmp/peripety-e2e-node';
const WAIT = 300_000;
const NODE_ROOT = process.env.NODE_ROOT ?? '/var/tmp/peripety-node'; // hack/node.sh's default
// The line the kind script injects too: the scsi parser's SCSI_MEDIUM_ERROR.
const mediumError = (dev: string) => `sd 2:0:0:0: [${dev}] tag#0 Sense Key : Medium Error [current]`;
/** A kernel-like device name no machine has, new on every run (other tests share the kernel log). */
const freshDevice = () => `sdpe${Array.from({ length: 6 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('')}`;

interface Meta { name: string; uid?: string; generation?: number; annotations?: Record<string, string>; labels?: Record<string, string> }
interface Condition { type: string; status: string; observedGeneration?: number; reason?: string; message?: string }
interface Obj { metadata: Meta; spec?: Record<string, unknown>; status?: { conditions?: Condition[]; phase?: string; readyReplicas?: number; containerStatuses?: { ready: boolean; restartCount: number }[] } }
interface List<T = Obj> { items: T[] }
interface KEvent { metadata: Meta; reason: string; type: string; note?: string; reportingController: string; regarding: { kind: string; name: string }; series?: { count: number } }

let node: Node;
let helmBin = '';
let image = { repository: '', tag: '', archive: '' };
let before_: HostState | undefined;
let failed = false;
const timings: Record<string, string> = {};
const dev1 = freshDevice();
const dev2 = freshDevice();

function step(name: string, fn: (t: TestContext) => Promise<void> | void) {
  it(name, async (t) => {
    if (!isRoot()) {
      process.stderr.write(`*** SKIPPED (needs root): ${name}: the real node needs namespaces, cgroups, containerd and /dev/kmsg ***\n`);
      t.skip('NOT ROOT');
      return;
    }
    if (failed) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await fn(t);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

const k = (args: string[], input?: string) => kubectl(node, args, { input });
const kj = <T = Obj>(args: string[]) => kubectlJson<T>(node, args);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function agentPod(): Obj {
  const pods = kj<List>(['-n', NS, 'get', 'pods', '-l', AGENT]).items.filter((p) => p.status?.phase === 'Running');
  assert.equal(pods.length, 1, `one running agent pod on the one node (have ${pods.length})`);
  return pods[0]!;
}
const ready = (o: Obj, type = 'Ready') => o.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;

function agentMetrics(pod: string) {
  return parseMetrics(k(['get', '--raw', `/api/v1/namespaces/${NS}/pods/${pod}:${AGENT_PORT}/proxy/metrics`]));
}

/** Rows of the agent's sqlite backend for `dev`, read by `prpt query` inside the agent pod. */
function storedRows(pod: string, dev: string): { event_type: string; dev_name: string }[] {
  const out = k(['-n', NS, 'exec', pod, '-c', 'agent', '--', 'node', '/app/bin/prpt', 'query', '--sqlite', '/var/lib/peripety/events.db',
    '--filter', `.e.dev_name '${dev}' STRCMP`, '--json']);
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { event_type: string; dev_name: string });
}

function nodeEvents(dev: string): KEvent[] {
  return kj<List<KEvent>>(['get', 'events.events.k8s.io', '-n', EVENTS_NS, '--field-selector', `regarding.kind=Node,regarding.name=${node.name}`])
    .items.filter((e) => (e.note ?? '').includes(dev));
}

function everythingReady(): boolean {
  const agents = kj<List>(['-n', NS, 'get', 'pods', '-l', AGENT]).items;
  const controllers = kj<List>(['-n', NS, 'get', 'pods', '-l', CONTROLLER]).items;
  const seps = kj<List>(['get', 'storageeventplugins']).items;
  const sbes = kj<List>(['get', 'storagebackends']).items;
  return agents.length === 1 && agents.every((p) => ready(p)) &&
    controllers.length === 2 && controllers.every((p) => ready(p)) &&
    seps.length > 0 && seps.every((r) => ready(r)) && sbes.length > 0 && sbes.every((r) => ready(r));
}

/** Warning Events the kubelet wrote about the release's pods (a probe that failed, a pod that could not start…). */
function podWarnings(): string[] {
  return kj<List<KEvent & { involvedObject?: { name: string }; message?: string }>>(['get', 'events', '-n', NS, '--field-selector', 'type=Warning']).items
    .map((e) => `${e.involvedObject?.name ?? '?'}: ${e.reason}: ${e.message ?? ''}`)
    // the test node runs no cluster DNS; a real cluster does
    .filter((w) => !w.includes('MissingClusterDNS'))
    // a start slower than the startup probe's 2 s delay (a loaded node) is what that probe is for
    .filter((w) => !/: Unhealthy: Startup probe failed/.test(w));
}

function agentLease(): Obj {
  return kj(['-n', NS, 'get', 'lease', `peripety-agent-${node.name}`]);
}

/** The sqlite backend's MaxAgeDays, as the agent applied it (its applied.json in the state directory). */
function appliedMaxAge(pod: string): number | undefined {
  const applied = k(['-n', NS, 'exec', pod, '-c', 'agent', '--', 'cat', '/var/lib/peripety/applied.json']);
  const m = /"MaxAgeDays"\s*:\s*(\d+)/.exec(applied);
  return m ? Number(m[1]) : undefined;
}

async function changeBackend(maxAge: number): Promise<number> {
  const t0 = Date.now();
  const hash0 = agentLease().metadata.annotations?.['peripety.io/hash'];
  k(['patch', 'storagebackend', 'local', '--type', 'merge', '-p', JSON.stringify({ spec: { config: { MaxAgeDays: maxAge } } })]);
  const gen = kj(['get', 'storagebackend', 'local']).metadata.generation;
  const pod = agentPod().metadata.name;
  await until(`the agent to apply MaxAgeDays ${maxAge}`, WAIT, () => appliedMaxAge(pod) === maxAge);
  await until('the agent Lease to carry the new hash', WAIT, () => agentLease().metadata.annotations?.['peripety.io/hash'] !== hash0);
  await until(`StorageBackend local Ready at generation ${gen}`, WAIT, () => {
    const c = kj(['get', 'storagebackend', 'local']).status?.conditions?.find((x) => x.type === 'Ready');
    return c?.status === 'True' && c.observedGeneration === gen;
  });
  return Date.now() - t0;
}

function leaderLease(): string {
  return kj(['-n', NS, 'get', 'lease', 'peripety-controller']).spec?.holderIdentity as string;
}

function diagnostics(): void {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const save = (file: string, fn: () => string) => {
    try {
      writeFileSync(path.join(ARTIFACTS, file), fn());
    } catch (err) {
      writeFileSync(path.join(ARTIFACTS, file), `failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
  save('objects.txt', () => k(['get', 'nodes,pods,daemonsets,deployments,services,leases,configmaps', '-A', '-o', 'wide']));
  save('describe.txt', () => k(['describe', 'nodes,daemonsets,deployments,pods', '-n', NS]));
  save('peripety-resources.yaml', () => k(['get', 'storageeventplugins,storagebackends', '-o', 'yaml']));
  save('events.yaml', () => k(['get', 'events.events.k8s.io', '-A', '-o', 'yaml']));
  save('helm-status.txt', () => helmIn(node, helmBin, ['status', RELEASE, '-n', NS]));
  try {
    for (const p of kj<List>(['-n', NS, 'get', 'pods']).items) {
      const name = p.metadata.name;
      save(`logs-${name}.txt`, () => k(['-n', NS, 'logs', name, '--all-containers', '--prefix', '--timestamps']));
      if (p.status?.containerStatuses?.some((c) => c.restartCount > 0)) save(`logs-${name}.previous.txt`, () => k(['-n', NS, 'logs', name, '--all-containers', '--prefix', '--previous']));
      if (name.includes('agent')) save(`metrics-${name}.txt`, () => k(['get', '--raw', `/api/v1/namespaces/${NS}/pods/${name}:${AGENT_PORT}/proxy/metrics`]));
    }
  } catch { /* the API server is gone: the node's own logs below still tell */ }
  run('bash', [path.join(repoRoot, 'hack/node.sh'), 'diag', path.join(ARTIFACTS, 'node')]);
  process.stderr.write(`e2e: diagnostics in ${ARTIFACTS}\n`);
}

describe('the chart on a real node', { concurrency: false }, () => {
  before(() => {
    if (!isRoot()) return;
    try {
      setUp();
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  function setUp(): void {
    if (existsSync(NODE_ROOT)) {
      // a node left by an interrupted run (a killed test): take it down first, loudly
      process.stderr.write(`e2e: ${NODE_ROOT} exists from an earlier run; taking it down first\n${nodeDown().output}`);
    }
    helmBin = run('bash', [path.join(repoRoot, 'hack/helm-build.sh')]).trim().split('\n').pop()!;
    if (!helmBin.endsWith('/helm')) helmBin = path.join(helmBin, 'helm');
    const [ref, archive] = run('bash', [path.join(repoRoot, 'hack/image.sh'), '--archive'], { timeoutMs: 1_800_000 }).trim().split('\n');
    assert.ok(ref && archive, 'hack/image.sh --archive prints the reference and the archive');
    const colon = ref.lastIndexOf(':');
    image = { repository: ref.slice(0, colon), tag: ref.slice(colon + 1), archive };
    before_ = hostState();
    const t0 = Date.now();
    node = nodeUp();
    timings['node up (binaries cached)'] = secs(Date.now() - t0);
    // the snapshot sees the node (so the comparison after `down` can fail): its cgroup root in every hierarchy
    const during = hostState().cgroups.filter((c) => !before_!.cgroups.includes(c));
    assert.ok(during.length > 0 && during.every((c) => c.endsWith('/peripety-node')), `the node's cgroups: ${during.join(' ')}`);
    const t1 = Date.now();
    run('bash', [path.join(repoRoot, 'hack/node.sh'), 'load', archive]);
    timings['image import into containerd'] = secs(Date.now() - t1);
  }

  after(() => {
    if (!isRoot()) return;
    if (failed && node) diagnostics();
    // a failed run still takes its node down (unless kept for a look), or the next `up` refuses
    if (nodeRunning()) {
      if (process.env.KEEP_NODE === '1') process.stderr.write('e2e: KEEP_NODE=1: the node is still up; hack/node.sh env / exec / down\n');
      else process.stderr.write(`e2e: ${nodeDown().output}`);
    }
    process.stderr.write(`e2e timings: ${JSON.stringify(timings, null, 1)}\n`);
  });

  step('helm install: the agent, both controller replicas and every default resource Ready', async () => {
    const t0 = Date.now();
    helmIn(node, helmBin, ['install', RELEASE, path.join(repoRoot, 'charts/peripety'), '-n', NS, '--create-namespace',
      '--set', `image.repository=${image.repository}`, '--set', `image.tag=${image.tag}`, '--set', 'image.pullPolicy=Never',
      '--set', 'defaultResources.kmsg.acceptUserFacility=true', '--wait', '--timeout', '300s']);
    await until('agent, 2 controllers, every StorageEventPlugin and StorageBackend Ready', WAIT, everythingReady);
    timings['helm install → all Ready'] = secs(Date.now() - t0);
    assert.deepEqual(podWarnings(), [], 'no Warning Event about the release\'s pods');
  });

  step('the controller runs as non-root on a read-only root file system; its Service answers', () => {
    const pod = kj<List>(['-n', NS, 'get', 'pods', '-l', CONTROLLER]).items[0]!.metadata.name;
    const out = k(['-n', NS, 'exec', pod, '--', 'sh', '-c', 'id -u; touch /probe /tmp/probe 2>&1; true']);
    const [uid, ...errors] = out.trim().split('\n');
    assert.notEqual(uid, '0', 'the controller is not root');
    assert.equal(errors.length, 2, out);
    for (const e of errors) assert.match(e, /Read-only file system/);
    // the metrics Service (what a ServiceMonitor scrapes) selects the replicas: one of them leads
    const svc = kj<List>(['-n', NS, 'get', 'services', '-l', CONTROLLER]).items[0]!;
    const port = (svc.spec as { ports: { port: number }[] }).ports[0]!.port;
    const m = parseMetrics(k(['get', '--raw', `/api/v1/namespaces/${NS}/services/${svc.metadata.name}:${port}/proxy/metrics`]));
    assert.ok(m.some((x) => x.name === 'peripety_controller_leader'), 'the Service reaches a controller');
  });

  step('a kernel line becomes an Event on the Node', async () => {
    // watch first, so the time is the Event's arrival, not a poll interval
    const watch = kubectlSpawn(node, ['get', 'events.events.k8s.io', '-n', EVENTS_NS, '--watch-only',
      '--field-selector', `regarding.kind=Node,regarding.name=${node.name}`, '-o', 'jsonpath={.reason}|{.type}|{.reportingController}|{.note}{"\\n"}']);
    let out = '';
    const seen = new Promise<{ at: number; line: string }>((resolve) => {
      watch.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const line = out.split('\n').find((l) => l.includes(dev1));
        if (line) resolve({ at: Date.now(), line });
      });
    });
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the watch is established
      const t0 = Date.now();
      injectKmsg(mediumError(dev1), 3);
      const got = await Promise.race([seen, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no Event for ${dev1} within 60s; the watch printed:\n${out}`)), 60_000))]);
      timings['kernel line → Node Event'] = secs(got.at - t0);
      const [reason, type, controller] = got.line.split('|');
      assert.equal(reason, 'SCSI_MEDIUM_ERROR');
      assert.equal(type, 'Warning');
      assert.equal(controller, 'peripety.io/agent');
    } finally {
      watch.kill();
    }
  });

  step("the agent's metrics, through the API server's pod proxy", async () => {
    const pod = agentPod().metadata.name;
    const m = await until('the device and event counters', 60_000, () => {
      const s = agentMetrics(pod);
      return sumMetric(s, 'peripety_events_total', { event_type: 'SCSI_MEDIUM_ERROR' }) >= 1 ? s : undefined;
    });
    assert.ok(sumMetric(m, 'peripety_device_errors_total', { device: dev1, system: 'scsi' }) >= 1,
      `peripety_device_errors_total{device="${dev1}"}: ${JSON.stringify(m.filter((x) => x.name === 'peripety_device_errors_total').slice(0, 20))}`);
  });

  step('the event is stored: prpt query inside the agent pod', async () => {
    const pod = agentPod().metadata.name;
    const rows = await until(`a stored row for ${dev1}`, 60_000, () => {
      const r = storedRows(pod, dev1);
      return r.length > 0 ? r : undefined;
    });
    assert.equal(rows.length, 1, `one row for ${dev1}`);
    assert.equal(rows[0]!.event_type, 'SCSI_MEDIUM_ERROR');
  });

  step('a StorageBackend change reaches the agent', async () => {
    timings['StorageBackend change → applied on the agent'] = secs(await changeBackend(17));
  });

  step('the leader controller pod deleted: the other replica takes over', async () => {
    const leader = await until('a leader', WAIT, () => leaderLease() || undefined);
    const pods = kj<List>(['-n', NS, 'get', 'pods', '-l', CONTROLLER]).items.map((p) => p.metadata.name);
    assert.ok(pods.includes(leader), `the leader ${leader} is one of the controller pods ${pods.join(', ')}`);
    const t0 = Date.now();
    k(['-n', NS, 'delete', 'pod', leader, '--wait=false']);
    const next = await until('another replica to lead', WAIT, () => {
      const h = leaderLease();
      return h && h !== leader ? h : undefined;
    });
    timings['leader pod deleted → new leader'] = secs(Date.now() - t0);
    // the surviving replica, or the one the ReplicaSet started in place of the deleted pod: the
    // old leader released the Lease on SIGTERM and both may try for it (whoever comes first leads)
    const now = kj<List>(['-n', NS, 'get', 'pods', '-l', CONTROLLER]).items.map((p) => p.metadata.name);
    assert.ok(now.includes(next), `the new leader ${next} is a controller pod (${now.join(', ')})`);
    timings['new leader is'] = pods.includes(next) ? 'the surviving replica' : 'the replacement pod';
    // the new leader does the work: a further change still reaches the agent
    timings['StorageBackend change under the new leader'] = secs(await changeBackend(18));
    await until('both controller replicas Ready again', WAIT, everythingReady);
  });

  step('the agent pod replaced: it resumes from its saved position, nothing lost, nothing twice', async () => {
    const old = agentPod().metadata.name;
    const t0 = Date.now();
    k(['-n', NS, 'delete', 'pod', old, '--wait=true', '--timeout=120s']);
    // written while no agent runs: only a resumed read position finds it
    injectKmsg(mediumError(dev2), 3);
    const pod = await until('the replacement agent Ready', WAIT, () => {
      const p = kj<List>(['-n', NS, 'get', 'pods', '-l', AGENT]).items.find((x) => x.metadata.name !== old && ready(x));
      return p?.metadata.name;
    });
    timings['agent pod deleted → replacement Ready'] = secs(Date.now() - t0);
    const rows2 = await until(`the row for ${dev2}`, 60_000, () => {
      const r = storedRows(pod, dev2);
      return r.length > 0 ? r : undefined;
    });
    await until(`the Event for ${dev2}`, 60_000, () => nodeEvents(dev2).length > 0);
    // let a re-read of old records (the bug this catches) have happened
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(storedRows(pod, dev2).length, 1, `one row for ${dev2} (${rows2.length} at first)`);
    assert.equal(storedRows(pod, dev1).length, 1, `still one row for ${dev1}: the new agent did not read it again`);
    const ev1 = nodeEvents(dev1);
    assert.equal(ev1.length, 1, `one Event for ${dev1}`);
    assert.ok((ev1[0]!.series?.count ?? 1) <= 1, `the Event for ${dev1} was not counted again: series ${JSON.stringify(ev1[0]!.series)}`);
  });

  step('helm upgrade (monitoring on) rolls the pods and everything is Ready again', async () => {
    // the Prometheus Operator's CRDs, as a cluster with kube-prometheus-stack has them
    const crds = run('bash', [path.join(repoRoot, 'hack/monitoring-crds.sh')]).trim().split('\n').pop()!;
    k(['apply', '--server-side', '-f', crds]);
    k(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
    const old = agentPod().metadata.name;
    const t0 = Date.now();
    helmIn(node, helmBin, ['upgrade', RELEASE, path.join(repoRoot, 'charts/peripety'), '-n', NS, '--reuse-values',
      '-f', path.join(repoRoot, 'charts/peripety/ci/monitoring-on.yaml'),
      '--set', 'agent.podAnnotations.peripety\\.io/e2e=upgraded', '--wait', '--timeout', '300s']);
    await until('a new agent pod and everything Ready', WAIT, () => agentPod().metadata.name !== old && everythingReady());
    timings['helm upgrade → all Ready'] = secs(Date.now() - t0);
    const mon = kj<List<Obj & { kind: string }>>(['-n', NS, 'get', 'servicemonitors,podmonitors,prometheusrules']).items.map((o) => o.kind).sort();
    assert.deepEqual(mon, ['PodMonitor', 'PrometheusRule', 'ServiceMonitor']);
    assert.deepEqual(podWarnings(), [], 'no Warning Event about the release\'s pods');
    const status = JSON.parse(helmIn(node, helmBin, ['status', RELEASE, '-n', NS, '-o', 'json'])) as { version: number; info: { status: string } };
    assert.equal(status.version, 2);
    assert.equal(status.info.status, 'deployed');
  });

  step('helm uninstall leaves nothing of the release but the CRDs (Helm keeps crds/); kubectl delete -f crds/ removes them', async () => {
    helmIn(node, helmBin, ['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '300s']);
    await until('every pod of the release gone', WAIT, () => kj<List>(['-n', NS, 'get', 'pods']).items.length === 0);
    const namespaced = 'all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,servicemonitors,podmonitors,prometheusrules';
    const left = await until('nothing of the release left', 120_000, () => {
      const l = [
        ...kj<List>(['get', namespaced, '-n', NS]).items.filter((o) => o.metadata.name !== 'kube-root-ca.crt' && o.metadata.name !== 'default'),
        ...kj<List>(['get', 'clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings', '-l', `app.kubernetes.io/instance=${RELEASE}`]).items,
        ...kj<List>(['get', 'leases', '-n', EVENTS_NS]).items.filter((o) => o.metadata.name.startsWith('peripety')),
        ...kj<List>(['get', 'storageeventplugins,storagebackends']).items,
      ];
      return l.length === 0 ? l : undefined;
    }).catch((err: unknown) => {
      const l = kj<List>(['get', namespaced, '-n', NS]).items.map((o) => `${(o as Obj & { kind: string }).kind}/${o.metadata.name}`);
      throw new Error(`${err instanceof Error ? err.message : String(err)}: left in ${NS}: ${l.join(', ')}`);
    });
    assert.deepEqual(left, []);
    const crds = kj<List>(['get', 'crds']).items.map((c) => c.metadata.name).filter((n) => n.endsWith('.peripety.io')).sort();
    assert.deepEqual(crds, ['storagebackends.peripety.io', 'storageeventplugins.peripety.io'], 'helm keeps the CRDs of crds/ (the README says how to remove them)');
    // the README's removal of the CRDs
    k(['delete', '-f', path.join(repoRoot, 'crds'), '--wait=true', '--timeout=120s']);
    assert.deepEqual(kj<List>(['get', 'crds']).items.filter((c) => c.metadata.name.endsWith('.peripety.io')), []);
  });

  step('down: the host is as it was (iptables, routes, links, sysctls, cgroups, mounts)', () => {
    const t0 = Date.now();
    const d = nodeDown();
    timings['node down'] = secs(Date.now() - t0);
    assert.ok(d.ok, `hack/node.sh down:\n${d.output}`);
    const after_ = hostState();
    assert.ok(before_);
    assert.equal(after_.iptables, before_.iptables, 'iptables-save');
    assert.equal(after_.ip6tables, before_.ip6tables, 'ip6tables-save');
    assert.equal(after_.routes, before_.routes, 'routes');
    assert.equal(after_.links, before_.links, 'links');
    assert.deepEqual(after_.sysctls, before_.sysctls, 'sysctls');
    assert.deepEqual(after_.cgroups.filter((c) => !before_!.cgroups.includes(c)), [], 'new cgroup directories');
    assert.deepEqual(after_.mounts.filter((m) => !before_!.mounts.includes(m)), [], 'new mounts');
  });
});
