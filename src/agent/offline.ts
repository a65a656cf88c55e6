// Offline parsing (`prpt parse`): kernel records or log text in, synthetic
// events out, through the same bus and parsers as the agent. Held events
// (waiting for context lines) expire by the records' own timestamps, so the
// result does not depend on how fast the input is read.
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { silentLogger } from '../log/logger.ts';
import type { DeviceResolver } from '../contracts/device.ts';
import type { StorageEvent } from '../events/schema.ts';
import type { KernelRecord } from '../contracts/record.ts';
import { bareRecord, type TextContext, type TextFormat } from '../logtext/formats.ts';
import { type TextItem, TextReader } from '../logtext/reader.ts';
import { PARSERS } from '../parsers/index.ts';
import { Bus } from './bus.ts';
import { FsUuidMemory } from './synthesize.ts';
import { NO_ACK } from '../contracts/ack.ts';

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
  /** the year and zone for text formats that leave them out (default: this year, this process's zone) */
  text?: TextContext;
}

interface OfflineError {
  line: number;
  error: string;
}

/** What `prpt parse` read, for its summary line. */
export interface OfflineSummary {
  lines: number;
  /** kernel records in a known format (a /dev/kmsg record, dmesg, journal, syslog…) */
  kernelRecords: number;
  /** lines of a known format written by something else than the kernel (skipped) */
  otherLines: number;
  /** lines in no known format: read as bare kernel messages */
  unknownLines: number;
  events: number;
  /** kernel records per format */
  formats: Partial<Record<TextFormat, number>>;
}

/**
 * Offline parsing as a stream: feed input lines as they arrive (`line`),
 * `idle()` when the input paused (a live pipe such as `dmesg -w`: what is
 * held for context is emitted instead of waiting for the next line), `end()`
 * at the end. Memory is bounded by one record plus the bus's held events,
 * whatever the input's size. Each line's format is found on its own
 * (src/logtext), so a file may mix them.
 */
export class OfflineParser {
  private readonly bus: Bus;
  private readonly opts: OfflineOptions;
  private readonly onError: (e: OfflineError) => void;
  private readonly windowMs: number;
  private readonly reader: TextReader;
  private nowMs = 0;
  private readonly counts: OfflineSummary = { lines: 0, kernelRecords: 0, otherLines: 0, unknownLines: 0, events: 0, formats: {} };

  constructor(opts: OfflineOptions, onEvent: (ev: StorageEvent) => void, onError: (e: OfflineError) => void) {
    this.opts = opts;
    this.onError = onError;
    this.windowMs = opts.contextWindowMs ?? 50;
    this.bus = new Bus({
      parsers: Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
      receivers: [{ name: 'offline', deliver: (ev, ack) => { this.counts.events++; onEvent(ev); ack.release(); return true; } }],
      metrics: opts.metrics ?? new AgentMetrics(),
      log: silentLogger(),
      contextWindowMs: this.windowMs,
      maxHeld: 256,
      manualFlush: true,
      now: () => this.nowMs,
      synth: { hostname: opts.hostname, bootId: opts.bootId, bootEpochUs: opts.bootEpochUs, resolver: opts.resolver, source: opts.source, fsUuids: new FsUuidMemory() },
    });
    this.reader = new TextReader(opts.text ?? { year: new Date().getFullYear() }, (item) => this.onItem(item));
  }

  /** One input line, without its newline. */
  line(text: string): void {
    this.counts.lines++;
    this.reader.line(text);
  }

  /** A line that was too long to keep: skipped and reported. */
  skipped(error: string): void {
    this.counts.lines++;
    // the reader counts lines too: hand it an empty line so that the numbers it reports stay the input's
    this.reader.line('');
    this.onError({ line: this.counts.lines, error });
  }

  /** The input paused: parse the last record and emit what waits for context lines. */
  idle(): void {
    this.reader.flush();
    this.bus.flushExpired(Infinity);
  }

  end(): void {
    this.reader.flush();
    this.bus.drain();
  }

  summary(): OfflineSummary {
    return { ...this.counts, formats: { ...this.counts.formats } };
  }

  private onItem(item: TextItem): void {
    switch (item.kind) {
      case 'error':
        this.onError({ line: item.line, error: item.error });
        return;
      case 'other':
        this.counts.otherLines++;
        return;
      case 'unknown': {
        if (item.text === '') return;
        this.counts.unknownLines++;
        // no known prefix: the line may be a bare kernel message (a paste of messages alone)
        const bare = bareRecord(item.text);
        if (bare !== null) this.ingest(bare);
        return;
      }
      case 'kernel': {
        const { format, record, host, wallUs } = item.value;
        this.counts.kernelRecords++;
        this.counts.formats[format] = (this.counts.formats[format] ?? 0) + 1;
        if (record.message.trim() === '') return;
        const rec: KernelRecord = { ...record };
        if (host !== null) rec.host = host;
        // an event time is µs in (0, 2^53] (src/events/time.ts): a line's time outside it is no time
        if (wallUs !== null && wallUs > 0 && wallUs <= Number.MAX_SAFE_INTEGER) rec.wallUs = wallUs;
        this.ingest(rec);
        return;
      }
    }
  }

  private ingest(rec: KernelRecord): void {
    if (rec.facility !== 0 && this.opts.acceptUserFacility === false) return;
    // the input's own clock expires what waits for context: since-boot time where the line has it, else its wall clock
    const t = rec.tsUsec >= 0 ? rec.tsUsec / 1000 : rec.wallUs !== undefined ? rec.wallUs / 1000 : null;
    if (t !== null) {
      this.nowMs = t;
      this.bus.flushExpired(this.nowMs - this.windowMs);
    }
    this.bus.ingest(rec, NO_ACK);
  }
}
