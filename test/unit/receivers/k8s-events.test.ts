// The pure parts of the k8s-events receiver: time and label formatting, the
// token bucket, the aggregation decisions; and the receiver's write pattern
// against a recording client (no API server: test/k8s/ has the real one).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { inClusterConfig, type KubeClient, loadKubeconfig } from '../../../src/k8s/http.ts';
import { type Action, Aggregator, boundUtf8, eventMicros, labelValue, microTime, nameSafe, TokenBucket } from '../../../src/receivers/k8s-events/core.ts';
import { K8sEventsReceiver, SUMMARY_REASON } from '../../../src/receivers/k8s-events/index.ts';
import { K8sEventsOptions } from '../../../src/receivers/k8s-events/options.ts';
import { lookupPluginSchema } from '../../../src/config/plugins.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';

function ev(dev: string, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'n1', severity: 'error', system: 'scsi', timestamp: 1_796_119_200, event_id: 'x', event_type: 'DISK_IO_ERROR',
    dev_wwid: `wwid-${dev}`, dev_name: dev, msg: 'I/O error', extentions: {}, ...over,
  };
}

describe('k8s-events: formatting', () => {
  it('eventTime is RFC 3339 with exactly 6 fractional digits', () => {
    assert.equal(microTime(1_796_119_200_123_456), '2026-12-01T10:00:00.123456Z');
    assert.equal(microTime(1_796_119_200_000_001), '2026-12-01T10:00:00.000001Z');
    assert.equal(microTime(1_796_119_200_000_000), '2026-12-01T10:00:00.000000Z');
    assert.equal(microTime(0), '1970-01-01T00:00:00.000000Z');
  });

  it('event time: timestamp_us, else timestamp seconds, else now', () => {
    assert.equal(eventMicros(ev('sda', { extentions: { timestamp_us: '1796119200123456' } }), 5), 1_796_119_200_123_456);
    assert.equal(eventMicros(ev('sda', { extentions: { timestamp_us: 'junk' } }), 5), 1_796_119_200_000_000);
    assert.equal(eventMicros(ev('sda', { timestamp: 0 }), 5), 5000);
  });

  it('label values are valid and bounded', () => {
    const valid = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
    for (const [input, want] of [
      ['sda', 'sda'], ['dm-0', 'dm-0'], ['naa.600a0b80', 'naa.600a0b80'],
      ['t10.ATA     QEMU HARDDISK', 't10.ATA_____QEMU_HARDDISK'], ['/dev/sda', 'dev_sda'], ['-x-', 'x'], ['', ''], ['ü', ''],
    ] as const) {
      assert.equal(labelValue(input), want, input);
      assert.match(labelValue(input), valid);
    }
    const long = labelValue('a'.repeat(62) + '._b');
    assert.ok(long.length <= 63);
    assert.match(long, valid);
  });

  it('notes are bounded to 1 KiB of UTF-8 on a character boundary', () => {
    assert.equal(boundUtf8('short', 1024), 'short');
    const cut = boundUtf8('é'.repeat(1000), 1024);
    assert.ok(Buffer.byteLength(cut) <= 1024);
    assert.ok(cut.endsWith('…'));
    assert.ok(!cut.includes('\ufffd'));
  });

  it('event names are DNS-1123', () => {
    assert.equal(nameSafe('Node_A.example', 200), 'node-a.example');
    assert.equal(nameSafe('___', 200), 'node');
  });
});

describe('k8s-events: token bucket', () => {
  it('allows a burst, then the rate', () => {
    const b = new TokenBucket(2, 3, 0);
    assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
    assert.equal(b.take(400), false); // 0.8 token
    assert.equal(b.take(500), true); // 1.0
    assert.equal(b.take(500), false);
    assert.equal(b.available(100_000), 3); // capped at the burst
  });
});

describe('k8s-events: aggregation decisions', () => {
  const opts = { windowMs: 60_000, maxKeys: 3, coalesceMs: 1000, summaryIntervalMs: 5000 };
  const always = (): boolean => true;
  const kinds = (a: Action[]): string[] => a.map((x) => (x.kind === 'summary' ? 'summary' : `${x.kind}:${x.entry.first.dev_name}`));
  const written = (a: Action[], name = 'ev'): void => {
    for (const x of a) {
      if (x.kind === 'summary') continue;
      x.entry.name ??= name;
      x.entry.written = x.entry.count;
      x.entry.lastWriteMs = now;
    }
  };
  let now = 0;

  it('first occurrence creates; repeats are coalesced to one patch per second', () => {
    const g = new Aggregator(opts);
    now = 0;
    g.observe('n1', ev('sda'), 1, now);
    let a = g.due(now, always);
    assert.deepEqual(kinds(a), ['create:sda']);
    written(a);
    for (let i = 0; i < 500; i++) g.observe('n1', ev('sda'), 2 + i, now + i);
    assert.deepEqual(kinds(g.due(now + 500, always)), [], 'within a second of the last write: nothing');
    now = 1000;
    a = g.due(now, always);
    assert.deepEqual(kinds(a), ['patch:sda']);
    const e = a[0]!.kind === 'patch' ? a[0]!.entry : undefined;
    assert.equal(e?.count, 501);
    assert.equal(e?.lastUs, 501);
    written(a);
    assert.equal(g.pending(), 0);
  });

  it('keys are (node, device, event type)', () => {
    const g = new Aggregator(opts);
    g.observe('n1', ev('sda'), 1, 0);
    g.observe('n1', ev('sda'), 1, 0);
    g.observe('n1', ev('sdb'), 1, 0);
    g.observe('n1', ev('sda', { event_type: 'DISK_TIMEOUT' }), 1, 0);
    assert.equal(g.size, 3);
    assert.deepEqual(kinds(g.due(0, always)), ['create:sda', 'create:sdb', 'create:sda']);
  });

  it('a create refused a token is held back by event type and summarized once, at most every summary interval', () => {
    const g = new Aggregator(opts);
    let tokens = 1;
    const take = (): boolean => tokens-- > 0;
    g.observe('n1', ev('sda'), 1, 0);
    g.observe('n1', ev('sdb'), 1, 0);
    g.observe('n1', ev('sdc', { event_type: 'DISK_TIMEOUT' }), 1, 0);
    g.observe('n1', ev('sdc', { event_type: 'DISK_TIMEOUT' }), 1, 0);
    const first = g.due(0, take);
    assert.deepEqual(kinds(first), ['create:sda']);
    now = 0;
    written(first);
    assert.equal(g.heldBackTotal, 3);
    assert.deepEqual([...g.heldBack], [['DISK_IO_ERROR', 1], ['DISK_TIMEOUT', 2]]);
    assert.equal(g.size, 1, 'held-back keys leave the table');
    tokens = 1;
    assert.deepEqual(kinds(g.due(0, take)), ['summary']);
    const drained = g.drainHeldBack();
    assert.equal(drained.total, 3);
    g.lastSummaryMs = 0;
    g.holdBack('DISK_IO_ERROR', 1);
    tokens = 5;
    assert.deepEqual(kinds(g.due(1000, take)), [], 'no second summary within the interval');
    assert.deepEqual(kinds(g.due(5000, take)), ['summary']);
  });

  it('a patch refused a token waits, its count kept', () => {
    const g = new Aggregator(opts);
    g.observe('n1', ev('sda'), 1, 0);
    const a = g.due(0, always);
    now = 0;
    written(a);
    g.observe('n1', ev('sda'), 2, 10);
    assert.deepEqual(kinds(g.due(2000, () => false)), []);
    assert.equal(g.heldBackTotal, 0);
    assert.deepEqual(kinds(g.due(3000, always)), ['patch:sda']);
  });

  it('LRU eviction and window expiry hold back unwritten counts, never drop them', () => {
    const g = new Aggregator(opts);
    for (const d of ['sda', 'sdb', 'sdc']) g.observe('n1', ev(d), 1, 0);
    now = 0;
    written(g.due(0, always));
    g.observe('n1', ev('sda'), 2, 1); // sda: 1 unwritten, most recent
    g.observe('n1', ev('sdd'), 1, 2); // evicts sdb (written, nothing lost)
    assert.equal(g.heldBackTotal, 0);
    g.observe('n1', ev('sde'), 1, 3); // evicts sdc
    g.observe('n1', ev('sdf'), 1, 4); // evicts sda with 1 unwritten
    assert.equal(g.size, 3);
    assert.equal(g.heldBackTotal, 1);
    // window: sdd's Event is 60 s old; a new occurrence starts a new Event
    const g2 = new Aggregator(opts);
    g2.observe('n1', ev('sda'), 1, 0);
    now = 0;
    written(g2.due(0, always));
    g2.observe('n1', ev('sda'), 2, 500); // unwritten, then the window passes
    const e = g2.observe('n1', ev('sda'), 3, 61_000);
    assert.equal(e.count, 1);
    assert.equal(e.name, undefined);
    assert.equal(g2.heldBackTotal, 1);
    g2.expire(200_000);
    assert.equal(g2.size, 1, 'an entry with something to write is not expired');
  });
});

describe('k8s-events: options and kubeconfig', () => {
  it('strict options with defaults; registered as a receiver plugin', () => {
    const o = K8sEventsOptions.parse({});
    assert.equal(o.namespace, 'default');
    assert.equal(o.reporting_controller, 'peripety.io/agent');
    assert.equal(o.min_severity, 'warn');
    assert.equal(o.series_window_s, 600);
    assert.equal(K8sEventsOptions.safeParse({ bogus: 1 }).success, false);
    assert.equal(K8sEventsOptions.safeParse({ rate: 0 }).success, false);
    assert.equal(K8sEventsOptions.safeParse({ reporting_controller: 'not a name!' }).success, false);
    assert.ok(lookupPluginSchema('receiver', 'k8s-events'));
  });

  it('reads a kubeconfig with a token or client cert, CA data or file; in-cluster needs the env', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'k8sev-'));
    try {
      writeFileSync(path.join(dir, 'ca.pem'), 'CA');
      writeFileSync(path.join(dir, 'kc'), `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: "https://10.0.0.1:6443/", certificate-authority: ca.pem }
users:
- name: u
  user: { token: secret-token }
- name: v
  user: { client-certificate-data: ${Buffer.from('CERT').toString('base64')}, client-key-data: ${Buffer.from('KEY').toString('base64')} }
contexts:
- name: x
  context: { cluster: c, user: u }
- name: y
  context: { cluster: c, user: v }
current-context: x
`);
      const c = loadKubeconfig(path.join(dir, 'kc'));
      assert.equal(c.server, 'https://10.0.0.1:6443');
      assert.equal(String(c.ca), 'CA');
      assert.equal(c.token, 'secret-token');
      writeFileSync(path.join(dir, 'kc2'), `clusters: [{ name: c, cluster: { server: "https://h" } }]
users: [{ name: u, user: {} }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`);
      assert.throws(() => loadKubeconfig(path.join(dir, 'kc2')), (err: Error) => /neither a token nor a client certificate/.test(err.message) && !err.message.includes('secret'));
      assert.throws(() => inClusterConfig({}), /KUBERNETES_SERVICE_HOST/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('k8s-events: the receiver write pattern (recording client)', () => {
  it('a flood of one key is one create plus coalesced patches; the bucket summary adds up', async () => {
    const calls: { method: string; path: string; body: Record<string, unknown> }[] = [];
    const client = {
      request(method: string, p: string, body?: unknown): Promise<{ status: number; body: unknown }> {
        calls.push({ method, path: p, body: body as Record<string, unknown> });
        if (method === 'GET') return Promise.resolve({ status: 403, body: {} });
        return Promise.resolve({ status: method === 'POST' ? 201 : 200, body: {} });
      },
      close(): void {},
    } as unknown as KubeClient;
    let now = 1_000_000;
    const r = new K8sEventsReceiver('k', K8sEventsOptions.parse({ node_name: 'n1', rate: 1, burst: 2, summary_interval_s: 0 }), 100_000, {
      log: silentLogger(), metrics: new AgentMetrics(new Registry()), client, now: () => now,
    });
    try {
      for (let i = 0; i < 1000; i++) r.deliver(ev('sda'), NO_ACK);
      for (const d of ['sdb', 'sdc']) r.deliver(ev(d), NO_ACK); // sdb gets the 2nd token, sdc is held back
      r.deliver(ev('sdd', { severity: 'info' }), NO_ACK); // below min_severity
      await new Promise((res) => setTimeout(res, 20));
      await r.flush();
      assert.equal(r.stats.creates, 2);
      const first = calls.find((c) => c.method === 'POST')!;
      assert.deepEqual(first.body.regarding, { apiVersion: 'v1', kind: 'Node', name: 'n1' }, 'no uid when the Node is not readable');
      // the first batch the queue hands over (up to 512 events) goes into the create
      const series = first.body.series as { count: number; lastObservedTime: string };
      assert.ok(series.count >= 2 && series.count <= 1000, String(series.count));
      assert.equal(series.lastObservedTime, '2026-12-01T10:00:00.000000Z');
      assert.equal(first.body.type, 'Warning');
      assert.equal(r.stats.heldBack, 1);
      now += 1000; // one token, summary first
      await r.flush();
      const summary = calls.filter((c) => c.method === 'POST').at(-1)!;
      assert.equal(summary.body.reason, SUMMARY_REASON);
      assert.match(String(summary.body.note), /^1 storage event occurrence\(s\) on node n1 were held back .*: DISK_IO_ERROR=1$/);
      assert.equal(r.stats.summarized, 1);
      for (let i = 0; i < 5; i++) r.deliver(ev('sda'), NO_ACK);
      await new Promise((res) => setTimeout(res, 20));
      now += 1000;
      await r.flush();
      const patch = calls.at(-1)!;
      assert.equal(patch.method, 'PATCH');
      assert.deepEqual(patch.body, { series: { count: 1005, lastObservedTime: '2026-12-01T10:00:00.000000Z' } });
      assert.equal(r.stats.writes, 4);
      assert.equal(r.stats.observed, 1008);
      assert.equal(r.stats.belowSeverity, 1);
    } finally {
      await r.close(1000);
    }
  });
});
