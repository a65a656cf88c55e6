// The agent's Prometheus metrics (docs/architecture.md "Metrics"). One set per
// registry (src/metrics/per-registry.ts) so tests and tools get their own; labels are bounded sets
// (systems, event types, severities, plugin names from the configuration).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { perRegistry } from './per-registry.ts';

/** A count the hot path bumps with a plain `n++`; prom-client reads it at scrape time. */
export interface Tally {
  n: number;
}

interface EventTally {
  labels: [string, string, string];
  tally: Tally;
}

/** The agent's own metrics on a registry, declared once (src/metrics/per-registry.ts). */
const agentMetrics = perRegistry((registry: Registry) => {
  const registers = [registry];
  /**
   * Per-record and per-event counts: prom-client's labelled inc() hashes the
   * labels on every call (a few % of the pipeline benchmark), so these are
   * plain numbers folded into the counters when the registry is collected.
   */
  const eventTallies = new Map<string, EventTally>();
  const unclassifiedTally: Tally = { n: 0 };
  return {
    eventTallies,
    unclassifiedTally,
    events: new Counter({
      name: 'peripety_events_total', help: 'Synthetic storage events emitted', labelNames: ['system', 'event_type', 'severity'], registers,
      collect() {
        for (const { labels, tally } of eventTallies.values()) {
          if (tally.n > 0) this.labels(...labels).inc(tally.n);
          tally.n = 0;
        }
      },
    }),
    kmsgRecords: new Counter({ name: 'peripety_kmsg_records_total', help: 'Kernel records read from /dev/kmsg', registers }),
    kmsgLost: new Counter({ name: 'peripety_kmsg_lost_records_total', help: 'Kernel records overwritten before the agent read them (sequence gaps)', registers }),
    kmsgPositionSaves: new Counter({ name: 'peripety_kmsg_position_saves_total', help: 'Writes of the saved kmsg read position: at most one a second while records commit, and one at every flush (stop, reload, shutdown)', registers }),
    kmsgMalformed: new Counter({ name: 'peripety_kmsg_malformed_records_total', help: 'Kernel records that could not be parsed', registers }),
    kmsgIgnored: new Counter({ name: 'peripety_kmsg_ignored_records_total', help: 'Kernel records skipped (not facility 0, already processed before a restart)', labelNames: ['reason'], registers }),
    kmsgPositionResets: new Counter({
      name: 'peripety_kmsg_position_resets_total',
      help: 'Saved kmsg positions not used at start: ahead_of_log (this boot, but a sequence number the kernel never wrote: read from the oldest record instead)',
      labelNames: ['reason'], registers,
    }),
    kmsgPositionHeld: new Counter({
      name: 'peripety_kmsg_position_held_records_total',
      help: 'Kernel records a backend that must not lose dropped (disk full, queue or spool full, stopped): the saved position stays before the first of them, so the next start reads them again',
      registers,
    }),
    kmsgReplays: new Counter({
      name: 'peripety_kmsg_replays_total',
      help: 'Times the collector read the kernel ring again from a held position because storage wrote again',
      registers,
    }),
    unclassified: new Counter({
      name: 'peripety_records_unclassified_total', help: 'Raw records of no storage system (counted, not parsed)', registers,
      collect() {
        if (unclassifiedTally.n > 0) this.inc(unclassifiedTally.n);
        unclassifiedTally.n = 0;
      },
    }),
    suppressed: new Counter({ name: 'peripety_kernel_suppressed_messages_total', help: 'Storage messages the kernel rate limiter dropped ("callbacks suppressed")', registers }),
    parseDuration: new Histogram({ name: 'peripety_parse_duration_seconds', help: 'Time to route and parse one raw record', buckets: [1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2], registers }),
    receiverDropped: new Counter({ name: 'peripety_receiver_dropped_events_total', help: 'Events a receiver dropped: its bounded queue was full, or it could not deliver them (refused, too large, gave up)', labelNames: ['receiver'], registers }),
    receiverSent: new Counter({ name: 'peripety_receiver_sent_events_total', help: 'Events a receiver delivered', labelNames: ['receiver'], registers }),
    receiverQueueDepth: new Gauge({ name: 'peripety_receiver_queue_depth', help: 'Events waiting in a receiver queue', labelNames: ['receiver'], registers }),
    pluginUp: new Gauge({ name: 'peripety_plugin_up', help: '1 when a configured plugin is running', labelNames: ['plugin'], registers }),
    configGeneration: new Gauge({ name: 'peripety_config_generation', help: 'Generation of the applied configuration', registers }),
    configReloads: new Counter({ name: 'peripety_config_reloads_total', help: 'Configuration reloads by result', labelNames: ['result'], registers }),
    unresolved: new Counter({ name: 'peripety_device_unresolved_total', help: 'Events whose device could not be resolved in sysfs', labelNames: ['system'], registers }),
    orphanContext: new Counter({ name: 'peripety_context_lines_orphaned_total', help: 'Context lines (SCSI CDB, libata detail) with no event to attach to', registers }),
    heldFlushed: new Counter({ name: 'peripety_held_events_flushed_total', help: 'Events held for context lines, by why they were released', labelNames: ['reason'], registers }),
  };
});

/**
 * The agent's metric set on one registry, as the components use it. Two
 * instances on one registry share the metrics and their tallies.
 */
export class AgentMetrics {
  readonly registry: Registry;
  readonly events: Counter<'system' | 'event_type' | 'severity'>;
  readonly kmsgRecords: Counter;
  readonly kmsgLost: Counter;
  readonly kmsgPositionSaves: Counter;
  readonly kmsgMalformed: Counter;
  readonly kmsgIgnored: Counter<'reason'>;
  readonly kmsgPositionResets: Counter<'reason'>;
  readonly kmsgPositionHeld: Counter;
  readonly kmsgReplays: Counter;
  readonly unclassified: Counter;
  readonly suppressed: Counter;
  readonly parseDuration: Histogram;
  readonly receiverDropped: Counter<'receiver'>;
  readonly receiverSent: Counter<'receiver'>;
  readonly receiverQueueDepth: Gauge<'receiver'>;
  readonly pluginUp: Gauge<'plugin'>;
  readonly configGeneration: Gauge;
  readonly configReloads: Counter<'result'>;
  readonly unresolved: Counter<'system'>;
  readonly orphanContext: Counter;
  readonly heldFlushed: Counter<'reason'>;
  /** bumped with `n++` per unclassified record, folded into peripety_records_unclassified_total at scrape time */
  readonly unclassifiedTally: Tally;
  private readonly eventTallies: Map<string, EventTally>;

  constructor(registry: Registry = new Registry()) {
    const m = agentMetrics(registry);
    this.registry = registry;
    this.events = m.events;
    this.kmsgRecords = m.kmsgRecords;
    this.kmsgLost = m.kmsgLost;
    this.kmsgPositionSaves = m.kmsgPositionSaves;
    this.kmsgMalformed = m.kmsgMalformed;
    this.kmsgIgnored = m.kmsgIgnored;
    this.kmsgPositionResets = m.kmsgPositionResets;
    this.kmsgPositionHeld = m.kmsgPositionHeld;
    this.kmsgReplays = m.kmsgReplays;
    this.unclassified = m.unclassified;
    this.suppressed = m.suppressed;
    this.parseDuration = m.parseDuration;
    this.receiverDropped = m.receiverDropped;
    this.receiverSent = m.receiverSent;
    this.receiverQueueDepth = m.receiverQueueDepth;
    this.pluginUp = m.pluginUp;
    this.configGeneration = m.configGeneration;
    this.configReloads = m.configReloads;
    this.unresolved = m.unresolved;
    this.orphanContext = m.orphanContext;
    this.heldFlushed = m.heldFlushed;
    this.unclassifiedTally = m.unclassifiedTally;
    this.eventTallies = m.eventTallies;
  }

  /** The tally of events of one system, type and severity (cache it: the lookup builds a key). */
  eventTally(system: string, eventType: string, severity: string): Tally {
    const key = `${system}\0${eventType}\0${severity}`;
    let e = this.eventTallies.get(key);
    if (!e) {
      e = { labels: [system, eventType, severity], tally: { n: 0 } };
      this.eventTallies.set(key, e);
    }
    return e.tally;
  }
}
