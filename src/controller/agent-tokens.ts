// The bearer tokens the controller presents to the agents: one per node
// (issue 10 A2). Every agent's TokenReview asks for the audience
// `peripety-agent:<its node>`, so the token a node receives with a push is
// worth nothing at any other node: root on a compromised node reads it (from
// the plain-HTTP push, or the agent's memory) and can replay it only to
// itself. The tokens come from the TokenRequest API for the controller's own
// ServiceAccount, short-lived, cached per node and requested again before
// they expire. Tokens are never logged; the cache holds only nodes the
// controller pushes to and is bounded.
import type { KubeClient } from '../k8s/http.ts';
import { Counter, type Registry } from 'prom-client';
import { agentAudience } from '../api/tokenreview.ts';
import { perRegistry } from '../metrics/per-registry.ts';

/** A token and until when it is good (ms since the epoch). */
export interface IssuedToken {
  token: string;
  expiresAt: number;
}

/** Requests a token for one audience (the I/O: TokenRequest). */
export type TokenIssuer = (audience: string, expirationSeconds: number) => Promise<IssuedToken>;

/** Where the controller's pushes and commands get the token for a node. */
export interface AgentTokenSource {
  get(node: string): Promise<string>;
  /** the node is gone: its token is dropped */
  forget(node: string): void;
}

/** TokenRequest's own minimum; the controller's default. */
export const MIN_TOKEN_SECONDS = 600;
/** a token is requested again when this share of its lifetime is left (the kubelet renews at 80% too) */
const REFRESH_AT_LEFT = 0.2;
/** …and never used with less than this left: a push or command takes up to 30 s */
const MIN_LEFT_MS = 60_000;
/** tokens kept at most (one per node pushed to); beyond it the least recently used goes */
export const DEFAULT_MAX_TOKENS = 5000;

interface Entry {
  token: string;
  refreshAt: number;
  expiresAt: number;
}

/** Declared once per registry (src/metrics/per-registry.ts); both results exist at 0 from the start. */
const agentTokenMetrics = perRegistry((registry: Registry) => {
  const requests = new Counter({
    name: 'peripety_controller_agent_token_requests_total',
    help: 'TokenRequests for the per-node tokens the controller presents to the agents (audience peripety-agent:<node>), by result (ok, failed).',
    labelNames: ['result'], registers: [registry],
  });
  for (const r of ['ok', 'failed']) requests.labels(r).inc(0);
  return { requests };
});

/**
 * The per-node token cache (no I/O of its own: `issue` does the requests).
 * Concurrent callers for one node share one request; a failed request is not
 * cached (the next push asks again), and a cached token still good is used
 * while a refresh fails.
 */
export class AgentTokens implements AgentTokenSource {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly issue: TokenIssuer;
  private readonly seconds: number;
  private readonly max: number;
  private readonly now: () => number;
  private readonly requests: Counter<'result'> | null;

  constructor(opts: { issue: TokenIssuer; expirationSeconds?: number; max?: number; now?: () => number; registry?: Registry }) {
    this.issue = opts.issue;
    this.seconds = Math.max(MIN_TOKEN_SECONDS, opts.expirationSeconds ?? MIN_TOKEN_SECONDS);
    this.max = opts.max ?? DEFAULT_MAX_TOKENS;
    this.now = opts.now ?? Date.now;
    this.requests = opts.registry ? agentTokenMetrics(opts.registry).requests : null;
  }

  get size(): number {
    return this.cache.size;
  }

  async get(node: string): Promise<string> {
    const t = this.now();
    const e = this.cache.get(node);
    if (e && t < e.refreshAt) {
      // most recently used last: the bound drops the node pushed to longest ago
      this.cache.delete(node);
      this.cache.set(node, e);
      return e.token;
    }
    let p = this.inflight.get(node);
    if (!p) {
      p = this.request(node).finally(() => this.inflight.delete(node));
      this.inflight.set(node, p);
    }
    try {
      return await p;
    } catch (err) {
      // the refresh failed, the old token is still good for a while: use it
      const still = this.cache.get(node);
      if (still && this.now() < still.expiresAt - MIN_LEFT_MS) return still.token;
      throw err;
    }
  }

  forget(node: string): void {
    this.cache.delete(node);
  }

  private async request(node: string): Promise<string> {
    const audience = agentAudience(node);
    let issued: IssuedToken;
    const asked = this.now();
    try {
      issued = await this.issue(audience, this.seconds);
    } catch (err) {
      this.requests?.labels('failed').inc();
      throw new Error(`cannot get a token for node ${node} (TokenRequest for the audience ${audience}): ${(err as Error).message}`, { cause: err });
    }
    this.requests?.labels('ok').inc();
    // the API server may shorten (or lengthen) the lifetime: trust its expiry, not our request
    const lifetime = Math.max(0, issued.expiresAt - asked);
    const refreshAt = Math.min(asked + lifetime * (1 - REFRESH_AT_LEFT), issued.expiresAt - MIN_LEFT_MS);
    this.cache.delete(node);
    while (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(node, { token: issued.token, refreshAt, expiresAt: issued.expiresAt });
    return issued.token;
  }
}

/**
 * The issuer for a controller in a cluster: TokenRequest
 * (POST …/serviceaccounts/<name>/token) for its own ServiceAccount, with the
 * controller's own credentials; RBAC allows `create` on serviceaccounts/token
 * for that one name only.
 */
export function tokenRequestIssuer(client: Pick<KubeClient, 'call'>, namespace: string, serviceAccount: string, now: () => number = Date.now): TokenIssuer {
  const url = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`;
  return async (audience, expirationSeconds) => {
    let r: { status?: { token?: string; expirationTimestamp?: string } };
    try {
      r = await client.call(
        'POST', url, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [audience], expirationSeconds } });
    } catch (err) {
      // a KubeApiError: the code and the API's message are enough
      const e = err as { code?: unknown; body?: unknown; message?: string };
      let detail = typeof e.code === 'number' ? `HTTP ${e.code}` : (e.message ?? String(err)).split('\n')[0]!;
      try {
        const b = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: unknown } | undefined;
        if (typeof b?.message === 'string') detail += `: ${b.message}`;
      } catch {
        // not JSON
      }
      throw new Error(`ServiceAccount ${namespace}/${serviceAccount}: ${detail.slice(0, 300)}`);
    }
    const token = r.status?.token;
    if (!token) throw new Error(`ServiceAccount ${namespace}/${serviceAccount}: the TokenRequest returned no token`);
    const exp = r.status?.expirationTimestamp ? new Date(r.status.expirationTimestamp).getTime() : NaN;
    return { token, expiresAt: Number.isFinite(exp) ? exp : now() + expirationSeconds * 1000 };
  };
}
