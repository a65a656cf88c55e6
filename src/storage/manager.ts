// The StorageManager (docs/storage.md "The StorageManager"): a receiver on the event bus that
// persists events into storage backends, each of which takes only what its
// filters select. The lifecycle is the elos StorageManager's (seed):
// initialize(config) → start() → stop() → deleteMembers(); a manager whose
// stop or delete failed is never started or initialized again.
//
// Dependencies come by injection (the filter compiler, the built-in backend
// factories, metrics): the agent wires the real ones, tests pass small fakes.
//
// Acknowledgement (docs/architecture.md "Acknowledgement"): the manager
// releases the hold the bus gave it on the kernel record's ack, and the
// kernel read position only advances once every holder released. So it
// releases only when every backend that accepted the event acknowledged it:
// persisted (each backend's persist() says what that means: sqlite and
// postgres committed, jsonl written, memory in its ring), fsynced to its
// spool, or dropped and counted — lost, when a backend that must not lose
// events dropped it. Events no backend accepts are released at once.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Ack } from '../contracts/ack.ts';
import type { ReceiverSink } from '../contracts/receiver.ts';
import type { StorageEvent } from '../events/schema.ts';
import type { CompiledFilter } from '../filter/types.ts';
import type { Logger } from '../log/logger.ts';
import { type BackendSpec, isStorageConfig, parseStorageConfig, type RunMode, type StorageConfig } from './config.ts';
import { accepts, type CompileFn, describeFilterProblem, explainFailure, type FilterProblem, PluginFilterLoader } from './filters.ts';
import type { BackendMetrics, StorageMetrics } from './metrics.ts';
import type { Backend, BackendContext, BackendFactory, BackendHealth, BackendPlugin, EventQuery, QueryResult, SecretResolver } from './types.ts';
import { BackendWorker, type WorkerTuning } from './worker.ts';

export interface StorageManagerOptions {
  /** the filter compiler (src/filter) */
  compile: CompileFn;
  /** backends `File` may name directly (memory, jsonl, sqlite, postgres) */
  builtins: Readonly<Record<string, BackendPlugin<unknown>>>;
  log: Logger;
  /** shared by every manager on the agent's registry (StorageMetrics.forRegistry) */
  metrics: StorageMetrics;
  /** the agent's state directory: spools live in `<stateDir>/spool/<backend>/`, backends put default files there */
  stateDir: string;
  /** the node name (`%host%` in backend paths) */
  hostname: string;
  env?: NodeJS.ProcessEnv;
  /** Kubernetes mode: reads Secrets for backends (BackendContext.secret) */
  secrets?: SecretResolver;
  /** Kubernetes mode: backend files must stay inside stateDir (BackendContext.confineTo) */
  confineToStateDir?: boolean;
  /** queue, batching, retry and spool settings of every backend worker */
  worker?: Partial<WorkerTuning>;
  /** a backend's start() that takes longer fails the start (default 60 s) */
  backendStartTimeoutMs?: number;
  /** a backend's shutdown() that takes longer counts as failed (default 10 s) */
  backendShutdownTimeoutMs?: number;
  /** the receiver's name on the bus (default `storage`) */
  name?: string;
}

type ManagerState = 'new' | 'initialized' | 'starting' | 'running' | 'stopping' | 'stopped' | 'deleted' | 'failed';

type StorageErrorCode =
  | 'INVALID_CONFIG' // initialize: the EventLogging configuration is missing or invalid
  | 'WRONG_STATE' // the call does not fit the lifecycle (start before initialize, initialize while running, …)
  | 'FAILED_BEFORE' // an earlier stop or delete failed: the manager is done for
  | 'LOAD_FAILED' // start: a backend could not be loaded (File, module, Config)
  | 'START_FAILED' // start / startBackend: a backend's start() rejected
  | 'STOP_FAILED' // stop / deleteMembers / stopBackend: cleanup failed somewhere
  | 'UNKNOWN_BACKEND'
  | 'NOT_STARTED'; // findEvents / stopBackend on a backend that is not started

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
  }
}

export interface BackendStatus {
  name: string;
  file: string;
  run: RunMode;
  /** factory found, Config valid, instance created (false for Run: never) */
  loaded: boolean;
  /** started and receiving events */
  started: boolean;
  /** started and the last write succeeded */
  up: boolean;
  /** when it last started (ISO 8601), null while not started */
  startedAt: string | null;
  /** how often this manager started it (1 after the manager's start; a restart command adds 1) */
  starts: number;
  filters: {
    /** entries in `Filter` (0 when missing) */
    configured: number;
    valid: number;
    /** skipped entries, with why */
    broken: FilterProblem[];
    /** the filter setup itself failed (the backend receives nothing) */
    loadError: string | null;
    /** set when the backend can never receive an event */
    warning: string | null;
  };
  /** events a filter could not evaluate (not stored in this backend) */
  evalErrors: number;
  queueDepth: number;
  spoolBytes: number;
  dropped: number;
  /** the last load, start, shutdown or filter error; never carries credentials */
  lastError: string | null;
  /** the last persist or spool error of the running worker */
  writeError: string | null;
  health: BackendHealth;
}

/** One backend's part of a flush (StorageManager.flush). */
export interface BackendFlushResult {
  backend: string;
  /** its queue and spool were written out within the timeout */
  flushed: boolean;
  /** events written to the backend during the flush (from the queue and replayed from the spool) */
  written: number;
  /** events still in memory afterwards */
  queueDepth: number;
  /** bytes still in its spool afterwards */
  spoolBytes: number;
  /** when not flushed: the last write or spool error, if any */
  error: string | null;
}

export interface StorageStatus {
  state: ManagerState;
  /** why the manager is in state `failed` */
  failure: string | null;
  backends: BackendStatus[];
}

interface Slot {
  spec: BackendSpec;
  factory: BackendPlugin<unknown> | null;
  /** Config after the factory's schema */
  config: unknown;
  filters: readonly CompiledFilter[];
  filterProblems: FilterProblem[];
  filterWarning: string | null;
  filterLoadError: string | null;
  /** null: not created, or shut down */
  instance: Backend | null;
  worker: BackendWorker | null;
  started: boolean;
  startedAt: string | null;
  starts: number;
  evalErrors: number;
  lastExplainAt: number;
  lastError: string | null;
  metrics: BackendMetrics;
  untrack: (() => void) | null;
}

/** What deliver() walks: the started backends, in configuration order. */
interface Route {
  filters: readonly CompiledFilter[];
  worker: BackendWorker;
  slot: Slot;
}

const MODULE_EXT = /\.(?:m?js|m?ts)$/;
const EXPLAIN_INTERVAL_MS = 1000;
const MAX_ERROR_CHARS = 500;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Error text for status and logs: credentials in URLs and key=value pairs masked, length bounded. */
function sanitizeError(s: string): string {
  const masked = s
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@')
    .replace(/\b(password|passwd|pwd|secret|token|apikey|api_key)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1$2***');
  return masked.length <= MAX_ERROR_CHARS ? masked : `${masked.slice(0, MAX_ERROR_CHARS)}…`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(t);
      reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
}

/** Call a method of untrusted code: a synchronous throw becomes a rejection. */
function call<T>(f: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

/** Does it look like a BackendFactory (what a module must export)? */
function isBackendFactory(v: unknown): v is BackendFactory<unknown> {
  return isObject(v) && typeof v.file === 'string' && typeof v.create === 'function'
    && isObject(v.configSchema) && typeof v.configSchema.safeParse === 'function';
}

function isBackendPlugin(v: unknown): v is BackendPlugin<unknown> {
  return isObject(v) && typeof v.name === 'string' && typeof v.build === 'function'
    && isObject(v.options) && typeof v.options.safeParse === 'function';
}

/** A module's BackendFactory in the registry shape the built-in backends have. */
function moduleBackend(f: BackendFactory<unknown>, file: string): BackendPlugin<unknown> {
  return {
    name: f.file,
    description: `module backend ${file}`,
    options: f.configSchema,
    build: (name, config, ctx) => f.create(name, config, ctx),
    ...(f.durable !== undefined ? { durable: f.durable } : {}),
  };
}

function isBackend(v: unknown): v is Backend {
  return isObject(v) && ['start', 'persist', 'findEvents', 'shutdown', 'health'].every((k) => typeof v[k] === 'function');
}

/**
 * Resolve a module backend's `File` under PluginSearchPath. Refused: absolute
 * paths, `..` segments, anything whose real path (symlinks resolved) is
 * outside the search path's real path, and files that are not ES modules.
 */
async function resolveModulePath(searchPath: string, file: string): Promise<string> {
  if (file.includes('\0')) throw new Error(`File ${JSON.stringify(file)} contains a NUL byte`);
  if (path.isAbsolute(file)) throw new Error(`File "${file}" is an absolute path: module backends are named relative to PluginSearchPath`);
  if (file.split(/[\\/]/).includes('..')) throw new Error(`File "${file}" escapes PluginSearchPath ("..")`);
  if (!MODULE_EXT.test(file)) throw new Error(`File "${file}" is not an ES module file (.js, .mjs, .ts, .mts)`);
  let base: string;
  try {
    base = await realpath(searchPath);
  } catch (err) {
    throw new Error(`PluginSearchPath "${searchPath}" cannot be used: ${message(err)}`, { cause: err });
  }
  let real: string;
  try {
    real = await realpath(path.join(base, file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `no module "${file}" under PluginSearchPath "${searchPath}"` : `module "${file}": ${message(err)}`, { cause: err });
  }
  const rel = path.relative(base, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new Error(`File "${file}" resolves outside PluginSearchPath "${searchPath}" (symbolic link)`);
  }
  if (!MODULE_EXT.test(real)) throw new Error(`File "${file}" resolves to a file that is not an ES module (.js, .mjs, .ts, .mts)`);
  const st = await stat(real);
  if (!st.isFile()) throw new Error(`File "${file}" is not a regular file`);
  return real;
}

export class StorageManager implements ReceiverSink {
  readonly name: string;
  private readonly opts: StorageManagerOptions;
  private readonly log: Logger;
  private readonly filterLoader: PluginFilterLoader;
  private state: ManagerState = 'new';
  private failure: string | null = null;
  private config: StorageConfig | null = null;
  private slots: Slot[] = [];
  private routes: Route[] = [];
  /** lifecycle calls run one at a time */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: StorageManagerOptions) {
    this.opts = opts;
    this.name = opts.name ?? 'storage';
    this.log = opts.log;
    this.filterLoader = new PluginFilterLoader(opts.compile);
  }

  get currentState(): ManagerState {
    return this.state;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private assertNotFailed(what: string): void {
    if (this.state === 'failed') {
      throw new StorageError('FAILED_BEFORE', `storage: cannot ${what}: an earlier stop or delete of this manager failed (${this.failure ?? 'unknown'}); create a new manager`);
    }
  }

  private markFailed(why: string): void {
    this.state = 'failed';
    this.failure = sanitizeError(why);
  }

  // ---- lifecycle ----

  /**
   * Take a storage configuration: JSON text, the parsed elos object, or a
   * StorageConfig from parseStorageConfig. Throws INVALID_CONFIG when the
   * EventLogging configuration is missing or invalid (nothing changes then).
   */
  initialize(config: unknown): void {
    this.assertNotFailed('initialize');
    if (!['new', 'initialized', 'stopped', 'deleted'].includes(this.state)) {
      throw new StorageError('WRONG_STATE', `storage: cannot initialize while ${this.state}; stop first`);
    }
    let cfg: StorageConfig;
    if (isStorageConfig(config)) {
      cfg = config;
    } else {
      const r = parseStorageConfig(config);
      if (!r.ok) throw new StorageError('INVALID_CONFIG', r.error);
      cfg = r.config;
    }
    this.config = cfg;
    this.slots = [];
    this.state = 'initialized';
  }

  /**
   * Load every backend (Run: never is skipped), then start those with Run:
   * always. Fails (cleaning up what it did) when a backend cannot be loaded
   * or its start() rejects; broken or missing filters do not fail it.
   */
  start(): Promise<void> {
    return this.serial(() => this.doStart());
  }

  private async doStart(): Promise<void> {
    this.assertNotFailed('start');
    if (this.state !== 'initialized' && this.state !== 'stopped') {
      throw new StorageError('WRONG_STATE', this.state === 'running' ? 'storage: already running' : `storage: cannot start while ${this.state}; initialize first`);
    }
    const cfg = this.config!;
    this.state = 'starting';
    this.slots = [];
    const errors: string[] = [];
    for (const spec of cfg.backends) {
      const slot = this.newSlot(spec);
      this.slots.push(slot);
      if (spec.run === 'never') {
        this.log.info({ backend: spec.name }, 'storage backend skipped (Run: never)');
        continue;
      }
      try {
        await this.load(slot, cfg);
      } catch (err) {
        slot.lastError = sanitizeError(message(err));
        errors.push(`backend "${spec.name}": ${message(err)}`);
      }
    }
    if (errors.length > 0) {
      await this.abortStart();
      throw new StorageError('LOAD_FAILED', sanitizeError(`storage: ${errors.join('; ')}`));
    }
    const toStart = this.slots.filter((s) => s.spec.run === 'always');
    const results = await Promise.allSettled(toStart.map((s) => this.startInstance(s)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') errors.push(`backend "${toStart[i]!.spec.name}": start failed: ${message(r.reason)}`);
    });
    if (errors.length > 0) {
      await this.abortStart();
      throw new StorageError('START_FAILED', sanitizeError(`storage: ${errors.join('; ')}`));
    }
    for (const s of toStart) await this.startWorker(s);
    this.rebuildRoutes();
    this.state = 'running';
    this.log.info({ backends: toStart.map((s) => s.spec.name), loaded: this.slots.filter((s) => s.instance !== null).length }, 'storage manager started');
  }

  private newSlot(spec: BackendSpec): Slot {
    return {
      spec, factory: null, config: undefined, filters: [], filterProblems: [], filterWarning: null, filterLoadError: null,
      instance: null, worker: null, started: false, startedAt: null, starts: 0, evalErrors: 0, lastExplainAt: -Infinity, lastError: null,
      metrics: this.opts.metrics.backend(spec.name), untrack: null,
    };
  }

  /** Find the factory, validate Config, compile the filters, create the instance. */
  private async load(slot: Slot, cfg: StorageConfig): Promise<void> {
    const { spec } = slot;
    const factory = await this.findFactory(spec.file, cfg.pluginSearchPath);
    const parsed = factory.options.safeParse(spec.config);
    if (!parsed.success) {
      const issues = (parsed.error?.issues ?? []).slice(0, 3).map((i) => `${['Config', ...i.path.map(String)].join('.')}: ${i.message}`);
      throw new Error(`invalid Config: ${issues.length > 0 ? issues.join('; ') : message(parsed.error)}`);
    }
    slot.factory = factory;
    slot.config = parsed.data;
    this.loadFilters(slot);
    const instance = this.createInstance(slot);
    slot.instance = instance;
    slot.untrack = this.opts.metrics.track({
      name: spec.name,
      queueDepth: () => slot.worker?.depth ?? 0,
      spoolBytes: () => slot.worker?.spoolBytes ?? 0,
      up: () => slot.started && (slot.worker?.up ?? false),
    });
  }

  private createInstance(slot: Slot): Backend {
    const { spec } = slot;
    const ctx: BackendContext = {
      log: this.log.child({ backend: spec.name }),
      stateDir: this.opts.stateDir,
      hostname: this.opts.hostname,
      env: this.opts.env ?? process.env,
    };
    if (this.opts.secrets) ctx.secret = this.opts.secrets;
    if (this.opts.confineToStateDir) ctx.confineTo = this.opts.stateDir;
    let instance: unknown;
    try {
      instance = slot.factory!.build(spec.name, slot.config, ctx);
    } catch (err) {
      throw new Error(`creating the backend failed: ${message(err)}`, { cause: err });
    }
    if (!isBackend(instance)) throw new Error(`"${spec.file}" created something that is not a backend (start, persist, findEvents, shutdown, health)`);
    return instance;
  }

  private async findFactory(file: string, searchPath: string | null): Promise<BackendPlugin<unknown>> {
    const builtins = this.opts.builtins;
    if (Object.hasOwn(builtins, file)) {
      const f = builtins[file];
      if (!isBackendPlugin(f)) throw new Error(`built-in backend "${file}" is not a backend plugin (name, options, build)`);
      return f;
    }
    const known = Object.keys(builtins).join(', ') || 'none';
    if (!MODULE_EXT.test(file) && !file.includes('/')) {
      throw new Error(`unknown File "${file}": not a built-in backend (${known}) and not an ES module file (.js, .mjs, .ts, .mts)`);
    }
    if (searchPath === null) throw new Error(`File "${file}" is not a built-in backend (${known}) and no PluginSearchPath is configured`);
    const real = await resolveModulePath(searchPath, file);
    let mod: unknown;
    try {
      mod = await import(pathToFileURL(real).href);
    } catch (err) {
      throw new Error(`module "${file}" cannot be imported: ${message(err)}`, { cause: err });
    }
    if (isObject(mod)) {
      if (isBackendFactory(mod.default)) return moduleBackend(mod.default, file);
      if (isBackendFactory(mod.backend)) return moduleBackend(mod.backend, file);
    }
    throw new Error(`module "${file}" does not export a backend (default export or named export "backend": an object with file, configSchema and create)`);
  }

  private loadFilters(slot: Slot): void {
    const { spec } = slot;
    const r = this.filterLoader.load(spec.name, spec.filters);
    if (!r.ok) {
      // the setup failed: the backend is loaded and receives nothing, reported
      slot.filters = [];
      slot.filterLoadError = r.error;
      slot.lastError = sanitizeError(r.error);
      this.log.error({ backend: spec.name, err: r.error }, 'storage backend filters could not be loaded: it will never receive events');
      return;
    }
    slot.filters = r.filters;
    slot.filterProblems = [...r.problems];
    slot.filterWarning = r.warning;
    for (const p of r.problems) {
      slot.metrics.compileError();
      slot.lastError = sanitizeError(describeFilterProblem(p));
      this.log.warn({ backend: spec.name, index: p.index, filter: p.filter, position: p.position, token: p.token, err: p.message }, 'storage backend filter does not compile: skipped');
    }
    if (r.warning !== null) this.log.warn({ backend: spec.name }, r.warning);
  }

  private async startInstance(slot: Slot): Promise<void> {
    const inst = slot.instance!;
    try {
      await withTimeout(call(() => inst.start()), this.opts.backendStartTimeoutMs ?? 60_000, `backend "${slot.spec.name}" start`);
    } catch (err) {
      slot.lastError = sanitizeError(`start failed: ${message(err)}`);
      throw err;
    }
  }

  private async startWorker(slot: Slot): Promise<void> {
    const w = new BackendWorker({
      ...this.opts.worker,
      name: slot.spec.name,
      backend: slot.instance!,
      spoolDir: path.join(this.opts.stateDir, 'spool', slot.spec.name),
      // a backend that keeps events must not lose one silently: what it drops holds the kernel read position
      mustNotLose: slot.factory?.durable !== false,
      log: this.log.child({ backend: slot.spec.name }),
      metrics: slot.metrics,
    });
    await w.open();
    slot.worker = w;
    slot.started = true;
    slot.startedAt = new Date().toISOString();
    slot.starts++;
  }

  /** A start failed: shut down whatever was created. If even that fails, the manager is marked failed. */
  private async abortStart(): Promise<void> {
    const errors = await this.teardown(this.slots);
    this.routes = [];
    if (errors.length > 0) {
      this.markFailed(`cleanup after a failed start: ${errors.join('; ')}`);
      this.log.error({ err: this.failure }, 'storage manager: cleanup after a failed start failed');
    } else {
      this.state = 'initialized';
    }
  }

  /** Stop workers (flush or spool), shut instances down, forget filters; collect every error and go on. */
  private async teardown(slots: Slot[]): Promise<string[]> {
    const errors: string[] = [];
    for (const s of slots) s.filters = [];
    await Promise.all(slots.map(async (s) => {
      if (s.worker !== null) {
        try {
          await s.worker.stop();
        } catch (err) {
          errors.push(`backend "${s.spec.name}": stopping its queue failed: ${message(err)}`);
        }
        s.worker = null;
      }
      s.started = false;
      s.startedAt = null;
      if (s.instance !== null) {
        const inst = s.instance;
        try {
          await withTimeout(call(() => inst.shutdown()), this.opts.backendShutdownTimeoutMs ?? 10_000, `backend "${s.spec.name}" shutdown`);
          s.instance = null;
        } catch (err) {
          // kept: deleteMembers tries again
          s.lastError = sanitizeError(`shutdown failed: ${message(err)}`);
          errors.push(`backend "${s.spec.name}": shutdown failed: ${message(err)}`);
        }
      }
      s.untrack?.();
      s.untrack = null;
    }));
    return errors;
  }

  /**
   * Remove the filters (deliver() refuses events from now on), flush or spool
   * every queue, shut every backend down, going on after errors. If anything
   * failed, the manager is marked failed: it is never started or initialized
   * again. Calling it when nothing runs does nothing (after a failure it
   * retries the cleanup that is left).
   */
  stop(): Promise<void> {
    return this.serial(() => this.doStop());
  }

  private async doStop(): Promise<void> {
    if (this.state !== 'running' && this.state !== 'failed') return;
    const wasFailed = this.state === 'failed';
    if (!wasFailed) this.state = 'stopping';
    this.routes = [];
    const errors = await this.teardown(this.slots);
    if (errors.length > 0) {
      const why = errors.join('; ');
      if (!wasFailed) this.markFailed(`stop: ${why}`);
      this.log.error({ err: sanitizeError(why) }, 'storage manager: stop failed; this manager cannot be restarted');
      throw new StorageError('STOP_FAILED', sanitizeError(`storage: stop failed: ${why}`));
    }
    if (!wasFailed) this.state = 'stopped';
    this.log.info('storage manager stopped');
  }

  /** Free what remains (stopping first if still running). A failure marks the manager failed. */
  deleteMembers(): Promise<void> {
    return this.serial(async () => {
      if (this.state === 'running') {
        try {
          await this.doStop();
        } catch {
          // marked failed; what is left is retried below
        }
      }
      const errors = await this.teardown(this.slots);
      this.slots = [];
      this.routes = [];
      this.config = null;
      if (errors.length > 0) {
        const why = errors.join('; ');
        if (this.state !== 'failed') this.markFailed(`delete: ${why}`);
        throw new StorageError('STOP_FAILED', sanitizeError(`storage: delete failed: ${why}`));
      }
      if (this.state !== 'failed') this.state = 'deleted';
    });
  }

  // ---- lifecycle commands (Run: trigger) ----

  private slotNamed(name: string): Slot {
    const s = this.slots.find((x) => x.spec.name === name);
    if (!s) throw new StorageError('UNKNOWN_BACKEND', `storage: no backend named "${name}"`);
    return s;
  }

  /** Start a loaded backend that is not running (Run: trigger, or stopped by stopBackend). Starting a started one does nothing. */
  startBackend(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.state !== 'running') throw new StorageError('WRONG_STATE', `storage: cannot start backend "${name}" while the manager is ${this.state}`);
      const slot = this.slotNamed(name);
      if (slot.started) return;
      if (slot.factory === null) throw new StorageError('WRONG_STATE', `storage: backend "${name}" is not loaded (Run: ${slot.spec.run})`);
      if (slot.instance === null) {
        try {
          slot.instance = this.createInstance(slot);
        } catch (err) {
          slot.lastError = sanitizeError(message(err));
          throw new StorageError('LOAD_FAILED', sanitizeError(`storage: backend "${name}": ${message(err)}`));
        }
      }
      try {
        await this.startInstance(slot);
      } catch (err) {
        const inst = slot.instance;
        slot.instance = null;
        await withTimeout(call(() => inst.shutdown()), this.opts.backendShutdownTimeoutMs ?? 10_000, 'shutdown').catch(() => {});
        throw new StorageError('START_FAILED', sanitizeError(`storage: backend "${name}": start failed: ${message(err)}`));
      }
      slot.untrack ??= this.opts.metrics.track({
        name: slot.spec.name,
        queueDepth: () => slot.worker?.depth ?? 0,
        spoolBytes: () => slot.worker?.spoolBytes ?? 0,
        up: () => slot.started && (slot.worker?.up ?? false),
      });
      await this.startWorker(slot);
      this.rebuildRoutes();
      this.log.info({ backend: name }, 'storage backend started');
    });
  }

  /** Stop one backend: it receives nothing more, its queue is flushed (or spooled), it is shut down. */
  stopBackend(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.state !== 'running') throw new StorageError('WRONG_STATE', `storage: cannot stop backend "${name}" while the manager is ${this.state}`);
      const slot = this.slotNamed(name);
      if (!slot.started) return;
      slot.started = false;
      slot.startedAt = null;
      this.rebuildRoutes();
      const w = slot.worker;
      slot.worker = null;
      await w?.stop();
      const inst = slot.instance;
      slot.instance = null;
      if (inst !== null) {
        try {
          await withTimeout(call(() => inst.shutdown()), this.opts.backendShutdownTimeoutMs ?? 10_000, `backend "${name}" shutdown`);
        } catch (err) {
          slot.lastError = sanitizeError(`shutdown failed: ${message(err)}`);
          throw new StorageError('STOP_FAILED', sanitizeError(`storage: backend "${name}": shutdown failed: ${message(err)}`));
        }
      }
      this.log.info({ backend: name }, 'storage backend stopped');
    });
  }

  /**
   * Write what the started backends (or the named one) hold in their queues
   * and spools now, waiting at most `timeoutMs`; one result per backend.
   * Not on the lifecycle chain: a flush waits for backends, and a stop or
   * start must not wait behind it (a backend stopped meanwhile has flushed
   * as part of its stop).
   */
  async flush(timeoutMs: number, name?: string): Promise<BackendFlushResult[]> {
    if (this.state !== 'running') throw new StorageError('WRONG_STATE', `storage: cannot flush while the manager is ${this.state}`);
    let slots: Slot[];
    if (name !== undefined) {
      const s = this.slotNamed(name);
      if (!s.started) throw new StorageError('NOT_STARTED', `storage: backend "${name}" is not started (Run: ${s.spec.run})`);
      slots = [s];
    } else {
      slots = this.slots.filter((s) => s.started);
    }
    return Promise.all(slots.map(async (s): Promise<BackendFlushResult> => {
      const w = s.worker;
      if (w === null) return { backend: s.spec.name, flushed: true, written: 0, queueDepth: 0, spoolBytes: 0, error: null };
      const before = w.stats.persisted + w.stats.replayed;
      const flushed = await w.flush(timeoutMs);
      return {
        backend: s.spec.name,
        flushed,
        written: w.stats.persisted + w.stats.replayed - before,
        queueDepth: w.depth,
        spoolBytes: w.spoolBytes,
        error: flushed || w.lastError === null ? null : sanitizeError(w.lastError),
      };
    }));
  }

  private rebuildRoutes(): void {
    // copy-on-write: deliver() keeps walking the array it started with
    this.routes = this.slots
      .filter((s) => s.started && s.worker !== null && s.filters.length > 0)
      .map((s) => ({ filters: s.filters, worker: s.worker!, slot: s }));
  }

  // ---- the receiver ----

  /**
   * The bus hands an event over with a hold on its ack; never waits. Each
   * started backend whose filters accept it queues it; the hold is released
   * once all of them acknowledged (at once when none accepts). False only
   * when the manager is not running: then `ack` is not touched and the caller
   * counts the drop.
   */
  deliver(ev: StorageEvent, ack: Ack): boolean {
    if (this.state !== 'running') return false;
    const routes = this.routes;
    const shared = new SharedAck(ack);
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      const res = accepts(r.filters, ev);
      if (res === 'OK') {
        shared.retain();
        r.worker.enqueue(ev, shared);
      } else if (res === 'FAILED') {
        this.evalFailed(r, ev);
      }
    }
    shared.release();
    return true;
  }

  /**
   * Whether kernel records may be read again now (after a backend that must
   * not lose events dropped some and held the read position): running, at
   * least one such backend started (else a replay would only repeat the
   * events to the other receivers; the hold waits for one to start), and
   * every started one ready for them (writing successfully, queue not
   * backed up).
   */
  replayReady(): boolean {
    if (this.state !== 'running') return false;
    const holders = this.slots.filter((s) => s.started && s.worker !== null && s.worker.holdsPosition);
    return holders.length > 0 && holders.every((s) => s.worker!.readyForReplay);
  }

  private evalFailed(r: Route, ev: StorageEvent): void {
    const slot = r.slot;
    slot.evalErrors++;
    slot.metrics.evalError();
    // the details cost a second evaluation: at most once a second per backend
    const now = performance.now();
    if (now - slot.lastExplainAt < EXPLAIN_INTERVAL_MS) return;
    slot.lastExplainAt = now;
    const why = explainFailure(r.filters, ev);
    const text = why ? `filter ${why.index} ${JSON.stringify(why.filter)}: ${why.error}` : 'filter evaluation error';
    slot.lastError = sanitizeError(`event not stored: ${text}`);
    this.log.warn({ backend: slot.spec.name, event_type: ev.event_type, event_id: ev.event_id, err: text, errors: slot.evalErrors }, 'storage backend filter failed on an event: not stored in this backend');
  }

  // ---- queries and status ----

  /**
   * Query a backend: the named one, or else the first started backend in
   * configuration order. Events still queued or spooled are not visible yet.
   */
  findEvents(query: EventQuery, backendName?: string): Promise<QueryResult> {
    if (this.state !== 'running') return Promise.reject(new StorageError('WRONG_STATE', `storage: not running (${this.state})`));
    let slot: Slot | undefined;
    if (backendName !== undefined) {
      try {
        slot = this.slotNamed(backendName);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (!slot.started) return Promise.reject(new StorageError('NOT_STARTED', `storage: backend "${backendName}" is not started (Run: ${slot.spec.run})`));
    } else {
      slot = this.slots.find((s) => s.started);
      if (!slot) return Promise.reject(new StorageError('NOT_STARTED', 'storage: no backend is started'));
    }
    const inst = slot.instance!;
    return call(() => inst.findEvents(query));
  }

  status(): StorageStatus {
    return {
      state: this.state,
      failure: this.failure,
      backends: this.slots.map((s): BackendStatus => {
        let health: BackendHealth;
        if (s.spec.run === 'never') health = { ok: false, detail: 'Run: never' };
        else if (s.instance === null) health = { ok: false, detail: 'not loaded' };
        else if (!s.started) health = { ok: false, detail: 'not started' };
        else {
          try {
            health = s.instance.health();
            if (health.detail !== undefined) health = { ok: health.ok, detail: sanitizeError(health.detail) };
          } catch (err) {
            health = { ok: false, detail: sanitizeError(`health check failed: ${message(err)}`) };
          }
        }
        const w = s.worker;
        return {
          name: s.spec.name,
          file: s.spec.file,
          run: s.spec.run,
          loaded: s.factory !== null,
          started: s.started,
          up: s.started && (w?.up ?? false),
          startedAt: s.startedAt,
          starts: s.starts,
          filters: {
            configured: s.spec.filters?.length ?? 0,
            valid: s.filters.length,
            broken: [...s.filterProblems],
            loadError: s.filterLoadError,
            warning: s.filterWarning,
          },
          evalErrors: s.evalErrors,
          queueDepth: w?.depth ?? 0,
          spoolBytes: w?.spoolBytes ?? 0,
          dropped: w?.dropped ?? 0,
          lastError: s.lastError,
          writeError: w?.lastError != null ? sanitizeError(w.lastError) : null,
          health,
        };
      }),
    };
  }
}

/**
 * The manager's one hold on an event's ack, shared by the backends that
 * accepted the event: each retains it, and when the last one released, the
 * hold goes back to `ack` once — as lost when any backend lost the event. So
 * the kernel record sees one outcome per event from storage, as from any
 * other receiver, and an event costs one small object instead of a closure
 * per backend.
 */
class SharedAck implements Ack {
  /** starts with the manager's own hold, so the event cannot be released before every backend had its turn */
  private holds = 1;
  private anyLost = false;
  private readonly ack: Ack;

  constructor(ack: Ack) {
    this.ack = ack;
  }

  retain(): void {
    this.holds++;
  }

  release(): void {
    if (--this.holds === 0) this.end();
  }

  lost(): void {
    this.anyLost = true;
    if (--this.holds === 0) this.end();
  }

  private end(): void {
    if (this.anyLost) this.ack.lost();
    else this.ack.release();
  }
}
