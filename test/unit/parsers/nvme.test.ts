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

  it('tells a timeout that aborts (or, during init/reset, disables the controller) from one that resets the controller, old and new forms', () => {
    const cases: [string, string][] = [
      ['I/O 1 QID 4 timeout, aborting', 'NVME_IO_TIMEOUT'],
      ['I/O 1 QID 4 timeout, completion polled', 'NVME_IO_TIMEOUT'],
      ['I/O 1 QID 4 timeout, reset controller', 'NVME_CONTROLLER_RESET'],
      ['I/O 1 QID 4 timeout, disable controller', 'NVME_IO_TIMEOUT'],
      ['I/O tag 1 (0001) opcode 0x2 (Read) QID 4 timeout, aborting req_op:READ(0) size:4096', 'NVME_IO_TIMEOUT'],
      ['I/O tag 1 (0001) QID 4 timeout, completion polled', 'NVME_IO_TIMEOUT'],
      ['I/O tag 1 (0001) opcode 0x2 (Read) QID 4 timeout, reset controller', 'NVME_CONTROLLER_RESET'],
      ['I/O tag 1 (0001) QID 4 timeout, disable controller', 'NVME_IO_TIMEOUT'],
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

  it('reads the 6.0-6.4 timeout that names the opcode (real lines)', () => {
    for (const [m, ctrl, tag, qid] of [
      ['nvme nvme0: I/O 0 (I/O Cmd) QID 2 timeout, aborting', 'nvme0', '0', '2'],
      ['nvme nvme0: I/O 642 (I/O Cmd) QID 1 timeout, aborting', 'nvme0', '642', '1'],
      ['nvme nvme2: I/O 154 (I/O Cmd) QID 6 timeout, aborting', 'nvme2', '154', '6'],
    ] as const) {
      const f = finding(m);
      assert.equal(f.type, 'NVME_IO_TIMEOUT', m);
      assert.deepEqual(f.device, { printed: ctrl });
      assert.deepEqual(f.ext, { tag, qid, opcode_name: 'I/O Cmd', action: 'aborting' });
    }
    assert.equal(finding('nvme nvme0: I/O 9 (Write) QID 2 timeout, aborting').ext.op, 'WRITE', 'a verbose name gives the op');
    assert.equal(finding('nvme nvme0: I/O 9 (Identify) QID 0 timeout, aborting').ext.op, undefined, 'admin queue: no I/O op');
    assert.equal(finding('nvme nvme0: I/O 9 (constructor) QID 2 timeout, aborting').ext.op, undefined);
    assert.equal(finding('nvme nvme0: I/O 0 QID 2 timeout, reset controller').type, 'NVME_CONTROLLER_RESET');
  });

  it('tells a reset or initialisation that failed (NVME_RESET_FAILED), with or without the CSTS (real lines)', () => {
    const cases: [string, string, Record<string, string>][] = [
      ['nvme nvme1: Device not ready; aborting reset', 'nvme1', { reason: 'not ready', result: 'reset aborted' }],
      ['nvme nvme0: Device not ready; aborting initialisation, CSTS=0x0', 'nvme0', { reason: 'not ready', result: 'initialisation aborted', csts: '0x0' }],
      ['nvme nvme1: Device not ready; aborting initialisation', 'nvme1', { reason: 'not ready', result: 'initialisation aborted' }],
      ['nvme nvme0: failed to mark controller CONNECTING', 'nvme0', { reason: 'state change failed', state: 'CONNECTING' }],
      ['nvme nvme0: failed to mark controller live', 'nvme0', { reason: 'state change failed', state: 'live' }],
      ['nvme nvme0: failed to mark controller state 4', 'nvme0', { reason: 'state change failed', state: 'state 4' }],
    ];
    for (const [m, ctrl, ext] of cases) {
      const f = finding(m);
      assert.equal(f.type, 'NVME_RESET_FAILED', m);
      assert.deepEqual(f.device, { printed: ctrl });
      assert.deepEqual(f.ext, ext, m);
      assert.equal(f.severity, undefined, 'the catalog floor makes it an error');
    }
    assert.equal(finding('nvme nvme0: Device not ready; aborting reset, CSTS=0x1').msg, 'NVMe controller {dev} did not become ready (CSTS=0x1); reset aborted');
    for (const m of ['nvme nvme0: Device not ready; aborting shutdown, CSTS=0x1', 'nvme nvme0: Device not ready; aborting resetx',
      'nvme nvme0: failed to mark controller', 'nvme nvme0: failed to mark controller dead', 'nvme nvme0: failed to set APST feature (-19)']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('removes a controller after a failed probe or reset (real lines)', () => {
    for (const [m, status, reason] of [
      ['nvme nvme1: Removing after probe failure status: -19', '-19', 'probe failure'],
      ['nvme nvme0: Removing after probe failure status: -16', '-16', 'probe failure'],
      ['nvme nvme0: Disabling device after reset failure: -19', '-19', 'reset failure'],
    ] as const) {
      const f = finding(m);
      assert.equal(f.type, 'NVME_DEVICE_REMOVED');
      assert.deepEqual(f.ext, { status, reason });
    }
  });

  it('reports a multipath namespace without a path: failing I/O is an error, requeuing a warning (real lines)', () => {
    const failing = finding('block nvme2n1: no available path - failing I/O');
    assert.equal(failing.type, 'NVME_NO_PATH');
    assert.deepEqual(failing.device, { printed: 'nvme2n1', name: 'nvme2n1' });
    assert.equal(failing.severity, 'error');
    assert.deepEqual(failing.ext, { action: 'failing I/O' });
    const requeuing = finding('block nvme6n1: no usable path - requeuing I/O');
    assert.equal(requeuing.type, 'NVME_NO_PATH');
    assert.deepEqual(requeuing.device, { printed: 'nvme6n1', name: 'nvme6n1' });
    assert.equal(requeuing.severity, undefined, 'warn, the catalog floor');
    assert.match(requeuing.msg, /\{dev\}.*requeued/);
    for (const m of ['block nvme0n1: the capability attribute has been deprecated.', 'block sda: no usable path - requeuing I/O',
      'block nvme0n1: no usable path', 'block nvme']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
  });

  it('keeps the real I/O command errors of the corpus', () => {
    const f = finding('nvme6c6n1: Read(0x2) @ LBA 2096384, 128 blocks, Host Aborted Command (sct 0x3 / sc 0x71)');
    assert.equal(f.type, 'NVME_IO_ERROR');
    assert.deepEqual(f.device, { printed: 'nvme6c6n1', name: 'nvme6c6n1' });
    assert.equal(f.ext.status, 'Host Aborted Command');
    const w = finding('nvme0n1: I/O Cmd(0x1) @ LBA 547434496, 512 blocks, I/O Error (sct 0x2 / sc 0x80)');
    assert.deepEqual([w.ext.op, w.ext.lba, w.ext.blocks, w.ext.sc], ['WRITE', '547434496', '512', '0x80']);
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
    const prefixes = ['nvme nvme0: ', 'nvme nvme0: I/O ', 'nvme nvme0: I/O 1 (', 'nvme nvme0: Device not ready; aborting ', 'nvme nvme0: failed to mark controller ',
      'nvme0n1: ', 'nvme0n1: Read(0x2) @ LBA ', 'block nvme0n1: '];
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
