// md RAID parser details the fixture table does not cover: the array and
// member references, the two-line Disk failure record, degraded vs healthy
// assembly, the sync action mapping, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseKmsgRecord } from '../../../src/kmsg/record.ts';
import { parser } from '../../../src/parsers/mdraid.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';
import { CATALOG } from '../../../src/events/catalog.ts';

const rec = (message: string, level = 2): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'mdraid' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('mdraid parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'mdraid');
    assert.deepEqual(parser.systems, ['mdraid']);
  });

  it('makes the array the device and the failed disk related.member', () => {
    const f = finding('md/raid1:md0: Disk failure on sdb1, disabling device.');
    assert.equal(f.type, 'MD_DISK_FAILURE');
    assert.deepEqual(f.device, { printed: 'md0', name: 'md0' });
    assert.deepEqual(f.related, { member: { printed: 'sdb1', name: 'sdb1' } });
    assert.match(f.msg, /\{member\}/);
    assert.equal(f.ext.level, '1');
  });

  it('reads the remaining device count from the second line of the same record', () => {
    const p = parseKmsgRecord('2,10,1,-;md/raid10:md2: Disk failure on sdd1, disabling device.\\x0amd/raid10:md2: Operation continuing on 3 devices.\n');
    assert.ok(p.ok);
    const r = parser.parse({ ...p.record, system: 'mdraid' });
    assert.ok(r !== null && !isContext(r));
    assert.equal(r.type, 'MD_DISK_FAILURE');
    assert.equal(r.ext.active, '3');
    assert.equal(r.ext.level, '10');
  });

  it('reports degraded assembly only when devices are missing', () => {
    const d = finding('md/raid:md1: raid level 5 active with 3 out of 4 devices, algorithm 2');
    assert.deepEqual(d.ext, { personality: 'raid', level: '5', active: '3', total: '4', algorithm: '2' });
    assert.equal(parser.parse(rec('md/raid:md1: raid level 5 active with 4 out of 4 devices, algorithm 2')), null);
    assert.equal(parser.parse(rec('md/raid1:md0: active with 2 out of 2 mirrors')), null);
    assert.equal(parser.parse(rec('md/raid1:md0: active with 3 out of 2 mirrors')), null, 'more than total is not degraded');
    assert.equal(finding('md/raid10:md2: active with 2 out of 4 devices').ext.total, '4');
  });

  it('has no block device for dm-raid arrays (mdX)', () => {
    const f = finding('md/raid1:mdX: Disk failure on dm-3, disabling device.');
    assert.deepEqual(f.device, { printed: 'mdX' });
    assert.deepEqual(f.related?.member, { printed: 'dm-3', name: 'dm-3' });
  });

  it('maps every sync action name of old and new kernels', () => {
    const cases: [string, string][] = [
      ['recovery', 'MD_RECOVERY_DONE'], ['recover', 'MD_RECOVERY_DONE'], ['resync', 'MD_RESYNC_DONE'],
      ['requested-resync', 'MD_RESYNC_DONE'], ['repair', 'MD_RESYNC_DONE'], ['reshape', 'MD_RESYNC_DONE'],
      ['data-check', 'MD_CHECK_DONE'], ['check', 'MD_CHECK_DONE'], ['sync', 'MD_RESYNC_DONE'],
    ];
    for (const [action, type] of cases) {
      const f = finding(`md: md5: ${action} done.`);
      assert.equal(f.type, type, action);
      assert.equal(f.ext.action, action);
      assert.equal(finding(`md: md5: ${action} interrupted.`).type, 'MD_RECOVERY_INTERRUPTED');
      if (action !== 'sync') assert.equal(finding(`md: ${action} of RAID array md5`).type, 'MD_RECOVERY_STARTED');
    }
    assert.equal(parser.parse(rec('md: md5: frozen done.')), null);
  });

  it('puts a kicked member in related.member with no array', () => {
    const f = finding('md: kicking non-fresh sdb1 from array!');
    assert.equal(f.type, 'MD_DISK_KICKED');
    assert.equal(f.device, null);
    assert.deepEqual(f.related?.member, { printed: 'sdb1', name: 'sdb1' });
    assert.doesNotMatch(f.msg, /\{dev\}/);
  });

  it('finds members whatever letter their name starts with', () => {
    for (const member of ['rbd0', 'nvme0n1p1', 'dm-3', 'sdaa1', 'Cciss', 'ops1']) {
      const f = finding(`md/raid1:md0: ${member}: unrecoverable I/O read error for block 2048`);
      assert.equal(f.type, 'MD_READ_ERROR_NOT_CORRECTABLE', member);
      assert.equal(f.related?.member?.name, member);
    }
    const unknown = finding('md/raid10:md2: ???: unrecoverable I/O read error for block 4096');
    assert.equal(unknown.related, undefined);
    assert.doesNotMatch(unknown.msg, /\{member\}/);
  });

  it('reports md capacity changes that classify.ts routes here', () => {
    const f = finding('md0: detected capacity change from 0 to 1071644672');
    assert.equal(f.type, 'BLK_CAPACITY_CHANGE');
    assert.deepEqual(f.device, { printed: 'md0', name: 'md0' });
    assert.equal(parser.parse(rec('md0: bitmap initialized from disk: read 1 pages, set 0 of 16 bits')), null);
  });

  it('reports a failed array as MD_ARRAY_FAILED, an error even when the level is unknown (dmesg text)', () => {
    const r = parser.parse(rec('md/raid:md1: Cannot continue operation (2/4 failed).', -1));
    assert.ok(r !== null && !isContext(r));
    assert.equal(r.type, 'MD_ARRAY_FAILED');
    assert.equal(CATALOG[r.type].floor, 'error');
  });

  it('holds an array that did not start for its `failed to run raid set` line, which alone is MD_ARRAY_FAILED', () => {
    const f = finding('md/raid:md1: not enough operational devices (2/4 failed)');
    assert.equal(f.type, 'MD_ARRAY_FAILED');
    assert.equal(f.hold, 'md-run:md1');
    for (const [m, array] of [['md/raid:md1: failed to run raid set.', 'md1'], ['raid5: failed to run raid set md0', 'md0']] as const) {
      const c = parser.parse(rec(m));
      assert.ok(c !== null && isContext(c), m);
      assert.equal(c.context, `md-run:${array}`);
      assert.equal(c.orphan?.type, 'MD_ARRAY_FAILED');
      assert.deepEqual(c.orphan?.device, { printed: array, name: array });
    }
    const old = finding('raid5: not enough operational devices for md0 (2/4 failed)');
    assert.equal(old.hold, 'md-run:md0');
    assert.deepEqual(old.ext, { personality: 'raid5', level: '5', state: 'failed', failed: '2', total: '4' });
    assert.equal(finding('raid6: cannot start dirty degraded array for md3').ext.state, 'dirty-degraded');
  });

  it('reads the 2.4/2.6 `raidN:` lines, which mostly name no array', () => {
    const one = finding('raid5: Disk failure on hde5, disabling device. Operation continuing on 5 devices');
    assert.equal(one.type, 'MD_DISK_FAILURE');
    assert.equal(one.device, null);
    assert.deepEqual(one.related?.member, { printed: 'hde5', name: 'hde5' });
    assert.deepEqual(one.ext, { personality: 'raid5', level: '5', active: '5' });
    assert.doesNotMatch(one.msg, /\{dev\}/);
    const two = finding('raid1: Disk failure on sda5, disabling device. \n\tOperation continuing on 1 devices');
    assert.equal(two.ext.active, '1');
    assert.equal(finding('raid1: Disk failure on sda5, disabling device.').ext.active, undefined);
    for (const m of ['       Operation continuing on 1 devices', 'Operation continuing on 1 devices', 'raid5: Operation continuing on 3 devices.']) {
      const d = finding(m);
      assert.equal(d.type, 'MD_ARRAY_DEGRADED', m);
      assert.equal(d.device, null);
      assert.doesNotMatch(d.msg, /\{dev\}/);
    }
    const named = finding('raid5:md0: read error not correctable (sector 2048 on sdb1).');
    assert.equal(named.type, 'MD_READ_ERROR_NOT_CORRECTABLE');
    assert.deepEqual(named.device, { printed: 'md0', name: 'md0' });
    assert.equal(named.ext.level, '5');
    assert.equal(finding('raid10:md2: read error corrected (8 sectors at 2048 on sdd1)').type, 'MD_READ_ERROR_CORRECTED');
    assert.equal(finding('raid5: read error not correctable.').device, null);
    assert.equal(finding('raid5: read error corrected!!').type, 'MD_READ_ERROR_CORRECTED');
    assert.equal(finding('raid1: sdb1: unrecoverable I/O read error for block 2048').related?.member?.name, 'sdb1');
    assert.equal(finding('raid1: raid set md0 active with 1 out of 2 mirrors').ext.total, '2');
    assert.equal(finding('raid5: raid level 5 set md4 active with 2 out of 3 devices, algorithm 2').ext.algorithm, '2');
    assert.equal(parser.parse(rec('raid5: raid level 5 set md4 active with 3 out of 3 devices, algorithm 2')), null);
    for (const m of ['raid6: sse2x4    3215 MB/s', 'raid6: using algorithm sse2x4 (3215 MB/s)', 'raid5: using function: generic_sse (2948.000 MB/sec)', 'raid7: Disk failure on sda, disabling device.', 'raid', 'raid5:', 'raid5:md0:']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('reports failed superblock writes and invalid superblocks with the member when the line names it', () => {
    const w = finding('md: super_written gets error=-5');
    assert.equal(w.type, 'MD_SUPERBLOCK_WRITE_FAILED');
    assert.equal(w.device, null);
    assert.deepEqual(w.ext, { error: '-5' });
    assert.deepEqual(finding('md: super_written gets error=-5, uptodate=0').ext, { error: '-5', uptodate: '0' });
    assert.equal(finding('md: super_written gets error=10').ext.error, '10');
    const sb = finding('md: write_disk_sb failed for device hdf5');
    assert.deepEqual(sb.related?.member, { printed: 'hdf5', name: 'hdf5' });
    const inv = finding('md: invalid raid superblock magic on sdc3');
    assert.equal(inv.type, 'MD_INVALID_SUPERBLOCK');
    assert.equal(inv.device, null);
    assert.deepEqual(inv.related?.member, { printed: 'sdc3', name: 'sdc3' });
    assert.equal(finding('md: invalid superblock checksum on sdb1').ext.reason, 'bad_checksum');
    assert.equal(parser.parse(rec('md: sdc3 has invalid sb, not importing!')), null);
    assert.equal(parser.parse(rec('md: errors occurred during superblock update, repeating')), null);
  });

  it('reports a 2.4 array without a spare as degraded', () => {
    const f = finding('md5: no spare disk to reconstruct array! -- continuing in degraded mode');
    assert.equal(f.type, 'MD_ARRAY_DEGRADED');
    assert.deepEqual(f.device, { printed: 'md5', name: 'md5' });
  });

  it('ignores lines that are not md', () => {
    for (const m of ['mdadm: something', 'md', 'md/', 'md/raid1:', 'md/raid1:md0:', 'md/raid1:md0: ', 'md: ', 'md:', 'mdX', 'md0:', 'md0: ']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('mdraid')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + 'x'.repeat(100_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 20)}\n${m.slice(20)}`));
    }
    let seed = 3;
    const prefixes = ['md/raid1:md0: ', 'md/raid:md1: ', 'md: ', 'md0: ', 'raid5: ', 'raid10:md2: ', 'raid1: Disk failure on ', '\tOperation continuing on '];
    for (let n = 0; n < 2000; n++) {
      let s = prefixes[n % prefixes.length]!;
      for (let i = 0; i < 80; i++) { seed = (seed * 1103515245 + 12345) >>> 0; s += String.fromCharCode(seed % 256); }
      parser.parse(rec(s));
    }
    parser.parse(rec(`md/raid1:md0: Disk failure on ${'a'.repeat(60)}, disabling device.\n${'Operation continuing on 1 devices. '.repeat(2000)}`));
    assert.ok(performance.now() - start < 5000);
  });

  it('gives consistent findings for every fixture line it accepts', () => {
    for (const m of fixtureMessages('mdraid')) {
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
