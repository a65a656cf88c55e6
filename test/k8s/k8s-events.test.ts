// The k8s-events receiver against a real kube-apiserver (test/helpers/envtest.ts):
// the agent's ServiceAccount with the agent's RBAC from manifests/ (rendered from
// the Helm chart; test/helpers/manifests.ts),
// the receiver in-process, the Events read back as admin.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { Bus } from '../../src/agent/bus.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import { PARSERS } from '../../src/parsers/index.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { createK8sEventsReceiver, type K8sEventsReceiver, SUMMARY_REASON } from '../../src/receivers/k8s-events/index.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { rbacYaml } from '../helpers/manifests.ts';
import { NO_ACK } from '../../src/contracts/ack.ts';

interface KEvent {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  regarding: { kind: string; name: string; apiVersion: string; uid?: string };
  reason: string;
  note: string;
  type: string;
  action: string;
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  series?: { count: number; lastObservedTime: string };
}

function event(node: string, dev: string, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: node, severity: 'error', system: 'scsi', timestamp: 1_796_119_200, event_id: `id-${dev}`, event_type: 'DISK_IO_ERROR',
    dev_wwid: `naa.6000${dev}`, dev_name: dev, msg: `blk_update_request: I/O error, dev ${dev}, sector 1234`,
    extentions: { timestamp_us: '1796119200123456' }, ...over,
  };
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('k8s-events receiver against a real API server', () => {
  let env: Envtest;
  const receivers: K8sEventsReceiver[] = [];
  const uids = new Map<string, string>();

  before(async () => {
    env = await startEnvtest({ crdsDir: false });
    for (const node of ['node-a', 'node-b', 'node-c']) {
      const r = await env.request<{ metadata: { uid: string } }>('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node } });
      assert.equal(r.status, 201, r.text);
      uids.set(node, r.body.metadata.uid);
    }
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('agent') });
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    for (const r of receivers) await r.close(3000);
    await env?.stop();
  });

  function receiver(node: string, opts: Record<string, unknown> = {}): K8sEventsReceiver {
    const r = createK8sEventsReceiver(`k8s-events-${receivers.length}`, { kubeconfig: env.kubeconfigAgent, node_name: node, ...opts }, 100_000, {
      log: silentLogger(), metrics: new AgentMetrics(new Registry()),
    });
    receivers.push(r);
    return r;
  }

  async function events(node: string): Promise<KEvent[]> {
    const r = await env.request<{ items: KEvent[] }>('GET', `/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=${encodeURIComponent(`regarding.name=${node}`)}`);
    assert.equal(r.status, 200, r.text);
    return r.body.items;
  }

  async function settle(r: K8sEventsReceiver): Promise<void> {
    await until('the receiver to write everything', () => r.depth === 0 && r.pendingKeys === 0);
    await r.flush();
  }

  it('the agent identity may create Events but not delete them (RBAC as in the manifest)', async () => {
    const r = await env.request('DELETE', '/apis/events.k8s.io/v1/namespaces/default/events', undefined, { kubeconfig: env.kubeconfigAgent });
    assert.equal(r.status, 403);
  });

  it('one event becomes one Event regarding the Node', async () => {
    const r = receiver('node-a');
    r.deliver(event('node-a', 'sda'), NO_ACK);
    r.deliver(event('node-a', 'sdz', { severity: 'info', event_type: 'DISK_ATTACHED' }), NO_ACK); // below min_severity
    await settle(r);
    const got = (await events('node-a')).filter((e) => e.metadata.labels?.['peripety.io/device'] === 'sda');
    assert.equal(got.length, 1);
    const e = got[0]!;
    assert.deepEqual(e.regarding, { kind: 'Node', name: 'node-a', apiVersion: 'v1', uid: uids.get('node-a') });
    assert.equal(e.reason, 'DISK_IO_ERROR');
    assert.equal(e.note, 'blk_update_request: I/O error, dev sda, sector 1234');
    assert.equal(e.type, 'Warning');
    assert.equal(e.action, 'Detected');
    assert.equal(e.eventTime, '2026-12-01T10:00:00.123456Z');
    assert.equal(e.reportingController, 'peripety.io/agent');
    assert.equal(e.reportingInstance, 'peripety-agent-node-a');
    assert.equal(e.series, undefined);
    assert.equal(e.metadata.labels?.['peripety.io/wwid'], 'naa.6000sda');
    assert.equal(e.metadata.annotations?.['peripety.io/device'], 'sda');
    assert.equal((await events('node-a')).filter((x) => x.reason === 'DISK_ATTACHED').length, 0);
    assert.equal(r.stats.writes, 1);
  });

  it('10,000 identical events in ~10 s become ONE Event with series.count 10000, in a few API writes', async () => {
    const r = receiver('node-a');
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < 100; j++) r.deliver(event('node-a', 'sdb', { extentions: { timestamp_us: String(1_796_119_200_000_000 + i * 100_000 + j) } }), NO_ACK);
      await sleep(Math.max(0, t0 + (i + 1) * 100 - Date.now()));
    }
    // a different device: a separate Event
    r.deliver(event('node-a', 'sdc'), NO_ACK);
    await settle(r);
    const sdb = (await events('node-a')).filter((e) => e.metadata.labels?.['peripety.io/device'] === 'sdb');
    assert.equal(sdb.length, 1, 'one Event for the repeated line');
    assert.equal(sdb[0]!.series?.count, 10_000);
    assert.match(sdb[0]!.series!.lastObservedTime, /^2026-12-01T10:00:09\.90009\d+Z$/);
    const sdc = (await events('node-a')).filter((e) => e.metadata.labels?.['peripety.io/device'] === 'sdc');
    assert.equal(sdc.length, 1, 'a different device is a separate Event');
    assert.equal(sdc[0]!.series, undefined);
    const metric = await r['deps'].metrics.registry.getSingleMetricAsString('peripety_k8s_event_writes_total');
    console.error(`10,000 identical events in ${Date.now() - t0} ms: ${r.stats.writes} API writes (${r.stats.creates} creates, ${r.stats.patches} patches, ${r.stats.failedWrites} failed)\n${metric}`);
    assert.equal(r.stats.failedWrites, 0);
    assert.equal(r.stats.heldBack, 0);
    assert.ok(r.stats.writes < 50, `${r.stats.writes} writes`);
    assert.ok(r.stats.writes >= 3);
  });

  it('kernel lines through the bus and parsers: one line is an Event on that Node; 10,000 identical lines in ~10 s are ONE Event', async () => {
    const r = receiver('node-c');
    const metrics = new AgentMetrics(new Registry());
    const bus = new Bus({
      parsers: Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
      receivers: [r], metrics, log: silentLogger(), contextWindowMs: 50, maxHeld: 256, manualFlush: true,
      synth: { hostname: 'node-c', bootId: 'boot', bootEpochUs: 1_796_119_200_000_000, resolver: null, source: '/dev/kmsg' },
    });
    let seq = 0;
    const line = (dev: string): void => {
      const rec = parseKmsgRecord(`3,${seq++},${seq * 1000},-;I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n`);
      assert.ok(rec.ok);
      bus.ingest(rec.record, NO_ACK);
    };
    line('sdq');
    await settle(r);
    const one = (await events('node-c')).filter((e) => e.metadata.labels?.['peripety.io/device'] === 'sdq');
    assert.equal(one.length, 1);
    assert.equal(one[0]!.reason, 'BLK_IO_ERROR');
    assert.equal(one[0]!.type, 'Warning');
    assert.match(one[0]!.note, /I\/O error on sdq/);
    assert.match(one[0]!.eventTime, /^2026-12-01T10:00:00\.\d{6}Z$/);
    assert.equal(one[0]!.regarding.name, 'node-c');
    const writesBefore = r.stats.writes;
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < 100; j++) line('sdr');
      await sleep(Math.max(0, t0 + (i + 1) * 100 - Date.now()));
    }
    await settle(r);
    const flood = (await events('node-c')).filter((e) => e.metadata.labels?.['peripety.io/device'] === 'sdr');
    const writes = r.stats.writes - writesBefore;
    console.error(`10,000 identical kernel lines in ${Date.now() - t0} ms: ${writes} API writes, series.count ${flood[0]?.series?.count}`);
    assert.equal(flood.length, 1);
    assert.equal(flood[0]!.series?.count, 10_000);
    assert.ok(writes < 50, `${writes} writes`);
    assert.equal(r.stats.failedWrites, 0);
  });

  it('an exhausted token bucket yields a summary Event and the counts add up', async () => {
    const r = receiver('node-b', { rate: 1, burst: 3, summary_interval_s: 0 });
    const devs = Array.from({ length: 10 }, (_, i) => `sd${String.fromCharCode(97 + i)}`);
    for (const d of devs) r.deliver(event('node-b', d, { event_type: d < 'sdf' ? 'DISK_IO_ERROR' : 'DISK_TIMEOUT' }), NO_ACK);
    await settle(r);
    await until('a summary Event', () => r.stats.summarized === 7, 10_000);
    const all = await events('node-b');
    const perDevice = all.filter((e) => e.reason !== SUMMARY_REASON);
    const summaries = all.filter((e) => e.reason === SUMMARY_REASON);
    assert.equal(perDevice.length, 3, 'the burst: three Events');
    assert.equal(summaries.length, 1, 'ONE summary Event');
    const suppressed = Number(summaries[0]!.metadata.annotations?.['peripety.io/suppressed-count']);
    assert.equal(suppressed, 7);
    assert.match(summaries[0]!.note, /7 storage event occurrence\(s\) on node node-b were held back/);
    assert.match(summaries[0]!.note, /DISK_TIMEOUT=5, DISK_IO_ERROR=2/);
    const inEvents = perDevice.reduce((n, e) => n + (e.series?.count ?? 1), 0);
    assert.equal(inEvents + suppressed, devs.length, 'nothing silently lost');
    assert.equal(r.stats.heldBack, 7);
    assert.equal(r.stats.writes, 4);
  });
});
