// Prometheus metrics of the StorageManager and its backends (docs/storage.md
// "Metrics"). Labels are bounded: backend names are limited by the
// configuration schema (≤ 64 backends, ≤ 63 characters), `result` and `kind`
// are fixed sets.
//
// One set per registry (src/metrics/per-registry.ts), shared by every
// StorageManager: the agent starts a new manager while the old one still
// runs, and prom-client refuses a second metric of the same name on a
// registry. Gauges are read at scrape time from the live workers; two live
// workers of the same backend name (old and new manager during a switch) are
// summed (queue, spool) or or-ed (up).
import { Counter, Gauge, Registry } from 'prom-client';
import { perRegistry } from '../metrics/per-registry.ts';

export const WRITE_RESULTS = ['ok', 'failed', 'spooled', 'dropped'] as const;
export type WriteResult = (typeof WRITE_RESULTS)[number];

/** What a live backend reports at scrape time. */
export interface BackendGaugeSource {
  readonly name: string;
  queueDepth(): number;
  spoolBytes(): number;
  up(): boolean;
}

/** The counters of one backend, with their label children resolved once. */
export interface BackendMetrics {
  /** events persisted (direct or replayed from the spool) */
  ok(n: number): void;
  /** events of persist attempts that rejected or timed out (each attempt counts) */
  failed(n: number): void;
  /** events written to the on-disk spool */
  spooled(n: number): void;
  /** events given up: queue full with no usable spool, spool full, stopped */
  dropped(n: number): void;
  /** a Filter entry that did not compile */
  compileError(): void;
  /** an event for which a filter returned ERROR */
  evalError(): void;
}

type CounterChild = ReturnType<Counter<string>['labels']>;

/** The StorageManager's metrics on a registry, declared once (src/metrics/per-registry.ts). */
const storageMetrics = perRegistry((registry: Registry) => {
  const registers = [registry];
  /** the live backends the gauges read at scrape time, of every manager on the registry */
  const sources = new Set<BackendGaugeSource>();
  // Sum (or max) over live sources: a series disappears when its last worker is gone.
  const gauge = (name: string, help: string, read: (s: BackendGaugeSource) => number, combine: (a: number, b: number) => number) =>
    new Gauge({
      name, help, labelNames: ['backend'], registers,
      collect() {
        const values = new Map<string, number>();
        for (const s of sources) {
          const prev = values.get(s.name);
          const v = read(s);
          values.set(s.name, prev === undefined ? v : combine(prev, v));
        }
        this.reset();
        for (const [name, v] of values) this.labels(name).set(v);
      },
    });
  return {
    sources,
    writes: new Counter({ name: 'peripety_backend_writes_total', help: 'Events handled by a storage backend worker, by result (failed counts each rejected attempt)', labelNames: ['backend', 'result'], registers }),
    queueDepth: gauge('peripety_backend_queue_depth', 'Events in a storage backend\'s in-memory queue (not yet persisted or spooled)', (s) => s.queueDepth(), (a, b) => a + b),
    spoolBytes: gauge('peripety_backend_spool_bytes', 'Bytes in a storage backend\'s on-disk spool', (s) => s.spoolBytes(), (a, b) => a + b),
    dropped: new Counter({ name: 'peripety_backend_dropped_events_total', help: 'Events a storage backend gave up (queue full without a usable spool, spool full, stopped)', labelNames: ['backend'], registers }),
    filterErrors: new Counter({ name: 'peripety_backend_filter_errors_total', help: 'Storage backend filter errors: compile (a Filter entry skipped) or eval (an event the filter could not evaluate)', labelNames: ['backend', 'kind'], registers }),
    up: gauge('peripety_backend_up', '1 when a storage backend is started and its last write succeeded', (s) => (s.up() ? 1 : 0), (a, b) => Math.max(a, b)),
  };
});

export class StorageMetrics {
  readonly registry: Registry;
  readonly writes: Counter<'backend' | 'result'>;
  readonly queueDepth: Gauge<'backend'>;
  readonly spoolBytes: Gauge<'backend'>;
  readonly dropped: Counter<'backend'>;
  readonly filterErrors: Counter<'backend' | 'kind'>;
  readonly up: Gauge<'backend'>;
  private readonly sources: Set<BackendGaugeSource>;
  private readonly perBackend = new Map<string, BackendMetrics>();

  /** The StorageMetrics of a registry, one object per registry (managers share its per-backend cache). */
  static readonly forRegistry = perRegistry((registry) => new StorageMetrics(registry));

  /** A view over the registry's storage metrics; a second instance on one registry shares them (prefer forRegistry). */
  constructor(registry: Registry = new Registry()) {
    const m = storageMetrics(registry);
    this.registry = registry;
    this.sources = m.sources;
    this.writes = m.writes;
    this.queueDepth = m.queueDepth;
    this.spoolBytes = m.spoolBytes;
    this.dropped = m.dropped;
    this.filterErrors = m.filterErrors;
    this.up = m.up;
  }

  /** The counters of one backend (cached: the hot path never hashes labels). */
  backend(name: string): BackendMetrics {
    let m = this.perBackend.get(name);
    if (m) return m;
    const w = (result: WriteResult): CounterChild => this.writes.labels(name, result);
    const ok = w('ok'), failed = w('failed'), spooled = w('spooled'), droppedW = w('dropped');
    const droppedAll = this.dropped.labels(name);
    const compile = this.filterErrors.labels(name, 'compile');
    const evalErr = this.filterErrors.labels(name, 'eval');
    // every series exists from the backend's start at 0: Prometheus' increase()
    // cannot see a counter's first step when the series appears already at 1
    for (const c of [ok, failed, spooled, droppedW, droppedAll, compile, evalErr]) c.inc(0);
    m = {
      ok: (n) => ok.inc(n),
      failed: (n) => failed.inc(n),
      spooled: (n) => spooled.inc(n),
      dropped: (n) => {
        droppedW.inc(n);
        droppedAll.inc(n);
      },
      compileError: () => compile.inc(),
      evalError: () => evalErr.inc(),
    };
    this.perBackend.set(name, m);
    return m;
  }

  /** Report a live backend's gauges until the returned function is called. */
  track(source: BackendGaugeSource): () => void {
    this.sources.add(source);
    return () => {
      this.sources.delete(source);
    };
  }
}
