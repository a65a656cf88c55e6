// Block parser details the fixture table does not cover: every status word
// of the request error printer, the device a hung task works for (including
// a comm cut at 15 characters), the messages, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/block.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 3): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'block' });

function finding(message: string, level = 3): Finding {
  const r = parser.parse(rec(message, level));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('block parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'block');
    assert.deepEqual(parser.systems, ['block']);
  });

  it('keeps every blk_status_to_str() word as ext.status', () => {
    const words = ['I/O', 'critical medium', 'critical target', 'recoverable transport', 'timeout', 'critical space allocation',
      'critical nexus', 'reservation conflict', 'protection', 'operation not supported', 'kernel resource', 'device resource',
      'nonblocking retry', 'device offline', 'open zones exceeded', 'active zones exceeded', 'duration limit exceeded', 'invalid'];
    for (const w of words) {
      for (const m of [`${w} error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`,
        `blk_update_request: ${w} error, dev sdb, sector 2048`]) {
        const f = finding(m);
        assert.equal(f.type, 'BLK_IO_ERROR');
        assert.equal(f.ext.status, w, m);
        assert.deepEqual(f.device, { printed: 'sdb', name: 'sdb' });
        assert.equal(f.ext.sector, '2048');
      }
    }
  });

  it('writes one sentence with {dev}, the op and the sector', () => {
    assert.equal(finding('I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x800 phys_seg 1 prio class 2').msg, 'I/O error on {dev} (READ, sector 2048)');
    assert.equal(finding('critical medium error, dev sdd, sector 7 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0').msg, 'Critical medium error on {dev} (WRITE, sector 7)');
    assert.equal(finding('print_req_error: I/O error, dev sdc, sector 4096').msg, 'I/O error on {dev} (sector 4096)');
    assert.match(finding('Buffer I/O error on dev sdb1, logical block 0, async page read').msg, /\{dev\}/);
    assert.match(finding('loop0: detected capacity change from 0 to 65536').msg, /\{dev\}.*0 to 65536/);
  });

  it('tolerates unknown trailing fields after the sector of newer kernels', () => {
    const f = finding('I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x800 phys_seg 1 prio class 2 hint 3');
    assert.equal(f.ext.prio_class, '2');
    assert.equal(parser.parse(rec('I/O error, dev sdb, sector 2048x')), null);
  });

  it('rejects function prefixes that are not identifiers and status words that are not words', () => {
    assert.equal(parser.parse(rec('EXT4-fs (sdb1): I/O error, dev sdb, sector 2')), null);
    assert.equal(parser.parse(rec('0x12 error, dev sdb, sector 2')), null);
    assert.equal(parser.parse(rec('I/O error, dev , sector 2')), null);
  });

  it('finds the device of a hung task from its comm', () => {
    const cases: [string, Finding['device']][] = [
      ['jbd2/sdb1-8', { printed: 'sdb1', name: 'sdb1' }],
      ['jbd2/dm-10-8', { printed: 'dm-10', name: 'dm-10' }],
      ['jbd2/nvme0n1p2-', { printed: 'nvme0n1p2', name: 'nvme0n1p2' }],
      // 15 characters without the `-N` suffix: the name may be cut, keep it as printed only
      ['jbd2/nvme10n1p1', { printed: 'nvme10n1p1' }],
      ['xfsaild/sdb1', { printed: 'sdb1', name: 'sdb1' }],
      ['xfsaild/nvme0n1', { printed: 'nvme0n1' }],
      ['md127_raid5', { printed: 'md127', name: 'md127' }],
      ['md0_resync', { printed: 'md0', name: 'md0' }],
      ['loop12', { printed: 'loop12', name: 'loop12' }],
      ['flush-253:0', { printed: '253:0', majmin: '253:0' }],
      ['kworker/u16:2', null],
      ['kworker/2:1H', null],
      ['dd', null],
      ['mysqld', null],
    ];
    for (const [task, device] of cases) {
      const f = finding(`INFO: task ${task}:4242 blocked for more than 120 seconds.`);
      assert.equal(f.type, 'BLK_TASK_HUNG');
      assert.deepEqual(f.device, device, task);
      assert.equal(f.ext.task, task);
      assert.equal(f.ext.pid, '4242');
      assert.equal(f.ext.seconds, '120');
    }
  });

  it('maps the buffer error detail to the op', () => {
    assert.equal(finding('Buffer I/O error on dev sdb1, logical block 0, async page read').ext.op, 'READ');
    const w = finding('Buffer I/O error on dev sdb1, logical block 9, lost async page write');
    assert.equal(w.ext.op, 'WRITE');
    assert.equal(w.ext.lost, 'true');
    assert.equal(finding('Buffer I/O error on device sdb1, logical block 0').ext.op, undefined);
  });

  it('reads the 2.4 request error that prints the device number before the name (real lines)', () => {
    const f = finding('end_request: I/O error, dev 21:05 (hde), sector 159991808');
    assert.equal(f.type, 'BLK_IO_ERROR');
    assert.deepEqual(f.device, { printed: 'hde', name: 'hde' });
    assert.deepEqual(f.ext, { function: 'end_request', status: 'I/O', sector: '159991808', dev_number: '21:05' });
    assert.deepEqual(finding('end_request: I/O error, dev 21:45 (hdf), sector 159991832').device, { printed: 'hdf', name: 'hdf' });
    assert.deepEqual(finding('end_request: critical target error, dev sdc, sector 62333824').device, { printed: 'sdc', name: 'sdc' });
    for (const m of ['end_request: I/O error, dev 21:05 (hde, sector 1', 'end_request: I/O error, dev 21:05 (), sector 1', 'end_request: I/O error, dev (hde), sector 1']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('reads the buffer-cache errors of 2.6-3.x kernels (real lines)', () => {
    const l = finding('lost page write due to I/O error on md2', 4);
    assert.equal(l.type, 'BLK_BUFFER_IO_ERROR');
    assert.deepEqual(l.device, { printed: 'md2', name: 'md2' });
    assert.deepEqual(l.ext, { op: 'WRITE', lost: 'true', detail: 'lost page write' });
    const b = finding('Buffer I/O error on device loop1, logical block 164368');
    assert.deepEqual([b.type, b.device?.name, b.ext.logical_block], ['BLK_BUFFER_IO_ERROR', 'loop1', '164368']);
    assert.equal(parser.parse(rec('lost page write due to I/O error on ')), null);
  });

  it('names the swap device by major:minor for a swap I/O error (real lines)', () => {
    const cases: [string, string, string, string][] = [
      ['Read-error on swap-device (254:1:849792)', '254:1', 'READ', '849792'],
      ['Read-error on swap-device (254:1:128)', '254:1', 'READ', '128'],
      ['Read-error on swap-device (253:0:2688896)', '253:0', 'READ', '2688896'],
      ['Write-error on swap-device (253:0:45704)', '253:0', 'WRITE', '45704'],
    ];
    for (const [m, majmin, op, sector] of cases) {
      const f = finding(m, 1);
      assert.equal(f.type, 'BLK_SWAP_IO_ERROR', m);
      assert.deepEqual(f.device, { printed: majmin, majmin });
      assert.deepEqual(f.ext, { op, sector });
      assert.match(f.msg, /\{dev\}/);
    }
    assert.deepEqual(finding('Read-error on swap-device', 1).device, null);
    const dio = finding('Write error -5 on dio swapfile (1044480)');
    assert.deepEqual([dio.type, dio.device, dio.ext.op, dio.ext.error, dio.ext.offset], ['BLK_SWAP_IO_ERROR', null, 'WRITE', '-5', '1044480']);
    assert.equal(finding('Write error on dio swapfile (4096)').ext.error, undefined);
    for (const m of ['Read-error on swap-device (254:1)', 'Read-error on swap-device (a:b:c)', 'Write error on dio swapfile', 'Write error, dev sdb']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('reads the MMC card errors, named by the card\'s disk (real lines)', () => {
    const cases: [string, string, Record<string, string>][] = [
      ['mmcblk0: error -110 sending stop command, original cmd response 0x900, card status 0x900', 'mmcblk0', { error: '-110', command: 'stop', card_status: '0x900' }],
      ['mmcblk0: error -110 sending stop command, original cmd response 0x900, card status 0x400900', 'mmcblk0', { error: '-110', command: 'stop', card_status: '0x400900' }],
      ['mmcblk0: error -84 transferring data, sector 3, nr 5, cmd response 0x900, card status 0x0', 'mmcblk0', { error: '-84', during: 'transferring data', sector: '3', nr: '5', card_status: '0x0' }],
      ['mmcblk0: error -84 transferring data, sector 8240160, nr 224, cmd response 0x900, card status 0xb00', 'mmcblk0', { error: '-84', during: 'transferring data', sector: '8240160', nr: '224', card_status: '0xb00' }],
      ['mmcblk1: error -110 sending status command, aborting', 'mmcblk1', { error: '-110', command: 'status', action: 'aborting' }],
      ['mmcblk1: error -110 sending status command, retrying', 'mmcblk1', { error: '-110', command: 'status', action: 'retrying' }],
      ['mmcblk0: timed out sending r/w command, card status 0x400900', 'mmcblk0', { error: 'timed out', command: 'r/w', card_status: '0x400900' }],
      ['mmcblk0: response CRC error sending SET_BLOCK_COUNT command, card status 0x900', 'mmcblk0', { error: 'response CRC error', command: 'SET_BLOCK_COUNT', card_status: '0x900' }],
      ['mmcblk0: unknown error -5 sending read/write command, card status 0x900', 'mmcblk0', { error: '-5', command: 'read/write', card_status: '0x900' }],
      ['mmcblk0: error -110 sending read/write command, response 0x900, card status 0x900', 'mmcblk0', { error: '-110', command: 'read/write', card_status: '0x900' }],
      ['mmcblk1boot0: error -110 requesting status', 'mmcblk1boot0', { error: '-110', during: 'requesting status' }],
      // 2.6.2x–3.x: the card's status word had an error bit after a read/write (Amlogic 3.10)
      ['mmcblk0: r/w command failed, status = 0x80000b00', 'mmcblk0', { command: 'r/w', card_status: '0x80000b00' }],
    ];
    for (const [m, dev, ext] of cases) {
      const f = finding(m);
      assert.equal(f.type, 'BLK_MMC_ERROR', m);
      assert.deepEqual(f.device, { printed: dev, name: dev });
      assert.deepEqual(f.ext, ext, m);
    }
    assert.equal(finding('mmcblk0: error -84 transferring data, sector 3, nr 5, cmd response 0x900, card status 0x0').msg, 'MMC error -84 transferring data on {dev} at sector 3');
    assert.equal(finding('mmcblk0: r/w command failed, status = 0x80000b00').msg, 'MMC read/write command failed on {dev} (card status 0x80000b00)');
    for (const m of ['mmcblk0: retrying using single block read', 'mmcblk2boot0: mmc2:0001 BJTD4R partition 1 4.00 MiB', 'mmcblk0: p1 p2',
      'mmcblk2rpmb: mmc2:0001 BJTD4R partition 3 4.00 MiB, chardev (238:0)', 'mmcblk0: error sending stop command', 'mmcblk0: error -110 sending stop commandx',
      'mmcblk0: r/w command failed, status = later']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
    assert.equal(finding('mmcblk0: detected capacity change from 0 to 30318592').type, 'BLK_CAPACITY_CHANGE');
  });

  it('reads a loop device\'s failed write to its backing file (real line)', () => {
    const f = finding('loop: Write error at byte offset 1032134656, length 4096.');
    assert.equal(f.type, 'BLK_LOOP_IO_ERROR');
    assert.equal(f.device, null);
    assert.deepEqual(f.ext, { offset: '1032134656', length: '4096', op: 'WRITE' });
    assert.deepEqual(finding('loop: Transfer error at byte offset 0, length 512.').ext, { offset: '0', length: '512' });
    for (const m of ['loop: module loaded', 'loop: loaded (max 8 devices)', 'loop: Write error at byte offset x, length 4096.']) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('reads a request too big for its device (real lines)', () => {
    const f = finding('bio too big device sdb1 (128 > 64)');
    assert.equal(f.type, 'BLK_BIO_TOO_BIG');
    assert.deepEqual(f.device, { printed: 'sdb1', name: 'sdb1' });
    assert.deepEqual(f.ext, { sectors: '128', max_sectors: '64' });
    assert.deepEqual(finding('bio too big device sdc1 (128 > 64)').device, { printed: 'sdc1', name: 'sdc1' });
    assert.equal(parser.parse(rec('bio too big device sdb1')), null);
  });

  it('counts the rate limiter\'s suppressed messages of every storage function, ext4\'s own limiter too (real lines)', () => {
    for (const [m, fn, n] of [
      ['print_req_error: 134 callbacks suppressed', 'print_req_error', '134'],
      ['buffer_io_error: 506 callbacks suppressed', 'buffer_io_error', '506'],
      ['btrfs_dev_stat_print_on_error: 774 callbacks suppressed', 'btrfs_dev_stat_print_on_error', '774'],
      ['EXT4-fs error: 352 callbacks suppressed', 'EXT4-fs error', '352'],
      ['EXT4-fs: 2 callbacks suppressed', 'EXT4-fs', '2'],
    ] as const) {
      const f = finding(m, 4);
      assert.equal(f.type, 'KERNEL_LOG_SUPPRESSED', m);
      assert.deepEqual(f.ext, { suppressed: n, function: fn });
    }
    assert.equal(parser.parse(rec('printk: 7 messages suppressed.')), null);
  });

  it('reads the suppressed count as a string and names no device', () => {
    const f = finding('blk_print_req_error: 14 callbacks suppressed');
    assert.equal(f.type, 'KERNEL_LOG_SUPPRESSED');
    assert.equal(f.device, null);
    assert.deepEqual(f.ext, { suppressed: '14', function: 'blk_print_req_error' });
    assert.equal(parser.parse(rec('blk_print_req_error: many callbacks suppressed')), null);
  });

  it('ignores other block-layer chatter', () => {
    for (const m of ['', 'sdb: sdb1 sdb2', 'loop0: p1', 'blk_update_request: 3 requests', 'INFO: task', 'Buffer I/O error',
      'INFO: task dd:1 blocked for more than x seconds.', 'sdb: detected capacity change from a to b']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('block')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + 'x'.repeat(100_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 20)}\n${m.slice(20)}`));
      parser.parse(rec(m.slice(0, 30) + ' error, dev '.repeat(150)));
    }
    let seed = 7;
    const prefixes = ['I/O error, dev ', 'end_request: I/O error, dev 21:05 (', 'Buffer I/O error on dev ', 'INFO: task ', 'loop0: detected capacity change from ', 'x: ',
      'Read-error on swap-device (', 'Write error ', 'mmcblk0: error -', 'mmcblk0: timed out sending ', 'loop: Write error at byte offset ', 'bio too big device ', 'lost page write '];
    for (let n = 0; n < 2000; n++) {
      let s = prefixes[n % prefixes.length]!;
      for (let i = 0; i < 80; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        s += String.fromCharCode(seed % 256);
      }
      parser.parse(rec(s));
    }
    assert.ok(performance.now() - start < 3000, 'parsing stays linear');
  });
});
