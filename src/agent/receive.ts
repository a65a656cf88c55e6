// `peripety receive`: the seed's out-of-process receivers. Joins the group
// named by a configuration's [main] keys and hands every event to the
// receiver sections of that configuration (any plugin of RECEIVER_SPECS), in this
// process, possibly on another host. Collector and parser sections are not
// used here. Lost events (sequence gaps) are counted and logged.
import { createHash } from 'node:crypto';
import { diffSections, type Sections, unchanged } from '../config/diff.ts';
import type { AgentConfig } from '../config/schema.ts';
import { NO_ACK } from '../contracts/ack.ts';
import { createReceivers, eventHostname } from './receivers.ts';
import type { Logger } from '../log/logger.ts';
import { RateLimited } from '../log/rate-limit.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { loadKeyFile } from '../multicast/key.ts';
import { emptyStats, type GapInfo, type ListenerStats, MulticastListener } from '../multicast/listener.ts';

export interface ReceiveHostOptions {
  log: Logger;
  metrics: AgentMetrics;
  /** --interface: overrides [main] multicast_interface / receiver_bind_ip */
  interfaceIp?: string;
}

const LOG_INTERVAL_MS = 1000;

/** What a listener is bound to; a change needs a new one. The shared key enters as a digest, never as itself. */
function listenerSections(config: AgentConfig, iface: string, key: Buffer | undefined): Sections {
  const k = key === undefined ? '-' : createHash('sha256').update(key).digest('hex');
  return [['group', config.main.receiver_multicast_ip], ['port', config.main.receiver_multicast_port], ['interface', iface], ['key', k]];
}

export class ReceiveHost {
  private readonly opts: ReceiveHostOptions;
  private receivers: QueuedReceiver[] = [];
  private listener: MulticastListener | null = null;
  /** what the running listener is bound to (listenerSections) */
  private listening: Sections = [];
  private unreportedLost = 0;
  private readonly gapLog: RateLimited<GapInfo>;
  private readonly malformedLog: RateLimited<string>;
  private readonly senderLog: RateLimited<string>;
  private readonly rejectLog: RateLimited<string>;
  private readonly resyncLog: RateLimited<string>;
  /** totals over every listener this host ran (a reload that changes the group starts a new one) */
  private readonly totals: ListenerStats = emptyStats();

  constructor(opts: ReceiveHostOptions) {
    this.opts = opts;
    const { log } = opts;
    this.gapLog = new RateLimited(LOG_INTERVAL_MS, (gaps, more) => {
      const lost = this.unreportedLost;
      this.unreportedLost = 0;
      log.warn({ lost, gaps: gaps.map((g) => ({ sender: g.sender, from: g.address, seq: g.fromSeq === g.toSeq ? `${g.fromSeq}` : `${g.fromSeq}-${g.toSeq}` })), moreGaps: more }, 'multicast events lost');
    }, { keep: 5 });
    this.malformedLog = new RateLimited(LOG_INTERVAL_MS * 10, (reasons, more) => {
      log.warn({ reason: reasons[0], more }, 'ignoring a datagram that is not a peripety event');
    });
    this.senderLog = new RateLimited(LOG_INTERVAL_MS, (senders, more) => {
      log.info({ senders, more }, 'multicast sender seen');
    }, { keep: 10 });
    this.rejectLog = new RateLimited(LOG_INTERVAL_MS * 10, (reasons, more) => {
      log.warn({ reason: reasons[0], more }, 'refusing a datagram that fails the multicast key checks');
    });
    this.resyncLog = new RateLimited(LOG_INTERVAL_MS * 10, (jumps, more) => {
      log.warn({ jump: jumps[0], more }, 'implausible sequence jump: the stream starts over (forged datagram without a key?)');
    });
  }

  private interfaceOf(config: AgentConfig): string {
    return this.opts.interfaceIp ?? config.main.multicast_interface ?? config.main.receiver_bind_ip;
  }

  private buildReceivers(config: AgentConfig): QueuedReceiver[] {
    const { log, metrics } = this.opts;
    const sections = config.plugins.filter((p) => p.type === 'receiver' && p.enabled);
    if (sections.length === 0) throw new Error('the configuration has no enabled receiver section: nothing to deliver events to');
    const out = createReceivers({ log, metrics, config, hostname: eventHostname(config, undefined) }, { builtin: false });
    const ignored = config.plugins.filter((p) => p.type !== 'receiver' && p.enabled).length;
    if (ignored > 0) log.info({ sections: ignored }, 'collector and parser sections are not used by peripety receive');
    return out;
  }

  /** The key of [main] multicast_key_file (undefined: none); throws with the file's problem. */
  private keyOf(config: AgentConfig): Buffer | undefined {
    const file = config.main.multicast_key_file;
    if (file === undefined) return undefined;
    return loadKeyFile(file, (w) => this.opts.log.warn(w));
  }

  private async listen(config: AgentConfig, key: Buffer | undefined): Promise<MulticastListener> {
    const { log, metrics } = this.opts;
    const iface = this.interfaceOf(config);
    const listener = new MulticastListener({
      group: config.main.receiver_multicast_ip,
      port: config.main.receiver_multicast_port,
      interfaceIp: iface,
      key,
      registry: metrics.registry,
      onEvent: (ev) => {
        // a datagram has no kernel record here to hold back: nothing waits for the acknowledgement
        for (const r of this.receivers) r.deliver(ev, NO_ACK);
      },
      onLost: (gap) => {
        this.unreportedLost += gap.lost;
        this.gapLog.push(gap);
      },
      onMalformed: (reason, address) => this.malformedLog.push(`${address}: ${reason}`),
      onSender: (sender, address) => this.senderLog.push(`${sender} at ${address}`),
      onRejected: (reason, address, detail) => this.rejectLog.push(`${address}: ${reason}: ${detail}`),
      onResync: (r) => this.resyncLog.push(`${r.address}: sender ${r.sender} jumped ${r.jump} to ${r.seq}`),
    });
    await listener.start();
    log.info({ group: `${config.main.receiver_multicast_ip}:${config.main.receiver_multicast_port}`, interface: iface, signed: key !== undefined, receivers: this.receivers.map((r) => r.name) }, 'receiving multicast events');
    return listener;
  }

  async start(config: AgentConfig): Promise<void> {
    const key = this.keyOf(config);
    this.receivers = this.buildReceivers(config);
    try {
      this.listener = await this.listen(config, key);
    } catch (err) {
      await Promise.all(this.receivers.map((r) => r.close(0)));
      throw err;
    }
    this.listening = listenerSections(config, this.interfaceOf(config), key);
  }

  /** A new configuration: new receivers; a new listener only when the group or interface changed. Null or the error. */
  async reload(config: AgentConfig): Promise<string | null> {
    const { log } = this.opts;
    let next: QueuedReceiver[];
    let secret: Buffer | undefined;
    try {
      secret = this.keyOf(config);
      next = this.buildReceivers(config);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'configuration rejected; keeping the running receivers');
      return (err as Error).message;
    }
    const listening = listenerSections(config, this.interfaceOf(config), secret);
    if (!unchanged(diffSections(this.listening, listening))) {
      let listener: MulticastListener;
      try {
        listener = await this.listen(config, secret);
      } catch (err) {
        await Promise.all(next.map((r) => r.close(0)));
        log.error({ err: (err as Error).message }, 'cannot join the new group; keeping the running configuration');
        return (err as Error).message;
      }
      const old = this.listener;
      this.listener = listener;
      this.listening = listening;
      if (old) {
        await old.close();
        this.addTotals(old.stats);
      }
    }
    const old = this.receivers;
    this.receivers = next;
    await Promise.all(old.map((r) => r.close()));
    log.info('configuration reloaded');
    return null;
  }

  private addTotals(s: ListenerStats): void {
    this.totals.received += s.received;
    this.totals.lost += s.lost;
    this.totals.duplicates += s.duplicates;
    this.totals.reordered += s.reordered;
    this.totals.malformed += s.malformed;
    this.totals.rejected += s.rejected;
    this.totals.resyncs += s.resyncs;
  }

  /** Counts so far, over every listener. */
  stats(): ListenerStats {
    const s = this.listener?.stats;
    return {
      received: this.totals.received + (s?.received ?? 0),
      lost: this.totals.lost + (s?.lost ?? 0),
      duplicates: this.totals.duplicates + (s?.duplicates ?? 0),
      reordered: this.totals.reordered + (s?.reordered ?? 0),
      malformed: this.totals.malformed + (s?.malformed ?? 0),
      rejected: this.totals.rejected + (s?.rejected ?? 0),
      resyncs: this.totals.resyncs + (s?.resyncs ?? 0),
      senders: s?.senders ?? 0,
    };
  }

  /** Leave the group, drain the receivers; the final counts. */
  async stop(): Promise<ListenerStats> {
    const l = this.listener;
    this.listener = null;
    if (l) {
      await l.close();
      this.addTotals(l.stats);
    }
    await Promise.all(this.receivers.map((r) => r.close()));
    this.gapLog.flush();
    this.malformedLog.flush();
    this.senderLog.flush();
    this.rejectLog.flush();
    this.resyncLog.flush();
    return { ...this.totals, senders: 0 };
  }
}

