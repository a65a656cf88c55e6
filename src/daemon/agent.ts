// The agent: builds collectors → bus → parsers → receivers from a
// configuration, swaps in a new configuration on reload (keeping the old one
// when the new one is invalid), and drains on stop.
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateToken, StaticTokenAuthenticator } from '../api/auth.ts';
import type { EventsRequest } from '../api/query.ts';
import { ApiServer, RequestError } from '../api/server.ts';
import { EventStreamHub } from '../api/stream.ts';
import type { StorageEvent } from '../events/schema.ts';
import { compileFilter } from '../filter/index.ts';
import { DEFAULT_STORAGE_CONFIG } from '../storage/config.ts';
import { StorageError } from '../storage/manager.ts';
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
import { builtinReceivers, type Collector, type CollectorDeps, type CollectorSink, COLLECTORS, lookupPluginSchema, RECEIVERS, type ReceiverDepsFull } from './plugins.ts';

export interface AgentOptions {
  log: Logger;
  metrics: AgentMetrics;
  /** --state-dir: overrides [main] state_dir */
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
  /** --storage-config: the elos JSON text and where it came from; default: DEFAULT_STORAGE_CONFIG */
  storageConfig?: { text: string; source: string };
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
    const deps: CollectorDeps = { stateDir, bootId, log, metrics, hostname: this.hostname(config), resolver: () => this.pipeline?.resolver ?? null };
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
    for (const w of config.warnings) this.opts.log.warn(w);
    const stateDir = this.stateDir(config);
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(`cannot create the state directory ${stateDir}: ${(err as Error).message} (use --state-dir)`);
    }
    // Storage first: the bus must have its receiver before the first record.
    this.storage = new StorageHost({ log: this.opts.log, registry: this.opts.metrics.registry, stateDir, hostname: this.hostname(config), env: this.opts.env });
    const sc = this.opts.storageConfig;
    const err = await this.storage.apply(sc ? sc.text : DEFAULT_STORAGE_CONFIG, sc ? sc.source : 'embedded default storage configuration');
    if (err) throw new ConfigError(`storage: ${err}`);
    this.pipeline = this.buildPipeline(config);
    this.startCollectors(config);
    await this.startApi(config);
    this.started = true;
    this.generation = 1;
    this.opts.metrics.configGeneration.set(this.generation);
    this.opts.log.info({ plugins: config.plugins.filter((p) => p.enabled).map((p) => `${p.name}(${p.type}:${p.plugin})`) }, 'agent started');
  }

  private async startApi(config: AgentConfig): Promise<void> {
    const listen = config.main.api_listen;
    if (listen === 'off') return;
    const tokenFile = config.main.api_token_file ?? path.join(this.stateDir(config), 'api-token');
    let auth;
    try {
      auth = new StaticTokenAuthenticator(loadOrCreateToken(tokenFile));
    } catch (err) {
      throw new ConfigError(`[main] api_token_file: ${(err as Error).message}`);
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
        status: () => ({ generation: this.generation, storage: this.storage?.status() ?? null }),
        queryEvents: (req) => this.queryEvents(req),
        stream: this.stream,
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

  /** Apply a new storage configuration (elos JSON); on error keep the running one and return the error. */
  async reloadStorage(text: string, source: string): Promise<string | null> {
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
