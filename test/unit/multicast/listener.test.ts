// Loss detection on the receiving side (sequence gaps, duplicates, late
// datagrams, sender restarts, bounded state), then the real thing: the
// MulticastSender and MulticastListener over UDP multicast on loopback.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { encode } from '../../../src/multicast/envelope.ts';
import { type GapInfo, MulticastListener, type ReceivedInfo, SequenceTracker } from '../../../src/multicast/listener.ts';
import { MulticastSender } from '../../../src/multicast/sender.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';

function ev(i: number, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'h', severity: 'warn', system: 'block', timestamp: 1, event_id: `id-${i}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg: `event ${i}`, extentions: { n: String(i) }, ...over,
  };
}

describe('SequenceTracker', () => {
  it('follows a sender: next, gap, duplicate, late, stale', () => {
    const t = new SequenceTracker({ window: 8 });
    assert.deepEqual(t.observe('a', 5), { kind: 'first' }, 'nothing assumed before the first datagram heard');
    assert.deepEqual(t.observe('a', 6), { kind: 'next' });
    assert.deepEqual(t.observe('a', 6), { kind: 'duplicate' });
    assert.deepEqual(t.observe('a', 9), { kind: 'gap', lost: 2, fromSeq: 7, toSeq: 8 });
    assert.deepEqual(t.observe('a', 8), { kind: 'late' });
    assert.deepEqual(t.observe('a', 8), { kind: 'duplicate' }, 'a late one seen twice');
    assert.deepEqual(t.observe('a', 7), { kind: 'late' });
    assert.deepEqual(t.observe('a', 100), { kind: 'gap', lost: 90, fromSeq: 10, toSeq: 99 });
    assert.deepEqual(t.observe('a', 95), { kind: 'late' }, 'the window was cleared by the jump');
  });

  it('signed (every number believed): a number beyond the window is stale', () => {
    const t = new SequenceTracker({ window: 8, maxJump: Infinity });
    t.observe('a', 5);
    assert.deepEqual(t.observe('a', 9), { kind: 'gap', lost: 3, fromSeq: 6, toSeq: 8 });
    assert.deepEqual(t.observe('a', 1), { kind: 'stale' }, 'beyond the window');
    assert.deepEqual(t.observe('a', 2 ** 40), { kind: 'gap', lost: 2 ** 40 - 10, fromSeq: 10, toSeq: 2 ** 40 - 1 }, 'no bound');
  });

  it('unsigned: an implausible jump resyncs instead of counting a loss or going stale', () => {
    const t = new SequenceTracker({ window: 8, maxJump: 100 });
    t.observe('a', 5);
    assert.deepEqual(t.observe('a', 6), { kind: 'next' });
    assert.deepEqual(t.observe('a', Number.MAX_SAFE_INTEGER), { kind: 'resync', jump: Number.MAX_SAFE_INTEGER - 6, retracted: 0 }, 'forward beyond the bound');
    assert.deepEqual(t.observe('a', 7), { kind: 'resync', jump: 7 - Number.MAX_SAFE_INTEGER, retracted: 0 }, 'back beyond the window: the genuine stream goes on');
    assert.deepEqual(t.observe('a', 8), { kind: 'next' });
    assert.deepEqual(t.observe('a', 58), { kind: 'gap', lost: 49, fromSeq: 9, toSeq: 57 }, 'within the bound: a gap');
    assert.deepEqual(t.observe('a', 9), { kind: 'resync', jump: -49, retracted: 49 }, 'the stream continues below the gap: it was forged');
    assert.deepEqual(t.observe('a', 10), { kind: 'next' });
    assert.deepEqual(t.observe('a', 20), { kind: 'gap', lost: 9, fromSeq: 11, toSeq: 19 });
    assert.deepEqual(t.observe('a', 15), { kind: 'late' });
    assert.deepEqual(t.observe('a', 2), { kind: 'resync', jump: -18, retracted: 0 }, 'not inside the last gap: nothing taken back');
  });

  it('treats a restarted sender (new id) as new: no false gap', () => {
    const t = new SequenceTracker();
    for (let s = 1; s <= 50; s++) t.observe('old', s);
    assert.deepEqual(t.observe('new', 1), { kind: 'first' });
    assert.deepEqual(t.observe('new', 2), { kind: 'next' });
    assert.deepEqual(t.observe('old', 51), { kind: 'next' }, 'the old one is still followed while it drains');
  });

  it('tracks at most maxSenders, forgetting the least recently heard', () => {
    const t = new SequenceTracker({ maxSenders: 3, window: 4 });
    t.observe('a', 1);
    t.observe('b', 1);
    t.observe('c', 1);
    t.observe('a', 2); // a is now the most recent; b the least
    t.observe('d', 1);
    assert.equal(t.size, 3);
    assert.equal(t.evicted, 1);
    assert.equal(t.has('b'), false);
    assert.equal(t.has('a'), true);
    assert.deepEqual(t.observe('b', 7), { kind: 'first' }, 'a forgotten sender starts over, no false gap');
    for (let i = 0; i < 10_000; i++) t.observe(`s${i}`, i);
    assert.equal(t.size, 3);
  });
});

const running: { close(): Promise<void> }[] = [];
after(async () => {
  for (const r of running) await r.close();
});

/** A group per test run: other agents on this host broadcast to the default group. */
function randomGroup(): string {
  const b = randomBytes(2);
  return `239.255.${b[0]}.${1 + (b[1]! % 250)}`;
}

interface Collected {
  events: { ev: StorageEvent; info: ReceivedInfo }[];
  gaps: GapInfo[];
  malformed: string[];
  senders: string[];
}

async function listen(group: string, opts: { maxSenders?: number } = {}) {
  const got: Collected = { events: [], gaps: [], malformed: [], senders: [] };
  const l = new MulticastListener({
    group, port: 0, interfaceIp: '127.0.0.1', tracker: { maxSenders: opts.maxSenders },
    onEvent: (e, info) => got.events.push({ ev: e, info }),
    onLost: (g) => got.gaps.push(g),
    onMalformed: (r) => got.malformed.push(r),
    onSender: (s) => got.senders.push(s),
  });
  const { port } = await l.start();
  running.push(l);
  return { l, port, got };
}

async function rawSender() {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  s.setMulticastInterface('127.0.0.1');
  s.setMulticastLoopback(true);
  running.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
  return (buf: Uint8Array, group: string, port: number) => new Promise<void>((resolve, reject) => s.send(buf, port, group, (e) => (e ? reject(e) : resolve())));
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('MulticastListener on loopback', () => {
  it('delivers, reports gaps once, ignores duplicates and garbage, and survives a sender restart', async () => {
    const group = randomGroup();
    const { l, port, got } = await listen(group);
    const send = await rawSender();
    const a = randomBytes(16);
    const datagram = (sender: Buffer, seq: number) => {
      const r = encode(ev(seq), { sender, seq });
      assert.ok(r.ok);
      return r.buf;
    };
    for (const seq of [1, 2, 3, 6, 7, 7, 8]) await send(datagram(a, seq), group, port);
    await send(Buffer.from('NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n'), group, port);
    const b = randomBytes(16); // the agent restarted: a new sender id, numbering from 1
    for (const seq of [1, 2, 3]) await send(datagram(b, seq), group, port);
    await until(() => got.events.length >= 9 && got.malformed.length >= 1, '9 events');
    await sleep(50);
    assert.deepEqual(got.events.map((e) => e.info.seq), [1, 2, 3, 6, 7, 8, 1, 2, 3]);
    assert.deepEqual(got.gaps.map((g) => [g.lost, g.fromSeq, g.toSeq, g.sender]), [[2, 4, 5, a.toString('hex')]]);
    assert.equal(got.malformed.length, 1);
    assert.match(got.malformed[0]!, /bad magic/);
    assert.deepEqual(got.senders, [a.toString('hex'), b.toString('hex')]);
    assert.deepEqual(l.stats, { received: 9, lost: 2, duplicates: 1, reordered: 0, malformed: 1, rejected: 0, resyncs: 0, senders: 2 });
    assert.match(got.events[0]!.info.address, /^127\.0\.0\.1:\d+$/);
  });

  it('keeps its sender state bounded', async () => {
    const group = randomGroup();
    const { l, port } = await listen(group, { maxSenders: 4 });
    const send = await rawSender();
    for (let i = 0; i < 40; i++) {
      const r = encode(ev(i), { sender: randomBytes(16), seq: 1 });
      assert.ok(r.ok);
      await send(r.buf, group, port);
    }
    await until(() => l.stats.received === 40, '40 events');
    assert.equal(l.stats.senders, 4);
    assert.equal(l.stats.lost, 0);
  });

  it('refuses to join on an address that is not local, with a clear message', async () => {
    const l = new MulticastListener({ group: randomGroup(), port: 0, interfaceIp: '192.0.2.77', onEvent: () => {} });
    await assert.rejects(l.start(), /cannot join 239\.255\.\d+\.\d+ on 192\.0\.2\.77: EADDRNOTAVAIL|cannot join .* on 192\.0\.2\.77/);
  });
});

describe('MulticastSender → MulticastListener', () => {
  const log = silentLogger();

  async function senderFor(group: string, port: number, metrics: AgentMetrics, queueSize = 1000, maxDatagram = 1400) {
    const s = new MulticastSender('multicast', { group, port, bindIp: '127.0.0.1', ttl: 1, loopback: true, maxDatagram, queueSize }, { log, metrics });
    running.push({ close: () => s.close(1000) });
    return s;
  }

  it('sends every event once, in order, numbered from 1; truncates big ones; counts', async () => {
    const group = randomGroup();
    const { port, got } = await listen(group);
    const metrics = new AgentMetrics(new Registry());
    const s = await senderFor(group, port, metrics);
    const n = 500;
    for (let i = 0; i < n; i++) assert.equal(s.deliver(ev(i, i === 7 ? { msg: 'x'.repeat(5000) } : {}), NO_ACK), true);
    await until(() => got.events.length >= n, `${n} events`);
    assert.deepEqual(got.events.map((e) => e.info.seq), Array.from({ length: n }, (_, i) => i + 1));
    assert.deepEqual(got.events.map((e) => e.ev.event_id), Array.from({ length: n }, (_, i) => `id-${i}`));
    assert.equal(got.events[7]!.info.truncated, true);
    assert.equal(got.events[7]!.ev.extentions.truncated, 'true');
    assert.equal(got.gaps.length, 0);
    assert.equal(new Set(got.events.map((e) => e.info.sender)).size, 1);
    assert.equal(got.events[0]!.info.sender, s.senderId.toString('hex'));
    const text = await metrics.registry.metrics();
    assert.match(text, new RegExp(`peripety_multicast_sent_datagrams_total ${n}\\b`));
    assert.match(text, /peripety_multicast_truncated_events_total 1\b/);
  });

  it('a full queue uses up sequence numbers, so listeners see and count the loss', async () => {
    const group = randomGroup();
    const { l, port, got } = await listen(group);
    const metrics = new AgentMetrics(new Registry());
    const s = await senderFor(group, port, metrics, 1);
    s.deliver(ev(0), NO_ACK);
    await until(() => got.events.length === 1, 'the first event');
    // one fits in the queue; the next nine are dropped in the same tick
    for (let i = 1; i <= 10; i++) s.deliver(ev(i), NO_ACK);
    await until(() => got.events.length === 2, 'the queued event');
    s.deliver(ev(11), NO_ACK);
    await until(() => got.events.length === 3, 'the event after the burst');
    assert.equal(l.stats.lost, 9);
    assert.equal(l.stats.received + l.stats.lost, s.lastSeq);
    assert.match(await metrics.registry.metrics(), /peripety_multicast_dropped_events_total\{reason="queue_full"\} 9\b/);
  });

  it('two senders on one registry share the metrics (an agent reload builds a new sender)', async () => {
    const metrics = new AgentMetrics(new Registry());
    const group = randomGroup();
    const a = await senderFor(group, 9, metrics);
    const b = await senderFor(group, 9, metrics);
    assert.notDeepEqual(a.senderId, b.senderId);
  });

  it('a bind address that is not on this host: events are dropped and counted, nothing throws', async () => {
    const metrics = new AgentMetrics(new Registry());
    const s = new MulticastSender('multicast', { group: randomGroup(), port: 9, bindIp: '192.0.2.77', ttl: 1, loopback: true, maxDatagram: 1400, queueSize: 10 }, { log, metrics });
    running.push({ close: () => s.close(1000) });
    s.deliver(ev(1), NO_ACK);
    await until(() => s.depth === 0 && s.lastSeq === 1, 'the write attempt');
    // the send error is counted in the socket's callback: poll for it (a loaded machine may take a while)
    let text = '';
    for (let k = 0; k < 300; k++) {
      text = await metrics.registry.metrics();
      if (/send_error"\} 1\b/.test(text)) break;
      await sleep(10);
    }
    assert.match(text, /peripety_multicast_dropped_events_total\{reason="send_error"\} 1\b/);
    assert.match(text, /peripety_plugin_up\{plugin="multicast"\} 0/);
  });

  it('rejects a bind address of the other IP family', () => {
    const metrics = new AgentMetrics(new Registry());
    assert.throws(() => new MulticastSender('multicast', { group: '239.1.1.1', port: 9, bindIp: '::1', ttl: 1, loopback: true, maxDatagram: 1400, queueSize: 10 }, { log, metrics }), /one IP family/);
  });
});
