// The webhook receiver against real loopback HTTP servers (node:http):
// retries until a 2xx and never after one, bounded memory when the server
// hangs, 4xx rejected without retry, credentials that arrive but never reach
// the logs, and the Alertmanager body. The pure parts (webhook-format.ts)
// first.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { StorageEvent } from '../../../src/events/schema.ts';
import type { Logger } from '../../../src/log/logger.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { createWebhookReceiver, redactUrl, type WebhookReceiver } from '../../../src/receivers/webhook.ts';
import { WebhookOptions } from '../../../src/receivers/options.ts';
import {
  alertmanagerPayload, backoffDelay, classifyStatus, eventKey, eventsPayload, idempotencyKey, parseRetryAfter, toAlert, type AlertmanagerAlert,
} from '../../../src/receivers/webhook-format.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';

let seq = 0;
function event(over: Partial<StorageEvent> = {}): StorageEvent {
  seq++;
  return {
    hostname: 'node-1', severity: 'error', system: 'block', timestamp: 1763812345, event_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    event_type: 'BLK_IO_ERROR', dev_wwid: 'naa.5000c500a1b2c3d4', dev_name: 'sdb', msg: `I/O error on sdb (READ, sector ${seq})`,
    extentions: { sector: String(seq), timestamp_us: '1763812345123456', raw_msg: `I/O error, dev sdb, sector ${seq} op 0x0:(READ)` }, ...over,
  };
}

// ---------------------------------------------------------------------------
// a loopback server

interface Seen {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

type Reply = (n: number, req: http.IncomingMessage, body: string) => { status: number; headers?: Record<string, string> } | 'hang';

async function server(reply: Reply) {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r = reply(seen.length, req, body);
      if (r === 'hang') {
        seen.push({ status: 0, headers: req.headers, body, at: performance.now() });
        return; // never answer
      }
      seen.push({ status: r.status, headers: req.headers, body, at: performance.now() });
      res.writeHead(r.status, { 'content-type': 'text/plain', ...r.headers });
      // an error page that echoes the request: must never reach a log
      res.end(`echo: ${JSON.stringify(req.headers)}`);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    seen,
    async waitFor(n: number, ms = 10_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (seen.length < n) {
        if (Date.now() > deadline) throw new Error(`server saw ${seen.length} of ${n} requests`);
        await sleep(10);
      }
    },
    close(): Promise<void> {
      srv.closeAllConnections();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** A loopback URL where nothing listens (a port just released). */
async function closedPortUrl(): Promise<string> {
  const srv = http.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return `http://127.0.0.1:${port}/refused`;
}

/** A pino logger at trace level whose every line lands in `lines`. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, { write: (s: string) => { lines.push(s); } });
  return { log, lines };
}

function setup(options: Record<string, unknown>, log: Logger = silentLogger()) {
  const metrics = new AgentMetrics();
  const r: WebhookReceiver = createWebhookReceiver('hook', options, 10_000, { log, metrics }) ;
  const value = async (name: string, labels: Record<string, string> = { receiver: 'hook' }): Promise<number> => {
    const m = await metrics.registry.getSingleMetric(name)?.get();
    return m?.values.filter((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l)).reduce((a, x) => a + x.value, 0) ?? 0;
  };
  const delivered: StorageEvent[] = [];
  const deliver = (ev: StorageEvent): boolean => {
    const ok = r.deliver(ev, NO_ACK);
    if (ok) delivered.push(ev);
    return ok;
  };
  return { r, metrics, value, deliver, delivered };
}

/** Wait until `cond` holds (polling), or fail after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

const tmp: string[] = [];
after(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe('webhook format (pure)', () => {
  it('events body: {"events":[…]} with every event whole, event_id included', () => {
    const evs = [event(), event()];
    const body = JSON.parse(eventsPayload(evs)) as { events: StorageEvent[] };
    assert.deepEqual(body.events, evs);
  });

  it('alertmanager alert: labels name the condition, annotations the occurrence', () => {
    const e = event({ severity: 'warn', extentions: { mount_point: '/srv', raw_msg: 'EXT4-fs …', timestamp_us: '1763812345123456' } });
    const a = toAlert(e, 'https://grafana.example/d/storage');
    assert.deepEqual(a.labels, {
      alertname: 'BLK_IO_ERROR', severity: 'warning', system: 'block', instance: 'node-1', device: 'sdb', wwid: 'naa.5000c500a1b2c3d4', mount_point: '/srv', source: 'peripety',
    });
    assert.equal(a.annotations.summary, e.msg);
    assert.equal(a.annotations.event_id, e.event_id);
    assert.equal(a.annotations.raw_msg, 'EXT4-fs …');
    assert.match(a.annotations.description!, /^block BLK_IO_ERROR on sdb \(naa\.5000c500a1b2c3d4\), mounted on \/srv at node-1: /);
    assert.equal(a.startsAt, '2025-11-22T11:52:25.123Z');
    assert.equal(a.generatorURL, 'https://grafana.example/d/storage');
    assert.equal('endsAt' in a, false);
    // empty values are left out; a raw event gets a generic alertname
    const b = toAlert(event({ severity: 'error', event_type: '', dev_name: '', dev_wwid: '', extentions: {} }));
    assert.deepEqual(Object.keys(b.labels).sort(), ['alertname', 'instance', 'severity', 'source', 'system']);
    assert.equal(b.labels.alertname, 'PeripetyStorageEvent');
    assert.equal(b.labels.severity, 'critical');
    assert.equal(b.startsAt, '2025-11-22T11:52:25.000Z');
    assert.equal('generatorURL' in b, false);
    assert.equal(toAlert(event({ severity: 'info' })).labels.severity, 'info');
    const arr = JSON.parse(alertmanagerPayload([e, e])) as AlertmanagerAlert[];
    assert.ok(Array.isArray(arr) && arr.length === 2);
  });

  it('idempotency key: the same for the same batch, different for another', () => {
    const a = event();
    const b = event();
    assert.match(idempotencyKey([a, b]), /^[0-9a-f]{64}$/);
    assert.equal(idempotencyKey([a, b]), idempotencyKey([{ ...a }, { ...b }]));
    assert.notEqual(idempotencyKey([a, b]), idempotencyKey([b, a]));
    assert.notEqual(idempotencyKey([a]), idempotencyKey([{ ...a, event_type: 'BLK_BUFFER_IO_ERROR' }]));
    assert.equal(eventKey(a), `${a.event_id}/block/BLK_IO_ERROR/sdb`);
  });

  it('statuses: 2xx ok; 408, 429, 5xx retried; other 4xx and 3xx rejected', () => {
    for (const s of [200, 201, 202, 204, 299]) assert.equal(classifyStatus(s), 'ok', String(s));
    for (const s of [408, 429, 500, 502, 503, 504, 599]) assert.equal(classifyStatus(s), 'retryable', String(s));
    for (const s of [301, 302, 307, 308, 400, 401, 403, 404, 409, 413, 422]) assert.equal(classifyStatus(s), 'rejected', String(s));
  });

  it('Retry-After: seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0); // in the past
    assert.equal(parseRetryAfter(null, now), null);
    assert.equal(parseRetryAfter('-5', now), null);
    assert.equal(parseRetryAfter('1.5', now), null);
    assert.equal(parseRetryAfter('soon', now), null);
  });

  it('backoff: exponential, equal jitter, capped; Retry-After raises it up to the cap', () => {
    const p = { initialMs: 100, maxMs: 5000 };
    assert.equal(backoffDelay(1, p, null, () => 0), 50);
    assert.equal(backoffDelay(1, p, null, () => 0.999999), 100);
    assert.equal(backoffDelay(3, p, null, () => 0), 200);
    assert.equal(backoffDelay(3, p, null, () => 0.999999), 400);
    assert.equal(backoffDelay(20, p, null, () => 0.999999), 5000);
    assert.equal(backoffDelay(200, p, null, () => 0), 2500);
    assert.equal(backoffDelay(1, p, 3000, () => 0), 3000);
    assert.equal(backoffDelay(1, p, 60_000, () => 0), 5000);
    assert.equal(backoffDelay(5, p, 10, () => 0), 800);
  });

  it('redacts URLs for logs', () => {
    assert.equal(redactUrl('https://h.example:8443/a/b?token=x#f'), 'https://h.example:8443/a/b?…');
    assert.equal(redactUrl('http://h/x'), 'http://h/x');
  });
});

describe('webhook options', () => {
  const ok = { url: 'http://127.0.0.1:1/x' };
  it('defaults', () => {
    const o = WebhookOptions.parse(ok);
    assert.equal(o.format, 'events');
    assert.equal(o.batch_size, 100);
    assert.equal(o.timeout_ms, 10_000);
    assert.deepEqual(o.headers, {});
    // parsing what was parsed changes nothing (the agent parses twice)
    assert.deepEqual(WebhookOptions.parse(o), o);
  });
  it('rejects bad URLs, conflicting credentials, forbidden headers, unknown keys', () => {
    const bad: Record<string, unknown>[] = [
      { url: 'ftp://x/' }, { url: 'not a url' }, { url: 'http://user:pw@h/' },
      { ...ok, bearer_token: 'a', bearer_token_file: '/t' },
      { ...ok, bearer_token_file: 'relative' },
      { ...ok, headers: { 'Content-Length': '1' } }, { ...ok, headers: { host: 'x' } }, { ...ok, headers: { 'Idempotency-Key': 'x' } },
      { ...ok, headers: { 'bad name': 'x' } }, { ...ok, headers: { 'X-A': 'a\r\nb' } },
      { ...ok, headers: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`X-${i}`, 'v'])) },
      { ...ok, bearer_token: 't', headers: { Authorization: 'Basic x' } },
      { ...ok, initial_backoff_ms: 1000, max_backoff_ms: 10 },
      { ...ok, generator_url: 'http://g/' },
      { ...ok, format: 'slack' }, { ...ok, tls_insecure: true },
    ];
    for (const b of bad) assert.equal(WebhookOptions.safeParse(b).success, false, JSON.stringify(b));
    assert.equal(WebhookOptions.safeParse({ ...ok, headers: { Authorization: 'Basic eDp5' } }).success, true);
    assert.equal(WebhookOptions.safeParse({ ...ok, format: 'alertmanager', generator_url: 'https://g/' }).success, true);
  });
  it('never quotes a token or a header value back in an error', () => {
    const secret = 'top secret value';
    const r = WebhookOptions.safeParse({ ...ok, bearer_token: secret, headers: { 'X-Key': `${secret}\n` } });
    assert.equal(r.success, false);
    assert.ok(!JSON.stringify(r.error!.issues).includes('top secret'));
  });
  it('a bearer_token_file that cannot be read rejects the configuration', () => {
    assert.throws(
      () => createWebhookReceiver('hook', { ...ok, bearer_token_file: '/nonexistent/token' }, 10, { log: silentLogger(), metrics: new AgentMetrics() }),
      /bearer_token_file \/nonexistent\/token: ENOENT/,
    );
  });
});

describe('webhook receiver', () => {
  it('its dropped-events series exists at 0 from the start (increase() then sees the first drop)', async () => {
    const { r, metrics } = setup({ url: 'http://127.0.0.1:9/' });
    try {
      assert.match(await metrics.registry.metrics(), /^peripety_receiver_dropped_events_total\{receiver="hook"\} 0$/m);
    } finally {
      await r.close();
    }
  });

  it('retries 503, 500 and a 429 with Retry-After until a 2xx: every event arrives exactly once', async () => {
    const failures = [{ status: 503 }, { status: 500 }, { status: 429, headers: { 'retry-after': '1' } }];
    const counts = new Map<string, number>();
    const srv = await server((n, _req, body) => {
      const f = failures[n];
      if (f) return f;
      for (const e of (JSON.parse(body) as { events: StorageEvent[] }).events) counts.set(e.event_id, (counts.get(e.event_id) ?? 0) + 1);
      return { status: 200 };
    });
    const { r, value, deliver, delivered } = setup({ url: srv.url, batch_size: 50, batch_wait_ms: 0, initial_backoff_ms: 10, max_backoff_ms: 2000 });
    try {
      for (let i = 0; i < 250; i++) assert.ok(deliver(event()));
      await until(async () => (await value('peripety_receiver_sent_events_total')) === 250);
      assert.equal(counts.size, 250);
      for (const e of delivered) assert.equal(counts.get(e.event_id), 1, e.event_id);
      assert.equal(srv.seen.length, 3 + 5, 'three failures, then one request per batch of 50');
      // the three failed attempts and the success that followed were the same batch, with the same key
      const keys = srv.seen.slice(0, 4).map((s) => s.headers['idempotency-key']);
      assert.equal(new Set(keys).size, 1);
      assert.equal(keys[0], idempotencyKey(delivered.slice(0, 50)));
      // Retry-After: 1 was honoured (the backoff alone would have been ~40 ms)
      assert.ok(srv.seen[3]!.at - srv.seen[2]!.at >= 950, `waited ${srv.seen[3]!.at - srv.seen[2]!.at} ms after the 429`);
      assert.equal(await value('peripety_receiver_retries_total'), 3);
      assert.equal(await value('peripety_receiver_errors_total'), 3);
      assert.equal(await value('peripety_webhook_requests_total', { receiver: 'hook', result: 'retryable' }), 3);
      assert.equal(await value('peripety_webhook_requests_total', { receiver: 'hook', result: 'ok' }), 5);
      assert.equal(await value('peripety_receiver_dropped_events_total'), 0);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('a server that never answers: the queue stays at queue_size and the drop counter grows', async () => {
    const srv = await server(() => 'hang');
    const { r, value, deliver } = setup({ url: srv.url, queue_size: 10, batch_size: 5, batch_wait_ms: 0, timeout_ms: 300_000 });
    try {
      let accepted = 0;
      for (let i = 0; i < 100; i++) if (deliver(event())) accepted++;
      assert.equal(accepted, 10);
      await srv.waitFor(1); // one batch of 5 in flight, hanging
      assert.equal(r.depth, 5);
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 1000; i++) deliver(event({ extentions: { blob: 'x'.repeat(1000) } }));
        assert.ok(r.depth <= 10, `queue depth ${r.depth}`);
        await sleep(1);
      }
      assert.equal(r.depth, 10);
      assert.equal(await value('peripety_receiver_dropped_events_total'), 90 + 20_000 - 5);
      assert.equal(srv.seen.length, 1, 'one request at a time');
      assert.equal(await value('peripety_receiver_sent_events_total'), 0);
    } finally {
      await r.close(100); // gives up: the batch in flight and the queue are dropped
      await srv.close();
    }
    assert.equal(await value('peripety_receiver_dropped_events_total'), 90 + 20_000 - 5 + 15);
  });

  it('a request that times out is retried, then dropped when the retries run out', async () => {
    const srv = await server(() => 'hang');
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 0, timeout_ms: 200, max_retries: 1, initial_backoff_ms: 10 });
    try {
      deliver(event());
      deliver(event());
      await until(async () => (await value('peripety_receiver_dropped_events_total')) === 2);
      assert.equal(srv.seen.length, 2);
      assert.equal(await value('peripety_webhook_requests_total', { receiver: 'hook', result: 'timeout' }), 2);
      assert.equal(await value('peripety_receiver_retries_total'), 1);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('400 is not retried: the batch is dropped and counted as rejected', async () => {
    const srv = await server(() => ({ status: 400 }));
    const { r, value, deliver } = setup({ url: srv.url, batch_size: 10, batch_wait_ms: 0, initial_backoff_ms: 10 });
    try {
      for (let i = 0; i < 7; i++) deliver(event());
      await until(async () => (await value('peripety_receiver_dropped_events_total')) === 7);
      await sleep(100);
      assert.equal(srv.seen.length, 1);
      assert.equal(await value('peripety_receiver_rejected_events_total'), 7);
      assert.equal(await value('peripety_webhook_requests_total', { receiver: 'hook', result: 'rejected' }), 1);
      assert.equal(await value('peripety_receiver_retries_total'), 0);
      assert.equal(await value('peripety_receiver_sent_events_total'), 0);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('redirects are not followed (the token and the body stay with the configured URL)', async () => {
    const other = await server(() => ({ status: 200 }));
    const srv = await server(() => ({ status: 307, headers: { location: other.url } }));
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 0, bearer_token: 'tok' });
    try {
      deliver(event());
      await until(async () => (await value('peripety_receiver_rejected_events_total')) === 1);
      assert.equal(other.seen.length, 0);
    } finally {
      await r.close();
      await srv.close();
      await other.close();
    }
  });

  it('bearer token, bearer_token_file (read again per request) and custom headers arrive', async () => {
    const srv = await server(() => ({ status: 204 }));
    const a = setup({ url: srv.url, batch_wait_ms: 0, bearer_token: 'tok-123', headers: { 'X-Tenant': 'storage', 'User-Agent': 'custom/1' } });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-webhook-'));
    tmp.push(dir);
    const file = path.join(dir, 'token');
    writeFileSync(file, 'from-file-1\n');
    const b = setup({ url: srv.url, batch_wait_ms: 0, bearer_token_file: file });
    try {
      const e = event();
      a.deliver(e);
      await srv.waitFor(1);
      const h = srv.seen[0]!.headers;
      assert.equal(h.authorization, 'Bearer tok-123');
      assert.equal(h['x-tenant'], 'storage');
      assert.equal(h['user-agent'], 'custom/1');
      assert.equal(h['content-type'], 'application/json');
      assert.equal(h['idempotency-key'], idempotencyKey([e]));
      assert.deepEqual(JSON.parse(srv.seen[0]!.body), { events: [e] });

      b.deliver(event());
      await srv.waitFor(2);
      assert.equal(srv.seen[1]!.headers.authorization, 'Bearer from-file-1');
      writeFileSync(file, 'from-file-2');
      b.deliver(event());
      await srv.waitFor(3);
      assert.equal(srv.seen[2]!.headers.authorization, 'Bearer from-file-2');
    } finally {
      await a.r.close();
      await b.r.close();
      await srv.close();
    }
  });

  it('the token never appears in the logs, whatever goes wrong', async () => {
    const token = 'sekrit-token-9f8e7d';
    const { log, lines } = capturingLogger();
    // 500 (retried, logged), 401 (rejected, logged), then a refused connection
    const srv = await server((n) => (n === 0 ? { status: 500 } : { status: 401 }));
    const a = setup({ url: `${srv.url}?access_token=${token}`, batch_wait_ms: 0, bearer_token: token, initial_backoff_ms: 10, headers: { 'X-Api-Key': token } }, log);
    const b = setup({ url: await closedPortUrl(), batch_wait_ms: 0, bearer_token: token, max_retries: 1, initial_backoff_ms: 10 }, log);
    try {
      a.deliver(event());
      b.deliver(event());
      await until(async () => (await a.value('peripety_receiver_dropped_events_total')) === 1 && (await b.value('peripety_receiver_dropped_events_total')) === 1);
      assert.equal(srv.seen[0]!.headers.authorization, `Bearer ${token}`);
      const out = lines.join('');
      assert.match(out, /webhook request failed; retrying/);
      assert.match(out, /HTTP 401/);
      assert.match(out, /ECONNREFUSED/);
      assert.ok(!out.includes(token), `the token leaked into the logs:\n${out}`);
      assert.ok(!out.includes('sekrit'), 'not even in part');
    } finally {
      await a.r.close();
      await b.r.close();
      await srv.close();
    }
  });

  it('alertmanager format: an array of alerts, as /api/v2/alerts takes it', async () => {
    const srv = await server(() => ({ status: 200 }));
    const { r, deliver } = setup({ url: srv.url, format: 'alertmanager', batch_wait_ms: 0, generator_url: 'https://grafana.example/d/peripety' });
    try {
      const e = event({ severity: 'warn' });
      deliver(e);
      await srv.waitFor(1);
      const body = JSON.parse(srv.seen[0]!.body) as AlertmanagerAlert[];
      assert.ok(Array.isArray(body));
      assert.equal(body.length, 1);
      const [a] = body;
      assert.deepEqual(Object.keys(a!).sort(), ['annotations', 'generatorURL', 'labels', 'startsAt']);
      assert.equal(a!.labels.alertname, 'BLK_IO_ERROR');
      assert.equal(a!.labels.severity, 'warning');
      assert.equal(a!.labels.instance, 'node-1');
      assert.equal(a!.labels.device, 'sdb');
      assert.equal(a!.annotations.summary, e.msg);
      assert.equal(a!.annotations.event_id, e.event_id);
      assert.ok(!Number.isNaN(Date.parse(a!.startsAt)));
      for (const v of [...Object.values(a!.labels), ...Object.values(a!.annotations)]) assert.equal(typeof v, 'string');
      for (const k of Object.keys(a!.labels)) assert.match(k, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('batch_wait_ms: after a request, events gather until it passed and leave in one request', async () => {
    const srv = await server(() => ({ status: 200 }));
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 300, batch_size: 100 });
    try {
      deliver(event()); // after a quiet spell: at once
      await until(async () => (await value('peripety_receiver_sent_events_total')) === 1);
      for (let i = 0; i < 3; i++) deliver(event());
      await until(async () => (await value('peripety_receiver_sent_events_total')) === 4);
      assert.equal(srv.seen.length, 2);
      assert.equal((JSON.parse(srv.seen[1]!.body) as { events: unknown[] }).events.length, 3);
      assert.ok(srv.seen[1]!.at - srv.seen[0]!.at >= 250, `second request ${srv.seen[1]!.at - srv.seen[0]!.at} ms after the first`);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('batch_wait_ms: a trickle of events makes at most one request per window', async () => {
    const srv = await server(() => ({ status: 200 }));
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 300, batch_size: 100 });
    try {
      const t0 = performance.now();
      for (let i = 0; i < 25; i++) {
        deliver(event());
        await sleep(20);
      }
      await until(async () => (await value('peripety_receiver_sent_events_total')) === 25);
      const windows = Math.ceil((performance.now() - t0) / 300);
      assert.ok(srv.seen.length <= windows + 1, `${srv.seen.length} requests in ${windows} windows`);
      assert.ok(srv.seen.length < 25 / 2);
      for (let i = 1; i < srv.seen.length; i++) assert.ok(srv.seen[i]!.at - srv.seen[i - 1]!.at >= 250);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('batch_wait_ms: a full batch does not wait', async () => {
    const srv = await server(() => ({ status: 200 }));
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 60_000, batch_size: 5 });
    try {
      deliver(event());
      await srv.waitFor(1);
      for (let i = 0; i < 5; i++) deliver(event());
      await until(async () => (await value('peripety_receiver_sent_events_total')) === 6, 5000);
      assert.equal(srv.seen.length, 2);
    } finally {
      await r.close();
      await srv.close();
    }
  });

  it('close() sends what is queued at once, without lingering', async () => {
    const srv = await server(() => ({ status: 200 }));
    const { r, value, deliver } = setup({ url: srv.url, batch_wait_ms: 60_000 });
    deliver(event());
    await srv.waitFor(1);
    deliver(event());
    await sleep(20);
    const t0 = performance.now();
    await r.close(5000);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(await value('peripety_receiver_sent_events_total'), 2);
    await srv.close();
  });
});
