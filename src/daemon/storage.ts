// The StorageManager as one receiver on the bus that survives reloads.
// Applying a storage configuration starts a NEW manager and switches to it
// only once it started; the old one then stops (flushing what it accepted).
// If the new one fails, the old one keeps running (STORAGE.md §2).
import type { Registry } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';
import { compileFilter } from '../filter/index.ts';
import type { Logger } from '../log/logger.ts';
import { BUILTIN_BACKENDS } from '../storage/backends/index.ts';
import { parseStorageConfig } from '../storage/config.ts';
import { type BackendFlushResult, type BackendStatus, StorageError, StorageManager, type StorageStatus } from '../storage/manager.ts';
import { StorageMetrics } from '../storage/metrics.ts';
import type { EventQuery, QueryResult, SecretResolver } from '../storage/types.ts';
import type { ReceiverSink } from './bus.ts';

export interface StorageHostOptions {
  log: Logger;
  registry: Registry;
  stateDir: string;
  hostname: string;
  env?: NodeJS.ProcessEnv;
  /** reads Secrets for backends (Kubernetes mode: the agent's namespace, src/k8s/secrets.ts); absent standalone */
  secrets?: SecretResolver;
}

export class StorageHost implements ReceiverSink {
  readonly name = 'storage';
  private readonly opts: StorageHostOptions;
  private readonly metrics: StorageMetrics;
  private current: StorageManager | null = null;
  /** the applied configuration, to skip a reload that changes nothing */
  private appliedKey = '';
  private generation = 0;

  constructor(opts: StorageHostOptions) {
    this.opts = opts;
    this.metrics = StorageMetrics.forRegistry(opts.registry);
  }

  /**
   * Validate and apply a storage configuration (elos JSON text or object).
   * Returns null when it runs (or nothing changed), else why not — the
   * running manager, if any, is untouched then.
   */
  async apply(config: unknown, source: string): Promise<string | null> {
    const { log } = this.opts;
    const parsed = parseStorageConfig(config);
    if (!parsed.ok) return `${source}: ${parsed.error}`;
    const key = JSON.stringify(typeof config === 'string' ? JSON.parse(config) : config);
    if (this.current && key === this.appliedKey) {
      log.info({ source }, 'storage configuration unchanged');
      return null;
    }
    const next = new StorageManager({
      compile: compileFilter,
      builtins: BUILTIN_BACKENDS,
      log: log.child({ storage: this.generation + 1 }),
      metrics: this.metrics,
      stateDir: this.opts.stateDir,
      hostname: this.opts.hostname,
      env: this.opts.env,
      secrets: this.opts.secrets,
    });
    try {
      next.initialize(parsed.config);
      await next.start();
    } catch (err) {
      // start() cleaned up what it had started; free the rest
      await next.deleteMembers().catch(() => {});
      return `${source}: ${(err as Error).message}`;
    }
    const old = this.current;
    this.current = next;
    this.appliedKey = key;
    this.generation++;
    for (const b of next.status().backends) {
      for (const p of b.filters.broken) log.warn({ backend: b.name, problem: p }, 'storage filter skipped');
      if (b.filters.warning) log.warn({ backend: b.name }, b.filters.warning);
    }
    log.info({ source, generation: this.generation, backends: next.status().backends.map((b) => `${b.name}(${b.file}${b.started ? '' : `, ${b.run}`})`) }, 'storage manager started');
    if (old) await this.retire(old);
    return null;
  }

  private async retire(m: StorageManager): Promise<void> {
    try {
      await m.stop();
      await m.deleteMembers();
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message }, 'the previous storage manager did not stop cleanly');
    }
  }

  deliver(ev: StorageEvent, done: (lost?: boolean) => void): boolean {
    return this.current !== null && this.current.deliver(ev, done);
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
