// The pure mountinfo parser: fields, optional fields, escapes, malformed lines, lookups.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findMountsByMajMin, findMountsBySource, MountTable, parseMountinfo, parseMountinfoLine, primaryMount, unescapeMountField } from '../../../src/device/mountinfo.ts';

const SAMPLE = [
  '36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '41 22 8:17 / /mnt/data\\040disk rw,relatime shared:11 - ext4 /dev/sdb1 rw,errors=remount-ro',
  '43 22 7:0 / /mnt/loop rw,relatime - ext4 /dev/loop0 rw',
  '44 22 0:45 / /srv rw,relatime shared:14 master:3 propagate_from:2 - btrfs /dev/nvme0n1p1 rw,ssd,subvol=/',
  '45 22 0:50 / /tmp/a\\011b\\012c\\134d rw - tmpfs tmpfs rw',
  '',
].join('\n');

describe('mountinfo', () => {
  it('parses every field of the proc(5) example', () => {
    assert.deepEqual(parseMountinfoLine('36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue'), {
      mountId: 36,
      parentId: 35,
      majmin: '98:0',
      root: '/mnt1',
      mountPoint: '/mnt/parent',
      options: 'rw,noatime',
      optional: ['master:1'],
      fsType: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    });
  });

  it('handles zero and several optional fields', () => {
    const e = parseMountinfo(SAMPLE);
    assert.equal(e.length, 6);
    assert.deepEqual(e.find((x) => x.mountPoint === '/mnt/loop')?.optional, []);
    assert.deepEqual(e.find((x) => x.mountPoint === '/srv')?.optional, ['shared:14', 'master:3', 'propagate_from:2']);
  });

  it('undoes octal escapes', () => {
    assert.equal(unescapeMountField('/mnt/data\\040disk'), '/mnt/data disk');
    assert.equal(unescapeMountField('plain'), 'plain');
    const e = parseMountinfo(SAMPLE);
    assert.ok(e.some((x) => x.mountPoint === '/mnt/data disk'));
    assert.ok(e.some((x) => x.mountPoint === '/tmp/a\tb\nc\\d'));
  });

  it('keeps an empty source field', () => {
    const e = parseMountinfoLine('50 22 0:60 / /x rw - tmpfs  rw');
    assert.equal(e?.source, '');
    assert.equal(e?.superOptions, 'rw');
  });

  it('skips malformed lines', () => {
    for (const bad of ['', 'garbage', '1 2 3 4 5 6 - a b c', 'x 2 8:1 / /m rw - ext4 /dev/sda1 rw', '1 2 8:1 / /m rw shared:1 ext4 /dev/sda1 rw', '1 2 8:1 / /m rw -', '1 2 8:1 / /m rw - ext4']) {
      assert.equal(parseMountinfoLine(bad), null, bad);
    }
    assert.equal(parseMountinfo('junk\n' + SAMPLE + '\x00\xff\n').length, 6);
  });

  it('finds mounts by major:minor and by source, and prefers the filesystem root', () => {
    const e = parseMountinfo('40 22 8:17 /export /srv/export rw - ext4 /dev/sdb1 rw\n' + SAMPLE);
    assert.deepEqual(findMountsByMajMin(e, '8:17').map((x) => x.mountPoint), ['/srv/export', '/mnt/data disk']);
    assert.equal(primaryMount(findMountsByMajMin(e, '8:17'))?.mountPoint, '/mnt/data disk');
    assert.deepEqual(findMountsBySource(e, '/dev/loop0').map((x) => x.mountPoint), ['/mnt/loop']);
    assert.equal(primaryMount([]), undefined);
    const t = new MountTable(e);
    assert.equal(t.withMajMin('7:0')[0]?.mountPoint, '/mnt/loop');
    assert.equal(t.withSource('/dev/nvme0n1p1')[0]?.fsType, 'btrfs');
    assert.deepEqual(t.withMajMin('1:1'), []);
  });
});
