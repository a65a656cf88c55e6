// What a reconcile tells the work queue (queue.ts), in the shape of
// controller-runtime's reconcile.Result and its terminal error:
//   {}                       done: forget the key's backoff
//   { requeueAfterMs }       done for now, look again after this long (0: right after this run)
//   { error, terminal:false} failed for a reason that may pass (agent unreachable, 5xx, a conflict):
//                            retried with the queue's per-key exponential backoff
//   { error, terminal:true } failed for a reason that retrying the same will not fix (an agent refused
//                            the configuration with a 4xx, no agent registered): not retried; the
//                            error is in the resource's status, and a change of the inputs (a spec,
//                            the Node, the agent's Lease) enqueues the key again
// One type for every reconciler (reconcile-push.ts, reconcile-status.ts, reconcile-commands.ts).

export type Result =
  | { requeueAfterMs?: number }
  | { error: string; terminal: boolean };

export const DONE: Result = Object.freeze({});

export function requeueAfter(ms: number): Result {
  return { requeueAfterMs: ms };
}

/** a failure that may pass: retried with backoff */
export function transientError(error: string): Result {
  return { error, terminal: false };
}

/** a failure that retrying the same will not fix: not retried */
export function terminalError(error: string): Result {
  return { error, terminal: true };
}

export function isError(r: Result): r is { error: string; terminal: boolean } {
  return 'error' in r;
}

/** an error in one short line: an API error (src/k8s/http.ts KubeApiError) as its code and the server's message */
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
