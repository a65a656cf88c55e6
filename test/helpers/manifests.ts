// The plain manifests in manifests/ (rendered from the Helm chart by
// hack/gen-chart.ts) as objects, and the RBAC part of them as YAML for
// `kubectl apply -f -`: tests against a real API server run the controller and
// the agents with exactly the ServiceAccounts and permissions a cluster install
// gives them.
//
//   await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller') });
//   await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('agent') });
//   await env.kubectl(['apply', '-f', '-'], { input: admissionYaml('agent') });   // the agent's admission policies
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

const MANIFESTS = path.resolve(import.meta.dirname, '../../manifests');

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The namespace and ServiceAccount names manifests/ is rendered for (the envtest identities use the same). */
export const MANIFEST_NAMESPACE = 'peripety-system';

/** Kinds that make up an identity and its permissions. */
export const RBAC_KINDS: ReadonlySet<string> = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

export type Component = 'controller' | 'agent';

/** Every object of manifests/*.yaml (not examples/), in file order. */
export function manifestObjects(dir: string = MANIFESTS): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, f), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`manifests/${f}: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as ManifestObject | null;
      if (obj === null) continue;
      if (typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') throw new Error(`manifests/${f}: an object without kind or metadata.name`);
      out.push(obj);
    }
  }
  return out;
}

/** The ServiceAccount, roles and bindings of one component (label app.kubernetes.io/component). */
export function rbacObjects(component: Component, dir?: string): ManifestObject[] {
  const objs = manifestObjects(dir).filter((o) => RBAC_KINDS.has(o.kind) && o.metadata.labels?.['app.kubernetes.io/component'] === component);
  if (!objs.some((o) => o.kind === 'ServiceAccount')) throw new Error(`manifests/: no ServiceAccount for the ${component} (run hack/run node hack/gen-chart.ts)`);
  return objs;
}

/** Kinds that make up the admission policies (the agent's "only its own node's objects", charts/peripety/templates/agent-admission.yaml). */
export const ADMISSION_KINDS: ReadonlySet<string> = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);

/** The admission policies and bindings of one component (none when manifests/ has none). */
export function admissionObjects(component: Component, dir?: string): ManifestObject[] {
  return manifestObjects(dir).filter((o) => ADMISSION_KINDS.has(o.kind) && o.metadata.labels?.['app.kubernetes.io/component'] === component);
}

/** admissionObjects of the components as one multi-document YAML text ('' when there are none). */
export function admissionYaml(...components: Component[]): string {
  return components.flatMap((c) => admissionObjects(c)).map((o) => stringify(o)).join('---\n');
}

/** rbacObjects of the components as one multi-document YAML text, for `kubectl apply -f -`. */
export function rbacYaml(...components: Component[]): string {
  return components.flatMap((c) => rbacObjects(c)).map((o) => stringify(o)).join('---\n');
}
