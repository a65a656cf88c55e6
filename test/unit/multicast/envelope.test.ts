// The multicast datagram: header layout, round trip, the truncation rule
// (always a complete, valid StorageEvent), and decode() on hostile input.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { StorageEvent } from '../../../src/events/schema.ts';
import {
  decode, DEFAULT_MAX_DATAGRAM, ELLIPSIS, encode, FLAG_TRUNCATED, HEADER_BYTES, MSG_FLOOR_BYTES, SIGNED_HEADER_BYTES, shrinkToJsonBytes, truncateEvent,
} from '../../../src/multicast/envelope.ts';

const SENDER = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function event(over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'node-7.example.com',
    severity: 'error',
    system: 'block',
    timestamp: 1763812345,
    event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11',
    event_type: 'BLK_IO_ERROR',
    dev_wwid: 'naa.5000c500a1b2c3d4',
    dev_name: 'sdb',
    msg: 'I/O error on sdb (READ, sector 2048)',
    extentions: { sector: '2048', op: 'READ', kernel_dev: 'sdb', raw_msg: 'I/O error, dev sdb, sector 2048 op 0x0:(READ)', kmsg_seq: '42', timestamp_us: '1763812345000000' },
    ...over,
  };
}

function encodeOk(ev: StorageEvent, seq = 1, maxDatagram?: number) {
  const r = encode(ev, { sender: SENDER, seq, maxDatagram });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r;
}

function decodeOk(buf: Uint8Array) {
  const d = decode(buf);
  assert.ok(d.ok, d.ok ? '' : d.reason);
  return d.datagram;
}

describe('multicast envelope', () => {
  it('lays out the header as documented and round-trips', () => {
    const ev = event();
    const { buf, truncated } = encodeOk(ev, 0x0102030405);
    assert.equal(truncated, false);
    assert.equal(buf.subarray(0, 4).toString('latin1'), 'PRPT');
    assert.equal(buf[4], 1, 'version');
    assert.equal(buf[5], 0, 'flags');
    assert.deepEqual([buf[6], buf[7]], [0, 0], 'reserved');
    assert.deepEqual(buf.subarray(8, 24), SENDER);
    assert.equal(buf.readBigUInt64BE(24), 0x0102030405n);
    assert.deepEqual(JSON.parse(buf.subarray(HEADER_BYTES).toString('utf8')), ev);
    const d = decodeOk(buf);
    assert.deepEqual(d, { version: 1, flags: 0, truncated: false, sender: SENDER.toString('hex'), seq: 0x0102030405, timeMs: null, authenticated: false, event: ev });
  });

  it('carries the largest safe sequence number and rejects larger ones', () => {
    const { buf } = encodeOk(event(), Number.MAX_SAFE_INTEGER);
    assert.equal(decodeOk(buf).seq, Number.MAX_SAFE_INTEGER);
    buf.writeBigUInt64BE(2n ** 64n - 1n, 24);
    assert.deepEqual(decode(buf), { ok: false, code: 'malformed', reason: 'sequence number out of range' });
    assert.equal(encode(event(), { sender: SENDER, seq: -1 }).ok, false);
    assert.equal(encode(event(), { sender: SENDER, seq: 2 ** 53 }).ok, false);
    assert.equal(encode(event(), { sender: Buffer.alloc(8), seq: 1 }).ok, false);
  });

  it('keeps non-ASCII text intact and counts its bytes, not its characters', () => {
    const ev = event({ msg: 'Ошибка ввода-вывода на диске ☃ 🚀'.repeat(20) });
    const { buf, truncated } = encodeOk(ev, 1, 4000);
    assert.equal(truncated, false);
    assert.deepEqual(decodeOk(buf).event, ev);
  });

  describe('truncation', () => {
    it('shortens msg first and marks the datagram and the event', () => {
      const ev = event({ msg: 'x'.repeat(3000) });
      const { buf, truncated } = encodeOk(ev);
      assert.equal(truncated, true);
      assert.ok(buf.length <= DEFAULT_MAX_DATAGRAM, `${buf.length} bytes`);
      assert.equal(buf[5]! & FLAG_TRUNCATED, FLAG_TRUNCATED);
      const d = decodeOk(buf);
      assert.equal(d.truncated, true);
      assert.equal(d.event.extentions.truncated, 'true');
      assert.ok(d.event.msg.endsWith(ELLIPSIS));
      assert.ok(d.event.msg.length > MSG_FLOOR_BYTES, 'msg keeps what fits');
      assert.equal(d.event.extentions.raw_msg, ev.extentions.raw_msg, 'raw_msg untouched: shortening msg was enough');
      assert.equal(d.event.event_id, ev.event_id);
      // uses the room: one more character would not fit
      assert.ok(buf.length > DEFAULT_MAX_DATAGRAM - 8, `${buf.length} bytes is close to the limit`);
    });

    it('then raw_msg, keeping msg at its floor', () => {
      const long = 'y'.repeat(3000);
      const ev = event({ msg: long, extentions: { ...event().extentions, raw_msg: long } });
      const d = decodeOk(encodeOk(ev).buf);
      assert.equal(Buffer.byteLength(d.event.msg), MSG_FLOOR_BYTES, 'msg cut to the floor (ellipsis included)');
      assert.ok(d.event.extentions.raw_msg!.endsWith(ELLIPSIS));
      assert.ok(d.event.extentions.raw_msg!.length > 100, 'raw_msg keeps what fits');
      assert.equal(d.event.extentions.kernel_dev, 'sdb', 'other extentions kept');
    });

    it('then drops extentions largest first, never "truncated", and finally shortens msg below the floor', () => {
      const ext: Record<string, string> = { kernel_dev: 'sdb', big: 'b'.repeat(900), medium: 'm'.repeat(400), small: 's'.repeat(50), raw_msg: 'r'.repeat(600) };
      const ev = event({ msg: 'z'.repeat(1000), extentions: ext });
      const d = decodeOk(encodeOk(ev, 1, 1000).buf);
      assert.equal(d.event.extentions.big, undefined, 'largest dropped');
      assert.equal(d.event.extentions.truncated, 'true');
      assert.equal(d.event.extentions.kernel_dev, 'sdb', 'small keys survive');
      // raw_msg was shortened to nothing before any key was dropped; it is then the smallest
      assert.equal(d.event.extentions.raw_msg, '');
      const tiny = truncateEvent(event({ msg: 'q'.repeat(5000), extentions: { a: 'a'.repeat(5000) } }), 420);
      assert.ok(tiny);
      assert.deepEqual(Object.keys(tiny.extentions), ['truncated']);
      assert.ok(tiny.msg.length < MSG_FLOOR_BYTES && tiny.msg.endsWith(ELLIPSIS));
      assert.ok(Buffer.byteLength(JSON.stringify(tiny)) <= 420);
    });

    it('fails cleanly when even the bare event cannot fit', () => {
      const r = encode(event({ hostname: 'h'.repeat(2000) }), { sender: SENDER, seq: 1, maxDatagram: 1400 });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, /does not fit in 1400 bytes/);
    });

    it('never splits a surrogate pair or an escape', () => {
      for (const unit of ['🚀', '"', '\\', '\u0001', 'é', '\u2028']) {
        for (let budget = 2; budget < 40; budget++) {
          const s = shrinkToJsonBytes(unit.repeat(30), budget);
          assert.ok(Buffer.byteLength(JSON.stringify(s)) <= budget, `${JSON.stringify(unit)} budget ${budget}`);
          assert.ok(!/[\ud800-\udbff]$/.test(s.replace(ELLIPSIS, '')), 'no lone high surrogate');
          assert.equal(JSON.parse(JSON.stringify(s)), s);
        }
      }
    });

    it('is exact for every size limit: valid JSON, a StorageEvent, within the limit', () => {
      const ev = event({ msg: 'm"\\é🚀\n'.repeat(300), extentions: { raw_msg: 'r🚀"'.repeat(400), a: 'x'.repeat(700), b: 'é'.repeat(300), kernel_dev: 'sdb' } });
      const full = HEADER_BYTES + Buffer.byteLength(JSON.stringify(ev));
      for (let max = 512; max <= full + 100; max += 37) {
        const { buf } = encodeOk(ev, max, max);
        assert.ok(buf.length <= max, `${buf.length} > ${max}`);
        const d = decodeOk(buf);
        assert.ok(StorageEvent.safeParse(JSON.parse(buf.subarray(HEADER_BYTES).toString('utf8'))).success);
        assert.equal(d.truncated, full > max);
        if (full <= max) assert.deepEqual(d.event, ev);
      }
    });
  });

  describe('decode of what is not ours', () => {
    const good = encodeOk(event()).buf;
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /too short/],
      ['short', good.subarray(0, 31), /too short/],
      ['foreign', Buffer.from('M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n'), /bad magic/],
      ['future version', Buffer.concat([Buffer.from('PRPT\x03'), good.subarray(5)]), /unsupported version 3/],
      ['version 2 shorter than its header', Buffer.concat([Buffer.from('PRPT\x02'), good.subarray(5, 40)]), /too short \(40 bytes; the version 2 header is 72\)/],
      ['not UTF-8', Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from([0xff, 0xfe, 0x7b])]), /not UTF-8/],
      ['cut JSON', good.subarray(0, good.length - 5), /not JSON/],
      ['JSON, not an event', Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from('{"hostname":1}')]), /not a storage event \(hostname/],
      ['wrong extention type', Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from(JSON.stringify({ ...event(), extentions: { a: 1 } }))]), /extentions\.a/],
      ['null payload', Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from('null')]), /not a storage event/],
    ];
    for (const [name, buf, want] of cases) {
      it(name, () => {
        const d = decode(buf);
        assert.equal(d.ok, false);
        assert.match(d.ok ? '' : d.reason, want);
      });
    }
    it('ignores reserved flag bits and bytes', () => {
      const b = Buffer.from(good);
      b[5] = 0xfe;
      b[6] = 7;
      const d = decodeOk(b);
      assert.equal(d.truncated, false);
      assert.equal(d.flags, 0xfe);
    });
  });

  it('fuzz: 20,000+ random and mutated datagrams never throw', () => {
    const seeds = [encodeOk(event()).buf, encodeOk(event({ msg: 'é🚀'.repeat(900) }), 7).buf, encodeOk(event({ extentions: {} }), 9).buf];
    let rng = 0x9e3779b9;
    const rand = (n: number) => {
      rng ^= rng << 13;
      rng ^= rng >>> 17;
      rng ^= rng << 5;
      return (rng >>> 0) % n;
    };
    const tokens = ['{', '}', '"', ':', ',', '[', ']', 'null', '1e999', '"__proto__"', '\\u0000', '\xff', '{"extentions":{}}'];
    let ok = 0;
    let bad = 0;
    for (let i = 0; i < 24_000; i++) {
      let buf: Buffer;
      const mode = i % 4;
      if (mode === 0) buf = randomBytes(rand(200));
      else if (mode === 1) buf = Buffer.concat([Buffer.from('PRPT\x01'), randomBytes(rand(120))]);
      else {
        buf = Buffer.from(seeds[rand(seeds.length)]!);
        const edits = 1 + rand(mode === 2 ? 4 : 12);
        for (let e = 0; e < edits; e++) {
          const op = rand(4);
          const at = rand(buf.length);
          if (op === 0) buf[at] = rand(256);
          else if (op === 1) buf = buf.subarray(0, at);
          else if (op === 2) buf = Buffer.concat([buf.subarray(0, at), Buffer.from(tokens[rand(tokens.length)]!), buf.subarray(at)]);
          else buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + rand(8)))]);
        }
      }
      let d;
      try {
        d = decode(buf);
      } catch (err) {
        assert.fail(`decode threw on ${buf.toString('hex').slice(0, 200)}: ${(err as Error).message}`);
      }
      if (d.ok) {
        ok++;
        assert.ok(StorageEvent.safeParse(d.datagram.event).success);
        assert.ok(Number.isSafeInteger(d.datagram.seq));
      } else {
        bad++;
        assert.equal(typeof d.reason, 'string');
      }
    }
    assert.equal(ok + bad, 24_000);
    assert.ok(ok > 0 && bad > 0, `both outcomes seen (${ok} ok, ${bad} rejected)`);
  });

  it('fuzz: random events always encode to a datagram within the limit that decodes to a valid event', () => {
    const alphabet = ['a', 'é', '🚀', '"', '\\', '\n', '\u0000', ' ', 'Z', '\u2028'];
    let rng = 12345;
    const rand = (n: number) => {
      rng = (rng * 1103515245 + 12345) & 0x7fffffff;
      return rng % n;
    };
    const str = (n: number) => Array.from({ length: rand(n) }, () => alphabet[rand(alphabet.length)]).join('');
    for (let i = 0; i < 2000; i++) {
      const ext: Record<string, string> = {};
      for (let k = rand(12); k > 0; k--) ext[`k${k}${str(5)}`] = str(600);
      const ev = event({ msg: str(2500), dev_name: str(20), extentions: ext });
      const max = 512 + rand(3000);
      const r = encode(ev, { sender: SENDER, seq: i, maxDatagram: max });
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.ok(r.buf.length <= max);
      const d = decodeOk(r.buf);
      assert.equal(d.truncated, r.truncated);
      if (!r.truncated) assert.deepEqual(d.event, ev);
      else assert.equal(d.event.extentions.truncated, 'true');
    }
  });

  describe('signed (version 2)', () => {
    const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
    it('lays out time and MAC, verifies with the key, and reads without one', () => {
      const ev = event();
      const r = encode(ev, { sender: SENDER, seq: 7, key: KEY, nowMs: 1_763_812_345_678 });
      assert.ok(r.ok);
      assert.equal(r.buf[4], 2, 'version');
      assert.equal(r.buf.readBigUInt64BE(32), 1_763_812_345_678n, 'time');
      assert.deepEqual(JSON.parse(r.buf.subarray(SIGNED_HEADER_BYTES).toString('utf8')), ev);
      const d = decode(r.buf, { key: KEY });
      assert.ok(d.ok);
      assert.deepEqual({ ...d.datagram, event: null }, { version: 2, flags: 0, truncated: false, sender: SENDER.toString('hex'), seq: 7, timeMs: 1_763_812_345_678, authenticated: true, event: null });
      const plain = decode(r.buf);
      assert.ok(plain.ok && !plain.datagram.authenticated && plain.datagram.seq === 7, 'a keyless receiver reads it (unchecked)');
    });
    it('refuses another key, any changed byte, and unsigned datagrams', () => {
      const r = encode(event(), { sender: SENDER, seq: 7, key: KEY, nowMs: 1 });
      assert.ok(r.ok);
      assert.equal((decode(r.buf, { key: randomBytes(32) }) as { code: string }).code, 'bad_mac');
      for (const at of [5, 8, 24, 32, 40, SIGNED_HEADER_BYTES, r.buf.length - 2]) {
        const b: Buffer = Buffer.from(r.buf);
        b[at] = b[at]! ^ 0x01;
        assert.equal((decode(b, { key: KEY }) as { code: string }).code, 'bad_mac', `byte ${at}`);
      }
      const v1 = encode(event(), { sender: SENDER, seq: 7 });
      assert.ok(v1.ok);
      assert.equal((decode(v1.buf, { key: KEY }) as { code: string }).code, 'unsigned');
    });
    it('truncates within the limit with the larger header', () => {
      const r = encode(event({ msg: 'x'.repeat(5000) }), { sender: SENDER, seq: 1, key: KEY, nowMs: 1 });
      assert.ok(r.ok && r.truncated && r.buf.length <= DEFAULT_MAX_DATAGRAM, `${r.ok ? r.buf.length : 0} bytes`);
      assert.ok(decode(r.buf, { key: KEY }).ok);
    });
  });
});
