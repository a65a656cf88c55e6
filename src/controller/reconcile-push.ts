// The push reconciler (key node/<name>; docs/controller.md "How it works"):
// render the node's configuration from the accepted resources that select it
// and push it to the node's agent when the agent's Lease shows another hash
// (generation = max(Lease generation, last pushed) + 1). Whether to push is
// decided by decidePush and what a push's outcome means by afterPush, both
// pure; the reconciler does the I/O (agent-client.ts) and keeps one PushState
// per node.
//
// What says "nothing changed, do not push again" is not a memo of the
// rendered configuration but the agent's own word: the hash and generation
// in its Lease (src/contracts/lease.ts). A push of a hash is not repeated
// while the Lease still shows what it showed when we pushed (the agent
// updates it right after applying), for PENDING_MS after a success and
// REFUSED_MS after a refusal; a restarted agent or a changed configuration
// changes the Lease or the hash, and so is pushed to at once.
import type { Logger } from '../log/logger.ts';
import { MAX_FAILURE_MESSAGE } from '../crd/schemas.ts';
import { ANNOTATION_ENDPOINT, ANNOTATION_GENERATION, ANNOTATION_HASH } from '../contracts/lease.ts';
import type { AgentClient, PushOutcome } from './agent-client.ts';
import { annotations, type ClusterView, type RegisteredAgent } from './cache.ts';
import { checkEndpoint, type PushRefusedReason } from './endpoint.ts';
import type { RenderedNode } from './render.ts';
import { DONE, type Result, terminalError, transientError } from './result.ts';

/** after a successful push, wait this long for the agent's Lease to show it before pushing again */
export const PENDING_MS = 30_000;
/** a configuration an agent refused (4xx) is pushed again after this long even if nothing changed */
export const REFUSED_MS = 5 * 60_000;

export interface PushState {
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

export type PushDecision =
  /** the agent runs it already, or we wait for it to show our last push */
  | { do: 'nothing' }
  /** no usable agent: remember why (status shows it); `count`: a refusal to count and log */
  | { do: 'record'; state: PushState; count?: PushRefusedReason }
  | { do: 'push'; generation: number; agentState: string };

/** Whether to push `hash` to the node's agent, from its Lease annotations, its registration and our last push. */
export function decidePush(hash: string, lease: Readonly<Record<string, string>>, agent: RegisteredAgent, last: PushState | undefined, now: number): PushDecision {
  if (lease[ANNOTATION_HASH] === hash) return { do: 'nothing' };
  const lastGeneration = last?.generation ?? 0;
  if (!agent.ok) {
    if (agent.refused) {
      // counted like a push: again only when the Lease or the configuration changes, or after REFUSED_MS
      const agentState = `refused|${lease[ANNOTATION_ENDPOINT] ?? ''}|${agent.error}`;
      const repeat = last && last.hash === hash && last.agentState === agentState && now - last.at < REFUSED_MS;
      if (repeat) return { do: 'nothing' };
      return { do: 'record', count: agent.refused, state: { hash, generation: lastGeneration, agentState, at: now, error: agent.error.slice(0, MAX_FAILURE_MESSAGE), permanent: true } };
    }
    return { do: 'record', state: { hash, generation: lastGeneration, agentState: '', at: now, error: agent.error, permanent: true } };
  }
  // what the agent says it runs: while that has not changed since our last push of this hash, do not push it again
  // (the agent updates its Lease right after applying; it refused it for a reason that will not go away)
  const agentState = `${agent.endpoint}|${lease[ANNOTATION_GENERATION] ?? ''}|${lease[ANNOTATION_HASH] ?? ''}`;
  if (last && last.hash === hash && last.agentState === agentState && (last.error === null || last.permanent)
    && now - last.at < (last.error === null ? PENDING_MS : REFUSED_MS)) return { do: 'nothing' };
  const leaseGen = Number(lease[ANNOTATION_GENERATION] ?? 0);
  const generation = Math.max(Number.isSafeInteger(leaseGen) ? leaseGen : 0, lastGeneration) + 1;
  return { do: 'push', generation, agentState };
}

/** What a push's outcome means: the state to keep (null: keep none new), the result, and how to count it. */
export function afterPush(outcome: PushOutcome, p: { hash: string; generation: number; agentState: string; endpoint: string; now: number }): { state: PushState | null; result: Result; counted: 'push' | 'failure' | null } {
  const state = (error: string | null, permanent = false): PushState => ({ hash: p.hash, generation: p.generation, agentState: p.agentState, at: p.now, error, permanent });
  switch (outcome.kind) {
    case 'aborted':
      return { state: null, result: DONE, counted: null };
    case 'applied':
      return { state: state(null), result: DONE, counted: 'push' };
    case 'unreachable': {
      const message = `push to ${p.endpoint} failed: ${outcome.error}`.slice(0, MAX_FAILURE_MESSAGE);
      return { state: state(message), result: transientError(message), counted: 'failure' };
    }
    case 'refused': {
      const message = `agent refused the configuration (HTTP ${outcome.status}): ${outcome.detail}`.slice(0, MAX_FAILURE_MESSAGE);
      if (outcome.status === 409) {
        // the agent has applied a newer generation than we knew of: retry above it
        const generation = Math.max(p.generation, outcome.appliedGeneration ?? p.generation);
        return { state: { hash: '', generation, agentState: '', at: p.now, error: null, permanent: false }, result: transientError(message), counted: 'failure' };
      }
      // 4xx: this configuration would be refused again (pushed again when it or the agent changes);
      // 5xx (the agent starting or stopping) and 429 (the agent's TokenReview budget spent): retried with backoff
      const transient = outcome.status >= 500 || outcome.status === 429;
      return { state: state(message, !transient), result: transient ? transientError(message) : terminalError(message), counted: 'failure' };
    }
  }
}

export interface PushMetrics {
  pushes: { inc(): void };
  pushFailures: { inc(): void };
  pushRefused: { inc(labels: { reason: PushRefusedReason }): void };
}

export interface Leadership {
  isLeader(): boolean;
  /** aborted when this replica stops leading (or stops): in-flight requests end */
  signal(): AbortSignal;
  /** this replica's leadership terms so far (a new term starts afresh) */
  term(): number;
}

export interface PushReconcilerDeps {
  view: ClusterView;
  client: AgentClient;
  metrics: PushMetrics;
  log: Logger;
  leadership: Leadership;
  /** the status keys (sep/<name>, sbe/<name>) of what a node ran or runs now: their counts may have changed */
  enqueue(key: string): void;
}

export class PushReconciler {
  private readonly pushed = new Map<string, PushState>();
  /** agent Leases without a Node (node → the endpoint counted as refused); one entry per such Lease */
  private readonly orphanLeases = new Map<string, string>();
  private readonly d: PushReconcilerDeps;

  constructor(d: PushReconcilerDeps) {
    this.d = d;
  }

  /** why the last push of `hash` to the node failed, or null (status.failures) */
  failure(node: string, hash: string): string | null {
    const p = this.pushed.get(node);
    return p && p.hash === hash && p.error ? p.error : null;
  }

  async reconcile(name: string): Promise<Result> {
    const { view } = this.d;
    const node = view.nodes.get(name);
    const touched = new Set<string>();
    const prevRender = view.lastRender(name);
    for (const p of prevRender?.plugins ?? []) touched.add(`sep/${p}`);
    for (const b of prevRender?.backends ?? []) touched.add(`sbe/${b}`);
    if (!node) {
      this.pushed.delete(name);
      this.d.client.forget(name);
      view.forgetNode(name);
      this.noteOrphanLease(name);
      for (const k of touched) this.d.enqueue(k);
      return DONE;
    }
    const want = view.desired(node);
    for (const p of want.plugins) touched.add(`sep/${p}`);
    for (const b of want.backends) touched.add(`sbe/${b}`);
    try {
      return await this.apply(name, want);
    } finally {
      for (const k of touched) this.d.enqueue(k);
    }
  }

  /**
   * An agent Lease of a node that has no Node object gets nothing (nothing
   * selects it), and has no address to be checked against: counted (once per
   * endpoint it names) and logged, as the no_node refusal.
   */
  private noteOrphanLease(name: string): void {
    const endpoint = annotations(this.d.view.agentLease(name))[ANNOTATION_ENDPOINT];
    if (!endpoint) {
      this.orphanLeases.delete(name);
      return;
    }
    if (this.orphanLeases.get(name) === endpoint) return;
    this.orphanLeases.set(name, endpoint);
    const check = checkEndpoint(name, endpoint, undefined);
    if (check.ok) return;
    this.d.metrics.pushRefused.inc({ reason: check.reason });
    this.d.log.warn({ node: name, reason: check.reason, err: check.message }, 'push refused: an agent Lease for a node that does not exist');
  }

  private async apply(name: string, want: RenderedNode): Promise<Result> {
    const { view, metrics, leadership } = this.d;
    const lease = annotations(view.agentLease(name));
    // the Lease first: an agent that runs the hash needs no registration check
    if (lease[ANNOTATION_HASH] === want.hash) return DONE;
    const agent = view.registeredAgent(name);
    const decision = decidePush(want.hash, lease, agent, this.pushed.get(name), Date.now());
    if (decision.do === 'nothing') return DONE;
    if (decision.do === 'record') {
      if (decision.count) {
        metrics.pushRefused.inc({ reason: decision.count });
        this.d.log.warn({ node: name, reason: decision.count, err: decision.state.error }, 'push refused: the agent endpoint is not on the node\'s own address');
      }
      this.pushed.set(name, decision.state);
      return terminalError(decision.state.error ?? '');
    }
    if (!leadership.isLeader() || !agent.ok) return DONE;
    const { generation, agentState } = decision;
    const outcome = await this.d.client.push(name, agent.url, { generation, hash: want.hash, toml: want.toml, storage: want.storage }, leadership.signal());
    const after = afterPush(outcome, { hash: want.hash, generation, agentState, endpoint: agent.endpoint, now: Date.now() });
    if (after.counted === 'push') metrics.pushes.inc();
    else if (after.counted === 'failure') metrics.pushFailures.inc();
    if (after.state) this.pushed.set(name, after.state);
    if (outcome.kind === 'applied') this.d.log.debug({ node: name, generation, hash: want.hash }, 'configuration pushed');
    return after.result;
  }
}
