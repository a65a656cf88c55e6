// Filesystem parser details the fixture table does not cover: UUID
// extraction (and the all-zero UUID), the jbd2 journal name, the fields of
// an ext4 error, the daily error report held for its context lines, XFS
// shutdown reasons, btrfs member devices, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/fs.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 3): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'fs' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

const UUID = '35dd1f53-ee57-4d85-8f10-5dba8081b146';

describe('fs parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'fs');
    assert.deepEqual(parser.systems, ['fs']);
  });

  it('puts a printed UUID in device.fsUuid, lower-cased, and never an all-zero one', () => {
    assert.equal(finding(`EXT4-fs (loop0): mounted filesystem ${UUID} r/w with ordered data mode. Quota mode: none.`).device?.fsUuid, UUID);
    assert.equal(finding(`EXT4-fs (loop0): unmounting filesystem ${UUID.toUpperCase()}.`).device?.fsUuid, UUID);
    assert.equal(finding(`XFS (sdb1): Mounting V5 Filesystem ${UUID}`).device?.fsUuid, UUID);
    assert.equal(finding(`XFS (sdb1): Unmounting Filesystem ${UUID}`).device?.fsUuid, UUID);
    assert.equal(finding(`BTRFS info (device sdb1): first mount of filesystem ${UUID}`).device?.fsUuid, UUID);
    assert.equal(finding(`BTRFS info (device sdb1): last unmount of filesystem ${UUID}`).device?.fsUuid, UUID);
    assert.equal(finding(`EXT4-fs (dm-0): re-mounted ${UUID} ro.`).device?.fsUuid, UUID);
    const zero = finding('EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.');
    assert.deepEqual(zero.device, { printed: 'vda', name: 'vda' });
    assert.equal(zero.ext.data_mode, 'none');
    assert.equal(finding('EXT4-fs (sdb1): mounted filesystem with ordered data mode. Opts: (null)').device?.fsUuid, undefined);
    // no UUID in error lines: the synthesizer remembers the one from the mount
    assert.equal(finding('EXT4-fs error (device loop0): ext4_lookup:1789: inode #2: comm ls: deleted inode referenced: 12').device?.fsUuid, undefined);
  });

  it('strips the journal inode from a jbd2 device name, but not the number of dm-N', () => {
    const cases: [string, string][] = [['sdb1-8', 'sdb1'], ['dm-3-8', 'dm-3'], ['dm-3', 'dm-3'], ['nvme0n1p2-8', 'nvme0n1p2'], ['md0-8', 'md0'], ['loop12-8', 'loop12'], ['sdc', 'sdc']];
    for (const [printed, name] of cases) {
      assert.deepEqual(finding(`Aborting journal on device ${printed}.`).device, { printed, name }, printed);
      assert.equal(finding(`JBD2: Error -5 detected when updating journal superblock for ${printed}.`).device?.name, name);
    }
  });

  it('splits an ext4 error into its fields', () => {
    const f = finding('EXT4-fs error (device sdb1): ext4_readdir:260: inode #12: block 2049: comm ls: path /mnt/a: b: bad entry in directory: rec_len is smaller than minimal');
    assert.equal(f.type, 'FS_CORRUPTION');
    assert.deepEqual(f.device, { printed: 'sdb1', name: 'sdb1' });
    assert.equal(f.ext.fs_type, 'ext4');
    assert.equal(f.ext.function, 'ext4_readdir');
    assert.equal(f.ext.line, '260');
    assert.equal(f.ext.inode, '12');
    assert.equal(f.ext.block, '2049');
    assert.equal(f.ext.comm, 'ls');
    assert.equal(f.ext.path, '/mnt/a');
    const g = finding('EXT4-fs error (device loop0): ext4_lookup:1789: inode #2: comm kworker/u8:2: deleted inode referenced: 12');
    assert.equal(g.type, 'FS_ERROR');
    assert.equal(g.ext.comm, 'kworker/u8:2');
    assert.equal(g.ext.detail, 'deleted inode referenced: 12');
    assert.equal(g.msg, 'Filesystem error on {dev}: ext4_lookup: deleted inode referenced: 12');
    const s = finding('EXT4-fs error (device sdb1) in ext4_reserve_inode_write:5746: Journal has aborted');
    assert.deepEqual([s.ext.function, s.ext.line, s.ext.detail], ['ext4_reserve_inode_write', '5746', 'Journal has aborted']);
  });

  it('holds the daily ext4 error report for its initial/last error lines', () => {
    const f = finding('EXT4-fs (sdb1): error count since last fsck: 3');
    assert.equal(f.hold, 'ext4-errors:sdb1');
    const c = parser.parse(rec('EXT4-fs (sdb1): initial error at time 1700000000: ext4_lookup:1789: inode 2'));
    assert.ok(c !== null && isContext(c));
    assert.equal(c.context, 'ext4-errors:sdb1');
    assert.deepEqual(c.ext, { initial_error: 'ext4_lookup:1789: inode 2 at 1700000000' });
    const l = parser.parse(rec('EXT4-fs (sdb1): last error at time 1700000100: ext4_lookup:1789'));
    assert.ok(l !== null && isContext(l));
    assert.deepEqual(l.ext, { last_error: 'ext4_lookup:1789 at 1700000100' });
  });

  it('reads the op and position of I/O errors', () => {
    const e = finding('EXT4-fs warning (device sdb1): ext4_end_bio:343: I/O error 10 writing to inode 12 starting block 8193)');
    assert.equal(e.type, 'FS_IO_ERROR');
    assert.equal(e.ext.op, 'WRITE');
    assert.equal(e.ext.block, '8193');
    assert.equal(finding('XFS (dm-0): metadata I/O error in "xfs_da_read_buf+0xf4/0x150 [xfs]" at daddr 0x1 len 8 error 5').ext.op, 'READ');
    assert.equal(finding('XFS (dm-0): metadata I/O error in "xfs_buf_ioend+0x1a/0x40 [xfs]" at daddr 0x1 len 8 error 5').ext.op, undefined);
    const b = finding('BTRFS error (device sdb1): bdev /dev/sdc1 errs: wr 2, rd 0, flush 0, corrupt 0, gen 0');
    assert.equal(b.ext.op, 'WRITE');
    assert.deepEqual(b.related, { member: { printed: '/dev/sdc1', name: 'sdc1' } });
    assert.match(b.msg, /\{member\}/);
    const mapper = finding('BTRFS error (device dm-0): bdev /dev/mapper/vg-data errs: wr 0, rd 1, flush 0, corrupt 0, gen 0');
    assert.deepEqual(mapper.related?.member, { printed: '/dev/mapper/vg-data' });
  });

  it('explains an XFS shutdown', () => {
    const f = finding('XFS (sdb1): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x10b/0x130 [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.');
    assert.equal(f.type, 'FS_SHUTDOWN');
    assert.equal(f.ext.reason, 'Corruption of in-memory data');
    assert.equal(f.ext.flags, '0x8');
    assert.equal(f.ext.shutdown_flags, 'corrupt_incore');
    assert.equal(f.ext.source, 'fs/xfs/xfs_trans.c:1097');
    const l = finding('XFS (sdb1): Filesystem has been shut down due to log error (0x2).');
    assert.equal(l.ext.reason, 'log error');
    assert.equal(l.ext.shutdown_flags, 'log_io');
    assert.equal(parser.parse(rec('XFS (sdb1): Please unmount the filesystem and rectify the problem(s)')), null);
  });

  it('keeps the btrfs state letters and treats unknown error-level lines as errors', () => {
    const f = finding('BTRFS: error (device sdb1: state EA) in btrfs_commit_transaction:2418: errno=-5 IO failure');
    assert.equal(f.ext.state, 'EA');
    assert.equal(f.ext.errno, '-5');
    assert.equal(finding('BTRFS critical (device sdb1): something brand new').type, 'FS_ERROR');
    assert.equal(parser.parse(rec('BTRFS info (device sdb1): something brand new')), null);
    assert.equal(parser.parse(rec('BTRFS warning (device sdb1): something brand new')), null);
  });

  it('has no {dev} in the message of a finding without a device', () => {
    for (const m of ['BTRFS: Transaction aborted (error -28)', 'JBD2: Invalid checksum recovering block 1234 in log', 'JBD2: IO error -5 recovering block 7 in log']) {
      const f = finding(m);
      assert.equal(f.device, null);
      assert.doesNotMatch(f.msg, /\{dev\}/);
    }
  });

  it('ignores what it does not know', () => {
    for (const m of [
      'EXT4-fs (sdb1): recovery complete', 'EXT4-fs: Warning: mounting with data=journal disables delayed allocation',
      'EXT4-fs (', 'EXT4-fs error (device ', 'EXT4-fs error (device sdb1)', 'EXT4-fs warning (device sdb1', 'XFS (', 'XFS: Assertion failed: 0, file: x.c, line: 1',
      'BTRFS', 'BTRFS info (device', 'JBD2: ', 'Aborting journal on device ', 'EXT5-fs (sdb1): mounted filesystem', '',
    ]) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('fs')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + ': '.repeat(50_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 30)}\n${m.slice(30)}`));
    }
    let seed = 9;
    const prefixes = ['EXT4-fs error (device sdb1): ', 'EXT4-fs (sdb1): ', 'EXT4-fs warning (device sdb1): ', 'XFS (sdb1): ', 'BTRFS error (device sdb1): ', 'BTRFS: error (device sdb1) in ', 'JBD2: '];
    for (let n = 0; n < 3500; n++) {
      let s = prefixes[n % prefixes.length]!;
      for (let i = 0; i < 80; i++) { seed = (seed * 1103515245 + 12345) >>> 0; s += String.fromCharCode(seed % 256); }
      parser.parse(rec(s));
    }
    parser.parse(rec(`EXT4-fs error (device sdb1): f:1: ${'comm x: '.repeat(10_000)}`));
    parser.parse(rec(`XFS (sdb1): Metadata corruption detected at ${'a'.repeat(3000)}`));
    parser.parse(rec(`XFS (sdb1): x (0x1) detected at ${'(a) '.repeat(3000)}.  Shutting down filesystem.`));
    assert.ok(performance.now() - start < 5000);
  });

  it('gives consistent findings for every fixture line it accepts', () => {
    for (const m of fixtureMessages('fs')) {
      const r = parser.parse(rec(m));
      if (r === null || isContext(r)) continue;
      assert.ok(r.ext.fs_type, `fs_type for ${m}`);
      for (const [k, v] of Object.entries(r.ext)) assert.equal(typeof v, 'string', `ext.${k}`);
      for (const key of r.msg.match(/\{([a-z_]+)\}/g) ?? []) {
        const name = key.slice(1, -1);
        assert.ok(name === 'dev' ? r.device !== null : r.related?.[name] !== undefined, `${key} in "${r.msg}"`);
      }
    }
  });
});
