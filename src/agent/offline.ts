// Offline parsing (`prpt parse`): kernel records or dmesg text in, synthetic
// events out, through the same bus and parsers as the agent. Held events
// (waiting for context lines) expire by the records' own timestamps, so the
// result does not depend on how fast the input is read.
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { silentLogger } from '../log/logger.ts';
import type { DeviceResolver } from '../contracts/device.ts';
import type { StorageEvent } from '../events/schema.ts';
import { splitRecords } from '../kmsg/record.ts';
import { PARSERS } from '../parsers/index.ts';
import { Bus } from './bus.ts';
import { FsUuidMemory } from './synthesize.ts';
import { NO_TICKET } from '../contracts/ticket.ts';

interface OfflineOptions {
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

interface OfflineError {
  line: number;
  error: string;
}

/**
 * Offline parsing as a stream: feed input lines as they arrive (`line`),
 * `idle()` when the input paused (a live pipe such as `dmesg -w`: what is
 * held for context is emitted instead of waiting for the next line), `end()`
 * at the end. Memory is bounded by one record plus the bus's held events,
 * whatever the input's size.
 */
export class OfflineParser {
  private readonly bus: Bus;
  private readonly opts: OfflineOptions;
  private readonly onError: (e: OfflineError) => void;
  private readonly windowMs: number;
  private nowMs = 0;
  /** the current record: a line and the continuation lines (leading space) after it */
  private pending: string[] = [];
  private pendingLine = 0;
  private lineNo = 0;

  constructor(opts: OfflineOptions, onEvent: (ev: StorageEvent) => void, onError: (e: OfflineError) => void) {
    this.opts = opts;
    this.onError = onError;
    this.windowMs = opts.contextWindowMs ?? 50;
    this.bus = new Bus({
      parsers: Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
      receivers: [{ name: 'offline', deliver: (ev, done) => { onEvent(ev); done(); return true; } }],
      metrics: opts.metrics ?? new AgentMetrics(),
      log: silentLogger(),
      contextWindowMs: this.windowMs,
      maxHeld: 256,
      manualFlush: true,
      now: () => this.nowMs,
      synth: { hostname: opts.hostname, bootId: opts.bootId, bootEpochUs: opts.bootEpochUs, resolver: opts.resolver, source: opts.source, fsUuids: new FsUuidMemory() },
    });
  }

  /** One input line, without its newline. */
  line(text: string): void {
    this.lineNo++;
    // A /dev/kmsg record's continuation lines start with a space: keep them with their record.
    if (text.charCodeAt(0) === 32 && this.pending.length > 0) {
      this.pending.push(text);
      return;
    }
    this.flushPending();
    this.pending.push(text);
    this.pendingLine = this.lineNo;
  }

  /** A line that was too long to keep: skipped and reported. */
  skipped(error: string): void {
    this.lineNo++;
    this.flushPending();
    this.onError({ line: this.lineNo, error });
  }

  /** The input paused: parse the last record and emit what waits for context lines. */
  idle(): void {
    this.flushPending();
    this.bus.flushExpired(Infinity);
  }

  end(): void {
    this.flushPending();
    this.bus.drain();
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join('\n');
    const base = this.pendingLine - 1;
    this.pending = [];
    // The group starts at a line without a leading space, so splitting it alone gives what splitting the whole input gave.
    for (const r of splitRecords(text)) {
      if (!r.ok) {
        this.onError({ line: base + r.line, error: r.error });
        continue;
      }
      if (r.record.facility !== 0 && this.opts.acceptUserFacility === false) continue;
      if (r.record.tsUsec >= 0) {
        this.nowMs = r.record.tsUsec / 1000;
        this.bus.flushExpired(this.nowMs - this.windowMs);
      }
      this.bus.ingest(r.record, NO_TICKET);
    }
  }
}
