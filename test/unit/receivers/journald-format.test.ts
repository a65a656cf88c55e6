// The pure journald encoding (src/receivers/journald-format.ts): field names,
// priorities, and the native protocol's two serializations, byte for byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StorageEvent } from '../../../src/events/schema.ts';
import {
  decodeEntry, encodeEntry, encodeEvent, eventFields, extFieldName, isValidFieldName, journalMessage, MAX_FIELDS, priorityOf,
} from '../../../src/receivers/journald-format.ts';

const ev: StorageEvent = {
  hostname: 'node-7',
  severity: 'error',
  system: 'block',
  timestamp: 1763812345,
  event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11',
  event_type: 'BLK_IO_ERROR',
  dev_wwid: 'naa.5000c500a1b2c3d4',
  dev_name: 'sdb',
  msg: 'I/O error on sdb (READ, sector 2048)',
  extentions: { sector: '2048', op: 'READ', kernel_dev: 'sdb', kernel_level: '3', timestamp_us: '1763812345123456' },
};

function fieldMap(e: StorageEvent): Map<string, string> {
  return new Map(eventFields(e).fields.map(([k, v]) => [k, v]));
}

describe('journald field names', () => {
  it('accepts exactly what journald accepts', () => {
    for (const ok of ['MESSAGE', 'A', 'PERIPETY_EXT_X1', 'A_', 'X'.repeat(64)]) assert.ok(isValidFieldName(ok), ok);
    for (const bad of ['', '_PID', '1ABC', 'lower', 'A-B', 'A=B', 'A B', 'Ä', 'X'.repeat(65)]) assert.ok(!isValidFieldName(bad), bad);
  });
  it('upper-cases extentions keys and turns other characters into _', () => {
    assert.equal(extFieldName('raw_msg'), 'PERIPETY_EXT_RAW_MSG');
    assert.equal(extFieldName('ID_SERIAL.short'), 'PERIPETY_EXT_ID_SERIAL_SHORT');
    assert.equal(extFieldName('a-b c=d\ne'), 'PERIPETY_EXT_A_B_C_D_E');
    assert.equal(extFieldName('0day'), 'PERIPETY_EXT_0DAY'); // a digit is fine after the prefix
    assert.equal(extFieldName('_x'), 'PERIPETY_EXT__X');
    assert.equal(extFieldName('größe'), 'PERIPETY_EXT_GR__E'); // non-ASCII: one _ per UTF-16 unit
  });
  it('skips what cannot be made valid: empty keys and names over 64 characters', () => {
    assert.equal(extFieldName(''), null);
    assert.equal(extFieldName('k'.repeat(51)), `PERIPETY_EXT_${'K'.repeat(51)}`); // 13 + 51 = 64
    assert.equal(extFieldName('k'.repeat(52)), null);
    const { fields, skipped } = eventFields({ ...ev, extentions: { '': 'x', ['k'.repeat(60)]: 'y', ok: 'z' } });
    assert.deepEqual(skipped, ['', 'k'.repeat(60)]);
    assert.ok(fields.some(([k, v]) => k === 'PERIPETY_EXT_OK' && v === 'z'));
    for (const [k] of fields) assert.ok(isValidFieldName(k), k);
  });
  it('keeps the first of two keys that map to the same name', () => {
    const { fields, skipped } = eventFields({ ...ev, extentions: { 'a-b': '1', a_b: '2', 'A.B': '3' } });
    assert.deepEqual(fields.filter(([k]) => k === 'PERIPETY_EXT_A_B'), [['PERIPETY_EXT_A_B', '1']]);
    assert.deepEqual(skipped, ['a_b', 'A.B']);
  });
  it('stays under journald\'s field limit', () => {
    const extentions: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) extentions[`k${i}`] = String(i);
    const { fields, skipped } = eventFields({ ...ev, extentions });
    assert.equal(fields.length, MAX_FIELDS);
    assert.equal(skipped.length, 2000 - (MAX_FIELDS - 12));
  });
});

describe('journald entry fields', () => {
  it('maps every event field, the message, the priority and the identifier', () => {
    const f = fieldMap(ev);
    assert.equal(f.get('MESSAGE'), 'block/BLK_IO_ERROR sdb (naa.5000c500a1b2c3d4): I/O error on sdb (READ, sector 2048)');
    assert.equal(f.get('PRIORITY'), '3');
    assert.equal(f.get('SYSLOG_IDENTIFIER'), 'peripety');
    assert.equal(f.get('PERIPETY_EVENT_TYPE'), 'BLK_IO_ERROR');
    assert.equal(f.get('PERIPETY_SYSTEM'), 'block');
    assert.equal(f.get('PERIPETY_SEVERITY'), 'error');
    assert.equal(f.get('PERIPETY_DEV_NAME'), 'sdb');
    assert.equal(f.get('PERIPETY_DEV_WWID'), 'naa.5000c500a1b2c3d4');
    assert.equal(f.get('PERIPETY_EVENT_ID'), ev.event_id);
    assert.equal(f.get('PERIPETY_HOSTNAME'), 'node-7');
    assert.equal(f.get('PERIPETY_TIMESTAMP'), '1763812345');
    assert.equal(f.get('PERIPETY_MSG'), ev.msg);
    assert.equal(f.get('PERIPETY_EXT_SECTOR'), '2048');
    assert.equal(f.get('PERIPETY_EXT_TIMESTAMP_US'), '1763812345123456');
    assert.equal(fieldMap(ev).size, 12 + Object.keys(ev.extentions).length);
    assert.equal(eventFields(ev, 'storage').fields.find(([k]) => k === 'SYSLOG_IDENTIFIER')?.[1], 'storage');
  });
  it('message without a device, with a mount point, and of a raw event', () => {
    assert.equal(journalMessage({ ...ev, dev_name: '', dev_wwid: '' }), 'block/BLK_IO_ERROR: I/O error on sdb (READ, sector 2048)');
    assert.equal(journalMessage({ ...ev, system: 'fs', event_type: 'FS_ERROR', dev_wwid: '', extentions: { mount_point: '/srv' } }), 'fs/FS_ERROR sdb on /srv: I/O error on sdb (READ, sector 2048)');
    assert.equal(journalMessage({ ...ev, event_type: '' }), 'block sdb (naa.5000c500a1b2c3d4): I/O error on sdb (READ, sector 2048)');
  });
  it('priority: error 3, warn 4, info 6; kernel levels 0-2 are kept', () => {
    const p = (severity: StorageEvent['severity'], level?: string) =>
      priorityOf({ ...ev, severity, extentions: level === undefined ? {} : { kernel_level: level } });
    assert.equal(p('error'), 3);
    assert.equal(p('warn'), 4);
    assert.equal(p('info'), 6);
    assert.equal(p('error', '0'), 0);
    assert.equal(p('error', '1'), 1);
    assert.equal(p('warn', '2'), 2);
    assert.equal(p('error', '3'), 3);
    assert.equal(p('info', '4'), 6); // a parser's severity wins over a milder kernel level
    assert.equal(p('error', '6'), 3); // …and over a kernel level lower than the finding (Medium Error at level 6)
    assert.equal(p('warn', ''), 4);
    assert.equal(p('warn', '02'), 4); // not a kernel level
  });
});

describe('native protocol serialization', () => {
  it('writes NAME=value\\n for plain values', () => {
    assert.equal(encodeEntry([['A', 'b'], ['MESSAGE', 'héllo'], ['EMPTY', '']]).toString('utf8'), 'A=b\nMESSAGE=héllo\nEMPTY=\n');
  });
  it('writes the binary form for a value with a newline: NAME\\n, 64-bit LE length, data, \\n', () => {
    const got = encodeEntry([['FOO', 'BAR'], ['MESSAGE', 'line 1\nline 2'], ['Z', 'z']]);
    const want = Buffer.concat([
      Buffer.from('FOO=BAR\n'),
      Buffer.from('MESSAGE\n'),
      Buffer.from([13, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from('line 1\nline 2\n'),
      Buffer.from('Z=z\n'),
    ]);
    assert.deepEqual(got, want);
  });
  it('counts the length in bytes, not characters', () => {
    const got = encodeEntry([['X', 'ä\n']]);
    assert.deepEqual(got, Buffer.concat([Buffer.from('X\n'), Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('ä\n\n')]));
  });
  it('round-trips through the decoder, = signs and newlines included', () => {
    const e: StorageEvent = { ...ev, msg: 'a=b', extentions: { raw_msg: 'first\nsecond\n', cdb: 'x=y=z', trail: '\n' } };
    const { bytes } = encodeEvent(e);
    const back = decodeEntry(bytes).map(([k, v]) => [k, v.toString('utf8')] as const);
    assert.deepEqual(back, eventFields(e).fields.map(([k, v]) => [k, v]));
  });
  it('the decoder refuses cut input', () => {
    const { bytes } = encodeEvent({ ...ev, msg: 'x\ny' });
    assert.throws(() => decodeEntry(bytes.subarray(0, bytes.length - 1)));
    assert.throws(() => decodeEntry(Buffer.from('MESSAGE\n\x05\x00')));
    assert.throws(() => decodeEntry(Buffer.from('A=b')));
  });
});
