// Issue 10 A5: junk bearer tokens cannot make the agent flood the API server
// with TokenReviews, nor push the controller's verdict out of its cache. A
// real agent in Kubernetes mode against a real kube-apiserver
// (test/helpers/envtest.ts); the API server's own /metrics
// (apiserver_request_total{resource="tokenreviews"}) counts the reviews the
// agent sends, cross-checked with the agent's peripety_api_token_reviews_total.
//   - 5,000 requests, each with a new junk token that is no JWT: 0 reviews;
//   - for longer than the verdict cache lifetime, requests with new JWT-shaped
//     forgeries that claim to be the controller for peripety-agent, all from
//     127.0.0.1: reviews bounded by that client's review rate limit, and a
//     new controller token (rotated) from 127.0.0.2 accepted at its first
//     request in the middle of it;
//   - the controller's real token is accepted all along: its verdict stays
//     cached (no re-review before the cache lifetime ends, junk cannot evict
//     it), and when it expires the re-review gets through the exhausted rate
//     limit.
// Root: the agent reads /dev/kmsg.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLIENT_REVIEW_BURST, CLIENT_REVIEW_RATE_PER_SECOND, VERDICT_TTL_MS } from '../../../src/api/tokenreview.ts';
import { type AgentProcess, startAgent, testConfig } from '../../helpers/agent.ts';
import { AGENT_AUDIENCE, ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../../helpers/envtest.ts';
import { isRoot } from '../../helpers/faults.ts';
import { rbacYaml } from '../../helpers/manifests.ts';
import { parseMetrics, sumMetric } from '../../helpers/prom-text.ts';

const NODE = 'node-hostile-api';
const JUNK = 5_000;
/** the forgery flood outlasts one verdict lifetime: the controller's verdict expires once in it */
const FORGED_FOR_MS = VERDICT_TTL_MS + 3_000;
/** each worker's pause between forged requests (16 workers: ~800 requests/s) */
const FORGED_PACE_MS = 20;
/** a controller request after every this many junk ones */
const CONTROLLER_EVERY = 100;
const CONCURRENCY = 16;
const CONTROLLER = `system:serviceaccount:${ENVTEST_NAMESPACE}:peripety-controller`;

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A JWT that looks like the controller's token for this node's agent (peripety-agent:<node>) but is signed by nobody. */
function forgedJwt(): string {
  const now = Math.floor(Date.now() / 1000);
  return [
    b64({ alg: 'RS256', kid: randomBytes(8).toString('hex') }),
    b64({ aud: [`${AGENT_AUDIENCE}:${NODE}`], sub: CONTROLLER, iss: 'https://kubernetes.default.svc', iat: now, nbf: now, exp: now + 3600, jti: randomBytes(8).toString('hex') }),
    randomBytes(256).toString('base64url'),
  ].join('.');
}

describe('TokenReviews under junk tokens (real agent, real kube-apiserver)', {
  skip: !isRoot() && 'NOT ROOT: the agent reads /dev/kmsg',
  timeout: ENVTEST_BUILD_TIMEOUT_MS + 300_000,
}, () => {
  let env: Envtest;
  let agent: AgentProcess;
  let controllerToken = '';
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  const get = (token: string, from?: string): Promise<number> => new Promise((resolve, reject) => {
    const u = new URL(`${agent.apiUrl()}/v1/status`);
    const via = from === undefined ? { agent: keepAlive } : { agent: false, localAddress: from };
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, ...via, headers: { authorization: `Bearer ${token}` }, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 15 s')));
    req.on('error', reject);
  });
  const reviewsSeenByApiserver = async () => {
    const r = await env.request<string>('GET', '/metrics');
    assert.equal(r.status, 200);
    return sumMetric(parseMetrics(r.text), 'apiserver_request_total', { resource: 'tokenreviews' });
  };
  const agentMetrics = async () => parseMetrics(await (await fetch(`${agent.apiUrl()}/metrics`)).text());

  /**
   * Requests with tokens from `make`, CONCURRENCY at a time, a controller request every CONTROLLER_EVERY:
   * `count` of them, or (forMs) for that long with a pause of paceMs per worker; statuses counted.
   */
  const flood = async (make: () => string, opts: { count?: number; forMs?: number; paceMs?: number }) => {
    const statuses = new Map<number, number>();
    const controller: number[] = [];
    let next = 0;
    const t0 = Date.now();
    const more = (i: number) => (opts.count !== undefined ? i < opts.count : Date.now() - t0 < opts.forMs!);
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; more(i); i = next++) {
        const s = await get(make());
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
        if (i % CONTROLLER_EVERY === 0) controller.push(await get(controllerToken));
        if (opts.paceMs) await sleep(opts.paceMs);
      }
    }));
    return { statuses, controller, elapsedMs: Date.now() - t0, sent: next - CONCURRENCY };
  };

  before(async () => {
    env = await startEnvtest();
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('agent') });
    controllerToken = await env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [`${AGENT_AUDIENCE}:${NODE}`] });
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-tokenreview-')), 'state');
    agent = await startAgent({
      config: testConfig(),
      stateDir,
      args: ['--kubeconfig', env.kubeconfigAgent, '--node-name', NODE, '--namespace', ENVTEST_NAMESPACE],
    });
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    keepAlive.destroy();
    await agent?.stop('SIGKILL');
    await env?.stop();
  });

  it(`${JUNK} requests with new junk tokens that are no JWT: no TokenReview at all; the controller is accepted throughout`, async () => {
    assert.equal(await get(controllerToken), 200);
    const before0 = await reviewsSeenByApiserver();
    const r = await flood(() => randomBytes(30).toString('base64url'), { count: JUNK });
    const reviews = (await reviewsSeenByApiserver()) - before0;
    // the controller's verdict may expire (and be reviewed again) once per cache lifetime, no more
    const controllerAllowance = Math.ceil(r.elapsedMs / VERDICT_TTL_MS) + 1;
    console.log(`# ${JUNK} junk tokens in ${r.elapsedMs} ms: statuses ${JSON.stringify([...r.statuses])}; TokenReviews seen by the API server: ${reviews} (controller allowance ${controllerAllowance}); controller ${r.controller.filter((s) => s === 200).length} of ${r.controller.length} accepted`);
    assert.deepEqual([...r.statuses.keys()], [401], 'every junk token is refused with 401');
    assert.ok(r.controller.every((s) => s === 200), `controller answers: ${JSON.stringify(r.controller)}`);
    assert.ok(reviews <= controllerAllowance, `${reviews} TokenReviews for ${JUNK} junk tokens (at most ${controllerAllowance} for the controller's own token)`);
    const m = await agentMetrics();
    assert.ok(sumMetric(m, 'peripety_api_refused_total', { reason: 'malformed_token' }) >= JUNK, 'counted as malformed_token');
  });

  it(`new JWT-shaped forgeries for ${FORGED_FOR_MS} ms: reviews bounded by the rate limit; the controller's verdict is never evicted, and renewed through the exhausted limit`, async () => {
    const before0 = await reviewsSeenByApiserver();
    const agent0 = await agentMetrics();
    // halfway: the controller's token rotates; the new one comes from another address
    const rotated = sleep(FORGED_FOR_MS / 2).then(async () => {
      const fresh = await env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [`${AGENT_AUDIENCE}:${NODE}`] });
      return get(fresh, '127.0.0.2');
    });
    const r = await flood(forgedJwt, { forMs: FORGED_FOR_MS, paceMs: FORGED_PACE_MS });
    const rotatedStatus = await rotated;
    const reviews = (await reviewsSeenByApiserver()) - before0;
    const agent1 = await agentMetrics();
    // the flooding client's share, the controller's renewals, the rotated token's one review, and 2 for rounding
    const bound = 2 + CLIENT_REVIEW_BURST + Math.ceil(CLIENT_REVIEW_RATE_PER_SECOND * (r.elapsedMs / 1000)) + Math.ceil(r.elapsedMs / VERDICT_TTL_MS) + 1 + 1;
    const authenticated = sumMetric(agent1, 'peripety_api_token_reviews_total', { result: 'accepted' }) - sumMetric(agent0, 'peripety_api_token_reviews_total', { result: 'accepted' });
    const agentReviews = sumMetric(agent1, 'peripety_api_token_reviews_total') - sumMetric(agent0, 'peripety_api_token_reviews_total');
    console.log(`# ${r.sent} forged JWTs in ${r.elapsedMs} ms: statuses ${JSON.stringify([...r.statuses])}; TokenReviews seen by the API server: ${reviews} (bound ${bound}), by the agent: ${agentReviews}, of which the controller's: ${authenticated}; controller ${r.controller.filter((s) => s === 200).length} of ${r.controller.length} accepted; its rotated token from 127.0.0.2: ${rotatedStatus}`);
    assert.ok(r.controller.every((s) => s === 200), `controller answers: ${JSON.stringify(r.controller)}`);
    assert.equal(rotatedStatus, 200, 'the rotated controller token, from its own address, is reviewed and accepted at its first request');
    assert.ok(reviews <= bound, `${reviews} TokenReviews for ${r.sent} forged tokens in ${r.elapsedMs} ms (bound ${bound})`);
    assert.equal(agentReviews, reviews, 'the agent counts every review the API server saw');
    // every request with the controller's token (one per CONTROLLER_EVERY) found its cached verdict:
    // it was reviewed again at most once per cache lifetime, not once per request
    assert.ok(authenticated <= Math.ceil(r.elapsedMs / VERDICT_TTL_MS) + 2, `${authenticated} reviews of the controller's token in ${r.elapsedMs} ms`);
    // the flood outlasted the verdict: the controller was reviewed again (and accepted, above) while junk found the limit exhausted
    assert.ok(authenticated >= 1, 'the controller\'s verdict expired during the flood and was renewed');
    for (const s of r.statuses.keys()) assert.ok([401, 429, 503].includes(s), `forged tokens answered ${s}`);
    assert.ok(sumMetric(agent1, 'peripety_api_refused_total', { reason: 'review_rate_limited' }) > 0, 'rate-limited reviews are counted');
  });
});
