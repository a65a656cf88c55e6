// Filesystem parser details the fixture table does not cover: UUID
// extraction (and the all-zero UUID), the jbd2 journal name, the fields of
// an ext4 error, the daily error report held for its context lines, XFS
// shutdown reasons, btrfs member devices, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/fs.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';
import { parseText } from '../../helpers/real-world.ts';

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
    assert.equal(f.type, 'FS_ERRORS_RECORDED');
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

  // Real lines from test/fixtures/real-world (issue 12): one wording each, old and new kernels.
  describe('real-world wordings', () => {
    const ctx = (message: string) => {
      const r = parser.parse(rec(message));
      assert.ok(r !== null && isContext(r), `expected a context line for ${message}`);
      return r;
    };
    const ev = (text: string) => parseText(text).map((e) => [e.event_type, e.dev_name, e.severity]);

    it('ext4: corruption is what the text says failed a check (bad <field>, inconsistent, checksum)', () => {
      for (const [m, dev] of [
        ['EXT4-fs error (device sda1): ext4_iget:4450: inode #542119: comm Cache2 I/O: bad extra_isize (20654 != 256)', 'sda1'],
        ['EXT4-fs error (device vda2): ext4_mb_generate_buddy:758: group 65, block bitmap and bg descriptor inconsistent: 9 vs 10 free clusters', 'vda2'],
        ['EXT4-fs error (device sda7): __ext4_find_entry:1545: inode #37: comm journalctl: checksumming directory block 0', 'sda7'],
      ] as const) {
        const f = finding(m);
        assert.equal(f.type, 'FS_CORRUPTION', m);
        assert.equal(f.device?.name, dev);
      }
      assert.equal(finding('EXT4-fs error (device vda2): ext4_mb_generate_buddy:758: group 65, block bitmap and bg descriptor inconsistent: 9 vs 10 free clusters').ext.group, '65');
      for (const m of [
        'EXT4-fs error (device sda1): ext4_lookup:1607: inode #525615: comm Cache2 I/O: deleted inode referenced: 530632',
        'EXT4-fs error (device sdm): ext4_discard_preallocations:5001: comm prometheus: Error -5 reading block bitmap for 211',
        'EXT4-fs error (device sdd1) in __ext4_new_inode:1095: Journal has aborted',
      ]) assert.equal(finding(m).type, 'FS_ERROR', m);
    });

    it('ext4: the error report (3.11 `error count:` and later `since last fsck`) is FS_ERRORS_RECORDED, its lines one event', () => {
      const f = finding('EXT4-fs (mmcblk0p3): error count: 2');
      assert.deepEqual([f.type, f.device?.name, f.ext.error_count, f.hold], ['FS_ERRORS_RECORDED', 'mmcblk0p3', '2', 'ext4-errors:mmcblk0p3']);
      const c = ctx('EXT4-fs (mmcblk0p3): initial error at 33: ext4_mb_generate_buddy:755');
      assert.deepEqual(c.ext, { initial_error: 'ext4_mb_generate_buddy:755 at 33' });
      // alone, a report line is the report
      assert.equal(c.orphan?.type, 'FS_ERRORS_RECORDED');
      assert.equal(c.orphan?.device?.name, 'mmcblk0p3');
      const all = parseText([
        '[3784708.859860] EXT4-fs (vdb): error count since last fsck: 26',
        '[3784708.859876] EXT4-fs (vdb): initial error at time 1529034124: ext4_find_entry:1312: inode 27787278',
        '[3784708.859880] EXT4-fs (vdb): last error at time 1529054176: ext4_find_entry:1312: inode 27787279',
      ].join('\n'));
      assert.equal(all.length, 1);
      assert.deepEqual([all[0]!.event_type, all[0]!.dev_name, all[0]!.severity], ['FS_ERRORS_RECORDED', 'vdb', 'warn']);
      assert.equal(all[0]!.extentions.last_error, 'ext4_find_entry:1312: inode 27787279 at 1529054176');
      assert.deepEqual(ev('[  332.578168] EXT4-fs (sda7): last error at time 1623502311: __ext4_find_entry:1545: inode 37'), [['FS_ERRORS_RECORDED', 'sda7', 'warn']]);
    });

    it('ext4: a journal that cannot be loaded and other mount failures are FS_MOUNT_FAILED', () => {
      for (const [m, dev] of [
        ['EXT4-fs (sdh7): error loading journal', 'sdh7'], ['EXT4-fs (mmcblk1p10): error loading journal', 'mmcblk1p10'],
        ['EXT4-fs (sda1): mount failed', 'sda1'], ['EXT3-fs (sdb1): error loading journal', 'sdb1'], ['EXT4-fs (sdb1): no journal found', 'sdb1'],
      ] as const) {
        const f = finding(m);
        assert.deepEqual([f.type, f.device?.name], ['FS_MOUNT_FAILED', dev], m);
      }
      assert.deepEqual(ev('[ 9080.323570] EXT4-fs (sdh7): error loading journal'), [['FS_MOUNT_FAILED', 'sdh7', 'error']]);
    });

    it('ext4: its own rate limiter is KERNEL_LOG_SUPPRESSED', () => {
      const f = finding('EXT4-fs error: 352 callbacks suppressed');
      assert.deepEqual([f.type, f.device, f.ext.suppressed, f.ext.function], ['KERNEL_LOG_SUPPRESSED', null, '352', 'EXT4-fs error']);
      assert.equal(finding('EXT4-fs warning: 12 callbacks suppressed').ext.function, 'EXT4-fs warning');
      assert.equal(parser.parse(rec('EXT4-fs error: lots of callbacks suppressed')), null);
    });

    it('jbd2: a failed superblock update is an I/O error (old and new wording); load failures name no device', () => {
      const a = finding('JBD2: Error -5 detected when updating journal superblock for sdk-8.');
      assert.deepEqual([a.type, a.device, a.ext.op, a.ext.error, a.ext.journal], ['FS_IO_ERROR', { printed: 'sdk-8', name: 'sdk' }, 'WRITE', '-5', 'sdk-8']);
      const b = finding('JBD2: I/O error when updating journal superblock for mmcblk0p4-8.');
      assert.deepEqual([b.type, b.device?.name], ['FS_IO_ERROR', 'mmcblk0p4']);
      for (const m of ['JBD2: Unrecognised features on journal', 'JBD2: recovery failed', 'JBD2: error -5 scanning journal']) {
        const f = finding(m);
        assert.deepEqual([f.type, f.device], ['FS_ERROR', null], m);
      }
      assert.equal(finding('JBD2: no valid journal superblock found').type, 'FS_CORRUPTION');
      assert.deepEqual([finding('JBD2: IO error reading journal superblock').type, finding('JBD2: IO error reading journal superblock').ext.op], ['FS_IO_ERROR', 'READ']);
      assert.deepEqual(ev('[    7.566156] JBD2: recovery failed'), [['FS_ERROR', '', 'error']]);
    });

    it('xfs: errno -117/-74 is corruption, -5 an I/O error — in metadata I/O errors and `returned error` lines', () => {
      const m = finding('XFS (vda4): metadata I/O error in "xfs_dquot_disk_read+0x14a/0x220 [xfs]" at daddr 0x1478 len 8 error 74');
      assert.deepEqual([m.type, m.device?.name, m.ext.error, m.ext.op], ['FS_CORRUPTION', 'vda4', '74', 'READ']);
      assert.equal(finding('XFS (dm-0): metadata I/O error: block 0x48 ("xfs_trans_read_buf_map") error 117 numblks 8').type, 'FS_CORRUPTION');
      assert.equal(finding('XFS (dm-7): metadata I/O error: block 0x280000010 ("xlog_bread_noalign") error 5 numblks 8').type, 'FS_IO_ERROR');
      const r = finding('XFS (dm-4): xfs_inactive_ifree: xfs_ifree returned error -117');
      assert.deepEqual([r.type, r.device?.name, r.ext.function, r.ext.callee, r.ext.error], ['FS_CORRUPTION', 'dm-4', 'xfs_inactive_ifree', 'xfs_ifree', '-117']);
      assert.equal(finding('XFS (dm-11): xfs_imap_to_bp: xfs_trans_read_buf() returned error -117.').type, 'FS_CORRUPTION');
      assert.equal(finding('XFS (dm-8): xfs_imap_to_bp: xfs_trans_read_buf() returned error -5.').type, 'FS_IO_ERROR');
      const l = finding('XFS (sdd1): xfs_log_force: error -5 returned.');
      assert.deepEqual([l.type, l.device?.name, l.ext.what], ['FS_IO_ERROR', 'sdd1', 'log']);
      // 2.6: positive errno, `Filesystem "X": ` prefix
      assert.deepEqual(ev('Filesystem "dm-1": xfs_log_force: error 5 returned.'), [['FS_IO_ERROR', 'dm-1', 'error']]);
      const w = finding('XFS (dm-11): writeback error on sector 738263040');
      assert.deepEqual([w.type, w.ext.op, w.ext.sector], ['FS_IO_ERROR', 'WRITE', '738263040']);
    });

    it('xfs: an Internal error on an expression or a CORRUPTED check is corruption, on a function an error, with or without the device', () => {
      assert.equal(finding('XFS (dm-0): Internal error i != 1 at line 481 of file fs/xfs/libxfs/xfs_alloc.c. Caller xfs_alloc_fixup_trees+0x198/0x3b0 [xfs]').type, 'FS_CORRUPTION');
      assert.equal(finding('XFS (dm-4): Internal error xfs_iunlink_remove at line 2038 of file fs/xfs/xfs_inode.c.  Caller xfs_ifree+0x33/0x130 [xfs]').type, 'FS_ERROR');
      const n = finding('XFS: Internal error XFS_WANT_CORRUPTED_RETURN at line 342 of file fs/xfs/xfs_alloc.c.  Caller 0xffffffffa01e76c2');
      assert.deepEqual([n.type, n.device, n.ext.line, n.ext.file], ['FS_CORRUPTION', null, '342', 'fs/xfs/xfs_alloc.c']);
      assert.doesNotMatch(n.msg, /\{dev\}/);
      assert.deepEqual(ev('Sep  3 04:45:39 ip-10-204-xxx-xxx kernel: Filesystem "dm-1": XFS internal error xfs_trans_cancel at line 1138 of file fs/xfs/xfs_trans.c.  Caller 0xee27bcac'), [['FS_ERROR', 'dm-1', 'error']]);
    });

    it('xfs: the force-shutdown line holds the shutdown, the `Shutting down filesystem` line after it joins (one event)', () => {
      const f = finding('XFS (dm-8): xfs_do_force_shutdown(0x1) called from line 370 of file fs/xfs/xfs_trans_buf.c. Return address = 0xffffffffc049d28a');
      assert.deepEqual([f.type, f.device?.name, f.ext.shutdown_flags, f.ext.source, f.hold], ['FS_SHUTDOWN', 'dm-8', 'metadata_io', 'fs/xfs/xfs_trans_buf.c:370', 'xfs-shutdown:dm-8']);
      const c = ctx('XFS (dm-8): I/O Error Detected. Shutting down filesystem');
      assert.deepEqual([c.context, c.ext.reason, c.orphan?.type], ['xfs-shutdown:dm-8', 'I/O Error', 'FS_SHUTDOWN']);
      const both = parseText([
        '[257265.468411] XFS (dm-11): xfs_do_force_shutdown(0x8) called from line 3486 of file fs/xfs/xfs_inode.c.  Return address = 00000000cc36f40e',
        '[257265.468412] XFS (dm-11): Corruption of in-memory data detected.  Shutting down filesystem',
        '[257265.468413] XFS (dm-11): Please unmount the filesystem and rectify the problem(s)',
      ].join('\n'));
      assert.deepEqual(both.map((e) => [e.event_type, e.dev_name, e.severity, e.extentions.reason, e.extentions.shutdown_flags]), [['FS_SHUTDOWN', 'dm-11', 'error', 'Corruption of in-memory data', 'corrupt_incore']]);
      // 2.6: `xfs_force_shutdown(sda2,0x2)` without a prefix, then `Filesystem "sda2": …`
      assert.deepEqual(parseText([
        'xfs_force_shutdown(sda2,0x2) called from line 1010 of file fs/xfs/xfs_log.c.  Return address = 0xffffffff8825a8c1',
        'Filesystem "sda2": Log I/O Error Detected.  Shutting down filesystem: sda2',
      ].join('\n')).map((e) => [e.event_type, e.dev_name, e.extentions.shutdown_flags, e.extentions.reason]), [['FS_SHUTDOWN', 'sda2', 'log_io', 'Log I/O Error']]);
    });

    it('xfs: the lines of a failed log mount are one FS_MOUNT_FAILED; `Ending clean mount` is the mount', () => {
      const c = ctx('XFS (dm-7): log mount/recovery failed: error -5');
      assert.deepEqual([c.context, c.ext.error, c.orphan?.type, c.orphan?.device?.name], ['xfs-mount-failed:dm-7', '-5', 'FS_MOUNT_FAILED', 'dm-7']);
      assert.equal(ctx('XFS (dm-7): empty log check failed').orphan?.type, 'FS_MOUNT_FAILED');
      const all = parseText([
        'Jul 26 05:55:54 hdp-datanode-1 kernel: XFS (dm-7): log mount/recovery failed: error -5',
        'Jul 26 05:55:54 hdp-datanode-1 kernel: XFS (dm-7): log mount failed',
      ].join('\n'));
      assert.deepEqual(all.map((e) => [e.event_type, e.dev_name, e.severity, e.extentions.error]), [['FS_MOUNT_FAILED', 'dm-7', 'error', '-5']]);
      assert.deepEqual(ev('XFS: log mount/recovery failed: error 5\\nXFS: log mount failed'.replace('\\n', '\n')), [['FS_MOUNT_FAILED', '', 'error']]);
      assert.deepEqual(ev('[  211.000000] XFS (sdb5): Mounting V5 Filesystem\n[  211.000010] XFS (sdb5): Ending clean mount'), [['FS_MOUNTED', 'sdb5', 'info']]);
      assert.deepEqual(ev('Jul 26 05:55:54 hdp-datanode-1 kernel: XFS (dm-5): Ending clean mount'), [['FS_MOUNTED', 'dm-5', 'info']]);
      assert.deepEqual(ev('XFS mounting filesystem hda1\nEnding clean XFS mount for filesystem: hda1'), [['FS_MOUNTED', 'hda1', 'info']]);
      assert.deepEqual(ev('I/O error in filesystem ("sdc1") meta-data dev sdc1 block 0x575438dc        ("xlog_iodone") error 5 buf count 7680'), [['FS_IO_ERROR', 'sdc1', 'error']]);
    });

    it('btrfs: std errors by errno (-5 I/O), with or without the colon and the state', () => {
      for (const [m, dev] of [
        ['BTRFS error (device mmcblk0p2) in __btrfs_free_extent:5783: errno=-5 IO failure', 'mmcblk0p2'],
        ['BTRFS: error (device sda3) in btrfs_commit_transaction:2487: errno=-5 IO failure (Error while writing out transaction)', 'sda3'],
        ['BTRFS: error (device nvme0n1p2: state EA) in cleanup_transaction:1958: errno=-5 IO failure', 'nvme0n1p2'],
      ] as const) {
        const f = finding(m);
        assert.deepEqual([f.type, f.device?.name, f.ext.errno], ['FS_IO_ERROR', dev, '-5'], m);
      }
      assert.equal(finding('BTRFS: error (device dm-0: state EA) in btrfs_run_delayed_refs:2154: errno=-28 No space left').type, 'FS_ERROR');
      const d = finding('BTRFS warning (device dm-0): direct IO failed ino 4077816 rw 0,0 sector 0x3660bb80 len 4096 err no 10');
      assert.deepEqual([d.type, d.device?.name, d.ext.op, d.ext.inode, d.ext.sector, d.ext.error], ['FS_IO_ERROR', 'dm-0', 'READ', '4077816', '0x3660bb80', '10']);
      assert.equal(finding('BTRFS warning (device sda): direct IO failed root 5 ino 257 op 0x8801 offset 0x0 len 4096 err no 10').ext.op, 'WRITE');
    });

    it('btrfs: an aborted transaction (any case of the prefix) and the skipped commit are FS_JOURNAL_ABORTED', () => {
      for (const m of ['btrfs: Transaction aborted (error -5)', 'BTRFS: Transaction aborted (error -28)']) {
        const f = finding(m);
        assert.deepEqual([f.type, f.device], ['FS_JOURNAL_ABORTED', null], m);
      }
      const s = finding('BTRFS warning (device sda3: state E): Skipping commit of aborted transaction.');
      assert.deepEqual([s.type, s.device?.name, s.ext.state], ['FS_JOURNAL_ABORTED', 'sda3', 'E']);
      assert.deepEqual(ev('[   39.468157] btrfs: Transaction aborted (error -5)'), [['FS_JOURNAL_ABORTED', '', 'error']]);
    });

    it('btrfs: repaired reads are FS_READ_ERROR_CORRECTED with the member that erred', () => {
      const f = finding('BTRFS error (device dm-15): fixed up error at logical 124463056945152 on dev /dev/dm-10 physical 408018681856');
      assert.deepEqual([f.type, f.device?.name, f.related?.member?.name, f.ext.logical], ['FS_READ_ERROR_CORRECTED', 'dm-15', 'dm-10', '124463056945152']);
      const r = finding('BTRFS info (device dm-2): read error corrected: ino 0 off 358252544 (dev /dev/mapper/storage2 sector 660800)');
      assert.deepEqual([r.type, r.device?.name, r.related?.member?.printed, r.ext.sector], ['FS_READ_ERROR_CORRECTED', 'dm-2', '/dev/mapper/storage2', '660800']);
      assert.deepEqual(ev('Mar 17 03:01:44 server kernel: BTRFS info (device sdb1): read error corrected: ino 59747 off 1602211840 (dev /dev/sdc1 sector 1709502656)'), [['FS_READ_ERROR_CORRECTED', 'sdb1', 'warn']]);
      // 3.x: `btrfs read error corrected:` without a device prefix
      assert.equal(finding('btrfs read error corrected: ino 1 off 2 (dev /dev/sdc sector 3)').type, 'FS_READ_ERROR_CORRECTED');
    });

    it('xfs: corruption that online repair (scrub) could not fix is FS_CORRUPTION', () => {
      const f = finding('XFS (sda5): Corruption not fixed during online repair.  Unmount and run xfs_repair.');
      assert.deepEqual([f.type, f.device?.name, f.ext.what], ['FS_CORRUPTION', 'sda5', 'online repair']);
      assert.deepEqual(ev('kern  :alert : [   78.872359] XFS (sda5): Corruption not fixed during online repair.  Unmount and run xfs_repair.'), [['FS_CORRUPTION', 'sda5', 'error']]);
    });

    it('btrfs: unreadable tree roots and open_ctree failures are one FS_MOUNT_FAILED', () => {
      const c = ctx('BTRFS error (device dm-2): failed to read chunk root');
      assert.deepEqual([c.context, c.orphan?.type, c.orphan?.device?.name], ['btrfs-mount-failed:dm-2', 'FS_MOUNT_FAILED', 'dm-2']);
      assert.equal(ctx('BTRFS warning (device sda2): failed to read tree root').orphan?.type, 'FS_MOUNT_FAILED');
      // lines join within the context window (50 ms by default); further apart each is its own event
      assert.deepEqual(ev('<3>[   12.088296] BTRFS error (device dm-2): failed to read chunk root\n<3>[   12.088310] BTRFS error (device dm-2): open_ctree failed'), [['FS_MOUNT_FAILED', 'dm-2', 'error']]);
      assert.deepEqual(ev('<3>[   12.088296] BTRFS error (device dm-2): failed to read chunk root\n<3>[   12.358258] BTRFS error (device dm-2): open_ctree failed'), [['FS_MOUNT_FAILED', 'dm-2', 'error'], ['FS_MOUNT_FAILED', 'dm-2', 'error']]);
      assert.deepEqual(ev('btrfs: failed to read chunk root on sdb\nbtrfs: open_ctree failed'), [['FS_MOUNT_FAILED', 'sdb', 'error']]);
    });

    it('btrfs: tree-checker corruption, free space cache warnings, 3.x csum lines', () => {
      const t = finding('BTRFS error (device sda3): block=5763170304 write time tree block corruption detected');
      assert.deepEqual([t.type, t.device?.name, t.ext.logical, t.ext.check], ['FS_CORRUPTION', 'sda3', '5763170304', 'write time']);
      assert.equal(finding('BTRFS critical (device sda): read time tree block corruption detected on logical 123 mirror 1').ext.logical, '123');
      const w = finding('BTRFS warning (device sda2): block group 4194304 has wrong amount of free space');
      assert.deepEqual([w.type, w.device?.name, w.ext.block_group, w.hold], ['FS_WARNING', 'sda2', '4194304', 'btrfs-fsc:sda2:4194304']);
      assert.deepEqual(ev('[    5.919138] BTRFS warning (device sda2): block group 4194304 has wrong amount of free space\n[    5.919140] BTRFS warning (device sda2): failed to load free space cache for block group 4194304, rebuilding it now'), [['FS_WARNING', 'sda2', 'warn']]);
      const c = finding('btrfs csum failed ino 358 off 227975168 csum 4151547339 private 259191981');
      assert.deepEqual([c.type, c.device, c.ext.inode], ['FS_CORRUPTION', null, '358']);
      assert.doesNotMatch(c.msg, /\{dev\}/);
      // a 3.x line without a level names the device but is an error only by what it says
      assert.equal(finding('BTRFS (device sdb): bad tree block start 18446744071580844624 6118597083136').type, 'FS_CORRUPTION');
      assert.equal(parser.parse(rec('BTRFS (device sdb): something brand new', 3)), null);
    });
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
