// The Pod that owns a Lease a component creates at run time (the agent's
// registration Lease, the controller's leader Lease). Helm deletes only what
// it rendered; with the creating Pod as owner (metadata.ownerReferences), the
// API server's garbage collector deletes the Lease once that Pod is gone, so
// `helm uninstall` leaves nothing behind. The Pod's name and uid come from the
// downward API ($POD_NAME, $POD_UID; the chart sets both). Without them (an
// agent on a plain host, tests) a Lease gets no owner, as before.
//
// One reference, to the writer's own Pod, without `controller` and without
// `blockOwnerDeletion` (which needs permission on the Pod's finalizers, and
// which the agent's admission policy refuses). Whoever writes the Lease puts
// its own Pod there, replacing the one before: a replacement Pod that takes
// over the Lease of the same name must not leave it owned by the Pod it
// replaced, or the collector would delete the Lease under it when that old
// Pod's deletion is processed.
import { z } from 'zod';

/** a Pod name: a DNS subdomain */
const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** metadata.uid: the API server writes a UUID */
const POD_UID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const podOwnerSchema = z.strictObject({
  name: z.string().regex(POD_NAME, 'not a Pod name (lower case DNS subdomain)'),
  uid: z.string().regex(POD_UID, 'not a Pod uid (a UUID)'),
});
export type PodOwner = z.infer<typeof podOwnerSchema>;

/** metadata.ownerReferences[i], as much of it as this code reads or writes */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * The owner from the command line (--pod-name, --pod-uid), each defaulting to
 * the environment ($POD_NAME, $POD_UID): both a name and a uid, or neither
 * (owner null: no owner). One without the other is an error when an option
 * was given; from the environment alone it is no owner and a `note` to log
 * (a chart of an older version sets $POD_NAME only: the component runs as
 * before). A value that is not a Pod's is an error naming the option.
 */
export function podOwnerFrom(
  flags: { 'pod-name'?: string; 'pod-uid'?: string },
  env: { POD_NAME?: string; POD_UID?: string },
): { owner: PodOwner | null; note: string | null } {
  const blank = (v: string | undefined): string | undefined => (v === '' ? undefined : v);
  const name = blank(flags['pod-name']) ?? blank(env.POD_NAME);
  const uid = blank(flags['pod-uid']) ?? blank(env.POD_UID);
  if (name === undefined && uid === undefined) return { owner: null, note: null };
  if (name === undefined || uid === undefined) {
    const missing = name === undefined ? '--pod-name ($POD_NAME)' : '--pod-uid ($POD_UID)';
    const given = name === undefined ? '--pod-uid ($POD_UID)' : '--pod-name ($POD_NAME)';
    const why = `${given} without ${missing}: the Pod that owns the Lease is named by both`;
    if (flags['pod-name'] !== undefined || flags['pod-uid'] !== undefined) throw new Error(why);
    return { owner: null, note: `${why}; the Lease gets no owner (it outlives the Pod)` };
  }
  const r = podOwnerSchema.safeParse({ name, uid });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const isUid = issue.path[0] === 'uid';
    throw new Error(`${isUid ? '--pod-uid ($POD_UID)' : '--pod-name ($POD_NAME)'}: "${(isUid ? uid : name).slice(0, 100)}" is ${issue.message}`);
  }
  return { owner: r.data, note: null };
}

/** The one reference a Lease written by `pod` carries. */
export function podOwnerReference(pod: PodOwner): OwnerReference {
  return { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid };
}

/** true when `refs` is exactly the reference to `pod` (nothing to change) */
export function ownedOnlyBy(refs: readonly OwnerReference[] | undefined, pod: PodOwner): boolean {
  if (refs?.length !== 1) return false;
  const r = refs[0]!;
  return r.apiVersion === 'v1' && r.kind === 'Pod' && r.name === pod.name && r.uid === pod.uid && r.controller === undefined && r.blockOwnerDeletion === undefined;
}

/**
 * The ownerReferences a Lease written now carries: without a Pod, what it
 * had (undefined on create: none); with one, exactly the reference to that
 * Pod, replacing any other (a previous Pod's, someone else's).
 */
export function leaseOwnerReferences(current: readonly OwnerReference[] | undefined, pod: PodOwner | null): OwnerReference[] | undefined {
  if (pod === null) return current === undefined ? undefined : [...current];
  return [podOwnerReference(pod)];
}
