// The real node of hack/node.sh, seen from a test: start and stop it, run
// kubectl and helm inside its network namespace, and the host state that must
// be the same after `down` as before `up`.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
const NODE_SH = path.join(repoRoot, 'hack/node.sh');

/** Run a command; throw with its stderr when it fails. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${(r.stderr || r.stdout).trim().split('\n').slice(-30).join('\n')}`);
  }
  return r.stdout;
}

/** The running node, as `hack/node.sh env` describes it. */
export interface Node {
  pid: string;
  name: string;
  ip: string;
  kubeconfig: string;
  bin: string;
}

export function nodeUp(): Node {
  // progress (and the cold build's) goes straight to the test's stderr
  execFileSync('bash', [NODE_SH, 'up'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_800_000 });
  return nodeEnv();
}

export function nodeEnv(): Node {
  const vars = new Map<string, string>();
  for (const m of run('bash', [NODE_SH, 'env']).matchAll(/^export (\w+)=(.*)$/gm)) vars.set(m[1]!, m[2]!);
  const need = (k: string) => {
    const v = vars.get(k);
    if (!v) throw new Error(`hack/node.sh env printed no ${k}`);
    return v;
  };
  return { pid: need('PERIPETY_NODE_PID'), name: need('PERIPETY_NODE_NAME'), ip: need('PERIPETY_NODE_IP'), kubeconfig: need('KUBECONFIG'), bin: need('PERIPETY_NODE_BIN') };
}

export function nodeRunning(): boolean {
  return spawnSync('bash', [NODE_SH, 'env'], { cwd: repoRoot, stdio: 'ignore' }).status === 0;
}

/** `hack/node.sh down`: its exit status says whether anything was left behind. */
export function nodeDown(): { ok: boolean; output: string } {
  const r = spawnSync('bash', [NODE_SH, 'down'], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** argv that runs `cmd args` in the node's network namespace with its kubeconfig. */
function inNode(node: Node, cmd: string, args: readonly string[]): string[] {
  return ['--target', node.pid, '--net', '--', 'env', `KUBECONFIG=${node.kubeconfig}`, cmd, ...args];
}

export function kubectl(node: Node, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return run('nsenter', inNode(node, path.join(node.bin, 'kubectl'), args), opts);
}

export function kubectlJson<T>(node: Node, args: readonly string[]): T {
  return JSON.parse(kubectl(node, [...args, '-o', 'json'])) as T;
}

export function helm(node: Node, helmBin: string, args: readonly string[]): string {
  return run('nsenter', inNode(node, helmBin, args), { timeoutMs: 900_000 });
}

/** A long-running kubectl (a watch) in the node's network namespace. */
export function kubectlSpawn(node: Node, args: readonly string[]): ChildProcess {
  return spawn('nsenter', inNode(node, path.join(node.bin, 'kubectl'), args), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Retry `fn` until it returns a value other than undefined/false; throw with the last error after `ms`. */
export async function until<T>(what: string, ms: number, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms / 1000}s waiting for ${what}${last ? `; last error: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

// ---------------------------------------------------------------------------
// the host state `down` must leave as it found it

/** Global sysctls a kubelet, kube-proxy or CNI plugin is known to write (host values must survive). */
const SYSCTLS = [
  'vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes', 'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established', 'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
  'net/ipv4/ip_forward', 'net/ipv4/conf/all/route_localnet', 'net/bridge/bridge-nf-call-iptables',
  'fs/inotify/max_user_instances', 'fs/inotify/max_user_watches',
];

export interface HostState {
  iptables: string;
  ip6tables: string;
  routes: string;
  links: string;
  sysctls: Record<string, string>;
  cgroups: string[];
  mounts: string[];
}

function tables(cmd: string): string {
  const r = spawnSync(cmd, [], { encoding: 'utf8' });
  // comment lines carry the date of the dump
  return (r.stdout ?? '').split('\n').filter((l) => !l.startsWith('#')).join('\n');
}

function readOr(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '(absent)';
  }
}

export function hostState(): HostState {
  const cgroups: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const d of readdirSync(path.join('/sys/fs/cgroup', h), { withFileTypes: true })) if (d.isDirectory()) cgroups.push(`${h}/${d.name}`);
    } catch { /* not a hierarchy */ }
  }
  return {
    iptables: tables('iptables-save'),
    ip6tables: tables('ip6tables-save'),
    routes: run('ip', ['route', 'show', 'table', 'all']),
    links: run('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').sort().join(' '),
    sysctls: Object.fromEntries(SYSCTLS.map((s) => [s, readOr(`/proc/sys/${s}`)])),
    cgroups: cgroups.sort(),
    // mount points only: the options of /proc's own mounts change with time
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter(Boolean).sort(),
  };
}
