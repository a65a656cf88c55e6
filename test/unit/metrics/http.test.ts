// The /metrics and health-probe server (src/metrics/http.ts) that
// `peripety receive` and the controller run, and the answers the agent's
// control API takes from it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { probeAnswer, type ProbeServer, serveProbes } from '../../../src/metrics/http.ts';

describe('probe server', () => {
  const registry = new Registry();
  new Counter({ name: 'peripety_probe_test_total', help: 'a test counter', registers: [registry] }).inc(2);
  let ready = false;
  let full: ProbeServer;
  let metricsOnly: ProbeServer;
  const url = (s: ProbeServer, p: string) => `http://127.0.0.1:${s.port}${p}`;
  before(async () => {
    full = await serveProbes({ registry, readiness: () => ({ ready, reasons: ready ? [] : ['starting', 'storage down'] }), host: '127.0.0.1', port: 0 });
    metricsOnly = await serveProbes({ registry, health: false, host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await full.close();
    await metricsOnly.close();
  });

  it('serves the registry at /metrics (a query string changes nothing)', async () => {
    for (const s of [full, metricsOnly]) {
      const r = await fetch(url(s, '/metrics?x=1'));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), registry.contentType);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.match(await r.text(), /^peripety_probe_test_total 2$/m);
    }
  });
  it('/healthz is ok; /readyz says why it is not ready, then ok', async () => {
    const h = await fetch(url(full, '/healthz'));
    assert.deepEqual([h.status, await h.text()], [200, 'ok\n']);
    const r = await fetch(url(full, '/readyz'));
    assert.deepEqual([r.status, await r.text()], [503, 'not ready: starting; storage down\n']);
    ready = true;
    const ok = await fetch(url(full, '/readyz'));
    assert.deepEqual([ok.status, await ok.text()], [200, 'ok\n']);
  });
  it('health: false serves /metrics only; other paths and methods are refused', async () => {
    const h = await fetch(url(metricsOnly, '/healthz'));
    assert.deepEqual([h.status, await h.text()], [404, 'only GET /metrics here\n']);
    const other = await fetch(url(full, '/v1/status'));
    assert.deepEqual([other.status, await other.text()], [404, 'only GET /metrics, /healthz, /readyz here\n']);
    const post = await fetch(url(full, '/metrics'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });
  it('a registry that cannot render answers 500 with the reason', async () => {
    const broken = new Registry();
    new Counter({ name: 'peripety_probe_broken_total', help: 'x', registers: [broken], collect() { throw new Error('collect failed'); } });
    const s = await serveProbes({ registry: broken, host: '127.0.0.1', port: 0 });
    try {
      const r = await fetch(url(s, '/metrics'));
      assert.deepEqual([r.status, await r.text()], [500, 'collect failed\n']);
    } finally {
      await s.close();
    }
  });
  it('probeAnswer: null for what is not a probe path', async () => {
    assert.equal(await probeAnswer('/v1/events', { registry }), null);
    assert.equal(await probeAnswer('/readyz', { registry, health: false }), null);
    assert.deepEqual(await probeAnswer('/readyz', { registry }), { status: 200, contentType: 'text/plain', body: 'ok\n' });
  });
});
