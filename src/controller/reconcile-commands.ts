// The command reconciler (docs/controller.md "Commands"): a step of the
// status reconcile of a StorageEventPlugin or StorageBackend (same key,
// sep/<name> or sbe/<name>), since a command's record is part of that status.
// The decisions are pure (commands.ts); this is the I/O: it records a new
// request as Running in status.command (a write guarded by the cached
// resourceVersion, so a replica working from an outdated cache cannot record,
// and so cannot run, what another already ran), sends it to every selected
// node's agent (agent-client.ts), and records the outcome.
import type { Logger } from '../log/logger.ts';
import { type CommandAction, CommandStatus } from '../crd/schemas.ts';
import type { AgentClient } from './agent-client.ts';
import { annotations, type ClusterView, type CustomResource, type Kind, selects } from './cache.ts';
import {
  COMMAND_ANNOTATION, commandPath, completedStatus, decideCommand, interruptedStatus, invalidStatus, isInterrupted, isResourceAction,
  type NodeResult, notAcceptedStatus,
} from './commands.ts';
import type { PushRefusedReason } from './endpoint.ts';
import type { Leadership } from './reconcile-push.ts';
import { DONE, errText, requeueAfter, type Result } from './result.ts';

export interface CommandMetrics {
  commands: { inc(labels: { action: string; result: string }): void };
  pushRefused: { inc(labels: { reason: PushRefusedReason }): void };
}

export interface CommandReconcilerDeps {
  view: ClusterView;
  client: AgentClient;
  metrics: CommandMetrics;
  log: Logger;
  leadership: Leadership;
  /** the status write of the status reconciler (counted, remembered) */
  writeStatus(kind: Kind, obj: CustomResource, status: Record<string, unknown>): Promise<CustomResource>;
}

/** what status.command is to be: the record (or none), or `ran`: run here, status written already */
export type CommandStep = CommandStatus | undefined | { ran: Result };

/** now, as metav1.Time writes it (RFC 3339, seconds, UTC) */
export function isoNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export class CommandReconciler {
  /**
   * The command state this replica recorded last per resource (uid: a
   * re-created resource starts afresh). Newer than the informer cache right
   * after a status write, so a request is never taken for new twice. Valid
   * for one leadership term only: another leader may have recorded newer
   * ones meanwhile, which status (guarded by the resourceVersion) then shows.
   */
  private readonly records = new Map<string, { uid: string; term: number; status: CommandStatus }>();
  private readonly d: CommandReconcilerDeps;

  constructor(d: CommandReconcilerDeps) {
    this.d = d;
  }

  /** the resource is deleted (`kind/name`) */
  forget(id: string): void {
    this.records.delete(id);
  }

  /**
   * status.command for a resource: what was recorded, or — for a new
   * annotation value — the outcome of running it (`ran`: it was run here
   * and the status written already), or why it is not run.
   */
  async step(kind: Kind, obj: CustomResource, accepted: boolean, selector: unknown, status: Record<string, unknown>): Promise<CommandStep> {
    const id = `${kind}/${obj.metadata?.name ?? ''}`;
    const uid = obj.metadata?.uid ?? '';
    const term = this.d.leadership.term();
    const mine = this.records.get(id);
    const own = mine && mine.uid === uid && mine.term === term ? mine.status : undefined;
    const fromStatus = CommandStatus.safeParse(obj.status?.command);
    const recorded = own ?? (fromStatus.success ? fromStatus.data : undefined);
    const decision = decideCommand(annotations(obj)[COMMAND_ANNOTATION], recorded?.request);
    const now = isoNow();
    const remember = (s: CommandStatus, action: string, result: string): CommandStatus => {
      this.records.set(id, { uid, term, status: s });
      this.d.metrics.commands.inc({ action, result });
      return s;
    };
    if (decision.kind === 'invalid') {
      this.d.log.info({ resource: id, request: decision.request, err: decision.message }, 'command refused');
      return remember(invalidStatus(decision.request, decision.message, now), 'unknown', 'invalid');
    }
    if (decision.kind === 'run') {
      if (isResourceAction(decision.action) && !accepted) return remember(notAcceptedStatus(decision.request, decision.action, kind, now), decision.action, 'failed');
      return { ran: await this.run(kind, obj, selector, status, decision.request, decision.action) };
    }
    if (recorded && isInterrupted(recorded, own !== undefined)) return remember(interruptedStatus(recorded, now), recorded.action ?? 'unknown', 'interrupted');
    return recorded;
  }

  /**
   * Record the request as Running (a write guarded by the cached
   * resourceVersion: from an outdated cache it fails, and nothing runs),
   * send it to every selected node's agent at once, record the outcome.
   */
  private async run(kind: Kind, obj: CustomResource, selector: unknown, status: Record<string, unknown>, request: string, action: CommandAction): Promise<Result> {
    const { view, leadership, metrics, log } = this.d;
    if (!leadership.isLeader()) return DONE;
    const name = obj.metadata?.name ?? '';
    const id = `${kind}/${name}`;
    const uid = obj.metadata?.uid ?? '';
    const term = leadership.term();
    const stop = leadership.signal();
    const targets: { node: string; endpoint: string; url: URL }[] = [];
    const refused: NodeResult[] = [];
    const unregistered: string[] = [];
    for (const node of view.nodes.list()) {
      if (!selects(node.metadata?.labels ?? {}, selector)) continue;
      const n = node.metadata?.name ?? '';
      const agent = view.registeredAgent(n);
      if (agent.ok) targets.push({ node: n, endpoint: agent.endpoint, url: agent.url });
      else if (agent.refused) {
        // an agent, but not on the node's address: not asked, reported as a failure of that node
        metrics.pushRefused.inc({ reason: agent.refused });
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
    const written = await this.d.writeStatus(kind, obj, { ...status, command: running });
    this.records.set(id, { uid, term, status: running });
    log.info({ resource: id, request, action, nodes: targets.length }, 'running command');
    const path = commandPath(kind, name, action);
    const results = [...refused, ...await Promise.all(targets.map((t) => this.d.client.command(t.node, t.endpoint, t.url, path, stop)))];
    if (stop.aborted || !leadership.isLeader() || term !== leadership.term()) {
      // no longer the leader (of this term): the outcome is not recorded here; the next leader reports it interrupted
      return DONE;
    }
    const done = completedStatus({ request, action, startedAt, kind, name }, results, unregistered, isoNow());
    this.records.set(id, { uid, term, status: done });
    metrics.commands.inc({ action, result: done.phase === 'Succeeded' ? 'succeeded' : 'failed' });
    log.info({ resource: id, request, action, succeeded: done.nodesSucceeded, failed: done.nodesFailed }, 'command done');
    try {
      await this.d.writeStatus(kind, written, { ...status, command: done });
    } catch (err) {
      // recorded here: the next status reconcile (right after this one) writes it
      log.debug({ resource: id, err: errText(err) }, 'writing the command outcome failed; retrying');
      return requeueAfter(0);
    }
    return DONE;
  }
}
