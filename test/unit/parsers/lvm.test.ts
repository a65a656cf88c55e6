// LVM (dm-thin, dm-snapshot) parser details the fixture table does not cover:
// the extentions of each pool mode, the metadata failure decision, the
// device-less snapshot event, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/lvm.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 4): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'lvm' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('lvm parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'lvm');
    assert.deepEqual(parser.systems, ['lvm']);
  });

  it('reports the pool as major:minor with the mode in the extentions', () => {
    const q = finding('device-mapper: thin: 253:2: switching pool to out-of-data-space (queue IO) mode');
    assert.equal(q.type, 'LVM_THIN_OUT_OF_SPACE');
    assert.deepEqual(q.device, { printed: '253:2', majmin: '253:2' });
    assert.deepEqual(q.ext, { pool: '253:2', mode: 'out-of-data-space (queue IO)', space: 'data', io: 'queue' });
    assert.equal(finding('device-mapper: thin: 253:2: switching pool to out-of-data-space (error IO) mode').ext.io, 'error');
    assert.equal(finding('device-mapper: thin: 253:2: switching pool to out-of-data-space mode').ext.io, undefined);
    assert.equal(finding('device-mapper: thin: 253:2: switching pool to read-only mode').type, 'LVM_THIN_READ_ONLY');
    assert.equal(finding('device-mapper: thin: 253:2: switching pool to fail mode').ext.mode, 'fail');
    assert.equal(finding('device-mapper: thin: 253:2: switching pool to failure mode').ext.mode, 'fail');
    assert.equal(parser.parse(rec('device-mapper: thin: 253:2: switching pool to write mode')), null);
    assert.equal(parser.parse(rec('device-mapper: thin: 253:2: switching pool to sideways mode')), null);
  });

  it('tells data from metadata low water marks', () => {
    assert.equal(finding('device-mapper: thin: 253:2: reached low water mark for data device: sending event.').ext.space, 'data');
    assert.equal(finding('device-mapper: thin: 253:2: reached low water mark for metadata device: sending event.').ext.space, 'metadata');
  });

  it('reports a failed metadata operation as the read-only switch it causes', () => {
    const f = finding("device-mapper: thin: 253:2: metadata operation 'dm_pool_commit_metadata' failed: error = -5");
    assert.equal(f.type, 'LVM_THIN_READ_ONLY');
    assert.equal(f.ext.operation, 'dm_pool_commit_metadata');
    assert.equal(f.ext.error, '-5');
    assert.equal(f.ext.errno, 'EIO');
    assert.equal(f.ext.reason, 'metadata_error');
    assert.equal(finding("device-mapper: thin: 253:2: metadata operation 'x' failed: error = -999").ext.errno, undefined);
  });

  it('has no device for an invalidated snapshot and keeps the cause', () => {
    const f = finding('device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.');
    assert.equal(f.type, 'LVM_SNAPSHOT_INVALIDATED');
    assert.equal(f.device, null);
    assert.equal(f.ext.cause, 'cow_full');
    assert.doesNotMatch(f.msg, /\{dev\}/);
    assert.equal(finding('device-mapper: snapshots: Invalidating snapshot: Error reading/writing.').ext.cause, 'io_error');
    assert.equal(finding('device-mapper: snapshots: Invalidating snapshot: something new').ext.cause, 'other');
  });

  it('holds a failed metadata operation for the lines of its abort, each an event when alone', () => {
    const f = finding("device-mapper: thin: 253:5: metadata operation 'dm_thin_insert_block' failed: error = -28");
    assert.equal(f.hold, 'thin:253:5');
    const cases: [string, Record<string, string>][] = [
      ['device-mapper: thin: 253:5: aborting current metadata transaction', { transaction: 'aborted' }],
      ['device-mapper: thin: 253:5: failed to abort metadata transaction', { transaction: 'abort_failed' }],
      ["device-mapper: thin: 253:5: failed to set 'needs_check' flag in metadata", { needs_check: 'set_failed' }],
    ];
    for (const [m, ext] of cases) {
      const c = parser.parse(rec(m));
      assert.ok(c !== null && isContext(c), m);
      assert.equal(c.context, 'thin:253:5');
      assert.deepEqual(c.ext, ext);
      assert.equal(c.orphan?.type, 'LVM_THIN_METADATA_ERROR');
      assert.deepEqual(c.orphan?.device, { printed: '253:5', majmin: '253:5' });
    }
  });

  it('reports 3.x metadata failures with the pool, the calling function or nothing', () => {
    const bare = finding('device-mapper: thin: dm_thin_insert_block() failed');
    assert.equal(bare.type, 'LVM_THIN_METADATA_ERROR');
    assert.equal(bare.device, null);
    assert.doesNotMatch(bare.msg, /\{dev\}/);
    const fn = finding('device-mapper: thin: process_bio: dm_thin_find_block() failed: error = -5');
    assert.equal(fn.device, null);
    assert.deepEqual(fn.ext, { operation: 'dm_thin_find_block', error: '-5', function: 'process_bio' });
    const pool = finding('device-mapper: thin: 253:2: dm_thin_insert_block() failed: error = -28');
    assert.deepEqual(pool.device, { printed: '253:2', majmin: '253:2' });
    assert.equal(finding('device-mapper: thin: 253:2: commit failed: error = -5').ext.operation, 'commit');
  });

  it('reports persistent-data corruption, the validator verdict joining the check that failed', () => {
    const n = finding('device-mapper: btree spine: node_check failed: node is neither INTERNAL or LEAF');
    assert.equal(n.type, 'LVM_THIN_METADATA_ERROR');
    assert.equal(n.device, null);
    assert.equal(n.hold, 'dm-pdata');
    assert.equal(n.ext.detail, 'node is neither INTERNAL or LEAF');
    assert.equal(finding('device-mapper: thin metadata: sb_check failed: blocknr 7016996765293437281: wanted 0').ext.check, 'sb_check');
    assert.equal(finding('device-mapper: space map common: index_check failed: blocknr 17 != wanted 18').ext.check, 'index_check');
    for (const m of ['device-mapper: block manager: superblock validator check failed for block 0', "device-mapper: thin metadata: couldn't read superblock"]) {
      const c = parser.parse(rec(m));
      assert.ok(c !== null && isContext(c), m);
      assert.equal(c.context, 'dm-pdata');
      assert.equal(c.orphan?.type, 'LVM_THIN_METADATA_ERROR');
    }
  });

  it('tells metadata space from data space', () => {
    const s = finding('device-mapper: space map metadata: unable to allocate new metadata block');
    assert.equal(s.type, 'LVM_THIN_METADATA_OUT_OF_SPACE');
    assert.equal(s.device, null);
    assert.equal(finding('device-mapper: thin: 253:2: no free metadata space available.').type, 'LVM_THIN_METADATA_OUT_OF_SPACE');
    assert.equal(finding('device-mapper: thin: 253:2: no free data space available.').type, 'LVM_THIN_OUT_OF_SPACE');
  });

  it('reports a snapshot merge that stops', () => {
    for (const m of [
      "device-mapper: snapshots: Snapshot is invalid: can't merge",
      'device-mapper: snapshots: Read error in exception store: shutting down merge',
      'device-mapper: snapshots: Write error: shutting down merge.',
      'device-mapper: snapshots: Flush after merge failed: shutting down merge',
    ]) {
      const f = finding(m);
      assert.equal(f.type, 'LVM_SNAPSHOT_MERGE_FAILED', m);
      assert.equal(f.device, null);
    }
  });

  it('gives no event for dm-cache, thin metadata and informational lines', () => {
    for (const m of [
      'device-mapper: cache: 253:5: switching cache to fail mode',
      'device-mapper: thin metadata: __create_persistent_data_objects: sm_metadata_open failed: error = -22',
      'device-mapper: block manager: validator mismatch (old=sm_bitmap vs new=btree_node) for block 429',
      'device-mapper: space map metadata: ',
      'device-mapper: thin: 253:2: dm_thin_insert_block() failed: error = x',
      'device-mapper: thin: 253:2: growing the data device from 1 to 2 blocks',
      'device-mapper: thin: Data device (dm-1) discard unsupported: Disabling discard passdown.',
      'device-mapper: thin: ',
      'device-mapper: snapshots: ',
      'device-mapper: multipath: 253:0: Failing path 8:16.',
    ]) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('lvm')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + ' mode'.repeat(20_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
    }
    let seed = 11;
    for (let n = 0; n < 2000; n++) {
      let s = ['device-mapper: thin: 253:2: ', 'device-mapper: snapshots: ', 'device-mapper: thin metadata: ', 'device-mapper: btree spine: ', 'device-mapper: block manager: ', 'device-mapper: thin: '][n % 6]!;
      for (let i = 0; i < 80; i++) { seed = (seed * 1103515245 + 12345) >>> 0; s += String.fromCharCode(seed % 256); }
      parser.parse(rec(s));
    }
    parser.parse(rec(`device-mapper: thin: 253:2: switching pool to ${'x '.repeat(30_000)}mode`));
    assert.ok(performance.now() - start < 5000);
  });

  it('gives consistent findings for every fixture line it accepts', () => {
    for (const m of fixtureMessages('lvm')) {
      const r = parser.parse(rec(m));
      if (r === null || isContext(r)) continue;
      for (const [k, v] of Object.entries(r.ext)) assert.equal(typeof v, 'string', `ext.${k}`);
      for (const key of r.msg.match(/\{([a-z_]+)\}/g) ?? []) {
        const name = key.slice(1, -1);
        assert.ok(name === 'dev' ? r.device !== null : r.related?.[name] !== undefined, `${key} in "${r.msg}"`);
      }
    }
  });
});
