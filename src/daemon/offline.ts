// Offline parsing (`prpt parse`): kernel records or dmesg text in, synthetic
// events out, through the same bus and parsers as the agent. Held events
// (waiting for context lines) expire by the records' own timestamps, so the
// result does not depend on how fast the input is read.
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { silentLogger } from '../log/logger.ts';
import type { DeviceResolver } from '../device/types.ts';
import type { StorageEvent } from '../events/schema.ts';
import { splitRecords } from '../kmsg/record.ts';
import { PARSERS } from '../parsers/index.ts';
import { Bus } from './bus.ts';
import { FsUuidMemory } from './synthesize.ts';
import { NO_TICKET } from './ticket.ts';

export interface OfflineOptions {
  hostname: string;
  bootId: string;
  bootEpochUs: number;
  resolver: DeviceResolver | null;
  source: string;
  contextWindowMs?: number;
  metrics?: AgentMetrics;
  /** accept records of facilities other than the kernel (default true: offline input is trusted) */
  acceptUserFacility?: boolean;
}

export interface OfflineError {
  line: number;
  error: string;
}

export function parseOffline(text: string, opts: OfflineOptions, onEvent: (ev: StorageEvent) => void, onError: (e: OfflineError) => void): void {
  let nowMs = 0;
  const windowMs = opts.contextWindowMs ?? 50;
  const bus = new Bus({
    parsers: Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
    receivers: [{ name: 'offline', deliver: (ev, done) => { onEvent(ev); done(); return true; } }],
    metrics: opts.metrics ?? new AgentMetrics(),
    log: silentLogger(),
    contextWindowMs: windowMs,
    maxHeld: 256,
    manualFlush: true,
    now: () => nowMs,
    synth: { hostname: opts.hostname, bootId: opts.bootId, bootEpochUs: opts.bootEpochUs, resolver: opts.resolver, source: opts.source, fsUuids: new FsUuidMemory() },
  });
  for (const r of splitRecords(text)) {
    if (!r.ok) {
      onError({ line: r.line, error: r.error });
      continue;
    }
    if (r.record.facility !== 0 && opts.acceptUserFacility === false) continue;
    if (r.record.tsUsec >= 0) {
      nowMs = r.record.tsUsec / 1000;
      bus.flushExpired(nowMs - windowMs);
    }
    bus.ingest(r.record, NO_TICKET);
  }
  bus.drain();
}
