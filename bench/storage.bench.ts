// Benchmark of the node-local storage backends (npm run bench runs it beside
// the pipeline benchmark):
//  1. persist throughput: the same 200,000 generated events, in batches of
//     1000, into sqlite (WAL, synchronous=NORMAL) and into jsonl (fsync per
//     batch), each with its default durability;
//  2. a filtered query over 1,000,000 stored events in sqlite: system 'block'
//     (an equality hint) over the newest 10% of the time range, with limit
//     1000 and unbounded.
// Targets: at least 50,000 events/s into sqlite; the query under 300 ms.
// BENCH_EVENTS / BENCH_QUERY_ROWS scale it down for a quick run.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StorageEvent, System } from '../src/events/schema.ts';
import type { CompiledFilter, FilterHints } from '../src/filter/types.ts';
import { silentLogger } from '../src/log/logger.ts';
import { JsonlBackend } from '../src/storage/backends/jsonl.ts';
import { JsonlConfig, SqliteConfig } from '../src/storage/backends/options.ts';
import { SqliteBackend } from '../src/storage/backends/sqlite.ts';
import type { Backend, BackendContext, EventQuery } from '../src/storage/types.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const QUERY_ROWS = Number(process.env.BENCH_QUERY_ROWS ?? 1_000_000);
const BATCH = 1000;
const TARGET_EPS = 50_000;
const TARGET_QUERY_MS = 300;
/** the stored history spans this much time, ending now (inside the default 30-day retention) */
const SPAN_US = 20 * 86_400_000_000;

// What a busy node's storage events look like: every system, its event
// types, a few dozen devices, some hosts, ~8 extentions.
const TYPES: Record<System, string[]> = {
  block: ['BLK_IO_ERROR', 'BLK_BUFFER_IO_ERROR', 'BLK_CAPACITY_CHANGE', 'BLK_DEVICE_ADDED', 'KERNEL_LOG_SUPPRESSED'],
  scsi: ['SCSI_CMD_FAILED', 'SCSI_MEDIUM_ERROR', 'SCSI_ADDITIONAL_SENSE_CODE', 'SCSI_TIMEOUT', 'ATA_ERROR', 'ATA_LINK_RESET'],
  nvme: ['NVME_IO_TIMEOUT', 'NVME_CONTROLLER_RESET', 'NVME_IO_ERROR'],
  multipath: ['DM_MPATH_PATH_FAILED', 'DM_MPATH_PATH_REINSTATED'],
  dm: ['DM_MIRROR_READ_FAILED', 'DM_DIRTY_LOG_READ_FAILED'],
  lvm: ['LVM_THIN_LOW_WATER_MARK', 'LVM_THIN_OUT_OF_SPACE'],
  mdraid: ['MD_DISK_FAILURE', 'MD_ARRAY_DEGRADED', 'MD_RECOVERY_DONE'],
  fs: ['FS_ERROR', 'FS_IO_ERROR', 'FS_MOUNTED', 'FS_REMOUNT_READ_ONLY'],
};
// block and scsi dominate real logs; weights per system
const SYSTEM_POOL: System[] = [
  ...Array<System>(4).fill('block'), ...Array<System>(3).fill('scsi'), 'nvme', 'nvme', 'multipath', 'dm', 'lvm', 'mdraid', 'fs', 'fs',
];
const DEVICES = Array.from({ length: 40 }, (_, i) => {
  const name = i < 24 ? `sd${String.fromCharCode(97 + i)}` : i < 32 ? `nvme${i - 24}n1` : i < 36 ? `dm-${i - 32}` : `md${i - 36}`;
  return { name, wwid: `naa.5000c500${(0xa1b2c3d4 + i * 7919).toString(16).padStart(8, '0')}` };
});
const HOSTS = ['node-1.example.com', 'node-2.example.com', 'node-3.example.com', 'node-4.example.com'];

function makeEvents(n: number, endUs: number, spanUs: number, seed: number): StorageEvent[] {
  let s = seed >>> 0;
  const rnd = (k: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % k;
  };
  const out: StorageEvent[] = new Array<StorageEvent>(n);
  const startUs = endUs - spanUs;
  for (let i = 0; i < n; i++) {
    // in time order with a little jitter, as records arrive
    const t = Math.max(startUs, Math.floor(startUs + (i / n) * spanUs) - rnd(2_000_000));
    const system = SYSTEM_POOL[rnd(SYSTEM_POOL.length)]!;
    const types = TYPES[system];
    const type = types[rnd(types.length)]!;
    const dev = DEVICES[rnd(DEVICES.length)]!;
    const sector = rnd(1 << 30);
    const seq = seed * 10_000_000 + i;
    out[i] = {
      hostname: HOSTS[rnd(HOSTS.length)]!,
      severity: rnd(10) < 7 ? 'error' : rnd(2) === 0 ? 'warn' : 'info',
      system,
      timestamp: Math.floor(t / 1_000_000),
      event_id: uuid(seed, i),
      event_type: type,
      dev_wwid: dev.wwid,
      dev_name: dev.name,
      msg: `${type.toLowerCase().replaceAll('_', ' ')} on ${dev.name} (READ, sector ${sector})`,
      extentions: {
        timestamp_us: String(t),
        kernel_dev: dev.name,
        raw_msg: `blk_update_request: I/O error, dev ${dev.name}, sector ${sector} op 0x0:(READ) flags 0x800 phys_seg 1 prio class 2`,
        kmsg_seq: String(seq),
        kind: 'synthetic',
        op: rnd(2) === 0 ? 'READ' : 'WRITE',
        sector: String(sector),
        status: 'I/O error',
      },
    };
  }
  return out;
}

/**
 * A name-based (v5-style) looking id: kmsg event ids are SHA-1 derived, so
 * they spread uniformly and every insert lands in a random place of the
 * unique index (sequential ids would flatter the insert rate). The leading
 * half is a hash of (seed, i), the rest (seed, i) itself, so ids never collide.
 */
function uuid(seed: number, i: number): string {
  const mix = (x: number) => {
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
    return (x ^ (x >>> 16)) >>> 0;
  };
  const a = mix(i ^ Math.imul(seed, 0x9e3779b1)).toString(16).padStart(8, '0');
  const b = mix(a.charCodeAt(3) + i * 31 + seed).toString(16).padStart(8, '0');
  const s = seed.toString(16).padStart(8, '0').slice(-8);
  const n = i.toString(16).padStart(8, '0').slice(-8);
  return `${a}-${b.slice(0, 4)}-5${b.slice(5, 8)}-8${s.slice(1, 4)}-${s.slice(4)}${n}`;
}

/** `.event.system 'block' STRCMP`, built by hand (the bench does not depend on the compiler) */
function systemFilter(system: string): CompiledFilter {
  const hints: FilterHints = { equals: { system } };
  return {
    source: `.event.system '${system}' STRCMP`,
    hints,
    evaluate: (ev) => (ev.system === system ? 'MATCH' : 'NO_MATCH'),
    evaluateDetailed: (ev) => ({ result: ev.system === system ? 'MATCH' : 'NO_MATCH' }),
  };
}

/**
 * Wall time, the process's CPU time (every thread: the sqlite backend writes
 * in a thread of its own) and the main thread's part of it (what the event
 * loop, and so the kmsg reader, pays).
 */
async function persistAll(b: Backend, events: StorageEvent[], batch: number): Promise<{ sec: number; cpuUsPerEvent: number; mainUsPerEvent: number }> {
  const c0 = process.cpuUsage();
  const m0 = process.threadCpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += batch) await b.persist(events.slice(i, i + batch));
  const sec = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const m = process.threadCpuUsage(m0);
  return { sec, cpuUsPerEvent: (c.user + c.system) / events.length, mainUsPerEvent: (m.user + m.system) / events.length };
}

async function timeQuery(b: Backend, q: EventQuery, runs: number): Promise<{ first: number; median: number; n: number; truncated: boolean }> {
  const times: number[] = [];
  let n = 0;
  let truncated = false;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const res = await b.findEvents(q);
    times.push(performance.now() - t0);
    n = res.events.length;
    truncated = res.isTruncated;
  }
  const first = times[0]!;
  times.sort((a, c) => a - c);
  return { first, median: times[times.length >> 1]!, n, truncated };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-storage-bench-'));
  const ctx: BackendContext = { log: silentLogger(), stateDir: dir, hostname: 'node-1.example.com', env: {} };
  try {
    const nowUs = Date.now() * 1000;
    const events = makeEvents(EVENTS, nowUs, SPAN_US, 1);
    console.log(`storage bench: ${fmt(EVENTS)} events in batches of ${BATCH}, temp dir ${dir}`);

    // 1. persist throughput, same events into each backend
    const sqlite = new SqliteBackend('bench-sqlite', SqliteConfig.parse({ Path: 'throughput.db' }), ctx);
    await sqlite.start();
    const sq = await persistAll(sqlite, events, BATCH);
    await sqlite.shutdown();
    const jsonl = new JsonlBackend('bench-jsonl', JsonlConfig.parse({ StoragePath: 'jsonl/%host%-%date%-%count%.jsonl' }), ctx);
    await jsonl.start();
    const js = await persistAll(jsonl, events, BATCH);
    await jsonl.shutdown();
    const sqliteEps = EVENTS / sq.sec;
    const jsonlEps = EVENTS / js.sec;
    console.log('\npersist                     events/s      time   CPU/event (all threads / main thread)');
    const cols = (r: typeof sq, eps: number) =>
      `${fmt(eps).padStart(12)}  ${r.sec.toFixed(2).padStart(7)} s  ${r.cpuUsPerEvent.toFixed(1).padStart(6)} µs / ${r.mainUsPerEvent.toFixed(1).padStart(5)} µs`;
    console.log(`  sqlite (WAL, NORMAL)  ${cols(sq, sqliteEps)}   target >= ${fmt(TARGET_EPS)}/s: ${verdict(sqliteEps >= TARGET_EPS)}`);
    console.log(`  jsonl (fsync/batch)   ${cols(js, jsonlEps)}`);

    // 2. a filtered query over QUERY_ROWS stored events
    const big = new SqliteBackend('bench-query', SqliteConfig.parse({ Path: 'query.db' }), ctx);
    await big.start();
    const BUILD_BATCH = 50_000;
    const t0 = performance.now();
    for (let i = 0; i < QUERY_ROWS; i += BUILD_BATCH) {
      const n = Math.min(BUILD_BATCH, QUERY_ROWS - i);
      const endUs = nowUs - SPAN_US + ((i + n) / QUERY_ROWS) * SPAN_US;
      await big.persist(makeEvents(n, endUs, (n / QUERY_ROWS) * SPAN_US, 1000 + i / BUILD_BATCH));
    }
    const buildSec = (performance.now() - t0) / 1000;
    console.log(`\nquery database: ${fmt(big.rowCount)} rows built in ${buildSec.toFixed(1)} s (${fmt(QUERY_ROWS / buildSec)} events/s in batches of ${fmt(BUILD_BATCH)})`);
    // The agent's own restart would see the statistics from PRAGMA optimize at shutdown.
    await big.shutdown();
    await big.start();

    const oldest = Math.floor(nowUs - SPAN_US / 10);
    const filter = systemFilter('block');
    const base: EventQuery = { filter, newest: nowUs, oldest, limit: 1000 };
    console.log(`filter ${filter.source} (hint system=block), newest 10% of the time range`);
    for (const limit of [1000, 0]) {
      const r = await timeQuery(big, { ...base, limit }, 5);
      console.log(
        `  limit ${String(limit === 0 ? '0 (all)' : limit).padEnd(8)} ${fmt(r.n).padStart(7)} events${r.truncated ? ' (truncated)' : ''}  first ${r.first.toFixed(1)} ms, median of 5 ${r.median.toFixed(1)} ms   target < ${TARGET_QUERY_MS} ms: ${verdict(r.median < TARGET_QUERY_MS)}`,
      );
    }
    await big.shutdown();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
