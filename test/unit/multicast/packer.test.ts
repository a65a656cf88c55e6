// DatagramPacker (the multicast sender's batch of datagrams for sendmmsg)
// against encode(): the same event and options give the same bytes, datagram
// for datagram, whatever the path (short, counted, truncated, too large,
// signed, sequence numbers above 2^32), and the batch survives growing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { DatagramPacker, decode, encode } from '../../../src/multicast/envelope.ts';

const SENDER = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function event(i: number, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'node-7.example.com', severity: 'error', system: 'block', timestamp: 1763812345,
    event_id: `0b9f0f3e-7d0a-4d8e-9a57-${String(i).padStart(12, '0')}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: 'naa.5000c500a1b2c3d4', dev_name: 'sdb', msg: `I/O error on sdb (READ, sector ${i})`,
    extentions: { sector: String(i), op: 'READ', raw_msg: 'I/O error, dev sdb, sector 2048 op 0x0:(READ)', timestamp_us: '1763812345000000' },
    ...over,
  };
}

/** A mix that takes every path of add(): plain, multi-byte text near the limit, truncated, too large. */
function mixedEvents(): StorageEvent[] {
  return [
    event(1),
    event(2, { msg: 'é'.repeat(300) }), // 3 × length above the limit, the bytes below: counted, not truncated
    event(3, { msg: '€'.repeat(400) }), // counted, over: truncated
    event(4, { msg: 'x'.repeat(5000), extentions: { raw_msg: 'y'.repeat(3000), a: 'b' } }), // truncated
    event(5, { hostname: 'h'.repeat(2000) }), // too large even truncated
    event(6, { msg: 'control \u0001 and bidi \u202e and emoji 😀' }),
    event(7),
  ];
}

function check(opts: { maxDatagram?: number; key?: Buffer }, firstSeq: number): void {
  const packer = new DatagramPacker({ sender: SENDER, ...opts });
  const nowMs = 1_763_812_345_678;
  for (let round = 0; round < 2; round++) {
    packer.reset();
    const expected: Buffer[] = [];
    const events = mixedEvents();
    events.forEach((ev, k) => {
      const seq = firstSeq + k;
      const want = encode(ev, { sender: SENDER, seq, nowMs, ...opts });
      const got = packer.add(ev, seq, nowMs);
      if (!want.ok) {
        assert.equal(typeof got, 'object', `event ${k}: encode failed (${want.reason}), the packer must too`);
        assert.equal((got as { reason: string }).reason, want.reason);
        return;
      }
      assert.equal(got, want.truncated ? 'truncated' : 'ok', `event ${k}`);
      expected.push(want.buf);
    });
    const got = packer.datagrams();
    assert.equal(got.length, expected.length);
    got.forEach((g, i) => assert.ok(g.equals(expected[i]!), `datagram ${i} (round ${round}) differs from encode()`));
    // the views agree with buf and ends
    assert.equal(packer.ends[packer.count - 1], got.reduce((n, b) => n + b.length, 0));
  }
}

describe('DatagramPacker', () => {
  it('makes the bytes encode() makes, unsigned, at the default size limit', () => check({}, 1));
  it('… at a larger and at a smaller limit', () => {
    check({ maxDatagram: 9000 }, 10);
    check({ maxDatagram: 600 }, 10);
  });
  it('… signed (version 2: time and MAC)', () => {
    const key = randomBytes(32);
    check({ key }, 1);
    const packer = new DatagramPacker({ sender: SENDER, key });
    assert.equal(packer.add(event(1), 5, 1000), 'ok');
    const d = decode(packer.datagrams()[0]!, { key });
    assert.ok(d.ok && d.datagram.authenticated && d.datagram.seq === 5 && d.datagram.timeMs === 1000);
  });
  it('… with sequence numbers beyond 32 bits', () => check({}, 2 ** 40 + 0xffff_fffe));
  it('refuses what encode() refuses', () => {
    assert.deepEqual(new DatagramPacker({ sender: Buffer.alloc(8) }).add(event(1), 1), { reason: 'the sender id must be 16 bytes' });
    assert.equal(typeof new DatagramPacker({ sender: SENDER, maxDatagram: 10 }).add(event(1), 1), 'object');
    assert.equal(typeof new DatagramPacker({ sender: SENDER }).add(event(1), -1), 'object');
    assert.equal(typeof new DatagramPacker({ sender: SENDER }).add(event(1), 2 ** 53), 'object');
    assert.equal(typeof new DatagramPacker({ sender: SENDER, key: Buffer.alloc(0) }).add(event(1), 1), 'object');
  });
  it('grows its buffer and its ends for a large batch, keeping every datagram', () => {
    const packer = new DatagramPacker({ sender: SENDER, maxDatagram: 65000 });
    const events = Array.from({ length: 1500 }, (_, i) => event(i, { msg: 'm'.repeat(i % 7 === 0 ? 20_000 : 100) }));
    events.forEach((ev, i) => assert.equal(packer.add(ev, i + 1), 'ok'));
    assert.equal(packer.count, 1500);
    packer.datagrams().forEach((d, i) => assert.ok(d.equals((encode(events[i]!, { sender: SENDER, seq: i + 1, maxDatagram: 65000 }) as { buf: Buffer }).buf)));
  });
});
