// Linux software RAID (drivers/md: md.c, raid1.c, raid10.c, raid5.c).
// The device is the array (`md0`, `md127`; `mdX` for an LVM/dm-raid array,
// which has no block device of its own); the member disk goes to
// `related.member`.
//
// Kernel formats (mdname() is the array, %pg / bdevname() the member):
//   `md/raid1:md0: Disk failure on sdb1, disabling device.` — raid1/raid10/raid5
//     print it with `\nmd/raid1:md0: Operation continuing on 1 devices.` in the
//     same printk (one /dev/kmsg record with an escaped newline; two dmesg lines)
//   `md/raid1:md0: Operation continuing on 1 devices.`
//   `md/raid:md1: Cannot continue operation (2/4 failed).` (5.19+)
//   `md/raid1:md0: active with 1 out of 2 mirrors` · `md/raid10:md2: active with 3 out of 4 devices`
//   `md/raid:md1: raid level 5 active with 3 out of 4 devices, algorithm 2`
//   `md/raid:md1: not enough operational devices (2/4 failed)` · `md/raid10:md2: not enough operational mirrors.`
//   `md/raid:md1: cannot start dirty degraded array.` · `… starting dirty degraded array - data corruption possible.`
//   `md/raid:md1: failed to run raid set.` (after the reason the array did not start)
//   `md/raid:md1: read error corrected (8 sectors at 2048 on sdc)` (raid1, raid10 alike)
//   `md/raid:md1: read error not correctable (sector 2048 on sdc).` · `… read error NOT corrected!! (sector 2048 on sdc).`
//   `md/raid1:md0: sdb1: unrecoverable I/O read error for block 2048` (raid10 alike)
//   `md/raid10:md2: read correction write failed (8 sectors at 2048 on sdd1)`
//   `md/raid10:md2: unable to read back corrected sectors (8 sectors at 2048 on sdd1)`
//   `md: recovery of RAID array md0` · `md: md0: recovery done.` · `md: md0: recovery interrupted.`
//     the action word is `recovery`, `resync`, `data-check`, `requested-resync`, `reshape`
//     up to 6.10 and `recover`, `resync`, `check`, `repair`, `reshape` from 6.11;
//     2.6.x printed `md: syncing RAID array md0` and `md: md0: sync done.`
//   `md: kicking non-fresh sdb1 from array!` — the array is not named
//   `md: super_written gets error=-5` (4.x+; 5.x prints the blk_status_t, `error=10`),
//     `md: super_written gets error=-5, uptodate=0` (2.6/3.x),
//     `md: write_disk_sb failed for device hdf5` (2.4/early 2.6): a superblock
//     write to a member failed; only the last names it
//   `md: invalid raid superblock magic on sdc3` · `md: invalid superblock checksum on sdc3`
//     (the `md: sdc3 has invalid sb, not importing!` that follows is no event)
//   `md0: detected capacity change from 0 to 2093056` — classify.ts routes
//     `mdN: …` here before the block rule sees it: BLK_CAPACITY_CHANGE.
//   2.4: `md5: no spare disk to reconstruct array! -- continuing in degraded mode`
// 2.4 and 2.6 kernels (up to 2.6.3x) printed `raid1:`, `raid5:`, `raid6:`,
// `raid10:` instead of `md/<pers>:`, mostly without the array:
//   `raid5: Disk failure on sda4, disabling device. Operation continuing on 3 devices` (one line)
//   `raid1: Disk failure on sda5, disabling device. \n\tOperation continuing on 1 devices`
//     (syslog writes the second line alone, indented: `       Operation continuing on 1 devices`)
//   `raid5: Disk failure on sdc, disabling device.\nraid5: Operation continuing on 3 devices.` (2.6.2x)
//   `raid5: failed to run raid set md0` · `raid5: not enough operational devices for md0 (2/4 failed)`
//   `raid5: cannot start dirty degraded array for md0`
//   `raid5: raid level 5 set md4 active with 3 out of 4 devices, algorithm 2` · `raid1: raid set md0 active with 1 out of 2 mirrors`
//   `raid1: sdb1: unrecoverable I/O read error for block 2048` · `raid5: read error not correctable.`
//   and with the array: `raid5:md0: read error not correctable (sector 2048 on sdb1).`,
//   `raid5:md0: read error corrected (8 sectors at 2048 on sdb1)`, `raid10:md2: …`
// Decisions: a start of any sync action is MD_RECOVERY_STARTED (ext.action says
// which); `data-check`/`check` done is MD_CHECK_DONE; `resync`,
// `requested-resync`, `repair` and `reshape` done are MD_RESYNC_DONE; any
// action `interrupted` is MD_RECOVERY_INTERRUPTED. `not clean -- starting
// background reconstruction` gives no event (the `resync of RAID array` line
// that follows does), nor do `Too many read errors, failing device` and the
// raid10 read_error threshold lines (the `Disk failure` line that follows does).
// An array that cannot start (`not enough operational devices`, `cannot start
// dirty degraded array`) is MD_ARRAY_FAILED, held under `md-run:<array>` so that
// the `failed to run raid set` line after it joins it; that line alone (the
// reason was lost) is MD_ARRAY_FAILED of its own. A running array that fails
// (`Cannot continue operation`) is MD_ARRAY_FAILED too.
// A kicked member has no array in the line: device null, the member in
// related.member; so do the old `raidN:` lines that name no array.
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, Context, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const MEMBER = '([^\\s,()]{1,64})';
const ARRAY = '([^\\s:,()]{1,64})';
const DISK_FAILURE = new RegExp(`^Disk failure on ${MEMBER}, disabling device\\.?`);
const CONTINUING = /Operation continuing on (\d{1,5}) devices?\.?$/;
const ACTIVE = /^active with (\d{1,5}) out of (\d{1,5}) (mirrors|devices)/;
const RAID_LEVEL = /^raid level (\d{1,3}) active with (\d{1,5}) out of (\d{1,5}) devices(?:, algorithm (\d{1,5}))?/;
const CANNOT_CONTINUE = /^Cannot continue operation \((\d{1,5})\/(\d{1,5}) failed\)\.?$/;
const NOT_ENOUGH = /^not enough operational (?:devices|mirrors)(?: \((\d{1,5})\/(\d{1,5}) failed\))?\.?$/;
const CORRECTED = new RegExp(`^read error corrected \\((\\d{1,10}) sectors at (\\d{1,20}) on ${MEMBER}\\)\\.?$`);
const NOT_CORRECTABLE = new RegExp(`^read error (?:not correctable|NOT corrected!!) \\(sector (\\d{1,20}) on ${MEMBER}\\)\\.?$`);
const UNRECOVERABLE = new RegExp(`^${MEMBER}: unrecoverable I/O read error for block (\\d{1,20})$`);
const R10_CORRECTION = new RegExp(`^(read correction write failed|unable to read back corrected sectors) \\((\\d{1,10}) sectors at (\\d{1,20}) on ${MEMBER}\\)\\.?$`);

const SYNC_START = /^(recovery|recover|resync|data-check|check|requested-resync|repair|reshape) of RAID array ([^\s:]{1,64})$/;
const SYNC_END = /^([^\s:]{1,64}): (recovery|recover|resync|data-check|check|requested-resync|repair|reshape|sync) (done|interrupted)\.?$/;
const KICKED = new RegExp(`^kicking non-fresh ${MEMBER} from array!?$`);
const SUPER_WRITTEN = /^super_written gets error=(-?\d{1,6})(?:, uptodate=(\d{1,3}))?$/;
const WRITE_DISK_SB = new RegExp(`^write_disk_sb failed for device ${MEMBER}$`);
const INVALID_SB = new RegExp(`^invalid (raid superblock magic|superblock checksum) on ${MEMBER}$`);
const CAPACITY = /^detected capacity change from (\d{1,20}) to (\d{1,20})$/;
const NO_SPARE = 'no spare disk to reconstruct array! -- continuing in degraded mode';

// 2.4 / 2.6 `raidN: <body>`, the array named in the body or not at all
const OLD_FAILED_TO_RUN = new RegExp(`^failed to run raid set ${ARRAY}$`);
const OLD_NOT_ENOUGH = new RegExp(`^not enough operational devices for ${ARRAY} \\((\\d{1,5})/(\\d{1,5}) failed\\)$`);
const OLD_DIRTY = new RegExp(`^cannot start dirty degraded array for ${ARRAY}$`);
const OLD_RAID_SET = new RegExp(`^raid set ${ARRAY} active with (\\d{1,5}) out of (\\d{1,5}) (mirrors|devices)$`);
const OLD_RAID_LEVEL = new RegExp(`^raid level (\\d{1,3}) set ${ARRAY} active with (\\d{1,5}) out of (\\d{1,5}) devices(?:, algorithm (\\d{1,5}))?$`);
const OLD_READ_ERROR = /^read error (not correctable|NOT corrected!!|corrected!!)\.?$/;
/** the old personality prefixes: `raid1`, `raid5`, `raid6`, `raid10`, `raid4` */
const OLD_PERS = /^raid(?:1|4|5|6|10)$/;

function arrayRef(name: string): DeviceRef {
  // dm-raid arrays are all called `mdX`: no block device of that name exists
  return name === 'mdX' ? { printed: name } : { printed: name, name };
}

function memberRef(name: string): DeviceRef {
  return { printed: name, name };
}

function levelOf(pers: string): string | undefined {
  if (pers === 'raid1') return '1';
  if (pers === 'raid10') return '10';
  if (pers === 'raid0') return '0';
  if (pers === 'linear') return 'linear';
  // `raid` is raid4/5/6; the 2.4/2.6 names say which
  if (pers === 'raid5') return '5';
  if (pers === 'raid6') return '6';
  if (pers === 'raid4') return '4';
  return undefined;
}

function baseExt(pers: string): Record<string, string> {
  const ext: Record<string, string> = { personality: pers };
  const level = levelOf(pers);
  if (level !== undefined) ext.level = level;
  return ext;
}

/** How a message names the array: `md array {dev}`, or a phrase when the line names none. */
function arrayWords(device: DeviceRef | null): string {
  return device ? 'md array {dev}' : 'an md array';
}

/** The hold key an array that did not start waits under for its `failed to run raid set` line. */
function runKey(array: string): string {
  return `md-run:${array}`;
}

function diskFailure(pers: string, device: DeviceRef | null, member: string, active: string | undefined): Finding {
  const ext = baseExt(pers);
  if (active !== undefined) ext.active = active;
  const a = arrayWords(device);
  return {
    type: 'MD_DISK_FAILURE', device, related: { member: memberRef(member) },
    msg: active !== undefined ? `${a}: member {member} failed and was disabled; ${active} devices remain` : `${a}: member {member} failed and was disabled`,
    ext,
  };
}

function continuing(pers: string | null, device: DeviceRef | null, active: string): Finding {
  const ext = pers === null ? {} : baseExt(pers);
  ext.active = active;
  return { type: 'MD_ARRAY_DEGRADED', device, msg: `${device ? 'md array {dev} runs' : 'An md array runs'} degraded on ${active} devices`, ext };
}

/** An array that did not start, for `reason`; held for the `failed to run raid set` line. */
function notStarted(pers: string, array: string, msg: string, ext: Record<string, string>): Finding {
  return { type: 'MD_ARRAY_FAILED', device: arrayRef(array), msg, ext: { ...baseExt(pers), ...ext }, hold: runKey(array) };
}

/** `failed to run raid set`: joins the held reason, or stands alone. */
function failedToRun(pers: string, array: string): Context {
  return {
    context: runKey(array),
    ext: { run: 'failed' },
    orphan: { type: 'MD_ARRAY_FAILED', device: arrayRef(array), msg: 'md array {dev} could not be started', ext: { ...baseExt(pers), state: 'failed', run: 'failed' } },
  };
}

/** `md/<pers>:<array>: <body>` (and 2.6's `raid5:<array>: <body>`) */
function personality(pers: string, array: string, full: string): ParseResult {
  const nl = full.indexOf('\n');
  const body = nl < 0 ? full : full.slice(0, nl);
  const device = arrayRef(array);
  // `<member>: unrecoverable I/O read error …` starts with the member's name
  if (body.indexOf(': unrecoverable I/O read error') > 0) return unrecoverable(pers, device, body);
  switch (body.charCodeAt(0)) {
    case 68: { // D
      const m = DISK_FAILURE.exec(body);
      if (!m) return null;
      let active: string | undefined;
      if (nl >= 0) active = CONTINUING.exec(full.slice(nl + 1, nl + 200))?.[1];
      return diskFailure(pers, device, m[1]!, active);
    }
    case 79: { // O
      const m = CONTINUING.exec(body);
      if (!m || !body.startsWith('Operation')) return null;
      return continuing(pers, device, m[1]!);
    }
    case 97: { // a
      const m = ACTIVE.exec(body);
      if (!m) return null;
      return startedDegraded(pers, device, m[1]!, m[2]!, m[3]!);
    }
    case 114: { // r
      if (body.startsWith('raid level ')) {
        const m = RAID_LEVEL.exec(body);
        if (!m) return null;
        return startedDegradedLevel(pers, device, m[1]!, m[2]!, m[3]!, m[4]);
      }
      if (body.startsWith('read error corrected')) {
        const m = CORRECTED.exec(body);
        if (!m) return null;
        return {
          type: 'MD_READ_ERROR_CORRECTED', device, related: { member: memberRef(m[3]!) },
          msg: `md array {dev}: read error on {member} corrected from redundancy (${m[1]} sectors at ${m[2]})`,
          ext: { ...baseExt(pers), sectors: m[1]!, sector: m[2]! },
        };
      }
      if (body.startsWith('read error ')) {
        const m = NOT_CORRECTABLE.exec(body);
        if (!m) return null;
        return {
          type: 'MD_READ_ERROR_NOT_CORRECTABLE', device, related: { member: memberRef(m[2]!) },
          msg: `md array {dev}: read error on {member} at sector ${m[1]} could not be corrected`,
          ext: { ...baseExt(pers), sector: m[1]! },
        };
      }
      if (body.startsWith('read correction write failed')) return r10Correction(pers, device, body);
      return null;
    }
    case 117: // u
      if (body.startsWith('unable to read back corrected sectors')) return r10Correction(pers, device, body);
      return null;
    case 67: { // C
      const m = CANNOT_CONTINUE.exec(body);
      if (!m) return null;
      return {
        type: 'MD_ARRAY_FAILED', device,
        msg: `md array {dev} failed: ${m[1]} of ${m[2]} devices failed, it cannot continue`,
        ext: { ...baseExt(pers), state: 'failed', failed: m[1]!, total: m[2]! },
      };
    }
    case 110: { // n
      const m = NOT_ENOUGH.exec(body);
      if (!m) return null;
      const ext: Record<string, string> = { state: 'failed' };
      if (m[1] !== undefined) {
        ext.failed = m[1];
        ext.total = m[2]!;
      }
      return notStarted(pers, array, 'md array {dev} cannot start: not enough working devices', ext);
    }
    case 99: // c
      if (body.startsWith('cannot start dirty degraded array')) {
        return notStarted(pers, array, 'md array {dev} is dirty and degraded and was not started', { state: 'dirty-degraded' });
      }
      return null;
    case 102: // f
      if (body === 'failed to run raid set.' || body === 'failed to run raid set') return failedToRun(pers, array);
      return null;
    case 115: // s
      if (body.startsWith('starting dirty degraded array')) {
        return { type: 'MD_ARRAY_DEGRADED', device, msg: 'md array {dev} started dirty and degraded: data corruption is possible', ext: { ...baseExt(pers), state: 'dirty-degraded' } };
      }
      return null;
    default:
      return null;
  }
}

function startedDegraded(pers: string, device: DeviceRef, active: string, total: string, what: string): Finding | null {
  if (!(Number(active) < Number(total))) return null;
  return {
    type: 'MD_ARRAY_DEGRADED', device,
    msg: `md array {dev} started degraded: ${active} of ${total} ${what} active`,
    ext: { ...baseExt(pers), active, total },
  };
}

function startedDegradedLevel(pers: string, device: DeviceRef, level: string, active: string, total: string, algorithm: string | undefined): Finding | null {
  if (!(Number(active) < Number(total))) return null;
  const ext: Record<string, string> = { personality: pers, level, active, total };
  if (algorithm !== undefined) ext.algorithm = algorithm;
  return { type: 'MD_ARRAY_DEGRADED', device, msg: `md array {dev} (raid${level}) started degraded: ${active} of ${total} devices active`, ext };
}

function unrecoverable(pers: string, device: DeviceRef | null, body: string): Finding | null {
  const m = UNRECOVERABLE.exec(body);
  if (!m) return null;
  const member = m[1]!;
  const related = member === '???' ? undefined : { member: memberRef(member) };
  const a = arrayWords(device);
  return {
    type: 'MD_READ_ERROR_NOT_CORRECTABLE', device, ...(related ? { related } : {}),
    msg: related ? `${a}: unrecoverable read error on {member} for block ${m[2]}` : `${a}: unrecoverable read error for block ${m[2]}`,
    ext: { ...baseExt(pers), block: m[2]! },
  };
}

function r10Correction(pers: string, device: DeviceRef, body: string): Finding | null {
  const m = R10_CORRECTION.exec(body);
  if (!m) return null;
  const writeFailed = m[1]!.startsWith('read correction');
  return {
    type: 'MD_READ_ERROR_NOT_CORRECTABLE', device, related: { member: memberRef(m[4]!) },
    msg: writeFailed ? `md array {dev}: rewriting a read error on {member} failed (${m[2]} sectors at ${m[3]})`
      : `md array {dev}: a corrected read error on {member} did not read back (${m[2]} sectors at ${m[3]})`,
    ext: { ...baseExt(pers), sectors: m[2]!, sector: m[3]!, reason: writeFailed ? 'correction_write_failed' : 'readback_failed' },
  };
}

/** 2.4/2.6 `raidN: <body>`: the array is named in the body, or not at all. */
function oldPersonality(pers: string, full: string): ParseResult {
  const nl = full.indexOf('\n');
  const body = nl < 0 ? full : full.slice(0, nl);
  if (body.indexOf(': unrecoverable I/O read error') > 0) return unrecoverable(pers, null, body);
  switch (body.charCodeAt(0)) {
    case 68: { // D: `Disk failure on X, disabling device.` + ` Operation continuing on N devices` on the line or the next
      const m = DISK_FAILURE.exec(body);
      if (!m) return null;
      const rest = nl < 0 ? body.slice(m[0].length, m[0].length + 200) : full.slice(nl + 1, nl + 200);
      return diskFailure(pers, null, m[1]!, CONTINUING.exec(rest)?.[1]);
    }
    case 79: { // O
      const m = CONTINUING.exec(body);
      if (!m || !body.startsWith('Operation')) return null;
      return continuing(pers, null, m[1]!);
    }
    case 102: { // f
      const m = OLD_FAILED_TO_RUN.exec(body);
      return m ? failedToRun(pers, m[1]!) : null;
    }
    case 110: { // n
      const m = OLD_NOT_ENOUGH.exec(body);
      if (!m) return null;
      return notStarted(pers, m[1]!, 'md array {dev} cannot start: not enough working devices', { state: 'failed', failed: m[2]!, total: m[3]! });
    }
    case 99: { // c
      const m = OLD_DIRTY.exec(body);
      if (!m) return null;
      return notStarted(pers, m[1]!, 'md array {dev} is dirty and degraded and was not started', { state: 'dirty-degraded' });
    }
    case 114: { // r
      if (body.startsWith('raid set ')) {
        const m = OLD_RAID_SET.exec(body);
        return m ? startedDegraded(pers, arrayRef(m[1]!), m[2]!, m[3]!, m[4]!) : null;
      }
      if (body.startsWith('raid level ')) {
        const m = OLD_RAID_LEVEL.exec(body);
        return m ? startedDegradedLevel(pers, arrayRef(m[2]!), m[1]!, m[3]!, m[4]!, m[5]) : null;
      }
      const m = OLD_READ_ERROR.exec(body);
      if (!m) return null;
      if (m[1] === 'corrected!!') {
        return { type: 'MD_READ_ERROR_CORRECTED', device: null, msg: 'An md array corrected a read error from redundancy', ext: baseExt(pers) };
      }
      return { type: 'MD_READ_ERROR_NOT_CORRECTABLE', device: null, msg: 'An md array could not correct a read error', ext: baseExt(pers) };
    }
    default:
      return null;
  }
}

function actionKind(action: string): 'recovery' | 'check' | 'resync' {
  if (action === 'recovery' || action === 'recover') return 'recovery';
  if (action === 'data-check' || action === 'check') return 'check';
  return 'resync';
}

/** `md: <body>` */
function mdCore(body: string): Finding | null {
  switch (body.charCodeAt(0)) {
    case 107: // k
      if (body.startsWith('kicking non-fresh ')) {
        const m = KICKED.exec(body);
        if (!m) return null;
        return {
          type: 'MD_DISK_KICKED', device: null, related: { member: memberRef(m[1]!) },
          msg: 'Stale member {member} was kicked from its md array at assembly',
          ext: {},
        };
      }
      break;
    case 115: // s
      if (body.startsWith('syncing RAID array ')) {
        const array = body.slice(19);
        if (!/^[^\s:]{1,64}$/.test(array)) return null;
        return { type: 'MD_RECOVERY_STARTED', device: arrayRef(array), msg: 'md array {dev} started resync', ext: { action: 'resync' } };
      }
      if (body.startsWith('super_written ')) {
        const m = SUPER_WRITTEN.exec(body);
        if (!m) return null;
        const ext: Record<string, string> = { error: m[1]! };
        if (m[2] !== undefined) ext.uptodate = m[2];
        return { type: 'MD_SUPERBLOCK_WRITE_FAILED', device: null, msg: `Writing an md superblock to an array member failed (error ${m[1]})`, ext };
      }
      break;
    case 119: // w
      if (body.startsWith('write_disk_sb ')) {
        const m = WRITE_DISK_SB.exec(body);
        if (!m) return null;
        return { type: 'MD_SUPERBLOCK_WRITE_FAILED', device: null, related: { member: memberRef(m[1]!) }, msg: 'Writing the md superblock to member {member} failed', ext: {} };
      }
      break;
    case 105: // i
      if (body.startsWith('invalid ')) {
        const m = INVALID_SB.exec(body);
        if (!m) return null;
        const magic = m[1]!.startsWith('raid');
        return {
          type: 'MD_INVALID_SUPERBLOCK', device: null, related: { member: memberRef(m[2]!) },
          msg: magic ? '{member} has no md superblock (bad magic): it is not imported into an array' : '{member} has an md superblock with a bad checksum: it is not imported into an array',
          ext: { reason: magic ? 'bad_magic' : 'bad_checksum' },
        };
      }
      break;
  }
  if (body.indexOf(' of RAID array ') > 0) {
    const m = SYNC_START.exec(body);
    if (!m) return null;
    return { type: 'MD_RECOVERY_STARTED', device: arrayRef(m[2]!), msg: `md array {dev} started ${m[1]}`, ext: { action: m[1]! } };
  }
  const e = SYNC_END.exec(body);
  if (!e) return null;
  const action = e[2]!;
  const device = arrayRef(e[1]!);
  if (e[3] === 'interrupted') {
    return { type: 'MD_RECOVERY_INTERRUPTED', device, msg: `md array {dev}: ${action} was interrupted`, ext: { action } };
  }
  const kind = actionKind(action);
  return {
    type: kind === 'recovery' ? 'MD_RECOVERY_DONE' : kind === 'check' ? 'MD_CHECK_DONE' : 'MD_RESYNC_DONE',
    device, msg: `md array {dev}: ${action} done`, ext: { action },
  };
}

/** `raid5: …`, `raid5:md0: …`, `raid10:md2: …` (2.4/2.6) */
function oldRaid(msg: string): ParseResult {
  const colon = msg.indexOf(':', 4);
  if (colon < 5 || colon > 6) return null;
  const pers = msg.slice(0, colon);
  if (!OLD_PERS.test(pers)) return null;
  if (msg.charCodeAt(colon + 1) === 32) return oldPersonality(pers, msg.slice(colon + 2));
  const sep = msg.indexOf(': ', colon + 1);
  if (sep < 0 || sep > colon + 1 + 64) return null;
  const array = msg.slice(colon + 1, sep);
  if (array.length === 0 || array.indexOf(' ') >= 0) return null;
  return personality(pers, array, msg.slice(sep + 2));
}

function parse(rec: ClassifiedRecord): ParseResult {
  const m = rec.message;
  if (m.length > 1024) return null;
  const c0 = m.charCodeAt(0);
  if (c0 !== 109 /* m */ || m.charCodeAt(1) !== 100 /* d */) {
    if (c0 === 114 /* r */ && m.startsWith('raid')) return oldRaid(trimLineEnd(m));
    // the second line of a 2.4/2.6 raid1/raid10 failure, alone (syslog indents it)
    const lone = m.trimStart();
    if (lone.startsWith('Operation continuing on ')) {
      const c = CONTINUING.exec(trimLineEnd(lone));
      return c ? continuing(null, null, c[1]!) : null;
    }
    return null;
  }
  const msg = trimLineEnd(m);
  const c2 = msg.charCodeAt(2);
  if (c2 === 47 /* / */) {
    // md/<pers>:<array>: <body>
    const colon = msg.indexOf(':', 3);
    if (colon < 0 || colon > 3 + 16) return null;
    const sep = msg.indexOf(': ', colon + 1);
    if (sep < 0 || sep > colon + 1 + 64) return null;
    const pers = msg.slice(3, colon);
    const array = msg.slice(colon + 1, sep);
    if (array.length === 0 || array.indexOf(' ') >= 0) return null;
    return personality(pers, array, msg.slice(sep + 2));
  }
  if (c2 === 58 /* : */) {
    if (msg.charCodeAt(3) !== 32) return null;
    return mdCore(msg.slice(4));
  }
  // mdN: <body>
  const sep = msg.indexOf(': ');
  if (sep < 3 || sep > 64) return null;
  const array = msg.slice(0, sep);
  const body = msg.slice(sep + 2);
  if (body === NO_SPARE) {
    if (!/^md[A-Za-z0-9_]{1,32}$/.test(array)) return null;
    return { type: 'MD_ARRAY_DEGRADED', device: arrayRef(array), msg: 'md array {dev} has no spare disk to rebuild onto: it runs degraded', ext: { spare: 'none' } };
  }
  const cap = CAPACITY.exec(body);
  if (!cap) return null;
  if (!/^md[A-Za-z0-9_]{1,32}$/.test(array)) return null;
  return {
    type: 'BLK_CAPACITY_CHANGE', device: arrayRef(array),
    msg: `The size of {dev} changed from ${cap[1]} to ${cap[2]}`,
    ext: { from: cap[1]!, to: cap[2]! },
  };
}

export const parser: Parser = { name: 'mdraid', systems: ['mdraid'], parse };
