// Uncached lookups in sysfs and /dev under configurable roots (docs/events.md §4).
// SysfsResolver (resolver.ts) caches what these return.
//
// Every call is synchronous on purpose: sysfs attributes and /dev symlinks
// live in kernel memory (sysfs, devtmpfs), so a read is a few microseconds and
// never waits on a disk, even when the disk being described is failing.
// The agent resolves devices on its event path behind a cache; an async
// round-trip through the libuv thread pool would cost more than the read.
//
// Nothing here throws: a missing root, an unreadable file or a permission
// error gives null / an empty list. Every name joined to a directory has been
// checked by the caller (ids.ts) or comes from a directory listing and is
// checked again here, and every resolved sysfs path must stay under the root.
import { closeSync, constants, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ResolverRoots } from '../contracts/device.ts';
import { isDmName, isHctl, isKernelName, isMajMin, normalizeWwid, nvmeIdFromAttrs, parseDevAttr, parsePartitionAttr, partitionWwid } from './ids.ts';
import { MountTable } from './mountinfo.ts';

/** sysfs attributes are at most a page; anything longer is not one. */
const MAX_ATTR = 4096;
/** /dev/disk/by-* links followed when naming a path given to describe(). */
const MAX_LINK_HOPS = 4;

type DeviceKind = 'partition' | 'dm' | 'md' | 'loop' | 'nvme' | 'disk';

export interface DeviceInfo {
  name: string;
  /** the device's real directory under the sysfs root */
  dir: string;
  kind: DeviceKind;
  majmin?: string;
  wwid: string;
  dmName?: string;
  /** for a partition: the disk it is on */
  parent?: string;
}

/** Read a small text file (a sysfs attribute); null when absent or unreadable. One trailing newline is dropped. */
function readAttr(file: string, max = MAX_ATTR): string | null {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted in a fixture or a wrong root cannot block the event path
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(max);
    let n = 0;
    while (n < max) {
      const got = readSync(fd, buf, n, max - n, null);
      if (got === 0) break;
      n += got;
    }
    const s = buf.toString('utf8', 0, n);
    return s.endsWith('\n') ? s.slice(0, -1) : s;
  } catch {
    return null;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing to do
    }
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

function within(root: string, p: string): boolean {
  return p.startsWith(root.endsWith('/') ? root : root + '/');
}

export class SysfsTree {
  readonly roots: ResolverRoots;
  private readonly devRoot: string;
  private sysReal: string | null = null;

  constructor(roots: ResolverRoots) {
    this.roots = roots;
    this.devRoot = path.resolve(roots.dev);
  }

  /** The sysfs root with symlinks resolved; null while it does not exist. */
  private sysRoot(): string | null {
    if (this.sysReal === null) {
      try {
        this.sysReal = realpathSync(this.roots.sysfs);
      } catch {
        return null;
      }
    }
    return this.sysReal;
  }

  /** realpath of a path under the sysfs root, when it stays under it and is a directory. */
  private realDir(p: string): string | null {
    const root = this.sysRoot();
    if (root === null) return null;
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      return null;
    }
    return within(root, real) && isDir(real) ? real : null;
  }

  /** The device directory of a kernel name (`sdb`, `sdb1`, `dm-0`): /sys/class/block/<name>, else /sys/block/<name>. */
  dirOfName(name: string): string | null {
    if (!isKernelName(name)) return null;
    const dir = this.realDir(path.join(this.roots.sysfs, 'class', 'block', name)) ?? this.realDir(path.join(this.roots.sysfs, 'block', name));
    return dir !== null && path.basename(dir) === name ? dir : null;
  }

  /** The device directory of `major:minor`, through the link /sys/dev/block/M:m. */
  dirOfMajMin(majmin: string): string | null {
    if (!isMajMin(majmin)) return null;
    const dir = this.realDir(path.join(this.roots.sysfs, 'dev', 'block', majmin));
    return dir !== null && isKernelName(path.basename(dir)) ? dir : null;
  }

  /** The block device name of a SCSI address: the one entry of /sys/class/scsi_device/H:C:T:L/device/block/. */
  nameOfHctl(hctl: string): string | null {
    if (!isHctl(hctl)) return null;
    const names = listDir(path.join(this.roots.sysfs, 'class', 'scsi_device', hctl, 'device', 'block')).filter(isKernelName).sort();
    return names[0] ?? null;
  }

  /** The kernel name (`dm-0`) of a device-mapper name (`mpatha`): the /dev/mapper link, else a scan of dm/name. */
  nameOfDmName(dmName: string): string | null {
    if (!isDmName(dmName)) return null;
    const viaLink = this.followDevLink(path.join(this.devRoot, 'mapper', dmName));
    if (viaLink !== null && viaLink.startsWith('dm-') && this.dirOfName(viaLink) !== null) return viaLink;
    for (const entry of listDir(path.join(this.roots.sysfs, 'block')).sort()) {
      if (!entry.startsWith('dm-') || !isKernelName(entry)) continue;
      if (readAttr(path.join(this.roots.sysfs, 'block', entry, 'dm', 'name'))?.trim() === dmName) return entry;
    }
    return null;
  }

  /**
   * A path under the dev root to a kernel name: itself when it names a
   * device node directly under the root, else by following up to a few
   * relative symlinks (`disk/by-id/wwn-…` → `../../sdb`) that stay under the root.
   */
  followDevLink(p: string): string | null {
    let cur = path.resolve(p);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      if (!within(this.devRoot, cur)) return null;
      let target: string;
      try {
        if (!lstatSync(cur).isSymbolicLink()) break;
        target = readlinkSync(cur);
      } catch {
        break;
      }
      cur = this.linkTarget(path.dirname(cur), target);
    }
    return path.dirname(cur) === this.devRoot && isKernelName(path.basename(cur)) ? path.basename(cur) : null;
  }

  /** Where a link under the dev root points; an absolute `/dev/…` target is taken under the dev root. */
  private linkTarget(linkDir: string, target: string): string {
    if (path.isAbsolute(target)) {
      const t = path.posix.normalize(target);
      return t.startsWith('/dev/') ? path.join(this.devRoot, t.slice(5)) : t;
    }
    return path.resolve(linkDir, target);
  }

  /** Identity facts of a device directory (as returned by dirOf…). */
  info(dir: string, depth = 0): DeviceInfo | null {
    const name = path.basename(dir);
    if (!isKernelName(name)) return null;
    const majmin = parseDevAttr(readAttr(path.join(dir, 'dev'))) ?? undefined;
    const base = { name, dir, ...(majmin ? { majmin } : {}) };

    const part = parsePartitionAttr(readAttr(path.join(dir, 'partition')));
    if (part !== null) {
      // a partition's directory sits inside its disk's directory
      const parentDir = path.dirname(dir);
      const root = this.sysRoot();
      const parent = depth < 1 && root !== null && within(root, parentDir) ? this.info(parentDir, depth + 1) : null;
      return { ...base, kind: 'partition', wwid: parent ? partitionWwid(parent.wwid, part) : '', ...(parent ? { parent: parent.name } : {}) };
    }
    if (isDir(path.join(dir, 'dm'))) {
      const uuid = readAttr(path.join(dir, 'dm', 'uuid'))?.trim() ?? '';
      const dmName = readAttr(path.join(dir, 'dm', 'name'))?.trim() ?? '';
      return { ...base, kind: 'dm', wwid: uuid, ...(dmName ? { dmName } : {}) };
    }
    if (isDir(path.join(dir, 'md')) || /^md/.test(name)) {
      const uuid = readAttr(path.join(dir, 'md', 'uuid'))?.trim() ?? '';
      return { ...base, kind: 'md', wwid: uuid || name };
    }
    if (isDir(path.join(dir, 'loop')) || /^loop\d+$/.test(name)) {
      const backing = readAttr(path.join(dir, 'loop', 'backing_file')) ?? '';
      return { ...base, kind: 'loop', wwid: backing ? `loop:${backing}` : '' };
    }
    const own = readAttr(path.join(dir, 'wwid'));
    const viaDevice = own === null ? readAttr(path.join(dir, 'device', 'wwid')) : null;
    let wwid = normalizeWwid(own ?? viaDevice ?? '');
    const nvme = /^nvme\d+(?:c\d+)?n\d+$/.test(name);
    if (wwid === '' && nvme) {
      wwid = nvmeIdFromAttrs({
        uuid: readAttr(path.join(dir, 'uuid')),
        nguid: readAttr(path.join(dir, 'nguid')),
        eui: readAttr(path.join(dir, 'eui')),
      });
    }
    return { ...base, kind: nvme ? 'nvme' : 'disk', wwid };
  }

  /** Names of the devices directly above (`holders/`) or below (`slaves/`) a device directory. */
  stacked(dir: string, which: 'holders' | 'slaves'): string[] {
    return listDir(path.join(dir, which)).filter(isKernelName).sort();
  }

  /**
   * Every /dev/disk/by-* link that points at a device node directly under the
   * dev root, by kernel name. Paths are given as the host sees them
   * (`/dev/disk/by-id/wwn-…`), whatever the dev root is, since a consumer of
   * the event reads them on the host.
   */
  diskLinks(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const diskDir = path.join(this.devRoot, 'disk');
    for (const sub of listDir(diskDir).sort()) {
      if (!sub.startsWith('by-') || !isKernelName(sub)) continue;
      const subDir = path.join(diskDir, sub);
      for (const entry of listDir(subDir).sort()) {
        if (entry.includes('/') || entry === '.' || entry === '..') continue;
        let target: string;
        try {
          target = readlinkSync(path.join(subDir, entry));
        } catch {
          continue;
        }
        const abs = this.linkTarget(subDir, target);
        if (path.dirname(abs) !== this.devRoot) continue;
        const name = path.basename(abs);
        if (!isKernelName(name)) continue;
        const logical = `/dev/disk/${sub}/${entry}`;
        const list = out.get(name);
        if (list) list.push(logical);
        else out.set(name, [logical]);
      }
    }
    return out;
  }

  /** The host mount table; empty when unreadable. */
  mountTable(): MountTable {
    try {
      // a few hundred KiB on a busy Kubernetes node; re-read at most once per table TTL
      return MountTable.parse(readFileSync(this.roots.mountinfo, 'utf8'));
    } catch {
      return new MountTable([]);
    }
  }
}

/** The preferred path among a device's links: the first `/dev/disk/by-id/wwn-*`. */
export function preferredPathOf(links: readonly string[] | undefined): string | undefined {
  return links?.find((l) => l.startsWith('/dev/disk/by-id/wwn-'));
}

/** The filesystem UUID among a device's links: the name of its `/dev/disk/by-uuid/*` link. */
export function fsUuidOf(links: readonly string[] | undefined): string | undefined {
  const l = links?.find((x) => x.startsWith('/dev/disk/by-uuid/'));
  return l === undefined ? undefined : l.slice('/dev/disk/by-uuid/'.length);
}
