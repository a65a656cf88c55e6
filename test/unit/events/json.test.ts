// The one JSON text of an event (src/events/json.ts), shared by multicast,
// stdout, the SSE stream, the jsonl backend and the spool.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventJson } from '../../../src/events/json.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { encode, decode } from '../../../src/multicast/envelope.ts';
import { formatJson } from '../../../src/receivers/format.ts';

const event = (msg: string): StorageEvent => ({
  hostname: 'node-7',
  severity: 'error',
  system: 'block',
  timestamp: 1763812345,
  event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11',
  event_type: 'BLK_IO_ERROR',
  dev_wwid: 'naa.5000c500a1b2c3d4',
  dev_name: 'sdb',
  msg,
  extentions: { sector: '2048', op: 'READ', timestamp_us: '1763812345123456' },
});

describe('eventJson: one serialisation per event', () => {
  it('is JSON.stringify of the event', () => {
    const ev = event('I/O error on sdb');
    assert.equal(eventJson(ev), JSON.stringify(ev));
  });

  it('is made once per event object: a second call returns the first text (events are not changed once delivered)', () => {
    const ev = event('first');
    const first = eventJson(ev);
    (ev as { msg: string }).msg = 'changed'; // what no consumer may do: the cache shows it
    assert.equal(eventJson(ev), first);
    assert.notEqual(eventJson(event('changed')), first, 'another object has its own text');
  });

  it('stdout and multicast carry that text (stdout with terminal controls escaped, same value)', () => {
    const ev = event('I/O error \u0085 on sdb \u202e');
    const line = formatJson(ev);
    assert.doesNotMatch(line, /[\u0085\u202e]/);
    assert.deepEqual(JSON.parse(line), ev);
    const sender = Buffer.alloc(16, 7);
    const r = encode(ev, { sender, seq: 1 });
    assert.ok(r.ok);
    const d = decode(r.buf);
    assert.ok(d.ok);
    assert.deepEqual(d.datagram.event, ev);
  });
});
