// Benchmark of the whole agent under a kernel log storm (issue 14): the real
// agent process (`bin/peripety agent`) with its embedded default
// configuration (kmsg + udev + every parser + sqlite storage + multicast +
// stdout) on the real /dev/kmsg, as root.
//  1. idle: VmRSS 30 s after the start (fresh --state-dir);
//  2. storm: STORM_LINES (200,000) SCSI medium error lines at STORM_RATE
//     (10,000) lines/s written to /dev/kmsg by a paced writer (a child
//     process: one record per write(), batches per 1 ms tick), rotating over
//     8 device names no machine has; every line is an event. Measured: VmRSS
//     every 500 ms during the storm and for 30 s after it (peak, and the value
//     30 s after), the agent's CPU time (utime+stime of /proc/<pid>/stat, every
//     thread) from the first line until the last event came out, per line
//     written; the events the agent printed on stdout vs the lines written;
//     records lost to ring overrun (peripety_kmsg_lost_records_total, and the
//     KMSG_OVERRUN events); the writer's achieved rate.
// Prints a table (figure | value | goal of issue 14) and the same as one JSON
// line. Needs root; skips loudly otherwise.
//
// Configuration overrides on top of `peripety print-default-config`, and only
// these: [kmsg] accept_user_facility = true (lines written by user space have
// the user facility, which the default ignores) and [main] api_listen =
// "127.0.0.1:0" (the metrics endpoint on a free port: 9477 may be taken by
// another agent on the host). Both are printed with the results.
//
// The ring holds ~128 KiB: a storm overwrites every record another reader of
// /dev/kmsg is waiting for. Before the storm the bench waits (up to
// STORM_WAIT_S, default 1800 s) while a test run (hack/test.mjs, hack/e2e.mjs,
// .ci/run) is going on this machine, and skips the storm after that.
//
//   node bench/agent-storm.bench.ts      STORM_LINES, STORM_RATE, STORM_LEVEL (kernel level, default 4),
//                                        STORM_IDLE_S (30), STORM_AFTER_S (30); STORM_LINES=0: idle only;
//                                        STORM_ENTRY (dist: the compiled JavaScript; src: the .ts sources)
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { unlimitDevkmsg } from '../test/helpers/kmsg-flood.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const LINES = Number(process.env.STORM_LINES ?? 200_000);
const RATE = Number(process.env.STORM_RATE ?? 10_000);
/** kernel level 4: levels 0-3 go to the console synchronously, a cost of the machine (see latency.bench.ts) */
const LEVEL = Number(process.env.STORM_LEVEL ?? 4);
const IDLE_S = Number(process.env.STORM_IDLE_S ?? 30);
const AFTER_S = Number(process.env.STORM_AFTER_S ?? 30);
const WAIT_S = Number(process.env.STORM_WAIT_S ?? 1800);
/**
 * Which code the agent runs: "dist" (default), the compiled JavaScript users
 * run (bin/peripety with PERIPETY_ENTRY=dist, after `node
 * hack/build-dist.mjs` brought dist/ up to date with src/), or "src", the
 * TypeScript sources through Node's type stripping (docs/packaging.md).
 */
const ENTRY = process.env.STORM_ENTRY ?? 'dist';
const DEVICES = 8;
const SAMPLE_MS = 500;
const CLK_TCK = 100;

/** The goals of issue 14. */
const GOAL = {
  idleRssMiB: 60,
  stormPeakRssMiB: 150,
  afterRssMiB: 80,
  usPerRecord: 15,
  lossPct: 0,
};

/** A storage line the scsi parser turns into an event: a medium error on device `dev`. */
function stormLine(tag: string, i: number): string {
  return `sd 2:0:0:0: [sd${tag}${String.fromCharCode(97 + (i % DEVICES))}] tag#${i % 64} Sense Key : Medium Error [current]`;
}

/**
 * The paced writer (a child, so the parent's reading of the agent's stdout
 * does not disturb the pacing): `count` lines at `rate` lines/s, one record
 * per write(). Every ~1 ms it writes the lines due by then (a sleep of 1 ms
 * by Atomics.wait, which is precise, between ticks). `oneFd`: printk_devkmsg
 * is "on", else a fresh descriptor per line (the kernel rate-limits each open
 * file). Prints "done <written> <elapsed ms>".
 */
function writer(count: number, rate: number, level: number, tag: string, oneFd: boolean): void {
  const records = Array.from({ length: DEVICES * 64 }, (_, i) => Buffer.from(`<${level}>${stormLine(tag, i)}\n`));
  const tick = new Int32Array(new SharedArrayBuffer(4));
  const fd = oneFd ? openSync('/dev/kmsg', 'w') : -1;
  const t0 = process.hrtime.bigint();
  let written = 0;
  while (written < count) {
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    const due = Math.min(count, Math.floor((elapsedNs * rate) / 1e9) + 1);
    for (; written < due; written++) {
      const rec = records[written % records.length]!;
      if (fd >= 0) writeSync(fd, rec);
      else {
        const f = openSync('/dev/kmsg', 'w');
        try {
          writeSync(f, rec);
        } finally {
          closeSync(f);
        }
      }
    }
    if (written < count) Atomics.wait(tick, 0, 0, 1);
  }
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (fd >= 0) closeSync(fd);
  process.stdout.write(`done ${written} ${elapsedMs.toFixed(1)}\n`);
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function hwmKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** utime + stime of every thread of `pid`, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // after "(comm)", which may hold spaces: field 3 is the state; utime and stime are fields 14 and 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** The sum of every series of each metric in `names`, from Prometheus text. */
function metricSums(text: string, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1]! in out) out[m[1]!]! += Number(m[3]);
  }
  return out;
}

interface StormFigures {
  storm: { lines: number };
  writer_rate: number;
  writer_ms: number;
  storm_peak_rss_mib: number;
  rss_after_mib: number;
  cpu_s: number;
  us_per_record: number;
  events: number;
  events_pct: number;
  lost_to_overrun: number;
  loss_pct: number;
  kmsg_overrun_events: number;
  metrics_delta: Record<string, number>;
}

const METRICS = [
  'peripety_kmsg_records_total',
  'peripety_kmsg_lost_records_total',
  'peripety_kmsg_ignored_records_total',
  'peripety_kmsg_position_held_records_total',
  'peripety_kernel_suppressed_messages_total',
  'peripety_events_total',
  'peripety_receiver_dropped_events_total',
  'peripety_receiver_sent_events_total',
  'peripety_multicast_sent_datagrams_total',
  'peripety_multicast_dropped_events_total',
  'peripety_backend_dropped_events_total',
  'peripety_backend_writes_total',
  'peripety_held_events_flushed_total',
] as const;

function testRunsGoing(): string {
  try {
    return execFileSync('pgrep', ['-af', String.raw`hack/test.mjs|hack/e2e.mjs|\.ci/run`], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}

const MiB = (kib: number) => kib / 1024;
const fmtMiB = (kib: number) => `${MiB(kib).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    console.log('bench/agent-storm: SKIPPED (needs root: reads and writes the real /dev/kmsg)');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-agent-storm-'));
  const stateDir = path.join(dir, 'state');
  const configFile = path.join(dir, 'agent.toml');
  const tag = `x${randomBytes(3).toString('hex')}`;

  // The embedded default configuration, with the two overrides named at the top.
  const defaults = execFileSync(process.execPath, [path.join(ROOT, 'bin/peripety'), 'print-default-config'], { encoding: 'utf8' });
  const overrides = ['[kmsg] accept_user_facility = true', '[main] api_listen = "127.0.0.1:0"'];
  const config = defaults
    .replace(/^\[main\]\n/m, '[main]\napi_listen = "127.0.0.1:0"\n')
    .replace(/^(\[kmsg\]\n(?:[^[\n].*\n)*)/m, '$1accept_user_facility = true\n');
  if (!config.includes('accept_user_facility = true') || !config.includes('api_listen = "127.0.0.1:0"')) {
    throw new Error(`could not apply the overrides to the default configuration:\n${defaults}`);
  }
  writeFileSync(configFile, config);

  if (ENTRY !== 'dist' && ENTRY !== 'src') throw new Error(`STORM_ENTRY=${ENTRY}: want dist or src`);
  if (ENTRY === 'dist') execFileSync(process.execPath, [path.join(ROOT, 'hack/build-dist.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`bench/agent-storm: the agent runs ${ENTRY === 'dist' ? 'dist/ (the compiled JavaScript users run)' : 'src/ (TypeScript through Node\'s type stripping)'}: PERIPETY_ENTRY=${ENTRY}`);
  const agentEnv = { ...process.env, PERIPETY_ENTRY: ENTRY };
  const agent = spawn(process.execPath, [path.join(ROOT, 'bin/peripety'), 'agent', '--config', configFile, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'], env: agentEnv });
  const pid = agent.pid!;
  let agentExited = false;
  const exited = new Promise<void>((resolve) => agent.on('exit', () => {
    agentExited = true;
    resolve();
  }));
  const killAgent = () => {
    if (!agentExited) agent.kill('SIGKILL');
  };
  process.on('exit', killAgent);

  // stdout: count the events (one line each), those of this storm (its device names), and KMSG_OVERRUN events
  let stdoutLines = 0;
  let stormEvents = 0;
  let overrunEvents = 0;
  let pending = '';
  const devMark = `sd${tag}`;
  agent.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let from = 0;
    let nl;
    while ((nl = pending.indexOf('\n', from)) >= 0) {
      const line = pending.slice(from, nl);
      from = nl + 1;
      stdoutLines++;
      if (line.includes(devMark)) stormEvents++;
      else if (line.includes('KMSG_OVERRUN')) overrunEvents++;
    }
    pending = pending.slice(from);
  });
  let stderr = '';
  agent.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-200_000);
  });

  const waitFor = async (check: () => boolean, what: string, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (agentExited) throw new Error(`the agent exited while waiting for ${what}; stderr:\n${stderr.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; agent stderr:\n${stderr.slice(-3000)}`);
      await sleep(50);
    }
  };

  let restoreDevkmsg: (() => void) | undefined;
  try {
    await waitFor(() => stderr.includes('"agent started"') && /"msg":"API listening"/.test(stderr), 'the agent to start', 30_000);
    const listen = /"listen":"([^"]+)","msg":"API listening"/.exec(stderr)![1]!;
    // what actually runs: bin/peripety restarts node with the agent's flags (bin/entry.mjs)
    const agentCmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).map((a) => path.basename(a) === 'node' ? 'node' : a.replace(ROOT, '.')).join(' ');
    const arenaMax = /(?:^|\0)MALLOC_ARENA_MAX=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1] ?? '(unset)';
    console.log(`bench/agent-storm: agent process: ${agentCmdline} (MALLOC_ARENA_MAX=${arenaMax})`);
    const metricsUrl = `http://${listen}/metrics`;
    const metrics = async () => metricSums(await (await fetch(metricsUrl)).text(), METRICS);

    // 1. idle
    await sleep(IDLE_S * 1000);
    const idleRss = rssKiB(pid);
    console.log(`bench/agent-storm: idle VmRSS ${IDLE_S} s after the start: ${fmtMiB(idleRss)}`);

    const result: { storm?: unknown; idle_rss_mib: number; [k: string]: unknown } = {
      bench: 'agent-storm',
      date: new Date().toISOString(),
      machine: { nproc: os.availableParallelism(), kernel: os.release(), node: process.version, cpu: os.cpus()[0]?.model ?? '' },
      config: { base: 'peripety print-default-config', overrides },
      entry: ENTRY,
      agent_cmdline: agentCmdline,
      malloc_arena_max: arenaMax,
      idle_rss_mib: +MiB(idleRss).toFixed(1),
    };

    if (LINES > 0) {
      // 2. the storm: only while no test run on this machine reads the ring
      const waitEnd = Date.now() + WAIT_S * 1000;
      let running = testRunsGoing();
      while (running && Date.now() < waitEnd) {
        console.log(`bench/agent-storm: a test run is going on this machine (${running.split('\n')[0]}); the storm would overwrite the kernel ring it reads: waiting`);
        await sleep(60_000);
        running = testRunsGoing();
      }
      if (running) {
        console.log(`bench/agent-storm: STORM SKIPPED (a test run was still going after ${WAIT_S} s)`);
      } else {
        const un = unlimitDevkmsg();
        restoreDevkmsg = un?.restore;
        const mode = un ? 'one-fd' : 'fd-per-line';
        const m0 = await metrics();
        const samples: { t: number; rss: number }[] = [];
        const stormStart = Date.now();
        const cpu0 = cpuSeconds(pid);
        const sampler = setInterval(() => {
          if (!agentExited) samples.push({ t: Date.now() - stormStart, rss: rssKiB(pid) });
        }, SAMPLE_MS);
        const w = spawn(process.execPath, [import.meta.filename, '--writer', String(LINES), String(RATE), String(LEVEL), tag, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
        let wOut = '';
        w.stdout.setEncoding('utf8').on('data', (c: string) => (wOut += c));
        await new Promise<void>((resolve) => w.on('exit', () => resolve()));
        const stormEnd = Date.now();
        const wm = /done (\d+) ([\d.]+)/.exec(wOut);
        if (!wm) throw new Error(`the writer failed: ${wOut}`);
        const written = Number(wm[1]);
        const writerMs = Number(wm[2]);
        restoreDevkmsg?.();
        // until every event came out, or nothing more came for 5 s
        let last = -1;
        let lastChange = Date.now();
        while (stormEvents < written && Date.now() - lastChange < 5000 && Date.now() - stormEnd < AFTER_S * 1000) {
          if (stormEvents !== last) {
            last = stormEvents;
            lastChange = Date.now();
          }
          await sleep(50);
        }
        const drainedAt = Date.now();
        const cpu1 = cpuSeconds(pid);
        const m1 = await metrics();
        const rest = stormEnd + AFTER_S * 1000 - Date.now();
        if (rest > 0) await sleep(rest);
        clearInterval(sampler);
        const afterRss = rssKiB(pid);
        const cpu2 = cpuSeconds(pid);
        const hwm = hwmKiB(pid);
        const m2 = await metrics();
        const d = (k: (typeof METRICS)[number]) => m1[k]! - m0[k]!;
        const lost = d('peripety_kmsg_lost_records_total');
        const peak = Math.max(...samples.filter((s) => s.t <= drainedAt - stormStart).map((s) => s.rss));
        const usPerRecord = ((cpu1 - cpu0) * 1e6) / written;
        Object.assign(result, {
          storm: { lines: written, rate_target: RATE, level: LEVEL, writer: mode, devices: DEVICES },
          writer_rate: Math.round(written / (writerMs / 1000)),
          writer_ms: Math.round(writerMs),
          drain_ms_after_writer: drainedAt - stormEnd,
          storm_peak_rss_mib: +MiB(peak).toFixed(1),
          rss_after_mib: +MiB(afterRss).toFixed(1),
          vmhwm_mib: +MiB(hwm).toFixed(1),
          cpu_s: +(cpu1 - cpu0).toFixed(2),
          us_per_record: +usPerRecord.toFixed(1),
          // the same up to the end of the after-storm window: work left behind (storage) and idle time included
          us_per_record_incl_after: +(((cpu2 - cpu0) * 1e6) / written).toFixed(1),
          events: stormEvents,
          events_pct: +((100 * stormEvents) / written).toFixed(3),
          lost_to_overrun: lost,
          loss_pct: +((100 * lost) / written).toFixed(3),
          kmsg_overrun_events: overrunEvents,
          metrics_delta: Object.fromEntries(METRICS.map((k) => [k, d(k)])),
          metrics_delta_after: Object.fromEntries(METRICS.map((k) => [k, m2[k]! - m0[k]!])),
          rss_curve_mib: samples.map((s) => [+(s.t / 1000).toFixed(1), +MiB(s.rss).toFixed(1)]),
        });
      }
    }

    result.stdout_lines_total = stdoutLines; // every event printed, the ring read at the start included

    // 3. the table
    const rows: [string, string, string][] = [[`idle VmRSS ${IDLE_S} s after the start`, `${result.idle_rss_mib} MiB`, `≤ ${GOAL.idleRssMiB} MiB`]];
    const s = result as unknown as StormFigures;
    if (result.storm !== undefined) {
      rows.push(
        ['storm: lines / writer rate', `${s.storm.lines} in ${(s.writer_ms / 1000).toFixed(1)} s: ${s.writer_rate}/s`, `${LINES} at ${RATE}/s`],
        ['VmRSS peak during the storm', `${s.storm_peak_rss_mib} MiB`, `≤ ${GOAL.stormPeakRssMiB} MiB`],
        [`VmRSS ${AFTER_S} s after the storm`, `${s.rss_after_mib} MiB`, `≤ ${GOAL.afterRssMiB} MiB`],
        ['agent CPU per record', `${s.us_per_record} µs (${s.cpu_s} s CPU)`, `≤ ${GOAL.usPerRecord} µs`],
        ['storm events on stdout / lines', `${s.events} / ${s.storm.lines} (${s.events_pct}%)`, 'every line an event'],
        ['lost to ring overrun', `${s.lost_to_overrun} (${s.loss_pct}%), ${s.kmsg_overrun_events} KMSG_OVERRUN events`, `${GOAL.lossPct}`],
      );
    }
    const w0 = Math.max(...rows.map((x) => x[0].length));
    const w1 = Math.max(...rows.map((x) => x[1].length));
    console.log(`bench/agent-storm: the real agent (${ENTRY === 'dist' ? 'compiled dist/' : 'src/ type-stripped'}), default configuration (overrides: ${overrides.join(', ')}), ${os.availableParallelism()} CPUs, Linux ${os.release()}, Node ${process.version}`);
    console.log(`  ${'figure'.padEnd(w0)} | ${'value'.padEnd(w1)} | goal (issue 14)`);
    console.log(`  ${'-'.repeat(w0)}-+-${'-'.repeat(w1)}-+----------------`);
    for (const [a, b, c] of rows) console.log(`  ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
    if (result.storm !== undefined) console.log(`  agent metrics over the storm (deltas): ${JSON.stringify(s.metrics_delta)}`);
    console.log(JSON.stringify(result));
  } finally {
    restoreDevkmsg?.();
    if (!agentExited) {
      agent.kill('SIGTERM');
      const t = setTimeout(killAgent, 30_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// last: every const above is initialised by now
if (process.argv[2] === '--writer') {
  writer(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6]!, process.argv[7] === 'one-fd');
} else {
  await main();
}
