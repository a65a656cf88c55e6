// The TokenReview authenticator's pure parts (verdicts, cache, rate-limited
// log) and its behaviour over a scripted client; the real API server is in
// test/root/agent-control.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { judgeReview, RateLimitedLog, TokenReviewAuthenticator, tokenKey, TtlCache, type TokenReviewStatus } from '../../../src/api/tokenreview.ts';
import type { Logger } from '../../../src/log/logger.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const CONTROLLER = 'system:serviceaccount:peripety-system:peripety-controller';

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
    t === 'controller-token-xyz' ? { authenticated: true, user: { username: CONTROLLER }, audiences: ['peripety-agent'] }
      : t === 'other-token-xyz' ? { authenticated: true, user: { username: 'system:serviceaccount:default:other' }, audiences: ['peripety-agent'] }
        : { authenticated: false };

  it('posts a TokenReview for the peripety-agent audience and caches the answer for 10 s', async () => {
    const s = setup(byToken);
    assert.deepEqual(await s.auth.authenticate('Bearer controller-token-xyz'), { ok: true, who: CONTROLLER });
    assert.deepEqual(s.calls[0], {
      method: 'POST', urlPath: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'controller-token-xyz', audiences: ['peripety-agent'] } },
    });
    await s.auth.authenticate('Bearer controller-token-xyz');
    assert.equal(s.calls.length, 1, 'cached');
    s.advance(10_001);
    await s.auth.authenticate('Bearer controller-token-xyz');
    assert.equal(s.calls.length, 2, 'reviewed again after the TTL');
  });
  it('one review for concurrent requests with the same token', async () => {
    const s = setup(byToken);
    await Promise.all([1, 2, 3, 4].map(() => s.auth.authenticate('Bearer controller-token-xyz')));
    assert.equal(s.calls.length, 1);
  });
  it('refuses no token (401), an invalid one (401), another identity (403); counts and rate-limits the log; never logs the token', async () => {
    const s = setup(byToken);
    const none = await s.auth.authenticate(undefined);
    assert.equal(!none.ok && none.status, 401);
    const bad = await s.auth.authenticate('Bearer bogus-token-xyz');
    assert.equal(!bad.ok && bad.status, 401);
    for (let i = 0; i < 5; i++) {
      const other = await s.auth.authenticate('Bearer other-token-xyz');
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
    await s.auth.authenticate('Bearer other-token-xyz');
    assert.equal(s.lines.length, 4);
    assert.equal((s.lines[3] as { obj: { suppressed: number } }).obj.suppressed, 4);
    const logged = JSON.stringify(s.lines);
    assert.ok(!logged.includes('other-token-xyz') && !logged.includes('bogus-token-xyz'), logged);
  });
  it('an unreachable API server refuses with 401 and is not cached', async () => {
    let fail = true;
    const s = setup((t) => (fail ? new Error('connect ECONNREFUSED') : byToken(t)));
    const r = await s.auth.authenticate('Bearer controller-token-xyz');
    assert.equal(!r.ok && r.status, 401);
    assert.match(await s.registry.metrics(), /reason="review_failed"\} 1/);
    fail = false;
    assert.equal((await s.auth.authenticate('Bearer controller-token-xyz')).ok, true);
  });
  it('keys the cache by SHA-256', () => {
    assert.equal(tokenKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
