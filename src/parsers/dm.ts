// device-mapper targets other than multipath, thin and snapshot: the mirror
// target (drivers/md/dm-raid1.c) and its dirty region log (dm-log.c), table
// load failures (dm-table.c, dm-ioctl.c), dm-raid (dm-raid.c), dm-verity
// (dm-verity-target.c), dm-crypt's AEAD mode (dm-crypt.c) and dm-integrity
// (dm-integrity.c).
//
// Devices are printed as dm_dev names, i.e. `major:minor`:
//   `device-mapper: dirty region log: 253:3: Failed to read header on dirty region log device`
//   `device-mapper: dirty region log: 253:3: Failed to write header on dirty region log device`
//     (%s is the log device, lc->log_dev->name)
//   `device-mapper: raid1: Mirror read failed from 253:4. Trying alternative device.`
//   `device-mapper: raid1: Mirror read failed.` (no record of the leg)
//   `device-mapper: raid1: Read failure on mirror device 253:4.  Trying alternative device.` (3.x)
//   `device-mapper: raid1: Read failure on mirror device 253:4.  Failing I/O.` (3.x)
//   `device-mapper: raid1: Unable to read primary mirror during recovery`
//   `device-mapper: raid1: Primary mirror (253:4) failed while out-of-sync: Reads may fail.`
//   `device-mapper: raid1: All sides of mirror have failed.`
//   `device-mapper: raid1: All replicated volumes dead, failing I/O`
//   `device-mapper: raid1: Write error during recovery (error = 0x1)`
//   `device-mapper: raid1: log postsuspend failed` (disk_flush failed to write the log: the only trace of it)
//   `device-mapper: table: 253:5: linear: Device lookup failed` (6.x appends ` (-ENXIO)`)
//   `device-mapper: table: 253:0: sdb too small for target: start=0, len=…, dev_size=…`
//   `device-mapper: ioctl: error adding target to table` — populate_table() prints
//     it after the `table:` line that names the device and the reason (2.6.1x
//     printed it without `ioctl: `): that finding is held under `dm-table` and
//     this line joins it; alone (its head lost) it is a DM_TABLE_ERROR of its own
//   `device-mapper: raid: Failed to read superblock of device at position 1`
//   `device-mapper: verity: 253:3: data block 0 is corrupted` · `… metadata block 260095 is corrupted`
//     (the device is the verity data device; 3.x printed no device)
//   `device-mapper: crypt: dm-0: INTEGRITY AEAD ERROR, sector 0` (4.12+; the
//     device is the dm-crypt device; 4.12 printed none)
//   `device-mapper: integrity: dm-4: Checksum failed at sector 0x1e8480` (4.12 without the device)
//   `device-mapper: integrity: Error on journal mac: -84` (EILSEQ: a journal
//     tag mismatch; the other `Error on …` lines are I/O errors: no event)
// Some kernels print a dm line behind another module's pr_fmt prefix
// (`trusted_key: device-mapper: crypt: …`): dmMessage() skips it.
// No event: `device-mapper: raid1: log resume failed` (follows a `Failed to write
// header` line), alignment warnings, version banners (`uevent: version 1.0.3`,
// `ioctl: 4.48.0-ioctl (2023-03-01) initialised: …`), verity's `reached maximum
// errors` (after the corrupted-block lines) and FEC corrections.
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, Context, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const DM = 'device-mapper: ';
const MAJMIN = /^\d{1,10}:\d{1,10}$/;

const LOG_HEADER = /^(\S{1,128}): Failed to (read|write) header on dirty region log device\.?$/;
const MIRROR_READ_FROM = /^Mirror read failed from (\S{1,128}?)\. Trying alternative device\.?$/;
const READ_FAILURE_ON = /^Read failure on mirror device (\S{1,128}?)\.\s+(Trying alternative device|Failing I\/O)\.?$/;
const PRIMARY_FAILED = /^Primary mirror \((\S{1,128})\) failed while out-of-sync: Reads may fail\.?$/;
const RECOVERY_WRITE = /^Write error during recovery \(error = (0x[0-9a-fA-F]{1,16})\)$/;

const TABLE_TARGET = /^(\d{1,10}:\d{1,10}): ([A-Za-z0-9_-]{1,32}): (.{1,400})$/;
const TABLE_ERRNO = / \((-[A-Z][A-Z0-9]{0,20}|-\d{1,5})\)$/;
const TABLE_OTHER = /^(\d{1,10}:\d{1,10}): (.{1,400})$/;
const TOO_SMALL = /^(\S{1,128}) too small for target: (.{0,300})$/;
const NOT_ALIGNED = / not aligned to h\/w (?:logical block|zone) size \d+ of (\S{1,128})$/;

const SB_POSITION = /^Failed to read superblock of device at position (\d{1,5})$/;

const VERITY_CORRUPTED = /^(?:(\S{1,128}): )?(data|metadata) block (\d{1,20}) is corrupted\.?$/;
const AEAD_ERROR = /^(?:(\S{1,128}): )?INTEGRITY AEAD ERROR, sector (\d{1,20})$/;
const CHECKSUM_FAILED = /^(?:(\S{1,128}): )?Checksum failed at sector (0x[0-9a-fA-F]{1,16}|\d{1,20})$/;
const INTEGRITY_IO_ERROR = /^Error on ([a-z][a-z _]{0,40}): (-\d{1,4})$/;
/** the hold key of a table load failure, which `ioctl: error adding target to table` joins */
const TABLE_KEY = 'dm-table';

/**
 * `rec.message` from `device-mapper: ` on: at its start, or behind one
 * `<module>: ` prefix (`trusted_key: device-mapper: crypt: …`); else null.
 */
export function dmMessage(m: string): string | null {
  if (m.startsWith(DM)) return m;
  const colon = m.indexOf(': ');
  if (colon < 1 || colon > 32 || !m.startsWith(DM, colon + 2)) return null;
  for (let i = 0; i < colon; i++) {
    const c = m.charCodeAt(i);
    // a module name: letters, digits, `_`, `-`
    if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 45)) return null;
  }
  return m.slice(colon + 2);
}

function ref(printed: string): DeviceRef {
  if (MAJMIN.test(printed)) return { printed, majmin: printed };
  if (printed.startsWith('dm-') || /^[a-z]{1,16}\d{0,10}(?:p?\d{1,5})?$/.test(printed)) return { printed, name: printed };
  return { printed };
}

function dirtyLog(body: string): Finding | null {
  const m = LOG_HEADER.exec(body);
  if (!m) return null;
  const read = m[2] === 'read';
  return {
    type: read ? 'DM_DIRTY_LOG_READ_FAILED' : 'DM_DIRTY_LOG_WRITE_FAILED',
    device: ref(m[1]!),
    msg: read ? 'Mirror log device {dev}: the dirty region log header could not be read; all regions are out of sync'
      : 'Mirror log device {dev}: the dirty region log header could not be written',
    ext: { op: read ? 'READ' : 'WRITE', log_dev: m[1]! },
  };
}

function mirror(body: string): Finding | null {
  switch (body.charCodeAt(0)) {
    case 77: { // M
      if (!body.startsWith('Mirror read failed')) return null;
      const m = MIRROR_READ_FROM.exec(body);
      if (m) {
        return {
          type: 'DM_MIRROR_READ_FAILED', device: ref(m[1]!),
          msg: 'Mirror leg {dev} failed a read; trying another leg',
          ext: { op: 'READ', leg: m[1]!, retried: 'true' },
        };
      }
      if (body === 'Mirror read failed.' || body === 'Mirror read failed') {
        return { type: 'DM_MIRROR_READ_FAILED', device: null, msg: 'A mirror read failed and could not be retried on another leg', ext: { op: 'READ', retried: 'false' } };
      }
      return null;
    }
    case 82: { // R
      const m = READ_FAILURE_ON.exec(body);
      if (!m) return null;
      const retried = m[2]!.startsWith('Trying');
      return {
        type: 'DM_MIRROR_READ_FAILED', device: ref(m[1]!),
        msg: retried ? 'Mirror leg {dev} failed a read; trying another leg' : 'Mirror leg {dev} failed a read and no other leg could serve it',
        ext: { op: 'READ', leg: m[1]!, retried: retried ? 'true' : 'false' },
      };
    }
    case 85: // U
      if (body.startsWith('Unable to read primary mirror during recovery')) {
        return { type: 'DM_MIRROR_READ_FAILED', device: null, msg: 'The primary mirror leg could not be read during recovery', ext: { op: 'READ', phase: 'recovery' } };
      }
      return null;
    case 80: { // P
      const m = PRIMARY_FAILED.exec(body);
      if (!m) return null;
      return {
        type: 'DM_MIRROR_DEVICE_FAILED', device: ref(m[1]!),
        msg: 'Primary mirror leg {dev} failed while the mirror was out of sync: reads may fail',
        ext: { leg: m[1]!, role: 'primary', in_sync: 'false' },
      };
    }
    case 65: // A
      if (body.startsWith('All sides of mirror have failed')) {
        return { type: 'DM_MIRROR_DEVICE_FAILED', device: null, msg: 'All legs of a mirror have failed', ext: { all_legs: 'true' } };
      }
      if (body.startsWith('All replicated volumes dead')) {
        return { type: 'DM_MIRROR_DEVICE_FAILED', device: null, msg: 'All legs of a mirror are dead: the read fails', ext: { all_legs: 'true', op: 'READ' } };
      }
      return null;
    case 87: { // W
      const m = RECOVERY_WRITE.exec(body);
      if (!m) return null;
      return { type: 'DM_MIRROR_DEVICE_FAILED', device: null, msg: 'A mirror leg failed a write during recovery', ext: { op: 'WRITE', phase: 'recovery', error_bits: m[1]! } };
    }
    case 108: // l
      if (body === 'log postsuspend failed') {
        return { type: 'DM_DIRTY_LOG_WRITE_FAILED', device: null, msg: 'A mirror dirty region log could not be flushed on suspend', ext: { op: 'WRITE', phase: 'postsuspend' } };
      }
      return null;
    default:
      return null;
  }
}

function table(body: string): Finding | null {
  const t = TABLE_TARGET.exec(body);
  if (t) {
    let error = t[3]!;
    const ext: Record<string, string> = { target: t[2]! };
    const e = TABLE_ERRNO.exec(error);
    if (e) {
      ext.errno = e[1]!;
      error = error.slice(0, e.index);
    }
    ext.error = error;
    return { type: 'DM_TABLE_ERROR', device: { printed: t[1]!, majmin: t[1]! }, msg: `Device-mapper table for {dev} not loaded: ${t[2]} target: ${error}`, ext, hold: TABLE_KEY };
  }
  const o = TABLE_OTHER.exec(body);
  if (!o) return null;
  const text = o[2]!;
  const device: DeviceRef = { printed: o[1]!, majmin: o[1]! };
  const small = TOO_SMALL.exec(text);
  if (small) {
    return { type: 'DM_TABLE_ERROR', device, msg: `Device-mapper table for {dev} not loaded: ${small[1]} is too small for the target`, ext: { error: 'device too small for target', component: small[1]!, detail: small[2]! }, hold: TABLE_KEY };
  }
  const al = NOT_ALIGNED.exec(text);
  if (al) {
    return { type: 'DM_TABLE_ERROR', device, msg: `Device-mapper table for {dev} not loaded: not aligned to the hardware block size of ${al[1]}`, ext: { error: 'misaligned target', component: al[1]!, detail: text }, hold: TABLE_KEY };
  }
  if (text.startsWith('target type ') && text.endsWith('must appear alone in table')) {
    return { type: 'DM_TABLE_ERROR', device, msg: `Device-mapper table for {dev} not loaded: ${text}`, ext: { error: text }, hold: TABLE_KEY };
  }
  return null;
}

/** `error adding target to table`: joins the held `table:` finding, or stands alone. */
function addingTarget(): Context {
  return {
    context: TABLE_KEY,
    ext: { ioctl: 'error adding target to table' },
    orphan: { type: 'DM_TABLE_ERROR', device: null, msg: 'A device-mapper table could not be loaded: a target could not be added', ext: { error: 'error adding target to table' } },
  };
}

function ioctl(body: string): ParseResult {
  if (body === 'error adding target to table') return addingTarget();
  if (body.startsWith('unable to set up device queue for new table')) {
    return { type: 'DM_TABLE_ERROR', device: null, msg: 'A device-mapper table could not be activated: the device queue could not be set up', ext: { error: 'unable to set up device queue for new table' } };
  }
  if (body.startsWith("can't change device type")) {
    return { type: 'DM_TABLE_ERROR', device: null, msg: `A device-mapper table was refused: ${body}`, ext: { error: body.slice(0, 200) } };
  }
  return null;
}

function dmRaid(body: string): Finding | null {
  const m = SB_POSITION.exec(body);
  if (!m) return null;
  return {
    type: 'DM_MIRROR_DEVICE_FAILED', device: null,
    msg: `A RAID logical volume could not read the superblock of its leg at position ${m[1]}; the leg is marked failed`,
    ext: { position: m[1]!, target: 'raid' },
  };
}

function verity(body: string): Finding | null {
  const m = VERITY_CORRUPTED.exec(body);
  if (!m) return null;
  const block = m[2]!;
  const ext: Record<string, string> = { block_type: block, block: m[3]! };
  if (m[1] === undefined) return { type: 'DM_VERITY_CORRUPTION', device: null, msg: `dm-verity: ${block} block ${m[3]} does not match its hash`, ext };
  ext.data_dev = m[1];
  return { type: 'DM_VERITY_CORRUPTION', device: ref(m[1]), msg: `dm-verity: ${block} block ${m[3]} of {dev} does not match its hash`, ext };
}

function crypt(body: string): Finding | null {
  const m = AEAD_ERROR.exec(body);
  if (!m) return null;
  const ext: Record<string, string> = { target: 'crypt', sector: m[2]! };
  if (m[1] === undefined) return { type: 'DM_INTEGRITY_ERROR', device: null, msg: `dm-crypt: the authentication tag of sector ${m[2]} does not match (AEAD)`, ext };
  return { type: 'DM_INTEGRITY_ERROR', device: ref(m[1]), msg: `dm-crypt {dev}: the authentication tag of sector ${m[2]} does not match (AEAD)`, ext };
}

function integrity(body: string): Finding | null {
  const m = CHECKSUM_FAILED.exec(body);
  if (m) {
    const ext: Record<string, string> = { target: 'integrity', sector: m[2]! };
    if (m[1] === undefined) return { type: 'DM_INTEGRITY_ERROR', device: null, msg: `dm-integrity: checksum mismatch at sector ${m[2]}`, ext };
    return { type: 'DM_INTEGRITY_ERROR', device: ref(m[1]), msg: `dm-integrity {dev}: checksum mismatch at sector ${m[2]}`, ext };
  }
  const e = INTEGRITY_IO_ERROR.exec(body);
  // -84 is EILSEQ: a tag that does not match; the device then fails all I/O
  if (!e || e[2] !== '-84') return null;
  return { type: 'DM_INTEGRITY_ERROR', device: null, msg: `dm-integrity: ${e[1]} mismatch; the device fails all further I/O`, ext: { target: 'integrity', what: e[1]!, error: e[2]! } };
}

function parse(rec: ClassifiedRecord): ParseResult {
  const m = dmMessage(rec.message);
  if (m === null) return null;
  const colon = m.indexOf(': ', 15);
  if (colon < 0 || colon > 15 + 32) {
    // 2.6.1x: `device-mapper: error adding target to table`
    return trimLineEnd(m) === `${DM}error adding target to table` ? addingTarget() : null;
  }
  const prefix = m.slice(15, colon);
  let body = m.slice(colon + 2);
  if (body.length > 512) return null;
  body = trimLineEnd(body);
  switch (prefix) {
    case 'raid1': return mirror(body);
    case 'dirty region log': return dirtyLog(body);
    case 'table': return table(body);
    case 'ioctl': return ioctl(body);
    case 'raid': return dmRaid(body);
    case 'verity': return verity(body);
    case 'crypt': return crypt(body);
    case 'integrity': return integrity(body);
    default: return null;
  }
}

export const parser: Parser = { name: 'dm', systems: ['dm'], parse };
