// The agent: builds collectors → bus → parsers → receivers from a
// configuration, swaps in a new configuration on reload (keeping the old one
// when the new one is invalid), and drains on stop.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { type Authenticator, loadOrCreateToken, StaticTokenAuthenticator } from '../api/auth.ts';
import type { EventsRequest } from '../api/query.ts';
import { ApiServer, type ConfigPush, type ControlAction, type ControlAnswer, parseListen, RequestError } from '../api/server.ts';
import { EventStreamHub } from '../api/stream.ts';
import type { StorageEvent } from '../events/schema.ts';
import { compileFilter } from '../filter/index.ts';
import { DEFAULT_STORAGE_CONFIG, parseStorageConfig } from '../storage/config.ts';
import { type BackendFlushResult, StorageError } from '../storage/manager.ts';
import type { SecretResolver } from '../storage/types.ts';
import { type AgentConfig, type PluginSection } from '../config/schema.ts';
import { loadConfig } from '../config/load.ts';
import { SysfsResolver } from '../device/resolver.ts';
import type { Logger } from '../log/logger.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import { PARSERS } from '../parsers/index.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { Bus, type ParserInstance } from './bus.ts';
import { bootEpochUs } from './clock.ts';
import { StorageHost } from './storage.ts';
import { FsUuidMemory } from './synthesize.ts';
import { builtinReceivers, type Collector, collectorClashes, type CollectorDeps, type CollectorSink, COLLECTORS, lookupPluginSchema, RECEIVERS, type ReceiverDepsFull } from './plugins.ts';

export interface AgentOptions {
  log: Logger;
  metrics: AgentMetrics;
  /** --state-dir: overrides [main] state_dir */
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
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
  if (!existsSync(file)) return null;
  const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<AppliedConfig>;
  if (typeof v.generation !== 'number' || !Number.isSafeInteger(v.generation) || v.generation < 1 || typeof v.hash !== 'string' || typeof v.toml !== 'string' || typeof v.storage !== 'object' || v.storage === null) {
    throw new Error(`${file}: not an applied configuration record`);
  }
  return { generation: v.generation, hash: v.hash, toml: v.toml, storage: v.storage };
}

/** Write <dir>/applied.json atomically (0600, fsync, rename). */
export function writeAppliedConfig(dir: string, applied: AppliedConfig): void {
  const file = path.join(dir, APPLIED_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(applied)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

interface Pipeline {
  config: AgentConfig;
  bus: Bus;
  receivers: QueuedReceiver[];
  resolver: SysfsResolver;
}

export class ConfigError extends Error {}

export function parseAgentConfig(text: string, source: string): AgentConfig {
  const res = loadConfig(text, lookupPluginSchema);
  if (!res.ok) throw new ConfigError(`${source}: ${res.error}`);
  const clash = collectorClashes(res.config);
  if (clash !== null) throw new ConfigError(`${source}: ${clash}`);
  return res.config;
}

export class Agent {
  private readonly opts: AgentOptions;
  private pipeline: Pipeline | null = null;
  private collectors: Collector[] = [];
  private collectorKey = '';
  private generation = 0;
  private stopping = false;
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
    const env = this.opts.env ?? process.env;
    return config.main.hostname ?? env.NODE_NAME ?? os.hostname();
  }

  private buildPipeline(config: AgentConfig): Pipeline {
    const { log, metrics } = this.opts;
    const main = config.main;
    const bootId = readBootId(main.boot_id_path);
    const resolver = new SysfsResolver({ sysfs: main.sysfs_root, dev: main.dev_root, mountinfo: main.mountinfo });
    const receivers: QueuedReceiver[] = [];
    const parsers: ParserInstance[] = [];
    for (const p of config.plugins) {
      if (!p.enabled) continue;
      if (p.type === 'receiver') receivers.push(createReceiver(p, config, { log, metrics, config }));
      else if (p.type === 'parser') {
        parsers.push({ name: p.name, parser: PARSERS[p.plugin]!, systems: p.filterSystems, filterType: p.filterType });
        metrics.pluginUp.labels(p.name).set(1);
      }
    }
    receivers.push(...builtinReceivers({ log, metrics, config }));
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

  private startCollectors(config: AgentConfig): void {
    const { log, metrics } = this.opts;
    const stateDir = this.stateDir(config);
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(`cannot create the state directory ${stateDir}: ${(err as Error).message} (use --state-dir)`);
    }
    const bootId = readBootId(config.main.boot_id_path);
    const started: Collector[] = [];
    const sink: CollectorSink = {
      record: (rec, ticket) => this.pipeline!.bus.ingest(rec, ticket),
      overrun: (lost, after, next, ticket) => this.pipeline!.bus.overrun(lost, after, next, ticket),
      publish: (ev, ticket, producer) => this.pipeline!.bus.publish(ev, ticket, producer),
    };
    const deps: CollectorDeps = {
      stateDir, bootId, log, metrics, hostname: this.hostname(config), resolver: () => this.pipeline?.resolver ?? null,
      replayReady: () => this.storage?.replayReady() ?? false,
    };
    try {
      for (const p of config.plugins) {
        if (p.type !== 'collector' || !p.enabled) continue;
        const plugin = COLLECTORS[p.plugin];
        if (!plugin) throw new ConfigError(`[${p.name}]: no collector plugin named "${p.plugin}"`);
        const c = plugin.create(p.name, p.options, deps, sink);
        c.start();
        metrics.pluginUp.labels(p.name).set(c.up === false ? 0 : 1);
        started.push(c);
      }
    } catch (err) {
      for (const c of started) c.stop();
      throw err;
    }
    this.collectors = started;
    this.collectorKey = collectorKey(config);
  }

  private async stopCollectors(): Promise<void> {
    for (const c of this.collectors) {
      c.stop();
      this.opts.metrics.pluginUp.labels(c.name).set(0);
    }
  }

  async start(config: AgentConfig): Promise<void> {
    this.configText = this.opts.configText ?? null;
    let storageConfig = this.opts.storageConfig;
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
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(`cannot create the state directory ${stateDir}: ${(err as Error).message} (use --state-dir)`);
    }
    // Storage first: the bus must have its receiver before the first record.
    this.storage = new StorageHost({ log: this.opts.log, registry: this.opts.metrics.registry, stateDir, hostname: this.hostname(config), env: this.opts.env, secrets: this.opts.secrets });
    const sc = storageConfig;
    const err = await this.storage.apply(sc ? sc.text : DEFAULT_STORAGE_CONFIG, sc ? sc.source : 'embedded default storage configuration');
    if (err) throw new ConfigError(`storage: ${err}`);
    this.pipeline = this.buildPipeline(config);
    this.startCollectors(config);
    await this.startApi(config);
    this.started = true;
    this.generation = 1;
    this.opts.metrics.configGeneration.set(this.generation);
    if (this.pushed) this.opts.onApplied?.({ generation: this.pushed.generation, hash: this.pushed.hash });
    this.opts.log.info({ plugins: config.plugins.filter((p) => p.enabled).map((p) => `${p.name}(${p.type}:${p.plugin})`) }, 'agent started');
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
  applyPushed(push: ConfigPush): Promise<ControlAnswer> {
    return this.serialized(async () => {
      const { log } = this.opts;
      if (!this.opts.pushed) return { status: 501, body: { error: 'this agent does not take pushed configurations (not in Kubernetes mode)' } };
      if (!this.pipeline || this.stopping) return { status: 503, body: { error: 'the agent is not running' } };
      const cur = this.pushed;
      if (cur && push.generation < cur.generation) {
        return { status: 409, body: { error: `generation ${push.generation} is older than the applied generation ${cur.generation}`, generation: cur.generation, hash: cur.hash } };
      }
      if (cur && push.generation === cur.generation && push.hash === cur.hash) {
        return { status: 200, body: { applied: true, generation: cur.generation, hash: cur.hash, unchanged: true } };
      }
      const source = `pushed configuration (generation ${push.generation})`;
      let text: string;
      try {
        text = pushedConfigText(this.opts.pushed.localMain, push.toml);
        parseAgentConfig(text, source);
      } catch (err) {
        return { status: 400, body: { error: (err as Error).message } };
      }
      const st = parseStorageConfig(push.storage);
      if (!st.ok) return { status: 400, body: { error: st.error } };

      const previousText = this.configText;
      const tomlErr = await this.reload(text, source);
      if (tomlErr) return { status: 422, body: { applied: false, error: `applying the plugin sections failed (nothing changed): ${tomlErr}` } };
      this.configText = text;
      const storageErr = await this.reloadStorage(JSON.stringify(push.storage), `${source} storage`);
      if (storageErr) {
        if (previousText !== null) {
          const back = await this.reload(previousText, 'the previous configuration (rollback)');
          if (back) log.error({ err: back }, 'rolling back the plugin sections failed');
          else this.configText = previousText;
        }
        return { status: 422, body: { applied: false, error: `applying the storage configuration failed (the plugin sections were rolled back): ${storageErr}` } };
      }
      const applied: AppliedConfig = { generation: push.generation, hash: push.hash, toml: push.toml, storage: push.storage };
      this.pushed = applied;
      try {
        writeAppliedConfig(this.stateDir(this.pipeline.config), applied);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cannot persist the applied configuration (it runs, but a restart without the controller would not have it)');
      }
      log.info({ generation: push.generation, hash: push.hash }, 'pushed configuration applied');
      this.opts.onApplied?.({ generation: push.generation, hash: push.hash });
      return { status: 200, body: { applied: true, generation: push.generation, hash: push.hash } };
    });
  }

  /** POST /v1/{plugins,backends}/{name}:{action}. */
  runCommand(kind: 'plugins' | 'backends', name: string, action: ControlAction): Promise<ControlAnswer> {
    return this.serialized(async () => {
      if (!this.pipeline || this.stopping) return { status: 503, body: { error: 'the agent is not running' } };
      return kind === 'plugins' ? this.pluginCommand(name, action) : this.backendCommand(name, action);
    });
  }

  private async pluginCommand(name: string, action: ControlAction): Promise<ControlAnswer> {
    const config = this.pipeline!.config;
    const section = config.plugins.find((p) => p.name === name);
    if (!section) return { status: 404, body: { error: `no plugin section named "${name}"` } };
    if (this.configText === null) return { status: 501, body: { error: 'plugin commands need the configuration text, which this agent was not started with' } };
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
      if (err) return { status: 422, body: { error: `${action} of plugin ${name} failed: ${err}` } };
    }
    return { status: 200, body: { plugin: name, action, enabled: action !== 'stop' } };
  }

  private async backendCommand(name: string, action: ControlAction): Promise<ControlAnswer> {
    if (!this.storage?.running) return { status: 503, body: { error: 'storage is not running' } };
    try {
      const b = await this.storage.backendCommand(name, action);
      return { status: 200, body: { backend: name, action, started: b.started, startedAt: b.startedAt } };
    } catch (err) {
      const a = storageErrorAnswer(err);
      if (a) return a;
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
    const read = (file: string): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const files = this.opts.files ?? {};
    const text = files.config !== undefined ? read(files.config) : this.opts.configText;
    if (text === undefined) return null;
    const sc = this.opts.storageConfig;
    return {
      text,
      source: files.config ?? 'the configuration the agent started with',
      storage: files.storage !== undefined ? read(files.storage) : (sc?.text ?? DEFAULT_STORAGE_CONFIG),
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
  reloadConfig(): Promise<ControlAnswer> {
    return this.serialized(async () => {
      const { log } = this.opts;
      if (!this.pipeline || !this.storage || this.stopping) return { status: 503, body: { error: 'the agent is not running' } };
      let src: ReturnType<Agent['reloadSources']>;
      try {
        src = this.reloadSources();
        if (src === null) return { status: 501, body: { error: 'this agent was started without a configuration text; there is nothing to reload' } };
        parseAgentConfig(src.text, src.source);
      } catch (err) {
        return { status: 422, body: { reloaded: false, error: `${(err as Error).message} (nothing changed)` } };
      }
      let storageDoc: unknown = src.storage;
      try {
        if (typeof src.storage === 'string') storageDoc = JSON.parse(src.storage);
      } catch (err) {
        return { status: 422, body: { reloaded: false, error: `${src.storageSource}: not JSON: ${(err as Error).message.slice(0, 200)} (nothing changed)` } };
      }
      const st = parseStorageConfig(storageDoc);
      if (!st.ok) return { status: 422, body: { reloaded: false, error: `${src.storageSource}: ${st.error} (nothing changed)` } };

      const previousText = this.configText;
      const tomlErr = await this.reload(src.text, src.source);
      if (tomlErr) return { status: 422, body: { reloaded: false, error: `reloading the plugin sections failed (nothing changed): ${tomlErr}` } };
      this.configText = src.text;
      const storageErr = await this.reloadStorage(storageDoc, src.storageSource);
      if (storageErr) {
        if (previousText !== null) {
          const back = await this.reload(previousText, 'the previous configuration (rollback)');
          if (back) log.error({ err: back }, 'rolling back the plugin sections failed');
          else this.configText = previousText;
        }
        return { status: 422, body: { reloaded: false, error: `reloading the storage configuration failed (the plugin sections were rolled back): ${storageErr}` } };
      }
      const body = { reloaded: true, generation: this.pushed?.generation ?? 0, hash: this.pushed?.hash ?? null, reloads: this.generation, source: src.source };
      try {
        const restarted = await this.storage.restoreBackends();
        log.info({ source: src.source, reloads: this.generation, backendsStarted: restarted }, 'configuration reloaded on request');
        return { status: 200, body: { ...body, backendsStarted: restarted } };
      } catch (err) {
        const a = storageErrorAnswer(err);
        if (!a) throw err;
        return { status: 500, body: { ...body, error: `reloaded, but starting a stopped backend again failed: ${(err as Error).message}` } };
      }
    });
  }

  /**
   * POST /v1/flush and /v1/backends/{name}:flush: wait (at most `timeoutMs`)
   * until the backends wrote what they queued and spooled. Not serialized
   * with pushes and commands: it changes nothing, and a push must not wait
   * behind a flush of a backend that is down.
   */
  async flushStorage(backend: string | null, timeoutMs: number): Promise<ControlAnswer> {
    if (!this.pipeline || this.stopping) return { status: 503, body: { error: 'the agent is not running' } };
    if (!this.storage?.running) return { status: 503, body: { error: 'storage is not running' } };
    let results: BackendFlushResult[];
    try {
      results = await this.storage.flush(timeoutMs, backend ?? undefined);
    } catch (err) {
      const a = storageErrorAnswer(err);
      if (a) return a;
      throw err;
    }
    const late = results.filter((r) => !r.flushed);
    const body = { flushed: late.length === 0, timeoutMs, backends: results };
    if (late.length === 0) return { status: 200, body };
    // 504: the flush did not finish in time; nothing is lost, the rest is written later
    return { status: 504, body: { ...body, error: `${late.length} of ${results.length} backend(s) did not write everything within ${timeoutMs} ms: ${late.map((r) => r.backend).slice(0, 10).join(', ')}` } };
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
          if (!this.storage?.running) reasons.push('the storage manager is not running');
          return { ready: reasons.length === 0, reasons };
        },
        status: () => ({
          generation: this.pushed?.generation ?? 0,
          hash: this.pushed?.hash ?? null,
          reloads: this.generation,
          plugins: (this.pipeline?.config.plugins ?? []).map((p) => ({ name: p.name, type: p.type, plugin: p.plugin, enabled: p.enabled })),
          storage: this.storage?.status() ?? null,
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

  private async queryEvents(req: EventsRequest): Promise<{ events: StorageEvent[]; isTruncated: boolean }> {
    let filter = null;
    if (req.filter !== null) {
      const c = compileFilter(req.filter);
      if (!c.ok) throw new RequestError(`filter: ${c.error.message} (position ${c.error.position}, token ${JSON.stringify(c.error.token)})`);
      filter = c.filter;
    }
    if (!this.storage) throw new RequestError('storage is not running', 503);
    try {
      return await this.storage.findEvents({ filter, newest: req.newest, oldest: req.oldest, limit: req.limit }, req.backend ?? undefined);
    } catch (err) {
      if (err instanceof StorageError) {
        if (err.code === 'UNKNOWN_BACKEND') throw new RequestError(err.message, 404);
        if (err.code === 'NOT_STARTED') throw new RequestError(err.message, 409);
      }
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

  /** Apply a new configuration text; on any error keep the running one and return the error. */
  async reload(text: string, source: string): Promise<string | null> {
    const { log, metrics } = this.opts;
    let config: AgentConfig;
    let next: Pipeline;
    try {
      config = parseAgentConfig(text, source);
      next = this.buildPipeline(config);
    } catch (err) {
      metrics.configReloads.labels('failed').inc();
      log.error({ err: (err as Error).message }, 'configuration rejected; keeping the running configuration');
      return (err as Error).message;
    }
    for (const w of config.warnings) log.warn(w);
    const old = this.pipeline!;
    const restartCollectors = collectorKey(config) !== this.collectorKey || this.stateDir(config) !== this.stateDir(old.config);
    if (restartCollectors) await this.stopCollectors();
    this.pipeline = next;
    old.bus.drain();
    await Promise.all(old.receivers.map((r) => r.close()));
    for (const c of this.collectors) c.flush();
    if (restartCollectors) {
      try {
        this.startCollectors(config);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'collectors failed to start with the new configuration; restoring the previous collectors');
        this.startCollectors(old.config);
        metrics.configReloads.labels('failed').inc();
        return (err as Error).message;
      }
    }
    this.generation++;
    metrics.configGeneration.set(this.generation);
    metrics.configReloads.labels('applied').inc();
    log.info({ generation: this.generation }, 'configuration reloaded');
    return null;
  }

  /** Stop reading, emit what is held, drain every receiver, save the read position. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
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

/** The answer for a StorageError a caller caused (unknown backend, wrong state), or null for anything else. */
function storageErrorAnswer(err: unknown): ControlAnswer | null {
  if (!(err instanceof StorageError)) return null;
  const status = err.code === 'UNKNOWN_BACKEND' ? 404 : err.code === 'WRONG_STATE' || err.code === 'NOT_STARTED' ? 409 : 500;
  return { status, body: { error: err.message } };
}

function collectorKey(config: AgentConfig): string {
  return JSON.stringify(config.plugins.filter((p) => p.type === 'collector').map((p) => [p.name, p.plugin, p.enabled, p.options]));
}

function createReceiver(p: PluginSection, config: AgentConfig, deps: ReceiverDepsFull): QueuedReceiver {
  const plugin = Object.hasOwn(RECEIVERS, p.plugin) ? RECEIVERS[p.plugin] : undefined;
  if (!plugin) throw new ConfigError(`[${p.name}]: no receiver plugin named "${p.plugin}"`);
  return plugin.create(p.name, p.options, { ...deps, config });
}

export function readBootId(file: string): string {
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{8,64}$/i.test(id)) return id;
    throw new Error('not a boot id');
  } catch (err) {
    throw new ConfigError(`cannot read the boot id from ${file}: ${(err as Error).message}`);
  }
}
