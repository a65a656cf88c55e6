// The controller's view of the cluster, shared by its reconcilers: the
// informer caches (controller.ts starts them) and what is derived from them
// — each resource's validation, each node's rendered configuration and its
// agent's registration. Reconciles read only from here, never from the API.
//
// Change detection is by metadata.generation, not by comparing specs: the
// API server bumps a custom resource's generation on every change of its
// spec and on nothing else (the CRDs have the status subresource, so our
// status writes do not bump it; the command annotation is metadata and does
// not either). So (uid, generation) names one version of a spec: validation
// is memoized by it, and the controller re-renders only when it moves.
// Nodes have no generation for what matters here (labels are metadata;
// addresses are status): controller.ts keys them by their labels and
// addresses instead.
import type { Informer, KubeLease, KubeNode, KubeObject } from '../k8s/informer.ts';
import { type FilterError, type StorageBackendSpec, type StorageEventPluginSpec } from '../crd/schemas.ts';
import { problemsMessage, validateStorageBackend, validateStorageEventPlugin } from '../crd/validate.ts';
import { ANNOTATION_ENDPOINT } from '../contracts/lease.ts';
import { checkEndpoint, type PushRefusedReason } from './endpoint.ts';
import { renderNode, type Named, type RenderedNode } from './render.ts';
import { matchesSelector } from './selector.ts';

export const AGENT_LEASE_PREFIX = 'peripety-agent-';
/** an agent Lease expired for longer than this is an agent that is gone */
const LEASE_GRACE_MS = 5_000;

export const PLURAL = { sep: 'storageeventplugins', sbe: 'storagebackends' } as const;
export type Kind = keyof typeof PLURAL;

export interface CustomResource extends KubeObject {
  spec?: unknown;
  status?: Record<string, unknown>;
}

export type CachedInformer<T extends KubeObject> = Pick<Informer<T>, 'list' | 'get' | 'on' | 'start' | 'stop' | 'synced'>;

/**
 * What the informers keep of a Node: its name, labels and addresses (what
 * decides what it runs and where its agent may be reached). A real Node's
 * status (images, conditions, capacity) and managedFields are many KiB each.
 */
export function leanNode(n: KubeNode): KubeNode {
  const m = n.metadata ?? {};
  return {
    metadata: { name: m.name, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels },
    status: { addresses: n.status?.addresses ?? [] },
  };
}

/** kubectl apply's copy of the whole object: as large as the spec again, never read here */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * What the informers keep of a StorageEventPlugin or StorageBackend: all but
 * managedFields and kubectl's last-applied copy. The status writes send the
 * cached object back through /status, which changes nothing but the status
 * (metadata left out there is not removed).
 */
export function leanResource(r: CustomResource): CustomResource {
  const m = r.metadata;
  if (!m || (m.managedFields === undefined && m.annotations?.[LAST_APPLIED] === undefined)) return r;
  const { managedFields: _, ...metadata } = m;
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: __, ...rest } = metadata.annotations;
    metadata.annotations = rest;
  }
  return { ...r, metadata };
}

/** What the informers keep of a Lease: its name, namespace, annotations (an agent's registration) and its times. */
export function leanLease(l: KubeLease): KubeLease {
  const m = l.metadata ?? {};
  const s = l.spec ?? {};
  return {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, annotations: m.annotations },
    spec: { renewTime: s.renewTime, leaseDurationSeconds: s.leaseDurationSeconds },
  };
}

export const annotations = (o: KubeObject | undefined): Record<string, string> => o?.metadata?.annotations ?? {};

/**
 * One version of a resource's spec: its uid (a re-created resource is
 * another one) and metadata.generation. Without a generation (an API server
 * always sets one) the resourceVersion stands in: every change is then a new
 * version, which costs a validation, never a missed change.
 */
export function specVersion(obj: KubeObject): string {
  const m = obj.metadata;
  return `${m?.uid ?? ''}/${m?.generation ?? `rv:${m?.resourceVersion ?? ''}`}`;
}

export function selects(labels: Readonly<Record<string, string>>, selector: unknown): boolean {
  if (selector === undefined || selector === null) return true;
  try {
    return matchesSelector(labels, selector as Parameters<typeof matchesSelector>[1]);
  } catch {
    return false;
  }
}

export interface Accepted<S> {
  /** the version of the spec it was computed from (specVersion) */
  version: string;
  ok: boolean;
  message: string;
  spec: S | null;
  filterErrors: FilterError[];
  selector: unknown;
}

/** The node's agent endpoint from its registration Lease, or why there is no usable agent. */
export type RegisteredAgent =
  | { ok: true; endpoint: string; url: URL }
  /** `refused`: there is one, but its endpoint is not on the node's own address (endpoint.ts): nothing may be sent there */
  | { ok: false; error: string; refused?: PushRefusedReason };

export interface Informers {
  seps: CachedInformer<CustomResource>;
  sbes: CachedInformer<CustomResource>;
  nodes: CachedInformer<KubeNode>;
  leases: CachedInformer<KubeLease>;
}

export class ClusterView {
  readonly seps: CachedInformer<CustomResource>;
  readonly sbes: CachedInformer<CustomResource>;
  readonly nodes: CachedInformer<KubeNode>;
  readonly leases: CachedInformer<KubeLease>;
  private readonly namespace: string;
  private readonly accepted = { sep: new Map<string, Accepted<StorageEventPluginSpec>>(), sbe: new Map<string, Accepted<StorageBackendSpec>>() };
  /** bumped on every spec version or node label change: the render memo is valid for one version */
  private version = 0;
  private readonly renders = new Map<string, { version: number; rendered: RenderedNode }>();

  constructor(i: Informers, namespace: string) {
    this.seps = i.seps;
    this.sbes = i.sbes;
    this.nodes = i.nodes;
    this.leases = i.leases;
    this.namespace = namespace;
  }

  informerOf(kind: Kind): CachedInformer<CustomResource> {
    return kind === 'sep' ? this.seps : this.sbes;
  }

  /** something a rendering depends on changed (a spec version, a node's labels): render again */
  invalidate(): void {
    this.version++;
  }

  /** the resource is deleted: drop its validation */
  forgetResource(kind: Kind, name: string): void {
    this.accepted[kind].delete(name);
  }

  /** validation of a resource, memoized by the version of its spec */
  acceptedOf(kind: 'sep', obj: CustomResource): Accepted<StorageEventPluginSpec>;
  acceptedOf(kind: 'sbe', obj: CustomResource): Accepted<StorageBackendSpec>;
  acceptedOf(kind: Kind, obj: CustomResource): Accepted<StorageEventPluginSpec> | Accepted<StorageBackendSpec>;
  acceptedOf(kind: Kind, obj: CustomResource): Accepted<StorageEventPluginSpec> | Accepted<StorageBackendSpec> {
    const name = obj.metadata?.name ?? '';
    // validation depends on the name (the map key) and the spec only
    const version = specVersion(obj);
    const cached = this.accepted[kind].get(name);
    if (cached && cached.version === version) return cached;
    const selector = (obj.spec as { nodeSelector?: unknown } | undefined)?.nodeSelector;
    let a: Accepted<StorageEventPluginSpec> | Accepted<StorageBackendSpec>;
    if (kind === 'sep') {
      const v = validateStorageEventPlugin(obj);
      a = { version, ok: v.ok, message: problemsMessage(v.problems), spec: v.ok ? v.spec : null, filterErrors: [], selector };
      this.accepted.sep.set(name, a);
    } else {
      const v = validateStorageBackend(obj);
      let spec = v.ok ? v.spec : null;
      if (spec && v.filterErrors.length > 0) {
        // the filters that compile are applied; the broken ones are only reported
        const bad = new Set(v.filterErrors.map((e) => e.index));
        spec = { ...spec, filters: (spec.filters ?? []).filter((_, i) => !bad.has(i)) };
      }
      a = { version, ok: v.ok, message: problemsMessage(v.problems), spec, filterErrors: v.filterErrors, selector };
      this.accepted.sbe.set(name, a);
    }
    return a;
  }

  private acceptedSpecs<S>(kind: Kind): Named<S>[] {
    const out: Named<S>[] = [];
    for (const r of this.informerOf(kind).list()) {
      const a = this.acceptedOf(kind, r) as Accepted<S>;
      if (a.spec) out.push({ name: r.metadata?.name ?? '', spec: a.spec });
    }
    return out;
  }

  /** the configuration a node should run now (memoized until a spec or node changes) */
  desired(node: KubeNode): RenderedNode {
    const name = node.metadata?.name ?? '';
    const m = this.renders.get(name);
    if (m && m.version === this.version) return m.rendered;
    const rendered = renderNode({ name, labels: node.metadata?.labels ?? {} }, this.acceptedSpecs<StorageEventPluginSpec>('sep'), this.acceptedSpecs<StorageBackendSpec>('sbe'));
    this.renders.set(name, { version: this.version, rendered });
    return rendered;
  }

  /** what was rendered for the node last (its plugins and backends had their status counted against it) */
  lastRender(name: string): RenderedNode | undefined {
    return this.renders.get(name)?.rendered;
  }

  /** the node is gone */
  forgetNode(name: string): void {
    this.renders.delete(name);
  }

  agentLease(node: string): KubeLease | undefined {
    return this.leases.get(`${AGENT_LEASE_PREFIX}${node}`, this.namespace);
  }

  /** the node's agent endpoint from its registration Lease, checked against the Node's own addresses (endpoint.ts) */
  registeredAgent(name: string, now = Date.now()): RegisteredAgent {
    const lease = this.agentLease(name);
    const endpoint = annotations(lease)[ANNOTATION_ENDPOINT];
    if (!lease || !endpoint) return { ok: false, error: `no agent registered (no Lease ${AGENT_LEASE_PREFIX}${name} with ${ANNOTATION_ENDPOINT} in ${this.namespace})` };
    const node = this.nodes.get(name);
    const check = checkEndpoint(name, endpoint, node && { name, addresses: node.status?.addresses ?? [] });
    if (!check.ok) return { ok: false, error: check.message, refused: check.reason };
    const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : NaN;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (duration > 0 && Number.isFinite(renew) && renew + duration < now - LEASE_GRACE_MS) {
      // the agent stopped renewing: it is gone (a resync or its next renewal brings the node back)
      return { ok: false, error: `agent gone (its Lease was last renewed ${new Date(renew).toISOString()})` };
    }
    return { ok: true, endpoint, url: check.url };
  }
}
