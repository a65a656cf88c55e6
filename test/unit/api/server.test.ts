// The HTTP adapter on a real loopback socket: routing, authentication, errors.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry, Counter } from 'prom-client';
import { StaticTokenAuthenticator, bearerToken, loadOrCreateToken } from '../../../src/api/auth.ts';
import type { EventsRequest } from '../../../src/api/query.ts';
import { ApiServer, parseListen } from '../../../src/api/server.ts';
import { done, fail } from '../../../src/contracts/outcome.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TOKEN = 'test-token-0123456789abcdef';

describe('agent HTTP API', () => {
  const registry = new Registry();
  new Counter({ name: 'peripety_test_total', help: 'a test counter', registers: [registry] }).inc(3);
  let ready = false;
  const seen: EventsRequest[] = [];
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator(TOKEN),
    log: silentLogger(),
    handlers: {
      registry,
      readiness: () => ({ ready, reasons: ready ? [] : ['storage manager not started'] }),
      status: () => ({ backends: [] }),
      queryEvents: (req) => {
        seen.push(req);
        if (req.filter === 'bad') return Promise.resolve(fail('invalid', 'filter: unknown word "bad" at position 0'));
        if (req.backend === 'nosuch') return Promise.resolve(fail('not-found', 'no backend named "nosuch"'));
        return Promise.resolve(done({ events: [], isTruncated: req.unbounded }));
      },
    },
  });
  let base = '';
  before(async () => {
    const { port } = await server.start();
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server.stop());
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('serves /healthz and /metrics without a token', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /peripety_test_total 3/);
  });
  it('/readyz says why it is not ready', async () => {
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /storage manager not started/);
    ready = true;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });
  it('/v1/events needs a valid bearer token', async () => {
    const none = await fetch(`${base}/v1/events`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const wrong = await fetch(`${base}/v1/events`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    assert.equal(wrong.status, 403);
    const ok = await fetch(`${base}/v1/events?limit=0`, { headers: auth });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { events: [], isTruncated: true });
    assert.equal(seen.at(-1)?.unbounded, true);
  });
  it('bad parameters and user errors are 4xx with a message', async () => {
    const bad = await fetch(`${base}/v1/events?limit=x`, { headers: auth });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /limit/);
    const f = await fetch(`${base}/v1/events?filter=bad`, { headers: auth });
    assert.equal(f.status, 400);
    assert.match(((await f.json()) as { error: string }).error, /position 0/);
    assert.equal((await fetch(`${base}/v1/events?backend=nosuch`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${base}/nowhere`)).status, 404);
    assert.equal((await fetch(`${base}/v1/events`, { method: 'POST', headers: auth })).status, 405);
  });
  it('counts the static token refusals by reason', async () => {
    const m = await registry.metrics();
    assert.match(m, /peripety_api_refused_total\{reason="no_token"\} [1-9]/);
    assert.match(m, /peripety_api_refused_total\{reason="invalid_token"\} [1-9]/);
  });
  it('/v1/status needs the token too', async () => {
    assert.equal((await fetch(`${base}/v1/status`)).status, 401);
    assert.deepEqual(await (await fetch(`${base}/v1/status`, { headers: auth })).json(), { backends: [] });
  });
});

describe('API helpers', () => {
  it('parses listen addresses', () => {
    assert.deepEqual(parseListen('127.0.0.1:9477'), { host: '127.0.0.1', port: 9477 });
    assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
    assert.throws(() => parseListen('9477'), /must be host:port/);
    assert.throws(() => parseListen('host:99999'), /must be host:port/);
  });
  it('reads bearer tokens strictly', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer abc'), null);
    assert.equal(bearerToken('Bearer a b'), null);
    assert.equal(bearerToken(undefined), null);
  });
  it('creates a 0600 token file once and reads it back', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-token-'));
    try {
      const f = path.join(dir, 'sub', 'api-token');
      const t1 = loadOrCreateToken(f);
      assert.equal(loadOrCreateToken(f), t1);
      assert.ok(t1.length >= 40);
      assert.equal(statSync(f).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses short tokens', () => {
    assert.throws(() => new StaticTokenAuthenticator('short'), /at least 16/);
  });
});
