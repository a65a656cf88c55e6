// The two uevent wire formats, byte for byte, and everything malformed a
// socket could deliver: parseUevent answers with a reason, never throws.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeKernelUevent, encodeLibudevUevent, LIMITS, parseUevent, type ParseResult, UDEV_MAGIC } from '../../../src/udev/uevent.ts';

const z = '\0';

/** What the kernel sends when loop0 gets a backing file (6.x), exactly. */
const KERNEL_CHANGE = Buffer.from(
  'change@/devices/virtual/block/loop0' + z +
  'ACTION=change' + z +
  'DEVPATH=/devices/virtual/block/loop0' + z +
  'SUBSYSTEM=block' + z +
  'DISK_MEDIA_CHANGE=1' + z +
  'MAJOR=7' + z +
  'MINOR=0' + z +
  'DEVNAME=loop0' + z +
  'DEVTYPE=disk' + z +
  'DISKSEQ=211' + z +
  'SEQNUM=1255' + z,
  'latin1',
);

const UDEV_PROPS = [
  'ACTION=add', 'DEVPATH=/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda', 'SUBSYSTEM=block',
  'DEVNAME=/dev/sda', 'DEVTYPE=disk', 'DISKSEQ=1', 'SEQNUM=2210', 'USEC_INITIALIZED=3104452', 'MAJOR=8', 'MINOR=0',
  'ID_ATA=1', 'ID_TYPE=disk', 'ID_BUS=ata', 'ID_MODEL=QEMU_HARDDISK', 'ID_SERIAL=QEMU_HARDDISK_QM00001',
  'ID_WWN=0x5000c500a1b2c3d4', 'ID_PATH=pci-0000:00:1f.2-ata-1', 'ID_PATH_TAG=pci-0000_00_1f_2-ata-1',
  'DEVLINKS=/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001 /dev/disk/by-path/pci-0000:00:1f.2-ata-1', 'TAGS=:systemd:', 'CURRENT_TAGS=:systemd:',
];

/** udevd's header, written field by field (not with the encoder under test). */
function libudev(props: string[], o: { le?: boolean; headerSize?: number; off?: number; len?: number; magic?: number } = {}): Buffer {
  const le = o.le ?? true;
  const body = Buffer.from(props.map((p) => p + z).join(''), 'utf8');
  const headerSize = o.headerSize ?? 40;
  // an absurd header_size is a lie in the field, not bytes on the wire
  const h = Buffer.alloc(Math.max(40, Math.min(headerSize, 256)));
  h.write('libudev\0', 0, 'latin1');
  h.writeUInt32BE(o.magic ?? 0xfeedcafe, 8);
  const w = (v: number, at: number) => (le ? h.writeUInt32LE(v, at) : h.writeUInt32BE(v, at));
  w(headerSize, 12);
  w(o.off ?? h.length, 16);
  w(o.len ?? body.length, 20);
  h.writeUInt32BE(0x1d5a3ab9, 24); // filter_subsystem_hash
  h.writeUInt32BE(0xabcdef01, 28);
  h.writeUInt32BE(0x00000400, 32);
  h.writeUInt32BE(0x00100000, 36);
  return Buffer.concat([h, body]);
}

function ok(r: ParseResult) {
  assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
  return r;
}

function rejected(r: ParseResult, reason: string) {
  assert.equal(r.ok, false, 'expected a rejection');
  if (!r.ok) assert.equal(r.reason, reason, r.detail);
}

describe('kernel uevent format', () => {
  it('parses ACTION@DEVPATH and every KEY=VALUE', () => {
    const r = ok(parseUevent(KERNEL_CHANGE));
    assert.deepEqual(r.uevent, {
      action: 'change',
      devpath: '/devices/virtual/block/loop0',
      subsystem: 'block',
      seqnum: '1255',
      source: 'kernel',
      props: {
        ACTION: 'change', DEVPATH: '/devices/virtual/block/loop0', SUBSYSTEM: 'block', DISK_MEDIA_CHANGE: '1',
        MAJOR: '7', MINOR: '0', DEVNAME: 'loop0', DEVTYPE: 'disk', DISKSEQ: '211', SEQNUM: '1255',
      },
    });
    assert.equal(r.header, undefined);
  });
  it('accepts a datagram without the final NUL and a view into a larger buffer', () => {
    ok(parseUevent(KERNEL_CHANGE.subarray(0, KERNEL_CHANGE.length - 1)));
    const big = Buffer.alloc(KERNEL_CHANGE.length + 100, 0x41);
    KERNEL_CHANGE.copy(big, 50);
    const r = ok(parseUevent(big.subarray(50, 50 + KERNEL_CHANGE.length)));
    assert.equal(r.uevent.seqnum, '1255');
  });
  it('keeps the last value of a repeated key, and decodes non-UTF-8 bytes without failing', () => {
    const b = Buffer.concat([Buffer.from('add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0SEQNUM=2\0SERIAL='), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('\0')]);
    const r = ok(parseUevent(b));
    assert.equal(r.uevent.seqnum, '2');
    assert.equal(r.uevent.props.SERIAL, '\ufffd\ufffdA');
  });
  it('encodeKernelUevent writes the same bytes as the kernel', () => {
    const props = ok(parseUevent(KERNEL_CHANGE)).uevent.props;
    assert.deepEqual(encodeKernelUevent(props), KERNEL_CHANGE);
  });
  const bad: [string, string, string][] = [
    ['no header', 'ACTION=add\0DEVPATH=/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_header'],
    ['empty action', '@/devices/x\0ACTION=add\0', 'bad_header'],
    ['empty devpath', 'add@\0ACTION=add\0', 'bad_header'],
    ['relative devpath', 'add@devices/x\0ACTION=add\0DEVPATH=devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_header'],
    ['action not a word', 'ADD!@/devices/x\0ACTION=ADD!\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_header'],
    ['header only', 'add@/devices/x', 'missing_property'],
    ['no SEQNUM', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=block\0', 'missing_property'],
    ['no SUBSYSTEM', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=1\0', 'missing_property'],
    ['header and ACTION disagree', 'add@/devices/x\0ACTION=remove\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'header_mismatch'],
    ['header and DEVPATH disagree', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/y\0SUBSYSTEM=block\0SEQNUM=1\0', 'header_mismatch'],
    ['SEQNUM not a number', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=12a\0', 'bad_seqnum'],
    ['SEQNUM too long', `add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=${'9'.repeat(21)}\0`, 'bad_seqnum'],
    ['entry without =', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0JUNK\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_property'],
    ['empty key', 'add@/devices/x\0ACTION=add\0=v\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_property'],
    ['key with a space', 'add@/devices/x\0ACTION=add\0A B=v\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_property'],
    ['empty entry in the middle', 'add@/devices/x\0ACTION=add\0\0DEVPATH=/devices/x\0SUBSYSTEM=block\0SEQNUM=1\0', 'bad_property'],
    ['SUBSYSTEM with a slash', 'add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=a/b\0SEQNUM=1\0', 'bad_property'],
  ];
  for (const [what, text, reason] of bad) it(`rejects: ${what}`, () => rejected(parseUevent(Buffer.from(text, 'latin1')), reason));
  it('accepts trailing NUL padding', () => {
    ok(parseUevent(Buffer.concat([KERNEL_CHANGE, Buffer.alloc(16)])));
  });
});

describe('libudev (udevd) format', () => {
  it('parses the header fields and the properties (little-endian host)', () => {
    const r = ok(parseUevent(libudev(UDEV_PROPS), { littleEndian: true }));
    assert.equal(r.uevent.source, 'udev');
    assert.equal(r.uevent.action, 'add');
    assert.equal(r.uevent.subsystem, 'block');
    assert.equal(r.uevent.seqnum, '2210');
    assert.equal(r.uevent.props.ID_WWN, '0x5000c500a1b2c3d4');
    assert.equal(r.uevent.props.DEVNAME, '/dev/sda');
    assert.equal(Object.keys(r.uevent.props).length, UDEV_PROPS.length);
    const body = UDEV_PROPS.map((p) => p + z).join('');
    assert.deepEqual(r.header, {
      magic: UDEV_MAGIC, headerSize: 40, propertiesOff: 40, propertiesLen: Buffer.byteLength(body),
      subsystemHash: 0x1d5a3ab9, devtypeHash: 0xabcdef01, tagBloomHi: 0x400, tagBloomLo: 0x100000,
    });
  });
  it('reads the size fields in the byte order asked for (a big-endian sender)', () => {
    const be = libudev(UDEV_PROPS, { le: false });
    ok(parseUevent(be, { littleEndian: false }));
    rejected(parseUevent(be, { littleEndian: true }), 'bad_offsets');
  });
  it('accepts a longer header from a newer udevd, properties after it', () => {
    const r = ok(parseUevent(libudev(UDEV_PROPS, { headerSize: 48 }), { littleEndian: true }));
    assert.equal(r.header?.headerSize, 48);
    assert.equal(r.header?.propertiesOff, 48);
  });
  it('parses only properties_len bytes (what follows is ignored)', () => {
    const b = Buffer.concat([libudev(UDEV_PROPS), Buffer.from('EXTRA=1\0')]);
    const r = ok(parseUevent(b, { littleEndian: true }));
    assert.equal(r.uevent.props.EXTRA, undefined);
  });
  it('udev messages may lack SEQNUM', () => {
    const r = ok(parseUevent(libudev(['ACTION=change', 'DEVPATH=/devices/virtual/block/dm-0', 'SUBSYSTEM=block', 'DM_NAME=vg-lv']), { littleEndian: true }));
    assert.equal(r.uevent.seqnum, '');
  });
  it('encodeLibudevUevent round-trips', () => {
    const props = { ACTION: 'remove', DEVPATH: '/devices/virtual/block/loop3', SUBSYSTEM: 'block', SEQNUM: '77', ID_FS_TYPE: 'ext4' };
    for (const littleEndian of [true, false]) {
      const r = ok(parseUevent(encodeLibudevUevent(props, { littleEndian }), { littleEndian }));
      assert.deepEqual(r.uevent.props, props);
    }
  });
  const cases: [string, () => Buffer, string][] = [
    ['shorter than the header', () => libudev(UDEV_PROPS).subarray(0, 39), 'bad_header'],
    ['prefix only', () => Buffer.from('libudev\0'), 'bad_header'],
    ['bad magic', () => libudev(UDEV_PROPS, { magic: 0xcafefeed }), 'bad_magic'],
    ['magic in host order', () => {
      const b = libudev(UDEV_PROPS);
      b.writeUInt32LE(0xfeedcafe, 8);
      return b;
    }, 'bad_magic'],
    ['header_size below 40', () => libudev(UDEV_PROPS, { headerSize: 39 }), 'bad_offsets'],
    ['header_size beyond the datagram', () => libudev(UDEV_PROPS, { headerSize: 0x7fffffff }), 'bad_offsets'],
    ['properties inside the header', () => libudev(UDEV_PROPS, { off: 20 }), 'bad_offsets'],
    ['properties_off beyond the datagram', () => libudev(UDEV_PROPS, { off: 0xffffffff }), 'bad_offsets'],
    ['properties_len beyond the datagram', () => libudev(UDEV_PROPS, { len: 100_000 }), 'bad_offsets'],
    ['properties_off + properties_len wrapping 32 bits', () => libudev(UDEV_PROPS, { off: 40, len: 0xfffffff0 }), 'bad_offsets'],
    ['properties_len 0', () => libudev(UDEV_PROPS, { len: 0 }), 'bad_offsets'],
    ['truncated properties region', () => {
      const b = libudev(UDEV_PROPS);
      return b.subarray(0, b.length - 10);
    }, 'bad_offsets'],
    ['no ACTION', () => libudev(['DEVPATH=/devices/x', 'SUBSYSTEM=block']), 'missing_property'],
    ['no DEVPATH', () => libudev(['ACTION=add', 'SUBSYSTEM=block']), 'missing_property'],
    ['relative DEVPATH', () => libudev(['ACTION=add', 'DEVPATH=x', 'SUBSYSTEM=block']), 'bad_property'],
  ];
  for (const [what, make, reason] of cases) it(`rejects: ${what}`, () => rejected(parseUevent(make(), { littleEndian: true }), reason));
});

describe('bounds and garbage', () => {
  const base = ['ACTION=add', 'DEVPATH=/devices/x', 'SUBSYSTEM=block', 'SEQNUM=1'];
  it('rejects empty input and datagrams over the size limit', () => {
    rejected(parseUevent(new Uint8Array(0)), 'empty');
    rejected(parseUevent(Buffer.alloc(LIMITS.maxMessage + 1, 0x41)), 'too_large');
  });
  it('rejects too many properties', () => {
    const props = [...base, ...Array.from({ length: LIMITS.maxProperties }, (_, i) => `P${i}=x`)];
    rejected(parseUevent(libudev(props), { littleEndian: true }), 'too_many_properties');
    ok(parseUevent(libudev([...base, ...Array.from({ length: LIMITS.maxProperties - base.length }, (_, i) => `P${i}=x`)]), { littleEndian: true }));
  });
  it('rejects an over-long key or value', () => {
    rejected(parseUevent(libudev([...base, `${'K'.repeat(LIMITS.maxKeyBytes + 1)}=v`]), { littleEndian: true }), 'property_too_long');
    rejected(parseUevent(libudev([...base, `V=${'v'.repeat(LIMITS.maxValueBytes + 1)}`]), { littleEndian: true }), 'property_too_long');
    ok(parseUevent(libudev([...base, `V=${'v'.repeat(LIMITS.maxValueBytes)}`]), { littleEndian: true }));
  });
  it('rejects binary garbage and non-buffers without throwing', () => {
    rejected(parseUevent(Buffer.from([0, 1, 2, 3, 0xff, 0x40, 0])), 'bad_header');
    const r = parseUevent('add@/x' as unknown as Uint8Array);
    assert.equal(r.ok, false);
  });

  it('never throws on 20,000 random mutations of valid datagrams', () => {
    // xorshift32: the same run every time, so a failure reproduces
    let s = 0x9e3779b9;
    const rnd = (n: number) => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s % n;
    };
    const seeds = [KERNEL_CHANGE, libudev(UDEV_PROPS), libudev(UDEV_PROPS, { headerSize: 48 }), libudev(base)];
    const interesting = [0, 0x3d, 0x40, 0xff, 0x2f, 0x0a, 0x80, 0x7f];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const seed = seeds[rnd(seeds.length)]!;
      let b = Buffer.from(seed);
      const edits = 1 + rnd(6);
      for (let e = 0; e < edits; e++) {
        const op = rnd(7);
        if (b.length === 0) b = Buffer.from([rnd(256)]);
        const at = rnd(b.length);
        if (op === 0) b[at] = rnd(256);
        else if (op === 1) b[at] = interesting[rnd(interesting.length)]!;
        else if (op === 2) b = b.subarray(0, at);
        else if (op === 3) b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rnd(16) }, () => rnd(256))), b.subarray(at)]);
        else if (op === 4 && b.length >= 24 && b.subarray(0, 8).toString('latin1') === 'libudev\0') b.writeUInt32LE(rnd(2) ? rnd(256) : (rnd(0x7fffffff) * 2) >>> 0, 12 + 4 * rnd(3));
        else if (op === 5) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd(8)))]);
        else if (op === 6) b = Buffer.concat([b, b.subarray(0, rnd(b.length))]);
      }
      let r: ParseResult;
      try {
        r = parseUevent(b, { littleEndian: true });
      } catch (err) {
        assert.fail(`threw on ${b.toString('hex')}: ${(err as Error).message}`);
      }
      if (r.ok) {
        accepted++;
        const u = r.uevent;
        assert.match(u.action, /^[a-z][a-z_]*$/);
        assert.equal(u.devpath[0], '/');
        assert.equal(u.props.ACTION, u.action);
        assert.equal(u.props.DEVPATH, u.devpath);
        assert.ok(u.seqnum === '' || /^\d+$/.test(u.seqnum));
        assert.ok(Object.keys(u.props).length <= LIMITS.maxProperties);
      } else {
        assert.equal(typeof r.reason, 'string');
        assert.equal(typeof r.detail, 'string');
      }
    }
    // the mutations must not all be trivially fatal: some survive
    assert.ok(accepted > 100, `only ${accepted} mutated datagrams parsed`);
  });
});
