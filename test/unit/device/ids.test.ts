// Pure identity helpers: name checks, wwid normalisation, NVMe id derivation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDmName, isHctl, isKernelName, isMajMin, normalizeWwid, nvmeIdFromAttrs, parseDevAttr, parsePartitionAttr, partitionWwid } from '../../../src/device/ids.ts';

describe('device ids', () => {
  it('accepts plain kernel names and rejects anything that could leave a directory', () => {
    for (const ok of ['sdb', 'sdb1', 'dm-0', 'md0', 'md_d0', 'nvme0n1p1', 'loop0', 'mmcblk0p1', 'cciss!c0d0', 'zram0']) assert.ok(isKernelName(ok), ok);
    for (const bad of ['', '.', '..', '../../etc', 'sdb/..', '/dev/sdb', 'sd b', 'sdb\0', '8:16', '-sdb', '.hidden', 'a'.repeat(65), 'sdb\n']) {
      assert.equal(isKernelName(bad), false, JSON.stringify(bad));
    }
    assert.equal(isKernelName(undefined), false);
    assert.equal(isKernelName(42), false);
  });

  it('checks dm names, major:minor and H:C:T:L', () => {
    assert.ok(isDmName('mpatha'));
    assert.ok(isDmName('vg0-lv_data'));
    assert.equal(isDmName('../x'), false);
    assert.equal(isDmName('a/b'), false);
    assert.equal(isDmName('..'), false);
    assert.equal(isDmName('a'.repeat(129)), false);
    assert.ok(isMajMin('8:16'));
    assert.equal(isMajMin('8:16:0'), false);
    assert.equal(isMajMin('8:'), false);
    assert.ok(isHctl('2:0:0:0'));
    assert.ok(isHctl('10:0:3:1099511627776'));
    assert.equal(isHctl('2:0:0'), false);
    assert.equal(isHctl('2:0:0:0/../..'), false);
  });

  it('collapses whitespace runs in a wwid', () => {
    assert.equal(normalizeWwid('naa.5000c500a1b2c3d4\n'), 'naa.5000c500a1b2c3d4');
    assert.equal(normalizeWwid('t10.ATA     QEMU HARDDISK   QM00001'), 't10.ATA-QEMU-HARDDISK-QM00001');
    assert.equal(normalizeWwid('  t10.ATA\t QEMU\0\0 X  \n'), 't10.ATA-QEMU-X');
    assert.equal(normalizeWwid(''), '');
    assert.equal(normalizeWwid('   \n'), '');
  });

  it('names partitions after their disk', () => {
    assert.equal(partitionWwid('naa.5000c500a1b2c3d4', 1), 'naa.5000c500a1b2c3d4-part1');
    assert.equal(partitionWwid('', '2'), '');
  });

  it('derives an NVMe id like the kernel wwid attribute', () => {
    assert.equal(nvmeIdFromAttrs({ uuid: '5f9b2f1e-6d2c-4c43-9b0a-0e2f3c4d5e6f\n', nguid: '0025385b-71b0-0010-8ce3-8d4f2a1b3c4d' }), 'uuid.5f9b2f1e-6d2c-4c43-9b0a-0e2f3c4d5e6f');
    assert.equal(nvmeIdFromAttrs({ uuid: '00000000-0000-0000-0000-000000000000', nguid: '0025385b-71b0-0010-8ce3-8d4f2a1b3c4d\n' }), 'eui.0025385b71b000108ce38d4f2a1b3c4d');
    assert.equal(nvmeIdFromAttrs({ nguid: '00000000-0000-0000-0000-000000000000', eui: '00 25 38 b4 31 b2 c3 d4\n' }), 'eui.002538b431b2c3d4');
    assert.equal(nvmeIdFromAttrs({ eui: 'zz zz' }), '');
    assert.equal(nvmeIdFromAttrs({}), '');
  });

  it('parses dev and partition attributes', () => {
    assert.equal(parseDevAttr('8:16\n'), '8:16');
    assert.equal(parseDevAttr('junk'), null);
    assert.equal(parseDevAttr(null), null);
    assert.equal(parsePartitionAttr('1\n'), '1');
    assert.equal(parsePartitionAttr('x'), null);
    assert.equal(parsePartitionAttr(null), null);
  });
});
