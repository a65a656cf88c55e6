// The controller (docs/controller.md; docs/architecture.md "Components"): informers on
// StorageEventPlugins, StorageBackends, Nodes and the agents' Leases feed a
// keyed work queue; reconciles read only from the informer caches and are
// idempotent. Keys:
//   node/<name>  render the node's configuration from the accepted resources
//                that select it; push it when the agent's Lease shows another
//                hash (generation = max(Lease generation, last pushed) + 1)
//   sep/<name>, sbe/<name>  validate, count selected/applied/failed nodes,
//                run a new one-off command from the peripety.io/command
//                annotation (commands.ts), write status (only when it
//                changed) through /status
// Only the leader (leader.ts) reconciles and pushes; every replica keeps its
// caches warm so a standby takes over at once. The controller's token goes
// only to an endpoint on the node's own address (endpoint.ts): a Lease that
// names another address gets no push and no command, and says why in status.
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import {
  CoordinationV1Api, CoreV1Api, CustomObjectsApi, makeInformer,
  type Informer, type KubeConfig, type KubernetesObject, type ObjectCache, type V1Lease, type V1Node,
} from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  CommandStatus, CONDITION_ACCEPTED, CONDITION_READY, GROUP, MAX_FAILURE_MESSAGE, MAX_FAILURES, VERSION,
  type CommandAction, type Condition, type FilterError, type StorageBackendSpec, type StorageEventPluginSpec,
} from '../crd/schemas.ts';
import { problemsMessage, validateStorageBackend, validateStorageEventPlugin } from '../crd/validate.ts';
import type { Logger } from '../log/logger.ts';
import {
  COMMAND_ANNOTATION, commandPath, completedStatus, decideCommand, interruptedStatus, invalidStatus, isInterrupted, isResourceAction,
  type NodeResult, notAcceptedStatus,
} from './commands.ts';
import { type AgentTokenSource, AgentTokens, tokenRequestIssuer } from './agent-tokens.ts';
import { checkEndpoint, PUSH_REFUSED_REASONS, type PushRefusedReason } from './endpoint.ts';
import { LeaderElector } from './leader.ts';
import { WorkQueue } from './queue.ts';
import { renderNode, type Named, type RenderedNode } from './render.ts';
import { matchesSelector } from './selector.ts';

export const AGENT_LEASE_PREFIX = 'peripety-agent-';
export const CONTROLLER_LEASE = 'peripety-controller';
// the agent's Lease annotations, one definition for both sides (src/contracts/lease.ts)
import { ANNOTATION_DEGRADED, ANNOTATION_ENDPOINT, ANNOTATION_GENERATION, ANNOTATION_HASH, degradedBackend } from '../contracts/lease.ts';
/** sent with every push: which controller replica pushed */
export const CONTROLLER_HEADER = 'X-Peripety-Controller';
/** the controller's ServiceAccount as the chart names it (--service-account) */
export const DEFAULT_SERVICE_ACCOUNT = 'peripety-controller';

const PLURAL = { sep: 'storageeventplugins', sbe: 'storagebackends' } as const;
type Kind = keyof typeof PLURAL;

interface CustomResource extends KubernetesObject {
  spec?: unknown;
  status?: Record<string, unknown>;
}

export interface ControllerOptions {
  kubeconfig: KubeConfig;
  namespace: string;
  identity: string;
  log: Logger;
  /**
   * The controller's own ServiceAccount (in `namespace`; default
   * peripety-controller): it requests the per-node tokens for the agents
   * (audience peripety-agent:<node>) for it with TokenRequest.
   */
  serviceAccount?: string;
  /** lifetime asked for the per-node tokens (default and minimum 600 s) */
  agentTokenSeconds?: number;
  /** where the per-node tokens come from instead (tests) */
  agentTokens?: AgentTokenSource;
  /** every key is enqueued again this often (ms) */
  resyncMs?: number;
  pushTimeoutMs?: number;
  /** how long one agent may take to answer a one-off command (flush waits up to 10 s on the agent) */
  commandTimeoutMs?: number;
  workers?: number;
  leaseDurationMs?: number;
  renewMs?: number;
  retryMs?: number;
}

interface Accepted<S> {
  /** the spec it was computed from (JSON) */
  specKey: string;
  ok: boolean;
  message: string;
  spec: S | null;
  filterErrors: FilterError[];
  selector: unknown;
}

interface PushState {
  hash: string;
  generation: number;
  /** the agent's Lease annotations (endpoint, generation, hash) when we pushed */
  agentState: string;
  at: number;
  /** set when the last push for `hash` failed */
  error: string | null;
  /** the failure will not go away by pushing the same again (4xx, no agent) */
  permanent: boolean;
}

/** after a successful push, wait this long for the agent's Lease to show it before pushing again */
const PENDING_MS = 30_000;
/** a configuration an agent refused (4xx) is pushed again after this long even if nothing changed */
const REFUSED_MS = 5 * 60_000;
/** an agent Lease expired for longer than this is an agent that is gone */
const LEASE_GRACE_MS = 5_000;
/** tries of one command to one agent that answers 429/503 with retry-after (its TokenReview budget spent) */
const COMMAND_ATTEMPTS = 3;

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'peripety_controller_reconciles_total', help: 'Reconciles by kind (node, sep, sbe) and result.', labelNames: ['kind', 'result'], registers: [this.registry] });
  readonly duration = new Histogram({
    name: 'peripety_controller_reconcile_duration_seconds', help: 'Reconcile duration by kind and result.', labelNames: ['kind', 'result'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  readonly pushes = new Counter({ name: 'peripety_controller_pushes_total', help: 'Configuration pushes to agents that succeeded.', registers: [this.registry] });
  readonly pushFailures = new Counter({ name: 'peripety_controller_push_failures_total', help: 'Configuration pushes to agents that failed (refused or unreachable).', registers: [this.registry] });
  readonly pushRefused = new Counter({
    name: 'peripety_controller_push_refused_total',
    help: 'Configuration pushes and commands not sent because the agent Lease\'s endpoint is not on its Node\'s own address, by reason (no_node, invalid_endpoint, no_node_address, foreign_address); a configuration push is counted again only when the Lease, the configuration or 5 minutes pass.',
    labelNames: ['reason'], registers: [this.registry],
  });
  readonly statusWrites = new Counter({ name: 'peripety_controller_status_writes_total', help: 'Status writes to StorageEventPlugins and StorageBackends.', registers: [this.registry] });
  readonly commands = new Counter({
    name: 'peripety_controller_commands_total',
    help: 'One-off commands from the peripety.io/command annotation, by action (start, stop, restart, reload, flush; unknown when invalid) and result (succeeded, failed, invalid, interrupted).',
    labelNames: ['action', 'result'], registers: [this.registry],
  });
  readonly queueDepth: Gauge;
  readonly agentsConfigured: Gauge;
  readonly leader: Gauge;

  constructor(depth: () => number, configured: () => number, leading: () => boolean) {
    this.queueDepth = new Gauge({ name: 'peripety_controller_queue_depth', help: 'Keys waiting or being reconciled.', registers: [this.registry], collect() { this.set(depth()); } });
    this.agentsConfigured = new Gauge({ name: 'peripety_controller_agents_configured', help: 'Agents whose Lease shows the configuration rendered for their node.', registers: [this.registry], collect() { this.set(configured()); } });
    this.leader = new Gauge({ name: 'peripety_controller_leader', help: '1 while this replica is the leader.', registers: [this.registry], collect() { this.set(leading() ? 1 : 0); } });
    // every reason from the start: a dashboard sees 0, not no series, until the first refusal
    for (const reason of PUSH_REFUSED_REASONS) this.pushRefused.inc({ reason }, 0);
    collectDefaultMetrics({ register: this.registry });
  }
}

type CachedInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

const nodeKey = (n: string) => `node/${n}`;
const annotations = (o: KubernetesObject | undefined) => o?.metadata?.annotations ?? {};

export class Controller {
  readonly metrics: ControllerMetrics;
  readonly queue: WorkQueue;
  readonly elector: LeaderElector;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly seps: CachedInformer<CustomResource>;
  private readonly sbes: CachedInformer<CustomResource>;
  private readonly nodes: CachedInformer<V1Node>;
  private readonly leases: CachedInformer<V1Lease>;
  private readonly informers: { name: string; inf: CachedInformer<KubernetesObject>; delay: number; timer: NodeJS.Timeout | null }[] = [];
  private readonly accepted = { sep: new Map<string, Accepted<StorageEventPluginSpec>>(), sbe: new Map<string, Accepted<StorageBackendSpec>>() };
  /** last seen nodeSelector and spec per resource: a change re-renders the nodes selected before and after */
  private readonly lastSpec = new Map<string, string>();
  private readonly lastSelector = new Map<string, unknown>();
  private readonly pushed = new Map<string, PushState>();
  /**
   * The command state this replica recorded last per resource (uid: a
   * re-created resource starts afresh). Newer than the informer cache right
   * after a status write, so a request is never taken for new twice. Valid
   * for one leadership term only: another leader may have recorded newer
   * ones meanwhile, which status (guarded by the resourceVersion) then shows.
   */
  private readonly commandRecords = new Map<string, { uid: string; term: number; status: CommandStatus }>();
  /**
   * The status this replica wrote last per resource, with the resourceVersion
   * the write returned. The informer cache lags our own writes: comparing the
   * wanted status with the cached one alone would skip a needed write when
   * the cache still shows an older write of ours with the same counts as now
   * (0/1 written, cache still at 1/1, want 1/1), and nothing would look again.
   */
  private readonly statusWritten = new Map<string, { uid: string; resourceVersion: string; status: Record<string, unknown> }>();
  /** leadership terms of this replica */
  private term = 0;
  /** last seen peripety.io/command per resource: a change enqueues the resource */
  private readonly lastCommand = new Map<string, string | undefined>();
  /** bumped on every spec/node change: the render memo is valid for one version */
  private version = 0;
  private readonly renders = new Map<string, { version: number; rendered: RenderedNode }>();
  private readonly synced = new Set<string>();
  private readonly nodeLabels = new Map<string, string>();
  private readonly nodeAddresses = new Map<string, string>();
  /** agent Leases without a Node (node → the endpoint counted as refused); one entry per such Lease */
  private readonly orphanLeases = new Map<string, string>();
  private abort = new AbortController();
  private resyncTimer: NodeJS.Timeout | null = null;
  /** the per-node tokens for the agents (never one token for all: issue 10 A2) */
  private readonly tokens: AgentTokenSource;
  private stopped = false;
  private server: Server | null = null;

  private readonly o: ControllerOptions;

  constructor(o: ControllerOptions) {
    this.o = o;
    const kc = o.kubeconfig;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    const coord = kc.makeApiClient(CoordinationV1Api);
    this.queue = new WorkQueue((k) => this.reconcile(k), {
      workers: o.workers ?? 32,
      onError: (key, err, ms) => o.log.warn({ key, err: errText(err), retryInMs: ms }, 'reconcile failed'),
    });
    this.metrics = new ControllerMetrics(() => this.queue.depth, () => this.countConfigured(), () => this.elector.isLeader());
    this.tokens = o.agentTokens ?? new AgentTokens({
      issue: tokenRequestIssuer(kc, o.namespace, o.serviceAccount ?? DEFAULT_SERVICE_ACCOUNT),
      expirationSeconds: o.agentTokenSeconds,
      registry: this.metrics.registry,
    });
    // an informer's cache is filled once its first list succeeded (its start() also resolves after a failed list)
    const synced = <T>(name: string, list: () => Promise<T>) => async (): Promise<T> => {
      const r = await list();
      this.synced.add(name);
      return r;
    };
    const crList = (kind: Kind) => synced(PLURAL[kind], () => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL[kind] }) as Promise<{ items: CustomResource[]; metadata?: { resourceVersion?: string } }>);
    this.seps = makeInformer<CustomResource>(kc, `/apis/${GROUP}/${VERSION}/${PLURAL.sep}`, crList('sep'));
    this.sbes = makeInformer<CustomResource>(kc, `/apis/${GROUP}/${VERSION}/${PLURAL.sbe}`, crList('sbe'));
    this.nodes = makeInformer<V1Node>(kc, '/api/v1/nodes', synced('nodes', () => this.core.listNode()));
    this.leases = makeInformer<V1Lease>(kc, `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases`, synced('leases', () => coord.listNamespacedLease({ namespace: o.namespace })));
    this.wire('storageeventplugins', this.seps, (obj, del) => this.onResource('sep', obj, del));
    this.wire('storagebackends', this.sbes, (obj, del) => this.onResource('sbe', obj, del));
    this.wire('nodes', this.nodes, (obj, del) => this.onNode(obj, del));
    this.wire('leases', this.leases, (obj) => this.onLease(obj));
    this.elector = new LeaderElector({
      api: coord, namespace: o.namespace, name: CONTROLLER_LEASE, identity: o.identity, log: o.log,
      leaseDurationMs: o.leaseDurationMs, renewMs: o.renewMs, retryMs: o.retryMs,
      onStartedLeading: () => {
        this.abort = new AbortController();
        this.term++;
        this.enqueueAll();
      },
      onStoppedLeading: () => this.abort.abort(),
    });
  }

  private wire<T extends KubernetesObject>(name: string, inf: CachedInformer<T>, on: (obj: T, deleted: boolean) => void): void {
    const entry = { name, inf: inf as unknown as CachedInformer<KubernetesObject>, delay: 500, timer: null as NodeJS.Timeout | null };
    this.informers.push(entry);
    inf.on('add', (obj) => { entry.delay = 500; on(obj, false); });
    inf.on('update', (obj) => { entry.delay = 500; on(obj, false); });
    inf.on('delete', (obj) => on(obj, true));
    inf.on('error', (err: unknown) => {
      if (this.stopped) return;
      const ms = entry.delay;
      entry.delay = Math.min(entry.delay * 2, 30_000);
      this.o.log.warn({ informer: name, err: errText(err), restartInMs: ms }, 'informer failed; restarting');
      entry.timer = setTimeout(() => {
        entry.timer = null;
        if (!this.stopped) inf.start().catch(() => undefined);
      }, ms);
    });
  }

  /**
   * Start the informers and, once every cache is filled, leader election:
   * a leader acting on a partial cache would push configurations without the
   * resources it has not listed yet. Resolves when the caches are filled.
   */
  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.inf.start()));
    let waited = 0;
    while (this.synced.size < this.informers.length) {
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, 50));
      if ((waited += 50) % 10_000 === 0) this.o.log.info({ synced: [...this.synced] }, 'waiting for the informer caches');
    }
    const resync = this.o.resyncMs ?? 5 * 60_000;
    this.resyncTimer = setInterval(() => this.enqueueAll(), resync);
    this.resyncTimer.unref();
    this.elector.start();
  }

  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    // stop acting first: no new reconcile, in-flight pushes aborted, not leading any more
    this.queue.stop();
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.elector.stop(opts.release ?? true);
    await this.queue.idle();
    for (const i of this.informers) {
      if (i.timer) clearTimeout(i.timer);
      await i.inf.stop();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** serve /metrics and /healthz; resolves with the port */
  async serveMetrics(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
        }, (err: unknown) => {
          res.writeHead(500).end(String(err));
        });
      } else if (req.url === '/healthz' || req.url === '/readyz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else res.writeHead(404).end();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
    const addr = server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  // ---------------------------------------------------------------------------
  // events → keys

  private enqueueAll(): void {
    for (const n of this.nodes.list()) this.queue.add(nodeKey(n.metadata?.name ?? ''));
    // and the agent Leases of nodes that do not exist (counted as refused: noteOrphanLease)
    for (const l of this.leases.list()) this.onLease(l);
    for (const kind of ['sep', 'sbe'] as const) {
      for (const r of this.informerOf(kind).list()) this.queue.add(`${kind}/${r.metadata?.name ?? ''}`);
    }
  }

  private informerOf(kind: Kind): CachedInformer<CustomResource> {
    return kind === 'sep' ? this.seps : this.sbes;
  }

  private onResource(kind: Kind, obj: CustomResource, deleted: boolean): void {
    const name = obj.metadata?.name ?? '';
    const id = `${kind}/${name}`;
    if (deleted) {
      this.lastCommand.delete(id);
      this.commandRecords.delete(id);
      this.statusWritten.delete(id);
    } else {
      const command = annotations(obj)[COMMAND_ANNOTATION];
      if (!this.lastCommand.has(id) || this.lastCommand.get(id) !== command) {
        this.lastCommand.set(id, command);
        this.queue.add(id);
      }
    }
    const spec = deleted ? '' : JSON.stringify(obj.spec ?? null);
    if (this.lastSpec.get(id) === spec && !deleted) {
      // a status or metadata change: nothing to render again
      return;
    }
    this.version++;
    // the nodes selected before the change (none for a new resource) and after it (none once deleted)
    const known = this.lastSelector.has(id);
    const before = this.lastSelector.get(id);
    const after = (obj.spec as { nodeSelector?: unknown } | undefined)?.nodeSelector;
    if (deleted) {
      this.lastSpec.delete(id);
      this.lastSelector.delete(id);
      this.accepted[kind].delete(name);
    } else {
      this.lastSpec.set(id, spec);
      this.lastSelector.set(id, after);
      this.queue.add(id);
    }
    for (const n of this.nodes.list()) {
      const labels = n.metadata?.labels ?? {};
      if ((known && selects(labels, before)) || (!deleted && selects(labels, after))) this.queue.add(nodeKey(n.metadata?.name ?? ''));
    }
  }

  private onNode(node: V1Node, deleted: boolean): void {
    const name = node.metadata?.name ?? '';
    const labels = deleted ? null : JSON.stringify(node.metadata?.labels ?? {});
    // labels decide what a node runs; its addresses where its agent may be reached (endpoint.ts):
    // the kubelet's other status updates cause no work
    const addresses = deleted ? null : JSON.stringify(node.status?.addresses ?? []);
    if (!deleted && this.nodeAddresses.get(name) !== addresses) {
      this.nodeAddresses.set(name, addresses!);
      this.queue.add(nodeKey(name));
    }
    if (deleted) this.nodeAddresses.delete(name);
    if (!deleted && this.nodeLabels.get(name) === labels) return;
    if (deleted) this.nodeLabels.delete(name);
    else this.nodeLabels.set(name, labels!);
    this.version++;
    this.queue.add(nodeKey(name));
    this.enqueueStatuses();
  }

  private onLease(lease: V1Lease): void {
    const name = lease.metadata?.name ?? '';
    if (!name.startsWith(AGENT_LEASE_PREFIX)) return;
    // the node is the one the name says (the name is what the admission policy binds to the writer's node)
    this.queue.add(nodeKey(name.slice(AGENT_LEASE_PREFIX.length)));
  }

  private enqueueStatuses(): void {
    for (const kind of ['sep', 'sbe'] as const) {
      for (const r of this.informerOf(kind).list()) this.queue.add(`${kind}/${r.metadata?.name ?? ''}`);
    }
  }

  // ---------------------------------------------------------------------------
  // reconcile

  private async reconcile(key: string): Promise<void> {
    if (!this.elector.isLeader()) return;
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const end = this.metrics.duration.startTimer({ kind });
    let result = 'success';
    try {
      if (kind === 'node') await this.reconcileNode(name);
      else await this.reconcileStatus(kind as Kind, name);
    } catch (err) {
      result = 'error';
      throw err;
    } finally {
      end({ result });
      this.metrics.reconciles.inc({ kind, result });
    }
  }

  /** validation of a resource, memoized by resourceVersion */
  private acceptedOf(kind: 'sep', obj: CustomResource): Accepted<StorageEventPluginSpec>;
  private acceptedOf(kind: 'sbe', obj: CustomResource): Accepted<StorageBackendSpec>;
  private acceptedOf(kind: Kind, obj: CustomResource): Accepted<StorageEventPluginSpec> | Accepted<StorageBackendSpec> {
    const name = obj.metadata?.name ?? '';
    // validation depends on the name (the map key) and the spec only
    const specKey = JSON.stringify(obj.spec ?? null);
    const cached = this.accepted[kind].get(name);
    if (cached && cached.specKey === specKey) return cached;
    const selector = (obj.spec as { nodeSelector?: unknown } | undefined)?.nodeSelector;
    let a: Accepted<StorageEventPluginSpec> | Accepted<StorageBackendSpec>;
    if (kind === 'sep') {
      const v = validateStorageEventPlugin(obj);
      a = { specKey, ok: v.ok, message: problemsMessage(v.problems), spec: v.ok ? v.spec : null, filterErrors: [], selector };
      this.accepted.sep.set(name, a);
    } else {
      const v = validateStorageBackend(obj);
      let spec = v.ok ? v.spec : null;
      if (spec && v.filterErrors.length > 0) {
        // the filters that compile are applied; the broken ones are only reported
        const bad = new Set(v.filterErrors.map((e) => e.index));
        spec = { ...spec, filters: (spec.filters ?? []).filter((_, i) => !bad.has(i)) };
      }
      a = { specKey, ok: v.ok, message: problemsMessage(v.problems), spec, filterErrors: v.filterErrors, selector };
      this.accepted.sbe.set(name, a);
    }
    return a;
  }

  private acceptedSpecs<S>(kind: Kind): Named<S>[] {
    const out: Named<S>[] = [];
    for (const r of this.informerOf(kind).list()) {
      const a = (kind === 'sep' ? this.acceptedOf('sep', r) : this.acceptedOf('sbe', r)) as Accepted<S>;
      if (a.spec) out.push({ name: r.metadata?.name ?? '', spec: a.spec });
    }
    return out;
  }

  /** the configuration a node should run now (memoized until a spec or node changes) */
  private desired(node: V1Node): RenderedNode {
    const name = node.metadata?.name ?? '';
    const m = this.renders.get(name);
    if (m && m.version === this.version) return m.rendered;
    const rendered = renderNode({ name, labels: node.metadata?.labels ?? {} }, this.acceptedSpecs<StorageEventPluginSpec>('sep'), this.acceptedSpecs<StorageBackendSpec>('sbe'));
    this.renders.set(name, { version: this.version, rendered });
    return rendered;
  }

  private agentLease(node: string): V1Lease | undefined {
    return this.leases.get(`${AGENT_LEASE_PREFIX}${node}`, this.o.namespace);
  }

  private countConfigured(): number {
    let n = 0;
    for (const node of this.nodes.list()) {
      const lease = this.agentLease(node.metadata?.name ?? '');
      if (lease && annotations(lease)[ANNOTATION_HASH] === this.desired(node).hash) n++;
    }
    return n;
  }

  /** the token for `node`'s agent only (audience peripety-agent:<node>): the agent of any other node refuses it */
  private agentToken(node: string): Promise<string> {
    return this.tokens.get(node);
  }

  private async reconcileNode(name: string): Promise<void> {
    const node = this.nodes.get(name);
    const touched = new Set<string>();
    const prevRender = this.renders.get(name)?.rendered;
    for (const p of prevRender?.plugins ?? []) touched.add(`sep/${p}`);
    for (const b of prevRender?.backends ?? []) touched.add(`sbe/${b}`);
    if (!node) {
      this.pushed.delete(name);
      this.tokens.forget(name);
      this.renders.delete(name);
      this.noteOrphanLease(name);
      for (const k of touched) this.queue.add(k);
      return;
    }
    const want = this.desired(node);
    for (const p of want.plugins) touched.add(`sep/${p}`);
    for (const b of want.backends) touched.add(`sbe/${b}`);
    try {
      await this.applyNode(name, want);
    } finally {
      for (const k of touched) this.queue.add(k);
    }
  }

  /**
   * An agent Lease of a node that has no Node object gets nothing (nothing
   * selects it), and has no address to be checked against: counted (once per
   * endpoint it names) and logged, as the no_node refusal.
   */
  private noteOrphanLease(name: string): void {
    const endpoint = annotations(this.agentLease(name))[ANNOTATION_ENDPOINT];
    if (!endpoint) {
      this.orphanLeases.delete(name);
      return;
    }
    if (this.orphanLeases.get(name) === endpoint) return;
    this.orphanLeases.set(name, endpoint);
    const check = checkEndpoint(name, endpoint, undefined);
    if (check.ok) return;
    this.metrics.pushRefused.inc({ reason: check.reason });
    this.o.log.warn({ node: name, reason: check.reason, err: check.message }, 'push refused: an agent Lease for a node that does not exist');
  }

  /**
   * The node's agent endpoint from its registration Lease, or why there is no
   * usable agent; `refused`: there is one, but its endpoint is not on the
   * node's own address (endpoint.ts), and nothing may be sent there.
   */
  private registeredAgent(name: string): { ok: true; endpoint: string; url: URL } | { ok: false; error: string; refused?: PushRefusedReason } {
    const lease = this.agentLease(name);
    const endpoint = annotations(lease)[ANNOTATION_ENDPOINT];
    if (!lease || !endpoint) return { ok: false, error: `no agent registered (no Lease ${AGENT_LEASE_PREFIX}${name} with ${ANNOTATION_ENDPOINT} in ${this.o.namespace})` };
    const node = this.nodes.get(name);
    const check = checkEndpoint(name, endpoint, node && { name, addresses: node.status?.addresses ?? [] });
    if (!check.ok) return { ok: false, error: check.message, refused: check.reason };
    const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : NaN;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (duration > 0 && Number.isFinite(renew) && renew + duration < Date.now() - LEASE_GRACE_MS) {
      // the agent stopped renewing: it is gone (a resync or its next renewal brings the node back)
      return { ok: false, error: `agent gone (its Lease was last renewed ${new Date(renew).toISOString()})` };
    }
    return { ok: true, endpoint, url: check.url };
  }

  private async applyNode(name: string, want: RenderedNode): Promise<void> {
    const ann = annotations(this.agentLease(name));
    if (ann[ANNOTATION_HASH] === want.hash) return;
    const last = this.pushed.get(name);
    const lastGeneration = last?.generation ?? 0;
    const agent = this.registeredAgent(name);
    if (!agent.ok) {
      if (agent.refused) {
        // counted like a push: again only when the Lease or the configuration changes, or after REFUSED_MS
        const agentState = `refused|${ann[ANNOTATION_ENDPOINT] ?? ''}|${agent.error}`;
        const repeat = last && last.hash === want.hash && last.agentState === agentState && Date.now() - last.at < REFUSED_MS;
        if (repeat) return;
        this.metrics.pushRefused.inc({ reason: agent.refused });
        this.o.log.warn({ node: name, reason: agent.refused, err: agent.error }, 'push refused: the agent endpoint is not on the node\'s own address');
        this.pushed.set(name, { hash: want.hash, generation: lastGeneration, agentState, at: Date.now(), error: agent.error.slice(0, MAX_FAILURE_MESSAGE), permanent: true });
        return;
      }
      this.pushed.set(name, { hash: want.hash, generation: lastGeneration, agentState: '', at: Date.now(), error: agent.error, permanent: true });
      return;
    }
    const endpoint = agent.endpoint;
    const base = agent.url;
    // what the agent says it runs: while that has not changed since our last push of this hash, do not push it again
    // (the agent updates its Lease right after applying; it refused it for a reason that will not go away)
    const agentState = `${endpoint}|${ann[ANNOTATION_GENERATION] ?? ''}|${ann[ANNOTATION_HASH] ?? ''}`;
    if (last && last.hash === want.hash && last.agentState === agentState && (last.error === null || last.permanent)
      && Date.now() - last.at < (last.error === null ? PENDING_MS : REFUSED_MS)) return;
    const leaseGen = Number(ann[ANNOTATION_GENERATION] ?? 0);
    const generation = Math.max(Number.isSafeInteger(leaseGen) ? leaseGen : 0, lastGeneration) + 1;
    if (!this.elector.isLeader()) return;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.pushTimeoutMs ?? 5000)]);
    const record = (error: string | null, permanent = false): void => {
      this.pushed.set(name, { hash: want.hash, generation, agentState, at: Date.now(), error, permanent });
    };
    let res: Response;
    let text: string;
    try {
      // the checked URL, not the Lease's text: exactly the host that was checked
      res = await fetch(new URL('v1/config', base), {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await this.agentToken(name)}`, [CONTROLLER_HEADER]: this.o.identity },
        body: JSON.stringify({ generation, hash: want.hash, toml: want.toml, storage: want.storage }),
        signal,
      });
      text = await res.text();
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.metrics.pushFailures.inc();
      const message = `push to ${endpoint} failed: ${errText(err)}`.slice(0, MAX_FAILURE_MESSAGE);
      record(message);
      throw new Error(message);
    }
    if (res.status === 200) {
      this.metrics.pushes.inc();
      record(null);
      this.o.log.debug({ node: name, generation, hash: want.hash }, 'configuration pushed');
      return;
    }
    this.metrics.pushFailures.inc();
    let detail = text.slice(0, 300);
    let applied: number | null = null;
    try {
      const j = JSON.parse(text) as { error?: unknown; generation?: unknown };
      if (typeof j.error === 'string') detail = j.error;
      if (typeof j.generation === 'number' && Number.isSafeInteger(j.generation)) applied = j.generation;
    } catch {
      // not JSON
    }
    const message = `agent refused the configuration (HTTP ${res.status}): ${detail}`.slice(0, MAX_FAILURE_MESSAGE);
    if (res.status === 409) {
      // the agent has applied a newer generation than we knew of: retry above it
      this.pushed.set(name, { hash: '', generation: Math.max(generation, applied ?? generation), agentState: '', at: Date.now(), error: null, permanent: false });
      throw new Error(message);
    }
    // 4xx: this configuration would be refused again (pushed again when it or the agent changes);
    // 5xx (the agent starting or stopping) and 429 (the agent's TokenReview budget spent): retried with backoff
    const transient = res.status >= 500 || res.status === 429;
    record(message, !transient);
    if (transient) throw new Error(message);
  }

  private async reconcileStatus(kind: Kind, name: string): Promise<void> {
    const obj = this.informerOf(kind).get(name);
    if (!obj) {
      this.commandRecords.delete(`${kind}/${name}`);
      return;
    }
    const a = kind === 'sep' ? this.acceptedOf('sep', obj) : this.acceptedOf('sbe', obj);
    const generation = obj.metadata?.generation ?? 0;
    let selected = 0;
    let applied = 0;
    const failures: { node: string; message: string }[] = [];
    for (const node of this.nodes.list()) {
      const labels = node.metadata?.labels ?? {};
      if (!selects(labels, a.selector)) continue;
      selected++;
      if (!a.ok) continue;
      const nodeName = node.metadata?.name ?? '';
      const want = this.desired(node);
      const lease = this.agentLease(nodeName);
      // applied, unless the agent says this backend did not start (a degraded start, docs/lifecycle.md)
      const notRunning = kind === 'sbe' && lease ? degradedBackend(annotations(lease)[ANNOTATION_DEGRADED], name) : null;
      if (lease && annotations(lease)[ANNOTATION_HASH] === want.hash && notRunning === null) applied++;
      else if (notRunning !== null) failures.push({ node: nodeName, message: notRunning.slice(0, MAX_FAILURE_MESSAGE) });
      else {
        const p = this.pushed.get(nodeName);
        if (p && p.hash === want.hash && p.error) failures.push({ node: nodeName, message: p.error.slice(0, MAX_FAILURE_MESSAGE) });
      }
    }
    failures.sort((x, y) => x.node.localeCompare(y.node));
    const old = (obj.status ?? {}) as { conditions?: Condition[] };
    const cond = (type: string, status: 'True' | 'False', reason: string, message: string): Condition => {
      const prev = old.conditions?.find((c) => c.type === type);
      const same = prev && prev.status === status;
      return { type, status, observedGeneration: generation, lastTransitionTime: same ? prev.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z'), reason, message };
    };
    const accepted = a.ok
      ? cond(CONDITION_ACCEPTED, 'True', 'Valid', a.filterErrors.length > 0 ? `valid; ${a.filterErrors.length} filter(s) do not compile and are skipped (see status.filterErrors)` : 'the spec is valid')
      : cond(CONDITION_ACCEPTED, 'False', 'InvalidSpec', a.message || 'invalid');
    const ready = !a.ok
      ? cond(CONDITION_READY, 'False', 'NotAccepted', 'the spec is not accepted; nothing is applied (see the Accepted condition)')
      : applied === selected
        ? cond(CONDITION_READY, 'True', 'Applied', `applied on ${applied} of ${selected} selected nodes`)
        : cond(CONDITION_READY, 'False', failures.length > 0 ? 'ApplyFailed' : 'Applying', `applied on ${applied} of ${selected} selected nodes${failures.length > 0 ? `; ${failures.length} failed (see status.failures)` : ''}`);
    const status: Record<string, unknown> = {
      observedGeneration: generation,
      conditions: [accepted, ready],
      nodesSelected: selected,
      nodesApplied: applied,
      nodesFailed: failures.length,
      ready: `${applied}/${selected}`,
    };
    if (failures.length > 0) status.failures = failures.slice(0, MAX_FAILURES);
    if (kind === 'sbe' && a.filterErrors.length > 0) status.filterErrors = a.filterErrors;
    const command = await this.commandStatus(kind, obj, a.ok, a.selector, status);
    if (command === 'ran') return;
    if (command) status.command = command;
    const mine = this.statusWritten.get(`${kind}/${name}`);
    const cacheBehindUs = mine !== undefined && mine.uid === obj.metadata?.uid && mine.resourceVersion !== obj.metadata?.resourceVersion && !isDeepStrictEqual(mine.status, status);
    if (!cacheBehindUs && isDeepStrictEqual(status, obj.status ?? {})) return;
    if (!this.elector.isLeader()) return;
    try {
      await this.writeStatus(kind, obj, status);
    } catch (err) {
      if (!isConflict(err)) throw err;
      // The cache is behind the object, mostly behind our own previous status
      // write whose watch event is still on its way (seconds while a new CRD's
      // watch cache initializes). Failing here would back the key off
      // exponentially and leave a stale status for many seconds. The counts
      // come from the Nodes and Leases, not from the object: write them on the
      // current object as long as it is the spec we judged and nobody else
      // recorded a command meanwhile; otherwise look again.
      const fresh = await this.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL[kind], name }) as CustomResource;
      const freshCommand = (fresh.status as { command?: unknown } | undefined)?.command;
      if ((fresh.metadata?.generation ?? 0) !== generation || !isDeepStrictEqual(freshCommand, status.command)) {
        this.queue.add(`${kind}/${name}`);
        return;
      }
      if (!isDeepStrictEqual(status, fresh.status ?? {}) && this.elector.isLeader()) await this.writeStatus(kind, fresh, status);
    }
  }

  private async writeStatus(kind: Kind, obj: CustomResource, status: Record<string, unknown>): Promise<CustomResource> {
    const written = await this.custom.replaceClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL[kind], name: obj.metadata?.name ?? '', body: { ...obj, status } }) as CustomResource;
    this.metrics.statusWrites.inc();
    this.statusWritten.set(`${kind}/${obj.metadata?.name ?? ''}`, { uid: written.metadata?.uid ?? '', resourceVersion: written.metadata?.resourceVersion ?? '', status });
    return written;
  }

  // ---------------------------------------------------------------------------
  // one-off commands (commands.ts)

  /**
   * status.command for a resource: what was recorded, or — for a new
   * annotation value — the outcome of running it ('ran': it was run here
   * and the status written already), or why it is not run.
   */
  private async commandStatus(kind: Kind, obj: CustomResource, accepted: boolean, selector: unknown, status: Record<string, unknown>): Promise<CommandStatus | undefined | 'ran'> {
    const id = `${kind}/${obj.metadata?.name ?? ''}`;
    const uid = obj.metadata?.uid ?? '';
    const mine = this.commandRecords.get(id);
    const own = mine && mine.uid === uid && mine.term === this.term ? mine.status : undefined;
    const fromStatus = CommandStatus.safeParse(obj.status?.command);
    const recorded = own ?? (fromStatus.success ? fromStatus.data : undefined);
    const decision = decideCommand(annotations(obj)[COMMAND_ANNOTATION], recorded?.request);
    const now = isoNow();
    const remember = (s: CommandStatus, action: string, result: string): CommandStatus => {
      this.commandRecords.set(id, { uid, term: this.term, status: s });
      this.metrics.commands.inc({ action, result });
      return s;
    };
    if (decision.kind === 'invalid') {
      this.o.log.info({ resource: id, request: decision.request, err: decision.message }, 'command refused');
      return remember(invalidStatus(decision.request, decision.message, now), 'unknown', 'invalid');
    }
    if (decision.kind === 'run') {
      if (isResourceAction(decision.action) && !accepted) return remember(notAcceptedStatus(decision.request, decision.action, kind, now), decision.action, 'failed');
      await this.runCommand(kind, obj, selector, status, decision.request, decision.action);
      return 'ran';
    }
    if (recorded && isInterrupted(recorded, own !== undefined)) return remember(interruptedStatus(recorded, now), recorded.action ?? 'unknown', 'interrupted');
    return recorded;
  }

  /**
   * Record the request as Running (a write guarded by the cached
   * resourceVersion: from an outdated cache it fails, and nothing runs),
   * send it to every selected node's agent at once, record the outcome.
   */
  private async runCommand(kind: Kind, obj: CustomResource, selector: unknown, status: Record<string, unknown>, request: string, action: CommandAction): Promise<void> {
    if (!this.elector.isLeader()) return;
    const name = obj.metadata?.name ?? '';
    const id = `${kind}/${name}`;
    const uid = obj.metadata?.uid ?? '';
    const term = this.term;
    const targets: { node: string; endpoint: string; url: URL }[] = [];
    const refused: NodeResult[] = [];
    const unregistered: string[] = [];
    for (const node of this.nodes.list()) {
      if (!selects(node.metadata?.labels ?? {}, selector)) continue;
      const n = node.metadata?.name ?? '';
      const agent = this.registeredAgent(n);
      if (agent.ok) targets.push({ node: n, endpoint: agent.endpoint, url: agent.url });
      else if (agent.refused) {
        // an agent, but not on the node's address: not asked, reported as a failure of that node
        this.metrics.pushRefused.inc({ reason: agent.refused });
        refused.push({ node: n, ok: false, message: agent.error });
      } else unregistered.push(n);
    }
    targets.sort((x, y) => x.node.localeCompare(y.node));
    unregistered.sort();
    const startedAt = isoNow();
    const running: CommandStatus = {
      request, action, phase: 'Running', startedAt, nodesTargeted: targets.length + refused.length, nodesSucceeded: 0, nodesFailed: 0,
      message: `sending ${action} to ${targets.length} agent(s)`,
    };
    const written = await this.writeStatus(kind, obj, { ...status, command: running });
    this.commandRecords.set(id, { uid, term, status: running });
    this.o.log.info({ resource: id, request, action, nodes: targets.length }, 'running command');
    const path = commandPath(kind, name, action);
    const results = [...refused, ...await Promise.all(targets.map((t) => this.sendCommand(t.node, t.endpoint, t.url, path)))];
    if (this.abort.signal.aborted || !this.elector.isLeader() || term !== this.term) {
      // no longer the leader (of this term): the outcome is not recorded here; the next leader reports it interrupted
      return;
    }
    const done = completedStatus({ request, action, startedAt, kind, name }, results, unregistered, isoNow());
    this.commandRecords.set(id, { uid, term, status: done });
    this.metrics.commands.inc({ action, result: done.phase === 'Succeeded' ? 'succeeded' : 'failed' });
    this.o.log.info({ resource: id, request, action, succeeded: done.nodesSucceeded, failed: done.nodesFailed }, 'command done');
    try {
      await this.writeStatus(kind, written, { ...status, command: done });
    } catch (err) {
      // recorded here: the next status reconcile writes it
      this.o.log.debug({ resource: id, err: errText(err) }, 'writing the command outcome failed; retrying');
      this.queue.add(id);
    }
  }

  private async sendCommand(node: string, endpoint: string, base: URL, path: string): Promise<NodeResult> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.commandTimeoutMs ?? 30_000)]);
    let res: Response;
    let text: string;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(new URL(path, base), {
          method: 'POST',
          headers: { authorization: `Bearer ${await this.agentToken(node)}`, [CONTROLLER_HEADER]: this.o.identity },
          signal,
        });
        text = await res.text();
      } catch (err) {
        return { node, ok: false, message: `${endpoint} could not be asked: ${errText(err)}` };
      }
      // the agent's TokenReview budget was spent (429/503 with retry-after): nothing ran, so asking
      // again is safe; a few times, within the command's timeout
      const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
      if ((res.status !== 429 && res.status !== 503) || !(retryAfter >= 0) || attempt >= COMMAND_ATTEMPTS) break;
      try {
        await sleep(Math.min(retryAfter, 5) * 1000, undefined, { signal });
      } catch {
        break;
      }
    }
    if (res.status === 200) return { node, ok: true, message: '' };
    let detail = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { error?: unknown };
      if (typeof j.error === 'string') detail = j.error;
    } catch {
      // not JSON
    }
    return { node, ok: false, message: `the agent answered HTTP ${res.status}: ${detail}` };
  }
}

/** now, as metav1.Time writes it (RFC 3339, seconds, UTC) */
function isoNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** HTTP 409 from client-node: the object changed since the resourceVersion we wrote against */
function isConflict(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 409;
}

/** an error in one short line: client-node's ApiException message carries the whole response with headers */
export function errText(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'number' && e.body !== undefined) {
    let msg = '';
    try {
      const b = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: unknown };
      if (typeof b.message === 'string') msg = b.message;
    } catch {
      // not JSON
    }
    return `HTTP ${e.code}${msg ? `: ${msg}` : ''}`.slice(0, 300);
  }
  return String(e?.message ?? err).split('\n')[0]!.slice(0, 300);
}

function selects(labels: Readonly<Record<string, string>>, selector: unknown): boolean {
  if (selector === undefined || selector === null) return true;
  try {
    return matchesSelector(labels, selector as Parameters<typeof matchesSelector>[1]);
  } catch {
    return false;
  }
}
