// ueventToEvent: which uevents become which events, and what they carry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOG } from '../../../src/events/catalog.ts';
import { toElos } from '../../../src/events/elos.ts';
import { kmsgEventId } from '../../../src/events/ids.ts';
import { StorageEvent } from '../../../src/events/schema.ts';
import { deviceNameOf, EXT_LIMITS, eventTypeOf, type UeventContext, ueventEventId, ueventToEvent } from '../../../src/udev/events.ts';
import type { Uevent } from '../../../src/udev/uevent.ts';

const BOOT = '1c8e2f4a-9b3d-4c5e-8f70-112233445566';
const NOW_US = 1_763_812_345_123_456;

function uevent(action: string, extra: Record<string, string> = {}, source: 'kernel' | 'udev' = 'kernel'): Uevent {
  const props: Record<string, string> = {
    ACTION: action, DEVPATH: '/devices/virtual/block/loop0', SUBSYSTEM: 'block', MAJOR: '7', MINOR: '0', DEVNAME: 'loop0', DEVTYPE: 'disk', DISKSEQ: '9', SEQNUM: '1255', ...extra,
  };
  return { action, devpath: props.DEVPATH!, subsystem: props.SUBSYSTEM!, seqnum: props.SEQNUM ?? '', props, source };
}

function ctx(over: Partial<UeventContext> = {}): UeventContext {
  return { hostname: 'node-7', bootId: BOOT, subsystems: new Set(['block']), identity: null, nowUs: NOW_US, ...over };
}

describe('ueventToEvent', () => {
  it('add, remove, change become BLK_DEVICE_ADDED / REMOVED / CHANGED with the wire shape', () => {
    const cases: [string, string, number][] = [['add', 'BLK_DEVICE_ADDED', 7003], ['remove', 'BLK_DEVICE_REMOVED', 7004], ['change', 'BLK_DEVICE_CHANGED', 7005]];
    for (const [action, type, code] of cases) {
      const ev = ueventToEvent(uevent(action), ctx())!;
      assert.ok(ev, action);
      assert.equal(StorageEvent.safeParse(ev).success, true);
      assert.equal(ev.event_type, type);
      assert.equal(ev.system, 'block');
      assert.equal(ev.severity, CATALOG[type as 'BLK_DEVICE_ADDED'].floor ?? 'info');
      assert.equal(ev.severity, 'info');
      assert.equal(ev.hostname, 'node-7');
      assert.equal(ev.dev_name, 'loop0');
      assert.equal(ev.timestamp, 1_763_812_345);
      assert.equal(ev.extentions.timestamp_us, String(NOW_US));
      const elos = toElos(ev, 1);
      assert.equal(elos.messageCode, code);
      assert.equal(elos.source.appName, 'peripety/udev');
      assert.equal(elos.source.fileName, 'netlink:uevent');
    }
  });
  it('carries every property in extentions, plus kind, plugin, source and uevent_source', () => {
    const ev = ueventToEvent(uevent('change', { DISK_MEDIA_CHANGE: '1' }), ctx())!;
    assert.deepEqual(ev.extentions, {
      ACTION: 'change', DEVPATH: '/devices/virtual/block/loop0', SUBSYSTEM: 'block', MAJOR: '7', MINOR: '0', DEVNAME: 'loop0', DEVTYPE: 'disk',
      DISKSEQ: '9', SEQNUM: '1255', DISK_MEDIA_CHANGE: '1',
      kernel_dev: 'loop0', timestamp_us: String(NOW_US), kind: 'synthetic', plugin: 'udev', source: 'netlink:uevent', uevent_source: 'kernel',
    });
    assert.equal(ev.msg, 'Block device loop0 changed (media changed)');
  });
  it('udev events keep their ID_* properties', () => {
    const u = uevent('add', { DEVNAME: '/dev/sdb', ID_SERIAL: 'QEMU_HARDDISK_QM00002', ID_PATH: 'pci-0000:00:1f.2-ata-2', ID_WWN: '0x5000c500a1b2c3d4' }, 'udev');
    const ev = ueventToEvent({ ...u, devpath: '/devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sdb' }, ctx())!;
    assert.equal(ev.dev_name, 'sdb', '/dev/ stripped from DEVNAME');
    assert.equal(ev.extentions.ID_SERIAL, 'QEMU_HARDDISK_QM00002');
    assert.equal(ev.extentions.ID_PATH, 'pci-0000:00:1f.2-ata-2');
    assert.equal(ev.extentions.uevent_source, 'udev');
    assert.equal(ev.extentions.kernel_dev, 'sdb');
  });
  it('move, online and offline are changes; bind, unbind and unknown actions are no event', () => {
    const moved = ueventToEvent(uevent('move', { DEVPATH_OLD: '/devices/virtual/block/loop9' }), ctx())!;
    assert.equal(moved.event_type, 'BLK_DEVICE_CHANGED');
    assert.equal(moved.extentions.old_devpath, '/devices/virtual/block/loop9');
    assert.equal(moved.extentions.action, 'move');
    assert.equal(moved.msg, 'Block device loop0 was renamed (was loop9)');
    for (const a of ['online', 'offline']) {
      const ev = ueventToEvent(uevent(a), ctx())!;
      assert.equal(ev.event_type, 'BLK_DEVICE_CHANGED');
      assert.equal(ev.extentions.action, a);
      assert.equal(ev.msg, `Block device loop0 went ${a}`);
    }
    for (const a of ['bind', 'unbind', 'frobnicate']) assert.equal(ueventToEvent(uevent(a), ctx()), null, a);
    assert.equal(eventTypeOf('constructor'), null, 'no prototype keys');
  });
  it('selects subsystems: block by default, others when configured, * for all', () => {
    const scsi: Uevent = { ...uevent('add'), subsystem: 'scsi', devpath: '/devices/pci0000:00/host0/target0:0:0/0:0:0:0', props: { ACTION: 'add', DEVPATH: '/devices/pci0000:00/host0/target0:0:0/0:0:0:0', SUBSYSTEM: 'scsi', DEVTYPE: 'scsi_device', SEQNUM: '7' } };
    assert.equal(ueventToEvent(scsi, ctx()), null);
    const ev = ueventToEvent(scsi, ctx({ subsystems: new Set(['block', 'scsi']) }))!;
    assert.equal(ev.dev_name, '0:0:0:0', 'no DEVNAME: the last DEVPATH component');
    assert.equal(ev.msg, 'Device (scsi) 0:0:0:0 was added');
    assert.ok(ueventToEvent(scsi, ctx({ subsystems: new Set(['*']) })));
  });
  it('dev_wwid: the resolver identity first (as kmsg events), then ID_WWN / ID_SERIAL, else ""', () => {
    const withIds = uevent('add', { ID_WWN: '0x5000c500a1b2c3d4', ID_WWN_WITH_EXTENSION: '0x5000c500a1b2c3d40000', ID_SERIAL: 'S1' }, 'udev');
    const a = ueventToEvent(withIds, ctx({ identity: { name: 'sdb', wwid: 'naa.5000c500a1b2c3d4', dmName: 'mpatha', preferredPath: '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4' } }))!;
    assert.equal(a.dev_wwid, 'naa.5000c500a1b2c3d4');
    assert.equal(a.extentions.wwid_source, 'sysfs');
    assert.equal(a.extentions.dm_name, 'mpatha');
    assert.equal(a.extentions.preferred_path, '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4');
    const b = ueventToEvent(withIds, ctx())!;
    assert.equal(b.dev_wwid, '0x5000c500a1b2c3d40000');
    assert.equal(b.extentions.wwid_source, 'udev');
    const { ID_WWN_WITH_EXTENSION: _x, ...noExt } = withIds.props;
    assert.equal(ueventToEvent({ ...withIds, props: noExt }, ctx())!.dev_wwid, '0x5000c500a1b2c3d4');
    assert.equal(ueventToEvent(uevent('add', { ID_SERIAL: 'S1' }, 'udev'), ctx())!.dev_wwid, 'S1');
    const none = ueventToEvent(uevent('add'), ctx())!;
    assert.equal(none.dev_wwid, '');
    assert.equal(none.extentions.wwid_source, undefined);
    assert.equal(ueventToEvent(uevent('add'), ctx({ identity: { name: 'loop0', wwid: '' } }))!.dev_wwid, '');
  });
  it('previous_wwid when the identity changed (a loop device bound to another file)', () => {
    const ev = ueventToEvent(uevent('change'), ctx({ identity: { name: 'loop0', wwid: 'loop:/b.img' }, previous: { name: 'loop0', wwid: 'loop:/a.img' } }))!;
    assert.equal(ev.dev_wwid, 'loop:/b.img');
    assert.equal(ev.extentions.previous_wwid, 'loop:/a.img');
    const same = ueventToEvent(uevent('change'), ctx({ identity: { name: 'loop0', wwid: 'loop:/b.img' }, previous: { name: 'loop0', wwid: 'loop:/b.img' } }))!;
    assert.equal(same.extentions.previous_wwid, undefined);
    const detached = ueventToEvent(uevent('change'), ctx({ identity: { name: 'loop0', wwid: '' }, previous: { name: 'loop0', wwid: 'loop:/b.img' } }))!;
    assert.equal(detached.dev_wwid, '');
    assert.equal(detached.extentions.previous_wwid, 'loop:/b.img');
  });
  it('event ids: name-based on boot id + SEQNUM (both copies of a uevent share it), random without SEQNUM', () => {
    const k = ueventToEvent(uevent('add'), ctx())!;
    const u = ueventToEvent(uevent('add', {}, 'udev'), ctx())!;
    assert.equal(k.event_id, u.event_id);
    assert.equal(k.event_id, ueventEventId(BOOT, '1255'));
    assert.match(k.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(k.event_id, kmsgEventId(BOOT, 1255), 'not the id of kernel log record 1255');
    assert.notEqual(k.event_id, ueventToEvent(uevent('add'), ctx({ bootId: 'ffffffff-0000-4000-8000-000000000000' }))!.event_id);
    const noSeq = uevent('add', {}, 'udev');
    delete noSeq.props.SEQNUM;
    const r1 = ueventToEvent({ ...noSeq, seqnum: '' }, ctx())!;
    const r2 = ueventToEvent({ ...noSeq, seqnum: '' }, ctx())!;
    assert.notEqual(r1.event_id, r2.event_id);
    assert.match(r1.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4/);
  });
  it('sanitizes and bounds property keys and values; our own keys cannot be overwritten', () => {
    const props: Record<string, string> = { 'kind': 'raw', 'plugin': 'evil', 'A B/C': 'x', 'LONG': 'v'.repeat(EXT_LIMITS.maxValueLength + 10), [`K${'k'.repeat(100)}`]: 'y' };
    const ev = ueventToEvent(uevent('change', props, 'udev'), ctx())!;
    assert.equal(ev.extentions.kind, 'synthetic');
    assert.equal(ev.extentions.plugin, 'udev');
    assert.equal(ev.extentions.UEVENT_kind, 'raw');
    assert.equal(ev.extentions.UEVENT_plugin, 'evil');
    assert.equal(ev.extentions.A_B_C, 'x');
    assert.equal(ev.extentions.LONG!.length, EXT_LIMITS.maxValueLength);
    assert.ok(Object.keys(ev.extentions).every((k) => k.length <= EXT_LIMITS.maxKeyLength + 'UEVENT_'.length));
    const many: Record<string, string> = {};
    for (let i = 0; i < 400; i++) many[`P${i}`] = String(i);
    const big = ueventToEvent(uevent('change', many), ctx())!;
    const fromProps = Object.keys(big.extentions).filter((k) => /^[A-Z]/.test(k) && k !== 'UEVENT_TRUNCATED');
    assert.equal(fromProps.length, EXT_LIMITS.maxProperties);
    assert.equal(big.extentions.UEVENT_TRUNCATED, String(9 + 400 - EXT_LIMITS.maxProperties));
    assert.equal(big.extentions.kind, 'synthetic');
  });
  it('partition and message wording', () => {
    const part = ueventToEvent(uevent('add', { DEVNAME: 'loop0p1', DEVTYPE: 'partition' }), ctx())!;
    assert.equal(part.msg, 'Partition loop0p1 was added');
    assert.equal(ueventToEvent(uevent('remove'), ctx())!.msg, 'Block device loop0 was removed');
    assert.equal(ueventToEvent(uevent('change', { RESIZE: '1' }), ctx())!.msg, 'Block device loop0 changed (resized)');
    assert.equal(ueventToEvent(uevent('change', { DISK_RO: '1' }), ctx())!.msg, 'Block device loop0 changed (now read-only)');
  });
  it('deviceNameOf strips /dev/ and falls back to the DEVPATH', () => {
    assert.equal(deviceNameOf(uevent('add', { DEVNAME: '/dev/nvme0n1' })), 'nvme0n1');
    assert.equal(deviceNameOf(uevent('add', { DEVNAME: '' })), 'loop0');
  });
});
