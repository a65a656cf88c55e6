// A small LAN of network namespaces for root tests: N namespaces, each with
// a veth pair whose host end is a port of one bridge in the root namespace,
// addresses on one private /24, multicast routed out of the veth. Names are
// unique per run (a leftover from a crashed run never collides), and
// cleanup() is idempotent and also runs at process exit.
// Packages: iproute2 (ip), iptables (hack/ci-deps.sh).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { run } from './faults.ts';

export interface Host {
  ns: string;
  ip: string;
  /** the veth end in the root namespace */
  hostIf: string;
}

export interface Lan {
  bridge: string;
  hosts: Host[];
  cleanup(): Promise<void>;
}

const live = new Set<() => void>();
process.on('exit', () => {
  for (const f of live) f();
});

function cleanupSync(bridge: string, hosts: Host[]): void {
  const quiet = (args: string[]) => {
    try {
      execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone
    }
  };
  // deleting a namespace deletes the veth end in it, and with it the pair
  for (const h of hosts) quiet(['netns', 'del', h.ns]);
  for (const h of hosts) quiet(['link', 'del', h.hostIf]);
  quiet(['link', 'del', bridge]);
}

export async function makeLan(n: number): Promise<Lan> {
  const id = randomBytes(3).toString('hex');
  const b = randomBytes(2);
  const subnet = `10.${200 + (b[0]! % 50)}.${b[1]}`;
  const bridge = `prb${id}`;
  const hosts: Host[] = Array.from({ length: n }, (_, i) => ({ ns: `prpt-${id}-${i}`, ip: `${subnet}.${i + 1}`, hostIf: `prv${id}${i}` }));
  const undo = () => cleanupSync(bridge, hosts);
  live.add(undo);
  const lan: Lan = {
    bridge,
    hosts,
    async cleanup() {
      live.delete(undo);
      undo();
    },
  };
  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    // No IGMP snooping: without a querier on this LAN it would decide who gets the group.
    await run('ip', ['link', 'set', bridge, 'type', 'bridge', 'mcast_snooping', '0']);
    await run('ip', ['link', 'set', bridge, 'up']);
    for (const h of hosts) {
      await run('ip', ['netns', 'add', h.ns]);
      await run('ip', ['link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      await run('ip', ['link', 'set', h.hostIf, 'master', bridge]);
      await run('ip', ['link', 'set', h.hostIf, 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'multicast', 'on', 'up']);
      await run('ip', ['-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    }
  } catch (err) {
    await lan.cleanup();
    throw err;
  }
  return lan;
}

/** A process in a namespace whose stdout lines and stderr are collected. */
export interface NsProcess {
  proc: ChildProcess;
  lines: string[];
  stderr(): string;
  waitLines(pred: (lines: string[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  waitErr(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const procs = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of procs) p.kill('SIGKILL');
});

export function spawnIn(ns: string, label: string, cmd: string, args: string[]): NsProcess {
  // `ip netns exec` execs the command itself: the pid is the command's
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  const lines: string[] = [];
  let err = '';
  let pending = '';
  let dead = false;
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim()) lines.push(line);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      dead = true;
      procs.delete(proc);
      resolve({ code, signal });
    });
  });
  const until = async (check: () => boolean, what: string, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (dead && !check()) throw new Error(`${label} exited while waiting for ${what}; stderr:\n${err.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}: ${what}; stderr:\n${err.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    proc,
    lines,
    stderr: () => err,
    waitLines: (pred, what, timeoutMs = 15_000) => until(() => pred(lines), what, timeoutMs),
    waitErr: (re, timeoutMs = 15_000) => until(() => re.test(err), String(re), timeoutMs),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!dead) proc.kill(signal);
      return exited;
    },
  };
}
