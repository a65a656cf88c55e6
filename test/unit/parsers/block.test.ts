// Block parser details the fixture table does not cover: every status word
// of the request error printer, the device a hung task works for (including
// a comm cut at 15 characters), the messages, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/block.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 3): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'block' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
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
    const prefixes = ['I/O error, dev ', 'Buffer I/O error on dev ', 'INFO: task ', 'loop0: detected capacity change from ', 'x: '];
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
