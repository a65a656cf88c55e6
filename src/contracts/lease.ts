// The agent's Lease as agent and controller read it: the annotations the
// agent writes (src/k8s/registration.ts) and the controller reads
// (src/controller/reconcile-push.ts, reconcile-status.ts), and the form of one "degraded" line about
// a storage backend, which the controller looks for to count that node as
// failed for the StorageBackend (docs/lifecycle.md). One home, so the two
// sides cannot drift apart.

export const ANNOTATION_ENDPOINT = 'peripety.io/endpoint';
export const ANNOTATION_GENERATION = 'peripety.io/generation';
export const ANNOTATION_HASH = 'peripety.io/hash';
/** why the agent runs other than configured (a backend left out, collectors down), its lines joined by DEGRADED_SEPARATOR; empty when it does not */
export const ANNOTATION_DEGRADED = 'peripety.io/degraded';
export const DEGRADED_SEPARATOR = '; ';

const BACKEND_LINE_START = 'storage backend "';
const backendPrefix = (name: string): string => `${BACKEND_LINE_START}${name}" did not start`;

/** The agent's degraded line for a storage backend left out at start. */
export function degradedBackendLine(name: string, reason: string): string {
  return `${backendPrefix(name)}: ${reason}`;
}

/** The agent's own words about backend `name` in its degraded annotation, or null when it names none. */
export function degradedBackend(annotation: string | undefined, name: string): string | null {
  if (!annotation) return null;
  const marker = backendPrefix(name);
  const at = annotation.indexOf(marker);
  if (at < 0) return null;
  const end = annotation.indexOf(`${DEGRADED_SEPARATOR}${BACKEND_LINE_START}`, at + marker.length);
  return annotation.slice(at, end < 0 ? undefined : end);
}
