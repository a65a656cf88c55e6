// Reading one key of a Secret in the agent's own namespace, with the agent's
// own credentials (its KubeClient): how a postgres backend's ConnectionSecret
// becomes a connection string in Kubernetes mode (docs/storage.md).
//
// The agent needs `get` on exactly the Secrets it is told to read (a Role
// with resourceNames; manifests/rbac-agent.yaml). Every failure is a value
// with a message that says what is missing or which permission is needed;
// the Secret's data never appears in a message, a log line or an error.
import { z } from 'zod';
import type { SecretRef, SecretResolver, SecretResult } from '../storage/types.ts';
import type { KubeClient } from './http.ts';

interface KubeSecretResolverOptions {
  client: Pick<KubeClient, 'request'>;
  /** the agent's namespace (--namespace) */
  namespace: string;
  timeoutMs?: number;
}

/** A Secret as far as we read it: data values are base64 (the API server's encoding). */
const SecretBody = z.object({
  data: z.record(z.string(), z.string()).nullish(),
});

/** The API server's error object (metav1.Status): only its message is used. */
const StatusBody = z.object({ message: z.string().optional() });

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Names shown in messages: bounded, and only the characters a Secret key may have. */
const show = (s: string): string => JSON.stringify(s.slice(0, 253));

function statusMessage(body: unknown): string {
  const s = StatusBody.safeParse(body);
  return s.success && s.data.message ? s.data.message.slice(0, 200) : '';
}

/** Who the API server took the agent for, from a 403's message (`User "system:serviceaccount:…" cannot get …`). */
function forbiddenUser(body: unknown): string | null {
  const m = /User "([^"]{1,200})"/.exec(statusMessage(body));
  return m ? m[1]! : null;
}

export function kubeSecretResolver(opts: KubeSecretResolverOptions): SecretResolver {
  const { client, namespace } = opts;
  return async (ref: SecretRef): Promise<SecretResult> => {
    const what = `Secret ${show(`${namespace}/${ref.name}`)}`;
    const fail = (error: string): SecretResult => ({ ok: false, error });
    let r: Awaited<ReturnType<KubeClient['request']>>;
    try {
      r = await client.request('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(ref.name)}`, undefined, { timeoutMs: opts.timeoutMs ?? 10_000 });
    } catch (err) {
      return fail(`cannot read ${what}: the API server did not answer: ${(err as Error).message.slice(0, 200)}`);
    }
    if (r.status === 404) return fail(`${what} not found (a ConnectionSecret names a Secret in the agent's namespace ${show(namespace)})`);
    if (r.status === 403) {
      const user = forbiddenUser(r.body);
      return fail(`the agent may not read ${what} (403 Forbidden): its ServiceAccount${user ? ` (${show(user)})` : ''} needs "get" on secrets with resourceNames [${show(ref.name)}] in namespace ${show(namespace)}: a Role, see docs/storage.md (Helm value agent.secretNames)`);
    }
    if (r.status === 401) return fail(`cannot read ${what}: the API server did not accept the agent's credentials (401 Unauthorized)`);
    if (r.status !== 200) {
      const server = statusMessage(r.body);
      return fail(`cannot read ${what}: HTTP ${r.status}${server ? `: ${server}` : ''}`);
    }
    const parsed = SecretBody.safeParse(r.body);
    if (!parsed.success) return fail(`cannot read ${what}: the API server's answer is not a Secret`);
    const data = parsed.data.data ?? {};
    const b64 = Object.hasOwn(data, ref.key) ? data[ref.key] : undefined;
    if (b64 === undefined) {
      const keys = Object.keys(data).sort().slice(0, 20).map(show);
      return fail(`${what} has no key ${show(ref.key)} (its keys: ${keys.length > 0 ? keys.join(', ') : 'none'}); name another key as ConnectionSecret: "${ref.name}/<key>"`);
    }
    if (!BASE64.test(b64)) return fail(`${what}, key ${show(ref.key)}: the API server's data is not base64`);
    const value = Buffer.from(b64, 'base64').toString('utf8');
    if (value.trim() === '') return fail(`${what}, key ${show(ref.key)}, is empty`);
    return { ok: true, value };
  };
}
