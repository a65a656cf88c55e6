// Pure pieces of device identity (docs/events.md §4): which input strings may be
// used to build a sysfs or /dev path, and how raw sysfs attribute text becomes
// a persistent id. No filesystem access here.

/**
 * A kernel block device name as sysfs spells it: `sdb`, `sdb1`, `nvme0n1p1`,
 * `dm-0`, `md0`, `md_d0`, `loop0`, `mmcblk0p1`, `cciss!c0d0` (the kernel writes
 * `/` in a name as `!`). No `/`, no `:`, no leading dot, bounded length, so it
 * can be joined to a directory without leaving it.
 */
const KERNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.!+-]{0,63}$/;

/** A device-mapper name (`mpatha`, `vg0-lv_data`, `luks-…`), as found under /dev/mapper. */
const DM_NAME = /^[A-Za-z0-9_+:@=#%,-][A-Za-z0-9_.+:@=#%,-]{0,127}$/;

const MAJMIN = /^\d{1,10}:\d{1,10}$/;
const HCTL = /^\d{1,10}:\d{1,10}:\d{1,10}:\d{1,20}$/;

export function isKernelName(s: unknown): boolean {
  return typeof s === 'string' && KERNEL_NAME.test(s);
}

export function isDmName(s: unknown): boolean {
  return typeof s === 'string' && DM_NAME.test(s) && s !== '.' && s !== '..';
}

export function isMajMin(s: unknown): boolean {
  return typeof s === 'string' && MAJMIN.test(s);
}

export function isHctl(s: unknown): boolean {
  return typeof s === 'string' && HCTL.test(s);
}

/**
 * A SCSI `device/wwid` (or NVMe `wwid`) as an id: trimmed, runs of whitespace
 * collapsed to `-`, so `t10.ATA     QEMU HARDDISK   QM00001` becomes
 * `t10.ATA-QEMU-HARDDISK-QM00001`. NULs and other control bytes count as
 * whitespace (some devices pad with them).
 */
export function normalizeWwid(raw: string): string {
  return raw.replace(/[\s\x00-\x1f\x7f]+/g, ' ').trim().replace(/ /g, '-');
}

/** `<disk wwid>-part<N>`, or `""` when the disk has no id. */
export function partitionWwid(diskWwid: string, partition: string | number): string {
  return diskWwid === '' ? '' : `${diskWwid}-part${partition}`;
}

function hexOnly(raw: string): string {
  return raw.replace(/[\s:-]/g, '').toLowerCase();
}

function allZero(hex: string): boolean {
  return /^0*$/.test(hex);
}

/**
 * An NVMe namespace id from the separate attributes, for kernels or devices
 * without a usable `wwid` file. Same precedence and spelling as the kernel's
 * own `wwid` attribute: `uuid.<uuid>`, else `eui.<nguid hex>`, else
 * `eui.<eui64 hex>`. All-zero values mean "not reported". `""` when none.
 */
export function nvmeIdFromAttrs(attrs: { uuid?: string | null; nguid?: string | null; eui?: string | null }): string {
  const uuid = attrs.uuid?.trim().toLowerCase();
  if (uuid && /^[0-9a-f-]{32,36}$/.test(uuid) && !allZero(hexOnly(uuid))) return `uuid.${uuid}`;
  for (const raw of [attrs.nguid, attrs.eui]) {
    const hex = raw ? hexOnly(raw) : '';
    if (hex !== '' && /^[0-9a-f]+$/.test(hex) && !allZero(hex)) return `eui.${hex}`;
  }
  return '';
}

/** The `dev` attribute (`8:16\n`) as `major:minor`, or null. */
export function parseDevAttr(raw: string | null): string | null {
  if (raw === null) return null;
  const s = raw.trim();
  return MAJMIN.test(s) ? s : null;
}

/** The `partition` attribute (`1\n`) as a number string, or null. */
export function parsePartitionAttr(raw: string | null): string | null {
  if (raw === null) return null;
  const s = raw.trim();
  return /^\d{1,6}$/.test(s) ? s : null;
}
