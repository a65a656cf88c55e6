// The one place where an outcome of the agent's commands becomes HTTP: a
// failure's kind picks the status, its report is the JSON body
// (docs/agent-api.md lists both per endpoint).
import { failureReport, type FailureKind, type Outcome } from '../contracts/outcome.ts';

export const FAILURE_STATUS: Readonly<Record<FailureKind, number>> = {
  'invalid': 400,
  'not-found': 404,
  'conflict': 409,
  'rejected': 422,
  'failed': 500,
  'unsupported': 501,
  'unavailable': 503,
  'timeout': 504,
};

/** An answer as it goes out: status and JSON body. */
export interface ControlAnswer {
  status: number;
  body: unknown;
}

/** A done outcome is 200 with its value; a failure its kind's status with its report. */
export function answerOf(o: Outcome<unknown>): ControlAnswer {
  return o.ok ? { status: 200, body: o.value } : { status: FAILURE_STATUS[o.kind], body: failureReport(o) };
}
