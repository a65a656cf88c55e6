// The controller (docs/controller.md; docs/architecture.md "Components"), in
// controller-runtime's shape: informers on StorageEventPlugins,
// StorageBackends, Nodes and the agents' Leases (cache.ts) feed a keyed work
// queue (queue.ts); each key has a reconciler that reads only from the
// caches, is idempotent and returns a Result (result.ts) the queue acts on:
//   node/<name>             the push reconciler (reconcile-push.ts): render the
//                           node's configuration, push it to its agent
//                           (agent-client.ts) when the agent's Lease shows another hash
//   sep/<name>, sbe/<name>  the status reconciler (reconcile-status.ts) with the
//                           command reconciler (reconcile-commands.ts): validate,
//                           count nodes, run a new one-off command, write status
// This file wires them: informer events become keys (a spec's
// metadata.generation, a Node's labels and addresses, an agent Lease), and
// leadership (leader.ts) decides who acts. Only the leader reconciles and
// pushes; every replica keeps its caches warm so a standby takes over at
// once. The controller's token goes only to an endpoint on the node's own
// address (endpoint.ts): a Lease that names another address gets no push and
// no command, and says why in status.
import type { KubeClient } from '../k8s/http.ts';
import { Informer, type KubeLease, type KubeNode, type KubeObject } from '../k8s/informer.ts';
import { GROUP, VERSION } from '../crd/schemas.ts';
import type { Logger } from '../log/logger.ts';
import { COMMAND_ANNOTATION } from './commands.ts';
import { AgentClient } from './agent-client.ts';
import { type AgentTokenSource, AgentTokens, tokenRequestIssuer } from './agent-tokens.ts';
import {
  AGENT_LEASE_PREFIX, annotations, type CachedInformer, ClusterView, type CustomResource, type Kind, leanLease, leanNode, leanResource, PLURAL, selects, specVersion,
} from './cache.ts';
import { LeaderElector } from './leader.ts';
import { ControllerMetrics } from './metrics.ts';
import { type ProbeServer, serveProbes } from '../metrics/http.ts';
import { WorkQueue } from './queue.ts';
import { CommandReconciler } from './reconcile-commands.ts';
import { type Leadership, PushReconciler } from './reconcile-push.ts';
import { StatusReconciler } from './reconcile-status.ts';
import { DONE, errText, isError, type Result } from './result.ts';

export const CONTROLLER_LEASE = 'peripety-controller';
// the agent's Lease annotations, one definition for both sides (src/contracts/lease.ts)
import { ANNOTATION_HASH } from '../contracts/lease.ts';
import { Backoff } from '../contracts/backoff.ts';
import type { PodOwner } from '../contracts/owner.ts';
/** the controller's ServiceAccount as the chart names it (--service-account) */
export const DEFAULT_SERVICE_ACCOUNT = 'peripety-controller';

export interface ControllerOptions {
  /** the API server with the controller's credentials (src/k8s/http.ts) */
  client: KubeClient;
  namespace: string;
  identity: string;
  /** this replica's own Pod: the leader Lease's owner while it leads (none when absent) */
  owner?: PodOwner | null;
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

const nodeKey = (n: string) => `node/${n}`;

export class Controller {
  readonly metrics: ControllerMetrics;
  readonly queue: WorkQueue;
  readonly elector: LeaderElector;
  private readonly view: ClusterView;
  private readonly push: PushReconciler;
  private readonly status: StatusReconciler;
  private readonly commands: CommandReconciler;
  private readonly agents: AgentClient;
  private readonly informers: { name: string; inf: CachedInformer<KubeObject>; backoff: Backoff; timer: NodeJS.Timeout | null }[] = [];
  /**
   * The version of each resource's spec seen last (cache.ts specVersion:
   * uid and metadata.generation) and its nodeSelector: a new version
   * re-renders the nodes selected before and after; a status or metadata
   * change (same generation) renders nothing again.
   */
  private readonly lastVersion = new Map<string, string>();
  private readonly lastSelector = new Map<string, unknown>();
  /** leadership terms of this replica */
  private term = 0;
  /** last seen peripety.io/command per resource: a change enqueues the resource */
  private readonly lastCommand = new Map<string, string | undefined>();
  /**
   * A Node has no generation for what the controller reads from it: its
   * labels (metadata: they decide what it runs) and its addresses (status:
   * where its agent may be reached, endpoint.ts). Their JSON is the key of
   * each; the kubelet's other status updates cause no work.
   */
  private readonly nodeLabels = new Map<string, string>();
  private readonly nodeAddresses = new Map<string, string>();
  private abort = new AbortController();
  private resyncTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private probes: ProbeServer | null = null;

  private readonly o: ControllerOptions;

  constructor(o: ControllerOptions) {
    this.o = o;
    const client = o.client;
    this.queue = new WorkQueue((k) => this.reconcile(k), {
      workers: o.workers ?? 32,
      onError: (key, err, ms) => o.log.warn({ key, err: errText(err), retryInMs: ms }, 'reconcile failed'),
      // in the resource's status already; a change of the inputs brings the key back
      onTerminal: (key, err) => o.log.debug({ key, err }, 'reconcile failed; not retried until something changes'),
    });
    this.metrics = new ControllerMetrics(() => this.queue.depth, () => this.countConfigured(), () => this.elector.isLeader());
    // each cache keeps only what the reconcilers read (cache.ts leanResource, leanNode, leanLease)
    this.view = new ClusterView({
      seps: new Informer<CustomResource>(client, `/apis/${GROUP}/${VERSION}/${PLURAL.sep}`, leanResource),
      sbes: new Informer<CustomResource>(client, `/apis/${GROUP}/${VERSION}/${PLURAL.sbe}`, leanResource),
      nodes: new Informer<KubeNode>(client, '/api/v1/nodes', leanNode),
      leases: new Informer<KubeLease>(client, `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/leases`, leanLease),
    }, o.namespace);
    this.wire('storageeventplugins', this.view.seps, (obj, del) => this.onResource('sep', obj, del));
    this.wire('storagebackends', this.view.sbes, (obj, del) => this.onResource('sbe', obj, del));
    this.wire('nodes', this.view.nodes, (obj, del) => this.onNode(obj, del));
    this.wire('leases', this.view.leases, (obj) => this.onLease(obj));
    const leadership: Leadership = { isLeader: () => this.elector.isLeader(), signal: () => this.abort.signal, term: () => this.term };
    const agents = this.agents = new AgentClient({
      // the per-node tokens for the agents (never one token for all: issue 10 A2)
      tokens: o.agentTokens ?? new AgentTokens({
        issue: tokenRequestIssuer(client, o.namespace, o.serviceAccount ?? DEFAULT_SERVICE_ACCOUNT),
        expirationSeconds: o.agentTokenSeconds,
        registry: this.metrics.registry,
      }),
      identity: o.identity,
      pushTimeoutMs: o.pushTimeoutMs,
      commandTimeoutMs: o.commandTimeoutMs,
    });
    this.push = new PushReconciler({ view: this.view, client: agents, metrics: this.metrics, log: o.log, leadership, enqueue: (k) => this.queue.add(k) });
    this.status = new StatusReconciler({ view: this.view, client, push: this.push, commands: () => this.commands, leadership, metrics: this.metrics });
    this.commands = new CommandReconciler({
      view: this.view, client: agents, metrics: this.metrics, log: o.log, leadership, writeStatus: (kind, obj, status) => this.status.write(kind, obj, status),
    });
    this.elector = new LeaderElector({
      client, namespace: o.namespace, name: CONTROLLER_LEASE, identity: o.identity, owner: o.owner, log: o.log,
      leaseDurationMs: o.leaseDurationMs, renewMs: o.renewMs, retryMs: o.retryMs,
      onStartedLeading: () => {
        this.abort = new AbortController();
        this.term++;
        this.enqueueAll();
      },
      onStoppedLeading: () => this.abort.abort(),
    });
  }

  private wire<T extends KubeObject>(name: string, inf: CachedInformer<T>, on: (obj: T, deleted: boolean) => void): void {
    // an informer that fails restarts after 0.5 s, doubling to 30 s; any event it delivers again resets that
    const entry = { name, inf: inf as unknown as CachedInformer<KubeObject>, backoff: new Backoff({ initialMs: 500, maxMs: 30_000 }), timer: null as NodeJS.Timeout | null };
    this.informers.push(entry);
    inf.on('add', (obj) => { entry.backoff.reset(); on(obj, false); });
    inf.on('update', (obj) => { entry.backoff.reset(); on(obj, false); });
    inf.on('delete', (obj) => on(obj, true));
    inf.on('error', (err: unknown) => {
      if (this.stopped) return;
      const ms = entry.backoff.next();
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
    while (this.informers.some((i) => !i.inf.synced)) {
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, 50));
      if ((waited += 50) % 10_000 === 0) this.o.log.info({ synced: this.informers.filter((i) => i.inf.synced).map((i) => i.name) }, 'waiting for the informer caches');
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
    this.agents.close();
    await this.probes?.close();
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** serve /metrics, /healthz and /readyz (src/metrics/http.ts, as the agent does); resolves with the port */
  async serveMetrics(host: string, port: number): Promise<number> {
    this.probes = await serveProbes({ registry: this.metrics.registry, host, port });
    return this.probes.port;
  }

  // ---------------------------------------------------------------------------
  // events → keys

  private enqueueAll(): void {
    for (const n of this.view.nodes.list()) this.queue.add(nodeKey(n.metadata?.name ?? ''));
    // and the agent Leases of nodes that do not exist (counted as refused: PushReconciler.noteOrphanLease)
    for (const l of this.view.leases.list()) this.onLease(l);
    this.enqueueStatuses();
  }

  private onResource(kind: Kind, obj: CustomResource, deleted: boolean): void {
    const name = obj.metadata?.name ?? '';
    const id = `${kind}/${name}`;
    if (deleted) {
      this.lastCommand.delete(id);
      this.commands.forget(id);
      this.status.forget(id);
    } else {
      const command = annotations(obj)[COMMAND_ANNOTATION];
      if (!this.lastCommand.has(id) || this.lastCommand.get(id) !== command) {
        this.lastCommand.set(id, command);
        this.queue.add(id);
      }
    }
    const version = deleted ? '' : specVersion(obj);
    if (this.lastVersion.get(id) === version && !deleted) {
      // a status or metadata change: nothing to render again
      return;
    }
    this.view.invalidate();
    // the nodes selected before the change (none for a new resource) and after it (none once deleted)
    const known = this.lastSelector.has(id);
    const before = this.lastSelector.get(id);
    const after = (obj.spec as { nodeSelector?: unknown } | undefined)?.nodeSelector;
    if (deleted) {
      this.lastVersion.delete(id);
      this.lastSelector.delete(id);
      this.view.forgetResource(kind, name);
    } else {
      this.lastVersion.set(id, version);
      this.lastSelector.set(id, after);
      this.queue.add(id);
    }
    for (const n of this.view.nodes.list()) {
      const labels = n.metadata?.labels ?? {};
      if ((known && selects(labels, before)) || (!deleted && selects(labels, after))) this.queue.add(nodeKey(n.metadata?.name ?? ''));
    }
  }

  private onNode(node: KubeNode, deleted: boolean): void {
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
    this.view.invalidate();
    this.queue.add(nodeKey(name));
    this.enqueueStatuses();
  }

  private onLease(lease: KubeLease): void {
    const name = lease.metadata?.name ?? '';
    if (!name.startsWith(AGENT_LEASE_PREFIX)) return;
    // the node is the one the name says (the name is what the admission policy binds to the writer's node)
    this.queue.add(nodeKey(name.slice(AGENT_LEASE_PREFIX.length)));
  }

  private enqueueStatuses(): void {
    for (const kind of ['sep', 'sbe'] as const) {
      for (const r of this.view.informerOf(kind).list()) this.queue.add(`${kind}/${r.metadata?.name ?? ''}`);
    }
  }

  // ---------------------------------------------------------------------------
  // reconcile: dispatch a key to its reconciler

  private async reconcile(key: string): Promise<Result> {
    if (!this.elector.isLeader()) return DONE;
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const end = this.metrics.duration.startTimer({ kind });
    // 'error': the queue retries it with backoff (a throw or a transient error); a terminal error
    // (an agent refused the configuration, no agent) is reported in status and counted as success
    let result = 'success';
    try {
      const r = kind === 'node' ? await this.push.reconcile(name) : await this.status.reconcile(kind as Kind, name);
      if (isError(r) && !r.terminal) result = 'error';
      return r;
    } catch (err) {
      result = 'error';
      throw err;
    } finally {
      end({ result });
      this.metrics.reconciles.inc({ kind, result });
    }
  }

  private countConfigured(): number {
    let n = 0;
    for (const node of this.view.nodes.list()) {
      const lease = this.view.agentLease(node.metadata?.name ?? '');
      if (lease && annotations(lease)[ANNOTATION_HASH] === this.view.desired(node).hash) n++;
    }
    return n;
  }
}
