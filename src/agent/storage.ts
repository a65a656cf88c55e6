// The StorageManager as one receiver on the bus that survives reloads.
// Applying a storage configuration starts a NEW manager and switches to it
// only once it started; the old one then stops (flushing what it accepted).
// If the new one fails, the old one keeps running (docs/storage.md "The StorageManager", "Changing the configuration").
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Ack } from '../contracts/ack.ts';
import type { StorageEvent } from '../events/schema.ts';
import { compileFilter } from '../filter/compile.ts';
import type { Logger } from '../log/logger.ts';
import { perRegistry } from '../metrics/per-registry.ts';
import { BACKEND_SPECS } from '../storage/backends/index.ts';
import { diffSections, type Sections, unchanged } from '../config/diff.ts';
import { parseStorageConfig } from '../storage/config.ts';
import { type BackendFlushResult, type BackendStatus, StorageError, StorageManager, type StorageStatus } from '../storage/manager.ts';
import { StorageMetrics } from '../storage/metrics.ts';
import type { EventQuery, QueryResult, SecretResolver } from '../storage/types.ts';
import type { ReceiverSink } from '../contracts/receiver.ts';

interface StorageHostOptions {
  log: Logger;
  registry: Registry;
  stateDir: string;
  hostname: string;
  env?: NodeJS.ProcessEnv;
  /** reads Secrets for backends (Kubernetes mode: the agent's namespace, src/k8s/secrets.ts); absent standalone */
  secrets?: SecretResolver;
  /** Kubernetes mode: backend files must stay inside stateDir */
  confineToStateDir?: boolean;
}

/** A storage configuration prepared beside the running one (StorageHost.prepare). */
export type PreparedStorage =
  | { ok: true; next: StorageManager | null; sections: Sections; source: string; excluded: readonly ExcludedBackend[] }
  | { ok: false; error: string };

interface ExcludedBackend {
  name: string;
  reason: string;
}

interface StorageDoc {
  root: { elos: { EventLogging: { Plugins: Record<string, unknown> } & Record<string, unknown> } & Record<string, unknown> } & Record<string, unknown>;
}

/**
 * A storage document as sections for diffSections: each backend under its
 * name, and everything around the backends under "" (no backend is named
 * so), so that a change anywhere in the document counts.
 */
function storageSections(doc: StorageDoc): Sections {
  const el = doc.root.elos.EventLogging;
  const around = { ...doc, root: { ...doc.root, elos: { ...doc.root.elos, EventLogging: { ...el, Plugins: null } } } };
  return [['', around], ...Object.entries(el.Plugins)];
}

/** The part of a manager error about one backend (`backend "x": …` up to the next `; backend "`). */
function backendReason(error: string, name: string): string {
  const at = error.indexOf(`backend "${name}"`);
  const rest = error.slice(at);
  const end = rest.indexOf('; backend "', 1);
  return (end > 0 ? rest.slice(0, end) : rest).slice(0, 500);
}

/** The storage host's metrics, declared once per registry (src/metrics/per-registry.ts): a reload keeps them. */
const storageHostMetrics = perRegistry((registry: Registry) => {
  const registers = [registry];
  return {
    excluded: new Gauge({
      name: 'peripety_storage_backend_excluded', help: '1 while a configured backend is left out because it failed to load or start (the agent runs without it)', labelNames: ['backend'], registers,
    }),
    degradedStarts: new Counter({
      name: 'peripety_storage_degraded_starts_total', help: 'Agent starts whose storage configuration did not start whole (backends left out, or no storage at all)', registers,
    }),
  };
});

export class StorageHost implements ReceiverSink {
  readonly name = 'storage';
  private readonly opts: StorageHostOptions;
  private readonly metrics: StorageMetrics;
  private current: StorageManager | null = null;
  /** backends a degraded start left out, with why */
  private excluded: ExcludedBackend[] = [];
  private readonly excludedGauge: Gauge<'backend'>;
  private readonly degradedStarts: Counter;
  /** the applied configuration, to skip a reload that changes nothing (null: none yet) */
  private applied: Sections | null = null;
  private generation = 0;

  constructor(opts: StorageHostOptions) {
    this.opts = opts;
    this.metrics = StorageMetrics.forRegistry(opts.registry);
    const m = storageHostMetrics(opts.registry);
    this.excludedGauge = m.excluded;
    this.degradedStarts = m.degradedStarts;
  }

  /**
   * Validate and apply a storage configuration (elos JSON text or object).
   * Returns null when it runs (or nothing changed), else why not — the
   * running manager, if any, is untouched then.
   */
  async apply(config: unknown, source: string): Promise<string | null> {
    const p = await this.prepare(config, source);
    if (!p.ok) return p.error;
    await this.commit(p);
    return null;
  }

  /**
   * The first half of apply(): validate, and start a new manager beside the
   * running one (nothing switches yet). `next` is null when the configuration
   * is the one running. Hand the result to commit() or discard().
   */
  async prepare(config: unknown, source: string): Promise<PreparedStorage> {
    const { log } = this.opts;
    const parsed = parseStorageConfig(config);
    if (!parsed.ok) return { ok: false, error: `${source}: ${parsed.error}` };
    const sections = storageSections((typeof config === 'string' ? JSON.parse(config) : config) as StorageDoc);
    const same = this.applied !== null && unchanged(diffSections(this.applied, sections));
    if (this.current && same && this.excluded.length === 0) {
      log.info({ source }, 'storage configuration unchanged');
      return { ok: true, next: null, sections, source, excluded: this.excluded };
    }
    // the configuration a degraded start runs without some of its backends: trying it again is a retry
    const retry = same && this.excluded.length > 0;
    const next = this.newManager();
    try {
      next.initialize(parsed.config);
      await next.start();
    } catch (err) {
      // start() cleaned up what it had started; free the rest
      await next.deleteMembers().catch(() => {});
      if (retry) {
        // still failing: keep running degraded, and let the rest of the reload apply
        log.warn({ source, err: (err as Error).message }, 'backends left out at start still do not start; storage keeps running without them');
        return { ok: true, next: null, sections, source, excluded: this.excluded };
      }
      return { ok: false, error: `${source}: ${(err as Error).message}` };
    }
    return { ok: true, next, sections, source, excluded: [] };
  }

  private newManager(): StorageManager {
    return new StorageManager({
      compile: compileFilter,
      builtins: BACKEND_SPECS,
      log: this.opts.log.child({ storage: this.generation + 1 }),
      metrics: this.metrics,
      stateDir: this.opts.stateDir,
      hostname: this.opts.hostname,
      env: this.opts.env,
      secrets: this.opts.secrets,
      confineToStateDir: this.opts.confineToStateDir,
    });
  }

  /** Switch to a prepared manager at once (synchronously), then stop the old one; resolves when it stopped. */
  commit(p: PreparedStorage & { ok: true }): Promise<void> {
    const { log } = this.opts;
    if (p.next === null) return Promise.resolve();
    const old = this.current;
    const next = p.next;
    this.current = next;
    this.applied = p.sections;
    this.generation++;
    this.setExcluded(p.excluded);
    for (const b of next.status().backends) {
      for (const pr of b.filters.broken) log.warn({ backend: b.name, problem: pr }, 'storage filter skipped');
      if (b.filters.warning) log.warn({ backend: b.name }, b.filters.warning);
    }
    log.info({ source: p.source, generation: this.generation, backends: next.status().backends.map((b) => `${b.name}(${b.file}${b.started ? '' : `, ${b.run}`})`) }, 'storage manager started');
    return old ? this.retire(old) : Promise.resolve();
  }

  /** Throw a prepared manager away (the reload it belonged to failed elsewhere). */
  async discard(p: PreparedStorage): Promise<void> {
    if (p.ok && p.next) await this.retire(p.next);
  }

  /**
   * At start: apply the configuration, and when backends fail to load or
   * start, run without them instead of not at all (a corrupt file, a full
   * disk, a deleted Secret must not keep the agent from collecting and
   * delivering to everything else). The backends left out are reported in
   * excluded (readiness, status, metrics). Returns null when every backend
   * runs, else the error of the full configuration: fatal when the file
   * itself is invalid (a configuration error, which ends the start).
   */
  async applyDegraded(config: unknown, source: string): Promise<{ error: string; fatal: boolean } | null> {
    const first = await this.prepare(config, source);
    if (first.ok) {
      await this.commit(first);
      return null;
    }
    const parsed = parseStorageConfig(config);
    // an invalid file is the operator's error, fatal like any other configuration error: nothing to degrade to
    if (!parsed.ok) return { error: first.error, fatal: true };
    const doc = (typeof config === 'string' ? JSON.parse(config) : config) as StorageDoc;
    const excluded: ExcludedBackend[] = [];
    let error = first.error;
    // Each round leaves out the backends the last error names (the manager
    // says `backend "<name>"`; names are [A-Za-z0-9_-], so the match is exact).
    for (let round = 0; round < 8; round++) {
      const names = [...new Set([...error.matchAll(/backend "([A-Za-z0-9_-]+)"/g)].map((m) => m[1]!))];
      const plugins = doc.root.elos.EventLogging.Plugins;
      const fresh = names.filter((n) => Object.hasOwn(plugins, n) && !excluded.some((e) => e.name === n));
      if (fresh.length === 0) break;
      for (const n of fresh) excluded.push({ name: n, reason: backendReason(error, n) });
      const rest = Object.fromEntries(Object.entries(plugins).filter(([n]) => !excluded.some((e) => e.name === n)));
      const reduced = { ...doc, root: { ...doc.root, elos: { ...doc.root.elos, EventLogging: { ...doc.root.elos.EventLogging, Plugins: rest } } } };
      const p = await this.prepare(reduced, `${source} without ${excluded.map((e) => e.name).join(', ')}`);
      if (p.ok) {
        // the applied configuration stays the full one: a reload of the same file retries the failed backends
        await this.commit({ ...p, excluded, sections: storageSections(doc) });
        this.degradedStarts.inc();
        this.opts.log.error({ source, excluded }, 'storage started without the backends that failed; the agent runs degraded (see /readyz)');
        return { error: first.error, fatal: false };
      }
      error = p.error;
    }
    this.setExcluded(Object.keys(doc.root.elos.EventLogging.Plugins).map((n) => excluded.find((e) => e.name === n) ?? { name: n, reason: error }));
    this.applied = storageSections(doc); // a reload of the same configuration retries it
    this.degradedStarts.inc();
    this.opts.log.error({ source, err: error }, 'storage could not start at all; the agent runs without storage (see /readyz)');
    return { error: first.error, fatal: false };
  }

  /** Backends left out at start because they failed (empty when all run). */
  get excludedBackends(): readonly ExcludedBackend[] {
    return this.excluded;
  }

  private setExcluded(list: readonly ExcludedBackend[]): void {
    for (const e of this.excluded) this.excludedGauge.remove(e.name);
    this.excluded = [...list];
    for (const e of this.excluded) this.excludedGauge.labels(e.name).set(1);
  }

  private async retire(m: StorageManager): Promise<void> {
    try {
      await m.stop();
      await m.deleteMembers();
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message }, 'the previous storage manager did not stop cleanly');
    }
  }

  deliver(ev: StorageEvent, ack: Ack): boolean {
    return this.current !== null && this.current.deliver(ev, ack);
  }

  /** Kernel records may be read again into storage now (StorageManager.replayReady). */
  replayReady(): boolean {
    return this.current?.replayReady() ?? false;
  }

  get running(): boolean {
    return this.current?.currentState === 'running';
  }

  findEvents(query: EventQuery, backend?: string): Promise<QueryResult> {
    if (!this.current) return Promise.reject(new Error('no storage manager is running'));
    return this.current.findEvents(query, backend);
  }

  status(): StorageStatus | null {
    return this.current?.status() ?? null;
  }

  private runningManager(what: string): StorageManager {
    if (!this.current) throw new StorageError('WRONG_STATE', `storage: cannot ${what}: no storage manager is running`);
    return this.current;
  }

  /**
   * One backend's lifecycle command on the running manager (POST
   * /v1/backends/{name}:{action}); restart = stop, then start. Resolves with
   * the backend's status afterwards; throws StorageError.
   */
  async backendCommand(name: string, action: 'start' | 'stop' | 'restart'): Promise<BackendStatus> {
    const m = this.runningManager(`${action} backend "${name}"`);
    if (action !== 'start') await m.stopBackend(name);
    if (action !== 'stop') await m.startBackend(name);
    const b = m.status().backends.find((x) => x.name === name);
    if (!b) throw new StorageError('UNKNOWN_BACKEND', `storage: no backend named "${name}"`);
    return b;
  }

  /** Write out what the backends (or the named one) queued and spooled, waiting at most `timeoutMs`; throws StorageError. */
  flush(timeoutMs: number, name?: string): Promise<BackendFlushResult[]> {
    try {
      return this.runningManager('flush').flush(timeoutMs, name);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Start again the `Run: always` backends that a stop command left stopped
   * (a reload restores the configured state; a changed configuration got a
   * new manager, which started them anyway). Resolves with their names.
   */
  async restoreBackends(): Promise<string[]> {
    const m = this.runningManager('restore the backends');
    const stopped = m.status().backends.filter((b) => b.run === 'always' && b.loaded && !b.started).map((b) => b.name);
    for (const name of stopped) await m.startBackend(name);
    return stopped;
  }

  /** Flush every backend and stop. */
  async stop(): Promise<void> {
    const m = this.current;
    this.current = null;
    if (m) await this.retire(m);
  }
}
