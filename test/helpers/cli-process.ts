// Run the real CLIs (bin/peripety, bin/prpt) as child processes with a
// deadline, and watch their memory (the hostile tests of bounded reads, devices, /proc).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const PERIPETY = path.join(ROOT, 'bin/peripety');
export const PRPT = path.join(ROOT, 'bin/prpt');

export interface Outcome {
  /** null: still running at the deadline (then killed) */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** peak resident memory in KiB (VmHWM), last seen */
  peakKiB: number;
  /** ms from spawn to exit (or to the deadline) */
  ms: number;
}

/** VmHWM of a live process in KiB, or 0. */
export function peakRssKiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface Running {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  peakKiB: () => number;
  /** resolves when stderr/stdout matches, or false at the deadline / exit */
  waitFor(re: RegExp, ms: number, stream?: 'stdout' | 'stderr'): Promise<boolean>;
  /** waits for exit up to `ms`, then SIGKILL */
  finish(ms: number): Promise<Outcome>;
}

/** `maxKiB`: killed (SIGKILL) as soon as its peak resident memory passes this, so a runaway cannot take the machine's memory */
export function spawnCli(bin: string, args: string[], opts: { stdin?: 'ignore' | 'pipe'; env?: NodeJS.ProcessEnv; maxKiB?: number } = {}): Running {
  const started = Date.now();
  const proc = spawn(process.execPath, [bin, ...args], { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let out = '';
  let err = '';
  let peak = 0;
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    if (out.length < 4 << 20) out += c;
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
    if (err.length < 4 << 20) err += c;
  });
  const sample = setInterval(() => {
    if (proc.pid !== undefined) peak = Math.max(peak, peakRssKiB(proc.pid));
    if (opts.maxKiB !== undefined && peak > opts.maxKiB) proc.kill('SIGKILL');
  }, 50);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      clearInterval(sample);
      resolve({ code, signal });
    });
  });
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    peakKiB: () => peak,
    async waitFor(re, ms, stream = 'stderr') {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (re.test(stream === 'stderr' ? err : out)) return true;
        if (!alive()) return re.test(stream === 'stderr' ? err : out);
        await sleep(20);
      }
      return false;
    },
    async finish(ms) {
      const deadline = Date.now() + ms;
      while (alive() && Date.now() < deadline) await sleep(20);
      const stillRunning = alive();
      if (stillRunning) {
        if (proc.pid !== undefined) peak = Math.max(peak, peakRssKiB(proc.pid));
        proc.kill('SIGKILL');
      }
      const r = await exited;
      return { code: stillRunning ? null : r.code, signal: stillRunning ? null : r.signal, stdout: out, stderr: err, peakKiB: peak, ms: Date.now() - started };
    },
  };
}

/** A small agent configuration: kmsg from the end (no parsers: these tests are about files), the API on port 0. */
export function quietConfig(extraMain = ''): string {
  return `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
${extraMain}
[kmsg]
type = "collector"
start = "end"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`;
}

/** A long-running child (a daemon a test starts): its output so far, how it ended, and a stop. */
export interface Watched {
  /** stdout and stderr together, as they came */
  output(): string;
  /** null while it runs; else "exit status N", the signal, or why it could not start */
  exited(): string | null;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it is gone */
  stop(): Promise<void>;
}

export function watchChild(child: ChildProcess): Watched {
  let output = '';
  let exited: string | null = null;
  child.stdout?.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { output += c.toString(); });
  child.on('exit', (code, signal) => { exited = signal ?? `exit status ${code}`; });
  child.on('error', (err) => { exited = `could not start: ${err.message}`; });
  return {
    output: () => output,
    exited: () => exited,
    async stop() {
      if (exited !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      if (exited === null) {
        child.kill('SIGKILL');
        await gone;
      }
    },
  };
}
