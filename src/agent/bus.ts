// The event bus (docs/architecture.md "Components", "One kernel line, hop by hop"): raw records are classified and routed
// to the parsers whose filter selects them; parsers' findings become
// synthetic events (after context lines had their chance to enrich them);
// every synthetic event goes to every receiver's bounded queue. The bus
// itself never waits: receivers that cannot keep up drop and count.
import type { StorageEvent, System } from '../events/schema.ts';
import { SYSTEMS } from '../events/schema.ts';
import { classify } from '../kmsg/classify.ts';
import type { KernelRecord } from '../contracts/record.ts';
import type { Logger } from '../log/logger.ts';
import type { AgentMetrics, Tally } from '../metrics/agent-metrics.ts';
import { type ClassifiedRecord, type Finding, isContext, type Parser } from '../contracts/parser.ts';
import { Assembler, type FlushReason, type Held } from './assembler.ts';
import { type SynthContext, synthesize } from './synthesize.ts';
import type { ReceiverSink } from '../contracts/receiver.ts';
import type { Ack } from '../contracts/ack.ts';


export interface ParserInstance {
  /** the section name */
  name: string;
  parser: Parser;
  /** systems routed to it (already expanded); null = the parser's defaults */
  systems: readonly string[] | null;
  filterType: 'raw' | 'synthetic' | 'both';
}

/** `dm` in a filter means the device-mapper family: the seed routes multipath with filter_system = "dm". */
const DM_FAMILY: readonly System[] = ['dm', 'multipath', 'lvm'];

export function expandFilterSystems(filter: readonly string[]): Set<System> {
  const out = new Set<System>();
  for (const f of filter) {
    if (f === '*') SYSTEMS.forEach((s) => out.add(s));
    else if (f === 'dm') DM_FAMILY.forEach((s) => out.add(s));
    else if ((SYSTEMS as readonly string[]).includes(f)) out.add(f as System);
  }
  return out;
}

interface HeldMeta {
  rec: ClassifiedRecord;
  plugin: string;
  ack: Ack;
}

interface BusOptions {
  parsers: ParserInstance[];
  receivers: ReceiverSink[];
  synth: SynthContext;
  metrics: AgentMetrics;
  log: Logger;
  contextWindowMs: number;
  maxHeld: number;
  /** milliseconds clock (tests and offline parsing inject one) */
  now?: () => number;
  /** no timers: the caller flushes held events itself (offline parsing) */
  manualFlush?: boolean;
}

/** Every this many raw records, one is timed (peripety_parse_duration_seconds is a sample of records). */
export const PARSE_TIMED_EVERY = 64;

export class Bus {
  private readonly rawRoutes = new Map<System, ParserInstance[]>();
  private readonly syntheticRoutes: ParserInstance[];
  private readonly receivers: ReceiverSink[];
  private readonly opts: BusOptions;
  private readonly assembler: Assembler<HeldMeta>;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  /**
   * event type → system → severity → tally. Nested maps, not one map under a
   * joined key: the parts are constant strings whose hashes V8 keeps, while a
   * joined key is a fresh string hashed on every event (~1 % of the pipeline).
   */
  private readonly eventTallies = new Map<string, Map<string, Map<string, Tally>>>();
  private readonly heldFlushed: Partial<Record<FlushReason, { inc(): void }>> = {};
  /** records until the next one whose routing and parsing is timed */
  private untilTimed = 1;

  constructor(opts: BusOptions) {
    this.opts = opts;
    this.receivers = opts.receivers;
    this.now = opts.now ?? (() => performance.now());
    this.assembler = new Assembler<HeldMeta>(opts.maxHeld);
    for (const p of opts.parsers) {
      if (p.filterType === 'synthetic') continue;
      const systems = expandFilterSystems(p.systems ?? p.parser.systems);
      for (const s of systems) {
        const list = this.rawRoutes.get(s) ?? [];
        list.push(p);
        this.rawRoutes.set(s, list);
      }
    }
    this.syntheticRoutes = opts.parsers.filter((p) => p.filterType !== 'raw');
  }

  /** A raw kernel record from a collector. The caller releases its own reference to `ack` afterwards. */
  ingest(raw: KernelRecord, ack: Ack): void {
    if (--this.untilTimed > 0) {
      this.route(raw, ack);
      return;
    }
    // One record in PARSE_TIMED_EVERY is timed into peripety_parse_duration_seconds
    // (the first one too, so a quiet node has a sample): timing and observing
    // every record would cost several % of the pipeline.
    this.untilTimed = PARSE_TIMED_EVERY;
    const t0 = performance.now();
    this.route(raw, ack);
    this.opts.metrics.parseDuration.observe((performance.now() - t0) / 1000);
  }

  /** Classify a raw record and run the parsers its system is routed to. */
  private route(raw: KernelRecord, ack: Ack): void {
    const system = classify(raw);
    if (system === null) {
      this.opts.metrics.unclassifiedTally.n++;
      return;
    }
    const routes = this.rawRoutes.get(system);
    if (!routes) return;
    const rec: ClassifiedRecord = { ...raw, system };
    for (const p of routes) this.runParser(p, rec, ack);
  }

  private runParser(p: ParserInstance, rec: ClassifiedRecord, ack: Ack): void {
    let res;
    try {
      res = p.parser.parse(rec);
    } catch (err) {
      // a parser bug must not take the agent down or lose other events
      this.opts.log.error({ parser: p.name, err: (err as Error).message, record: rec.message.slice(0, 200) }, 'parser failed on a record');
      return;
    }
    if (res === null) return;
    // the clock only for what the assembler keeps: most findings go straight out
    if (isContext(res)) {
      const now = this.now();
      if (this.assembler.attach(res, now) === 'merged') return;
      if (res.orphan) this.hold({ ...res.orphan, hold: res.orphan.hold ?? res.context }, rec, p.name, ack, now);
      else this.opts.metrics.orphanContext.inc();
      return;
    }
    if (res.hold) {
      this.hold(res, rec, p.name, ack, this.now());
      return;
    }
    this.emitFinding(res, rec, p.name, ack);
  }

  private hold(f: Finding, rec: ClassifiedRecord, plugin: string, ack: Ack, now: number): void {
    ack.retain();
    for (const { out, reason } of this.assembler.hold(f, { rec, plugin, ack }, now)) this.flushHeld(out, reason);
    this.armTimer();
  }

  private flushHeld(list: Held<HeldMeta>[], reason: FlushReason): void {
    if (list.length === 0) return;
    // the labelled child once per reason: labels() validates and builds its label set on every call
    const flushed = (this.heldFlushed[reason] ??= this.opts.metrics.heldFlushed.labels(reason));
    for (const h of list) {
      flushed.inc();
      try {
        this.emitFinding(h.finding, h.meta.rec, h.meta.plugin, h.meta.ack);
      } finally {
        h.meta.ack.release();
      }
    }
  }

  private emitFinding(f: Finding, rec: ClassifiedRecord, plugin: string, ack: Ack): void {
    const ev = synthesize(rec, f, plugin, this.opts.synth);
    this.publish(ev, ack, plugin);
  }

  /** A synthetic event: to every receiver, and to parsers that asked for synthetic input. */
  publish(ev: StorageEvent, ack: Ack, producer?: string): void {
    this.tallyOf(ev).n++;
    if (ev.event_type === 'KERNEL_LOG_SUPPRESSED') {
      const n = Number(ev.extentions.suppressed);
      if (Number.isSafeInteger(n) && n > 0) this.opts.metrics.suppressed.inc(n);
    }
    for (const r of this.receivers) {
      // the receiver's hold: it releases it when it acknowledged the event; refused now, it is ours to release
      ack.retain();
      if (!r.deliver(ev, ack)) ack.release();
    }
    // Synthetic input for parsers that asked for it; never back to the producer, and only one level deep.
    if (this.syntheticRoutes.length > 0 && ev.extentions.kind === 'synthetic' && ev.extentions.derived !== 'true') {
      for (const p of this.syntheticRoutes) {
        if (p.name === producer) continue;
        const systems = p.systems ? expandFilterSystems(p.systems) : new Set(p.parser.systems);
        if (!systems.has(ev.system)) continue;
        const res = p.parser.parse(syntheticAsRecord(ev));
        if (res === null || isContext(res)) continue;
        const derived = synthesize(syntheticAsRecord(ev), { ...res, hold: undefined, ext: { ...res.ext, derived: 'true', derived_from: ev.event_type } }, p.name, this.opts.synth);
        this.publish({ ...derived, event_id: ev.event_id }, ack, p.name);
      }
    }
  }

  private tallyOf(ev: StorageEvent): Tally {
    let bySystem = this.eventTallies.get(ev.event_type);
    if (bySystem === undefined) this.eventTallies.set(ev.event_type, (bySystem = new Map()));
    let bySeverity = bySystem.get(ev.system);
    if (bySeverity === undefined) bySystem.set(ev.system, (bySeverity = new Map()));
    let tally = bySeverity.get(ev.severity);
    if (tally === undefined) bySeverity.set(ev.severity, (tally = this.opts.metrics.eventTally(ev.system, ev.event_type, ev.severity)));
    return tally;
  }

  /** Kernel records were lost before they were read: tell the receivers. */
  overrun(lost: number, afterSeq: number, nextSeq: number, ack: Ack): void {
    const rec: ClassifiedRecord = {
      level: 4, facility: 0, seq: nextSeq - 1, tsUsec: -1, flag: '-', system: 'block',
      message: `kmsg: ${lost} records lost between seq ${afterSeq} and ${nextSeq}`, subsystem: '', device: '',
    };
    this.emitFinding({
      type: 'KMSG_OVERRUN', device: null,
      msg: `${lost} kernel log records were overwritten before the agent could read them`,
      ext: { lost: String(lost), after_seq: String(afterSeq), next_seq: String(nextSeq) },
    }, rec, 'kmsg', ack);
  }

  private armTimer(): void {
    if (this.opts.manualFlush) return;
    if (this.timer || this.opts.contextWindowMs <= 0) {
      if (this.opts.contextWindowMs <= 0) this.flushExpired(Infinity);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushExpired(this.now() - this.opts.contextWindowMs);
      const oldest = this.assembler.oldest();
      if (oldest !== undefined) this.armTimer();
    }, this.opts.contextWindowMs);
  }

  /** Emit every held event last touched at or before `cutoff` (ms). */
  flushExpired(cutoff: number): void {
    this.flushHeld(this.assembler.expire(cutoff), 'expired');
  }

  /** Emit everything held (end of input, shutdown, reload). */
  drain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flushHeld(this.assembler.drain(), 'drain');
  }

  get heldCount(): number {
    return this.assembler.size;
  }
}

function syntheticAsRecord(ev: StorageEvent): ClassifiedRecord {
  const level = Number(ev.extentions.kernel_level ?? '6');
  const seq = Number(ev.extentions.kmsg_seq ?? '-1');
  return {
    level: Number.isInteger(level) ? level : 6, facility: 0, seq: Number.isInteger(seq) ? seq : -1,
    tsUsec: -1, flag: '-', message: ev.msg, subsystem: '', device: '', system: ev.system,
  };
}
