// The TokenReview authenticator's pure parts (verdicts, cache, rate-limited
// log) and its behaviour over a scripted client; the real API server is in
// test/root/agent-control.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { agentAudience, judgeReview, TokenReviewAuthenticator, tokenKey, type TokenReviewStatus } from '../../../src/api/tokenreview.ts';
import { TtlCache } from '../../../src/contracts/ttl-cache.ts';
import { RateLimitedLog } from '../../../src/log/rate-limit.ts';
import type { Logger } from '../../../src/log/logger.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const CONTROLLER = 'system:serviceaccount:peripety-system:peripety-controller';
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A JWT-shaped token (unsigned: the scripted client below decides) with these claims. */
const jwt = (name: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: 'RS256' }) =>
  [b64(header), b64({ aud: ['peripety-agent'], sub: CONTROLLER, exp: 4_000_000_000, jti: name, ...claims }), Buffer.from(name).toString('base64url')].join('.');
const CONTROLLER_TOKEN = jwt('controller');
/** claims to be the controller; the API server says it is someone else */
const OTHER_TOKEN = jwt('other');
const BOGUS_TOKEN = jwt('bogus');

describe('judgeReview', () => {
  it('accepts only an authenticated controller token for the agent audience', () => {
    const ok = judgeReview({ authenticated: true, user: { username: CONTROLLER }, audiences: ['peripety-agent'] }, CONTROLLER);
    assert.deepEqual(ok.result, { ok: true, who: CONTROLLER });
    assert.equal(ok.reason, null);
  });
  const cases: [string, TokenReviewStatus | undefined, number, string][] = [
    ['no status', undefined, 401, 'invalid_token'],
    ['not authenticated', { authenticated: false, error: 'bad' }, 401, 'invalid_token'],
    ['no audiences', { authenticated: true, user: { username: CONTROLLER } }, 401, 'wrong_audience'],
    ['other audience', { authenticated: true, user: { username: CONTROLLER }, audiences: ['https://kubernetes'] }, 401, 'wrong_audience'],
    ['another ServiceAccount', { authenticated: true, user: { username: 'system:serviceaccount:default:x' }, audiences: ['peripety-agent'] }, 403, 'wrong_identity'],
    ['no user name', { authenticated: true, user: {}, audiences: ['peripety-agent'] }, 403, 'wrong_identity'],
  ];
  for (const [what, status, code, reason] of cases) {
    it(`refuses: ${what} → ${code} ${reason}`, () => {
      const v = judgeReview(status, CONTROLLER);
      assert.equal(v.result.ok, false);
      assert.equal(!v.result.ok && v.result.status, code);
      assert.equal(v.reason, reason);
    });
  }
});

describe('TtlCache', () => {
  it('expires entries after the TTL', () => {
    let now = 1000;
    const c = new TtlCache<number>({ ttlMs: 10, max: 10, now: () => now });
    c.set('a', 1);
    assert.equal(c.get('a'), 1);
    now += 9;
    assert.equal(c.get('a'), 1);
    now += 1;
    assert.equal(c.get('a'), undefined);
  });
  it('stays within its bound, dropping the oldest first', () => {
    const c = new TtlCache<number>({ ttlMs: 1e9, max: 3 });
    for (let i = 0; i < 10; i++) c.set(`k${i}`, i);
    assert.equal(c.size, 3);
    assert.equal(c.get('k6'), undefined);
    assert.equal(c.get('k9'), 9);
  });
});

describe('RateLimitedLog', () => {
  it('admits one line per interval per key and counts the suppressed ones', () => {
    let now = 0;
    const l = new RateLimitedLog({ intervalMs: 10_000, now: () => now });
    assert.equal(l.admit('a'), 0);
    assert.equal(l.admit('a'), null);
    assert.equal(l.admit('a'), null);
    assert.equal(l.admit('b'), 0, 'keys are independent');
    now = 9_999;
    assert.equal(l.admit('a'), null);
    now = 10_000;
    assert.equal(l.admit('a'), 3);
    assert.equal(l.admit('a'), null);
  });
});

function recordingLogger(lines: unknown[]): Logger {
  const log = silentLogger();
  log.warn = ((obj: unknown, msg?: string) => lines.push({ obj, msg })) as Logger['warn'];
  return log;
}

describe('TokenReviewAuthenticator', () => {
  const setup = (answer: (token: string) => TokenReviewStatus | Error) => {
    const calls: unknown[] = [];
    let now = 0;
    const lines: unknown[] = [];
    const registry = new Registry();
    const client = {
      request: <T>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
        calls.push({ method, urlPath, body });
        const token = (body as { spec: { token: string } }).spec.token;
        const a = answer(token);
        if (a instanceof Error) return Promise.reject(a);
        return Promise.resolve({ status: 201, body: { status: a } as T, text: '' });
      },
    };
    const auth = new TokenReviewAuthenticator({ client, log: recordingLogger(lines), registry, now: () => now });
    return { auth, calls, lines, registry, advance: (ms: number) => (now += ms) };
  };
  const byToken = (t: string): TokenReviewStatus =>
    t === CONTROLLER_TOKEN ? { authenticated: true, user: { username: CONTROLLER }, audiences: ['peripety-agent'] }
      : t === OTHER_TOKEN ? { authenticated: true, user: { username: 'system:serviceaccount:default:other' }, audiences: ['peripety-agent'] }
        : { authenticated: false };

  it('posts a TokenReview for the peripety-agent audience and caches the answer for 10 s', async () => {
    const s = setup(byToken);
    assert.deepEqual(await s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`), { ok: true, who: CONTROLLER });
    assert.deepEqual(s.calls[0], {
      method: 'POST', urlPath: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: CONTROLLER_TOKEN, audiences: ['peripety-agent'] } },
    });
    await s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`);
    assert.equal(s.calls.length, 1, 'cached');
    s.advance(10_001);
    await s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`);
    assert.equal(s.calls.length, 2, 'reviewed again after the TTL');
  });
  it('one review for concurrent requests with the same token', async () => {
    const s = setup(byToken);
    await Promise.all([1, 2, 3, 4].map(() => s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`)));
    assert.equal(s.calls.length, 1);
  });
  it('refuses no token (401), an invalid one (401), another identity (403); counts and rate-limits the log; never logs the token', async () => {
    const s = setup(byToken);
    const none = await s.auth.authenticate(undefined);
    assert.equal(!none.ok && none.status, 401);
    const bad = await s.auth.authenticate(`Bearer ${BOGUS_TOKEN}`);
    assert.equal(!bad.ok && bad.status, 401);
    for (let i = 0; i < 5; i++) {
      const other = await s.auth.authenticate(`Bearer ${OTHER_TOKEN}`);
      assert.equal(!other.ok && other.status, 403);
    }
    assert.equal(s.calls.length, 2, 'the negative answers are cached too');
    const metrics = await s.registry.metrics();
    assert.match(metrics, /peripety_api_refused_total\{reason="no_token"\} 1/);
    assert.match(metrics, /peripety_api_refused_total\{reason="invalid_token"\} 1/);
    assert.match(metrics, /peripety_api_refused_total\{reason="wrong_identity"\} 5/);
    assert.match(metrics, /peripety_api_refused_total\{reason="wrong_audience"\} 0/);
    assert.equal(s.lines.length, 3, 'one line per reason within 10 s');
    s.advance(10_000);
    await s.auth.authenticate(`Bearer ${OTHER_TOKEN}`);
    assert.equal(s.lines.length, 4);
    assert.equal((s.lines[3] as { obj: { suppressed: number } }).obj.suppressed, 4);
    const logged = JSON.stringify(s.lines);
    assert.ok(!logged.includes('other-token-xyz') && !logged.includes('bogus-token-xyz'), logged);
  });
  it('an unreachable API server refuses with 401 and is not cached', async () => {
    let fail = true;
    const s = setup((t) => (fail ? new Error('connect ECONNREFUSED') : byToken(t)));
    const r = await s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`);
    assert.equal(!r.ok && r.status, 401);
    assert.match(await s.registry.metrics(), /reason="review_failed"\} 1/);
    fail = false;
    assert.equal((await s.auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`)).ok, true);
  });
  it('refuses what cannot be a ServiceAccount token for peripety-agent without a review', async () => {
    const s = setup(byToken);
    const cases: [string, string, number, string][] = [
      ['no JWT', 'not-a-jwt-0123456789', 401, 'malformed_token'],
      ['two segments', 'abc.def', 401, 'malformed_token'],
      ['header no JSON', `${Buffer.from('xx').toString('base64url')}.${b64({})}.c2ln`, 401, 'malformed_token'],
      ['alg none', jwt('n', {}, { alg: 'none' }), 401, 'malformed_token'],
      ['alg HS256', jwt('h', {}, { alg: 'HS256' }), 401, 'malformed_token'],
      ['typ other', jwt('t', {}, { alg: 'RS256', typ: 'JOSE+X' }), 401, 'malformed_token'],
      ['claims an array', `${b64({ alg: 'RS256' })}.${b64([1])}.c2ln`, 401, 'malformed_token'],
      ['other audience', jwt('a', { aud: ['https://kubernetes.default.svc'] }), 401, 'wrong_audience'],
      ['expired', jwt('e', { exp: 1_000 }), 401, 'invalid_token'],
      ['no exp', jwt('x', { exp: undefined }), 401, 'invalid_token'],
      ['another subject', jwt('s', { sub: 'system:serviceaccount:default:x' }), 403, 'wrong_identity'],
    ];
    s.advance(10_000_000); // the clock at 10,000 s: exp 1,000 is past
    for (const [what, token, status, reason] of cases) {
      const r = await s.auth.authenticate(`Bearer ${token}`);
      assert.equal(!r.ok && r.status, status, what);
      assert.match(await s.registry.metrics(), new RegExp(`peripety_api_refused_total\\{reason="${reason}"\\} [1-9]`), what);
    }
    assert.equal(s.calls.length, 0, `no review: ${JSON.stringify(s.calls)}`);
  });
  it('rate-limits and bounds the reviews of new tokens; the controller\'s verdict survives any number of refused ones', async () => {
    const calls: string[] = [];
    const waiting: (() => void)[] = [];
    let hold = false;
    let now = 0;
    const registry = new Registry();
    const client = {
      request: async <T>(_m: string, _p: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
        const token = (body as { spec: { token: string } }).spec.token;
        calls.push(token);
        if (hold) await new Promise<void>((resolve) => waiting.push(resolve));
        return { status: 201, body: { status: byToken(token) } as T, text: '' };
      },
    };
    const auth = new TokenReviewAuthenticator({ client, log: silentLogger(), registry, now: () => now, reviewLimits: { burst: 3, perSecond: 1, clientBurst: 3, clientPerSecond: 1, inFlight: 2, clientInFlight: 2 }, cacheMax: 4 });
    assert.equal((await auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`)).ok, true);
    const statuses: (number | true)[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await auth.authenticate(`Bearer ${jwt(`junk${i}`)}`);
      statuses.push(r.ok || r.status);
      if (!r.ok && r.status === 429) assert.equal(r.retryAfterSeconds, 1);
    }
    assert.deepEqual(statuses, [401, 401, ...Array<number>(18).fill(429)], 'burst 3, one taken by the controller');
    assert.equal(calls.length, 3);
    // junk filled the refused cache (4) many times over; the controller's verdict is still cached
    assert.equal((await auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`)).ok, true);
    assert.equal(calls.length, 3, 'no new review for the controller');
    // after its TTL, the controller is reviewed again even with the bucket empty
    now += 10_001;
    for (let i = 0; i < 10; i++) await auth.authenticate(`Bearer ${jwt(`more${i}`)}`);
    assert.equal((await auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`)).ok, true);
    assert.equal(calls.filter((t) => t === CONTROLLER_TOKEN).length, 2);
    // in flight: at most 2 reviews of new tokens wait on the API server; the rest are 503 at once
    now += 100_000;
    hold = true;
    const pending = [0, 1].map((i) => auth.authenticate(`Bearer ${jwt(`slow${i}`)}`));
    await new Promise((r) => setImmediate(r));
    const busy = await auth.authenticate(`Bearer ${jwt('slow2')}`);
    assert.equal(!busy.ok && busy.status, 503);
    hold = false;
    waiting.forEach((f) => f());
    await Promise.all(pending);
    const m = await registry.metrics();
    assert.match(m, /peripety_api_refused_total\{reason="review_rate_limited"\} [1-9]/);
    assert.match(m, /peripety_api_refused_total\{reason="review_busy"\} 1/);
    assert.match(m, /peripety_api_token_reviews_total\{result="accepted"\} 2/);
  });
  it('one client\'s junk spends only its own share: a new controller token from another address is reviewed at once', async () => {
    const calls: string[] = [];
    const registry = new Registry();
    const client = {
      request: <T>(_m: string, _p: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
        const token = (body as { spec: { token: string } }).spec.token;
        calls.push(token);
        return Promise.resolve({ status: 201, body: { status: byToken(token) } as T, text: '' });
      },
    };
    const auth = new TokenReviewAuthenticator({ client, log: silentLogger(), registry, now: () => 0 });
    const junk: (number | true)[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await auth.authenticate(`Bearer ${jwt(`j${i}`)}`, '10.0.0.66');
      junk.push(r.ok || r.status);
    }
    assert.equal(junk.filter((s) => s === 401).length, 5, 'the attacker\'s own burst (5) reviewed, the rest 429');
    assert.equal(junk.filter((s) => s === 429).length, 25);
    assert.equal((await auth.authenticate(`Bearer ${CONTROLLER_TOKEN}`, '10.0.0.7')).ok, true, 'the controller\'s first request, from its own address');
    assert.equal(calls.length, 6);
  });
  it('keys the cache by SHA-256', () => {
    assert.equal(tokenKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('TokenReviewAuthenticator for a node (audience peripety-agent:<node>, issue 10 A2)', () => {
  const forNode = (node: string) => {
    const reviews: string[][] = [];
    const registry = new Registry();
    const client = {
      request: <T>(_method: string, _urlPath: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
        const spec = (body as { spec: { token: string; audiences: string[] } }).spec;
        reviews.push(spec.audiences);
        const aud = JSON.parse(Buffer.from(spec.token.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string[] };
        // the API server authenticates for the audiences the token was issued for
        const common = aud.aud.filter((a) => spec.audiences.includes(a));
        const status: TokenReviewStatus = common.length > 0 ? { authenticated: true, user: { username: CONTROLLER }, audiences: common } : { authenticated: false };
        return Promise.resolve({ status: 201, body: { status } as T, text: '' });
      },
    };
    const auth = new TokenReviewAuthenticator({ client, log: silentLogger(), registry, audience: agentAudience(node) });
    return { auth, reviews, registry };
  };

  it('accepts the controller\'s token for its own node; refuses the plain peripety-agent and another node\'s, without a review', async () => {
    const b = forNode('node-b');
    assert.deepEqual(await b.auth.authenticate(`Bearer ${jwt('for-b', { aud: ['peripety-agent:node-b'] })}`), { ok: true, who: CONTROLLER });
    assert.deepEqual(b.reviews, [['peripety-agent:node-b']]);
    for (const aud of [['peripety-agent:node-a'], ['peripety-agent'], ['peripety-agent:node-bb'], ['peripety-agent:node']]) {
      const r = await b.auth.authenticate(`Bearer ${jwt(`for-${aud[0]}`, { aud })}`);
      assert.deepEqual(r, { ok: false, status: 401, reason: 'the token is not for the audience peripety-agent:node-b' }, aud[0]);
    }
    assert.equal(b.reviews.length, 1, 'refused by the claim pre-check');
    const m = (await b.registry.getSingleMetric('peripety_api_refused_total')!.get()).values.find((v) => v.labels.reason === 'wrong_audience');
    assert.equal(m?.value, 4);
  });
  it('a review that authenticates the token only for another node\'s audience is refused (wrong_audience)', () => {
    const r = judgeReview({ authenticated: true, user: { username: CONTROLLER }, audiences: ['peripety-agent:node-a'] }, CONTROLLER, agentAudience('node-b'));
    assert.equal(r.reason, 'wrong_audience');
    assert.equal(!r.result.ok && r.result.status, 401);
  });
});
