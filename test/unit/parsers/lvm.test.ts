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

  it('gives no event for dm-cache, thin metadata and informational lines', () => {
    for (const m of [
      'device-mapper: cache: 253:5: switching cache to fail mode',
      'device-mapper: thin metadata: couldn\'t read superblock',
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
      let s = n % 2 ? 'device-mapper: thin: 253:2: ' : 'device-mapper: snapshots: ';
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
