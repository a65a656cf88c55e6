// A parsed uevent → the wire-format StorageEvent (docs/events.md §1, the "udev"
// catalog section). Pure: the device identity is looked up by the caller
// (the collector knows when the cache is still valid: before invalidating it
// for a remove, after for an add or change) and passed in.
import { CATALOG } from '../events/catalog.ts';
import { randomEventId, uuidV5 } from '../events/ids.ts';
import type { StorageEvent } from '../events/schema.ts';
import { formatTimestampUs, usToSeconds } from '../events/time.ts';
import type { Identity } from '../contracts/device.ts';
import type { Uevent } from './uevent.ts';

type UeventEventType = 'BLK_DEVICE_ADDED' | 'BLK_DEVICE_REMOVED' | 'BLK_DEVICE_CHANGED';

/**
 * Actions that become events. bind/unbind (a driver attached to or left a
 * device) are not storage state changes of a block device: the disk's own
 * add/remove says it; they are dropped.
 */
const ACTION_TYPES: Record<string, UeventEventType> = {
  add: 'BLK_DEVICE_ADDED',
  remove: 'BLK_DEVICE_REMOVED',
  change: 'BLK_DEVICE_CHANGED',
  // a rename (DEVPATH_OLD holds the old path): the device is still there, under a new name
  move: 'BLK_DEVICE_CHANGED',
  online: 'BLK_DEVICE_CHANGED',
  offline: 'BLK_DEVICE_CHANGED',
};

export interface UeventContext {
  hostname: string;
  bootId: string;
  /** subsystems that become events; `*` selects all */
  subsystems: ReadonlySet<string>;
  /** the device's identity (resolver), or null when unknown */
  identity: Readonly<Identity> | null;
  /** what the resolver knew before this uevent: its wwid goes to `previous_wwid` when it differs */
  previous?: Readonly<Identity> | null;
  /** microseconds since the epoch */
  nowUs: number;
}

/** Bounds on what goes into `extentions`. */
export const EXT_LIMITS = { maxProperties: 256, maxKeyLength: 64, maxValueLength: 4096 } as const;

/**
 * Keys this module writes itself. A property spelled the same (only
 * possible from a udev rule: kernel and udev names are upper case) is kept
 * under `UEVENT_<key>` instead of overwriting them.
 */
const RESERVED = new Set(['kind', 'plugin', 'source', 'uevent_source', 'timestamp_us', 'kernel_dev', 'dm_name', 'preferred_path', 'old_devpath', 'action', 'wwid_source', 'previous_wwid']);

/** The event id: the same for the kernel's and udevd's copy of one uevent, and for a uevent read twice. */
export function ueventEventId(bootId: string, seqnum: string): string {
  return seqnum === '' ? randomEventId() : uuidV5(`${bootId}/uevent/${seqnum}`);
}

export function eventTypeOf(action: string): UeventEventType | null {
  return Object.hasOwn(ACTION_TYPES, action) ? ACTION_TYPES[action]! : null;
}

/** `/dev/sdb` or `sdb` → `sdb`; without DEVNAME, the last DEVPATH component. */
export function deviceNameOf(u: Uevent): string {
  const devname = u.props.DEVNAME;
  if (devname !== undefined && devname !== '') return devname.startsWith('/dev/') ? devname.slice(5) : devname;
  const slash = u.devpath.lastIndexOf('/');
  return u.devpath.slice(slash + 1);
}

/** The sysfs name of the device (`cciss!c0d0` where DEVNAME says `cciss/c0d0`): what the resolver knows it by. */
export function sysfsNameOf(u: Uevent): string {
  return u.devpath.slice(u.devpath.lastIndexOf('/') + 1);
}

function sanitizeKey(k: string): string {
  const s = k.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, EXT_LIMITS.maxKeyLength);
  return RESERVED.has(s) ? `UEVENT_${s}` : s;
}

function sanitizeValue(v: string): string {
  return v.length > EXT_LIMITS.maxValueLength ? v.slice(0, EXT_LIMITS.maxValueLength) : v;
}

/**
 * A persistent id from udev's properties, for when sysfs cannot tell (the
 * device is gone): the WWN (with udev's vendor extension) or the serial.
 */
function udevWwid(props: Record<string, string>): string {
  const wwn = props.ID_WWN_WITH_EXTENSION || props.ID_WWN;
  if (wwn) return wwn;
  return props.ID_SERIAL || '';
}

function describe(u: Uevent, dev: string): string {
  const what = u.props.DEVTYPE === 'partition' ? 'Partition' : u.subsystem === 'block' ? 'Block device' : `Device (${u.subsystem})`;
  switch (u.action) {
    case 'add':
      return `${what} ${dev} was added`;
    case 'remove':
      return `${what} ${dev} was removed`;
    case 'move':
      return `${what} ${dev} was renamed${u.props.DEVPATH_OLD ? ` (was ${u.props.DEVPATH_OLD.slice(u.props.DEVPATH_OLD.lastIndexOf('/') + 1)})` : ''}`;
    case 'online':
    case 'offline':
      return `${what} ${dev} went ${u.action}`;
    default: {
      const why: string[] = [];
      if (u.props.DISK_MEDIA_CHANGE === '1') why.push('media changed');
      if (u.props.RESIZE === '1') why.push('resized');
      if (u.props.DISK_RO !== undefined) why.push(u.props.DISK_RO === '1' ? 'now read-only' : 'now read-write');
      if (u.props.DM_UUID !== undefined || u.props.DM_NAME !== undefined) why.push('device-mapper state');
      return `${what} ${dev} changed${why.length > 0 ? ` (${why.join(', ')})` : ''}`;
    }
  }
}

/** The event for a uevent, or null when its subsystem or action is not one that becomes an event. */
export function ueventToEvent(u: Uevent, ctx: UeventContext): StorageEvent | null {
  if (!ctx.subsystems.has('*') && !ctx.subsystems.has(u.subsystem)) return null;
  const type = eventTypeOf(u.action);
  if (type === null) return null;
  const entry = CATALOG[type];
  const dev = deviceNameOf(u);

  const ext: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(u.props)) {
    if (n >= EXT_LIMITS.maxProperties) {
      ext.UEVENT_TRUNCATED = String(Object.keys(u.props).length - n);
      break;
    }
    const key = sanitizeKey(k);
    if (key === '' || Object.hasOwn(ext, key)) continue;
    ext[key] = sanitizeValue(v);
    n++;
  }

  // Resolver first: kmsg-derived events name the device by its sysfs id,
  // and one device must have one dev_wwid whichever collector saw it.
  let wwid = ctx.identity?.wwid ?? '';
  if (wwid !== '') ext.wwid_source = 'sysfs';
  else if ((wwid = udevWwid(u.props)) !== '') ext.wwid_source = 'udev';
  // a loop device bound to another file, a disk with new media: the identity moved
  const prev = ctx.previous?.wwid ?? '';
  if (prev !== '' && prev !== wwid) ext.previous_wwid = prev;
  if (ctx.identity?.dmName) ext.dm_name = ctx.identity.dmName;
  if (ctx.identity?.preferredPath) ext.preferred_path = ctx.identity.preferredPath;
  if (u.action === 'move' && u.props.DEVPATH_OLD !== undefined) ext.old_devpath = sanitizeValue(u.props.DEVPATH_OLD);
  if (u.action === 'online' || u.action === 'offline' || u.action === 'move') ext.action = u.action;
  ext.kernel_dev = sysfsNameOf(u);
  ext.timestamp_us = formatTimestampUs(ctx.nowUs);
  ext.kind = 'synthetic';
  ext.plugin = 'udev';
  ext.source = 'netlink:uevent';
  ext.uevent_source = u.source;

  return {
    hostname: ctx.hostname,
    // no floor in the catalog: a device coming or going is news, not a fault
    severity: entry.floor ?? 'info',
    system: entry.system,
    timestamp: usToSeconds(ctx.nowUs),
    event_id: ueventEventId(ctx.bootId, u.seqnum),
    event_type: type,
    dev_wwid: wwid,
    dev_name: dev,
    msg: describe(u, dev),
    extentions: ext,
  };
}
