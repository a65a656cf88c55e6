// SysfsResolver against the fake sysfs + /dev tree (test/helpers/fake-sysfs.ts):
// every lookup of docs/events.md §4, stacking, filesystems, describe(), the cache
// (hits, invalidation, TTL, bound) and hostile input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SysfsResolver } from '../../../src/device/resolver.ts';
import type { ResolverRoots } from '../../../src/contracts/device.ts';
import { FAKE, makeFakeSysfs } from '../../helpers/fake-sysfs.ts';

function fresh(): { dir: string; roots: ResolverRoots } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-sysfs-'));
  return { dir, roots: makeFakeSysfs(dir) };
}

/** The real directory of a device in the fake tree (for replacing files under it). */
function devDir(roots: ResolverRoots, name: string): string {
  return path.join(roots.sysfs, 'class', 'block', name);
}

describe('SysfsResolver lookups', () => {
  let dir = '';
  let roots: ResolverRoots;
  let r: SysfsResolver;
  before(() => {
    ({ dir, roots } = fresh());
    r = new SysfsResolver(roots);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('SCSI disk: device/wwid, major:minor and the wwn- preferred path', () => {
    assert.deepEqual(r.resolve({ printed: 'sdb', name: 'sdb' }), { name: 'sdb', wwid: FAKE.sdbWwid, majmin: '8:16', preferredPath: FAKE.wwnLink });
  });

  it('collapses whitespace in a t10 wwid', () => {
    assert.equal(r.resolve({ printed: 'sdd', name: 'sdd' })?.wwid, FAKE.sddWwid);
    assert.equal(r.resolve({ printed: 'sde', name: 'sde' })?.wwid, FAKE.sdeWwid);
  });

  it('partition: <disk wwid>-partN, its own wwn- link', () => {
    assert.deepEqual(r.resolve({ printed: 'sdb1', name: 'sdb1' }), { name: 'sdb1', wwid: `${FAKE.sdbWwid}-part1`, majmin: '8:17', preferredPath: `${FAKE.wwnLink}-part1` });
    assert.equal(r.resolve({ printed: 'sdd1', name: 'sdd1' })?.wwid, `${FAKE.sddWwid}-part1`);
  });

  it('NVMe: wwid file, partition, nguid fallback', () => {
    assert.deepEqual(r.resolve({ printed: 'nvme0n1', name: 'nvme0n1' }), { name: 'nvme0n1', wwid: FAKE.nvmeWwid, majmin: '259:0' });
    assert.equal(r.resolve({ printed: 'nvme0n1p1', name: 'nvme0n1p1' })?.wwid, `${FAKE.nvmeWwid}-part1`);
    assert.equal(r.resolve({ printed: 'nvme1n1', name: 'nvme1n1' })?.wwid, FAKE.nvme1Wwid);
  });

  it('device-mapper: dm/uuid and dm/name', () => {
    assert.deepEqual(r.resolve({ printed: 'dm-0', name: 'dm-0' }), { name: 'dm-0', wwid: FAKE.mpathUuid, majmin: '253:0', dmName: FAKE.mpathName });
    assert.deepEqual(r.resolve({ printed: '253:1', majmin: '253:1' }), { name: 'dm-1', wwid: FAKE.lvmUuid, majmin: '253:1', dmName: FAKE.lvmName });
  });

  it('md: md/uuid, else the array name', () => {
    assert.equal(r.resolve({ printed: 'md0', name: 'md0' })?.wwid, FAKE.mdUuid);
    assert.deepEqual(r.resolve({ printed: 'md1', name: 'md1' }), { name: 'md1', wwid: 'md1', majmin: '9:1' });
  });

  it('loop: loop:<backing file>; an unbound loop device has no id', () => {
    assert.deepEqual(r.resolve({ printed: 'loop0', name: 'loop0' }), { name: 'loop0', wwid: `loop:${FAKE.loopBacking}`, majmin: '7:0' });
    assert.deepEqual(r.resolve({ printed: 'loop1', name: 'loop1' }), { name: 'loop1', wwid: '', majmin: '7:1' });
  });

  it('major:minor through /sys/dev/block', () => {
    assert.equal(r.resolve({ printed: '8:16', majmin: '8:16' })?.name, 'sdb');
    assert.equal(r.resolve({ printed: '8:17', majmin: '8:17' })?.wwid, `${FAKE.sdbWwid}-part1`);
    assert.equal(r.resolve({ printed: '7:0', majmin: '7:0' })?.name, 'loop0');
    assert.equal(r.resolve({ printed: '9:9', majmin: '9:9' }), null);
  });

  it('H:C:T:L through /sys/class/scsi_device', () => {
    assert.equal(r.resolve({ printed: FAKE.sdbHctl, hctl: FAKE.sdbHctl })?.name, 'sdb');
    assert.equal(r.resolve({ printed: FAKE.sdcHctl, hctl: FAKE.sdcHctl })?.name, 'sdc');
    assert.equal(r.resolve({ printed: '9:0:0:0', hctl: '9:0:0:0' }), null);
  });

  it('holderOf: the dm map above a path device', () => {
    assert.deepEqual(r.resolve({ printed: '8:16', holderOf: '8:16' }), { name: 'dm-0', wwid: FAKE.mpathUuid, majmin: '253:0', dmName: FAKE.mpathName });
    assert.equal(r.resolve({ printed: '8:32', holderOf: '8:32' })?.name, 'dm-0');
    assert.equal(r.resolve({ printed: '7:0', holderOf: '7:0' }), null);
  });

  it('tries name, hctl, majmin, holderOf in that order', () => {
    assert.equal(r.resolve({ printed: 'x', name: 'nosuch', hctl: FAKE.sdcHctl, majmin: '8:16' })?.name, 'sdc');
    assert.equal(r.resolve({ printed: 'x', name: 'nosuch', hctl: '9:9:9:9', majmin: '8:16', holderOf: '8:16' })?.name, 'sdb');
    assert.equal(r.resolve({ printed: 'x', name: 'sdd', majmin: '8:16' })?.name, 'sdd');
    assert.equal(r.resolve({ printed: 'x', majmin: '9:99', holderOf: '8:16' })?.name, 'dm-0');
    assert.equal(r.resolve({ printed: 'ata1.00' }), null);
  });

  it('returns frozen answers: a caller cannot change the cache', () => {
    const a = r.resolve({ printed: 'sdb', name: 'sdb' });
    assert.ok(a);
    assert.throws(() => {
      (a as { wwid: string }).wwid = 'changed';
    }, TypeError);
    assert.equal(r.resolve({ printed: 'sdb', name: 'sdb' })?.wwid, FAKE.sdbWwid);
  });

  it('filesystem: by-uuid link, mount point by major:minor (own root preferred over a bind mount)', () => {
    assert.deepEqual(r.filesystem('sdb1'), { uuid: FAKE.sdb1FsUuid, mountPoint: FAKE.sdb1MountPoint, fsType: 'ext4' });
    assert.deepEqual(r.filesystem('dm-1'), { uuid: FAKE.lvFsUuid, mountPoint: '/data', fsType: 'xfs' });
  });

  it('filesystem: the hint wins; loop by major:minor; btrfs by source; unmounted has nothing', () => {
    assert.deepEqual(r.filesystem('sdb1', 'hint-uuid'), { uuid: 'hint-uuid', mountPoint: FAKE.sdb1MountPoint, fsType: 'ext4' });
    assert.deepEqual(r.filesystem('loop0'), { mountPoint: '/mnt/loop', fsType: 'ext4' });
    assert.deepEqual(r.filesystem('nvme0n1p1'), { mountPoint: '/srv', fsType: 'btrfs' });
    assert.deepEqual(r.filesystem('sdc'), {});
    assert.deepEqual(r.filesystem('../../etc'), {});
    assert.deepEqual(r.filesystem('../../etc', 'u'), { uuid: 'u' });
  });

  it('describe: accepts names, /dev paths, major:minor, H:C:T:L, dm names', () => {
    for (const input of ['sdb', '/dev/sdb', '8:16', FAKE.sdbHctl, FAKE.wwnLink, `${roots.dev}/sdb`, '/dev/disk/by-path/pci-0000:00:1f.2-ata-3']) {
      assert.equal(r.describe(input)?.identity.name, 'sdb', input);
    }
    for (const input of ['dm-0', 'mpatha', '/dev/mapper/mpatha', '253:0', `/dev/disk/by-id/dm-uuid-${FAKE.mpathUuid}`]) {
      assert.equal(r.describe(input)?.identity.name, 'dm-0', input);
    }
    for (const input of ['nosuch', '/dev/nosuch', '/etc/passwd', '/dev/../etc/passwd', '/dev/mapper/../../etc', '', '9:9', '../../etc', 'sdb\0']) {
      assert.equal(r.describe(input), null, JSON.stringify(input));
    }
  });

  it('describe: a dm name found by scanning dm/name when /dev/mapper has no link', () => {
    const { dir: d2, roots: roots2 } = fresh();
    try {
      unlinkSync(path.join(roots2.dev, 'mapper', FAKE.lvmName));
      assert.equal(new SysfsResolver(roots2).describe(FAKE.lvmName)?.identity.name, 'dm-1');
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('describe: stack below and above, recursively, nearest first; fs; links', () => {
    const s = r.describe('sdb');
    assert.ok(s);
    assert.deepEqual(s.below, []);
    assert.deepEqual(s.above.map((x) => x.name), ['dm-0', 'dm-1']);
    assert.deepEqual(s.links, ['/dev/disk/by-id/scsi-35000c500a1b2c3d4', FAKE.wwnLink, '/dev/disk/by-path/pci-0000:00:1f.2-ata-3']);
    assert.deepEqual(s.fs, {});

    const lv = r.describe('/dev/mapper/vg0-data');
    assert.ok(lv);
    assert.deepEqual(lv.below.map((x) => x.name), ['dm-0', 'sdb', 'sdc']);
    assert.deepEqual(lv.above, []);
    assert.deepEqual(lv.fs, { uuid: FAKE.lvFsUuid, mountPoint: '/data', fsType: 'xfs' });
    assert.equal(lv.identity.dmName, FAKE.lvmName);

    const md = r.describe('md0');
    assert.ok(md);
    assert.deepEqual(md.below.map((x) => [x.name, x.wwid]), [['sdd1', `${FAKE.sddWwid}-part1`], ['sde1', `${FAKE.sdeWwid}-part1`]]);
  });
});

describe('SysfsResolver cache', () => {
  it('a second resolve reads nothing; invalidate(name) re-reads', () => {
    const { dir, roots } = fresh();
    try {
      const r = new SysfsResolver(roots);
      const sdbWwid = path.join(devDir(roots, 'sdb'), 'device', 'wwid');
      const dmUuid = path.join(devDir(roots, 'dm-0'), 'dm', 'uuid');
      assert.equal(r.resolve({ printed: 'sdb', name: 'sdb' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: '8:16', majmin: '8:16' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: '2:0:0:0', hctl: '2:0:0:0' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: 'sdb1', name: 'sdb1' })?.wwid, `${FAKE.sdbWwid}-part1`);
      assert.equal(r.resolve({ printed: '8:16', holderOf: '8:16' })?.wwid, FAKE.mpathUuid);
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, FAKE.mpathUuid);

      writeFileSync(sdbWwid, 'naa.600508b1001c0000000000000000beef\n');
      writeFileSync(dmUuid, 'mpath-new\n');
      // every answer comes from the cache, not from the changed files
      assert.equal(r.resolve({ printed: 'sdb', name: 'sdb' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: '8:16', majmin: '8:16' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: '2:0:0:0', hctl: '2:0:0:0' })?.wwid, FAKE.sdbWwid);
      assert.equal(r.resolve({ printed: 'sdb1', name: 'sdb1' })?.wwid, `${FAKE.sdbWwid}-part1`);
      assert.equal(r.resolve({ printed: '8:16', holderOf: '8:16' })?.wwid, FAKE.mpathUuid);
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, FAKE.mpathUuid);

      // sdb and everything learned through it (its partition, its holder lookup) is re-read
      r.invalidate('sdb');
      assert.equal(r.resolve({ printed: 'sdb', name: 'sdb' })?.wwid, 'naa.600508b1001c0000000000000000beef');
      assert.equal(r.resolve({ printed: '8:16', majmin: '8:16' })?.wwid, 'naa.600508b1001c0000000000000000beef');
      assert.equal(r.resolve({ printed: '2:0:0:0', hctl: '2:0:0:0' })?.wwid, 'naa.600508b1001c0000000000000000beef');
      assert.equal(r.resolve({ printed: 'sdb1', name: 'sdb1' })?.wwid, 'naa.600508b1001c0000000000000000beef-part1');
      assert.equal(r.resolve({ printed: '8:16', holderOf: '8:16' })?.wwid, 'mpath-new');
      // dm-0 asked by name was not learned through sdb: still cached
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, FAKE.mpathUuid);
      // a dm device can be invalidated by its dm name too
      r.invalidate(FAKE.mpathName);
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, 'mpath-new');

      writeFileSync(dmUuid, 'mpath-newer\n');
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, 'mpath-new');
      r.invalidate();
      assert.equal(r.resolve({ printed: 'dm-0', name: 'dm-0' })?.wwid, 'mpath-newer');
      assert.equal(r.resolve({ printed: '8:16', holderOf: '8:16' })?.wwid, 'mpath-newer');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('invalidate(name) leaves unrelated devices cached', () => {
    const { dir, roots } = fresh();
    try {
      const r = new SysfsResolver(roots);
      assert.equal(r.resolve({ printed: 'md0', name: 'md0' })?.wwid, FAKE.mdUuid);
      writeFileSync(path.join(devDir(roots, 'md0'), 'md', 'uuid'), 'other\n');
      r.invalidate('sdb');
      assert.equal(r.resolve({ printed: 'md0', name: 'md0' })?.wwid, FAKE.mdUuid);
      r.invalidate('md0');
      assert.equal(r.resolve({ printed: 'md0', name: 'md0' })?.wwid, 'other');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a device that appears later is found once the short negative entry expires', () => {
    const { dir, roots } = fresh();
    try {
      let now = 1_000_000;
      const r = new SysfsResolver(roots, { now: () => now });
      assert.equal(r.resolve({ printed: 'sdz', name: 'sdz' }), null);
      const real = path.join(roots.sysfs, 'devices/virtual/block/sdz');
      mkdirSync(real, { recursive: true });
      writeFileSync(path.join(real, 'dev'), '65:144\n');
      symlinkSync('../../devices/virtual/block/sdz', path.join(roots.sysfs, 'class', 'block', 'sdz'));
      assert.equal(r.resolve({ printed: 'sdz', name: 'sdz' }), null, 'still the negative entry');
      assert.equal(r.resolve({ printed: '65:144', majmin: '65:144' }), null, 'still the negative entry');
      now += 1_000;
      assert.deepEqual(r.resolve({ printed: 'sdz', name: 'sdz' }), { name: 'sdz', wwid: '', majmin: '65:144' });
      // not linked under /sys/dev/block yet; when udev reports it, invalidate(name) drops negative answers
      assert.equal(r.resolve({ printed: '65:144', majmin: '65:144' }), null);
      symlinkSync('../../devices/virtual/block/sdz', path.join(roots.sysfs, 'dev', 'block', '65:144'));
      assert.equal(r.resolve({ printed: '65:144', majmin: '65:144' }), null, 'cached');
      r.invalidate('sdz');
      assert.equal(r.resolve({ printed: '65:144', majmin: '65:144' })?.name, 'sdz');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a link whose target has another name is not taken for that name', () => {
    const { dir, roots } = fresh();
    try {
      const r = new SysfsResolver(roots);
      symlinkSync('../../devices/virtual/block/loop1', path.join(roots.sysfs, 'class', 'block', 'sdy'));
      assert.equal(r.resolve({ printed: 'sdy', name: 'sdy' }), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('entries expire after ttlMs (injected clock)', () => {
    const { dir, roots } = fresh();
    try {
      let now = 5_000;
      const r = new SysfsResolver(roots, { ttlMs: 10_000, now: () => now });
      const file = path.join(devDir(roots, 'loop0'), 'loop', 'backing_file');
      assert.equal(r.resolve({ printed: 'loop0', name: 'loop0' })?.wwid, `loop:${FAKE.loopBacking}`);
      writeFileSync(file, '/srv/other.img\n');
      now += 9_999;
      assert.equal(r.resolve({ printed: 'loop0', name: 'loop0' })?.wwid, `loop:${FAKE.loopBacking}`);
      now += 1;
      assert.equal(r.resolve({ printed: 'loop0', name: 'loop0' })?.wwid, 'loop:/srv/other.img');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the mount table is cached for a short time; invalidateMounts() drops it', () => {
    const { dir, roots } = fresh();
    try {
      let now = 0;
      const r = new SysfsResolver(roots, { now: () => now });
      assert.equal(r.filesystem('loop0').mountPoint, '/mnt/loop');
      writeFileSync(roots.mountinfo, '43 22 7:0 / /elsewhere rw - ext4 /dev/loop0 rw\n');
      assert.equal(r.filesystem('loop0').mountPoint, '/mnt/loop');
      r.invalidateMounts();
      assert.equal(r.filesystem('loop0').mountPoint, '/elsewhere');
      writeFileSync(roots.mountinfo, '');
      now += 4_999;
      assert.equal(r.filesystem('loop0').mountPoint, '/elsewhere');
      now += 1;
      assert.deepEqual(r.filesystem('loop0'), {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the cache is bounded (least recently used goes first)', () => {
    const { dir, roots } = fresh();
    try {
      const r = new SysfsResolver(roots, { maxEntries: 3 });
      for (const name of ['sdb', 'sdc', 'sdd', 'sde', 'md0', 'md1', 'loop0']) r.resolve({ printed: name, name });
      assert.equal(r.cacheSize, 3);
      for (let i = 0; i < 100; i++) r.resolve({ printed: `x${i}`, name: `x${i}` });
      assert.equal(r.cacheSize, 3);
      // sdb is recent and used, so it stays while others come and go
      const big = new SysfsResolver(roots, { maxEntries: 2 });
      big.resolve({ printed: 'sdb', name: 'sdb' });
      big.resolve({ printed: 'sdc', name: 'sdc' });
      big.resolve({ printed: 'sdb', name: 'sdb' }); // touch sdb
      big.resolve({ printed: 'sdd', name: 'sdd' }); // evicts sdc
      writeFileSync(path.join(devDir(roots, 'sdb'), 'device', 'wwid'), 'naa.1\n');
      writeFileSync(path.join(devDir(roots, 'sdc'), 'device', 'wwid'), 'naa.2\n');
      assert.equal(big.resolve({ printed: 'sdb', name: 'sdb' })?.wwid, FAKE.sdbWwid);
      assert.equal(big.resolve({ printed: 'sdc', name: 'sdc' })?.wwid, 'naa.2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SysfsResolver hostile input and broken roots', () => {
  let dir = '';
  let roots: ResolverRoots;
  before(() => ({ dir, roots } = fresh()));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects names that are not plain device names', () => {
    const r = new SysfsResolver(roots);
    // a real directory two levels up exists (the temp dir itself): a traversal would find it
    for (const name of ['../../etc', '..', '.', '../sys', 'sdb/../sdc', '/sdb', 'a'.repeat(10_000), 'sdb\0', 'sd\nb', '']) {
      assert.equal(r.resolve({ printed: name, name }), null, JSON.stringify(name.slice(0, 20)));
      assert.equal(r.resolve({ printed: name, majmin: name }), null);
      assert.equal(r.resolve({ printed: name, hctl: name }), null);
      assert.equal(r.resolve({ printed: name, holderOf: name }), null);
      assert.equal(r.describe(name), null);
    }
    assert.equal(r.resolve({ printed: 'x', hctl: '2:0:0:0/../../../../..' }), null);
    assert.equal(r.resolve({ printed: 'x', majmin: '8:16/../..' }), null);
    assert.equal(r.cacheSize, 0, 'rejected input is not cached');
  });

  it('never throws on odd input', () => {
    const r = new SysfsResolver(roots);
    const odd = [null, undefined, 42, {}, { name: 42 }, { name: null, majmin: [] }] as unknown[];
    for (const o of odd) assert.doesNotThrow(() => r.resolve(o as never));
    assert.doesNotThrow(() => r.describe(undefined as never));
    assert.doesNotThrow(() => r.filesystem(undefined as never));
    assert.doesNotThrow(() => r.invalidate(42 as never));
  });

  it('does not follow a sysfs link out of the sysfs root', () => {
    const r = new SysfsResolver(roots);
    symlinkSync('/etc', path.join(roots.sysfs, 'class', 'block', 'etc'));
    assert.equal(r.resolve({ printed: 'etc', name: 'etc' }), null);
    assert.equal(r.describe('etc'), null);
  });

  it('missing roots give null and empty answers', () => {
    const r = new SysfsResolver({ sysfs: '/nonexistent/sys', dev: '/nonexistent/dev', mountinfo: '/nonexistent/mountinfo' });
    assert.equal(r.resolve({ printed: 'sdb', name: 'sdb', majmin: '8:16', hctl: '2:0:0:0', holderOf: '8:16' }), null);
    assert.deepEqual(r.filesystem('sdb'), {});
    assert.equal(r.describe('sdb'), null);
  });

  it('unreadable attributes give an empty id, not an error', { skip: process.getuid?.() === 0 ? 'root reads mode-000 files' : false }, () => {
    const { dir: d2, roots: roots2 } = fresh();
    try {
      chmodSync(path.join(devDir(roots2, 'sdc'), 'device', 'wwid'), 0o000);
      assert.deepEqual(new SysfsResolver(roots2).resolve({ printed: 'sdc', name: 'sdc' }), { name: 'sdc', wwid: '', majmin: '8:32' });
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('a FIFO in place of an attribute does not block', () => {
    const { dir: d2, roots: roots2 } = fresh();
    try {
      const f = path.join(devDir(roots2, 'sdc'), 'device', 'wwid');
      unlinkSync(f);
      if (spawnSync('mkfifo', [f]).status !== 0) return;
      assert.deepEqual(new SysfsResolver(roots2).resolve({ printed: 'sdc', name: 'sdc' }), { name: 'sdc', wwid: '', majmin: '8:32' });
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });
});

