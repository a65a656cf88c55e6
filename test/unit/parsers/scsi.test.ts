// SCSI and libata parser details the fixture table does not cover: the hold
// keys of a failed command and of its CDB line, orphan behaviour of libata
// follow-up lines, one ATA_ERROR per exception through the assembler, raised
// severities, device references, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Assembler } from '../../../src/agent/assembler.ts';
import { parser } from '../../../src/parsers/scsi.ts';
import type { Severity } from '../../../src/events/schema.ts';
import { type ClassifiedRecord, type Context, type Finding, isContext, type ParseResult } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 6): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: 'scsi', device: '', system: 'scsi' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${JSON.stringify(message)}`);
  return r;
}

function context(message: string): Context {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && isContext(r), `expected a context for ${JSON.stringify(message)}`);
  return r;
}

/** Run lines through the parser and an assembler the way the bus does; return what is emitted. */
function assemble(lines: string[]): Finding[] {
  const asm = new Assembler<null>(64);
  const out: Finding[] = [];
  const emit = (f: Finding): void => void out.push(f);
  let now = 0;
  for (const l of lines) {
    const r: ParseResult = parser.parse(rec(l));
    now++;
    if (r === null) continue;
    if (isContext(r)) {
      if (asm.attach(r, now) === 'merged') continue;
      if (r.orphan) for (const g of asm.hold({ ...r.orphan, hold: r.orphan.hold ?? r.context }, null, now)) g.out.forEach((h) => emit(h.finding));
      continue;
    }
    if (r.hold) for (const g of asm.hold(r, null, now)) g.out.forEach((h) => emit(h.finding));
    else emit(r);
  }
  asm.drain().forEach((h) => emit(h.finding));
  return out;
}

describe('scsi parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'scsi');
    assert.deepEqual(parser.systems, ['scsi']);
  });

  it('holds the failure findings of one command under the key its CDB line uses', () => {
    const forms: [string, string][] = [
      ['sd 2:0:0:0: [sdb] tag#0 ', 'scsi:2:0:0:0:tag0'],
      ['sd 10:0:3:12: [sdaa] tag#4097 ', 'scsi:10:0:3:12:tag4097'],
      ['sd 2:0:0:0: [sdb] ', 'scsi:2:0:0:0'],
      ['sd 2:0:0:0: [sdb]  ', 'scsi:2:0:0:0'],
    ];
    for (const [p, key] of forms) {
      for (const line of ['FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s', 'Sense Key : Medium Error [current] ',
        'Sense Key : Not Ready [current] ', 'Add. Sense: Unrecovered read error', 'ASC=0x11 ASCQ=0x4 ', 'Unhandled error code',
        'Read Capacity(16) failed: Result: hostbyte=0x00 driverbyte=0x08']) {
        assert.equal(finding(p + line).hold, key, p + line);
      }
      const cdb = context(`${p}CDB: Read(10) 28 00 00 00 08 00 00 00 08 00`);
      assert.equal(cdb.context, key);
      assert.equal(cdb.orphan, undefined, 'a lone CDB line is no event');
      assert.deepEqual(cdb.ext, { cdb: 'Read(10) 28 00 00 00 08 00 00 00 08 00', cdb_name: 'Read(10)', cdb_opcode: '0x28' });
    }
  });

  it('reads the CDB name and opcode of old and long forms', () => {
    assert.deepEqual(context('sd 2:0:0:0: [sdb] CDB: Read(10): 28 00 00 00 08 00 00 00 08 00').ext,
      { cdb: 'Read(10): 28 00 00 00 08 00 00 00 08 00', cdb_name: 'Read(10)', cdb_opcode: '0x28' });
    assert.equal(context('sd 0:0:0:0: [sda] tag#1 CDB: Synchronize Cache(10) 35 00 00 00 00 00 00 00 00 00').ext.cdb_name, 'Synchronize Cache(10)');
    const v = context('sd 0:0:0:0: [sda] tag#1 CDB[10]: 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 00');
    assert.equal(v.context, 'scsi:0:0:0:0:tag1');
    assert.equal(v.ext.cdb, '00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 00');
  });

  it('emits each failure finding once and puts the CDB on the one held last', () => {
    const out = assemble([
      'sd 2:0:0:0: [sdb] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s',
      'sd 2:0:0:0: [sdb] tag#0 Sense Key : Medium Error [current] ',
      'sd 2:0:0:0: [sdb] tag#0 Add. Sense: Unrecovered read error - auto reallocate failed',
      'sd 2:0:0:0: [sdb] tag#0 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00',
    ]);
    assert.deepEqual(out.map((f) => f.type), ['SCSI_CMD_FAILED', 'SCSI_MEDIUM_ERROR', 'SCSI_ADDITIONAL_SENSE_CODE']);
    assert.equal(out[2]!.ext.cdb, 'Read(10) 28 00 00 00 08 00 00 00 08 00');
    assert.equal(out[2]!.ext.cdb_opcode, '0x28');
  });

  it('merges the ≤ 3.x result line into Unhandled error code, or starts the failure when that was lost', () => {
    const out = assemble(['sd 2:0:0:0: [sdb] Unhandled error code', 'sd 2:0:0:0: [sdb]  Result: hostbyte=DID_BAD_TARGET driverbyte=DRIVER_OK',
      'sd 2:0:0:0: [sdb] CDB: Read(10): 28 00 00 00 08 00 00 00 08 00']);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.type, 'SCSI_CMD_FAILED');
    assert.equal(out[0]!.ext.hostbyte, 'DID_BAD_TARGET');
    assert.equal(out[0]!.ext.cdb_name, 'Read(10)');
    const lone = context('sd 2:0:0:0: [sdb]  Result: hostbyte=DID_BAD_TARGET driverbyte=DRIVER_OK');
    assert.equal(lone.orphan?.type, 'SCSI_CMD_FAILED');
    assert.equal(lone.orphan?.hold, lone.context);
    assert.equal(lone.orphan?.severity, 'error');
  });

  it('raises Medium Error and Hardware Error to error even at kernel level 6', () => {
    for (const [line, type] of [['Medium Error', 'SCSI_MEDIUM_ERROR'], ['Hardware Error', 'SCSI_HARDWARE_ERROR'], ['0x3', 'SCSI_MEDIUM_ERROR'], ['0x4', 'SCSI_HARDWARE_ERROR']] as const) {
      const f = finding(`sd 2:0:0:0: [sdb] tag#0 Sense Key : ${line} [current] `);
      assert.equal(f.type, type);
      assert.equal(f.severity, 'error');
    }
    const f = finding('sd 2:0:0:0: [sdb] tag#0 Sense Key : Medium Error [current] ');
    assert.equal(f.msg, 'SCSI medium error on {dev}: Medium Error [current]');
    for (const key of ['Not Ready', 'Illegal Request', 'Unit Attention', 'Recovered Error', 'Blank Check', 'Miscompare']) {
      const g = finding(`sd 2:0:0:0: [sdb] Sense Key : ${key} [deferred] `);
      assert.equal(g.type, 'SCSI_SENSE_KEY');
      assert.equal(g.ext.sense_key, key);
      assert.equal(g.ext.sense_qualifier, 'deferred');
      assert.equal(g.severity, undefined, key);
    }
  });

  it('names the disk when printed and the SCSI address otherwise', () => {
    assert.deepEqual(finding('sd 2:0:0:0: [sdb] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK').device, { printed: 'sdb', name: 'sdb', hctl: '2:0:0:0' });
    assert.deepEqual(finding('sd 2:0:0:0: rejecting I/O to offline device').device, { printed: '2:0:0:0', hctl: '2:0:0:0' });
    assert.deepEqual(finding('sr 1:0:0:0: Attached scsi CD-ROM sr0').device, { printed: 'sr0', name: 'sr0', hctl: '1:0:0:0' });
  });

  it('treats successful and retried dispositions as no event', () => {
    for (const d of ['SUCCESS', 'NEEDS_RETRY', 'ADD_TO_MLQUEUE', 'QUEUED', 'Done: SUCCESS']) {
      assert.equal(parser.parse(rec(`sd 0:0:0:0: [sda] tag#0 ${d} Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s`)), null, d);
    }
  });
});

describe('libata in the scsi parser', () => {
  const exception = [
    'ata1.00: exception Emask 0x0 SAct 0x20000 SErr 0x0 action 0x0',
    'ata1.00: irq_stat 0x40000008',
    'ata1: SError: { RecovComm }',
    'ata1.00: failed command: READ FPDMA QUEUED',
    'ata1.00: cmd 60/08:88:00:08:00/00:00:00:00:00/40 tag 17 ncq dma 4096 in\n         res 41/40:00:00:08:00/00:00:00:00:00/40 Emask 0x409 (media error) <F>',
    'ata1.00: status: { DRDY ERR }',
    'ata1.00: error: { UNC }',
    'ata1.00: configured for UDMA/133',
    'ata1: EH complete',
  ];

  it('makes one ATA_ERROR per exception, with the follow-up lines in its ext', () => {
    const out = assemble(exception);
    assert.equal(out.length, 1);
    const f = out[0]!;
    assert.equal(f.type, 'ATA_ERROR');
    assert.deepEqual(f.device, { printed: 'ata1.00' });
    assert.equal(f.ext.sact, '0x20000');
    assert.equal(f.ext.failed_command, 'READ FPDMA QUEUED');
    assert.equal(f.ext.cmd, '60/08:88:00:08:00/00:00:00:00:00/40');
    assert.equal(f.ext.cmd_tag, '17');
    assert.equal(f.ext.res, '41/40:00:00:08:00/00:00:00:00:00/40');
    assert.equal(f.ext.err_mask, '0x409');
    assert.equal(f.ext.err_desc, 'media error');
    assert.equal(f.ext.ncq_failed, 'true');
    assert.equal(f.ext.status, 'DRDY ERR');
    assert.equal(f.ext.error, 'UNC');
    assert.equal(f.ext.serror_flags, 'RecovComm');
    assert.equal(f.ext.configured, 'UDMA/133');
    assert.equal(f.ext.eh, 'complete');
  });

  it('starts one ATA_ERROR from the failed command line when the exception line was lost', () => {
    const out = assemble(exception.slice(3));
    assert.equal(out.length, 1);
    assert.equal(out[0]!.type, 'ATA_ERROR');
    assert.equal(out[0]!.ext.failed_command, 'READ FPDMA QUEUED');
    assert.equal(out[0]!.ext.error, 'UNC');
  });

  it('gives the orphan the context key as its hold key; plain context lines carry none', () => {
    for (const l of ['ata3.00: failed command: WRITE DMA EXT', 'ata3.00: error: { ABRT }', 'ata3.00: revalidation failed (errno=-5)']) {
      const c = context(l);
      assert.equal(c.context, 'ata:ata3');
      assert.equal(c.orphan?.type, 'ATA_ERROR');
      assert.equal(c.orphan?.hold, 'ata:ata3');
      assert.deepEqual(c.orphan?.device, { printed: 'ata3.00' });
    }
    for (const l of ['ata3.00: status: { DRDY }', 'ata3: SError: { PHYRdyChg }', 'ata3.00: configured for UDMA/100', 'ata3: EH complete',
      'ata3.00: cmd 61/08:00:00:08:00/00:00:00:00:00/40 tag 0 ncq dma 4096 out', 'ata3.00: res 40/00:00:00:00:00/00:00:00:00:00/00 Emask 0x4 (timeout)']) {
      const c = context(l);
      assert.equal(c.context, 'ata:ata3');
      assert.equal(c.orphan, undefined, l);
    }
    assert.equal(finding('ata3: exception Emask 0x10 SAct 0x0 SErr 0x4050000 action 0xe frozen').hold, 'ata:ata3');
  });

  it('keeps libata devices unresolvable by name', () => {
    assert.deepEqual(finding('ata7: SATA link down (SStatus 0 SControl 300)').device, { printed: 'ata7' });
    assert.deepEqual(finding('ata7.15: hard resetting link').device, { printed: 'ata7.15' });
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of [...fixtureMessages('scsi'), ...exception]) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + 'x'.repeat(100_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 20)}\n${m.slice(20)}`));
      parser.parse(rec(m + ' ['.repeat(900)));
      parser.parse(rec(m + ' 00'.repeat(600)));
    }
    let seed = 11;
    const prefixes = ['sd 2:0:0:0: [sdb] tag#0 ', 'sd 2:0:0:0: ', 'ata1.00: ', 'ata1: ', 'sd 2:0:0:0: [sdb] tag#0 CDB: ', 'sd 2:0:0:0: [sdb] Sense Key : '];
    for (let n = 0; n < 3000; n++) {
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

// Real lines of the public corpus (test/fixtures/real-world/), in the wordings of 2.6 to 6.x.
describe('scsi parser: old and split wordings', () => {
  it('reads the 2.6.1x-2.6.2x `SCSI error: return code` result word as a failed command', () => {
    for (const l of ['sd 0:0:0:0: SCSI error: return code = 0x8000002', 'sd 0:0:0:0: SCSI error: return code = 0x08000002']) {
      const f = finding(l);
      assert.equal(f.type, 'SCSI_CMD_FAILED');
      assert.deepEqual(f.device, { printed: '0:0:0:0', hctl: '0:0:0:0' });
      assert.equal(f.severity, 'error');
      assert.equal(f.hold, 'scsi:0:0:0:0');
      assert.deepEqual(f.ext, { hctl: '0:0:0:0', result: '0x08000002', driverbyte: '0x08', hostbyte: '0x00', msgbyte: '0x00', status: '0x02' });
      assert.equal(f.msg, 'SCSI command failed on {dev}: return code 0x08000002');
    }
    assert.equal(parser.parse(rec('sd 0:0:0:0: SCSI error: return code = 0xzz')), null);
  });

  it('makes `sdX: Current: sense key: …` a sense event of that disk', () => {
    const cases: [string, string, string, Severity | undefined][] = [
      ['sda: Current: sense key: Medium Error', 'SCSI_MEDIUM_ERROR', 'sda', 'error'],
      ['sdb: Current: sense key: Medium Error', 'SCSI_MEDIUM_ERROR', 'sdb', 'error'],
      ['sda: Current: sense key: Hardware Error', 'SCSI_HARDWARE_ERROR', 'sda', 'error'],
      ['sdc: Current: sense key: Aborted Command', 'SCSI_SENSE_KEY', 'sdc', 'warn'],
      ['sda: Current: sense key=0xb', 'SCSI_SENSE_KEY', 'sda', 'warn'],
    ];
    for (const [l, type, dev, severity] of cases) {
      const f = finding(l);
      assert.equal(f.type, type, l);
      assert.deepEqual(f.device, { printed: dev, name: dev });
      assert.equal(f.severity, severity, l);
      assert.equal(f.ext.sense_qualifier, 'current');
      assert.equal(f.hold, undefined, 'nothing later can name its command');
      assert.ok(f.msg.includes('on {dev}'), f.msg);
    }
    assert.equal(finding('sda: Current: sense key=0xb').ext.sense_key, 'Aborted Command');
    const d = finding('sdb: <<DEFERRED>> [descriptor]: sense key: Medium Error');
    assert.equal(d.ext.sense_qualifier, 'deferred');
    assert.equal(d.ext.sense_format, 'descriptor');
    assert.equal(finding('sd: Current: sense key: Not Ready').device, null, 'the driver class is no device');
    assert.equal(parser.parse(rec('sda: Current: temperature 40')), null);
  });

  it('makes a sense line printed without its device prefix its own event without a device', () => {
    const cases: [string, string, Record<string, string>][] = [
      ['    Additional sense: Unrecovered read error - auto reallocate failed', 'SCSI_ADDITIONAL_SENSE_CODE', { asc_text: 'Unrecovered read error - auto reallocate failed' }],
      ['    ASC=0x42 ASCQ=0x0', 'SCSI_ADDITIONAL_SENSE_CODE', { asc: '0x42', ascq: '0x0' }],
      ['ASC=0x21 ASCQ=0x0', 'SCSI_ADDITIONAL_SENSE_CODE', { asc: '0x21', ascq: '0x0' }],
      ['Add. Sense: Unrecovered read error', 'SCSI_ADDITIONAL_SENSE_CODE', { asc_text: 'Unrecovered read error' }],
      ['Sense Key : Medium Error [current]', 'SCSI_MEDIUM_ERROR', { sense_key: 'Medium Error', sense_qualifier: 'current' }],
      ['Sense Key : 0x5 [current]', 'SCSI_SENSE_KEY', { sense_key: 'Illegal Request', sense_key_code: '0x5' }],
      ['<<vendor>> ASC=0x80 ASCQ=0x1ASC=0x80 ASCQ=0x1', 'SCSI_ADDITIONAL_SENSE_CODE', { asc: '0x80', ascq: '0x1', vendor: 'true' }],
    ];
    for (const [l, type, ext] of cases) {
      const f = finding(l);
      assert.equal(f.type, type, l);
      assert.equal(f.device, null);
      assert.equal(f.hold, undefined);
      assert.ok(!f.msg.includes('{dev}'), f.msg);
      for (const [k, v] of Object.entries(ext)) assert.equal(f.ext[k], v, `${l}: ${k}`);
    }
    assert.equal(finding('    Additional sense: Unrecovered read error - auto reallocate failed').severity, 'error');
    for (const l of ['    Additional sense: No additional sense information', 'Info fld=0x0', 'Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE',
      'sd 0:0:2:0: [sdc]', 'Read(10): 28 00 10 56 51 80 00 04 00 00', 'cdb[0]=0x28: 28 00 03 b7 23 80 00 00 08 00', 'Sense Key : ']) {
      assert.equal(parser.parse(rec(l)), null, l);
    }
  });

  it('keeps ASC 0/0 as detail of the held failure when the device prefix is there', () => {
    const out = assemble(['sd 2:0:0:0: [sdb] tag#0 Sense Key : Aborted Command [current] ', 'sd 2:0:0:0: [sdb] tag#0 Add. Sense: No additional sense information']);
    assert.deepEqual(out.map((f) => f.type), ['SCSI_SENSE_KEY']);
    assert.equal(out[0]!.ext.asc_text, 'No additional sense information');
  });

  it('fails Unhandled sense code / Unhandled error code at error severity', () => {
    for (const l of ['sd 0:0:2:0: [sdc] Unhandled sense code', 'scsi 0:0:0:0: [sda] Unhandled error code']) {
      const f = finding(l);
      assert.equal(f.type, 'SCSI_CMD_FAILED');
      assert.equal(f.severity, 'error');
    }
  });

  it('reads the 2.6.1x `Attached scsi disk sda` wording', () => {
    const f = finding('sd 0:0:0:0: Attached scsi disk sda');
    assert.equal(f.type, 'SCSI_DISK_ATTACHED');
    assert.deepEqual(f.device, { printed: 'sda', name: 'sda', hctl: '0:0:0:0' });
    assert.equal(finding('sd 2:0:0:0: Attached scsi removable disk sdb').ext.removable, 'true');
    assert.equal(parser.parse(rec('sd 7:0:0:0: Attached scsi generic sg1 type 0')), null);
    assert.equal(parser.parse(rec('sd 0:0:0:0: Attached scsi disk ../../x')), null);
  });

  it('reads the 2.5-2.6.1x `Attached scsi … disk sda at scsi1, channel 0, id 6, lun 0` wording, its address in words', () => {
    const f = finding('Attached scsi removable disk sda at scsi1, channel 0, id 6, lun 0');
    assert.equal(f.type, 'SCSI_DISK_ATTACHED');
    assert.deepEqual(f.device, { printed: 'sda', name: 'sda', hctl: '1:0:6:0' });
    assert.deepEqual(f.ext, { hctl: '1:0:6:0', removable: 'true' });
    assert.equal(f.severity, undefined);
    assert.deepEqual(finding('Attached scsi disk sdb at scsi0, channel 0, id 1, lun 0').ext, { hctl: '0:0:1:0' });
    assert.deepEqual(finding('Attached scsi CD-ROM sr0 at scsi0, channel 0, id 0, lun 0').ext, { hctl: '0:0:0:0', removable: 'true', kind: 'cdrom' });
    for (const m of ['Attached scsi generic sg0 at scsi0, channel 0, id 0, lun 0,  type 0', 'Attached scsi tape st0 at scsi0, channel 0, id 6, lun 0',
      'Attached scsi disk sda at scsi1, channel 0, id 6']) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('reads a failed READ CAPACITY: 2.5-2.6.1x `sda : READ CAPACITY failed.`, 2.6.19-3.x `[sda] READ CAPACITY failed` with its result line', () => {
    const f = finding('sda : READ CAPACITY failed.');
    assert.deepEqual([f.type, f.device, f.ext, f.severity, f.hold], ['SCSI_CMD_FAILED', { printed: 'sda', name: 'sda' }, { command: 'READ CAPACITY' }, undefined, undefined]);
    assert.equal(f.msg, 'SCSI READ CAPACITY failed on {dev}');
    assert.equal(finding('sdb : READ CAPACITY(16) failed.').ext.command, 'READ CAPACITY(16)');
    for (const m of ['sda : status=0, message=00, host=1, driver=00 ', 'sda : sense not available. ', 'sda : READ CAPACITY failed, retrying', '../x : READ CAPACITY failed.']) {
      assert.equal(parser.parse(rec(m)), null, m);
    }
    const n = finding('sd 2:0:0:0: [sdb] READ CAPACITY failed');
    assert.deepEqual([n.type, n.device, n.ext.command, n.hold], ['SCSI_CMD_FAILED', { printed: 'sdb', name: 'sdb', hctl: '2:0:0:0' }, 'READ CAPACITY', 'scsi:2:0:0:0']);
    const out = assemble(['sd 2:0:0:0: [sdb] READ CAPACITY(16) failed', 'sd 2:0:0:0: [sdb]  Result: hostbyte=DID_NO_CONNECT driverbyte=DRIVER_OK']);
    assert.equal(out.length, 1);
    assert.deepEqual([out[0]!.type, out[0]!.ext.command, out[0]!.ext.hostbyte], ['SCSI_CMD_FAILED', 'READ CAPACITY(16)', 'DID_NO_CONNECT']);
  });
});

describe('libata in the scsi parser: resets, disabled devices, pre-new-EH errors', () => {
  it('escalating to a hardreset after `device not ready` is a link reset', () => {
    const f = finding('ata1: device not ready (errno=-16), forcing hardreset');
    assert.equal(f.type, 'ATA_LINK_RESET');
    assert.deepEqual(f.device, { printed: 'ata1' });
    assert.deepEqual(f.ext, { ata_port: 'ata1', reset: 'hard', reason: 'device not ready', errno: '-16' });
    assert.equal(finding('ata1: soft resetting link').type, 'ATA_LINK_RESET');
  });

  it('every failed reset is ATA_RESET_FAILED', () => {
    const cases: [string, string, Record<string, string>][] = [
      ['ata1: SRST failed (errno=-16)', 'ata1', { reset: 'soft', result: 'SRST failed', errno: '-16' }],
      ['ata3: SRST failed (errno=-16)', 'ata3', { reset: 'soft', errno: '-16' }],
      ['ata1: reset failed, giving up', 'ata1', { result: 'giving up' }],
      ['ata1: reset failed (errno=-5), retrying in 8 secs', 'ata1', { result: 'retrying', errno: '-5' }],
      ['ata1: COMRESET failed (errno=-16)', 'ata1', { reset: 'hard', errno: '-16' }],
      ['ata1: softreset failed (1st FIS failed)', 'ata1', { reset: 'soft', result: '1st FIS failed' }],
      ['ata2: hardreset failed (device not ready)', 'ata2', { reset: 'hard' }],
    ];
    for (const [l, dev, ext] of cases) {
      const f = finding(l);
      assert.equal(f.type, 'ATA_RESET_FAILED', l);
      assert.deepEqual(f.device, { printed: dev });
      for (const [k, v] of Object.entries(ext)) assert.equal(f.ext[k], v, `${l}: ${k}`);
    }
  });

  it('a disabled device is ATA_DEVICE_DISABLED (≤ 6.1 `disabled`, 6.2+ `disable device`)', () => {
    for (const l of ['ata1.00: disabled', 'ata3.00: disable device']) {
      const f = finding(l);
      assert.equal(f.type, 'ATA_DEVICE_DISABLED');
      assert.equal(f.device!.printed, l.slice(0, 7));
    }
  });

  it('reads the pre-new-EH (≤ 2.6.17) command timeout and untranslatable status as ATA errors, their status lines as context', () => {
    const t = finding('ata1: command 0x35 timeout, stat 0x51 host_stat 0x60');
    assert.equal(t.type, 'ATA_ERROR');
    assert.deepEqual(t.device, { printed: 'ata1' });
    assert.equal(t.hold, 'ata:ata1');
    assert.deepEqual(t.ext, { ata_port: 'ata1', ata_command: '0x35', timeout: 'true', status: '0x51', host_status: '0x60' });
    const n = finding('ata2: no sense translation for op=0x2a cmd=0x3d status: 0x51');
    assert.equal(n.type, 'ATA_ERROR');
    assert.deepEqual(n.device, { printed: 'ata2' });
    assert.deepEqual(n.ext, { ata_port: 'ata2', status: '0x51', cdb_opcode: '0x2a', ata_command: '0x3d' });
    const out = assemble(['ata2: no sense translation for op=0x2a cmd=0x3d status: 0x51', 'ata2: status=0x51 { DriveReady SeekComplete Error }',
      'ata2: error=0x04 { DriveStatusError }', 'ata2: translated ATA stat/err 0x51/04 to SCSI SK/ASC/ASCQ 0xb/00/00']);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.ext.error, '0x04 { DriveStatusError }');
    assert.equal(out[0]!.ext.status, '0x51; 0x51 { DriveReady SeekComplete Error }');
    assert.equal(out[0]!.ext.translated, '0x51/04 to SCSI SK/ASC/ASCQ 0xb/00/00');
    for (const l of ['ata1: status=0x51 { DriveReady SeekComplete Error }', 'ata1: error=0x04 { DriveStatusError }', 'ata1.00: limiting speed to UDMA/66:PIO4']) {
      assert.equal(context(l).orphan, undefined, l);
    }
  });

  it('stays silent on progress and probe lines', () => {
    for (const l of ['ata1: link is slow to respond, please be patient (ready=0)', 'ata3: port is slow to respond, please be patient (Status 0x90)',
      'ata1: PATA max UDMA/100 irq 39', 'ata1.00: device reported invalid CHS sector 0', 'ata1: dev 0 configured for UDMA/100',
      'ata1: command done', 'ata1: no sense translation for something']) {
      assert.equal(parser.parse(rec(l)), null, l);
    }
  });
});

describe('scsi parser: 2.6.9-3.x failure descriptions and addresses in words', () => {
  it('reads the 3.x reasons scsi_io_completion() gives for failing a command', () => {
    for (const d of ['Device not ready', 'Media Changed', 'Host Data Integrity Failure', 'Target Data Integrity Failure', 'Discard failure']) {
      const f = finding(`sd 2:0:0:0: [sdb] ${d}`);
      assert.equal(f.type, 'SCSI_CMD_FAILED', d);
      assert.equal(f.ext.detail, d);
      assert.equal(f.severity, d === 'Media Changed' ? 'warn' : 'error');
      assert.equal(f.hold, 'scsi:2:0:0:0');
    }
    assert.equal(parser.parse(rec('sd 2:0:0:0: [sdb] Volume overflow, CDB: ')), null);
    assert.equal(parser.parse(rec('sd 2:0:0:0: [sdb] Device not ready yet')), null);
  });

  it('reads the 2.6.1x `Device not ready:` line with its sense header inline', () => {
    for (const l of ['sd 0:0:0:0: Device not ready: <6>: Current: sense key: Not Ready', 'sd 0:0:0:0: Device not ready: : Current: sense key=0x2']) {
      const f = finding(l);
      assert.equal(f.type, 'SCSI_SENSE_KEY', l);
      assert.equal(f.ext.sense_key, 'Not Ready');
      assert.equal(f.ext.detail, 'Device not ready');
      assert.deepEqual(f.device, { printed: '0:0:0:0', hctl: '0:0:0:0' });
    }
    assert.equal(parser.parse(rec('sd 0:0:0:0: Device not ready: <6>: something else')), null);
  });

  it('takes the SCSI address from the words of 2.6.9-2.6.18 lines', () => {
    const r = finding('SCSI error : <0 1 2 3> return code = 0x8000002');
    assert.equal(r.type, 'SCSI_CMD_FAILED');
    assert.deepEqual(r.device, { printed: '0:1:2:3', hctl: '0:1:2:3' });
    assert.equal(r.ext.driverbyte, '0x08');
    const o = finding('scsi: Device offlined - not ready after error recovery: host 2 channel 0 id 1 lun 0');
    assert.equal(o.type, 'SCSI_DEVICE_OFFLINE');
    assert.deepEqual(o.device, { printed: '2:0:1:0', hctl: '2:0:1:0' });
    const p = finding('sd 0:0:0:0: scsi: Device offlined - not ready after error recovery');
    assert.equal(p.type, 'SCSI_DEVICE_OFFLINE');
    assert.deepEqual(p.device, { printed: '0:0:0:0', hctl: '0:0:0:0' });
    for (const l of ['SCSI error : <0 0 0> return code = 0x1', 'scsi: Device offlined', 'SCSI error : <a b c d> return code = 0x1']) assert.equal(parser.parse(rec(l)), null, l);
  });

  it('reads the 2.6.19-2.6.21 `resetting port` wording as a link reset', () => {
    assert.deepEqual(finding('ata1: hard resetting port').ext, { ata_port: 'ata1', reset: 'hard' });
    assert.deepEqual(finding('ata1: soft resetting port').ext, { ata_port: 'ata1', reset: 'soft' });
  });
});

describe('scsi parser: severity of sd_print_result() failures', () => {
  it('raises a failed sd command to error when the host byte says the transport or target failed', () => {
    for (const l of ['sd 4:0:0:0: [sdb] Synchronize Cache(10) failed: Result: hostbyte=0x07 driverbyte=0x00',
      'sd 0:0:0:0: [sdb] Start/Stop Unit failed: Result: hostbyte=0x04 driverbyte=0x00',
      'sd 0:0:0:0: [sda] Synchronize Cache(10) failed: Result: hostbyte=DID_BAD_TARGET driverbyte=DRIVER_OK']) {
      assert.equal(finding(l).severity, 'error', l);
    }
    assert.equal(finding('sd 2:0:0:0: [sdb] Read Capacity(16) failed: Result: hostbyte=0x00 driverbyte=0x08').severity, undefined);
  });
});
