// The pieces of an operator test against the real API server
// (test/helpers/envtest.ts): the RBAC and Nodes, real agents in Kubernetes
// mode with distinct --node-name and state directories, the controller as a
// child process (`bin/peripety controller`, so a test can SIGKILL it), and
// polling with a deadline.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentProcess, ROOT, startAgent, testConfig, withoutPodEnv } from './agent.ts';
import { AGENT_AUDIENCE, ENVTEST_NAMESPACE, type Envtest } from './envtest.ts';
import { admissionYaml, rbacYaml } from './manifests.ts';

export const SBE_PATH = '/apis/peripety.io/v1alpha1/storagebackends';
export const SEP_PATH = '/apis/peripety.io/v1alpha1/storageeventplugins';

/** GET /v1/status of an agent (docs/agent-api.md), the parts tests look at. */
export interface AgentStatus {
  generation: number;
  hash: string | null;
  plugins: { name: string; type?: string; plugin?: string; enabled: boolean }[];
  storage: { backends: { name: string; started: boolean; lastError?: string | null }[] } | null;
}

/**
 * Poll `f` every `intervalMs` until it returns something truthy (resolved
 * with it); after `timeoutMs` throw, with `detail()` appended (e.g. log tails).
 */
export async function until<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, opts: { timeoutMs?: number; intervalMs?: number; detail?: () => string } = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${opts.detail ? `\n${opts.detail()}` : ''}`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/** An API request that must succeed (2xx). */
export async function mustRequest(env: Envtest, method: string, p: string, body?: unknown, contentType?: string): Promise<void> {
  const r = await env.request(method, p, body, contentType ? { contentType } : {});
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${p}: ${r.status} ${r.text.slice(0, 500)}`);
}

/** The address every test Node reports (status.addresses): the agents and fake agents listen on loopback. */
export const NODE_ADDRESSES = [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'InternalIP', address: '::1' }, { type: 'Hostname', address: 'localhost' }];

/** A Node as a kubelet would register it: labels, and its addresses in status (the controller pushes only to those). */
export async function createNode(env: Envtest, name: string, labels: Record<string, string> = {}, addresses = NODE_ADDRESSES): Promise<string> {
  const r = await env.request<{ metadata: { uid: string } }>('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, status: { addresses } });
  if (r.status !== 201) throw new Error(`POST node ${name}: ${r.status} ${r.text.slice(0, 500)}`);
  return r.body.metadata.uid;
}

const agentKubeconfigs = new WeakMap<Envtest, Map<string, Promise<string>>>();

/**
 * The agent's identity on `node` as a cluster gives it: a Pod of the agent's
 * ServiceAccount bound to the node (no kubelet runs it) and a token bound to
 * that Pod, so the API server adds authentication.kubernetes.io/node-name to
 * its requests (the chart's admission policies key on it). The Node must
 * exist. One per node and API server.
 */
export function agentKubeconfig(env: Envtest, node: string): Promise<string> {
  let m = agentKubeconfigs.get(env);
  if (!m) agentKubeconfigs.set(env, (m = new Map()));
  let p = m.get(node);
  if (!p) {
    p = (async () => {
      const pod = `peripety-agent-${node}`.slice(0, 63).replace(/[^a-z0-9-]/g, '-').replace(/-+$/, '');
      const r = await env.request<{ metadata: { name: string; uid: string } }>('POST', `/api/v1/namespaces/${ENVTEST_NAMESPACE}/pods`, {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace: ENVTEST_NAMESPACE },
        spec: { nodeName: node, serviceAccountName: 'peripety-agent', containers: [{ name: 'agent', image: 'peripety:test' }] },
      });
      if (r.status !== 201) throw new Error(`POST pod ${pod}: ${r.status} ${r.text.slice(0, 500)}`);
      return env.kubeconfigFor({ serviceAccount: 'peripety-agent', boundPod: { name: r.body.metadata.name, uid: r.body.metadata.uid } });
    })();
    m.set(node, p);
  }
  return p;
}

/**
 * The agent's admission policies from manifests/ (ValidatingAdmissionPolicy +
 * Binding), waited for until the API server enforces them: the policy is
 * compiled asynchronously after it is created, so a write right after the
 * apply could still pass. The probe is a Lease write by the agent's unbound
 * identity (env.kubeconfigAgent), which the policy refuses; needs the
 * agent's RBAC applied. Resolves with the number of policies (0: manifests/
 * has none, nothing to wait for).
 */
export async function applyAgentAdmission(env: Envtest): Promise<number> {
  const yaml = admissionYaml('agent');
  if (yaml === '') return 0;
  await env.kubectl(['apply', '-f', '-'], { input: yaml });
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases`;
  const events = '/apis/events.k8s.io/v1/namespaces/default/events';
  const probe = 'peripety-agent-admission-probe';
  // the API server starts enforcing each policy on its own: wait for both (Leases and Events)
  await until('the agent admission policies to be enforced', async () => {
    const l = await env.request('POST', leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: probe }, spec: { holderIdentity: 'admission-probe' } }, { kubeconfig: env.kubeconfigAgent });
    if (l.status === 201) await env.request('DELETE', `${leases}/${probe}`);
    const e = await env.request('POST', events, {
      apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: probe, namespace: 'default' },
      eventTime: new Date().toISOString().replace(/Z$/, '000Z'), reportingController: 'peripety.io/agent', reportingInstance: probe,
      action: 'Observed', reason: 'Probe', note: 'admission probe', type: 'Normal', regarding: { apiVersion: 'v1', kind: 'Node', name: probe },
    }, { kubeconfig: env.kubeconfigAgent });
    if (e.status === 201) await env.request('DELETE', `${events}/${probe}`);
    return l.status === 403 && /not bound to a node/.test(l.text) && e.status === 403 && /not bound to a node/.test(e.text);
  }, { timeoutMs: 30_000, intervalMs: 200 });
  return (yaml.match(/^kind: ValidatingAdmissionPolicy$/gm) ?? []).length;
}

export interface OperatorCluster {
  /**
   * A token of the controller's ServiceAccount for `node`'s agent (audience
   * peripety-agent:<node>, what that agent alone accepts), as the controller
   * requests it; one per node, cached.
   */
  tokenFor(node: string): Promise<string>;
}

/** The controller ServiceAccount's token for `node`'s agent (audience peripety-agent:<node>). */
export function controllerTokenFor(env: Envtest, node: string): Promise<string> {
  return env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [`${AGENT_AUDIENCE}:${node}`] });
}

/**
 * The controller's and the agents' ServiceAccounts, RBAC and admission
 * policies as manifests/ (the Helm chart) installs them, one Node per entry
 * of `nodes` (name → labels; addresses NODE_ADDRESSES), and the controller's
 * per-node tokens for the tests' own calls to the agents (the controller
 * requests its own). Agents then need their node's identity
 * (agentKubeconfig, startNodeAgent's default).
 */
export async function setupOperatorCluster(env: Envtest, nodes: Record<string, Record<string, string>>): Promise<OperatorCluster> {
  await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller', 'agent') });
  await applyAgentAdmission(env);
  for (const [name, labels] of Object.entries(nodes)) await createNode(env, name, labels);
  const tokens = new Map<string, Promise<string>>();
  return {
    tokenFor: (node) => {
      let t = tokens.get(node);
      if (!t) tokens.set(node, (t = controllerTokenFor(env, node)));
      return t;
    },
  };
}

export interface NodeAgentOptions {
  /** the agent's TOML (default testConfig({start: 'end'})) */
  config?: string;
  /** default: a new, empty directory */
  stateDir?: string;
  /** more agent flags (e.g. --advertise URL) */
  args?: string[];
  /** the agent's identity (default agentKubeconfig(env, node): a token bound to a Pod on the node, which must exist) */
  kubeconfig?: string;
  /** added to the agent's environment (e.g. POD_NAME, POD_UID as the chart sets them) */
  env?: Record<string, string>;
}

/**
 * A real agent (`bin/peripety agent`) in Kubernetes mode for `node`. A
 * misleading $NODE_NAME is set while it is spawned: --node-name must win
 * (the Events, the Lease and the events' hostname all name this node).
 */
export async function startNodeAgent(env: Envtest, node: string, opts: NodeAgentOptions = {}): Promise<AgentProcess> {
  const stateDir = opts.stateDir ?? path.join(mkdtempSync(path.join(os.tmpdir(), `prpt-${node}-`)), 'state');
  const kubeconfig = opts.kubeconfig ?? await agentKubeconfig(env, node);
  // startAgent spawns synchronously, before its first await.
  const saved = process.env.NODE_NAME;
  process.env.NODE_NAME = 'not-this-node';
  let p: Promise<AgentProcess>;
  try {
    p = startAgent({
      config: opts.config ?? testConfig({ start: 'end' }),
      stateDir,
      args: ['--kubeconfig', kubeconfig, '--node-name', node, '--namespace', ENVTEST_NAMESPACE, ...(opts.args ?? [])],
      env: opts.env,
    });
  } finally {
    if (saved === undefined) delete process.env.NODE_NAME;
    else process.env.NODE_NAME = saved;
  }
  return p;
}

/** GET /v1/status with the controller's token; throws unless 200. */
export async function agentStatus(agent: AgentProcess, token: string): Promise<AgentStatus> {
  const r = await fetch(`${agent.apiUrl()}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET /v1/status: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as AgentStatus;
}

export interface ControllerProcess {
  proc: ChildProcess;
  identity: string;
  stderr(): string;
  /** resolves when the log (stderr, JSON lines) matches `re` */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** send `signal` (default SIGTERM) and wait for the exit */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `peripety controller` as a child process with the controller
 * ServiceAccount's kubeconfig; resolves once it logged "controller started"
 * (caches filled, leader election running — not necessarily leading).
 */
export async function startControllerProcess(env: Envtest, opts: { identity: string; logLevel?: string; kubeconfig?: string; /** added to its environment (POD_NAME, POD_UID) */ env?: Record<string, string> }): Promise<ControllerProcess> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/peripety'), 'controller',
    '--kubeconfig', opts.kubeconfig ?? env.kubeconfigController, '--namespace', ENVTEST_NAMESPACE, '--identity', opts.identity,
    '--metrics-listen', '127.0.0.1:0', '--log-level', opts.logLevel ?? 'debug'], { stdio: ['ignore', 'ignore', 'pipe'], env: withoutPodEnv(opts.env) });
  let stderr = '';
  let waiters: (() => void)[] = [];
  const notify = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    notify();
  });
  let dead = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      dead = true;
      notify();
      resolve({ code, signal });
    });
  });
  const waitForLog = (re: RegExp, timeoutMs = 60_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`controller ${opts.identity}: timed out after ${timeoutMs} ms waiting for a log line matching ${re}; stderr:\n${stderr.slice(-3000)}`)), timeoutMs);
      const check = (): void => {
        if (re.test(stderr)) {
          clearTimeout(t);
          resolve();
        } else if (dead) {
          clearTimeout(t);
          reject(new Error(`controller ${opts.identity} exited while waiting for ${re}; stderr:\n${stderr.slice(-3000)}`));
        } else waiters.push(check);
      };
      check();
    });
  const c: ControllerProcess = {
    proc,
    identity: opts.identity,
    stderr: () => stderr,
    waitForLog,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!dead) proc.kill(signal);
      return exited;
    },
  };
  try {
    await waitForLog(/"msg":"controller started"/);
  } catch (err) {
    await c.stop('SIGKILL');
    throw err;
  }
  return c;
}
