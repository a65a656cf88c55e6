// LVM's device-mapper targets: thin pools (drivers/md/dm-thin.c,
// dm-thin-metadata.c and the persistent-data library under them) and
// snapshots (dm-snap.c). classify.ts routes `device-mapper: thin…`,
// `device-mapper: snapshot…`, `device-mapper: cache…` and the
// persistent-data prefixes (`btree spine`, `block manager`, `space map …`) here.
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
//     fail mode`): reported as LVM_THIN_READ_ONLY with the operation and error,
//     held under `thin:<pool>` for the abort's lines:
//   `device-mapper: thin: 253:2: aborting current metadata transaction`
//   `device-mapper: thin: 253:2: failed to abort metadata transaction`
//   `device-mapper: thin: 253:2: failed to set 'needs_check' flag in metadata`
//     — they join the held finding; alone (its head lost or not printed) each
//     is LVM_THIN_METADATA_ERROR of its own.
//   `device-mapper: thin: 253:2: unable to switch pool to write mode until repaired.`
//     → the pool stays read-only (needs_check): LVM_THIN_READ_ONLY.
//   3.x: `device-mapper: thin: dm_thin_insert_block() failed`,
//     `device-mapper: thin: process_bio: dm_thin_find_block() failed: error = -5`
//     (a function, not a pool), `device-mapper: thin: 253:2: commit failed: error = -5`
//     → LVM_THIN_METADATA_ERROR.
// Thin (and cache) metadata corruption, found by persistent-data's validators;
// none names a device. The first line is held under `dm-pdata`, the block
// manager's verdict and `couldn't read superblock` join it (each alone is an event):
//   `device-mapper: btree spine: node_check failed: node is neither INTERNAL or LEAF`
//   `device-mapper: thin metadata: sb_check failed: blocknr 7016996765293437281: wanted 0`
//   `device-mapper: space map common: index_check failed: blocknr 17 != wanted 18`
//   `device-mapper: block manager: btree_node validator check failed for block 146`
//   `device-mapper: thin metadata: couldn't read superblock`
//   → LVM_THIN_METADATA_ERROR.
//   `device-mapper: space map metadata: unable to allocate new metadata block`
//   → LVM_THIN_METADATA_OUT_OF_SPACE (the pool's `metadata operation … failed:
//   error = -28` follows with the device).
// dm-snap: `device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.`
//   (the COW store is full) and `… Invalidating snapshot: Error reading/writing.` —
//   the kernel names no device. A merge that stops: `Snapshot is invalid: can't
//   merge`, `Read error in exception store: shutting down merge`, `Write error:
//   shutting down merge.` and the like → LVM_SNAPSHOT_MERGE_FAILED.
// dm-cache (`device-mapper: cache: 253:5: switching cache to read-only mode` …)
// has no event type in the catalog: no event (see the report to the lead).
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, Context, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';
import { dmMessage } from './dm.ts';

const MAJMIN = /^\d{1,10}:\d{1,10}$/;
/** `<pool>: <text>` */
const POOL_LINE = /^(\d{1,10}:\d{1,10}|[^\s:]{1,128}): (.{1,400})$/;
const LOW_WATER = /^reached low water mark for (data|metadata) device: sending event\.?$/;
const SWITCH_MODE = /^switching pool to (.{1,64}?) mode\.?$/;
const METADATA_FAILED = /^metadata operation '([^']{1,64})' failed: error = (-?\d{1,6})$/;
const NO_FREE = /^no free (data|metadata)? ?space available\.?$/;
/** 3.x: `dm_thin_insert_block() failed`, `dm_thin_find_block() failed: error = -5` */
const FN_FAILED = /^(dm_(?:thin|pool)_[a-z_]{1,40})\(\) failed(?:: error = (-?\d{1,6}))?$/;
const COMMIT_FAILED = /^commit failed: error = (-?\d{1,6})$/;
const NODE_CHECK = /^node_check failed: (.{1,200})$/;
const SB_CHECK = /^sb_check failed: (.{1,200})$/;
const SM_CHECK = /^(index_check|bitmap check) failed: (.{1,200})$/;
const VALIDATOR = /^([a-z_]{1,32}) validator check failed for block (\d{1,20})$/;
/** the hold key of a failed thin metadata operation, which the abort's lines join */
const poolKey = (pool: string): string => `thin:${pool}`;
/** the hold key of a metadata corruption found by a persistent-data validator */
const PDATA_KEY = 'dm-pdata';

function poolRef(printed: string): DeviceRef {
  if (MAJMIN.test(printed)) return { printed, majmin: printed };
  if (printed.startsWith('dm-')) return { printed, name: printed };
  return { printed };
}

const ERRNO: Record<string, string> = {
  '-5': 'EIO', '-12': 'ENOMEM', '-28': 'ENOSPC', '-22': 'EINVAL', '-61': 'ENODATA', '-117': 'EUCLEAN', '-84': 'EILSEQ', '-30': 'EROFS',
};

/** A line of metadata_operation_failed()'s abort: joins the held failure, or stands alone. */
function abortLine(pool: string, device: DeviceRef, ext: Record<string, string>, msg: string): Context {
  return { context: poolKey(pool), ext, orphan: { type: 'LVM_THIN_METADATA_ERROR', device, msg, ext: { pool, ...ext } } };
}

/** 3.x `dm_thin_insert_block() failed`, with the pool or the calling function before it or nothing. */
function fnFailed(text: string, device: DeviceRef | null, prefix: string | null): Finding | null {
  const m = FN_FAILED.exec(text);
  if (!m) return null;
  const ext: Record<string, string> = { operation: m[1]! };
  if (m[2] !== undefined) ext.error = m[2];
  if (device && prefix !== null) ext.pool = prefix;
  else if (prefix !== null) ext.function = prefix;
  return {
    type: 'LVM_THIN_METADATA_ERROR', device,
    msg: `${device ? 'Thin pool {dev}' : 'A thin pool'}: metadata operation ${m[1]} failed${m[2] !== undefined ? ` (error ${m[2]})` : ''}`,
    ext,
  };
}

function thin(body: string): ParseResult {
  if (body.charCodeAt(0) === 100 /* d */ && body.startsWith('dm_')) return fnFailed(body, null, null);
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
        return { type: 'LVM_THIN_METADATA_OUT_OF_SPACE', device, msg: 'Thin pool {dev} is out of metadata space', ext: { pool, mode, space: 'metadata' } };
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
        ext, hold: poolKey(pool),
      };
    }
    case 110: { // n
      const m = NO_FREE.exec(text);
      if (!m) return null;
      const space = m[1] ?? 'data';
      if (space === 'metadata') return { type: 'LVM_THIN_METADATA_OUT_OF_SPACE', device, msg: 'Thin pool {dev} has no free metadata space', ext: { pool, space } };
      return { type: 'LVM_THIN_OUT_OF_SPACE', device, msg: `Thin pool {dev} has no free ${space} space`, ext: { pool, space } };
    }
    case 97: // a
      if (text === 'aborting current metadata transaction') {
        return abortLine(pool, device, { transaction: 'aborted' }, 'Thin pool {dev}: a metadata operation failed; the metadata transaction was aborted');
      }
      return null;
    case 102: // f
      if (text === 'failed to abort metadata transaction') {
        return abortLine(pool, device, { transaction: 'abort_failed' }, 'Thin pool {dev}: the failed metadata transaction could not be aborted');
      }
      if (text === "failed to set 'needs_check' flag in metadata") {
        return abortLine(pool, device, { needs_check: 'set_failed' }, "Thin pool {dev}: the metadata 'needs_check' flag could not be set");
      }
      return null;
    case 99: { // c
      const m = COMMIT_FAILED.exec(text);
      if (!m) return null;
      return { type: 'LVM_THIN_METADATA_ERROR', device, msg: `Thin pool {dev}: committing its metadata failed (error ${m[1]})`, ext: { pool, operation: 'commit', error: m[1]! } };
    }
    case 100: // d: `<function>: dm_thin_find_block() failed: error = -5` (3.x)
      return fnFailed(text, MAJMIN.test(pool) ? device : null, pool);
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
  if (body === "Snapshot is invalid: can't merge" || body.indexOf('shutting down merge') > 0) {
    const reason = body.endsWith('.') ? body.slice(0, -1) : body;
    return {
      type: 'LVM_SNAPSHOT_MERGE_FAILED', device: null,
      msg: reason.startsWith('Snapshot is invalid') ? 'A snapshot could not be merged into its origin: the snapshot is invalid' : `A snapshot merge stopped: ${reason.slice(0, 200)}`,
      ext: { reason: reason.slice(0, 200) },
    };
  }
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

function metadataError(msg: string, ext: Record<string, string>): Finding {
  return { type: 'LVM_THIN_METADATA_ERROR', device: null, msg, ext, hold: PDATA_KEY };
}

/** persistent-data and dm-thin-metadata: `<prefix>: <body>` */
function persistentData(prefix: string, body: string): ParseResult {
  switch (prefix) {
    case 'btree spine': {
      const m = NODE_CHECK.exec(body);
      return m ? metadataError('Thin/cache metadata is corrupt: a btree node failed its check', { check: 'node_check', detail: m[1]! }) : null;
    }
    case 'space map common': {
      const m = SM_CHECK.exec(body);
      return m ? metadataError('Thin/cache metadata is corrupt: a space map block failed its check', { check: m[1]!, detail: m[2]! }) : null;
    }
    case 'block manager': {
      const m = VALIDATOR.exec(body);
      if (!m) return null;
      return {
        context: PDATA_KEY, ext: { validator: m[1]!, block: m[2]! },
        orphan: { type: 'LVM_THIN_METADATA_ERROR', device: null, msg: `Thin/cache metadata is corrupt: block ${m[2]} failed the ${m[1]} validator`, ext: { validator: m[1]!, block: m[2]! } },
      };
    }
    case 'space map metadata':
      if (body === 'unable to allocate new metadata block') {
        return { type: 'LVM_THIN_METADATA_OUT_OF_SPACE', device: null, msg: 'Thin pool metadata is full: no new metadata block could be allocated', ext: { space: 'metadata' } };
      }
      return null;
    case 'thin metadata': {
      if (body === "couldn't read superblock") {
        return {
          context: PDATA_KEY, ext: { superblock: 'unreadable' },
          orphan: { type: 'LVM_THIN_METADATA_ERROR', device: null, msg: 'The superblock of a thin pool\'s metadata could not be read', ext: { superblock: 'unreadable' } },
        };
      }
      const m = SB_CHECK.exec(body);
      return m ? metadataError('Thin pool metadata is corrupt: its superblock failed its check', { check: 'sb_check', detail: m[1]! }) : null;
    }
    default:
      return null;
  }
}

function parse(rec: ClassifiedRecord): ParseResult {
  const m = dmMessage(rec.message);
  if (m === null) return null;
  let body: string;
  if (m.startsWith('thin: ', 15)) {
    body = m.slice(21);
    if (body.length > 512) return null;
    return thin(trimLineEnd(body));
  }
  if (m.startsWith('snapshots: ', 15)) {
    body = m.slice(26);
    if (body.length > 512) return null;
    return snapshots(trimLineEnd(body));
  }
  // cache and snapshot exception stores: no event; persistent-data: metadata errors
  const colon = m.indexOf(': ', 15);
  if (colon < 0 || colon > 15 + 24) return null;
  body = m.slice(colon + 2);
  if (body.length > 512) return null;
  return persistentData(m.slice(15, colon), trimLineEnd(body));
}

export const parser: Parser = { name: 'lvm', systems: ['lvm'], parse };
