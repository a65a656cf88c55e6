// The control API's authenticator in Kubernetes mode (docs/agent-api.md
// "Authentication"): the bearer token is checked with a TokenReview for the
// audience peripety-agent:<this node> (agentAudience), and the caller must be
// the controller's ServiceAccount. The audience names the node so that a
// token is good at one agent only: the controller requests one per node
// (src/controller/agent-tokens.ts), and a compromised node cannot replay the
// token it received to the others (issue 10 A2). Results are cached briefly under a SHA-256 of the token (the
// raw token is never kept or logged); refusals are counted by a bounded reason
// and logged at most once per interval per reason.
//
// A review costs the API server a signature check (or a webhook call), and
// anyone who reaches the port can send tokens (issue 10 A5). So: a token that
// cannot be the controller's (no JWT, wrong claims) is refused without a
// review; reviews of tokens not seen accepted before are rate-limited and
// bounded in flight (excess answered 429/503, never queued); and accepted
// verdicts live in their own cache, which refused tokens cannot evict.
import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { TtlCache } from '../contracts/ttl-cache.ts';
import type { KubeClient } from '../k8s/http.ts';
import type { Logger } from '../log/logger.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';
import { type AuthResult, type Authenticator, bearerToken, type RefusalReason, refusalCounter } from './auth.ts';
import { ReviewAdmission, type ReviewLimits } from './limits.ts';
import { perRegistry } from '../metrics/per-registry.ts';

/** peripety_api_token_reviews_total on `registry`, one per registry (its results exist at 0 from the start) */
const tokenReviewCounter = perRegistry((registry: Registry): Counter<'result'> => {
  const c = new Counter({
    name: 'peripety_api_token_reviews_total', help: 'TokenReviews sent to the Kubernetes API, by result (accepted, refused, failed)', labelNames: ['result'], registers: [registry],
  });
  for (const r of ['accepted', 'refused', 'failed']) c.labels(r).inc(0);
  return c;
});


const AGENT_AUDIENCE = 'peripety-agent';

/**
 * The audience of the tokens the agent on `node` accepts. The plain
 * AGENT_AUDIENCE is not accepted (not even during an upgrade): a token for it
 * would be good at every agent again, which is the hole this closes.
 */
export function agentAudience(node: string): string {
  return `${AGENT_AUDIENCE}:${node}`;
}
export const DEFAULT_CONTROLLER_IDENTITY = 'system:serviceaccount:peripety-system:peripety-controller';


/** How long a verdict (accepted or refused) is reused without a new review. */
export const VERDICT_TTL_MS = 10_000;
/** Reviews of tokens not accepted before, all clients together: this many at once, then REVIEW_RATE_PER_SECOND. */
const REVIEW_BURST = 10;
const REVIEW_RATE_PER_SECOND = 5;
/** The same for one client (source address): its junk spends at most this share. */
export const CLIENT_REVIEW_BURST = 5;
export const CLIENT_REVIEW_RATE_PER_SECOND = 2;
/** Reviews of tokens not accepted before that may wait on the API server at once, all clients and one (the rest: 503). */
const MAX_REVIEWS_IN_FLIGHT = 4;
const MAX_CLIENT_REVIEWS_IN_FLIGHT = 2;
/** Signature algorithms of Kubernetes ServiceAccount tokens (asymmetric; never "none" nor HMAC). */
const JWT_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);
/** tolerated clock difference with the API server for `exp` */
const CLOCK_SKEW_SECONDS = 60;

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

function decodeJsonSegment(segment: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Whether `token` can be the controller's ServiceAccount token for
 * `audience` at all (pure, no signature check: that is the TokenReview's):
 * a JWT (three base64url segments) with an asymmetric `alg`, `typ` JWT or
 * none, `aud` naming the audience, `sub` the controller identity and `exp`
 * not past. Kubernetes issues exactly such tokens (TokenRequest, projected
 * volumes), so this refuses nothing the TokenReview would accept; it spares
 * the API server the review of everything else. null when plausible.
 */
function precheckToken(token: string, controllerIdentity: string, audience: string, nowMs: number): Verdict | null {
  const malformed = (why: string): Verdict => ({ result: { ok: false, status: 401, reason: `the token is not a Kubernetes ServiceAccount token (${why})` }, reason: 'malformed_token' });
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return malformed('a JWT has three base64url segments');
  const header = decodeJsonSegment(parts[0]!);
  if (!header) return malformed('its header is not a JSON object');
  if (typeof header.alg !== 'string' || !JWT_ALGORITHMS.has(header.alg)) return malformed('its alg is not an asymmetric signature algorithm');
  if (header.typ !== undefined && header.typ !== 'JWT') return malformed('its typ is not JWT');
  const claims = decodeJsonSegment(parts[1]!);
  if (!claims) return malformed('its claims are not a JSON object');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.includes(audience)) return { result: { ok: false, status: 401, reason: `the token is not for the audience ${audience}` }, reason: 'wrong_audience' };
  if (typeof claims.exp !== 'number' || claims.exp + CLOCK_SKEW_SECONDS < nowMs / 1000) {
    return { result: { ok: false, status: 401, reason: 'the token has expired (or says no expiry)' }, reason: 'invalid_token' };
  }
  if (claims.sub !== controllerIdentity) {
    return { result: { ok: false, status: 403, reason: 'this identity may not use the agent control API' }, reason: 'wrong_identity' };
  }
  return null;
}

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

interface TokenReviewOptions {
  client: Pick<KubeClient, 'request'>;
  log: Logger;
  registry: Registry;
  /** the caller allowed: system:serviceaccount:<ns>:<sa> */
  controllerIdentity?: string;
  /** the audience to review for: agentAudience(<node name>) in an agent (default: the plain peripety-agent, for tests) */
  audience?: string;
  cacheTtlMs?: number;
  /** refused verdicts kept (accepted ones have their own, smaller cache) */
  cacheMax?: number;
  logIntervalMs?: number;
  /** reviews of tokens not accepted before (defaults: the constants above) */
  reviewLimits?: Partial<ReviewLimits>;
  now?: () => number;
}

/** Accepted verdicts kept: one controller rarely has more than a couple of live tokens. */
const ACCEPTED_CACHE_MAX = 64;
/** Tokens once accepted are remembered (for a rate-limit-free re-review) this long at most. */
const KNOWN_GOOD_MS = 24 * 3600_000;

export class TokenReviewAuthenticator implements Authenticator {
  private readonly opts: TokenReviewOptions;
  private readonly identity: string;
  private readonly audience: string;
  /** accepted verdicts: refusals never evict them */
  private readonly accepted: TtlCache<Verdict>;
  private readonly refusedCache: TtlCache<Verdict>;
  /** tokens accepted before (until their verdict could no longer matter): their re-review skips the rate limit */
  private readonly knownGood: TtlCache<true>;
  private readonly inflight = new Map<string, Promise<Verdict>>();
  /** rate and in-flight bounds of reviews for tokens not accepted before */
  private readonly admission: ReviewAdmission;
  private readonly now: () => number;
  private readonly limiter: RateLimitedLog;
  private readonly refused: Counter<'reason'>;
  private readonly reviews: Counter<'result'>;

  constructor(opts: TokenReviewOptions) {
    this.opts = opts;
    this.identity = opts.controllerIdentity ?? DEFAULT_CONTROLLER_IDENTITY;
    this.audience = opts.audience ?? AGENT_AUDIENCE;
    this.now = opts.now ?? Date.now;
    const ttlMs = opts.cacheTtlMs ?? VERDICT_TTL_MS;
    this.accepted = new TtlCache({ ttlMs, max: ACCEPTED_CACHE_MAX, now: opts.now });
    this.refusedCache = new TtlCache({ ttlMs, max: opts.cacheMax ?? 1024, now: opts.now });
    this.knownGood = new TtlCache({ ttlMs: KNOWN_GOOD_MS, max: ACCEPTED_CACHE_MAX, now: opts.now });
    this.admission = new ReviewAdmission({
      burst: REVIEW_BURST,
      perSecond: REVIEW_RATE_PER_SECOND,
      clientBurst: CLIENT_REVIEW_BURST,
      clientPerSecond: CLIENT_REVIEW_RATE_PER_SECOND,
      inFlight: MAX_REVIEWS_IN_FLIGHT,
      clientInFlight: MAX_CLIENT_REVIEWS_IN_FLIGHT,
      ...opts.reviewLimits,
    }, this.now);
    this.limiter = new RateLimitedLog({ intervalMs: opts.logIntervalMs ?? 10_000, now: opts.now });
    this.refused = refusalCounter(opts.registry);
    this.reviews = tokenReviewCounter(opts.registry);
  }

  /** `client`: the caller's address key (clientKey); its reviews are limited apart from other clients'. */
  async authenticate(header: string | undefined, client = 'unknown'): Promise<AuthResult> {
    const token = bearerToken(header);
    if (token === null) {
      return this.refuse({ result: { ok: false, status: 401, reason: 'a bearer token is required (Authorization: Bearer <token>)' }, reason: 'no_token' });
    }
    const key = tokenKey(token);
    let v = this.accepted.get(key) ?? this.refusedCache.get(key);
    if (!v) {
      let p = this.inflight.get(key);
      if (!p) {
        const pre = precheckToken(token, this.identity, this.audience, this.now());
        if (pre) return this.refuse(pre);
        // a token accepted before is reviewed again outside the limits: a
        // flood of forgeries cannot lock the controller out when its verdict expires
        let release = () => {};
        if (this.knownGood.get(key) === undefined) {
          const a = this.admission.admit(client);
          if (!a.ok) {
            return this.refuse(a.reason === 'review_busy'
              ? { result: { ok: false, status: 503, reason: 'too many token reviews in progress; try again', retryAfterSeconds: a.retryAfterSeconds }, reason: a.reason }
              : { result: { ok: false, status: 429, reason: 'too many new tokens to review; try again', retryAfterSeconds: a.retryAfterSeconds }, reason: a.reason });
          }
          release = a.release;
        }
        p = this.review(token, key).finally(() => {
          this.inflight.delete(key);
          release();
        });
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
      this.reviews.labels('failed').inc();
      // not cached: the next request tries again
      return { result: { ok: false, status: 401, reason: 'the token could not be reviewed (the Kubernetes API did not answer); try again' }, reason: 'review_failed', detail: (err as Error).message };
    }
    const v = judgeReview(status, this.identity, this.audience);
    this.reviews.labels(v.reason === null ? 'accepted' : 'refused').inc();
    if (v.reason === null) {
      this.accepted.set(key, v);
      this.knownGood.set(key, true);
    } else {
      this.refusedCache.set(key, v);
    }
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
