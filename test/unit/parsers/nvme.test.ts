// NVMe parser details the fixture table does not cover: which timeout
// actions are controller resets, the op of a failed command from its opcode,
// controller versus namespace devices, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageCodeOf } from '../../../src/events/catalog.ts';
import { parser } from '../../../src/parsers/nvme.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 4): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: 'nvme', device: '', system: 'nvme' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('nvme parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'nvme');
    assert.deepEqual(parser.systems, ['nvme']);
  });

  it('tells a timeout that aborts from one that resets or disables the controller, old and new forms', () => {
    const cases: [string, string][] = [
      ['I/O 1 QID 4 timeout, aborting', 'NVME_IO_TIMEOUT'],
      ['I/O 1 QID 4 timeout, completion polled', 'NVME_IO_TIMEOUT'],
      ['I/O 1 QID 4 timeout, reset controller', 'NVME_CONTROLLER_RESET'],
      ['I/O 1 QID 4 timeout, disable controller', 'NVME_CONTROLLER_RESET'],
      ['I/O tag 1 (0001) opcode 0x2 (Read) QID 4 timeout, aborting req_op:READ(0) size:4096', 'NVME_IO_TIMEOUT'],
      ['I/O tag 1 (0001) QID 4 timeout, completion polled', 'NVME_IO_TIMEOUT'],
      ['I/O tag 1 (0001) opcode 0x2 (Read) QID 4 timeout, reset controller', 'NVME_CONTROLLER_RESET'],
      ['I/O tag 1 (0001) QID 4 timeout, disable controller', 'NVME_CONTROLLER_RESET'],
    ];
    for (const [rest, type] of cases) {
      const f = finding(`nvme nvme3: ${rest}`);
      assert.equal(f.type, type, rest);
      assert.deepEqual(f.device, { printed: 'nvme3' });
      assert.equal(f.ext.qid, '4');
      assert.equal(f.ext.tag, '1');
      assert.match(f.msg, /\{dev\}/);
    }
  });

  it('derives the op of a timed-out or failed command from the opcode when the name is generic', () => {
    assert.equal(finding('nvme nvme0: I/O tag 3 (2003) opcode 0x1 (I/O Cmd) QID 1 timeout, reset controller').ext.op, 'WRITE');
    assert.equal(finding('nvme nvme0: I/O tag 3 (2003) opcode 0x6 (Admin Cmd) QID 0 timeout, reset controller').ext.op, undefined, 'admin opcodes are not I/O ops');
    const e = finding('nvme0n1: I/O Cmd(0x1) @ LBA 8, 1 blocks, I/O Error (sct 0x2 / sc 0x80) DNR ');
    assert.equal(e.ext.op, 'WRITE');
    assert.equal(messageCodeOf(e.type, e.ext.op), 6002, 'a write error code');
    assert.equal(messageCodeOf('NVME_IO_ERROR', finding('nvme0n1: Read(0x2) @ LBA 8, 1 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) ').ext.op), 6001);
    assert.equal(finding('nvme0n1: Compare(0x5) @ LBA 8, 1 blocks, Compare Failure (sct 0x2 / sc 0x85) ').ext.op, 'COMPARE');
    assert.equal(finding('nvme0n1: Zone Append(0x7d) @ LBA 8, 1 blocks, Zone Is Full (sct 0x1 / sc 0xb9) ').ext.op, 'ZONE_APPEND');
  });

  it('writes one sentence for an I/O error, with the numbers in ext', () => {
    const f = finding('nvme0n1: Read(0x2) @ LBA 2048, 8 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR ');
    assert.equal(f.msg, 'NVMe Read error on {dev} at LBA 2048 (8 blocks): Unrecovered Read Error');
    assert.deepEqual(f.device, { printed: 'nvme0n1', name: 'nvme0n1' });
    assert.deepEqual(f.ext, { op: 'READ', op_name: 'Read', opcode: '0x2', lba: '2048', blocks: '8', status: 'Unrecovered Read Error', sct: '0x2', sc: '0x81', dnr: 'true' });
  });

  it('raises a controller that fell off the bus to error', () => {
    assert.equal(finding('nvme nvme0: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff').severity, 'error');
    assert.equal(finding('nvme nvme0: controller is down; will reset: CSTS=0x3, PCI_STATUS=0x10').severity, undefined);
  });

  it('ignores admin command errors, partition lists and probe chatter', () => {
    for (const m of ['nvme0: Identify(0x6), Invalid Field in Command (sct 0x0 / sc 0x2) DNR ', 'nvme0n1: p1 p2', 'nvme nvme0: 8/0/0 default/read/poll queues',
      'nvme nvme0: Abort status: 0x0', 'nvmet: adding nsid 1 to subsystem testnqn', 'nvme-fabrics ctl: x', 'nvme', 'nvme nvme0:', 'nvme nvme0: I/O']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('nvme')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + 'x'.repeat(100_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 20)}\n${m.slice(20)}`));
      parser.parse(rec(m + ' (sct 0x'.repeat(250)));
    }
    let seed = 5;
    const prefixes = ['nvme nvme0: ', 'nvme nvme0: I/O ', 'nvme0n1: ', 'nvme0n1: Read(0x2) @ LBA '];
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
