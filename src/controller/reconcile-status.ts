// The status reconciler (keys sep/<name>, sbe/<name>; docs/controller.md
// "Status"): validate the resource, count its selected, applied and failed
// nodes from the Nodes, the agents' Leases and the last pushes, run a new
// one-off command (reconcile-commands.ts), and write status through /status
// only when it changed. statusOf is the pure part; status.observedGeneration
// and the conditions' observedGeneration name the spec generation judged.
import { isDeepStrictEqual } from 'node:util';
import type { KubeClient } from '../k8s/http.ts';
import {
  CONDITION_ACCEPTED, CONDITION_READY, type Condition, GROUP, MAX_FAILURE_MESSAGE, MAX_FAILURES, VERSION,
} from '../crd/schemas.ts';
import { ANNOTATION_DEGRADED, ANNOTATION_HASH, degradedBackend } from '../contracts/lease.ts';
import { type Accepted, annotations, type ClusterView, type CustomResource, type Kind, PLURAL, selects } from './cache.ts';
import { type CommandReconciler, isoNow } from './reconcile-commands.ts';
import type { Leadership, PushReconciler } from './reconcile-push.ts';
import { DONE, requeueAfter, type Result } from './result.ts';

/** one selected node as the status counts it */
export interface NodeState {
  node: string;
  applied: boolean;
  /** why it is not applied, when that is known to have failed */
  failure: string | null;
}

/**
 * The status a resource should have (without status.command): its
 * conditions (a lastTransitionTime kept while a condition's status stays),
 * the counts and the failures, from its validation and its selected nodes.
 */
export function statusOf(kind: Kind, a: Accepted<unknown>, generation: number, old: { conditions?: Condition[] }, nodes: readonly NodeState[], now: string): Record<string, unknown> {
  const selected = nodes.length;
  const applied = nodes.filter((n) => n.applied).length;
  const failures = nodes.flatMap((n) => (n.failure !== null ? [{ node: n.node, message: n.failure.slice(0, MAX_FAILURE_MESSAGE) }] : []));
  failures.sort((x, y) => x.node.localeCompare(y.node));
  const cond = (type: string, status: 'True' | 'False', reason: string, message: string): Condition => {
    const prev = old.conditions?.find((c) => c.type === type);
    const same = prev && prev.status === status;
    return { type, status, observedGeneration: generation, lastTransitionTime: same ? prev.lastTransitionTime : now, reason, message };
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
  return status;
}

export interface StatusReconcilerDeps {
  view: ClusterView;
  client: Pick<KubeClient, 'call'>;
  push: PushReconciler;
  commands: () => CommandReconciler;
  leadership: Leadership;
  metrics: { statusWrites: { inc(): void } };
}

/** HTTP 409 (KubeApiError): the object changed since the resourceVersion we wrote against */
function isConflict(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 409;
}

const resourcePath = (kind: Kind, name: string): string => `/apis/${GROUP}/${VERSION}/${PLURAL[kind]}/${encodeURIComponent(name)}`;

export class StatusReconciler {
  /**
   * The status this replica wrote last per resource, with the resourceVersion
   * the write returned. The informer cache lags our own writes: comparing the
   * wanted status with the cached one alone would skip a needed write when
   * the cache still shows an older write of ours with the same counts as now
   * (0/1 written, cache still at 1/1, want 1/1), and nothing would look again.
   */
  private readonly written = new Map<string, { uid: string; resourceVersion: string; status: Record<string, unknown> }>();
  private readonly d: StatusReconcilerDeps;

  constructor(d: StatusReconcilerDeps) {
    this.d = d;
  }

  /** the resource is deleted (`kind/name`) */
  forget(id: string): void {
    this.written.delete(id);
  }

  /** the selected nodes of a resource and whether each runs it */
  private nodeStates(kind: Kind, name: string, a: Accepted<unknown>): NodeState[] {
    const { view, push } = this.d;
    const out: NodeState[] = [];
    for (const node of view.nodes.list()) {
      const labels = node.metadata?.labels ?? {};
      if (!selects(labels, a.selector)) continue;
      const nodeName = node.metadata?.name ?? '';
      if (!a.ok) {
        out.push({ node: nodeName, applied: false, failure: null });
        continue;
      }
      const want = view.desired(node);
      const lease = view.agentLease(nodeName);
      // applied, unless the agent says this backend did not start (a degraded start, docs/lifecycle.md)
      const notRunning = kind === 'sbe' && lease ? degradedBackend(annotations(lease)[ANNOTATION_DEGRADED], name) : null;
      if (lease && annotations(lease)[ANNOTATION_HASH] === want.hash && notRunning === null) out.push({ node: nodeName, applied: true, failure: null });
      else out.push({ node: nodeName, applied: false, failure: notRunning ?? push.failure(nodeName, want.hash) });
    }
    return out;
  }

  async reconcile(kind: Kind, name: string): Promise<Result> {
    const { view, leadership } = this.d;
    const obj = view.informerOf(kind).get(name);
    if (!obj) {
      this.d.commands().forget(`${kind}/${name}`);
      return DONE;
    }
    const a = view.acceptedOf(kind, obj);
    const generation = obj.metadata?.generation ?? 0;
    const status = statusOf(kind, a, generation, (obj.status ?? {}) as { conditions?: Condition[] }, this.nodeStates(kind, name, a), isoNow());
    const command = await this.d.commands().step(kind, obj, a.ok, a.selector, status);
    if (command !== undefined && 'ran' in command) return command.ran;
    if (command) status.command = command;
    const mine = this.written.get(`${kind}/${name}`);
    const cacheBehindUs = mine !== undefined && mine.uid === obj.metadata?.uid && mine.resourceVersion !== obj.metadata?.resourceVersion && !isDeepStrictEqual(mine.status, status);
    if (!cacheBehindUs && isDeepStrictEqual(status, obj.status ?? {})) return DONE;
    if (!leadership.isLeader()) return DONE;
    try {
      await this.write(kind, obj, status);
    } catch (err) {
      if (!isConflict(err)) throw err;
      // The cache is behind the object, mostly behind our own previous status
      // write whose watch event is still on its way (seconds while a new CRD's
      // watch cache initializes). Failing here would back the key off
      // exponentially and leave a stale status for many seconds. The counts
      // come from the Nodes and Leases, not from the object: write them on the
      // current object as long as it is the spec we judged and nobody else
      // recorded a command meanwhile; otherwise look again.
      const fresh = await this.d.client.call<CustomResource>('GET', resourcePath(kind, name));
      const freshCommand = (fresh.status as { command?: unknown } | undefined)?.command;
      if ((fresh.metadata?.generation ?? 0) !== generation || !isDeepStrictEqual(freshCommand, status.command)) return requeueAfter(0);
      if (!isDeepStrictEqual(status, fresh.status ?? {}) && leadership.isLeader()) await this.write(kind, fresh, status);
    }
    return DONE;
  }

  /** write status through /status, guarded by the object's resourceVersion */
  async write(kind: Kind, obj: CustomResource, status: Record<string, unknown>): Promise<CustomResource> {
    const written = await this.d.client.call<CustomResource>('PUT', `${resourcePath(kind, obj.metadata?.name ?? '')}/status`, { ...obj, status });
    this.d.metrics.statusWrites.inc();
    this.written.set(`${kind}/${obj.metadata?.name ?? ''}`, { uid: written.metadata?.uid ?? '', resourceVersion: written.metadata?.resourceVersion ?? '', status });
    return written;
  }
}
