// Issue 10 A5 without root: the agent's real ApiServer (as the agent builds
// it, default limits) on loopback against a real slow client. The root test
// (root/api-slowloris.test.ts) does the same to the whole agent process and
// its SIGTERM; this one also checks the reserve for new clients, the header
// timeout and stop() with slow sockets open.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../src/api/auth.ts';
import { ApiServer, type ApiLimits, DEFAULT_API_LIMITS } from '../../src/api/server.ts';
import { done } from '../../src/contracts/outcome.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { parseMetrics, sumMetric } from '../helpers/prom-text.ts';
import { HEADER_EVERY_MS, probe, Slowloris } from '../helpers/slowloris.ts';

function apiServer(limits: Partial<ApiLimits> = {}, answer: unknown[] = []) {
  const registry = new Registry();
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator('hostile-connections-token-0123'),
    log: silentLogger(),
    limits,
    handlers: {
      registry,
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      queryEvents: () => Promise.resolve(done({ events: answer as StorageEvent[], isTruncated: false })),
    },
  });
  const metric = async (name: string, labels: Record<string, string> = {}) => sumMetric(parseMetrics(await registry.metrics()), name, labels);
  return { server, metric };
}

/** A socket from `from` that the server kept (true) or closed at once (false). */
async function holdConnection(port: number, from: string, keep: net.Socket[]): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
  s.on('error', () => {});
  keep.push(s);
  await new Promise((r) => s.once('connect', r));
  // a refused socket is closed by the server right after accept
  const closed = await Promise.race([new Promise((r) => s.once('close', () => r(true))), sleep(300).then(() => false)]);
  return !closed;
}

describe('agent API under a slowloris (real ApiServer, default limits)', () => {
  const { server, metric } = apiServer();
  let loris: Slowloris | null = null;
  after(async () => {
    loris?.stop();
    await server.stop();
  });

  it('another address gets every probe answered; the flood is held to its share and its header timeouts are counted', async () => {
    const { port } = await server.start();
    loris = new Slowloris(port, 200);
    loris.start();
    await sleep(HEADER_EVERY_MS + 500);
    const results: boolean[] = [];
    const pending: Promise<void>[] = [];
    const paths = ['/healthz', '/readyz', '/metrics'];
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < 7_000; i++) {
      pending.push(probe(port, paths[i % 3]!).then((r) => void results.push(r.ok)));
      await sleep(200);
    }
    await Promise.all(pending);
    const failed = results.filter((ok) => !ok).length;
    assert.equal(failed, 0, `${failed} of ${results.length} probes failed`);
    // the server's own count: the flood's share and at most a probe or two
    const open = await metric('peripety_api_connections');
    assert.ok(open <= DEFAULT_API_LIMITS.perClientConnections + 3, `${open} connections open`);
    assert.ok(await metric('peripety_api_connections_refused_total', { reason: 'per_client_limit' }) > 0);
    // headers never complete: each held socket is cut after headersTimeoutMs (5 s) with a 408, counted
    assert.ok(await metric('peripety_api_requests_refused_total', { reason: 'request_timeout' }) > 0, 'header timeouts counted');
  });

  it('stop() returns within the grace period with the slow sockets still trickling', async () => {
    assert.ok(loris && loris.sockets.size > 0);
    const t0 = Date.now();
    await server.stop();
    const ms = Date.now() - t0;
    assert.ok(ms <= DEFAULT_API_LIMITS.shutdownGraceMs + 1_500, `stop() took ${ms} ms`);
    assert.ok(await metric('peripety_api_shutdown_closed_connections_total') > 0, 'the connections cut at the deadline are counted');
  });
});

describe('the last connections are kept for clients that hold none', () => {
  // total 8, 3 per client, the last 2 only for a client's first connection
  const { server, metric } = apiServer({ maxConnections: 8, perClientConnections: 3, reservedConnections: 2 });
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.stop();
  });

  it('two busy clients fill 6; a third gets one (not two); a fourth still gets in; a fifth is refused', async () => {
    const { port } = await server.start();
    const held = async (from: string, n: number) => {
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push(await holdConnection(port, from, sockets));
      return out;
    };
    assert.deepEqual(await held('127.0.0.11', 4), [true, true, true, false], 'per-client limit 3');
    assert.deepEqual(await held('127.0.0.12', 3), [true, true, true]);
    assert.deepEqual(await held('127.0.0.13', 2), [true, false], 'the reserve takes only first connections');
    const probe4 = await probe(port, '/healthz', '127.0.0.14');
    assert.ok(probe4.ok, `a new client's probe: ${probe4.detail}`);
    assert.deepEqual(await held('127.0.0.15', 1), [true], 'the last slot');
    assert.deepEqual(await held('127.0.0.16', 1), [false], 'all 8 taken');
    assert.equal(await metric('peripety_api_connections_refused_total', { reason: 'per_client_limit' }), 1);
    assert.equal(await metric('peripety_api_connections_refused_total', { reason: 'total_limit' }), 2);
  });
});

describe('a client that stops reading its answer', () => {
  // 64 MiB of answer: far more than the socket buffers take, so the rest waits in the agent
  const big = Array.from({ length: 2_000 }, (_, i) => ({ n: i, message: 'x'.repeat(32 * 1024) }));
  const { server, metric } = apiServer({ idleTimeoutMs: 1_500 }, big);
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.stop();
  });

  it('is cut after idleTimeoutMs without progress, and its buffered answer freed', async () => {
    const { port } = await server.start();
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.21' });
    sockets.push(s);
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.pause();
    s.write('GET /v1/events HTTP/1.1\r\nhost: agent\r\nauthorization: Bearer hostile-connections-token-0123\r\n\r\n');
    const deadline = Date.now() + 15_000;
    let open = 1;
    while (Date.now() < deadline) {
      await sleep(200);
      open = await metric('peripety_api_connections');
      if (open === 0) break;
    }
    assert.equal(open, 0, 'the stalled reader still holds its connection');
  });
});
