// peripety's parsing pipeline in-process, with the Bus bench/pipeline.bench.ts
// uses (benchBus): every parser, classification
// and routing, a fake sysfs tree for device resolution, held events flushed
// as the agent does, every event serialised to JSON by one receiver.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bus } from '../../src/agent/bus.ts';
import { NO_ACK } from '../../src/contracts/ack.ts';
import type { ResolverRoots } from '../../src/contracts/device.ts';
import type { ReceiverSink } from '../../src/contracts/receiver.ts';
import { SysfsResolver } from '../../src/device/resolver.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { PARSERS } from '../../src/parsers/index.ts';
import { makeFakeSysfs } from '../../test/helpers/fake-sysfs.ts';

export interface BenchPipeline {
  /**
   * Run `n` records, cycling over `records` (raw /dev/kmsg records as read(2)
   * hands them over): latin1 decode, parse, ingest, and every 1,024 records
   * a flush of the held events, as pipeline.bench.ts does; then drain.
   */
  run(records: readonly Buffer[], n: number): void;
  /** events that came out, and bytes of their JSON, since the last reset */
  readonly counts: { events: number; bytes: number; badRecords: number };
  reset(): void;
  close(): void;
}

/**
 * The Bus of the pipeline benches: every parser on raw records, held events
 * flushed by the caller, devices resolved in the fake sysfs tree at `roots`,
 * every event handed to `deliver`.
 */
export function benchBus(roots: ResolverRoots, deliver: ReceiverSink['deliver']): Bus {
  return new Bus({
    parsers: Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
    receivers: [{ name: 'json', deliver }],
    metrics: new AgentMetrics(), log: silentLogger(), contextWindowMs: 50, maxHeld: 256, manualFlush: true,
    synth: { hostname: 'bench-node', bootId: '3abeb66d-af25-4510-a658-b2fcb7e27605', bootEpochUs: Date.now() * 1000, resolver: new SysfsResolver(roots), source: '/dev/kmsg' },
  });
}

export function makeBenchPipeline(): BenchPipeline {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'prpt-bench-'));
  const roots = makeFakeSysfs(tmp);
  const counts = { events: 0, bytes: 0, badRecords: 0 };
  const bus = benchBus(roots, (ev, ack) => { counts.bytes += JSON.stringify(ev).length; counts.events++; ack.release(); return true; });
  return {
    counts,
    run(records, n) {
      const len = records.length;
      for (let i = 0; i < n; i++) {
        const b = records[i % len]!;
        const r = parseKmsgRecord(b.toString('latin1', 0, b.length));
        if (r.ok) bus.ingest(r.record, NO_ACK);
        else counts.badRecords++;
        if ((i & 1023) === 0) bus.flushExpired(Infinity);
      }
      bus.drain();
    },
    reset() {
      counts.events = 0;
      counts.bytes = 0;
      counts.badRecords = 0;
    },
    close() {
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
