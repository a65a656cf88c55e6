// LVM's device-mapper targets: thin pools (drivers/md/dm-thin.c) and
// snapshots (dm-snap.c). classify.ts routes `device-mapper: thin…`,
// `device-mapper: snapshot…` and `device-mapper: cache…` here.
//
// dm-thin prints the pool as dm_device_name(pool_md), its `major:minor`:
//   `device-mapper: thin: 253:2: reached low water mark for data device: sending event.`
//   `device-mapper: thin: 253:2: reached low water mark for metadata device: sending event.`
//   `device-mapper: thin: 253:2: switching pool to <mode> mode` where <mode> is
//     `out-of-data-space (queue IO)` / `out-of-data-space (error IO)` (4.x+),
//     `out-of-data-space` (3.x), `read-only` (also what out-of-metadata-space prints),
//     `fail` (≥ 4.x) or `failure` (3.x), and `write` (back to normal: no event)
//   `device-mapper: thin: 252:4: no free data space available.` (3.x)
//   `device-mapper: thin: 253:2: metadata operation 'dm_pool_commit_metadata' failed: error = -5`
//     → metadata_operation_failed() aborts the transaction and sets PM_READ_ONLY
//     (PM_FAIL only if the abort fails, which prints its own `switching pool to
//     fail mode`): reported as LVM_THIN_READ_ONLY with the operation and error.
//   `device-mapper: thin: 253:2: unable to switch pool to write mode until repaired.`
//     → the pool stays read-only (needs_check): LVM_THIN_READ_ONLY.
// dm-snap: `device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.`
//   (the COW store is full) and `… Invalidating snapshot: Error reading/writing.` —
//   the kernel names no device.
// dm-cache (`device-mapper: cache: 253:5: switching cache to read-only mode` …)
// has no event type in the catalog: no event (see the report to the lead).
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const DM = 'device-mapper: ';
const MAJMIN = /^\d{1,10}:\d{1,10}$/;
/** `<pool>: <text>` */
const POOL_LINE = /^(\d{1,10}:\d{1,10}|[^\s:]{1,128}): (.{1,400})$/;
const LOW_WATER = /^reached low water mark for (data|metadata) device: sending event\.?$/;
const SWITCH_MODE = /^switching pool to (.{1,64}?) mode\.?$/;
const METADATA_FAILED = /^metadata operation '([^']{1,64})' failed: error = (-?\d{1,6})$/;
const NO_FREE = /^no free (data|metadata)? ?space available\.?$/;

function poolRef(printed: string): DeviceRef {
  if (MAJMIN.test(printed)) return { printed, majmin: printed };
  if (printed.startsWith('dm-')) return { printed, name: printed };
  return { printed };
}

const ERRNO: Record<string, string> = {
  '-5': 'EIO', '-12': 'ENOMEM', '-28': 'ENOSPC', '-22': 'EINVAL', '-61': 'ENODATA', '-117': 'EUCLEAN', '-84': 'EILSEQ', '-30': 'EROFS',
};

function thin(body: string): Finding | null {
  const pm = POOL_LINE.exec(body);
  if (!pm) return null;
  const pool = pm[1]!;
  const text = pm[2]!;
  const device = poolRef(pool);
  switch (text.charCodeAt(0)) {
    case 114: { // r
      const m = LOW_WATER.exec(text);
      if (!m) return null;
      return {
        type: 'LVM_THIN_LOW_WATER_MARK', device,
        msg: `Thin pool {dev} reached the low water mark of its ${m[1]} device`,
        ext: { pool, space: m[1]! },
      };
    }
    case 115: { // s
      const m = SWITCH_MODE.exec(text);
      if (!m) return null;
      const mode = m[1]!;
      if (mode.startsWith('out-of-data-space')) {
        const io = mode.endsWith('(queue IO)') ? 'queue' : mode.endsWith('(error IO)') ? 'error' : '';
        const ext: Record<string, string> = { pool, mode, space: 'data' };
        if (io) ext.io = io;
        return {
          type: 'LVM_THIN_OUT_OF_SPACE', device,
          msg: io === 'queue' ? 'Thin pool {dev} is out of data space; writes are queued'
            : io === 'error' ? 'Thin pool {dev} is out of data space; writes fail'
              : 'Thin pool {dev} is out of data space',
          ext,
        };
      }
      if (mode === 'out-of-metadata-space') {
        return { type: 'LVM_THIN_OUT_OF_SPACE', device, msg: 'Thin pool {dev} is out of metadata space', ext: { pool, mode, space: 'metadata' } };
      }
      if (mode === 'read-only') {
        return { type: 'LVM_THIN_READ_ONLY', device, msg: 'Thin pool {dev} switched to read-only mode', ext: { pool, mode } };
      }
      if (mode === 'fail' || mode === 'failure') {
        return { type: 'LVM_THIN_FAIL', device, msg: 'Thin pool {dev} switched to fail mode: all I/O fails', ext: { pool, mode: 'fail' } };
      }
      return null; // `write`: back to normal
    }
    case 109: { // m
      const m = METADATA_FAILED.exec(text);
      if (!m) return null;
      const ext: Record<string, string> = { pool, mode: 'read-only', reason: 'metadata_error', operation: m[1]!, error: m[2]! };
      const name = ERRNO[m[2]!];
      if (name) ext.errno = name;
      return {
        type: 'LVM_THIN_READ_ONLY', device,
        msg: `Thin pool {dev}: metadata operation ${m[1]} failed (error ${m[2]}${name ? ` ${name}` : ''}); the pool goes read-only`,
        ext,
      };
    }
    case 110: { // n
      const m = NO_FREE.exec(text);
      if (!m) return null;
      const space = m[1] ?? 'data';
      return { type: 'LVM_THIN_OUT_OF_SPACE', device, msg: `Thin pool {dev} has no free ${space} space`, ext: { pool, space } };
    }
    case 117: // u
      if (text.startsWith('unable to switch pool to write mode until repaired')) {
        return {
          type: 'LVM_THIN_READ_ONLY', device,
          msg: 'Thin pool {dev} stays read-only until its metadata is repaired (thin_check)',
          ext: { pool, mode: 'read-only', reason: 'needs_check' },
        };
      }
      return null;
    default:
      return null;
  }
}

function snapshots(body: string): Finding | null {
  if (!body.startsWith('Invalidating snapshot')) return null;
  let reason = body.slice(21);
  if (reason.startsWith(': ')) reason = reason.slice(2);
  else if (reason.startsWith(':')) reason = reason.slice(1);
  reason = reason.trim().slice(0, 200);
  if (reason.endsWith('.')) reason = reason.slice(0, -1);
  const cause = reason.startsWith('Unable to allocate exception') ? 'cow_full' : reason.startsWith('Error reading/writing') ? 'io_error' : 'other';
  const ext: Record<string, string> = { cause };
  if (reason) ext.reason = reason;
  return {
    type: 'LVM_SNAPSHOT_INVALIDATED',
    device: null,
    msg: cause === 'cow_full' ? 'A snapshot was invalidated: its copy-on-write store is full'
      : cause === 'io_error' ? 'A snapshot was invalidated after an I/O error on its copy-on-write store'
        : `A snapshot was invalidated${reason ? `: ${reason}` : ''}`,
    ext,
  };
}

function parse(rec: ClassifiedRecord): ParseResult {
  const m = rec.message;
  if (!m.startsWith(DM)) return null;
  let body: string;
  let target: 'thin' | 'snap';
  if (m.startsWith('thin: ', 15)) {
    body = m.slice(21);
    target = 'thin';
  } else if (m.startsWith('snapshots: ', 15)) {
    body = m.slice(26);
    target = 'snap';
  } else return null; // thin metadata, cache, snapshot exception stores: no event
  if (body.length > 512) return null;
  body = trimLineEnd(body);
  return target === 'thin' ? thin(body) : snapshots(body);
}

export const parser: Parser = { name: 'lvm', systems: ['lvm'], parse };
