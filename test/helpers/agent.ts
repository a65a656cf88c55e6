// Runs the real agent (`bin/peripety agent`) as a child process with a
// configuration written for the test, and collects the JSON events it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StorageEvent } from '../../src/events/schema.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface AgentProcess {
  proc: ChildProcess;
  stateDir: string;
  events: StorageEvent[];
  stderr: () => string;
  /** resolves with the first event (already seen or future) matching `pred` */
  waitFor(pred: (ev: StorageEvent) => boolean, timeoutMs?: number, what?: string): Promise<StorageEvent>;
  /** the base URL of the agent's HTTP API (from its "API listening" log line) */
  apiUrl(): string;
  /** the bearer token for /v1/* (the token file in the state directory) */
  apiToken(): string;
  /** resolves when the agent's log (stderr) matches `re` */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  /** resolves when `count` events match */
  waitForCount(pred: (ev: StorageEvent) => boolean, count: number, timeoutMs?: number): Promise<StorageEvent[]>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A TOML configuration for tests: kmsg (user lines accepted) → every parser → JSON on stdout. */
export function testConfig(opts: { start?: 'resume' | 'end' | 'beginning'; extraMain?: string } = {}): string {
  return `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
${opts.extraMain ?? ''}
[kmsg]
type = "collector"
start = "${opts.start ?? 'end'}"
accept_user_facility = true

[scsi]
type = "parser"
[nvme]
type = "parser"
[block]
type = "parser"
[multipath]
type = "parser"
[dm]
type = "parser"
[lvm]
type = "parser"
[mdraid]
type = "parser"
[fs]
type = "parser"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`;
}

/**
 * This process's environment without $POD_NAME/$POD_UID (a test runner in a
 * Pod must not make its own Pod the owner of the agents' Leases), plus `add`.
 */
export function withoutPodEnv(add: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { POD_NAME: _n, POD_UID: _u, ...rest } = process.env;
  return { ...rest, ...add };
}

export async function startAgent(opts: { config: string; stateDir?: string; args?: string[]; /** added to this process's environment */ env?: Record<string, string> }): Promise<AgentProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-agent-'));
  const stateDir = opts.stateDir ?? path.join(dir, 'state');
  const configFile = path.join(dir, 'agent.toml');
  writeFileSync(configFile, opts.config);
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/peripety'), 'agent', '--config', configFile, '--state-dir', stateDir, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: withoutPodEnv(opts.env),
  });
  const events: StorageEvent[] = [];
  let stderr = '';
  let pending = '';
  let waiters: (() => void)[] = [];
  const notify = () => {
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line) as StorageEvent);
    }
    notify();
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    notify();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      notify();
      resolve({ code, signal });
    });
  });
  let dead = false;
  void exited.then(() => (dead = true));

  const until = (check: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; agent stderr:\n${stderr.slice(-3000)}`)), timeoutMs);
      const poll = () => {
        if (check()) {
          clearTimeout(t);
          resolve();
        } else if (dead) {
          clearTimeout(t);
          reject(new Error(`agent exited while waiting for ${what}; stderr:\n${stderr.slice(-3000)}`));
        } else waiters.push(poll);
      };
      poll();
    });

  await until(() => stderr.includes('"agent started"'), 20_000, 'the agent to start');
  return {
    proc,
    stateDir,
    events,
    stderr: () => stderr,
    async waitFor(pred, timeoutMs = 10_000, what = 'an event') {
      let found: StorageEvent | undefined;
      await until(() => (found = events.find(pred)) !== undefined, timeoutMs, what);
      return found!;
    },
    apiUrl() {
      const m = /"listen":"([^"]+)","msg":"API listening"/.exec(stderr);
      if (!m) throw new Error(`the agent logged no "API listening" line; stderr:\n${stderr.slice(-2000)}`);
      // the log says host:port; an IPv6 host needs brackets in a URL
      const listen = m[1]!.startsWith('[') || m[1]!.indexOf(':') === m[1]!.lastIndexOf(':') ? m[1]! : m[1]!.replace(/^(.*):(\d+)$/, '[$1]:$2');
      return `http://${listen}`;
    },
    apiToken() {
      return readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim();
    },
    async waitForLog(re, timeoutMs = 10_000) {
      await until(() => re.test(stderr), timeoutMs, `a log line matching ${re}`);
    },
    async waitForCount(pred, count, timeoutMs = 10_000) {
      await until(() => events.filter(pred).length >= count, timeoutMs, `${count} events`);
      return events.filter(pred);
    },
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!dead) proc.kill(signal);
      return exited;
    },
  };
}
