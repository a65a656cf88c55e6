// GET /v1/stream on a real loopback server: authentication, event delivery,
// heartbeats, the client limit, a slow client (bounded backlog, drops counted
// and announced), resuming with Last-Event-ID, HEAD, and a stop() that does
// not hang on open streams.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../../src/api/auth.ts';
import { ApiServer } from '../../../src/api/server.ts';
import { EventStreamHub } from '../../../src/api/stream.ts';
import { done } from '../../../src/contracts/outcome.ts';
import { type SseMessage, SseParser } from '../../../src/cli/monitor.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';
import { onAck } from '../../helpers/ack.ts';

const TOKEN = 'stream-token-0123456789abcdef';

function ev(i: number, msg = `event ${i}`): StorageEvent {
  return {
    hostname: 'h', severity: 'error', system: 'block', timestamp: 1, event_id: `id-${i}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg, extentions: { n: String(i) },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Stream {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  raw: () => string;
  res: http.IncomingMessage;
  ended: Promise<void>;
  close(): void;
}

function open(port: number, opts: { token?: string | null; headers?: Record<string, string>; method?: string; paused?: boolean } = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/stream', method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const messages: SseMessage[] = [];
      let raw = '';
      const parser = new SseParser();
      res.setEncoding('utf8');
      if (opts.paused) res.pause();
      res.on('data', (c: string) => {
        raw += c;
        parser.push(c, (m) => messages.push(m));
      });
      const ended = new Promise<void>((r) => {
        res.on('end', r);
        res.on('close', r);
        res.on('error', () => r());
      });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, messages, raw: () => raw, res, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /v1/stream', () => {
  const registry = new Registry();
  const hub = new EventStreamHub({ registry, maxClients: 3, maxBufferedBytes: 64 * 1024, heartbeatMs: 50 });
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator(TOKEN),
    log: silentLogger(),
    handlers: {
      registry,
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      queryEvents: () => Promise.resolve(done({ events: [], isTruncated: false })),
      stream: hub,
    },
  });
  let port = 0;
  const streams: Stream[] = [];
  const track = async (p: Promise<Stream>) => {
    const s = await p;
    streams.push(s);
    return s;
  };
  before(async () => {
    port = (await server.start()).port;
  });
  after(async () => {
    for (const s of streams) s.close();
    await server.stop();
  });
  const closeAll = async () => {
    for (const s of streams.splice(0)) s.close();
    await until(() => hub.clientCount === 0, 'clients to go');
  };

  it('does nothing but count while nobody listens', () => {
    let done = 0;
    for (let i = 0; i < 1000; i++) assert.equal(hub.deliver(ev(i), onAck(() => done++)), true);
    assert.equal(done, 1000, 'every event released at once');
    assert.equal(hub.clientCount, 0);
  });

  it('needs the bearer token', async () => {
    const none = await track(open(port, { token: null }));
    assert.equal(none.status, 401);
    const wrong = await track(open(port, { token: 'wrong-token-wrong-token' }));
    assert.equal(wrong.status, 403);
    await closeAll();
  });

  it('streams each event as one data message with an id, and heartbeats', async () => {
    const s = await track(open(port));
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.equal(s.headers['cache-control'], 'no-store');
    await until(() => hub.clientCount === 1, 'the client');
    for (let i = 0; i < 3; i++) hub.deliver(ev(i), NO_ACK);
    await until(() => s.messages.length >= 3, '3 messages');
    assert.deepEqual(s.messages.map((m) => (JSON.parse(m.data) as StorageEvent).event_id), ['id-0', 'id-1', 'id-2']);
    assert.ok(s.messages.every((m) => m.event === 'message' && m.id?.startsWith(`${hub.epoch}-`)));
    await until(() => s.raw().includes(': heartbeat\n\n'), 'a heartbeat');
    await closeAll();
  });

  it('turns away clients beyond the limit with 503', async () => {
    const kept = [await track(open(port)), await track(open(port)), await track(open(port))];
    assert.ok(kept.every((s) => s.status === 200));
    const extra = await track(open(port));
    assert.equal(extra.status, 503);
    await extra.ended;
    assert.match(extra.raw(), /too many stream clients \(at most 3\)/);
    kept[0]!.close();
    await until(() => hub.clientCount === 2, 'a client to leave');
    const again = await track(open(port));
    assert.equal(again.status, 200);
    await closeAll();
  });

  it('a slow client: bounded backlog, drops counted and announced, nothing else held up', async () => {
    const slow = await track(open(port, { paused: true }));
    const fast = await track(open(port));
    await until(() => hub.clientCount === 2, 'two clients');
    const n = 20_000;
    const big = 'x'.repeat(1000);
    let deliverMs = 0;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      hub.deliver(ev(i, big), NO_ACK);
      deliverMs += performance.now() - t0;
      // the fast reader is in this process: let it read now and then
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    await until(() => fast.messages.filter((m) => m.event === 'message').length === n, 'the fast client to get everything', 20_000);
    slow.res.resume();
    // once its backlog drained, the client is told how many it missed
    await until(() => slow.messages.some((m) => m.event === 'lost'), 'the lost notice', 20_000);
    hub.deliver(ev(n), NO_ACK);
    await until(() => slow.messages.some((m) => m.data.includes(`"id-${n}"`)), 'the slow client to catch up', 20_000);
    const data = slow.messages.filter((m) => m.event === 'message');
    const lost = slow.messages.filter((m) => m.event === 'lost').map((m) => (JSON.parse(m.data) as { lost: number }).lost);
    const lostTotal = lost.reduce((a, b) => a + b, 0);
    assert.ok(lostTotal > 0, 'the slow client lost events');
    assert.equal(data.length + lostTotal, n + 1, `received ${data.length} + lost ${lostTotal} = published`);
    assert.equal(fast.messages.filter((m) => m.event === 'lost').length, 0, 'the fast client lost nothing');
    const ids = data.map((m) => Number((JSON.parse(m.data) as StorageEvent).event_id.slice(3)));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in order');
    const metrics = await registry.metrics();
    assert.match(metrics, new RegExp(`peripety_stream_dropped_events_total ${lostTotal}\\b`));
    assert.ok(deliverMs < 5000, `delivering ${n} events took ${deliverMs.toFixed(0)} ms`);
    await closeAll();
  });

  it('tells a client that reconnects with Last-Event-ID how many events it missed', async () => {
    const first = await track(open(port));
    await until(() => hub.clientCount === 1, 'the client');
    hub.deliver(ev(1), NO_ACK);
    await until(() => first.messages.length === 1, 'an event');
    const lastId = first.messages[0]!.id!;
    await closeAll();
    for (let i = 0; i < 5; i++) hub.deliver(ev(i), NO_ACK);
    const again = await track(open(port, { headers: { 'last-event-id': lastId } }));
    await until(() => again.messages.length === 1, 'the lost notice');
    assert.deepEqual(again.messages[0], { event: 'lost', data: '{"lost":5}', id: undefined });
    const foreign = await track(open(port, { headers: { 'last-event-id': '000000000000-1' } }));
    hub.deliver(ev(9), NO_ACK);
    await until(() => foreign.messages.length === 1, 'an event');
    assert.equal(foreign.messages[0]!.event, 'message', 'an id of another agent run says nothing');
    await closeAll();
  });

  it('answers HEAD with the headers only', async () => {
    const h = await track(open(port, { method: 'HEAD' }));
    assert.equal(h.status, 200);
    assert.match(h.headers['content-type'] ?? '', /^text\/event-stream/);
    await h.ended;
    assert.equal(hub.clientCount, 0);
  });
});

describe('stopping the server with open streams', () => {
  it('ends them (even a client that does not read) and returns promptly', async () => {
    const hub = new EventStreamHub({ maxBufferedBytes: 1024 });
    const server = new ApiServer({
      listen: '127.0.0.1:0', auth: new StaticTokenAuthenticator(TOKEN), log: silentLogger(),
      handlers: { registry: new Registry(), readiness: () => ({ ready: true, reasons: [] }), status: () => ({}), queryEvents: () => Promise.resolve(done({ events: [], isTruncated: false })), stream: hub },
    });
    const { port } = await server.start();
    const reading = await open(port);
    const stuck = await open(port, { paused: true });
    await until(() => hub.clientCount === 2, 'two clients');
    for (let i = 0; i < 3000; i++) hub.deliver(ev(i, 'y'.repeat(500)), NO_ACK);
    const t0 = Date.now();
    await server.stop();
    assert.ok(Date.now() - t0 < 2000, `stop took ${Date.now() - t0} ms`);
    await reading.ended;
    stuck.close();
    assert.equal(hub.clientCount, 0);
  });

  it('without a stream handler the endpoint is 404', async () => {
    const server = new ApiServer({
      listen: '127.0.0.1:0', auth: new StaticTokenAuthenticator(TOKEN), log: silentLogger(),
      handlers: { registry: new Registry(), readiness: () => ({ ready: true, reasons: [] }), status: () => ({}), queryEvents: () => Promise.resolve(done({ events: [], isTruncated: false })) },
    });
    const { port } = await server.start();
    const s = await open(port);
    assert.equal(s.status, 404);
    await s.ended;
    await server.stop();
  });
});
