// Finding (what a parser saw) + the record it came from + device identity →
// the wire-format StorageEvent. Deterministic given its inputs: the resolver
// is the only I/O, and it is passed in.
import { CATALOG, type EventType } from '../events/catalog.ts';
import { kmsgEventId, randomEventId } from '../events/ids.ts';
import { type StorageEvent, type System, severityOfLevel, worse } from '../events/schema.ts';
import { formatTimestampUs, nowUs, usToSeconds } from '../events/time.ts';
import type { DeviceResolver, Identity } from '../contracts/device.ts';
import type { ClassifiedRecord, DeviceRef, Finding } from '../contracts/parser.ts';

export interface SynthContext {
  hostname: string;
  /** the boot the records belong to (event ids are derived from it) */
  bootId: string;
  /** Unix time in microseconds at which the kernel's monotonic clock read zero */
  bootEpochUs: number;
  /** null: no device resolution (offline parsing without sysfs) */
  resolver: DeviceResolver | null;
  /** where the records came from: `/dev/kmsg`, a file name */
  source: string;
  /** called when a device could not be resolved */
  onUnresolved?: (system: System) => void;
  /**
   * Filesystem UUIDs learned from mount messages, by block device name: the
   * kernel prints the UUID when it mounts, not with later errors, and without
   * udev there is no /dev/disk/by-uuid to ask.
   */
  fsUuids?: FsUuidMemory;
}

/** A small bounded map: device name → filesystem UUID, most recent last. */
export class FsUuidMemory {
  private readonly map = new Map<string, string>();
  private readonly max: number;
  constructor(max = 1024) {
    this.max = max;
  }
  get(name: string): string | undefined {
    return this.map.get(name);
  }
  set(name: string, uuid: string): void {
    this.map.delete(name);
    this.map.set(name, uuid);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(name: string): void {
    this.map.delete(name);
  }
}

/**
 * `{dev}`, `{member}`… → names; an unknown `{key}` stays as written. (No regex:
 * once per event.) `{dev}` is the device's name; the other keys are looked up
 * in `related` (null when the finding names no other device), so the common
 * message that names only its device needs no lookup table.
 */
function fillNames(template: string, dev: string, related: Record<string, string> | null): string {
  let out = '';
  let from = 0;
  for (;;) {
    const open = template.indexOf('{', from);
    const close = open >= 0 ? template.indexOf('}', open + 1) : -1;
    if (close < 0) return out + template.slice(from);
    let value: string | undefined;
    if (related === null) value = close === open + 4 && template.startsWith('dev', open + 1) ? dev : undefined;
    else {
      // a related device named `dev` would win, as it always did; own keys only (`{constructor}` is text)
      const key = template.slice(open + 1, close);
      value = Object.hasOwn(related, key) ? related[key] : key === 'dev' ? dev : undefined;
    }
    out += template.slice(from, open) + (value ?? template.slice(open, close + 1));
    from = close + 1;
  }
}

function resolveRef(ctx: SynthContext, ref: DeviceRef): Identity | null {
  return ctx.resolver ? ctx.resolver.resolve(ref) : null;
}

/**
 * The events whose device is always a device-mapper device (a multipath map,
 * a thin pool or snapshot, the table being loaded): their ref gets kind `dm`
 * unless the parser said, so a `253:0` that is no dm device here is not taken.
 */
function dmOnly(type: EventType, system: System): boolean {
  return system === 'multipath' || system === 'lvm' || type === 'DM_TABLE_ERROR';
}

export function synthesize(rec: ClassifiedRecord, f: Finding, plugin: string, ctx: SynthContext): StorageEvent {
  const entry = CATALOG[f.type];
  let severity = rec.level >= 0 ? severityOfLevel(rec.level) : 'info';
  if (entry.floor) severity = worse(severity, entry.floor);
  if (f.severity) severity = worse(severity, f.severity);

  // a line read from a log file says its own wall-clock time (and host, below)
  const tsUs = rec.wallUs ?? (rec.tsUsec >= 0 ? ctx.bootEpochUs + rec.tsUsec : nowUs());
  // The finding is the parser's fresh object and dies here: extend its ext in
  // place instead of copying it (this runs for every event).
  const ext: Record<string, string> = f.ext;
  let devName = '';
  let devWwid = '';

  if (f.device) {
    const id = resolveRef(ctx, ctx.resolver && f.device.kind === undefined && dmOnly(f.type, entry.system) ? { ...f.device, kind: 'dm' } : f.device);
    ext.kernel_dev = f.device.printed;
    if (id) {
      devName = id.name;
      devWwid = id.wwid;
      if (id.dmName) ext.dm_name = id.dmName;
      if (id.preferredPath) ext.preferred_path = id.preferredPath;
    } else {
      // `sdb1-8` (a jbd2 journal) is printed; `sdb1` is the device it names.
      devName = f.device.name ?? f.device.printed;
      if (ctx.resolver) ctx.onUnresolved?.(entry.system);
    }
    if (entry.system === 'fs') {
      const blockName = id?.name ?? f.device.name;
      if (blockName && f.device.fsUuid && ctx.fsUuids) {
        if (f.type === 'FS_UNMOUNTED') ctx.fsUuids.delete(blockName);
        else ctx.fsUuids.set(blockName, f.device.fsUuid);
      }
      const hint = f.device.fsUuid ?? (blockName ? ctx.fsUuids?.get(blockName) : undefined);
      const fsId = ctx.resolver && blockName ? ctx.resolver.filesystem(blockName, hint) : {};
      const uuid = f.device.fsUuid ?? fsId.uuid ?? hint;
      if (uuid) {
        ext.fs_uuid = uuid;
        if (devWwid) ext.device_wwid = devWwid;
        devWwid = uuid;
      }
      if (fsId.mountPoint) ext.mount_point = fsId.mountPoint;
      if (fsId.fsType && ext.fs_type === undefined) ext.fs_type = fsId.fsType;
    }
  }
  let related: Record<string, string> | null = null;
  if (f.related) {
    related = {};
    for (const [key, ref] of Object.entries(f.related)) {
      const id = resolveRef(ctx, ref);
      ext[key] = id ? id.name : ref.printed;
      ext[`${key}_wwid`] = id ? id.wwid : '';
      related[key] = ext[key]!;
    }
  }

  const msg = f.msg.indexOf('{') >= 0 ? fillNames(f.msg, devName || 'unknown device', related) : f.msg;

  ext.raw_msg = rec.message;
  if (rec.seq >= 0) ext.kmsg_seq = String(rec.seq);
  ext.timestamp_us = formatTimestampUs(tsUs);
  if (rec.level >= 0) ext.kernel_level = String(rec.level);
  ext.kind = 'synthetic';
  ext.plugin = plugin;
  ext.source = ctx.source;

  return {
    hostname: rec.host ?? ctx.hostname,
    severity,
    system: entry.system,
    timestamp: usToSeconds(tsUs),
    event_id: rec.seq >= 0 ? kmsgEventId(ctx.bootId, rec.seq) : randomEventId(),
    event_type: f.type,
    dev_wwid: devWwid,
    dev_name: devName,
    msg,
    extentions: ext,
  };
}
