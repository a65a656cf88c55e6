// A fake sysfs + /dev tree + mount table in a directory, shaped like the real
// ones (real directories and files, RELATIVE symlinks as the kernel and udev
// make them), for SysfsResolver tests and integration tests.
//
//   makeFakeSysfs(dir) → { sysfs: dir/sys, dev: dir/dev, mountinfo: dir/proc/1/mountinfo }
//
// Devices (FAKE below has the ids to assert against):
//   sdb   8:16  2:0:0:0  naa.5000c500a1b2c3d4      partition sdb1 8:17 (ext4 on "/mnt/data disk")
//   sdc   8:32  3:0:0:0  naa.5000c500a1b2c3d4      (second path to the same LUN)
//   dm-0  253:0 multipath map "mpatha" over sdb + sdc; held by dm-1
//   dm-1  253:1 LVM volume "vg0-data" over dm-0 (xfs on /data)
//   sdd   8:48  4:0:0:0  "t10.ATA     QEMU HARDDISK   QM00001", partition sdd1 8:49
//   sde   8:64  5:0:0:0  "t10.ATA     QEMU HARDDISK   QM00002", partition sde1 8:65
//   md0   9:0   raid1 over sdd1 + sde1, md/uuid
//   md1   9:1   no md/uuid (id falls back to the array name)
//   nvme0n1 259:0 wwid, partition nvme0n1p1 259:1 (btrfs on /srv: mountinfo shows 0:45, source /dev/nvme0n1p1)
//   nvme1n1 259:2 no wwid file, nguid only
//   loop0 7:0   backing file "/var/lib/images/disk one.img" (ext4 on /mnt/loop, source /dev/loop0)
//   loop1 7:1   unbound (no loop/ directory)
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ResolverRoots } from '../../src/contracts/device.ts';

export const FAKE = {
  sdbWwid: 'naa.5000c500a1b2c3d4',
  sdbHctl: '2:0:0:0',
  sdcHctl: '3:0:0:0',
  sddRawWwid: 't10.ATA     QEMU HARDDISK   QM00001',
  sddWwid: 't10.ATA-QEMU-HARDDISK-QM00001',
  sdeWwid: 't10.ATA-QEMU-HARDDISK-QM00002',
  mpathUuid: 'mpath-35000c500a1b2c3d4',
  mpathName: 'mpatha',
  lvmUuid: 'LVM-Xq1mT0aVb8kS2hN3cP4dR5eW6fY7gZ8hJ9iK0lM1nO2pQ3rS4tU5vW6xY7zA8bC9',
  lvmName: 'vg0-data',
  mdUuid: '3f2a6b1c:9d8e7f60:11223344:55667788',
  nvmeWwid: 'eui.002538b431b2c3d4',
  nvme1Nguid: '0025385b-71b0-0010-8ce3-8d4f2a1b3c4d',
  nvme1Wwid: 'eui.0025385b71b000108ce38d4f2a1b3c4d',
  loopBacking: '/var/lib/images/disk one.img',
  sdb1FsUuid: '35dd1f53-ee57-4d85-8f10-5dba8081b146',
  lvFsUuid: '1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9',
  wwnLink: '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4',
  sdb1MountPoint: '/mnt/data disk',
} as const;

interface Dev {
  name: string;
  majmin: string;
  /** device directory relative to the sysfs root */
  dir: string;
  /** extra files relative to the device directory */
  files?: Record<string, string>;
  partition?: number;
}

const PCI = 'devices/pci0000:00/0000:00:1f.2';

function scsiDir(host: number): string {
  return `${PCI}/ata${host + 1}/host${host}/target${host}:0:0/${host}:0:0:0`;
}

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** A relative symlink at `link` pointing at `target` (both absolute), as sysfs and udev make them. */
function relLink(target: string, link: string): void {
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(path.relative(path.dirname(link), target), link);
}

/** Build the tree under `dir` (which must exist) and return its roots. */
export function makeFakeSysfs(dir: string): ResolverRoots {
  const sys = path.join(dir, 'sys');
  const dev = path.join(dir, 'dev');
  const mountinfo = path.join(dir, 'proc', '1', 'mountinfo');

  const devs: Dev[] = [];
  const scsiDisk = (name: string, host: number, majmin: string, wwid: string): string => {
    const sdir = scsiDir(host);
    const hctl = `${host}:0:0:0`;
    write(path.join(sys, sdir, 'wwid'), wwid + '\n');
    write(path.join(sys, sdir, 'vendor'), 'ATA     \n');
    // /sys/class/scsi_device/H:C:T:L -> …/H:C:T:L/scsi_device/H:C:T:L, whose device -> ../../../H:C:T:L
    const classDir = path.join(sys, sdir, 'scsi_device', hctl);
    mkdirSync(classDir, { recursive: true });
    relLink(path.join(sys, sdir), path.join(classDir, 'device'));
    relLink(classDir, path.join(sys, 'class', 'scsi_device', hctl));
    const bdir = `${sdir}/block/${name}`;
    devs.push({ name, majmin, dir: bdir });
    // the block device's `device` link points at the SCSI device
    mkdirSync(path.join(sys, bdir), { recursive: true });
    relLink(path.join(sys, sdir), path.join(sys, bdir, 'device'));
    return bdir;
  };

  const sdb = scsiDisk('sdb', 2, '8:16', FAKE.sdbWwid);
  scsiDisk('sdc', 3, '8:32', FAKE.sdbWwid);
  const sdd = scsiDisk('sdd', 4, '8:48', FAKE.sddRawWwid);
  const sde = scsiDisk('sde', 5, '8:64', 't10.ATA     QEMU HARDDISK   QM00002');
  devs.push({ name: 'sdb1', majmin: '8:17', dir: `${sdb}/sdb1`, partition: 1 });
  devs.push({ name: 'sdd1', majmin: '8:49', dir: `${sdd}/sdd1`, partition: 1 });
  devs.push({ name: 'sde1', majmin: '8:65', dir: `${sde}/sde1`, partition: 1 });

  const virt = 'devices/virtual/block';
  devs.push({ name: 'dm-0', majmin: '253:0', dir: `${virt}/dm-0`, files: { 'dm/uuid': FAKE.mpathUuid + '\n', 'dm/name': FAKE.mpathName + '\n', 'dm/suspended': '0\n' } });
  devs.push({ name: 'dm-1', majmin: '253:1', dir: `${virt}/dm-1`, files: { 'dm/uuid': FAKE.lvmUuid + '\n', 'dm/name': FAKE.lvmName + '\n', 'dm/suspended': '0\n' } });
  devs.push({ name: 'md0', majmin: '9:0', dir: `${virt}/md0`, files: { 'md/uuid': FAKE.mdUuid + '\n', 'md/level': 'raid1\n' } });
  devs.push({ name: 'md1', majmin: '9:1', dir: `${virt}/md1`, files: { 'md/level': 'raid0\n' } });
  devs.push({ name: 'loop0', majmin: '7:0', dir: `${virt}/loop0`, files: { 'loop/backing_file': FAKE.loopBacking + '\n', 'loop/offset': '0\n' } });
  devs.push({ name: 'loop1', majmin: '7:1', dir: `${virt}/loop1` });

  const nvme0 = `${PCI.replace('1f.2', '1d.0')}/0000:01:00.0/nvme/nvme0/nvme0n1`;
  devs.push({ name: 'nvme0n1', majmin: '259:0', dir: nvme0, files: { wwid: FAKE.nvmeWwid + '\n', nsid: '1\n', eui: '00 25 38 b4 31 b2 c3 d4\n' } });
  devs.push({ name: 'nvme0n1p1', majmin: '259:1', dir: `${nvme0}/nvme0n1p1`, partition: 1 });
  const nvme1 = `${PCI.replace('1f.2', '1d.1')}/0000:02:00.0/nvme/nvme1/nvme1n1`;
  devs.push({ name: 'nvme1n1', majmin: '259:2', dir: nvme1, files: { nguid: FAKE.nvme1Nguid + '\n', nsid: '1\n' } });

  const dirOf = new Map<string, string>();
  for (const d of devs) {
    const abs = path.join(sys, d.dir);
    dirOf.set(d.name, abs);
    mkdirSync(path.join(abs, 'holders'), { recursive: true });
    mkdirSync(path.join(abs, 'slaves'), { recursive: true });
    write(path.join(abs, 'dev'), d.majmin + '\n');
    write(path.join(abs, 'size'), '2097152\n');
    write(path.join(abs, 'uevent'), `MAJOR=${d.majmin.split(':')[0]}\nMINOR=${d.majmin.split(':')[1]}\nDEVNAME=${d.name}\nDEVTYPE=${d.partition ? 'partition' : 'disk'}\n`);
    if (d.partition !== undefined) write(path.join(abs, 'partition'), `${d.partition}\n`);
    for (const [rel, text] of Object.entries(d.files ?? {})) write(path.join(abs, rel), text);
    relLink(abs, path.join(sys, 'class', 'block', d.name));
    if (d.partition === undefined) relLink(abs, path.join(sys, 'block', d.name));
    relLink(abs, path.join(sys, 'dev', 'block', d.majmin));
    // device nodes: plain files stand in for them (no mknod without root)
    write(path.join(dev, d.name), '');
  }

  const stack = (lower: string, upper: string): void => {
    const lo = dirOf.get(lower)!;
    const up = dirOf.get(upper)!;
    relLink(up, path.join(lo, 'holders', upper));
    relLink(lo, path.join(up, 'slaves', lower));
  };
  stack('sdb', 'dm-0');
  stack('sdc', 'dm-0');
  stack('dm-0', 'dm-1');
  stack('sdd1', 'md0');
  stack('sde1', 'md0');

  // /dev links, as udev makes them
  const devLink = (name: string, link: string): void => relLink(path.join(dev, name), path.join(dev, link));
  devLink('dm-0', `mapper/${FAKE.mpathName}`);
  devLink('dm-1', `mapper/${FAKE.lvmName}`);
  devLink('sdb', 'disk/by-id/wwn-0x5000c500a1b2c3d4');
  devLink('sdb', 'disk/by-id/scsi-35000c500a1b2c3d4');
  devLink('sdb1', 'disk/by-id/wwn-0x5000c500a1b2c3d4-part1');
  devLink('sdb', 'disk/by-path/pci-0000:00:1f.2-ata-3');
  devLink('sdb1', `disk/by-uuid/${FAKE.sdb1FsUuid}`);
  devLink('dm-0', `disk/by-id/dm-uuid-${FAKE.mpathUuid}`);
  devLink('dm-0', `disk/by-id/dm-name-${FAKE.mpathName}`);
  devLink('dm-1', `disk/by-id/dm-name-${FAKE.lvmName}`);
  devLink('dm-1', `disk/by-uuid/${FAKE.lvFsUuid}`);
  devLink('nvme0n1', `disk/by-id/nvme-${FAKE.nvmeWwid}`);
  devLink('sdd', 'disk/by-id/ata-QEMU_HARDDISK_QM00001');

  write(
    mountinfo,
    [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '23 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw',
      '24 22 0:6 / /dev rw,nosuid shared:3 - devtmpfs devtmpfs rw,size=4096k,mode=755',
      // a bind mount of a subdirectory first, then the filesystem's own root
      '40 22 8:17 /export /srv/export rw,relatime shared:10 - ext4 /dev/sdb1 rw',
      '41 22 8:17 / /mnt/data\\040disk rw,relatime shared:11 - ext4 /dev/sdb1 rw,errors=remount-ro',
      '42 22 253:1 / /data rw,relatime shared:12 - xfs /dev/mapper/vg0-data rw,attr2,inode64',
      '43 22 7:0 / /mnt/loop rw,relatime shared:13 - ext4 /dev/loop0 rw',
      '44 22 0:45 / /srv rw,relatime shared:14 - btrfs /dev/nvme0n1p1 rw,ssd,space_cache=v2,subvolid=5,subvol=/',
      '',
    ].join('\n'),
  );

  return { sysfs: sys, dev, mountinfo };
}
