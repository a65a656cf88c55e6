import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDmesgLine, parseKmsgRecord, splitRecords, unescapeKmsg } from '../../src/kmsg/record.ts';

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

describe('parseDmesgLine', () => {
  it('reads dmesg, dmesg -r, dmesg -x and journalctl forms', () => {
    const a = parseDmesgLine('[  613.524384] EXT4-fs (sdb1): Remounting filesystem read-only');
    assert.ok(a.ok);
    assert.equal(a.record.tsUsec, 613_524_384);
    assert.equal(a.record.level, -1);
    assert.equal(a.record.message, 'EXT4-fs (sdb1): Remounting filesystem read-only');
    const b = parseDmesgLine('<3>[  613.524384] I/O error, dev sdb, sector 1');
    assert.ok(b.ok && b.record.level === 3 && b.record.facility === 0);
    const c = parseDmesgLine('kern  :err   : [  613.524384] I/O error, dev sdb, sector 1');
    assert.ok(c.ok && c.record.level === 3 && c.record.message === 'I/O error, dev sdb, sector 1');
    const d = parseDmesgLine('[  613.524384] node-1 kernel: md: md0: recovery done.');
    assert.ok(d.ok && d.record.message === 'md: md0: recovery done.');
  });
  it('takes a bare line as a message of unknown level', () => {
    const r = parseDmesgLine('md: md0: resync done.');
    assert.ok(r.ok && r.record.level === -1 && r.record.tsUsec === -1);
  });
  it('rejects empty lines', () => {
    assert.equal(parseDmesgLine('[  1.000000] ').ok, false);
  });
});

describe('splitRecords', () => {
  it('groups dictionary lines with their record and reports bad ones by line', () => {
    const text = '3,1,10,-;I/O error, dev sdb, sector 8\n SUBSYSTEM=block\n DEVICE=b8:16\n[    1.5] md: md0: resync done.\n3,99999999999999999999,1,-;bad\n';
    const out = [...splitRecords(text)];
    assert.equal(out.length, 3);
    assert.ok(out[0]!.ok && out[0]!.record.device === 'b8:16');
    assert.ok(out[1]!.ok && out[1]!.record.message === 'md: md0: resync done.');
    assert.equal(out[2]!.ok, false);
    assert.equal(out[2]!.line, 5);
  });
});
