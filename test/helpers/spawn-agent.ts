// Runs `bin/peripety <args>` as a child process without waiting for it to
// start: for tests of processes that must NOT start (fatal configuration,
// unreachable cluster). Collects stdout/stderr and the exit.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './agent.ts';

export interface Spawned {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** the exit, or null when it did not come within `ms` */
  exitWithin(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null>;
  kill(): Promise<void>;
}

export function spawnPeripety(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Spawned {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/peripety'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let dead = false;
  void exited.then(() => (dead = true));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async exitWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
      clearTimeout(timer);
      return r;
    },
    async kill() {
      if (!dead) proc.kill('SIGKILL');
      await exited;
    },
  };
}
