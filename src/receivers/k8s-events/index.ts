// The k8s-events receiver (docs/receivers.md "k8s-events"; docs/architecture.md "Components"): storage
// events become events.k8s.io/v1 Events regarding the Node.
//
// - Aggregation: occurrences of one (node, device, event type) within
//   series_window_s are ONE Event; the first write creates it, later writes
//   PATCH its `series` (count, lastObservedTime). Writes per key are
//   coalesced to at most one per second: counts accumulate in memory, so a
//   flood of identical lines costs a handful of API writes.
// - A token bucket (rate/burst) bounds all writes of the node. A new Event
//   refused a token is held back: counted by event type and reported in one
//   summary Event (reason PeripetyEventsSuppressed) when the bucket allows.
//   Series patches refused a token just wait (their counts stay in memory).
//   An aggregation key evicted (LRU, max_keys) or expired with unwritten
//   counts is held back the same way: every occurrence ends up in an
//   Event's count or in a summary, never nowhere.
// - write() only updates memory and schedules a flush: the bus never waits
//   on the API server, and memory is bounded by max_keys.
//
// Acknowledged (docs/architecture.md "Acknowledgement"): aggregated in
// memory (or below min_severity), not yet written to the API server: the
// kernel read position does not wait for the API server, and an agent that
// dies loses the counts not yet written.
import os from 'node:os';
import { Counter, type Registry } from 'prom-client';
import type { Severity, StorageEvent } from '../../events/schema.ts';
import { msToUs } from '../../events/time.ts';
import { perRegistry } from '../../metrics/per-registry.ts';
import { QueuedReceiver, type ReceiverDeps } from '../queued.ts';
import { inClusterConfig, KubeClient, loadKubeconfig } from '../../k8s/http.ts';
import { type AggEntry, Aggregator, boundUtf8, eventMicros, labelValue, microTime, nameSafe, TokenBucket } from './core.ts';
import { K8sEventsOptions } from './options.ts';


export const SUMMARY_REASON = 'PeripetyEventsSuppressed';
const NOTE_MAX = 1024;
const ANNOTATION_MAX = 256;
const RANK: Record<Severity, number> = { info: 0, warn: 1, error: 2 };

type WriteVerb = 'create' | 'patch' | 'get';
export type WriteResult = 'ok' | 'conflict' | 'not_found' | 'rejected' | 'error';

/** Counts for tests and logs (the metric holds the same numbers across instances). */
interface K8sEventsStats {
  observed: number;
  belowSeverity: number;
  writes: number;
  creates: number;
  patches: number;
  summaries: number;
  failedWrites: number;
  heldBack: number;
  /** occurrences reported by summary Events */
  summarized: number;
  /** occurrences lost to writes refused for good (4xx): logged and counted */
  rejected: number;
}

interface Metrics {
  writes: Counter<'verb' | 'result'>;
  heldBack: Counter;
}
/** Declared once per registry (src/metrics/per-registry.ts). */
const k8sMetrics = perRegistry((registry: Registry): Metrics => {
  const registers = [registry];
  return {
    writes: new Counter({ name: 'peripety_k8s_event_writes_total', help: 'Kubernetes API writes of the k8s-events receiver by verb and result', labelNames: ['verb', 'result'], registers }),
    heldBack: new Counter({ name: 'peripety_k8s_events_held_back_total', help: 'Event occurrences the k8s-events rate limit held back (reported in a summary Event)', registers }),
  };
});

interface KubeEvent {
  metadata?: { name?: string };
}

export class K8sEventsReceiver extends QueuedReceiver {
  readonly node: string;
  readonly stats: K8sEventsStats = { observed: 0, belowSeverity: 0, writes: 0, creates: 0, patches: 0, summaries: 0, failedWrites: 0, heldBack: 0, summarized: 0, rejected: 0 };
  private readonly opts: K8sEventsOptions;
  private readonly client: KubeClient;
  private readonly agg: Aggregator;
  private readonly bucket: TokenBucket;
  private readonly instance: string;
  private readonly minRank: number;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private nodeUid: string | undefined;
  private nodeUidAt = -Infinity;
  private seq = 0;
  private flushing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(name: string, opts: K8sEventsOptions, defaultQueue: number, deps: ReceiverDeps & { hostname?: string; client?: KubeClient; now?: () => number }) {
    super(name, opts.queue_size ?? defaultQueue, deps);
    this.opts = opts;
    this.now = deps.now ?? Date.now;
    this.node = opts.node_name ?? deps.hostname ?? os.hostname();
    this.instance = opts.reporting_instance ?? `peripety-agent-${this.node}`.slice(0, 128);
    this.minRank = RANK[opts.min_severity];
    this.client = deps.client ?? new KubeClient(opts.kubeconfig ? loadKubeconfig(opts.kubeconfig) : inClusterConfig(), { timeoutMs: opts.timeout_ms });
    this.agg = new Aggregator({ windowMs: opts.series_window_s * 1000, maxKeys: opts.max_keys, coalesceMs: 1000, summaryIntervalMs: opts.summary_interval_s * 1000 });
    this.bucket = new TokenBucket(opts.rate, opts.burst, this.now());
    this.metrics = k8sMetrics(deps.metrics.registry);
  }

  protected write(batch: StorageEvent[]): Promise<void> {
    const now = this.now();
    for (const ev of batch) {
      this.stats.observed++;
      if (RANK[ev.severity] < this.minRank) {
        this.stats.belowSeverity++;
        continue;
      }
      this.agg.observe(this.node, ev, eventMicros(ev, now), now);
    }
    this.kick();
    return Promise.resolve();
  }

  /** Run a flush now (or right after the one running). */
  private kick(): void {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      this.schedule();
    });
  }

  /** While something waits (coalesced counts, a summary, a token), look again shortly. */
  private schedule(): void {
    if (this.stopped || this.timer || this.agg.pending() === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, 250);
    this.timer.unref();
  }

  private async flushLoop(): Promise<void> {
    do {
      this.again = false;
      const now = this.now();
      this.agg.expire(now);
      const before = this.agg.heldBackTotal;
      const actions = this.agg.due(now, () => this.bucket.take(now));
      this.countHeldBack(before);
      for (const a of actions) {
        if (a.kind === 'summary') await this.summary();
        else await this.upsert(a.entry, a.kind);
      }
    } while (this.again);
  }

  private countHeldBack(before: number): void {
    const added = this.agg.heldBackTotal - before;
    if (added > 0) {
      this.stats.heldBack += added;
      this.metrics.heldBack.inc(added);
    }
  }

  private record(verb: WriteVerb, result: WriteResult): void {
    this.metrics.writes.labels(verb, result).inc();
    if (verb === 'get') return;
    this.stats.writes++;
    if (result !== 'ok') this.stats.failedWrites++;
  }

  private static classify(status: number): WriteResult {
    if (status >= 200 && status < 300) return 'ok';
    if (status === 409) return 'conflict';
    if (status === 404) return 'not_found';
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) return 'rejected';
    return 'error';
  }

  private async regarding(): Promise<Record<string, string>> {
    const now = this.now();
    if (this.nodeUid === undefined && now - this.nodeUidAt > 300_000) {
      this.nodeUidAt = now;
      try {
        const r = await this.client.request<{ metadata?: { uid?: string } }>('GET', `/api/v1/nodes/${encodeURIComponent(this.node)}`);
        this.record('get', readResult(r.status));
        if (r.status === 200 && typeof r.body?.metadata?.uid === 'string') this.nodeUid = r.body.metadata.uid;
      } catch {
        this.record('get', 'error');
      }
    }
    const ref: Record<string, string> = { apiVersion: 'v1', kind: 'Node', name: this.node };
    if (this.nodeUid) ref.uid = this.nodeUid;
    return ref;
  }

  private eventName(): string {
    // client-go's convention: <object>.<unique hex>
    const t = BigInt(this.now()) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
    return `${nameSafe(this.node, 200)}.${t.toString(16)}`;
  }

  private base(reason: string, note: string, type: 'Normal' | 'Warning', us: number, labels: Record<string, string>, annotations: Record<string, string>): Record<string, unknown> {
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: this.eventName(), namespace: this.opts.namespace, labels, annotations },
      eventTime: microTime(us),
      reportingController: this.opts.reporting_controller,
      reportingInstance: this.instance,
      action: this.opts.action,
      reason: boundUtf8(reason, 128),
      note: boundUtf8(note, NOTE_MAX),
      type,
    };
  }

  private get path(): string {
    return `/apis/events.k8s.io/v1/namespaces/${this.opts.namespace}/events`;
  }

  private async upsert(e: AggEntry, kind: 'create' | 'patch'): Promise<void> {
    const count = e.count;
    const lastUs = e.lastUs;
    e.busy = true;
    e.inFlight = count;
    e.lastWriteMs = this.now();
    let result: WriteResult;
    try {
      if (kind === 'create') {
        const ev = e.first;
        const labels: Record<string, string> = { 'app.kubernetes.io/managed-by': 'peripety', 'peripety.io/system': ev.system };
        const dev = labelValue(ev.dev_name);
        const wwid = labelValue(ev.dev_wwid);
        if (dev) labels['peripety.io/device'] = dev;
        if (wwid) labels['peripety.io/wwid'] = wwid;
        const annotations: Record<string, string> = {};
        if (ev.dev_name) annotations['peripety.io/device'] = boundUtf8(ev.dev_name, ANNOTATION_MAX);
        if (ev.dev_wwid) annotations['peripety.io/wwid'] = boundUtf8(ev.dev_wwid, ANNOTATION_MAX);
        annotations['peripety.io/severity'] = ev.severity;
        if (ev.event_id) annotations['peripety.io/event-id'] = boundUtf8(ev.event_id, ANNOTATION_MAX);
        const body = this.base(ev.event_type || 'StorageEvent', ev.msg || ev.event_type || 'storage event', ev.severity === 'info' ? 'Normal' : 'Warning', e.firstUs, labels, annotations);
        body.regarding = await this.regarding();
        if (count >= 2) body.series = { count, lastObservedTime: microTime(lastUs) };
        const r = await this.client.request<KubeEvent>('POST', this.path, body);
        result = K8sEventsReceiver.classify(r.status);
        this.record('create', result);
        if (result === 'ok' || result === 'conflict') {
          this.stats.creates++;
          e.name = (body.metadata as { name: string }).name;
          e.written = count;
        }
      } else {
        const body = { series: { count, lastObservedTime: microTime(lastUs) } };
        const r = await this.client.request('PATCH', `${this.path}/${encodeURIComponent(e.name!)}`, body, { contentType: 'application/merge-patch+json' });
        result = K8sEventsReceiver.classify(r.status);
        this.record('patch', result);
        if (result === 'ok') {
          this.stats.patches++;
          e.written = count;
        } else if (result === 'not_found') {
          // the Event is gone (its TTL passed, someone deleted it): create it again with the whole count
          e.name = undefined;
          e.written = 0;
          e.startedMs = this.now();
          e.lastWriteMs = -Infinity;
        }
      }
    } catch (err) {
      result = 'error';
      this.record(kind, 'error');
      this.deps.log.warn({ receiver: this.name, err: (err as Error).message }, 'k8s-events: API request failed; retrying');
    }
    e.busy = false;
    e.inFlight = 0;
    if (result === 'rejected') {
      // refused for good (RBAC, validation): these occurrences cannot be written; say so once per key
      const lost = e.count - e.written;
      this.stats.rejected += lost;
      this.agg.remove(e);
      this.deps.log.error({ receiver: this.name, verb: kind, event_type: e.eventType, occurrences: lost }, 'k8s-events: the API server refused the Event');
    } else if (e.evicted) {
      const before = this.agg.heldBackTotal;
      this.agg.holdBack(e.eventType, e.count - e.written);
      this.countHeldBack(before);
    }
  }

  private async summary(): Promise<void> {
    const { total, byType } = this.agg.drainHeldBack();
    if (total === 0) return;
    this.agg.lastSummaryMs = this.now();
    const parts = [...byType.entries()].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t || 'StorageEvent'}=${n}`);
    const note = `${total} storage event occurrence(s) on node ${this.node} were held back by the Kubernetes Event rate limit (rate ${this.opts.rate}/s, burst ${this.opts.burst}): ${parts.join(', ')}`;
    const body = this.base(SUMMARY_REASON, note, 'Warning', msToUs(this.now()), { 'app.kubernetes.io/managed-by': 'peripety' }, { 'peripety.io/suppressed-count': String(total) });
    body.regarding = await this.regarding();
    let result: WriteResult;
    try {
      const r = await this.client.request('POST', this.path, body);
      result = K8sEventsReceiver.classify(r.status);
    } catch {
      result = 'error';
    }
    this.record('create', result);
    if (result === 'ok' || result === 'conflict') {
      this.stats.summaries++;
      this.stats.summarized += total;
    } else if (result === 'rejected') {
      this.stats.rejected += total;
      this.deps.log.error({ receiver: this.name, occurrences: total }, 'k8s-events: the API server refused the summary Event');
    } else {
      this.agg.restore(byType);
    }
  }

  /** Run the writes due now (coalescing and the token bucket still apply) and wait for them. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.kick();
    while (this.flushing) await this.flushing;
  }

  protected override async shutdown(): Promise<void> {
    // give coalesced counts one last chance (bounded by the bucket and ~2 s)
    const deadline = Date.now() + 2000;
    while (this.agg.pending() > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.agg.pending() > 0) await new Promise((r) => setTimeout(r, 200));
    }
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.flushing) await this.flushing;
    const left = this.agg.pending();
    if (left > 0) this.deps.log.warn({ receiver: this.name, keys: left, held_back: this.agg.heldBackTotal }, 'k8s-events: closed with counts not yet written (rate limit)');
    this.client.close();
  }

  /** Occurrences the aggregation still has to write or summarize (0 when everything is out). */
  get pendingKeys(): number {
    return this.agg.pending();
  }
}

function readResult(status: number): WriteResult {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 404) return 'not_found';
  if (status >= 400 && status < 500) return 'rejected';
  return 'error';
}

export function createK8sEventsReceiver(name: string, options: Record<string, unknown>, defaultQueue: number, deps: ReceiverDeps & { hostname?: string }): K8sEventsReceiver {
  return new K8sEventsReceiver(name, K8sEventsOptions.parse(options), defaultQueue, deps);
}
