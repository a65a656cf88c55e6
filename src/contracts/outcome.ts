// What an operation the caller asked for came to: done with a value, or a
// failure of one kind with a message. A caller's mistake is an answer, not
// an exception: the agent's commands (push, plugin and backend commands,
// reload, flush, event queries) return these, and the control API alone
// decides what each kind is in HTTP (src/api/status.ts).

/** Why it was not done. */
export type FailureKind =
  /** the request is malformed or names invalid contents (a bad filter, a configuration that does not parse) */
  | 'invalid'
  /** it names something that does not exist (a plugin section, a backend) */
  | 'not-found'
  /** it contradicts the current state (an older generation, a backend that is not started) */
  | 'conflict'
  /** well-formed, but applying it failed; nothing changed */
  | 'rejected'
  /** the agent tried and something on its side failed (a backend did not start), possibly after a part was done */
  | 'failed'
  /** this agent does not do that (not in Kubernetes mode, started without a configuration text) */
  | 'unsupported'
  /** not now: the agent or its storage is not running */
  | 'unavailable'
  /** not finished within the time asked; nothing is lost */
  | 'timeout';

export interface Failure {
  readonly ok: false;
  readonly kind: FailureKind;
  /** the message, for a person */
  readonly error: string;
  /** what stands after the attempt (e.g. `{reloaded: true, …}` when a later step failed); reported before the message */
  readonly state?: Readonly<Record<string, unknown>>;
  /** more about the failure the caller can act on (e.g. the applied generation beside a stale one); reported after it */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface Done<T> {
  readonly ok: true;
  readonly value: T;
}

export type Outcome<T> = Done<T> | Failure;

export function done<T>(value: T): Done<T> {
  return { ok: true, value };
}

export function fail(kind: FailureKind, error: string, extra: { state?: Record<string, unknown>; detail?: Record<string, unknown> } = {}): Failure {
  return { ok: false, kind, error, ...extra };
}

/** What a failure tells the caller, as one object: the state, the message, the detail (in that order). */
export function failureReport(f: Failure): Record<string, unknown> {
  return { ...f.state, error: f.error, ...f.detail };
}
