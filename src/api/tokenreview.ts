// The control API's authenticator in Kubernetes mode (ARCHITECTURE.md "Agent
// control API"): the bearer token is checked with a TokenReview for the
// audience peripety-agent, and the caller must be the controller's
// ServiceAccount. Results are cached briefly under a SHA-256 of the token (the
// raw token is never kept or logged); refusals are counted by a bounded reason
// and logged at most once per interval per reason.
import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { KubeClient } from '../k8s/http.ts';
import type { Logger } from '../log/logger.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';
import { type AuthResult, type Authenticator, bearerToken } from './auth.ts';

// Where src/k8s/registration.ts (and the tests) import it from.
export { RateLimitedLog };

export const AGENT_AUDIENCE = 'peripety-agent';
export const DEFAULT_CONTROLLER_IDENTITY = 'system:serviceaccount:peripety-system:peripety-controller';

export const REFUSAL_REASONS = ['no_token', 'invalid_token', 'wrong_audience', 'wrong_identity', 'review_failed'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A small TTL cache with a size bound (oldest entries go first). */
export class TtlCache<V> {
  private readonly map = new Map<string, { value: V; expires: number }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: { ttlMs: number; max: number; now?: () => number }) {
    this.ttlMs = opts.ttlMs;
    this.max = opts.max;
    this.now = opts.now ?? Date.now;
  }

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    if (this.map.size >= this.max) {
      const t = this.now();
      for (const [k, e] of this.map) if (e.expires <= t) this.map.delete(k);
      while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    }
    this.map.set(key, { value, expires: this.now() + this.ttlMs });
  }

  get size(): number {
    return this.map.size;
  }
}

export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string };
  audiences?: string[];
  error?: string;
}

type Verdict = { result: AuthResult; reason: RefusalReason | null; detail?: string };

/** Decide on a TokenReview status (pure). */
export function judgeReview(status: TokenReviewStatus | undefined, controllerIdentity: string, audience = AGENT_AUDIENCE): Verdict {
  if (!status?.authenticated) {
    return { result: { ok: false, status: 401, reason: 'the token is not valid (TokenReview did not authenticate it)' }, reason: 'invalid_token' };
  }
  if (!Array.isArray(status.audiences) || !status.audiences.includes(audience)) {
    return { result: { ok: false, status: 401, reason: `the token is not for the audience ${audience}` }, reason: 'wrong_audience' };
  }
  const who = status.user?.username ?? '';
  if (who !== controllerIdentity) {
    return { result: { ok: false, status: 403, reason: `${who.slice(0, 200) || 'this identity'} may not use the agent control API` }, reason: 'wrong_identity' };
  }
  return { result: { ok: true, who }, reason: null };
}

export interface TokenReviewOptions {
  client: Pick<KubeClient, 'request'>;
  log: Logger;
  registry: Registry;
  /** the caller allowed: system:serviceaccount:<ns>:<sa> */
  controllerIdentity?: string;
  audience?: string;
  cacheTtlMs?: number;
  cacheMax?: number;
  logIntervalMs?: number;
  now?: () => number;
}

export class TokenReviewAuthenticator implements Authenticator {
  private readonly opts: TokenReviewOptions;
  private readonly identity: string;
  private readonly audience: string;
  private readonly cache: TtlCache<Verdict>;
  private readonly inflight = new Map<string, Promise<Verdict>>();
  private readonly limiter: RateLimitedLog;
  private readonly refused: Counter<'reason'>;

  constructor(opts: TokenReviewOptions) {
    this.opts = opts;
    this.identity = opts.controllerIdentity ?? DEFAULT_CONTROLLER_IDENTITY;
    this.audience = opts.audience ?? AGENT_AUDIENCE;
    this.cache = new TtlCache({ ttlMs: opts.cacheTtlMs ?? 10_000, max: opts.cacheMax ?? 1024, now: opts.now });
    this.limiter = new RateLimitedLog({ intervalMs: opts.logIntervalMs ?? 10_000, now: opts.now });
    const existing = opts.registry.getSingleMetric('peripety_api_refused_total') as Counter<'reason'> | undefined;
    this.refused = existing ?? new Counter({
      name: 'peripety_api_refused_total', help: 'Control API requests refused (401/403), by reason', labelNames: ['reason'], registers: [opts.registry],
    });
    for (const r of REFUSAL_REASONS) this.refused.labels(r).inc(0);
  }

  async authenticate(header: string | undefined): Promise<AuthResult> {
    const token = bearerToken(header);
    if (token === null) {
      return this.refuse({ result: { ok: false, status: 401, reason: 'a bearer token is required (Authorization: Bearer <token>)' }, reason: 'no_token' });
    }
    const key = tokenKey(token);
    let v = this.cache.get(key);
    if (!v) {
      let p = this.inflight.get(key);
      if (!p) {
        p = this.review(token, key).finally(() => this.inflight.delete(key));
        this.inflight.set(key, p);
      }
      v = await p;
    }
    return v.reason === null ? v.result : this.refuse(v);
  }

  private async review(token: string, key: string): Promise<Verdict> {
    let status: TokenReviewStatus | undefined;
    try {
      const r = await this.opts.client.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [this.audience] },
      }, { timeoutMs: 5_000 });
      if (r.status !== 201 && r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      status = r.body.status;
    } catch (err) {
      // not cached: the next request tries again
      return { result: { ok: false, status: 401, reason: 'the token could not be reviewed (the Kubernetes API did not answer); try again' }, reason: 'review_failed', detail: (err as Error).message };
    }
    const v = judgeReview(status, this.identity, this.audience);
    this.cache.set(key, v);
    return v;
  }

  private refuse(v: Verdict): AuthResult {
    const reason = v.reason!;
    this.refused.labels(reason).inc();
    const suppressed = this.limiter.admit(reason);
    if (suppressed !== null) {
      const detail = v.detail;
      this.opts.log.warn({ reason, status: v.result.ok ? 200 : v.result.status, suppressed, ...(detail ? { err: detail.slice(0, 300) } : {}) }, 'control API request refused');
    }
    return v.result;
  }
}
