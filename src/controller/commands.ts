// One-off lifecycle commands from an annotation (docs/controller.md
// "Commands"): `peripety.io/command: ACTION[@NONCE]` on a StorageEventPlugin
// or StorageBackend. The decisions are pure (this file, unit-tested); the
// controller does the I/O: it records the request in status.command before
// it runs it, so a value is run at most once, also across controller
// restarts and leader changes (the status write is guarded by the
// resourceVersion: a replica working from an outdated cache cannot record,
// and so cannot run, what another replica already ran).
import {
  COMMAND_ACTIONS, type CommandAction, type CommandStatus, MAX_COMMAND_REQUEST, MAX_FAILURE_MESSAGE, MAX_FAILURES,
} from '../crd/schemas.ts';

export const COMMAND_ANNOTATION = 'peripety.io/command';

/** A nonce: letters, digits, ".", "_", "-", ":" (it only has to differ from the previous one). */
const NONCE_RE = /^[A-Za-z0-9._:-]+$/;
const USAGE = `use ACTION or ACTION@NONCE, ACTION one of ${COMMAND_ACTIONS.join(', ')} (e.g. "restart", or "restart@2" to ask again)`;

export type ParsedCommand = { ok: true; action: CommandAction; nonce: string | null } | { ok: false; message: string };

/** Parse an annotation value strictly: no spaces, lower-case actions, a bounded length. */
export function parseCommand(value: string): ParsedCommand {
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value.length === 0) return { ok: false, message: `${COMMAND_ANNOTATION} is empty: ${USAGE}` };
  if (value.length > MAX_COMMAND_REQUEST) return { ok: false, message: `${COMMAND_ANNOTATION} ${shown} is ${value.length} characters long, at most ${MAX_COMMAND_REQUEST}: ${USAGE}` };
  const at = value.indexOf('@');
  const action = at >= 0 ? value.slice(0, at) : value;
  const nonce = at >= 0 ? value.slice(at + 1) : null;
  if (!(COMMAND_ACTIONS as readonly string[]).includes(action)) {
    const lower = action.trim().toLowerCase();
    const hint = lower !== action && (COMMAND_ACTIONS as readonly string[]).includes(lower) ? ` (write "${lower}": lower case, no spaces)` : '';
    return { ok: false, message: `${COMMAND_ANNOTATION} ${shown}: unknown action ${JSON.stringify(action.slice(0, 40))}${hint}; ${USAGE}` };
  }
  if (nonce !== null && !NONCE_RE.test(nonce)) {
    return { ok: false, message: `${COMMAND_ANNOTATION} ${shown}: the nonce after "@" must be letters, digits, ".", "_", "-" or ":" (not empty); ${USAGE}` };
  }
  return { ok: true, action: action as CommandAction, nonce };
}

/**
 * The form of an annotation value kept in status.command.request (bounded:
 * a value too long to be valid is cut, with "…"). Requests are compared in
 * this form, so an over-long value is reported once, not on every reconcile.
 */
export function requestKey(value: string): string {
  return value.length <= MAX_COMMAND_REQUEST ? value : `${value.slice(0, MAX_COMMAND_REQUEST - 1)}…`;
}

export type CommandDecision =
  | { kind: 'none' }
  | { kind: 'invalid'; request: string; message: string }
  | { kind: 'run'; request: string; action: CommandAction };

/**
 * What to do about the annotation, given the request recorded last
 * (status.command.request, or the controller's own newer memory of it):
 * nothing when there is no annotation or it was recorded already (run,
 * running, failed or reported invalid), else run it or report it invalid.
 */
export function decideCommand(annotation: string | undefined, recorded: string | undefined): CommandDecision {
  if (annotation === undefined) return { kind: 'none' };
  const request = requestKey(annotation);
  if (request === recorded) return { kind: 'none' };
  const p = parseCommand(annotation);
  if (!p.ok) return { kind: 'invalid', request, message: p.message };
  return { kind: 'run', request, action: p.action };
}

/** The agent endpoint (relative to its base URL) an action on a resource calls. */
export function commandPath(kind: 'sep' | 'sbe', name: string, action: CommandAction): string {
  if (action === 'reload' || action === 'flush') return `v1/${action}`;
  return `v1/${kind === 'sep' ? 'plugins' : 'backends'}/${encodeURIComponent(name)}:${action}`;
}

/** start/stop/restart act on the resource's own plugin or backend; reload and flush on the whole agent. */
export function isResourceAction(action: CommandAction): boolean {
  return action === 'start' || action === 'stop' || action === 'restart';
}

export interface NodeResult {
  node: string;
  ok: boolean;
  /** what went wrong (ok false) */
  message: string;
}

const KIND_NAME = { sep: 'StorageEventPlugin', sbe: 'StorageBackend' } as const;

function listed(names: readonly string[], max = 5): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/** status.command once the command ran on `results` (one per targeted node); `unregistered`: selected nodes without an agent. */
export function completedStatus(
  base: { request: string; action: CommandAction; startedAt: string; kind: 'sep' | 'sbe'; name: string },
  results: readonly NodeResult[], unregistered: readonly string[], completedAt: string,
): CommandStatus {
  const failed = results.filter((r) => !r.ok).sort((a, b) => a.node.localeCompare(b.node));
  const ok = results.length - failed.length;
  const what = `${base.action} of ${KIND_NAME[base.kind]} ${base.name}`;
  const missing = unregistered.length > 0 ? `; ${unregistered.length} selected node(s) have no registered agent and were skipped: ${listed(unregistered)}` : '';
  let phase: CommandStatus['phase'];
  let message: string;
  if (results.length === 0) {
    phase = 'Failed';
    message = unregistered.length > 0
      ? `${what}: nothing ran: none of the ${unregistered.length} selected node(s) has a registered agent (${listed(unregistered)})`
      : `${what}: nothing ran: the nodeSelector selects no node`;
  } else if (failed.length === 0) {
    phase = 'Succeeded';
    message = `${what} succeeded on ${ok} node(s)${missing}`;
  } else {
    phase = 'Failed';
    message = `${what} failed on ${failed.length} of ${results.length} node(s) (see failures)${missing}`;
  }
  const out: CommandStatus = {
    request: base.request, action: base.action, phase, startedAt: base.startedAt, completedAt,
    nodesTargeted: results.length, nodesSucceeded: ok, nodesFailed: failed.length,
    message: message.slice(0, MAX_FAILURE_MESSAGE),
  };
  if (failed.length > 0) out.failures = failed.slice(0, MAX_FAILURES).map((f) => ({ node: f.node, message: f.message.slice(0, MAX_FAILURE_MESSAGE) }));
  return out;
}

/** status.command of a request that is not run: reported invalid, with what to change. */
export function invalidStatus(request: string, message: string, at: string): CommandStatus {
  return { request, phase: 'Invalid', completedAt: at, message: message.slice(0, MAX_FAILURE_MESSAGE) };
}

/** status.command of a start/stop/restart refused because the resource is not accepted (it runs nowhere). */
export function notAcceptedStatus(request: string, action: CommandAction, kind: 'sep' | 'sbe', at: string): CommandStatus {
  return {
    request, action, phase: 'Failed', completedAt: at, nodesTargeted: 0, nodesSucceeded: 0, nodesFailed: 0,
    message: `${action} not run: the ${KIND_NAME[kind]} is not accepted (see the Accepted condition), so no agent runs it; fix the spec, then annotate again with a new nonce (e.g. ${action}@2)`,
  };
}

/**
 * A request recorded as Running that this controller is not running: the
 * replica that ran it stopped (restart, leader change) before it recorded
 * the result. It is not run again (it may have run on some nodes).
 */
export function isInterrupted(recorded: CommandStatus | undefined, ownRecord: boolean): boolean {
  return recorded !== undefined && recorded.phase === 'Running' && !ownRecord;
}

export function interruptedStatus(recorded: CommandStatus, at: string): CommandStatus {
  const action = recorded.action ?? 'command';
  return {
    ...recorded, phase: 'Failed', completedAt: at,
    message: `${action} was interrupted: the controller replica running it stopped before it finished; it may have run on some nodes and is not run again (annotate with a new nonce, e.g. ${action}@2, to run it again)`.slice(0, MAX_FAILURE_MESSAGE),
  };
}
