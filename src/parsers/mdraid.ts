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
//   `md0: detected capacity change from 0 to 2093056` — classify.ts routes
//     `mdN: …` here before the block rule sees it: BLK_CAPACITY_CHANGE.
// Decisions: a start of any sync action is MD_RECOVERY_STARTED (ext.action says
// which); `data-check`/`check` done is MD_CHECK_DONE; `resync`,
// `requested-resync`, `repair` and `reshape` done are MD_RESYNC_DONE; any
// action `interrupted` is MD_RECOVERY_INTERRUPTED. `not clean -- starting
// background reconstruction` gives no event (the `resync of RAID array` line
// that follows does), nor do `Too many read errors, failing device` and the
// raid10 read_error threshold lines (the `Disk failure` line that follows does).
// A kicked member has no array in the line: device null, the member in
// related.member.
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const MEMBER = '([^\\s,()]{1,64})';
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
const CAPACITY = /^detected capacity change from (\d{1,20}) to (\d{1,20})$/;

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
  return undefined; // `raid` is raid4/5/6
}

function baseExt(pers: string): Record<string, string> {
  const ext: Record<string, string> = { personality: pers };
  const level = levelOf(pers);
  if (level !== undefined) ext.level = level;
  return ext;
}

/** `md/<pers>:<array>: <body>` */
function personality(pers: string, array: string, full: string): Finding | null {
  const nl = full.indexOf('\n');
  const body = nl < 0 ? full : full.slice(0, nl);
  const device = arrayRef(array);
  // `<member>: unrecoverable I/O read error …` starts with the member's name
  if (body.indexOf(': unrecoverable I/O read error') > 0) return unrecoverable(pers, device, body);
  switch (body.charCodeAt(0)) {
    case 68: { // D
      const m = DISK_FAILURE.exec(body);
      if (!m) return null;
      const ext = baseExt(pers);
      if (nl >= 0) {
        const c = CONTINUING.exec(full.slice(nl + 1, nl + 200));
        if (c) ext.active = c[1]!;
      }
      return {
        type: 'MD_DISK_FAILURE', device, related: { member: memberRef(m[1]!) },
        msg: ext.active !== undefined ? `md array {dev}: member {member} failed and was disabled; ${ext.active} devices remain` : 'md array {dev}: member {member} failed and was disabled',
        ext,
      };
    }
    case 79: { // O
      const m = CONTINUING.exec(body);
      if (!m || !body.startsWith('Operation')) return null;
      return { type: 'MD_ARRAY_DEGRADED', device, msg: `md array {dev} runs degraded on ${m[1]} devices`, ext: { ...baseExt(pers), active: m[1]! } };
    }
    case 97: { // a
      const m = ACTIVE.exec(body);
      if (!m) return null;
      const active = Number(m[1]);
      const total = Number(m[2]);
      if (!(active < total)) return null;
      return {
        type: 'MD_ARRAY_DEGRADED', device,
        msg: `md array {dev} started degraded: ${m[1]} of ${m[2]} ${m[3]} active`,
        ext: { ...baseExt(pers), active: m[1]!, total: m[2]! },
      };
    }
    case 114: { // r
      if (body.startsWith('raid level ')) {
        const m = RAID_LEVEL.exec(body);
        if (!m) return null;
        const active = Number(m[2]);
        const total = Number(m[3]);
        if (!(active < total)) return null;
        const ext: Record<string, string> = { personality: pers, level: m[1]!, active: m[2]!, total: m[3]! };
        if (m[4] !== undefined) ext.algorithm = m[4];
        return { type: 'MD_ARRAY_DEGRADED', device, msg: `md array {dev} (raid${m[1]}) started degraded: ${m[2]} of ${m[3]} devices active`, ext };
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
        type: 'MD_ARRAY_DEGRADED', device, severity: 'error',
        msg: `md array {dev} failed: ${m[1]} of ${m[2]} devices failed, it cannot continue`,
        ext: { ...baseExt(pers), state: 'failed', failed: m[1]!, total: m[2]! },
      };
    }
    case 110: { // n
      const m = NOT_ENOUGH.exec(body);
      if (!m) return null;
      const ext: Record<string, string> = { ...baseExt(pers), state: 'failed' };
      if (m[1] !== undefined) {
        ext.failed = m[1];
        ext.total = m[2]!;
      }
      return { type: 'MD_ARRAY_DEGRADED', device, severity: 'error', msg: 'md array {dev} cannot start: not enough working devices', ext };
    }
    case 99: // c
      if (body.startsWith('cannot start dirty degraded array')) {
        return { type: 'MD_ARRAY_DEGRADED', device, severity: 'error', msg: 'md array {dev} is dirty and degraded and was not started', ext: { ...baseExt(pers), state: 'dirty-degraded' } };
      }
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

function unrecoverable(pers: string, device: DeviceRef, body: string): Finding | null {
  const m = UNRECOVERABLE.exec(body);
  if (!m) return null;
  const member = m[1]!;
  const related = member === '???' ? undefined : { member: memberRef(member) };
  return {
    type: 'MD_READ_ERROR_NOT_CORRECTABLE', device, ...(related ? { related } : {}),
    msg: related ? `md array {dev}: unrecoverable read error on {member} for block ${m[2]}` : `md array {dev}: unrecoverable read error for block ${m[2]}`,
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

function actionKind(action: string): 'recovery' | 'check' | 'resync' {
  if (action === 'recovery' || action === 'recover') return 'recovery';
  if (action === 'data-check' || action === 'check') return 'check';
  return 'resync';
}

/** `md: <body>` */
function mdCore(body: string): Finding | null {
  if (body.startsWith('kicking non-fresh ')) {
    const m = KICKED.exec(body);
    if (!m) return null;
    return {
      type: 'MD_DISK_KICKED', device: null, related: { member: memberRef(m[1]!) },
      msg: 'Stale member {member} was kicked from its md array at assembly',
      ext: {},
    };
  }
  if (body.startsWith('syncing RAID array ')) {
    const array = body.slice(19);
    if (!/^[^\s:]{1,64}$/.test(array)) return null;
    return { type: 'MD_RECOVERY_STARTED', device: arrayRef(array), msg: 'md array {dev} started resync', ext: { action: 'resync' } };
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

function parse(rec: ClassifiedRecord): ParseResult {
  const m = rec.message;
  if (m.length > 1024 || m.charCodeAt(0) !== 109 /* m */ || m.charCodeAt(1) !== 100 /* d */) return null;
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
  const cap = CAPACITY.exec(msg.slice(sep + 2));
  if (!cap) return null;
  const array = msg.slice(0, sep);
  if (!/^md[A-Za-z0-9_]{1,32}$/.test(array)) return null;
  return {
    type: 'BLK_CAPACITY_CHANGE', device: arrayRef(array),
    msg: `The size of {dev} changed from ${cap[1]} to ${cap[2]}`,
    ext: { from: cap[1]!, to: cap[2]! },
  };
}

export const parser: Parser = { name: 'mdraid', systems: ['mdraid'], parse };
