// Filesystems: ext4 (and the old ext3/ext2 drivers), jbd2, xfs, btrfs.
// The device is the filesystem's block device as the kernel names it
// (sb->s_id: `sdb1`, `dm-0`, `loop0`, `nvme0n1p1`); a UUID printed in the
// line goes to device.fsUuid (an all-zero UUID is no identity and is left out).
//
// Formats (fs/ext4/super.c, fs/jbd2, fs/xfs/xfs_message.c + callers,
// fs/btrfs/messages.c + callers), old and new:
//   ext4  `EXT4-fs error (device %s): %s:%d: [inode #%lu: ][block %llu: ]comm %s: [path %s: ]%pV`
//         `EXT4-fs error (device %s) in %s:%d: %s` (std_error) · `… (device %s): %s:%d: group %u, …`
//         `EXT4-fs warning (device %s): %s:%d: [inode #%lu: comm %s: ]%pV`
//         `EXT4-fs (%s): %pV` — mount: `mounted filesystem %pU %s with%s. Quota mode: %s.` (6.x),
//         `mounted filesystem with%s. Opts: %s. Quota mode: %s.` (5.x), `… Opts: %s` (4.x);
//         `unmounting filesystem %pU.` (6.x); `re-mounted %pU ro.` (6.18) / `re-mounted %pU %s. Quota mode: %s.` / `re-mounted. Opts: %s`
//   ext3/ext2 (separate drivers before 4.3): `EXT3-fs error (device %s): %s: %pV`,
//         `EXT2-fs (%s): error: %s: %pV`, `EXT3-fs (%s): error: remounting filesystem read-only`
//   jbd2  `Aborting journal on device %s.` (j_devname: `sdb1-8` = device + journal inode)
//         `JBD2: Error %d detected when updating journal superblock for %s.` (6.x: `JBD2: I/O error when updating …`)
//   xfs   `XFS (%s): %pV`; shutdown: `%s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem.` (5.15+),
//         `Filesystem has been shut down due to log error (0x2).` (5.19+),
//         `Log I/O Error Detected.  Shutting down filesystem` / `Corruption of in-memory data detected.  Shutting down filesystem` (older)
//   btrfs `BTRFS %s (device %s[: state %s]): %pV` (state since 6.0), `BTRFS: error (device %s[: state %s]) in %s:%d: errno=%d %s`
//   2.6-3.x: `XFS: %s` (no device), `Filesystem "%s": %s`, `xfs_force_shutdown(%s,0x%x) called from …`,
//         `I/O error in filesystem ("%s") meta-data dev %s block 0x%llx ("%s") error %d buf count %zd`,
//         `XFS mounting filesystem %s` / `Ending clean XFS mount for filesystem: %s`;
//         btrfs `btrfs: %s`, `btrfs csum failed …`, `BTRFS: %s`, `BTRFS (device %s): %s` (no level)
// Decisions (docs/events.md §3, fs notes): `re-mounted` is FS_MOUNTED with ext.remount=true; an
// ext4 error whose text says a check failed (checksum, corrupt, inconsistent, bad/invalid <field>)
// is FS_CORRUPTION, every other `EXT4-fs error` FS_ERROR; every `EXT4-fs warning` is FS_WARNING
// unless it is an I/O error (FS_IO_ERROR); XFS and btrfs errnos decide between FS_CORRUPTION
// (117, 74), FS_IO_ERROR (5) and FS_ERROR. Line groups make one event (held finding + Context
// with an orphan, so each line alone still gives it): the ext4 error report, XFS force-shutdown +
// `Shutting down filesystem`, failed XFS/btrfs mounts, XFS `Mounting` + `Ending clean mount`,
// btrfs free-space-cache warnings. XFS `Please unmount the filesystem…` gives no event; btrfs
// lines with a printed level of error and above that are not recognised are FS_ERROR.
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, Context, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

type Ext = Record<string, string>;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UUID_IN = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/;
const NULL_UUID = '00000000-0000-0000-0000-000000000000';
const DEV_NAME = /^[^\s/()]{1,64}$/;

function fsDev(printed: string, uuid?: string): DeviceRef {
  const d: DeviceRef = DEV_NAME.test(printed) ? { printed, name: printed } : { printed };
  if (uuid !== undefined && UUID.test(uuid) && uuid !== NULL_UUID) d.fsUuid = uuid.toLowerCase();
  return d;
}

/** fsDev with the UUID printed somewhere in `text` (mount and unmount lines), if any. */
function fsDevUuidIn(printed: string, text: string): DeviceRef {
  return fsDev(printed, UUID_IN.exec(text)?.[0]);
}

/** jbd2's j_devname: `sdb1-8` (internal journal, inode 8) or the external journal device. */
function journalDev(printed: string): DeviceRef {
  const m = /^(.{1,64})-(\d{1,10})$/.exec(printed);
  // `dm-3` is a whole name, `dm-3-8` its internal journal
  if (m && m[1] !== 'dm' && m[1] !== 'md' && DEV_NAME.test(m[1]!)) return { printed, name: m[1]! };
  return DEV_NAME.test(printed) ? { printed, name: printed } : { printed };
}

/** `/dev/sdb1` as btrfs prints a member device */
function memberDev(printed: string): DeviceRef {
  if (printed.startsWith('/dev/')) {
    const n = printed.slice(5);
    return DEV_NAME.test(n) ? { printed, name: n } : { printed };
  }
  return DEV_NAME.test(printed) ? { printed, name: printed } : { printed };
}

function short(s: string, n = 200): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function finding(type: Finding['type'], device: DeviceRef | null, msg: string, ext: Ext, extra?: Partial<Finding>): Finding {
  return { type, device, msg, ext, ...extra };
}

// ---------------------------------------------------------------- ext2/3/4

const EXT_HEAD = /^([\w.$]{1,64})(?::(\d{1,7}))?: /;
// FS_CORRUPTION when the text says on-disk metadata failed a check: a checksum, `corrupt…`,
// `…inconsistent`, a `bad <field>` / `invalid <field>` value (bad extra_isize, bad header/extent,
// invalid magic), a directory block that failed; every other ext4 error is FS_ERROR.
const EXT_CORRUPT = /checksum|corrupt|inconsisten|\bbad |\binvalid |Directory block failed|failed CRC/i;
const EXT_IO_WRITE = /^I\/O error (?:(-?\d{1,5}) )?writing to inode (\d{1,20}) (?:\(offset (\d{1,20}) size (\d{1,20}) )?starting block (\d{1,20})\)/;
const EXT_MOUNTED = /^mounted filesystem(?: ([0-9a-fA-F-]{36}))?(?: (ro|r\/w))? with(?:out journal| (\w{1,16}) data mode)/;
const EXT_REMOUNTED = /^re-mounted(?: ([0-9a-fA-F-]{36}))?(?: (ro|r\/w))?/;
const EXT_UNWRITTEN = /^failed to convert unwritten extents to written extents -- potential data loss!\s+\(inode (\d{1,20}),(?: offset \d{1,20}, size \d{1,20},)? error (-?\d{1,5})\)/;
const EXT_DELALLOC = /^Delayed block allocation failed for inode (\d{1,20}) at logical offset (\d{1,20}) with max blocks (\d{1,10}) with error (-?\d{1,5})/;
const EXT_ERR_REPORT = /^(initial|last) error at (?:time )?(\d{1,20}): (.{1,200})$/;
const EXT_MOUNT_FAILED = /^(?:error (?:loading|creating|updating) journal|no journal found|failed to open journal device|write access unavailable, cannot proceed|get root inode failed|mount failed)/;
const EXT_SUPPRESSED = /^( error| warning)?: (\d{1,10}) callbacks suppressed$/;

/** Peel `group N, `, `inode #N: `, `block N: `, `comm C: `, `path P: ` off an ext4 error/warning text. */
function extPeel(text: string, ext: Ext): string {
  let t = text;
  let m = /^group (\d{1,10}), /.exec(t);
  if (m) { ext.group = m[1]!; t = t.slice(m[0].length); }
  m = /^inode #?(\d{1,20}): ?/.exec(t);
  if (m) { ext.inode = m[1]!; t = t.slice(m[0].length); }
  m = /^block (\d{1,20}): ?/.exec(t);
  if (m) { ext.block = m[1]!; t = t.slice(m[0].length); }
  m = /^comm (.{1,64}?): /.exec(t);
  if (m) { ext.comm = m[1]!; t = t.slice(m[0].length); }
  m = /^path (.{1,512}?): /.exec(t);
  if (m) { ext.path = m[1]!; t = t.slice(m[0].length); }
  return t;
}

/** Takes `function[:line]: ` off `text` into ext.function and ext.line: the rest, or null when `text` does not start so. */
function extHead(text: string, ext: Ext): string | null {
  const h = EXT_HEAD.exec(text);
  if (!h) return null;
  ext.function = h[1]!;
  if (h[2] !== undefined) ext.line = h[2];
  return text.slice(h[0].length);
}

function extError(fsType: string, dev: string, sep: string, rest: string): Finding {
  const ext: Ext = { fs_type: fsType };
  let detail = extHead(rest, ext) ?? rest;
  if (sep === ': ') detail = extPeel(detail, ext);
  ext.detail = short(detail, 400);
  const where = ext.function ? `${ext.function}: ` : '';
  const corrupt = EXT_CORRUPT.test(detail);
  return finding(corrupt ? 'FS_CORRUPTION' : 'FS_ERROR', fsDev(dev),
    `${corrupt ? 'Filesystem corruption' : 'Filesystem error'} on {dev}: ${where}${short(detail)}`, ext);
}

function extWarning(fsType: string, dev: string, rest: string): Finding {
  const ext: Ext = { fs_type: fsType };
  const afterHead = extHead(rest, ext);
  const detail = afterHead === null ? rest : extPeel(afterHead, ext);
  const io = EXT_IO_WRITE.exec(detail);
  if (io) {
    ext.op = 'WRITE';
    if (io[1] !== undefined) ext.error = io[1];
    ext.inode = io[2]!;
    if (io[3] !== undefined) { ext.offset = io[3]; ext.size = io[4]!; }
    ext.block = io[5]!;
    return finding('FS_IO_ERROR', fsDev(dev), `I/O error on {dev} writing inode ${io[2]} (block ${io[5]})`, ext);
  }
  ext.detail = short(detail, 400);
  return finding('FS_WARNING', fsDev(dev), `Filesystem warning on {dev}: ${ext.function ? `${ext.function}: ` : ''}${short(detail)}`, ext);
}

/** The mount options after `marker` (up to a `. Quota mode: `) and the quota mode, into ext.opts and ext.quota_mode. */
function extMountOpts(body: string, marker: string, ext: Ext): void {
  const opts = body.indexOf(marker);
  if (opts > 0) {
    let o = body.slice(opts + marker.length);
    const q = o.indexOf('. Quota mode: ');
    if (q >= 0) o = o.slice(0, q);
    ext.opts = short(o, 300);
  }
  const quota = /Quota mode: ([\w-]{1,32})/.exec(body);
  if (quota) ext.quota_mode = quota[1]!;
}

/** `error loading journal`, `mount failed`…: the mount of {dev} failed (FS_MOUNT_FAILED), or null. */
function extMountFailed(fsType: string, dev: string, body: string): Finding | null {
  const f = EXT_MOUNT_FAILED.exec(body);
  if (!f) return null;
  return finding('FS_MOUNT_FAILED', fsDev(dev), `${fsType} filesystem on {dev} could not be mounted: ${short(body)}`, { fs_type: fsType, detail: short(body, 400) });
}

function extMsg(fsType: string, dev: string, body: string): ParseResult {
  const ext: Ext = { fs_type: fsType };
  switch (body.charCodeAt(0)) {
    case 109: { // m
      if (body.startsWith('mount failed')) return extMountFailed(fsType, dev, body);
      const m = EXT_MOUNTED.exec(body);
      if (!m) return null;
      if (m[2] !== undefined) ext.mode = m[2];
      ext.data_mode = m[3] ?? (body.indexOf('without journal') > 0 ? 'none' : '');
      if (ext.data_mode === '') delete ext.data_mode;
      extMountOpts(body, '. Opts: ', ext);
      return finding('FS_MOUNTED', fsDev(dev, m[1]), `${fsType} filesystem on {dev} mounted${ext.mode ? ` ${ext.mode}` : ''}`, ext);
    }
    case 117: { // u
      if (body.startsWith('unmounting filesystem')) {
        return finding('FS_UNMOUNTED', fsDevUuidIn(dev, body), `${fsType} filesystem on {dev} unmounted`, ext);
      }
      if (body.startsWith('unable to read superblock')) {
        return finding('FS_IO_ERROR', fsDev(dev), 'Could not read the superblock of {dev}', { ...ext, op: 'READ', what: 'superblock' });
      }
      return null;
    }
    case 114: { // r
      if (!body.startsWith('re-mounted')) return null;
      const m = EXT_REMOUNTED.exec(body)!;
      ext.remount = 'true';
      if (m[2] !== undefined) ext.mode = m[2];
      extMountOpts(body, 'Opts: ', ext);
      return finding('FS_MOUNTED', fsDev(dev, m[1]), `${fsType} filesystem on {dev} remounted${ext.mode ? ` ${ext.mode}` : ''}`, ext);
    }
    case 82: // R
      if (body.startsWith('Remounting filesystem read-only')) {
        return finding('FS_REMOUNT_READ_ONLY', fsDev(dev), `${fsType} filesystem on {dev} was remounted read-only after an error`, ext);
      }
      return null;
    case 73: // I
      if (body.startsWith('I/O error while writing superblock')) {
        return finding('FS_IO_ERROR', fsDev(dev), 'I/O error on {dev} while writing the superblock', { ...ext, op: 'WRITE', what: 'superblock' });
      }
      return null;
    case 112: // p
      if (body.startsWith('previous I/O error to superblock detected')) {
        return finding('FS_IO_ERROR', fsDev(dev), 'An earlier I/O error writing the superblock of {dev} was detected', { ...ext, op: 'WRITE', what: 'superblock' });
      }
      return null;
    case 67: // C
      if (body.startsWith("Can't read superblock")) {
        return finding('FS_IO_ERROR', fsDev(dev), 'Could not read the superblock of {dev}', { ...ext, op: 'READ', what: 'superblock' });
      }
      return null;
    case 99: { // c
      const g = /^can't read group descriptor (\d{1,10})/.exec(body);
      if (g) return finding('FS_IO_ERROR', fsDev(dev), `Could not read group descriptor ${g[1]} of {dev}`, { ...ext, op: 'READ', what: 'group descriptor', group: g[1]! });
      return null;
    }
    case 110: // n
      return extMountFailed(fsType, dev, body);
    case 102: { // f
      if (body.startsWith('failed to open journal device')) return extMountFailed(fsType, dev, body);
      const m = EXT_UNWRITTEN.exec(body);
      if (!m) return null;
      ext.inode = m[1]!;
      ext.error = m[2]!;
      ext.detail = 'failed to convert unwritten extents to written extents';
      if (m[2] === '-5') return finding('FS_IO_ERROR', fsDev(dev), `I/O error on {dev}: written data of inode ${m[1]} may be lost`, { ...ext, op: 'WRITE' });
      return finding('FS_ERROR', fsDev(dev), `Filesystem error on {dev}: written data of inode ${m[1]} may be lost (error ${m[2]})`, ext);
    }
    case 68: { // D
      const m = EXT_DELALLOC.exec(body);
      if (!m) return null;
      Object.assign(ext, { inode: m[1]!, offset: m[2]!, blocks: m[3]!, error: m[4]!, detail: 'delayed block allocation failed' });
      if (m[4] === '5' || m[4] === '-5') return finding('FS_IO_ERROR', fsDev(dev), `I/O error on {dev}: delayed allocation for inode ${m[1]} failed, data will be lost`, { ...ext, op: 'WRITE' });
      return finding('FS_ERROR', fsDev(dev), `Filesystem error on {dev}: delayed allocation for inode ${m[1]} failed (error ${m[4]}), data will be lost`, ext);
    }
    case 115: { // s
      const m = /^shut down requested \((\d{1,3})\)/.exec(body);
      if (!m) return null;
      return finding('FS_SHUTDOWN', fsDev(dev), `${fsType} filesystem on {dev} was shut down on request`, { ...ext, reason: 'requested', flags: m[1]! });
    }
    case 119: // w
      if (body.startsWith('write access unavailable')) return extMountFailed(fsType, dev, body);
      if (body.startsWith('warning: mounting fs with errors')) {
        return finding('FS_WARNING', fsDev(dev), '{dev} was mounted with recorded filesystem errors: run e2fsck', { ...ext, detail: 'mounting fs with errors' });
      }
      if (body.startsWith('warning: ') && fsType === 'ext2') return ext2Warning(dev, body.slice(9));
      return null;
    case 101: { // e
      if (body.startsWith('error: ')) {
        const rest = body.slice(7);
        if (rest.startsWith('remounting filesystem read-only')) {
          return finding('FS_REMOUNT_READ_ONLY', fsDev(dev), `${fsType} filesystem on {dev} was remounted read-only after an error`, ext);
        }
        return extError(fsType, dev, ': ', rest);
      }
      // the daily report (`error count:` before 3.12), held for its `initial error`/`last error` lines
      const c = /^error count(?: since last fsck)?: (\d{1,10})/.exec(body);
      if (c) {
        return finding('FS_ERRORS_RECORDED', fsDev(dev), `{dev} has ${c[1]} filesystem errors recorded since the last fsck`,
          { ...ext, error_count: c[1]!, detail: 'errors recorded since last fsck' }, { hold: `ext4-errors:${dev}` });
      }
      if (body.startsWith('error ')) return extMountFailed(fsType, dev, body);
      if (body.startsWith('ext4_check_descriptors: Checksum for group')) {
        return finding('FS_CORRUPTION', fsDev(dev), `Filesystem corruption on {dev}: ${short(body)}`, { ...ext, function: 'ext4_check_descriptors', detail: short(body, 400) });
      }
      return null;
    }
    case 69: // E
      if (body.startsWith('Errors on filesystem, clearing orphan list')) {
        return finding('FS_WARNING', fsDev(dev), '{dev} has filesystem errors: the orphan list was cleared', { ...ext, detail: short(body) });
      }
      return null;
    case 103: // g
      if (body.startsWith('get root inode failed')) return extMountFailed(fsType, dev, body);
      if (body.startsWith('group descriptors corrupted')) {
        return finding('FS_CORRUPTION', fsDev(dev), 'Filesystem corruption on {dev}: group descriptors corrupted', { ...ext, detail: 'group descriptors corrupted' });
      }
      return null;
    case 105: case 108: { // i(nitial error), l(ast error): follow-ups of the held `error count since last fsck`
      // alone (the `error count` line lost or filtered), it is the report itself
      const r = EXT_ERR_REPORT.exec(body);
      if (!r) return null;
      const key = `ext4-errors:${dev}`;
      const e: Ext = { [`${r[1]}_error`]: `${r[3]} at ${r[2]}` };
      const orphan = finding('FS_ERRORS_RECORDED', fsDev(dev), '{dev} has filesystem errors recorded since the last fsck',
        { ...ext, ...e, detail: 'errors recorded since last fsck' }, { hold: key });
      const ctx: Context = { context: key, ext: e, orphan };
      return ctx;
    }
    default:
      return null;
  }
}

function ext2Warning(dev: string, text: string): Finding | null {
  // the mount-time reminders are routine
  if (text.startsWith('mounting unchecked fs') || text.startsWith('maximal mount count') || text.startsWith('checktime reached')) return null;
  const ext: Ext = { fs_type: 'ext2' };
  const h = EXT_HEAD.exec(text);
  let detail = text;
  if (h) { ext.function = h[1]!; detail = text.slice(h[0].length); }
  ext.detail = short(detail, 400);
  return finding('FS_WARNING', fsDev(dev), `Filesystem warning on {dev}: ${short(detail)}`, ext);
}

function extFamily(m: string, fsType: string): ParseResult {
  // m is after `EXTn-fs`
  if (m.endsWith(' callbacks suppressed')) {
    // ext4's own rate limiters: `EXT4-fs error: 352 callbacks suppressed`
    const s = EXT_SUPPRESSED.exec(m);
    if (!s) return null;
    const fn = `${fsType.toUpperCase()}-fs${s[1] ?? ''}`;
    return finding('KERNEL_LOG_SUPPRESSED', null, `The kernel suppressed ${s[2]!} messages from ${fn}`, { fs_type: fsType, suppressed: s[2]!, function: fn });
  }
  const c = m.charCodeAt(0);
  if (c === 32 /* space */) {
    if (m.startsWith(' error (device ')) {
      const close = m.indexOf(')', 15);
      if (close < 0 || close > 15 + 64) return null;
      const dev = m.slice(15, close);
      const sep = m.slice(close + 1, close + 3);
      if (sep === ': ') return extError(fsType, dev, ': ', m.slice(close + 3));
      if (m.startsWith(' in ', close + 1)) return extError(fsType, dev, ' in ', m.slice(close + 5));
      return null;
    }
    if (m.startsWith(' warning (device ')) {
      const close = m.indexOf('): ', 17);
      if (close < 0 || close > 17 + 64) return null;
      return extWarning(fsType, m.slice(17, close), m.slice(close + 3));
    }
    if (m.startsWith(' (')) {
      const close = m.indexOf('): ', 2);
      if (close < 0 || close > 2 + 64) return null;
      return extMsg(fsType, m.slice(2, close), m.slice(close + 3));
    }
  }
  return null;
}

// ---------------------------------------------------------------- jbd2

const ABORTING = /^Aborting journal on device (\S{1,128}?)\.?$/;
const JBD2_SB = /^(?:Error (-?\d{1,5}) detected|I\/O error(?: detected)?) when updating journal superblock for (\S{1,128}?)\.?$/;
const JBD2_FLUSH = /^Detected IO errors(?: (-?\d{1,5}))? while flushing file data on (\S{1,128}?)\.?$/;
const JBD2_DIRTY = /^Spotted dirty metadata buffer \(dev = (\S{1,64}), blocknr = (\d{1,20})\)/;
const JBD2_CORRUPT_TX = /^journal transaction (\d{1,10}) on (\S{1,128}?) is corrupt\.?$/;
const JBD2_RECOVER_IO = /^IO error (-?\d{1,5}) recovering block (\d{1,20}) in log/;
// journal_get_superblock(): the journal's superblock is not one
const JBD2_BAD_SB = /^(?:no valid journal superblock found|unrecognised superblock format ID|journal file too short|Invalid start block of journal)/;
// jbd2_journal_load()/recovery failed: the mount fails next (`EXT4-fs (X): error loading journal`)
const JBD2_LOAD_FAILED = /^(?:Unrecognised features on journal|recovery failed|error (-?\d{1,5}) scanning journal)/;

function jbd2(body: string): Finding | null {
  const ext: Ext = { fs_type: 'jbd2' };
  let m = JBD2_SB.exec(body);
  if (m) {
    // the journal could not write its superblock: an I/O error (the abort follows as its own line)
    if (m[1] !== undefined) ext.error = m[1];
    ext.journal = m[2]!;
    return finding('FS_IO_ERROR', journalDev(m[2]!), 'I/O error on {dev} while the journal updated its superblock', { ...ext, op: 'WRITE', what: 'journal superblock' });
  }
  m = JBD2_FLUSH.exec(body);
  if (m) {
    if (m[1] !== undefined) ext.error = m[1];
    ext.journal = m[2]!;
    return finding('FS_IO_ERROR', journalDev(m[2]!), 'I/O errors on {dev} while the journal flushed file data', { ...ext, op: 'WRITE' });
  }
  m = JBD2_DIRTY.exec(body);
  if (m) {
    return finding('FS_WARNING', journalDev(m[1]!), `Dirty metadata buffer found on {dev} (block ${m[2]}): risk of corruption on a crash`, { ...ext, block: m[2]!, detail: 'spotted dirty metadata buffer' });
  }
  m = JBD2_CORRUPT_TX.exec(body);
  if (m) {
    return finding('FS_CORRUPTION', journalDev(m[2]!), `Journal transaction ${m[1]} on {dev} is corrupt`, { ...ext, transaction: m[1]!, journal: m[2]! });
  }
  if (body.startsWith('Invalid checksum recovering') || body.startsWith('journal checksum error') || JBD2_BAD_SB.test(body)) {
    return finding('FS_CORRUPTION', null, `A journal failed its checks: ${short(body)}`, { ...ext, detail: short(body, 400) });
  }
  m = JBD2_RECOVER_IO.exec(body);
  if (m) {
    return finding('FS_IO_ERROR', null, `I/O error ${m[1]} reading journal block ${m[2]} during recovery`, { ...ext, op: 'READ', error: m[1]!, block: m[2]! });
  }
  if (body.startsWith('IO error reading journal superblock') || body.startsWith('Failed to read block at offset')) {
    return finding('FS_IO_ERROR', null, `I/O error reading a journal: ${short(body)}`, { ...ext, op: 'READ', detail: short(body, 400) });
  }
  m = JBD2_LOAD_FAILED.exec(body);
  if (m) {
    if (m[1] !== undefined) ext.error = m[1];
    return finding('FS_ERROR', null, `A journal could not be loaded: ${short(body)}`, { ...ext, detail: short(body, 400) });
  }
  return null;
}

// ---------------------------------------------------------------- xfs

const XFS_SHUTDOWN_NEW = /^(.{1,64}?) \((0x[0-9a-fA-F]{1,8})\) detected at (.{1,200}?) \(([^()\s]{1,200})\)\.\s+Shutting down filesystem/;
const XFS_FORCE_SHUTDOWN = /^xfs_do_force_shutdown\((0x[0-9a-fA-F]{1,8})\) called from line (\d{1,7}) of file (\S{1,200}?)\.\s+Return address/;
const XFS_FORCE_SHUTDOWN_OLD = /^xfs_force_shutdown\(([^,\s()]{1,64}),(0x[0-9a-fA-F]{1,8})\) called from line (\d{1,7}) of file (\S{1,200}?)\.\s+Return address/;
const XFS_META_IO_NEW = /^metadata I\/O error in "([^"]{1,200})" at daddr (0x[0-9a-fA-F]{1,16}) len (\d{1,10}) error (\d{1,5})/;
const XFS_META_IO_OLD = /^metadata I\/O error:? block (0x[0-9a-fA-F]{1,16}) \("([^"]{1,200})"\) error (\d{1,5})(?: (?:numblks|buf count) (\d{1,10}))?/;
// 2.6.3x-3.x xfs_ioerror_alert(): `I/O error occurred: meta-data dev sdb1 block 0x1 ("xlog_iodone") error 5 numblks 8`
const XFS_META_IO_OCCURRED = /^I\/O error occurred: meta-data dev (\S{1,64}) block (0x[0-9a-fA-F]{1,16})\s+\("([^"]{1,200})"\) error (\d{1,5})(?: (?:numblks|buf count) (\d{1,10}))?/;
// 2.6 (no `XFS (dev)` prefix): `I/O error in filesystem ("sdc1") meta-data dev sdc1 block 0x5754 ("xlog_iodone") error 5 buf count 7680`
const XFS_META_IO_26 = /^I\/O error in filesystem \("([^"\s()]{1,64})"\) meta-data dev \S{1,64} block (0x[0-9a-fA-F]{1,16})\s+\("([^"]{1,200})"\) error (\d{1,5})(?: buf count (\d{1,10}))?/;
const XFS_VERIFIER = /^Metadata (corruption|CRC error) detected at (.{1,200}?), (.{1,200})$/;
const XFS_INTERNAL = /^(?:XFS i|I)nternal error (.{1,200}?) at line (\d{1,7}) of file (\S{1,200})\.\s+Caller (\S{1,200})/;
// a check named by a function (XFS_ERROR_REPORT("xfs_trans_cancel"), `xfs_da_do_buf(2)`) rather than an expression (XFS_IS_CORRUPT: `i != 1`)
const XFS_CHECK_NAME = /^[A-Za-z_]\w{0,63}(?:\(\d{1,3}\))?$/;
const XFS_MOUNTING = /^Mounting V(\d{1,2})(?: \(deprecated\))? [Ff]ilesystem(?: ([0-9a-fA-F-]{36}))?/;
// `xfs_imap_to_bp: xfs_trans_read_buf() returned error -117.` · `xfs_log_force: error -5 returned.` (2.6-4.x: positive errors)
const XFS_RETURNED = /^([\w.]{1,64}): (?:(.{1,100}?) returned error (-?\d{1,5})|error (-?\d{1,5}) returned)\.?$/;
// xfs_log_mount() and xfs_mountfs() failures; the lines of one failed mount make one event
const XFS_MOUNT_FAILED = /^(?:log mount\/recovery failed: error (-?\d{1,5})|log mount failed|empty log check failed|failed to locate log tail|SB validate failed(?: with error (-?\d{1,5}))?|[Ff]ailed to read root inode)/;
const SHUTDOWN_FLAGS: [number, string][] = [[0x1, 'metadata_io'], [0x2, 'log_io'], [0x4, 'force_umount'], [0x8, 'corrupt_incore'], [0x10, 'corrupt_ondisk'], [0x20, 'device_removed']];

function xfsFlags(hex: string, ext: Ext): void {
  ext.flags = hex;
  const v = parseInt(hex, 16);
  if (!Number.isFinite(v)) return;
  const names = SHUTDOWN_FLAGS.filter(([bit]) => (v & bit) !== 0).map(([, n]) => n);
  if (names.length) ext.shutdown_flags = names.join(',');
}

function xfsOp(func: string): string | undefined {
  if (/read/i.test(func)) return 'READ';
  if (/write|iodone_callback|ioend_handle_error/i.test(func)) return 'WRITE';
  return undefined;
}

/** An errno XFS reports: -117 EFSCORRUPTED and -74 EFSBADCRC are corruption, -5 EIO an I/O error. */
function xfsErrnoType(err: string): 'FS_CORRUPTION' | 'FS_IO_ERROR' | 'FS_ERROR' {
  const e = err.startsWith('-') ? err.slice(1) : err;
  if (e === '117' || e === '74') return 'FS_CORRUPTION';
  return e === '5' ? 'FS_IO_ERROR' : 'FS_ERROR';
}

/**
 * `xfs_do_force_shutdown(0x1) called from line …` (4.x-5.14) and 2.6's `xfs_force_shutdown(sda2,0x2) …`:
 * FS_SHUTDOWN, held for the `… Detected.  Shutting down filesystem` line that follows.
 */
function xfsForceShutdown(dev: string | null, flags: string, line: string, file: string): Finding {
  const ext: Ext = { fs_type: 'xfs', source: `${file}:${line}` };
  xfsFlags(flags, ext);
  const why = ext.shutdown_flags ? ` (${ext.shutdown_flags})` : '';
  return finding('FS_SHUTDOWN', dev === null ? null : fsDev(dev), `XFS filesystem${dev === null ? '' : ' on {dev}'} is shutting down${why}`, ext, { hold: `xfs-shutdown:${dev ?? ''}` });
}

/** The lines of one failed XFS mount: context of each other, the first one alone is the event. */
function xfsMountFailed(dev: string | null, device: DeviceRef | null, body: string, err: string | undefined): Context {
  const ext: Ext = { detail: short(body, 200) };
  if (err !== undefined) ext.error = err;
  const orphan = finding('FS_MOUNT_FAILED', device, `XFS filesystem${device ? ' on {dev}' : ''} could not be mounted: ${short(body)}`, { fs_type: 'xfs', ...ext });
  return { context: `xfs-mount-failed:${dev ?? ''}`, ext, orphan };
}

/** `dev` null: a line without the device (`XFS: …` of 2.6-3.x kernels). */
function xfs(dev: string | null, body: string): ParseResult {
  const ext: Ext = { fs_type: 'xfs' };
  const device = dev === null ? null : fsDev(dev);
  const on = device ? ' on {dev}' : '';
  if (body.indexOf('Shutting down filesystem') >= 0 || body.startsWith('Filesystem has been shut down')) {
    const n = XFS_SHUTDOWN_NEW.exec(body);
    if (n) {
      ext.reason = n[1]!;
      xfsFlags(n[2]!, ext);
      ext.function = n[3]!;
      ext.source = n[4]!;
    } else {
      const flags = /\((0x[0-9a-fA-F]{1,8})\)/.exec(body);
      if (flags) xfsFlags(flags[1]!, ext);
      if (body.startsWith('Filesystem has been shut down due to ')) {
        const r = /^Filesystem has been shut down due to (.{1,64}?)(?: \(0x|\.|$)/.exec(body);
        ext.reason = r ? r[1]! : 'log error';
      } else {
        const cut = body.search(/ \(0x| [Dd]etected| received/);
        ext.reason = short(cut > 0 ? body.slice(0, cut) : body, 100);
        if (!flags) {
          // before 5.15 the `xfs_do_force_shutdown(…) called from` line came first and holds the event
          const f = finding('FS_SHUTDOWN', device, `XFS filesystem${on} shut down: ${ext.reason}`, ext);
          return { context: `xfs-shutdown:${dev ?? ''}`, ext: { reason: ext.reason }, orphan: f };
        }
      }
    }
    return finding('FS_SHUTDOWN', device, `XFS filesystem${on} shut down: ${ext.reason}`, ext);
  }
  switch (body.charCodeAt(0)) {
    case 77: { // M
      const mo = XFS_MOUNTING.exec(body);
      if (mo) {
        ext.version = `V${mo[1]}`;
        if (body.indexOf('no-recovery mode') > 0) ext.norecovery = 'true';
        // held for its `Ending clean mount`
        return finding('FS_MOUNTED', dev === null ? null : fsDev(dev, mo[2]), `XFS filesystem${on} mounting (${ext.version})`, ext, { hold: `xfs-mount:${dev ?? ''}` });
      }
      const v = XFS_VERIFIER.exec(body);
      if (v) {
        ext.function = v[2]!;
        ext.detail = v[3]!;
        ext.check = v[1] === 'CRC error' ? 'crc' : 'verifier';
        const ino = /^inode (0x[0-9a-fA-F]{1,16})/.exec(v[3]!);
        if (ino) ext.inode = ino[1]!;
        const blk = / block (0x[0-9a-fA-F]{1,16})/.exec(v[3]!);
        if (blk) ext.block = blk[1]!;
        return finding('FS_CORRUPTION', device, `XFS metadata ${v[1]}${on} at ${v[2]}: ${v[3]}`, ext);
      }
      return null;
    }
    case 109: { // m
      let io = XFS_META_IO_NEW.exec(body);
      if (io) {
        Object.assign(ext, { function: io[1]!, daddr: io[2]!, len: io[3]!, error: io[4]! });
      } else {
        io = XFS_META_IO_OLD.exec(body);
        if (!io) return null;
        Object.assign(ext, { daddr: io[1]!, function: io[2]!, error: io[3]! });
        if (io[4] !== undefined) ext.len = io[4];
      }
      return xfsMetaIo(device, ext);
    }
    case 108: { // l
      const l = /^log I\/O error (-?\d{1,5})/.exec(body);
      if (l) return finding('FS_IO_ERROR', device, `XFS log I/O error${on} (error ${l[1]})`, { ...ext, op: 'WRITE', error: l[1]!, what: 'log' });
      const f = XFS_MOUNT_FAILED.exec(body);
      if (f) return xfsMountFailed(dev, device, body, f[1]);
      return null;
    }
    case 101: case 102: case 83: { // e(mpty log check failed) f(ailed to locate log tail / read root inode) S(B validate failed)
      const f = XFS_MOUNT_FAILED.exec(body);
      if (f) return xfsMountFailed(dev, device, body, f[2]);
      return null;
    }
    case 70: { // F
      const f = /^Failing async write on buffer block (0x[0-9a-fA-F]{1,16})/.exec(body);
      if (f) return finding('FS_IO_ERROR', device, `XFS async metadata write${on} failed at block ${f[1]}; retrying`, { ...ext, op: 'WRITE', block: f[1]! });
      const r = XFS_MOUNT_FAILED.exec(body);
      if (r) return xfsMountFailed(dev, device, body, undefined);
      return null;
    }
    case 112: { // p
      const p = /^page discard on page (\S{1,32}), inode (0x[0-9a-fA-F]{1,16}), (?:offset|pos) (\d{1,20})/.exec(body);
      if (p) return finding('FS_IO_ERROR', device, `XFS discarded dirty data of inode ${p[2]}${on} after a write error`, { ...ext, op: 'WRITE', inode: p[2]!, offset: p[3]! });
      return null;
    }
    case 119: { // w
      const w = /^writeback error on (sector|block) (\d{1,20})/.exec(body);
      if (w) return finding('FS_IO_ERROR', device, `XFS writeback${on} failed at ${w[1]} ${w[2]}`, { ...ext, op: 'WRITE', [w[1]!]: w[2]! });
      return null;
    }
    case 120: case 95: { // x(fs_…), _(_xfs_…)
      const s = XFS_FORCE_SHUTDOWN.exec(body);
      if (s) return xfsForceShutdown(dev, s[1]!, s[2]!, s[3]!);
      const r = XFS_RETURNED.exec(body);
      if (!r) return null;
      const err = r[3] ?? r[4]!;
      const type = xfsErrnoType(err);
      ext.function = r[1]!;
      if (r[2] !== undefined) ext.callee = short(r[2], 100);
      ext.error = err;
      if (type === 'FS_IO_ERROR' && r[1] === 'xfs_log_force') ext.what = 'log';
      const what = type === 'FS_CORRUPTION' ? 'found corrupt metadata' : type === 'FS_IO_ERROR' ? 'got an I/O error' : 'failed';
      return finding(type, device, `XFS ${r[1]}${on} ${what} (error ${err})`, ext);
    }
    case 67: // C
      if (body.startsWith('Corruption detected')) {
        return finding('FS_CORRUPTION', device, `XFS detected corruption${on}: unmount and run xfs_repair`, { ...ext, detail: short(body, 400) });
      }
      if (body.startsWith('Corruption not fixed during online repair')) {
        // 4.15+ scrub (xchk_postmortem): online repair could not fix what scrub found
        return finding('FS_CORRUPTION', device, `XFS online repair could not fix the corruption${on}: unmount and run xfs_repair`, { ...ext, detail: short(body, 400), what: 'online repair' });
      }
      if (body.startsWith('Corruption warning')) {
        return finding('FS_CORRUPTION', device, `XFS corruption warning${on}: ${short(body.slice(20))}`, { ...ext, detail: short(body, 400) });
      }
      return null;
    case 73: case 88: { // I(nternal error / I/O error occurred), X(FS internal error, 2.6)
      const i = XFS_INTERNAL.exec(body);
      if (i) {
        Object.assign(ext, { check: i[1]!, line: i[2]!, file: i[3]!, function: i[4]! });
        const corrupt = /CORRUPT/.test(i[1]!) || !XFS_CHECK_NAME.test(i[1]!);
        return finding(corrupt ? 'FS_CORRUPTION' : 'FS_ERROR', device, `XFS internal error${on}: ${short(i[1]!)} at ${i[3]}:${i[2]}`, ext);
      }
      const o = XFS_META_IO_OCCURRED.exec(body);
      if (!o) return null;
      Object.assign(ext, { daddr: o[2]!, function: o[3]!, error: o[4]! });
      if (o[5] !== undefined) ext.len = o[5];
      return xfsMetaIo(device ?? fsDev(o[1]!), ext);
    }
    case 76: // L
      if (body.startsWith('Log inconsistent')) {
        return finding('FS_CORRUPTION', device, `XFS log${on} is inconsistent: ${short(body)}`, { ...ext, detail: short(body, 400), what: 'log' });
      }
      return null;
    case 69: // E
      if (body.startsWith('Ending clean mount')) return xfsCleanMount(dev);
      return null;
    case 85: // U
      if (!body.startsWith('Unmounting Filesystem')) return null;
      return finding('FS_UNMOUNTED', dev === null ? null : fsDevUuidIn(dev, body), `XFS filesystem${on} unmounted`, ext);
    default:
      return null;
  }
}

/** A metadata I/O error: error 117 (EFSCORRUPTED) or 74 (EFSBADCRC) means a verifier failed, not the device. */
function xfsMetaIo(device: DeviceRef | null, ext: Ext): Finding {
  const on = device ? ' on {dev}' : '';
  const op = xfsOp(ext.function!);
  if (op) ext.op = op;
  if (xfsErrnoType(ext.error!) === 'FS_CORRUPTION') {
    return finding('FS_CORRUPTION', device, `XFS metadata${on} at daddr ${ext.daddr} failed verification (error ${ext.error})`, ext);
  }
  return finding('FS_IO_ERROR', device, `XFS metadata I/O error${on} at daddr ${ext.daddr} (error ${ext.error})`, ext);
}

/** `Ending clean mount` (2.6: `Ending clean XFS mount for filesystem: sda1`): joins the held `Mounting` line, alone it is the mount. */
function xfsCleanMount(dev: string | null): Context {
  const orphan = finding('FS_MOUNTED', dev === null ? null : fsDev(dev), `XFS filesystem${dev === null ? '' : ' on {dev}'} mounted`, { fs_type: 'xfs', clean: 'true' });
  return { context: `xfs-mount:${dev ?? ''}`, ext: { clean: 'true' }, orphan };
}

// ---------------------------------------------------------------- btrfs

// ` error (device sdb1[: state EA])` + `: ` or ` in ` (the std_error form); the level is absent in some 3.x-4.x lines
const BTRFS_HEAD = /^ (?:(emergency|alert|critical|error|warning|notice|info|debug) )?\(device ([^\s:)]{1,64})(?::? state ([A-Za-z]{1,16}))?\)(: | in )/;
// `BTRFS: error (device sdb1[: state A]) in …` (3.14+; `btrfs: error` in 3.x)
const BTRFS_STD_HEAD = /^error \(device ([^\s:)]{1,64})(?::? state ([A-Za-z]{1,16}))?\) in /;
const BTRFS_STD = /^([\w.$]{1,64}):(\d{1,7}): errno=(-?\d{1,5}) ?(.{0,300})$/;
const BTRFS_ERRS = /^bdev (\S{1,128}) errs: wr (\d{1,10}), rd (\d{1,10}), flush (\d{1,10}), corrupt (\d{1,10}), gen (\d{1,10})$/;
const BTRFS_CSUM = /^csum failed (?:root (-?\d{1,20}) )?ino (\d{1,20}) off (\d{1,20}) csum (\S{1,80}) (?:expected csum|private) (\S{1,80})(?: mirror (\d{1,3}))?/;
const BTRFS_VERIFY = /^checksum verify failed on (?:logical )?(\d{1,20})(?: mirror (\d{1,3}))? wanted (\S{1,80}) found (\S{1,80}) level (\d{1,2})/;
const BTRFS_TRANSID = /^parent transid verify failed on (?:logical )?(\d{1,20})(?: mirror (\d{1,3}))? wanted (\d{1,20}) found (\d{1,20})/;
const BTRFS_CORRUPT = /^corrupt (leaf|node)[,:] (.{1,400})$/;
const BTRFS_FIXED = /^read error corrected: ino (\d{1,20}) off (\d{1,20}) \(dev (\S{1,128}) sector (\d{1,20})\)/;
const BTRFS_SCRUB = /^(unable to fixup \((\w{1,16})\) error|fixed up error|i\/o error|checksum error) at logical (\d{1,20}) on dev ([^\s,]{1,128})/;
const BTRFS_LOST_WRITE = /^lost page write due to IO error on (\S{1,128}?)(?: \((-?\d{1,5})\))?$/;
// 4.x-5.x `rw 0,0 sector 0x… len …`, 6.x `op 0x1 offset 0x… len …` (6.12+: `root N ino N`)
const BTRFS_DIO = /^direct IO failed (?:root \d{1,20} )?ino (\d{1,20}) (?:rw (\d{1,3}),\d{1,10} sector (0x[0-9a-fA-F]{1,16})|op (0x[0-9a-fA-F]{1,8}) offset (0x[0-9a-fA-F]{1,16})) len (\d{1,10}) err no (-?\d{1,5})/;
const BTRFS_TREE_CORRUPT = /^(?:block=(\d{1,20}) )?(read|write) time tree block corruption detected(?: on logical (\d{1,20}))?/;
// open_ctree() failures; `on sdb` in 3.x-4.x lines without a device prefix
const BTRFS_MOUNT_FAILED = /^(?:failed to read (?:the )?(?:chunk root|tree root|chunk tree|system array|block groups|log tree|fs root)|open_ctree failed)(?: on ([^\s:()]{1,64}))?/;
const BTRFS_FREE_SPACE = /^block group (\d{1,20}) has wrong amount of free space/;
const BTRFS_FREE_SPACE_CACHE = /^failed to load free space cache for block group (\d{1,20})/;
const BTRFS_LEVEL_ERROR = new Set(['emergency', 'alert', 'critical', 'error']);
const KERNEL_LEVELS = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];

/** `Btrfs … on {dev}`, or on a filesystem the line does not name. */
function bOn(device: DeviceRef | null): string {
  return device ? '{dev}' : 'a btrfs filesystem';
}

/** scrub and repair reports: `<what> at logical N on dev /dev/X…` */
function btrfsScrub(device: DeviceRef | null, body: string, ext: Ext): Finding | null {
  const s = BTRFS_SCRUB.exec(body);
  if (!s) return null;
  const kind = s[1]!;
  const d = bOn(device);
  Object.assign(ext, { logical: s[3]!, detail: short(body, 400) });
  const related = { member: memberDev(s[4]!) };
  if (kind.startsWith('fixed')) return finding('FS_READ_ERROR_CORRECTED', device, `Btrfs repaired an error on {member} of ${d} at logical ${s[3]}`, { ...ext, corrected: 'true' }, { related });
  if (kind.startsWith('unable')) return finding('FS_CORRUPTION', device, `Btrfs could not repair an error on {member} of ${d} at logical ${s[3]}`, { ...ext, corrected: 'false', kind: s[2]! }, { related });
  if (kind.startsWith('i/o')) return finding('FS_IO_ERROR', device, `Btrfs I/O error on {member} of ${d} at logical ${s[3]}`, ext, { related });
  return finding('FS_CORRUPTION', device, `Btrfs checksum error on {member} of ${d} at logical ${s[3]}`, ext, { related });
}

/** The errno of btrfs' std_error line (`… in func:line: errno=-5 IO failure`): -5 EIO, -117 EUCLEAN. */
function btrfsStdError(device: DeviceRef, rest: string, ext: Ext): Finding | null {
  const e = BTRFS_STD.exec(rest);
  if (!e) return null;
  Object.assign(ext, { function: e[1]!, line: e[2]!, errno: e[3]!, detail: short(e[4]!, 300) });
  const type = e[3] === '-5' ? 'FS_IO_ERROR' : e[3] === '-117' ? 'FS_CORRUPTION' : 'FS_ERROR';
  return finding(type, device, `Btrfs error on {dev} in ${e[1]}: errno ${e[3]}${e[4] ? ` ${short(e[4])}` : ''}`, ext);
}

/** The lines of one failed mount (`failed to read chunk root`, `open_ctree failed`): the first alone is the event. */
function btrfsMountFailed(device: DeviceRef | null, key: string, body: string): Context {
  const ext: Ext = { detail: short(body, 200) };
  const orphan = finding('FS_MOUNT_FAILED', device, `Btrfs filesystem${device ? ' on {dev}' : ''} could not be mounted: ${short(body)}`, { fs_type: 'btrfs', ...ext });
  return { context: `btrfs-mount-failed:${key}`, ext, orphan };
}

function btrfs(m: string, kernelLevel: number): ParseResult {
  // m is after `BTRFS` (or 3.x's `btrfs`)
  const ext: Ext = { fs_type: 'btrfs' };
  const c0 = m.charCodeAt(0);
  if (c0 === 58 /* : */) {
    // `BTRFS: …` without a device (3.14-4.x and WARN lines; `btrfs: …` in 3.x)
    if (m.charCodeAt(1) !== 32) return null;
    const body = m.slice(2);
    const std = BTRFS_STD_HEAD.exec(body);
    if (std) {
      if (std[2] !== undefined) ext.state = std[2];
      return btrfsStdError(fsDev(std[1]!), body.slice(std[0].length), ext);
    }
    return btrfsBody(null, body, ext, KERNEL_LEVELS[kernelLevel] ?? 'info', false);
  }
  if (c0 !== 32) return null;
  const h = BTRFS_HEAD.exec(m);
  // 3.x `btrfs csum failed ino …`, `btrfs read error corrected: …`
  if (!h) return btrfsBody(null, m.slice(1), ext, KERNEL_LEVELS[kernelLevel] ?? 'info', false);
  const level = h[1] ?? KERNEL_LEVELS[kernelLevel] ?? 'info';
  if (h[3] !== undefined) ext.state = h[3];
  const device = fsDev(h[2]!);
  if (h[4] === ' in ') return btrfsStdError(device, m.slice(h[0].length), ext);
  if (h[1] !== undefined) ext.log_level = level;
  // an unknown line is an FS_ERROR only when its printed level says so
  return btrfsBody(device, m.slice(h[0].length), ext, level, h[1] !== undefined);
}

function btrfsBody(device: DeviceRef | null, body: string, ext: Ext, level: string, fallback: boolean): ParseResult {
  const d = bOn(device);
  switch (body.charCodeAt(0)) {
    case 98: { // b
      const e = BTRFS_ERRS.exec(body);
      if (e) {
        const [wr, rd, flush, corrupt, gen] = [e[2]!, e[3]!, e[4]!, e[5]!, e[6]!];
        Object.assign(ext, { wr, rd, flush, corrupt, gen });
        const related = { member: memberDev(e[1]!) };
        const counts = `wr ${wr}, rd ${rd}, flush ${flush}, corrupt ${corrupt}, gen ${gen}`;
        if (!BTRFS_LEVEL_ERROR.has(level)) {
          // printed at mount: the counters a device has accumulated, not a new error
          if (wr === '0' && rd === '0' && flush === '0' && corrupt === '0' && gen === '0') return null;
          return finding('FS_WARNING', device, `Btrfs device {member} of ${d} has recorded errors (${counts})`, { ...ext, detail: 'device error counters' }, { related });
        }
        const ioErrors = wr !== '0' || rd !== '0' || flush !== '0';
        if (rd !== '0' && wr === '0') ext.op = 'READ';
        else if (wr !== '0' && rd === '0') ext.op = 'WRITE';
        return finding(ioErrors ? 'FS_IO_ERROR' : 'FS_CORRUPTION', device,
          `Btrfs ${ioErrors ? 'I/O' : 'checksum/generation'} error on {member} of ${d} (${counts})`, ext, { related });
      }
      if (body.startsWith('bad tree block start')) {
        return finding('FS_CORRUPTION', device, `Btrfs metadata corruption on ${d}: ${short(body)}`, { ...ext, detail: short(body, 400) });
      }
      const t = BTRFS_TREE_CORRUPT.exec(body);
      if (t) return btrfsTreeCorrupt(device, t, body, ext);
      const f = BTRFS_FREE_SPACE.exec(body);
      if (f) {
        // held for the `failed to load free space cache … rebuilding it now` that follows
        return finding('FS_WARNING', device, `Btrfs free space cache of block group ${f[1]} on ${d} is wrong`, { ...ext, block_group: f[1]!, detail: short(body, 400) },
          { hold: `btrfs-fsc:${device?.printed ?? ''}:${f[1]}` });
      }
      break;
    }
    case 99: { // c
      const c = BTRFS_CSUM.exec(body);
      if (c) {
        if (c[1] !== undefined) ext.root = c[1];
        Object.assign(ext, { inode: c[2]!, offset: c[3]!, csum: c[4]!, expected_csum: c[5]! });
        if (c[6] !== undefined) ext.mirror = c[6];
        return finding('FS_CORRUPTION', device, `Btrfs data checksum mismatch on ${d}: inode ${c[2]} offset ${c[3]}`, ext);
      }
      const v = BTRFS_VERIFY.exec(body);
      if (v) {
        Object.assign(ext, { logical: v[1]!, wanted: v[3]!, found: v[4]!, tree_level: v[5]! });
        if (v[2] !== undefined) ext.mirror = v[2];
        return finding('FS_CORRUPTION', device, `Btrfs metadata checksum mismatch on ${d} at logical ${v[1]}`, ext);
      }
      const k = BTRFS_CORRUPT.exec(body);
      if (k) {
        ext.detail = short(body, 400);
        const rb = /root=(\d{1,20}) block=(\d{1,20})/.exec(k[2]!);
        if (rb) { ext.root = rb[1]!; ext.logical = rb[2]!; }
        return finding('FS_CORRUPTION', device, `Btrfs corrupt ${k[1]} on ${d}: ${short(k[2]!)}`, ext);
      }
      const s = btrfsScrub(device, body, ext);
      if (s) return s;
      break;
    }
    case 112: { // p
      const t = BTRFS_TRANSID.exec(body);
      if (t) {
        Object.assign(ext, { logical: t[1]!, wanted: t[3]!, found: t[4]! });
        if (t[2] !== undefined) ext.mirror = t[2];
        return finding('FS_CORRUPTION', device, `Btrfs metadata on ${d} at logical ${t[1]} has generation ${t[4]}, wanted ${t[3]}`, ext);
      }
      break;
    }
    case 114: case 119: { // r(ead error corrected / read time …) w(rite time …)
      const r = BTRFS_FIXED.exec(body);
      if (r) {
        Object.assign(ext, { inode: r[1]!, offset: r[2]!, sector: r[4]!, corrected: 'true' });
        return finding('FS_READ_ERROR_CORRECTED', device, `Btrfs corrected a read error on {member} of ${d} from another copy (inode ${r[1]})`, ext, { related: { member: memberDev(r[3]!) } });
      }
      const t = BTRFS_TREE_CORRUPT.exec(body);
      if (t) return btrfsTreeCorrupt(device, t, body, ext);
      break;
    }
    case 117: case 102: case 105: case 111: { // u(nable to fixup) f(ixed up / forced / first / failed) i(/o error) o(pen_ctree failed)
      if (body === 'forced readonly' || body.startsWith('forced readonly')) {
        return finding('FS_REMOUNT_READ_ONLY', device, `Btrfs filesystem${device ? ' on {dev}' : ''} was forced read-only after an error`, ext);
      }
      if (body.startsWith('first mount of filesystem ')) {
        return device ? finding('FS_MOUNTED', fsDevUuidIn(device.printed, body), 'Btrfs filesystem on {dev} mounted', ext) : null;
      }
      const mf = BTRFS_MOUNT_FAILED.exec(body);
      // keyed by the prefix's device: 3.x's `… on sdb` and the device-less `open_ctree failed` after it join
      if (mf) return btrfsMountFailed(device ?? (mf[1] !== undefined ? fsDev(mf[1]) : null), device?.printed ?? '', body);
      const fc = BTRFS_FREE_SPACE_CACHE.exec(body);
      if (fc) {
        const key = `btrfs-fsc:${device?.printed ?? ''}:${fc[1]}`;
        const orphan = finding('FS_WARNING', device, `Btrfs free space cache of block group ${fc[1]} on ${d} could not be loaded; rebuilding it`, { ...ext, block_group: fc[1]!, detail: short(body, 400) });
        return { context: key, ext: { cache: 'rebuilt' }, orphan };
      }
      const s = btrfsScrub(device, body, ext);
      if (s) return s;
      break;
    }
    case 108: { // l
      if (body.startsWith('last unmount of filesystem ')) {
        return device ? finding('FS_UNMOUNTED', fsDevUuidIn(device.printed, body), 'Btrfs filesystem on {dev} unmounted', ext) : null;
      }
      const w = BTRFS_LOST_WRITE.exec(body);
      if (w) {
        if (w[2] !== undefined) ext.error = w[2];
        return finding('FS_IO_ERROR', device, `Btrfs lost a page write to {member} of ${d} after an I/O error`, { ...ext, op: 'WRITE' }, { related: { member: memberDev(w[1]!) } });
      }
      break;
    }
    case 109: // m
      if (body.startsWith('mounting filesystem ') && device) {
        return finding('FS_MOUNTED', fsDevUuidIn(device.printed, body), 'Btrfs filesystem on {dev} mounted', ext);
      }
      break;
    case 101: { // e
      const s = /^error writing primary super block to device (\d{1,10})/.exec(body);
      if (s) return finding('FS_IO_ERROR', device, `Btrfs could not write the primary superblock to device ${s[1]} of ${d}`, { ...ext, op: 'WRITE', devid: s[1]!, what: 'superblock' });
      break;
    }
    case 84: { // T
      // btrfs_abort_transaction()'s WARN: the transaction (btrfs' journal) is aborted
      const t = /^Transaction aborted \(error (-?\d{1,5})\)/.exec(body);
      if (t) return finding('FS_JOURNAL_ABORTED', device, `A btrfs transaction${device ? ' on {dev}' : ''} was aborted (error ${t[1]})`, { ...ext, errno: t[1]!, detail: 'transaction aborted' });
      break;
    }
    case 83: // S
      if (body.startsWith('Skipping commit of aborted transaction')) {
        return finding('FS_JOURNAL_ABORTED', device, `Btrfs skipped the commit of an aborted transaction${device ? ' on {dev}' : ''}`, { ...ext, detail: 'skipping commit of aborted transaction' });
      }
      break;
    case 100: { // d
      const io = BTRFS_DIO.exec(body);
      if (io) {
        Object.assign(ext, { inode: io[1]!, len: io[6]!, error: io[7]! });
        const opNo = io[2] !== undefined ? Number(io[2]) : parseInt(io[4]!, 16) & 0xff;
        if (opNo === 0) ext.op = 'READ';
        else if (opNo === 1) ext.op = 'WRITE';
        if (io[3] !== undefined) ext.sector = io[3];
        else ext.offset = io[5]!;
        return finding('FS_IO_ERROR', device, `Btrfs direct I/O${ext.op ? ` ${ext.op}` : ''} of inode ${io[1]} on ${d} failed (error ${io[7]})`, ext);
      }
      const m = /^devid (\d{1,10}) uuid (\S{1,64}) is missing/.exec(body);
      if (m) return finding('FS_WARNING', device, `Btrfs filesystem on ${d} is missing device ${m[1]}`, { ...ext, devid: m[1]!, device_uuid: m[2]!, detail: 'device missing' });
      break;
    }
    default:
      break;
  }
  if (fallback && device && BTRFS_LEVEL_ERROR.has(level)) {
    return finding('FS_ERROR', device, `Btrfs ${level} on {dev}: ${short(body)}`, { ...ext, detail: short(body, 400) });
  }
  return null;
}

function btrfsTreeCorrupt(device: DeviceRef | null, t: RegExpExecArray, body: string, ext: Ext): Finding {
  const logical = t[1] ?? t[3];
  if (logical !== undefined) ext.logical = logical;
  ext.check = `${t[2]} time`;
  ext.detail = short(body, 400);
  return finding('FS_CORRUPTION', device, `Btrfs ${t[2]}-time tree block check found corruption on ${bOn(device)}${logical !== undefined ? ` at logical ${logical}` : ''}`, ext);
}

// ---------------------------------------------------------------- dispatch

function parse(rec: ClassifiedRecord): ParseResult {
  let m = rec.message;
  if (m.length > 2048) m = m.slice(0, 2048);
  m = trimLineEnd(m);
  switch (m.charCodeAt(0)) {
    case 69: // E
      if (m.startsWith('EXT4-fs')) return extFamily(m.slice(7), 'ext4');
      if (m.startsWith('EXT3-fs')) return extFamily(m.slice(7), 'ext3');
      if (m.startsWith('EXT2-fs')) return extFamily(m.slice(7), 'ext2');
      if (m.startsWith('Ending clean XFS mount for filesystem: ')) return xfs26Dev(m.slice(39), (d) => xfsCleanMount(d));
      return null;
    case 88: // X
      if (m.startsWith('XFS (')) {
        const close = m.indexOf('): ', 5);
        if (close < 0 || close > 5 + 64) return null;
        return xfs(m.slice(5, close), m.slice(close + 3));
      }
      if (m.startsWith('XFS: ')) return xfs(null, m.slice(5));
      if (m.startsWith('XFS mounting filesystem ')) {
        // 2.6: `XFS mounting filesystem sda1`, then `Ending clean XFS mount for filesystem: sda1`
        return xfs26Dev(m.slice(24), (d) => finding('FS_MOUNTED', fsDev(d), 'XFS filesystem on {dev} mounting', { fs_type: 'xfs' }, { hold: `xfs-mount:${d}` }));
      }
      return null;
    case 70: { // F — 2.6 xfs_fs_cmn_err(): `Filesystem "dm-1": <message>`
      if (!m.startsWith('Filesystem "')) return null;
      const close = m.indexOf('": ', 12);
      if (close < 13 || close > 12 + 64) return null;
      return xfs(m.slice(12, close), m.slice(close + 3));
    }
    case 120: { // x — 2.6 `xfs_force_shutdown(sda2,0x2) called from line …`
      const s = XFS_FORCE_SHUTDOWN_OLD.exec(m);
      return s ? xfsForceShutdown(s[1]!, s[2]!, s[3]!, s[4]!) : null;
    }
    case 73: { // I — 2.6 xfs_ioerror_alert()
      const io = XFS_META_IO_26.exec(m);
      if (!io) return null;
      const ext: Ext = { fs_type: 'xfs', daddr: io[2]!, function: io[3]!, error: io[4]! };
      if (io[5] !== undefined) ext.len = io[5];
      return xfsMetaIo(fsDev(io[1]!), ext);
    }
    case 66: // B
      if (m.startsWith('BTRFS')) return btrfs(m.slice(5), rec.level);
      return null;
    case 98: // b — 3.x `btrfs: …`, `btrfs csum failed …`
      if (m.startsWith('btrfs')) return btrfs(m.slice(5), rec.level);
      return null;
    case 65: { // A
      const a = ABORTING.exec(m);
      if (!a) return null;
      return finding('FS_JOURNAL_ABORTED', journalDev(a[1]!), 'The journal of {dev} was aborted', { fs_type: 'jbd2', journal: a[1]! });
    }
    case 74: // J
      if (m.startsWith('JBD2: ')) return jbd2(m.slice(6));
      return null;
    default:
      return null;
  }
}

/** A 2.6 line that ends with the device name: `f(name)`, or null when it is not one. */
function xfs26Dev(name: string, f: (dev: string) => ParseResult): ParseResult {
  return DEV_NAME.test(name) ? f(name) : null;
}

export const parser: Parser = { name: 'fs', systems: ['fs'], parse };
