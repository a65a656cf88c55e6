// The agent: builds collectors → bus → parsers → receivers from a
// configuration, swaps in a new configuration on reload (keeping the old one
// when the new one is invalid), and drains on stop.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { type Authenticator, loadOrCreateToken, StaticTokenAuthenticator } from '../api/auth.ts';
import type { EventsRequest } from '../api/query.ts';
import { ApiServer, type ControlAction, parseListen } from '../api/server.ts';
import { EventStreamHub } from '../api/stream.ts';
import type { PushedConfig } from '../contracts/pushed-config.ts';
import type { StorageEvent } from '../events/schema.ts';
import { compileFilter } from '../filter/compile.ts';
import { DEFAULT_STORAGE_CONFIG, parseStorageConfig, type StorageConfig } from '../storage/config.ts';
import { type BackendFlushResult, StorageError } from '../storage/manager.ts';
import type { SecretResolver } from '../storage/types.ts';
import { type AgentConfig } from '../config/schema.ts';
import { diffSections, type Sections, unchanged } from '../config/diff.ts';
import { loadConfig } from '../config/load.ts';
import { SysfsResolver } from '../device/resolver.ts';
import { POSITION_FILE } from '../kmsg/position.ts';
import {
  ensurePrivateDir, MAX_APPLIED_FILE_BYTES, MAX_STATE_FILE_BYTES, MAX_STORAGE_CONFIG_BYTES, MAX_TOML_CONFIG_BYTES, privatizeTree, PRIVATE_FILE_MODE, readRegularFile, tightenMode,
  UnsafePathError, writePrivateFileAtomic,
} from '../fsutil/safe-files.ts';
import type { Logger } from '../log/logger.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { Bus, type ParserInstance } from './bus.ts';
import { bootEpochUs } from './clock.ts';
import type { Ack } from '../contracts/ack.ts';
import { type PreparedStorage, StorageHost } from './storage.ts';
import { FsUuidMemory } from './synthesize.ts';
import type { Collector, CollectorDeps, CollectorSink } from '../contracts/collector.ts';
import { done, fail, type Failure, type Outcome } from '../contracts/outcome.ts';
import { degradedBackendLine } from '../contracts/lease.ts';
import { lookupPluginSchema, pluginNames } from '../config/plugins.ts';
import { collectorClashes, COLLECTOR_SPECS, PARSER_SPECS } from './plugins.ts';
import { createReceivers, eventHostname } from './receivers.ts';
import { buildPlugin, pluginNamed } from '../contracts/plugin.ts';

export interface AgentOptions {
  log: Logger;
  metrics: AgentMetrics;
  /** --state-dir: overrides [main] state_dir */
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
  /** --node-name (Kubernetes mode): the node this agent speaks for; wins over $NODE_NAME */
  nodeName?: string;
  /** --storage-config: the elos JSON text and where it came from; default: DEFAULT_STORAGE_CONFIG */
  storageConfig?: { text: string; source: string };
  /** the TOML text `start(config)` was parsed from (plugin start/stop edit it; a failed push rolls back to it) */
  configText?: string;
  /**
   * --config and --storage-config: POST /v1/reload reads them again (without
   * them it applies configText and storageConfig again)
   */
  files?: { config?: string; storage?: string };
  /** the control API's authenticator (Kubernetes: TokenReview); default: the static token file */
  auth?: Authenticator;
  /** --api-listen-ip: bind the control API to this address instead of [main] api_listen's (same port) */
  apiListenIp?: string;
  /** reads Secrets for storage backends (Kubernetes mode: postgres ConnectionSecret); absent standalone */
  secrets?: SecretResolver;
  /**
   * Kubernetes mode: the local [main] section (TOML) that pushed plugin
   * sections are appended to; the pushed configuration is persisted in
   * <state_dir>/applied.json and the agent starts with it when present.
   */
  pushed?: { localMain: string };
  /** called after every applied push (and at start with a persisted one) */
  onApplied?: (applied: AppliedRef) => void;
}

export interface AppliedRef {
  generation: number;
  hash: string;
}

/** <state_dir>/applied.json */
export interface AppliedConfig extends AppliedRef {
  toml: string;
  storage: Record<string, unknown>;
}

export const APPLIED_FILE = 'applied.json';

/**
 * What the agent keeps in its state directory by default, made private at
 * start (nothing else there is touched): the sqlite database and its
 * siblings, the kmsg position, applied.json, the API token, the spools and
 * the default jsonl directory (with their temporary files).
 */
const STATE_ENTRIES = [
  'events.db', 'events.db-wal', 'events.db-shm', 'events.db-journal', POSITION_FILE, `${POSITION_FILE}.tmp`,
  APPLIED_FILE, `${APPLIED_FILE}.tmp`, 'api-token', 'spool', 'events',
];

/** The [main] section of a configuration text, as TOML (for the pushed sections to be appended to). */
export function mainSectionToml(text: string): string {
  const doc = parseToml(text);
  const main = doc.main ?? {};
  return stringifyToml({ main });
}

/** A pushed TOML plus the local [main]; throws ConfigError when the push carries a [main] of its own or does not parse. */
export function pushedConfigText(localMain: string, toml: string): string {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(toml);
  } catch (err) {
    throw new ConfigError(`toml: ${(err as Error).message.split('\n')[0]}`);
  }
  if (Object.hasOwn(doc, 'main')) throw new ConfigError('toml: a pushed configuration may not carry [main] (the agent keeps its own)');
  return `${localMain.trimEnd()}\n\n${toml}`;
}

/** Read <dir>/applied.json; null when absent, throws when it is not a valid record. */
export function readAppliedConfig(dir: string): AppliedConfig | null {
  const file = path.join(dir, APPLIED_FILE);
  let text: string;
  try {
    text = readRegularFile(file, 'applied configuration', { maxBytes: MAX_APPLIED_FILE_BYTES, noFollow: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  tightenMode(file, PRIVATE_FILE_MODE);
  const v = JSON.parse(text) as Partial<AppliedConfig>;
  if (typeof v.generation !== 'number' || !Number.isSafeInteger(v.generation) || v.generation < 1 || typeof v.hash !== 'string' || typeof v.toml !== 'string' || typeof v.storage !== 'object' || v.storage === null) {
    throw new Error(`${file}: not an applied configuration record`);
  }
  return { generation: v.generation, hash: v.hash, toml: v.toml, storage: v.storage };
}

/** Write <dir>/applied.json atomically (0600, fsync, rename). */
export function writeAppliedConfig(dir: string, applied: AppliedConfig): void {
  writePrivateFileAtomic(path.join(dir, APPLIED_FILE), `${JSON.stringify(applied)}\n`, 'applied configuration', { fsync: true });
}

interface Pipeline {
  config: AgentConfig;
  bus: Bus;
  receivers: QueuedReceiver[];
  resolver: SysfsResolver;
}

export class ConfigError extends Error {}

export function parseAgentConfig(text: string, source: string): AgentConfig {
  const res = loadConfig(text, lookupPluginSchema, pluginNames);
  if (!res.ok) throw new ConfigError(`${source}: ${res.error}`);
  const clash = collectorClashes(res.config);
  if (clash !== null) throw new ConfigError(`${source}: ${clash}`);
  return res.config;
}

export class Agent {
  private readonly opts: AgentOptions;
  private pipeline: Pipeline | null = null;
  private collectors: Collector[] = [];
  /** the collector sections the running collectors were started from (a reload restarts them when these change) */
  private collectorSections: Sections = [];
  private generation = 0;
  private stopping = false;
  /** a failed start: the kmsg position file as it was before the collectors ran (abortStart puts it back) */
  private positionToRestore: { file: string; saved: string | null } | null = null;
  /** survives reloads: what mount messages taught us */
  private readonly fsUuids = new FsUuidMemory();
  /** survives reloads: the StorageManager receiver (switched only by a storage configuration) */
  private storage: StorageHost | null = null;
  private api: ApiServer | null = null;
  private apiAddress: { host: string; port: number } | null = null;
  private started = false;
  /** survives reloads: live events for GET /v1/stream; idle (a counter) while nobody listens */
  private readonly stream: EventStreamHub;
  /** the configuration text running now (null: started from an object only) */
  private configText: string | null = null;
  /** the last applied push (Kubernetes mode) */
  private pushed: AppliedConfig | null = null;
  /** why storage did not start whole at start (kept for readiness) */
  private storageProblem: string | null = null;
  /** why the applied push could not start at start (the local configuration runs) */
  private pushProblem: string | null = null;
  /** set when a reload could not restore the collectors: nothing reads the kernel log */
  private collectorsDown: string | null = null;
  /** references the pipeline holds on collector acks (track) */
  private pipelineRefs = 0;
  private idleWaiters: (() => void)[] = [];
  /** pushes and commands run one at a time */
  private controlChain: Promise<unknown> = Promise.resolve();

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.stream = new EventStreamHub({ registry: opts.metrics.registry, log: opts.log });
  }

  get config(): AgentConfig | null {
    return this.pipeline?.config ?? null;
  }

  private stateDir(config: AgentConfig): string {
    return this.opts.stateDir ?? config.main.state_dir;
  }

  private hostname(config: AgentConfig): string {
    return eventHostname(config, this.opts.nodeName, this.opts.env);
  }

  private buildPipeline(config: AgentConfig): Pipeline {
    const { log, metrics } = this.opts;
    const main = config.main;
    const bootId = readBootId(main.boot_id_path);
    const resolver = new SysfsResolver({ sysfs: main.sysfs_root, dev: main.dev_root, mountinfo: main.mountinfo });
    const parsers: ParserInstance[] = config.plugins
      .filter((p) => p.enabled && p.type === 'parser')
      .map((p) => ({ name: p.name, parser: buildPlugin(pluginNamed(PARSER_SPECS, p.plugin)!, p.name, p.options, undefined), systems: p.filterSystems, filterType: p.filterType }));
    // a receiver that cannot be built fails the whole pipeline
    const receivers = createReceivers({ log, metrics, config, hostname: this.hostname(config) }, { builtin: true });
    const bus = new Bus({
      parsers,
      receivers: [...receivers, ...(this.storage ? [this.storage] : []), this.stream],
      metrics,
      log,
      contextWindowMs: main.context_window_ms,
      maxHeld: main.max_held,
      synth: {
        hostname: this.hostname(config),
        bootId,
        bootEpochUs: bootEpochUs(),
        resolver,
        source: '/dev/kmsg',
        onUnresolved: (system) => metrics.unresolved.labels(system).inc(),
        fsUuids: this.fsUuids,
      },
    });
    return { config, bus, receivers, resolver };
  }

  /**
   * `resume`: a kmsg collector resumes after the saved position whatever its
   * `start` says (a rollback continues where the stopped collector was,
   * instead of skipping to the end of the log).
   */
  private startCollectors(config: AgentConfig, opts: { resume?: boolean } = {}): void {
    const { log, metrics } = this.opts;
    const stateDir = this.stateDir(config);
    try {
      ensurePrivateDir(stateDir, 'the state directory');
    } catch (err) {
      throw new ConfigError(`cannot use the state directory ${stateDir}: ${(err as Error).message} (use --state-dir)`);
    }
    const bootId = readBootId(config.main.boot_id_path);
    const started: Collector[] = [];
    const sink: CollectorSink = {
      record: (rec, ack) => this.pipeline!.bus.ingest(rec, this.track(ack)),
      overrun: (lost, after, next, ack) => this.pipeline!.bus.overrun(lost, after, next, this.track(ack)),
      publish: (ev, ack, producer) => this.pipeline!.bus.publish(ev, this.track(ack), producer),
    };
    // A start that fails half-way must leave the saved kernel read position
    // as it was: a collector started before the failing one may have read
    // (and saved) already. Put the file back after stopping them.
    const positionFile = path.join(stateDir, POSITION_FILE);
    let savedPosition: string | null = null;
    try {
      savedPosition = readRegularFile(positionFile, 'the kmsg position', { maxBytes: MAX_STATE_FILE_BYTES, noFollow: true });
    } catch {
      // absent (or unreadable): nothing to put back
    }
    const deps: CollectorDeps = {
      stateDir, bootId, log, metrics, hostname: this.hostname(config), resolver: () => this.pipeline?.resolver ?? null,
      replayReady: () => this.storage?.replayReady() ?? false,
    };
    try {
      for (const p of config.plugins) {
        if (p.type !== 'collector' || !p.enabled) continue;
        const plugin = pluginNamed(COLLECTOR_SPECS, p.plugin);
        if (!plugin) throw new ConfigError(`[${p.name}]: no collector plugin named "${p.plugin}"`);
        const options = opts.resume && p.plugin === 'kmsg' ? { ...p.options, start: 'resume' } : p.options;
        const c = buildPlugin(plugin, p.name, options, { ...deps, sink });
        c.start();
        metrics.pluginUp.labels(p.name).set(c.up === false ? 0 : 1);
        started.push(c);
      }
    } catch (err) {
      for (const c of started) {
        c.stop();
        metrics.pluginUp.labels(c.name).set(0);
      }
      if (started.length > 0) {
        restorePosition(positionFile, savedPosition, log);
        // records the stopped collectors handed the pipeline may still be committed (and the
        // position saved) while a failed start winds down: abortStart puts it back once more
        this.positionToRestore = { file: positionFile, saved: savedPosition };
      }
      throw err;
    }
    this.collectors = started;
    this.collectorSections = collectorSections(config);
    this.collectorsDown = null;
  }

  /**
   * A collector's ack as the pipeline sees it: counts the references the
   * bus and the receivers hold, so a reload can wait until the old pipeline
   * finished what the stopped collectors handed it before the position is
   * saved and new collectors resume from it.
   */
  private track(ack: Ack): Ack {
    const released = (): void => {
      if (this.pipelineRefs === 0 && this.idleWaiters.length > 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    };
    return {
      retain: () => {
        this.pipelineRefs++;
        ack.retain();
      },
      release: () => {
        this.pipelineRefs--;
        ack.release();
        released();
      },
      // a holder that gave a must-not-lose event up (disk full) says so: the collector holds its position
      lost: () => {
        this.pipelineRefs--;
        ack.lost();
        released();
      },
    };
  }

  /** Until the pipeline holds no record of a collector (or `timeoutMs` passed); false on timeout. */
  private pipelineIdle(timeoutMs: number): Promise<boolean> {
    if (this.pipelineRefs <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((f) => f !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  private async stopCollectors(): Promise<void> {
    for (const c of this.collectors) {
      c.stop();
      this.opts.metrics.pluginUp.labels(c.name).set(0);
    }
  }

  /**
   * Start: everything that can be fatal comes first (state directory, API
   * token, API address), before anything reads the kernel log; then storage
   * (which degrades instead of failing: backends that cannot start are left
   * out and reported), the pipeline, and the collectors last. A fatal error
   * stops what was started and rejects (ConfigError); the saved kernel read
   * position is untouched then.
   */
  async start(config: AgentConfig): Promise<void> {
    this.configText = this.opts.configText ?? null;
    let storageConfig = this.opts.storageConfig;
    let fallback: { config: AgentConfig; text: string | null } | null = null;
    if (this.opts.pushed) {
      // Kubernetes mode: the last applied push, so the node runs its configuration even with the controller down
      const dir = this.stateDir(config);
      try {
        const applied = readAppliedConfig(dir);
        if (applied) {
          const text = pushedConfigText(this.opts.pushed.localMain, applied.toml);
          const persisted = parseAgentConfig(text, `${path.join(dir, APPLIED_FILE)} (generation ${applied.generation})`);
          const st = parseStorageConfig(applied.storage);
          if (!st.ok) throw new ConfigError(st.error);
          fallback = { config, text: this.configText };
          config = persisted;
          this.configText = text;
          storageConfig = { text: JSON.stringify(applied.storage), source: `${path.join(dir, APPLIED_FILE)} (generation ${applied.generation})` };
          this.pushed = applied;
          this.opts.log.info({ generation: applied.generation, hash: applied.hash }, 'starting with the last applied configuration');
        }
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message }, 'the persisted configuration is not usable; starting with the local one');
      }
    }
    for (const w of config.warnings) this.opts.log.warn(w);
    const stateDir = this.stateDir(config);
    try {
      ensurePrivateDir(stateDir, 'the state directory');
      // what an older version (or another tool) left readable: kernel messages and tokens are private
      const changed = privatizeTree(stateDir, STATE_ENTRIES);
      if (changed > 0) this.opts.log.warn({ stateDir, changed }, 'made files in the state directory private (0600/0700)');
    } catch (err) {
      throw new ConfigError(`cannot use the state directory ${stateDir}: ${(err as Error).message} (use --state-dir)`);
    }
    // Fatal checks first: the API token and address. Nothing runs yet.
    await this.startApi(config);
    try {
      this.storage = new StorageHost({ log: this.opts.log, registry: this.opts.metrics.registry, stateDir, hostname: this.hostname(config), env: this.opts.env, secrets: this.opts.secrets, confineToStateDir: this.opts.pushed !== undefined });
      const sc = storageConfig;
      const err = await this.storage.applyDegraded(sc ? sc.text : DEFAULT_STORAGE_CONFIG, sc ? sc.source : 'embedded default storage configuration');
      if (err?.fatal) throw new ConfigError(`storage: ${err.error}`);
      if (err) this.storageProblem = err.error;
      try {
        this.pipeline = this.buildPipeline(config);
      } catch (err) {
        // a persisted push whose receivers cannot be built (a file gone since): run the local configuration
        if (!fallback) throw err;
        this.opts.log.error({ err: (err as Error).message }, 'the persisted configuration does not start; starting with the local one');
        this.pushProblem = `the applied configuration (generation ${this.pushed?.generation}) does not start: ${(err as Error).message}`;
        config = fallback.config;
        this.configText = fallback.text;
        this.pipeline = this.buildPipeline(config);
      }
      this.startCollectors(config);
      this.markUp(this.pipeline);
    } catch (err) {
      await this.abortStart();
      throw err;
    }
    this.started = true;
    this.generation = 1;
    this.opts.metrics.configGeneration.set(this.generation);
    if (this.pushed) this.opts.onApplied?.({ generation: this.pushed.generation, hash: this.pushed.hash });
    this.opts.log.info({ plugins: config.plugins.filter((p) => p.enabled).map((p) => `${p.name}(${p.type}:${p.plugin})`), degraded: this.readinessProblems() }, 'agent started');
  }

  /** Undo a start that failed: stop what runs, without saving any read position. */
  private async abortStart(): Promise<void> {
    for (const c of this.collectors) c.stop();
    this.collectors = [];
    const p = this.pipeline;
    this.pipeline = null;
    if (p) {
      p.bus.drain();
      await Promise.all(p.receivers.map((r) => r.close(1000)));
    }
    await this.storage?.stop().catch(() => {});
    this.storage = null;
    await this.api?.stop().catch(() => {});
    this.api = null;
    if (this.positionToRestore) {
      restorePosition(this.positionToRestore.file, this.positionToRestore.saved, this.opts.log);
      this.positionToRestore = null;
    }
  }

  /** Mark every enabled parser and receiver of `p` up (a closed namesake of an older pipeline marked it down). */
  private markUp(p: Pipeline): void {
    const { metrics } = this.opts;
    for (const x of p.config.plugins) if (x.enabled && x.type === 'parser') metrics.pluginUp.labels(x.name).set(1);
    for (const r of p.receivers) metrics.pluginUp.labels(r.name).set(1);
  }

  /** Why the agent runs other than configured (empty when it does not): /readyz, /v1/status and the Lease say it. */
  get degraded(): string[] {
    return this.readinessProblems();
  }

  private readinessProblems(): string[] {
    const out: string[] = [];
    for (const e of this.storage?.excludedBackends ?? []) out.push(degradedBackendLine(e.name, e.reason));
    if (this.storage && !this.storage.running && this.storageProblem) out.push(`storage is not running: ${this.storageProblem}`);
    if (this.collectorsDown) out.push(this.collectorsDown);
    if (this.pushProblem) out.push(this.pushProblem);
    return out;
  }

  /** The last applied push, or null. */
  get applied(): AppliedRef | null {
    return this.pushed ? { generation: this.pushed.generation, hash: this.pushed.hash } : null;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.controlChain.then(fn, fn);
    this.controlChain = p.catch(() => {});
    return p;
  }

  /**
   * PUT /v1/config: validate the plugin sections (with the local [main]) and
   * the storage structure, then apply both or neither; persist on success.
   */
  applyPushed(push: PushedConfig): Promise<Outcome<PushResult>> {
    return this.serialized(async () => {
      const { log } = this.opts;
      if (!this.opts.pushed) return fail('unsupported', 'this agent does not take pushed configurations (not in Kubernetes mode)');
      if (!this.pipeline || this.stopping) return NOT_RUNNING;
      const cur = this.pushed;
      if (cur && push.generation < cur.generation) {
        return fail('conflict', `generation ${push.generation} is older than the applied generation ${cur.generation}`, { detail: { generation: cur.generation, hash: cur.hash } });
      }
      if (cur && push.generation === cur.generation && push.hash === cur.hash) {
        return done({ applied: true, generation: cur.generation, hash: cur.hash, unchanged: true });
      }
      const source = `pushed configuration (generation ${push.generation})`;
      let text: string;
      try {
        text = pushedConfigText(this.opts.pushed.localMain, push.toml);
        parseAgentConfig(text, source);
      } catch (err) {
        return fail('invalid', (err as Error).message);
      }
      const st = parseStorageConfig(push.storage);
      if (!st.ok) return fail('invalid', st.error);

      // a push is the controller's whole rendering of the node's CRs: an empty one is deliberate (no refuseEmpty)
      const err = await this.applyConfiguration({ text, source, storage: { doc: push.storage, source: `${source} storage` }, refuseEmpty: false });
      // the agent began to stop while the push was prepared: not a refusal of
      // the configuration (a 4xx the controller records) but unavailable, so
      // the controller pushes again to the agent that comes next
      if (err && this.stopping) return NOT_RUNNING;
      if (err) return fail('rejected', `applying the configuration failed (nothing changed): ${err}`, { state: { applied: false } });
      this.configText = text;
      const applied: AppliedConfig = { generation: push.generation, hash: push.hash, toml: push.toml, storage: push.storage };
      this.pushed = applied;
      this.pushProblem = null;
      try {
        writeAppliedConfig(this.stateDir(this.pipeline.config), applied);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cannot persist the applied configuration (it runs, but a restart without the controller would not have it)');
      }
      log.info({ generation: push.generation, hash: push.hash }, 'pushed configuration applied');
      this.opts.onApplied?.({ generation: push.generation, hash: push.hash });
      return done({ applied: true, generation: push.generation, hash: push.hash });
    });
  }

  /** POST /v1/{plugins,backends}/{name}:{action}. */
  runCommand(kind: 'plugins' | 'backends', name: string, action: ControlAction): Promise<Outcome<CommandResult>> {
    return this.serialized(async () => {
      if (!this.pipeline || this.stopping) return NOT_RUNNING;
      return kind === 'plugins' ? this.pluginCommand(name, action) : this.backendCommand(name, action);
    });
  }

  private async pluginCommand(name: string, action: ControlAction): Promise<Outcome<CommandResult>> {
    const config = this.pipeline!.config;
    const section = config.plugins.find((p) => p.name === name);
    if (!section) return fail('not-found', `no plugin section named "${name}"`);
    if (this.configText === null) return fail('unsupported', 'plugin commands need the configuration text, which this agent was not started with');
    const setEnabled = async (enabled: boolean): Promise<string | null> => {
      const doc = parseToml(this.configText!);
      const sec = doc[name] as Record<string, unknown>;
      if ((sec.enabled ?? true) === enabled) return null;
      sec.enabled = enabled;
      const text = stringifyToml(doc);
      const err = await this.reload(text, `${action} of plugin ${name}`);
      if (!err) this.configText = text;
      return err;
    };
    const steps = action === 'stop' ? [false] : action === 'start' ? [true] : section.enabled ? [false, true] : [true];
    for (const enabled of steps) {
      const err = await setEnabled(enabled);
      if (err) return fail('rejected', `${action} of plugin ${name} failed: ${err}`);
    }
    return done({ plugin: name, action, enabled: action !== 'stop' });
  }

  private async backendCommand(name: string, action: ControlAction): Promise<Outcome<CommandResult>> {
    if (!this.storage?.running) return STORAGE_NOT_RUNNING;
    try {
      const b = await this.storage.backendCommand(name, action);
      return done({ backend: name, action, started: b.started, startedAt: b.startedAt });
    } catch (err) {
      const f = storageFailure(err);
      if (f) return f;
      throw err;
    }
  }

  /**
   * Where POST /v1/reload takes the configuration from: the applied push
   * (Kubernetes mode, once there is one), else --config / --storage-config
   * read again, else the texts the agent started with. Throws ConfigError
   * when a file cannot be read.
   */
  private reloadSources(): { text: string; source: string; storage: string | object; storageSource: string } | null {
    if (this.opts.pushed && this.pushed) {
      const source = `the applied configuration (generation ${this.pushed.generation})`;
      return { text: pushedConfigText(this.opts.pushed.localMain, this.pushed.toml), source, storage: JSON.stringify(this.pushed.storage), storageSource: `${source} storage` };
    }
    // regular files only, bounded: a FIFO or /dev/zero named as configuration must not hang or fill memory
    const read = (file: string, maxBytes: number): string => {
      try {
        return readRegularFile(file, 'the configuration', { maxBytes });
      } catch (err) {
        if (err instanceof UnsafePathError) throw new ConfigError(err.message);
        throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const files = this.opts.files ?? {};
    const text = files.config !== undefined ? read(files.config, MAX_TOML_CONFIG_BYTES) : this.opts.configText;
    if (text === undefined) return null;
    const sc = this.opts.storageConfig;
    return {
      text,
      source: files.config ?? 'the configuration the agent started with',
      storage: files.storage !== undefined ? read(files.storage, MAX_STORAGE_CONFIG_BYTES) : (sc?.text ?? DEFAULT_STORAGE_CONFIG),
      storageSource: files.storage ?? sc?.source ?? 'embedded default storage configuration',
    };
  }

  /**
   * POST /v1/reload: apply the current configuration again — the plugin
   * sections as a new pipeline (parsers and receivers are rebuilt; plugins a
   * command stopped or started are back as configured; collectors restart
   * only when their sections changed, since restarting an unchanged kmsg
   * collector could only skip or repeat records), the storage configuration
   * (a new manager only when it changed), and `Run: always` backends a
   * command stopped are started again. Both parts are validated before
   * anything changes; storage that cannot start rolls the plugins back.
   */
  reloadConfig(): Promise<Outcome<ReloadResult>> {
    return this.serialized(async () => {
      const { log } = this.opts;
      if (!this.pipeline || !this.storage || this.stopping) return NOT_RUNNING;
      const refused = (error: string): Failure => fail('rejected', `${error} (nothing changed)`, { state: { reloaded: false } });
      let src: ReturnType<Agent['reloadSources']>;
      try {
        src = this.reloadSources();
        if (src === null) return fail('unsupported', 'this agent was started without a configuration text; there is nothing to reload');
        parseAgentConfig(src.text, src.source);
      } catch (err) {
        return refused((err as Error).message);
      }
      let storageDoc: unknown = src.storage;
      try {
        if (typeof src.storage === 'string') storageDoc = JSON.parse(src.storage);
      } catch (err) {
        return refused(`${src.storageSource}: not JSON: ${(err as Error).message.slice(0, 200)}`);
      }
      // the text, when there is one: its duplicate keys are checked there
      const st = parseStorageConfig(typeof src.storage === 'string' ? src.storage : storageDoc);
      if (!st.ok) return refused(`${src.storageSource}: ${st.error}`);

      // Standalone files can be caught half-written: an empty one is refused unless
      // [main] allow_empty. Kubernetes mode is exempt: pushes are whole by
      // construction, and until the first one the local file is [main] only on purpose.
      const err = await this.applyConfiguration({ text: src.text, source: src.source, storage: { doc: storageDoc, source: src.storageSource }, refuseEmpty: !this.opts.pushed });
      if (err) return refused(err);
      this.configText = src.text;
      const body = { reloaded: true as const, generation: this.pushed?.generation ?? 0, hash: this.pushed?.hash ?? null, reloads: this.generation, source: src.source };
      try {
        const restarted = await this.storage.restoreBackends();
        log.info({ source: src.source, reloads: this.generation, backendsStarted: restarted }, 'configuration reloaded on request');
        return done({ ...body, backendsStarted: restarted });
      } catch (err) {
        if (!storageFailure(err)) throw err;
        return fail('failed', `reloaded, but starting a stopped backend again failed: ${(err as Error).message}`, { state: body });
      }
    });
  }

  /**
   * POST /v1/flush and /v1/backends/{name}:flush: wait (at most `timeoutMs`)
   * until the backends wrote what they queued and spooled. Not serialized
   * with pushes and commands: it changes nothing, and a push must not wait
   * behind a flush of a backend that is down.
   */
  async flushStorage(backend: string | null, timeoutMs: number): Promise<Outcome<FlushResult>> {
    if (!this.pipeline || this.stopping) return NOT_RUNNING;
    if (!this.storage?.running) return STORAGE_NOT_RUNNING;
    let results: BackendFlushResult[];
    try {
      results = await this.storage.flush(timeoutMs, backend ?? undefined);
    } catch (err) {
      const f = storageFailure(err);
      if (f) return f;
      throw err;
    }
    const late = results.filter((r) => !r.flushed);
    const body = { flushed: late.length === 0, timeoutMs, backends: results };
    if (late.length === 0) return done(body);
    // the flush did not finish in time; nothing is lost, the rest is written later
    return fail('timeout', `${late.length} of ${results.length} backend(s) did not write everything within ${timeoutMs} ms: ${late.map((r) => r.backend).slice(0, 10).join(', ')}`, { state: body });
  }

  private async startApi(config: AgentConfig): Promise<void> {
    let listen = config.main.api_listen;
    if (listen === 'off') return;
    // In a DaemonSet the node's address is known only at run time ($(NODE_IP)),
    // and a TOML file cannot say it; binding it alone keeps the API off the
    // node's other networks.
    const ip = this.opts.apiListenIp;
    if (ip) listen = `${ip.includes(':') ? `[${ip}]` : ip}:${parseListen(listen).port}`;
    const tokenFile = config.main.api_token_file ?? path.join(this.stateDir(config), 'api-token');
    let auth = this.opts.auth;
    if (!auth) {
      try {
        auth = new StaticTokenAuthenticator(loadOrCreateToken(tokenFile));
      } catch (err) {
        throw new ConfigError(`[main] api_token_file: ${(err as Error).message}`);
      }
    }
    this.api = new ApiServer({
      listen,
      auth,
      log: this.opts.log,
      handlers: {
        registry: this.opts.metrics.registry,
        readiness: () => {
          const reasons: string[] = [];
          if (!this.started || this.stopping) reasons.push(this.stopping ? 'stopping' : 'starting');
          if (!this.storage?.running && !this.storageProblem) reasons.push('the storage manager is not running');
          // degraded (a backend left out, collectors down): running, but not as configured
          reasons.push(...this.readinessProblems());
          return { ready: reasons.length === 0, reasons };
        },
        status: () => ({
          generation: this.pushed?.generation ?? 0,
          hash: this.pushed?.hash ?? null,
          reloads: this.generation,
          plugins: (this.pipeline?.config.plugins ?? []).map((p) => ({ name: p.name, type: p.type, plugin: p.plugin, enabled: p.enabled })),
          storage: this.storage?.status() ?? null,
          // what runs differently from the configuration, and why (empty when nothing)
          degraded: this.readinessProblems(),
          excludedBackends: this.storage?.excludedBackends ?? [],
        }),
        queryEvents: (req) => this.queryEvents(req),
        stream: this.stream,
        control: {
          pushConfig: (push) => this.applyPushed(push),
          command: (kind, name, action) => this.runCommand(kind, name, action),
          reload: () => this.reloadConfig(),
          flush: (backend, timeoutMs) => this.flushStorage(backend, timeoutMs),
        },
      },
    });
    try {
      this.apiAddress = await this.api.start();
    } catch (err) {
      this.api = null;
      throw new ConfigError(`[main] api_listen ${listen}: ${(err as Error).message}`);
    }
  }

  /** Where the API listens (tests use port 0). */
  get apiListen(): { host: string; port: number } | null {
    return this.apiAddress;
  }

  private async queryEvents(req: EventsRequest): Promise<Outcome<{ events: StorageEvent[]; isTruncated: boolean }>> {
    let filter = null;
    if (req.filter !== null) {
      const c = compileFilter(req.filter);
      if (!c.ok) return fail('invalid', `filter: ${c.error.message} (position ${c.error.position}, token ${JSON.stringify(c.error.token)})`);
      filter = c.filter;
    }
    if (!this.storage) return STORAGE_NOT_RUNNING;
    try {
      return done(await this.storage.findEvents({ filter, newest: req.newest, oldest: req.oldest, limit: req.limit }, req.backend ?? undefined));
    } catch (err) {
      // a wrong state of the backend queried, not of the agent (WRONG_STATE is a command's)
      if (err instanceof StorageError && (err.code === 'UNKNOWN_BACKEND' || err.code === 'NOT_STARTED')) return storageFailure(err)!;
      throw err;
    }
  }

  /** Apply a new storage configuration (elos JSON text or object); on error keep the running one and return the error. */
  async reloadStorage(text: unknown, source: string): Promise<string | null> {
    if (!this.storage) return 'the agent is not running';
    const err = await this.storage.apply(text, source);
    if (err) {
      this.opts.metrics.configReloads.labels('failed').inc();
      this.opts.log.error({ err }, 'storage configuration rejected; keeping the running storage manager');
    }
    return err;
  }

  /** Apply a new configuration text (the plugin sections); on any error keep the running one and return the error. */
  reload(text: string, source: string): Promise<string | null> {
    return this.applyConfiguration({ text, source, refuseEmpty: false });
  }

  /**
   * Apply a configuration text, and with it a storage configuration, whole or
   * not at all. The new pipeline (parsers, receivers) and the new storage
   * manager are built beside the running ones; only when everything is up —
   * including collectors whose sections changed — does the agent switch, in
   * one step. When anything fails, what was built is torn down and the
   * running configuration stays exactly as it was. Never rejects: the error
   * is the result.
   */
  private async applyConfiguration(change: { text: string; source: string; storage?: { doc: unknown; source: string }; refuseEmpty: boolean }): Promise<string | null> {
    const { log, metrics } = this.opts;
    const refuse = (err: string): string => {
      metrics.configReloads.labels('failed').inc();
      log.error({ err, source: change.source }, 'configuration rejected; keeping the running configuration');
      return err;
    };
    const old = this.pipeline;
    if (!old || !this.storage) return refuse('the agent is not running');
    let config: AgentConfig;
    try {
      config = parseAgentConfig(change.text, change.source);
    } catch (err) {
      return refuse((err as Error).message);
    }
    // an empty or cut-off file first: its [main] is gone too, and "needs a restart" would mislead
    if (change.refuseEmpty && !config.main.allow_empty) {
      const enabled = (type: string) => config.plugins.some((p) => p.type === type && p.enabled);
      const missing = ['collector', 'receiver'].filter((t) => !enabled(t));
      if (missing.length > 0) {
        return refuse(`${change.source}: no enabled ${missing.join(' and no enabled ')} section (an empty or cut-off file?); set [main] allow_empty = true to run like that`);
      }
    }
    const restart = restartOnlyChanges(old.config.main, config.main, this.opts.stateDir !== undefined);
    if (restart.length > 0) {
      return refuse(`${change.source}: ${restart.map((k) => `[main] ${k}`).join(', ')} changed: that needs a restart of the agent (nothing changed; restart it, or put the old value back)`);
    }
    let storageSpec: StorageConfig | null = null;
    if (change.storage) {
      const st = parseStorageConfig(change.storage.doc);
      if (!st.ok) return refuse(`${change.storage.source}: ${st.error}`);
      storageSpec = st.config;
      if (change.refuseEmpty && !config.main.allow_empty && st.config.backends.length === 0) {
        return refuse(`${change.storage.source}: no storage backend (an empty or cut-off file?); set [main] allow_empty = true to run without storage`);
      }
    }
    for (const w of config.warnings) log.warn(w);

    let next: Pipeline;
    try {
      next = this.buildPipeline(config);
    } catch (err) {
      this.forgetPlugins(config, old);
      return refuse((err as Error).message);
    }
    const storage = this.storage;
    let prepared: PreparedStorage | null = null;
    // Undo what this change built beside the running configuration (the
    // storage manager prepared, the new pipeline) and refuse it; nothing
    // running was touched.
    const rollback = async (err: string): Promise<string> => {
      if (prepared) await storage.discard(prepared);
      await Promise.all(next.receivers.map((r) => r.close(0)));
      this.forgetPlugins(config, old);
      return refuse(err);
    };
    if (change.storage && storageSpec) {
      prepared = await storage.prepare(change.storage.doc, change.storage.source);
      if (!prepared.ok) return rollback(prepared.error);
    }
    if (this.pipeline !== old || this.stopping) {
      // (cannot happen: reloads are serialized; stop() waits for them)
      return rollback('the agent changed while the configuration was prepared');
    }

    const restartCollectors = !unchanged(diffSections(this.collectorSections, collectorSections(config))) || this.stateDir(config) !== this.stateDir(old.config) || this.collectorsDown !== null;
    if (restartCollectors) {
      // Hand over the read position: stop reading, let the running pipeline
      // finish what it holds, save the position; the new collectors resume
      // right after it (nothing skipped, nothing read twice).
      await this.stopCollectors();
      old.bus.drain();
      if (!(await this.pipelineIdle(RELOAD_DRAIN_MS))) log.warn({ waitedMs: RELOAD_DRAIN_MS }, 'reload: the pipeline did not finish its records in time; records in flight may be read again');
      for (const c of this.collectors) c.flush();
      try {
        // startCollectors and the switch below run in one go (no await between):
        // the first record a new collector reads goes to the new pipeline
        this.startCollectors(config);
      } catch (err) {
        this.restoreCollectors(old.config);
        return rollback(`collectors failed to start with the new configuration: ${(err as Error).message}`);
      }
    }
    // Commit: one synchronous switch of the pipeline and the storage manager.
    this.pipeline = next;
    const retiring = prepared?.ok ? storage.commit(prepared) : Promise.resolve();
    old.bus.drain();
    await Promise.all(old.receivers.map((r) => r.close()));
    this.forgetPlugins(old.config, next);
    this.markUp(next);
    await retiring;
    if (!restartCollectors) for (const c of this.collectors) c.flush();
    this.generation++;
    metrics.configGeneration.set(this.generation);
    metrics.configReloads.labels('applied').inc();
    log.info({ generation: this.generation, source: change.source }, 'configuration reloaded');
    return null;
  }

  /**
   * After failing to start the new collectors: start the previous ones again.
   * If even that fails (the device went away meanwhile), the agent stays up
   * without collectors and says so in /readyz — it never crashes on a reload.
   */
  private restoreCollectors(config: AgentConfig): void {
    try {
      this.startCollectors(config, { resume: true });
    } catch (err) {
      this.collectors = [];
      this.collectorsDown = `no collector runs: a reload failed and the previous collectors could not start again: ${(err as Error).message} (fix the configuration and reload)`;
      this.opts.log.error({ err: (err as Error).message }, 'the previous collectors could not start again; nothing reads the kernel log until a reload succeeds');
    }
  }

  /** Drop the plugin_up series of plugins `gone` had and `kept` has not (a rejected or replaced configuration). */
  private forgetPlugins(gone: AgentConfig, kept: Pipeline): void {
    const keep = new Set([...kept.config.plugins.filter((p) => p.enabled).map((p) => p.name), ...kept.receivers.map((r) => r.name), ...this.collectors.map((c) => c.name)]);
    for (const p of gone.plugins) if (!keep.has(p.name)) this.opts.metrics.pluginUp.remove(p.name);
    this.markUp(kept);
  }

  /** Stop reading, emit what is held, drain every receiver, save the read position. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // a reload or push in progress finishes first (it never rejects into here)
    await this.controlChain.catch(() => {});
    await this.stopCollectors();
    const p = this.pipeline;
    if (p) {
      p.bus.drain();
      await Promise.all(p.receivers.map((r) => r.close()));
    }
    // The storage backends acknowledge what they hold; only then may the
    // saved kernel read position move past those records.
    await this.storage?.stop();
    for (const c of this.collectors) c.flush();
    await this.api?.stop();
    this.opts.log.info('agent stopped');
  }
}

/** The failure a StorageError stands for (unknown backend, wrong state, a backend that failed), or null for anything else. */
function storageFailure(err: unknown): Failure | null {
  if (!(err instanceof StorageError)) return null;
  const kind = err.code === 'UNKNOWN_BACKEND' ? 'not-found' : err.code === 'WRONG_STATE' || err.code === 'NOT_STARTED' ? 'conflict' : 'failed';
  return fail(kind, err.message);
}

const NOT_RUNNING = fail('unavailable', 'the agent is not running');
const STORAGE_NOT_RUNNING = fail('unavailable', 'storage is not running');

/** PUT /v1/config (docs/agent-api.md) */
export interface PushResult {
  applied: true;
  generation: number;
  hash: string;
  /** the push is the one applied already */
  unchanged?: true;
}
/** POST /v1/plugins/{name}:{action} and /v1/backends/{name}:{action} */
export type CommandResult =
  | { plugin: string; action: ControlAction; enabled: boolean }
  | { backend: string; action: ControlAction; started: boolean; startedAt: string | null };
/** POST /v1/reload */
export interface ReloadResult {
  reloaded: true;
  generation: number;
  hash: string | null;
  reloads: number;
  source: string;
  /** `Run: always` backends a command had stopped, started again */
  backendsStarted: string[];
}
/** POST /v1/flush and /v1/backends/{name}:flush */
export interface FlushResult {
  flushed: boolean;
  timeoutMs: number;
  backends: BackendFlushResult[];
}

/** How long a reload that restarts collectors waits for the running pipeline to finish its records. */
const RELOAD_DRAIN_MS = 5000;

/**
 * [main] keys read only at start (the API socket and token, the state
 * directory, the logger, the node name the storage manager stamps): a
 * reload that changes one is refused as a whole rather than half applied.
 */
const RESTART_ONLY_KEYS = ['api_listen', 'api_token_file', 'state_dir', 'log_level', 'hostname'] as const;

export function restartOnlyChanges(running: AgentConfig['main'], next: AgentConfig['main'], stateDirFromFlag: boolean): string[] {
  const keys = RESTART_ONLY_KEYS.filter((k) => !(k === 'state_dir' && stateDirFromFlag));
  return diffSections(keys.map((k) => [k, running[k]]), keys.map((k) => [k, next[k]]), (a, b) => a === b).changed;
}

/** What the collectors are started from: their sections, enabled or not, in order. */
function collectorSections(config: AgentConfig): Sections {
  return config.plugins.filter((p) => p.type === 'collector').map((p) => [p.name, [p.plugin, p.enabled, p.options]]);
}

/**
 * Put the saved kernel read position back as it was before a failed start
 * (a collector's save is scheduled with setImmediate, so do it again after
 * one: whatever it wrote last is replaced).
 */
function restorePosition(file: string, saved: string | null, log: Logger): void {
  const put = (): void => {
    try {
      if (saved === null) rmSync(file, { force: true });
      else writePrivateFileAtomic(file, saved, 'the kmsg position');
    } catch (err) {
      log.error({ err: (err as Error).message, file }, 'cannot restore the saved kmsg position after a failed start');
    }
  };
  put();
  setImmediate(put);
}

export function readBootId(file: string): string {
  try {
    // bounded, regular files only (procfs files are): a FIFO or /dev/zero as boot_id_path must not hang or fill memory
    const id = readRegularFile(file, 'boot_id_path', { maxBytes: 256 }).trim();
    if (/^[0-9a-f-]{8,64}$/i.test(id)) return id;
    throw new Error('not a boot id');
  } catch (err) {
    throw new ConfigError(`cannot read the boot id from ${file}: ${(err as Error).message}`);
  }
}
