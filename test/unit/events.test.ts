import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOG, EVENT_TYPES, messageCodeOf } from '../../src/events/catalog.ts';
import { CLASSIFICATION, toElos } from '../../src/events/elos.ts';
import { kmsgEventId, uuidV5 } from '../../src/events/ids.ts';
import { severityOfLevel, StorageEvent, worse } from '../../src/events/schema.ts';

const sample: StorageEvent = {
  hostname: 'node-7', severity: 'error', system: 'block', timestamp: 1763812345,
  event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11', event_type: 'BLK_IO_ERROR', dev_wwid: 'naa.5000c500a1b2c3d4',
  dev_name: 'sdb', msg: 'I/O error on sdb (READ, sector 2048)',
  extentions: { sector: '2048', op: 'READ', kernel_dev: 'sdb', timestamp_us: '1763812345123456', kernel_level: '3', kmsg_seq: '5', plugin: 'block', source: '/dev/kmsg' },
};

describe('event model', () => {
  it('the docs/events.md example validates against the wire schema', () => {
    assert.equal(StorageEvent.safeParse(sample).success, true);
    assert.equal(StorageEvent.safeParse({ ...sample, severity: 'fatal' }).success, false);
    assert.equal(StorageEvent.safeParse({ ...sample, system: 'net' }).success, false);
    assert.equal(StorageEvent.safeParse({ ...sample, extentions: { a: 1 } }).success, false);
  });
  it('every event type has a system and a messageCode in the documented ranges', () => {
    assert.ok(EVENT_TYPES.length >= 50);
    for (const t of EVENT_TYPES) {
      const e = CATALOG[t];
      assert.match(t, /^[A-Z][A-Z0-9_]+$/);
      assert.ok(e.messageCode >= 6000 && e.messageCode < 8000, `${t} messageCode ${e.messageCode}`);
      if (e.hardware) assert.ok(e.messageCode < 7000 || t.endsWith('OFFLINE') || t === 'NVME_DEVICE_REMOVED', `${t}: hardware faults are 6xxx`);
    }
    assert.equal(CATALOG.BLK_DEVICE_ADDED.messageCode, 7003);
    assert.equal(CATALOG.BLK_DEVICE_REMOVED.messageCode, 7004);
  });
  it('I/O errors split into read 6001 and write 6002', () => {
    assert.equal(messageCodeOf('BLK_IO_ERROR', 'READ'), 6001);
    assert.equal(messageCodeOf('BLK_IO_ERROR', 'WRITE'), 6002);
    assert.equal(messageCodeOf('BLK_IO_ERROR', 'FLUSH'), CATALOG.BLK_IO_ERROR.messageCode);
    assert.equal(messageCodeOf('SCSI_TIMEOUT', 'READ'), CATALOG.SCSI_TIMEOUT.messageCode);
    assert.equal(messageCodeOf('NOT_A_TYPE', undefined), 0);
  });
  it('severity follows the kernel level and only rises', () => {
    assert.deepEqual([0, 3, 4, 5, 7].map(severityOfLevel), ['error', 'error', 'warn', 'info', 'info']);
    assert.equal(worse('info', 'error'), 'error');
    assert.equal(worse('error', 'warn'), 'error');
  });
  it('derives the elos view', () => {
    const e = toElos(sample, 42);
    assert.deepEqual(e.date, { sec: 1763812345, nsec: 123456000 });
    assert.deepEqual(e.source, { appName: 'peripety/block', fileName: '/dev/kmsg', pid: 42 });
    assert.equal(e.severity, 2);
    assert.equal(e.hardwareid, 'node-7');
    assert.equal(e.messageCode, 6001);
    assert.equal(e.classification, CLASSIFICATION.KERNEL | CLASSIFICATION.STORAGE | CLASSIFICATION.HARDWARE);
    assert.equal(e.payload, sample.msg);
    assert.equal(toElos({ ...sample, extentions: { ...sample.extentions, kernel_level: '1' } }).severity, 1);
    assert.equal(toElos({ ...sample, severity: 'warn', extentions: { ...sample.extentions, kernel_level: '4' } }).severity, 3);
    assert.equal(toElos({ ...sample, severity: 'info', extentions: {} }).severity, 4);
    assert.equal(toElos({ ...sample, event_type: 'FS_MOUNTED', extentions: {} }).classification, CLASSIFICATION.STORAGE);
  });
  it('kmsg event ids are stable UUID v5 per boot and sequence number', () => {
    const a = kmsgEventId('3abeb66d-af25-4510-a658-b2fcb7e27605', 101);
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(a, kmsgEventId('3abeb66d-af25-4510-a658-b2fcb7e27605', 101));
    assert.notEqual(a, kmsgEventId('3abeb66d-af25-4510-a658-b2fcb7e27605', 102));
    assert.notEqual(a, kmsgEventId('00000000-af25-4510-a658-b2fcb7e27605', 101));
    assert.notEqual(uuidV5('x'), uuidV5('y'));
  });
  it('uuidV5 follows RFC 9562 (checked against Python uuid.uuid5 with the same namespace)', () => {
    // python3 -c 'import uuid; print(uuid.uuid5(uuid.UUID("6f1c2b7e-4a3d-4e0b-9c5f-8a1d2e3b4c5d"), NAME))'
    assert.equal(uuidV5('3abeb66d-af25-4510-a658-b2fcb7e27605/101'), '62e54615-4e83-5ca7-b00a-22bdcd8252b8');
    assert.equal(uuidV5('sdb/é/ü'), '03d0e37c-2b82-5591-8ead-5fdb8b8088cc');
  });
  it('kmsgEventId is uuidV5 of "<boot id>/<seq>", also when calls interleave', () => {
    const boots = ['3abeb66d-af25-4510-a658-b2fcb7e27605', 'ffffffff-0000-4000-8000-000000000000'];
    for (let i = 0; i < 50; i++) {
      const boot = boots[i % 3 === 0 ? 1 : 0]!;
      const seq = i * 7919;
      const id = kmsgEventId(boot, seq);
      if (i % 5 === 0) uuidV5(`unrelated name ${i}`);
      assert.equal(id, uuidV5(`${boot}/${seq}`));
      assert.equal(kmsgEventId(boot, seq), id);
    }
    assert.equal(kmsgEventId('3abeb66d-af25-4510-a658-b2fcb7e27605', 101), '62e54615-4e83-5ca7-b00a-22bdcd8252b8');
  });
});
