// Benchmark of the controller (issue 5): 200 simulated agents (fake agent
// servers in this process, each with a Node and a registration Lease on a
// real kube-apiserver from test/helpers/envtest.ts) and `peripety controller`
// as a child process. Times, from the API server accepting the write:
//  - a StorageBackend created, and then changed, selecting all 200 nodes, to
//    every agent having applied it (push received and its Lease annotations
//    updated, as the real agent does);
//  - the same to the StorageBackend's status showing Ready 200/200;
// and prints the controller's memory as issue 14 means it: VmRSS of the
// controller process (/proc/<pid>/status) at the end and its peak (VmHWM),
// and the heap used from its /metrics.
// Targets: under 5 s; RSS <= 100 MiB (issue 14). BENCH_AGENTS scales it.
// The controller runs as the image runs it: bin/peripety with
// PERIPETY_ENTRY=dist (dist/ rebuilt first by hack/build-dist.mjs) and the
// environment the chart gives its container (NODE_OPTIONS, MALLOC_ARENA_MAX,
// read from charts/peripety/templates/controller-deployment.yaml).
// BENCH_CONTROLLER_ENTRY=src runs the TypeScript sources instead, any other
// value that file as the entry point;
// BENCH_CONTROLLER_NODE_OPTIONS replaces the chart's NODE_OPTIONS (V8 flags);
// BENCH_CONTROLLER_HEAPSNAPSHOT=DIR writes the controller's heap at the end
// into DIR (Node's --heapsnapshot-signal) for a look at what it holds.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { startEnvtest } from '../test/helpers/envtest.ts';
import { FakeAgent } from '../test/helpers/fake-agent.ts';
import { rbacYaml } from '../test/helpers/manifests.ts';
import { createNode } from '../test/helpers/operator.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const TARGET_MS = 5000;
const TARGET_RSS_MIB = 100;
const repoRoot = path.resolve(import.meta.dirname, '..');
const SBE = '/apis/peripety.io/v1alpha1/storagebackends';

/** the kernel's view of a process's memory, in MiB (VmRSS: resident now; VmHWM: the peak) */
function procMemory(pid: number): { rss: number; hwm: number; anon: number; file: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) / 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return null;
  }
}

/** CPU time (user + system) the process used so far, in ms (/proc/<pid>/stat, clock ticks of 10 ms) */
function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * The literal `value`s the chart's controller container sets for NODE_OPTIONS
 * and MALLOC_ARENA_MAX, so that the bench measures the controller as deployed;
 * a chart that no longer sets one of them leaves it unset here (and printed so).
 */
function chartControllerEnv(): { NODE_OPTIONS?: string; MALLOC_ARENA_MAX?: string } {
  const yaml = readFileSync(path.join(repoRoot, 'charts/peripety/templates/controller-deployment.yaml'), 'utf8');
  const out: { NODE_OPTIONS?: string; MALLOC_ARENA_MAX?: string } = {};
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'] as const) {
    const m = new RegExp(`- name: ${name}\\n\\s+value: "?([^"\\n]*)"?`).exec(yaml);
    if (m) out[name] = m[1];
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const a = s.address();
    s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
  });
});
const storageHas = (a: FakeAgent, name: string, filter: string): boolean => {
  const p = a.pushes[a.pushes.length - 1];
  const plugins = (p?.storage as { root?: { elos?: { EventLogging?: { Plugins?: Record<string, { Filter?: string[] }> } } } } | undefined)?.root?.elos?.EventLogging?.Plugins;
  return plugins?.[name]?.Filter?.includes(filter) === true;
};

async function inBatches<T>(items: T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(f));
}

const env = await startEnvtest({ log: () => undefined });
const child = { proc: null as ReturnType<typeof spawn> | null };
const agents: FakeAgent[] = [];
try {
  await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller') });
  const names = Array.from({ length: AGENTS }, (_, i) => `bench-node-${String(i).padStart(3, '0')}`);
  await inBatches(names, 20, async (n) => {
    // the fake agents listen on 127.0.0.1: the Node's address (the controller pushes only to a node's own address)
    await createNode(env, n, { bench: 'yes' });
    // accepts what that node's real agent would: the controller's token for peripety-agent:<node> (TokenReview)
    const a = new FakeAgent(env, n);
    await a.start();
    agents.push(a);
  });

  const metricsPort = await freePort();
  const entryEnv = process.env.BENCH_CONTROLLER_ENTRY;
  const chart = chartControllerEnv();
  if (!entryEnv) execFileSync(process.execPath, [path.join(repoRoot, 'hack/build-dist.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const entry = !entryEnv ? path.join(repoRoot, 'bin/peripety') : entryEnv === 'src' ? path.join(repoRoot, 'src/cli/peripety.ts') : path.resolve(entryEnv);
  const nodeOptions = process.env.BENCH_CONTROLLER_NODE_OPTIONS ?? chart.NODE_OPTIONS ?? '';
  console.log(`controller: ${entryEnv ? entry : 'bin/peripety on dist/ (the compiled JavaScript the image runs)'}, NODE_OPTIONS="${nodeOptions}", MALLOC_ARENA_MAX=${chart.MALLOC_ARENA_MAX ?? '(unset)'} (the chart's container environment)`);
  child.proc = spawn(process.execPath, [entry, 'controller',
    `--kubeconfig=${env.kubeconfigController}`, `--metrics-listen=127.0.0.1:${metricsPort}`,
    '--identity=bench-controller', '--log-level=warn'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...chart, PERIPETY_ENTRY: entryEnv ? '' : 'dist', NODE_OPTIONS: [nodeOptions,
      ...(process.env.BENCH_CONTROLLER_HEAPSNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${path.resolve(process.env.BENCH_CONTROLLER_HEAPSNAPSHOT)}`] : [])].join(' ').trim() },
  });
  const pid = child.proc.pid!;
  const startedAt = Date.now();
  let t0 = Date.now();
  await Promise.all(agents.map((a) => a.waitFor((x) => x.pushes.length > 0, 60_000, 'the initial push')));
  await Promise.all(agents.map((a) => a.leaseWritten()));
  console.log(`controller start -> ${AGENTS} agents configured: ${Date.now() - t0} ms (includes process start, cache sync, leader election)`);
  // let the API server's watch cache for the fresh CRDs settle (a first write right after CRD install is seen ~2 s late)
  await sleep(3000);

  const measure = async (what: string, write: () => Promise<void>, filter: string): Promise<number> => {
    const start = Date.now();
    await write();
    await Promise.all(agents.map((a) => a.waitFor((x) => storageHas(x, 'bench', filter), 60_000, what)));
    await Promise.all(agents.map((a) => a.leaseWritten()));
    const applied = Date.now() - start;
    for (;;) {
      const r = await env.request<{ metadata?: { generation?: number }; status?: { ready?: string; observedGeneration?: number } }>('GET', `${SBE}/bench`);
      if (r.body.status?.ready === `${AGENTS}/${AGENTS}` && r.body.status.observedGeneration === r.body.metadata?.generation) break;
      if (Date.now() - start > 60_000) throw new Error(`status after 60 s: ${JSON.stringify(r.body.status)}`);
      await sleep(25);
    }
    const ready = Date.now() - start;
    console.log(`${what}: all ${AGENTS} agents applied in ${applied} ms (target < ${TARGET_MS} ms: ${applied < TARGET_MS ? 'OK' : 'MISSED'}); status Ready ${AGENTS}/${AGENTS} in ${ready} ms`);
    return applied;
  };
  t0 = Date.now();
  await measure('StorageBackend created', async () => {
    const r = await env.request('POST', SBE, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'bench' },
      spec: { backend: 'memory', filters: ['.event.severity 3 LE'], nodeSelector: { matchLabels: { bench: 'yes' } } },
    });
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
  }, '.event.severity 3 LE');
  await measure('StorageBackend changed', async () => {
    const r = await env.request('PATCH', `${SBE}/bench`, { spec: { filters: ['.event.severity 4 LE'] } }, { contentType: 'application/merge-patch+json' });
    if (r.status !== 200) throw new Error(`patch: ${r.status} ${r.text}`);
  }, '.event.severity 4 LE');

  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const metric = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const m = procMemory(pid);
  if (!m) throw new Error(`cannot read /proc/${pid}/status`);
  const f = (x: number) => `${x.toFixed(1)} MiB`;
  console.log(`controller memory after ${((Date.now() - startedAt) / 1000).toFixed(0)} s with ${AGENTS} agents: VmRSS ${f(m.rss)} (anon ${f(m.anon)}, file ${f(m.file)}), peak VmHWM ${f(m.hwm)} (target <= ${TARGET_RSS_MIB} MiB: ${m.rss <= TARGET_RSS_MIB && m.hwm <= TARGET_RSS_MIB ? 'OK' : 'MISSED'}), heap used ${mb(metric('nodejs_heap_size_used_bytes'))}, heap total ${mb(metric('nodejs_heap_size_total_bytes'))}, CPU ${procCpuMs(pid)} ms`);
  const snapDir = process.env.BENCH_CONTROLLER_HEAPSNAPSHOT;
  if (snapDir) {
    child.proc.kill('SIGUSR2');
    // the snapshot is written synchronously by the controller; wait for the file to stop growing
    let last = -1;
    for (;;) {
      await sleep(1000);
      const files = readdirSync(snapDir).filter((f) => f.endsWith('.heapsnapshot'));
      const size = files.reduce((n, f) => n + statSync(path.join(snapDir, f)).size, 0);
      if (size > 0 && size === last) break;
      last = size;
    }
    console.log(`controller heap snapshot in ${snapDir}`);
  }
  console.log(`controller counters: pushes ${metric('peripety_controller_pushes_total')}, push failures ${metric('peripety_controller_push_failures_total')}, status writes ${metric('peripety_controller_status_writes_total')}, agents configured ${metric('peripety_controller_agents_configured')}`);
} finally {
  if (child.proc && child.proc.exitCode === null) {
    child.proc.kill('SIGTERM');
    await new Promise((r) => child.proc!.once('exit', r));
  }
  // (a timer keeps the loop alive while envtest waits for its servers to exit)
  const keep = setInterval(() => undefined, 1000);
  for (const a of agents) await a.stop().catch(() => undefined);
  await env.stop();
  clearInterval(keep);
}
