import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseKmsgRecord, unescapeKmsg } from '../../src/kmsg/record.ts';

describe('parseKmsgRecord', () => {
  it('parses the prefix fields, the message and the dictionary', () => {
    const r = parseKmsgRecord('3,101,1001234,-;I/O error, dev loop0, sector 16384\n SUBSYSTEM=block\n DEVICE=b7:0\n');
    assert.ok(r.ok);
    assert.deepEqual(r.record, {
      level: 3, facility: 0, seq: 101, tsUsec: 1001234, flag: '-',
      message: 'I/O error, dev loop0, sector 16384', subsystem: 'block', device: 'b7:0',
    });
  });
  it('splits PRI into facility and level', () => {
    const r = parseKmsgRecord('14,5,6,-;hello\n');
    assert.ok(r.ok);
    assert.equal(r.record.facility, 1);
    assert.equal(r.record.level, 6);
  });
  it('accepts extra prefix fields of newer kernels and continuation flags', () => {
    const r = parseKmsgRecord('6,7,8,c,caller=T123;msg');
    assert.ok(r.ok);
    assert.equal(r.record.flag, 'c');
    assert.equal(r.record.message, 'msg');
  });
  it('undoes \\xNN escapes in the message and the dictionary', () => {
    const r = parseKmsgRecord('6,1,2,-;a\\x09b\\x5cc \\xc3\\xa9\n DEVICE=+scsi:\\x41\n');
    assert.ok(r.ok);
    assert.equal(r.record.message, 'a\tb\\c é');
    assert.equal(r.record.device, '+scsi:A');
  });
  it('keeps an invalid escape as written', () => {
    assert.equal(unescapeKmsg('x\\xZZy\\x4'), 'x\\xZZy\\x4');
  });
  for (const [bad, why] of [
    ['no semicolon here', /no ";"/],
    ['3,1;msg', /fields/],
    ['x,1,2,-;msg', /PRI/],
    ['3,-1,2,-;msg', /SEQ/],
    ['3,1,abc,-;msg', /TS_USEC/],
    ['3,99999999999999999999,2,-;m', /range/],
  ] as const) {
    it(`rejects ${JSON.stringify(bad)} with a reason`, () => {
      const r = parseKmsgRecord(bad);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, why);
    });
  }
  it('cuts huge messages', () => {
    const r = parseKmsgRecord(`3,1,2,-;${'x'.repeat(100_000)}`);
    assert.ok(r.ok && r.record.message.length === 4096);
  });
});
