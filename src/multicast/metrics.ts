// Metrics of the multicast sender and listeners. prom-client refuses a second
// metric of the same name in one registry, and the agent keeps its registry
// across configuration reloads (each reload builds a new sender), so the
// metrics are created once per registry and shared.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface SenderMetrics {
  sent: Counter;
  dropped: Counter<'reason'>;
  errors: Counter;
  truncated: Counter;
}

export interface ListenerMetrics {
  received: Counter;
  lost: Counter;
  duplicates: Counter;
  reordered: Counter;
  malformed: Counter;
  senders: Gauge;
}

const senderCache = new WeakMap<Registry, SenderMetrics>();
const listenerCache = new WeakMap<Registry, ListenerMetrics>();

export function senderMetrics(registry: Registry): SenderMetrics {
  let m = senderCache.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      sent: new Counter({ name: 'peripety_multicast_sent_datagrams_total', help: 'Events sent to the multicast group (one datagram each)', registers }),
      dropped: new Counter({
        name: 'peripety_multicast_dropped_events_total',
        help: 'Events not sent to the multicast group, by reason (queue_full, too_large, send_error); each still used a sequence number, so listeners see the loss',
        labelNames: ['reason'], registers,
      }),
      errors: new Counter({ name: 'peripety_multicast_errors_total', help: 'Multicast socket errors (bind, send)', registers }),
      truncated: new Counter({ name: 'peripety_multicast_truncated_events_total', help: 'Events shortened to fit the datagram size limit', registers }),
    };
    senderCache.set(registry, m);
  }
  return m;
}

export function listenerMetrics(registry: Registry): ListenerMetrics {
  let m = listenerCache.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      received: new Counter({ name: 'peripety_multicast_received_events_total', help: 'Events received from the multicast group (duplicates not counted)', registers }),
      lost: new Counter({ name: 'peripety_multicast_lost_events_total', help: 'Events missing from the multicast group (gaps in the senders\' sequence numbers)', registers }),
      duplicates: new Counter({ name: 'peripety_multicast_duplicate_datagrams_total', help: 'Datagrams received twice (ignored)', registers }),
      reordered: new Counter({ name: 'peripety_multicast_reordered_datagrams_total', help: 'Datagrams that arrived after their gap was counted as lost (delivered; lost corrected)', registers }),
      malformed: new Counter({ name: 'peripety_multicast_malformed_datagrams_total', help: 'Datagrams on the group that are not peripety events', registers }),
      senders: new Gauge({ name: 'peripety_multicast_senders', help: 'Senders whose sequence numbers are tracked', registers }),
    };
    listenerCache.set(registry, m);
  }
  return m;
}

/**
 * At most one call of `emit` per interval: the first occurrence at once, the
 * rest summed into the next one. For log lines about things that can happen
 * thousands of times a second (send errors, gaps on a lossy network).
 */
export class RateLimited<T> {
  private readonly intervalMs: number;
  private readonly emit: (items: T[], suppressed: number) => void;
  private readonly now: () => number;
  private last = -Infinity;
  private pending: T[] = [];
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;
  /** at most this many items are kept for the next emit; the rest are only counted */
  private readonly keep: number;

  constructor(intervalMs: number, emit: (items: T[], suppressed: number) => void, opts: { keep?: number; now?: () => number } = {}) {
    this.intervalMs = intervalMs;
    this.emit = emit;
    this.keep = opts.keep ?? 1;
    this.now = opts.now ?? (() => performance.now());
  }

  push(item: T): void {
    const now = this.now();
    if (this.timer === null && now - this.last >= this.intervalMs) {
      this.last = now;
      this.emit([item], 0);
      return;
    }
    if (this.pending.length < this.keep) this.pending.push(item);
    else this.suppressed++;
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.last + this.intervalMs - now));
      this.timer.unref();
    }
  }

  /** Emit what is pending now (shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0 && this.suppressed === 0) return;
    const items = this.pending;
    const suppressed = this.suppressed;
    this.pending = [];
    this.suppressed = 0;
    this.last = this.now();
    this.emit(items, suppressed);
  }
}
