// The device identity interface (docs/events.md §4). The synthesizer asks a
// DeviceResolver for the identity of every device a parser found; the
// implementation reads sysfs, /dev and the host mount table under
// configurable roots and caches what it learns.
import type { DeviceRef } from './parser.ts';

export interface ResolverRoots {
  /** sysfs root, `/sys` on a host */
  sysfs: string;
  /** dev root, `/dev` on a host */
  dev: string;
  /** the host's mount table: `/proc/1/mountinfo` (with hostPID in a container) */
  mountinfo: string;
}

export const DEFAULT_ROOTS: ResolverRoots = { sysfs: '/sys', dev: '/dev', mountinfo: '/proc/1/mountinfo' };

export interface Identity {
  /** friendly kernel name: `sdb`, `sdb1`, `dm-3`, `md0`, `nvme0n1`, `loop0` */
  name: string;
  /** persistent id, `""` when unknown */
  wwid: string;
  /** `major:minor` when known */
  majmin?: string;
  /** dm name (`mpatha`, `vg-lv`) for dm devices */
  dmName?: string;
  /** the preferred path, `/dev/disk/by-id/wwn-…` when present */
  preferredPath?: string;
}

export interface FsIdentity {
  /** filesystem UUID, from the message or /dev/disk/by-uuid */
  uuid?: string;
  mountPoint?: string;
  fsType?: string;
}

export interface StackInfo {
  identity: Identity;
  /** devices below (`slaves/`), recursively, nearest first */
  below: Identity[];
  /** devices above (`holders/`), recursively, nearest first */
  above: Identity[];
  fs: FsIdentity;
  /** every /dev/disk/by-* link pointing at the device */
  links: string[];
}

export interface DeviceResolver {
  /**
   * Resolve a device reference. Never throws; returns null when nothing in
   * sysfs matches (the caller then keeps the kernel's identifier and counts it).
   */
  /** The identity is shared with the cache and frozen: read it, do not change it. */
  resolve(ref: DeviceRef): Readonly<Identity> | null;
  /** filesystem identity of a block device name (mount point from the host mount table) */
  filesystem(name: string, uuidHint?: string): FsIdentity;
  /** identity and stack for `prpt info` */
  describe(nameOrPath: string): StackInfo | null;
  /** drop cached knowledge: of one device name, or everything */
  invalidate(name?: string): void;
  /** drop the cached mount table */
  invalidateMounts(): void;
}
