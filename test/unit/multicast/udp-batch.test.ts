// The udp addon's batch send (sendmmsg) against a real socket, and the
// multicast sender's handling of datagrams the kernel refuses one by one:
// each is dropped and counted, the rest of the batch goes on, nothing spins.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { NO_ACK } from '../../../src/contracts/ack.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { MulticastSender } from '../../../src/multicast/sender.ts';
import { loadUdp } from '../../../src/native/udp.ts';

const cleanup: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup) await c();
});

function ev(i: number): StorageEvent {
  return {
    hostname: 'h', severity: 'warn', system: 'block', timestamp: 1, event_id: `id-${i}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg: `event ${i}`, extentions: {},
  };
}

describe('udp addon', () => {
  const udp = loadUdp();
  it('sends datagrams from..to of a packed buffer with one call, each as it is', async () => {
    const rx = dgram.createSocket('udp4');
    cleanup.push(() => new Promise<void>((r) => rx.close(() => r())));
    const got: string[] = [];
    rx.on('message', (m) => got.push(m.toString()));
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    const fd = udp.socket(4);
    assert.ok(fd >= 0);
    cleanup.push(() => void udp.close(fd));
    const local = Buffer.alloc(udp.SOCKADDR_BYTES);
    assert.equal(udp.address('127.0.0.1', 0, local), 4);
    assert.equal(udp.bind(fd, local), 0);
    const dest = Buffer.alloc(udp.SOCKADDR_BYTES);
    assert.equal(udp.address('127.0.0.1', rx.address().port, dest), 4);
    const texts = ['zero', 'one', '', 'three', 'four'];
    const buf = Buffer.from(texts.join(''));
    let end = 0;
    const ends = Int32Array.from(texts.map((t) => (end += t.length)));
    const status = new Int32Array(1);
    assert.equal(udp.send(fd, dest, buf, ends, 1, 5, status), 4);
    assert.equal(status[0], 0);
    for (let k = 0; k < 200 && got.length < 4; k++) await sleep(10);
    assert.deepEqual(got, ['one', '', 'three', 'four']);
  });
  it('stops at a datagram the kernel refuses and says why (port 0: EINVAL)', () => {
    const fd = udp.socket(4);
    cleanup.push(() => void udp.close(fd));
    const dest = Buffer.alloc(udp.SOCKADDR_BYTES);
    assert.equal(udp.address('127.0.0.1', 0, dest), 4);
    const status = new Int32Array(1);
    assert.equal(udp.send(fd, dest, Buffer.from('ab'), Int32Array.from([1, 2]), 0, 2, status), 0);
    assert.equal(status[0], udp.EINVAL);
  });
  it('refuses what is not an address, and misuse', () => {
    const out = Buffer.alloc(udp.SOCKADDR_BYTES);
    assert.equal(udp.address('not an ip', 1, out), -udp.EINVAL);
    assert.equal(udp.address('127.0.0.1', 70000, out), -udp.EINVAL);
    assert.equal(udp.address('ff02::1', 6000, out), 6);
    assert.throws(() => udp.send(0, Buffer.alloc(4), Buffer.alloc(1), new Int32Array(1), 0, 1, new Int32Array(1)), /send/);
    assert.throws(() => udp.send(0, out, Buffer.alloc(1), Int32Array.from([5]), 0, 1, new Int32Array(1)), /within the buffer/);
  });
});

describe('MulticastSender with datagrams the kernel refuses', () => {
  it('drops and counts each one, uses up its sequence number, and goes on', async () => {
    const metrics = new AgentMetrics(new Registry());
    // port 0: the kernel refuses every datagram (EINVAL), one at a time
    const s = new MulticastSender('multicast', { group: '239.255.77.1', port: 0, bindIp: '127.0.0.1', ttl: 1, loopback: true, maxDatagram: 1400, queueSize: 100 }, { log: silentLogger(), metrics });
    cleanup.push(() => s.close(1000));
    for (let i = 1; i <= 7; i++) s.deliver(ev(i), NO_ACK);
    for (let k = 0; k < 500 && (s.depth > 0 || s.lastSeq < 7); k++) await sleep(10);
    await sleep(20);
    const text = await metrics.registry.metrics();
    assert.equal(s.lastSeq, 7);
    assert.match(text, /peripety_multicast_dropped_events_total\{reason="send_error"\} 7\b/);
    assert.match(text, /peripety_multicast_errors_total 7\b/);
    assert.doesNotMatch(text, /peripety_multicast_sent_datagrams_total [1-9]/);
    // the receiver's own series agree: dropped, not sent
    assert.match(text, /peripety_receiver_dropped_events_total\{receiver="multicast"\} 7\b/);
    assert.match(text, /peripety_receiver_sent_events_total\{receiver="multicast"\} 0\b/);
  });
});
