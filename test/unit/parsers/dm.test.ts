// device-mapper (mirror, dirty log, table) parser details the fixture table
// does not cover: which device each line names, the errno split of table
// errors, and robustness against bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '../../../src/parsers/dm.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 3): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'dm' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('dm parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'dm');
    assert.deepEqual(parser.systems, ['dm']);
  });

  it('names the log device of a dirty region log failure', () => {
    const r = finding('device-mapper: dirty region log: 253:3: Failed to read header on dirty region log device');
    assert.equal(r.type, 'DM_DIRTY_LOG_READ_FAILED');
    assert.deepEqual(r.device, { printed: '253:3', majmin: '253:3' });
    assert.equal(r.ext.op, 'READ');
    const w = finding('device-mapper: dirty region log: 253:3: Failed to write header on dirty region log device');
    assert.equal(w.type, 'DM_DIRTY_LOG_WRITE_FAILED');
    assert.equal(w.ext.op, 'WRITE');
  });

  it('names the failed mirror leg when the kernel does, and no device otherwise', () => {
    assert.deepEqual(finding('device-mapper: raid1: Mirror read failed from 253:4. Trying alternative device.').device, { printed: '253:4', majmin: '253:4' });
    assert.equal(finding('device-mapper: raid1: Mirror read failed.').device, null);
    const p = finding('device-mapper: raid1: Primary mirror (253:4) failed while out-of-sync: Reads may fail.');
    assert.equal(p.type, 'DM_MIRROR_DEVICE_FAILED');
    assert.equal(p.ext.leg, '253:4');
    for (const m of ['device-mapper: raid1: All sides of mirror have failed.', 'device-mapper: raid1: All replicated volumes dead, failing I/O']) {
      const f = finding(m);
      assert.equal(f.device, null);
      assert.doesNotMatch(f.msg, /\{dev\}/);
    }
  });

  it('splits the target, the error and the errno of a table error', () => {
    const t = finding('device-mapper: table: 253:5: linear: Device lookup failed (-ENXIO)');
    assert.equal(t.type, 'DM_TABLE_ERROR');
    assert.deepEqual(t.device, { printed: '253:5', majmin: '253:5' });
    assert.deepEqual(t.ext, { target: 'linear', error: 'Device lookup failed', errno: '-ENXIO' });
    assert.equal(finding('device-mapper: table: 253:5: linear: Device lookup failed').ext.errno, undefined);
    assert.equal(finding('device-mapper: table: 253:0: multipath: error getting device (-6)').ext.errno, '-6');
    assert.equal(finding('device-mapper: table: 253:0: sdb too small for target: start=0, len=8, dev_size=4').ext.component, 'sdb');
  });

  it('gives no event for follow-up and informational lines', () => {
    for (const m of [
      'device-mapper: raid1: log resume failed',
      'device-mapper: table: 253:0: adding target device sdb caused an alignment inconsistency: physical_block_size=4096',
      'device-mapper: uevent: version 1.0.3',
      'device-mapper: ioctl: 4.48.0-ioctl (2023-03-01) initialised: dm-devel@lists.linux.dev',
      'device-mapper: verity: 253:0: reached maximum errors',
      'device-mapper: integrity: Error on reading tags: -5',
      'device-mapper: crypt: xts(aes) using implementation "xts-aes-aesni"',
      'trusted key: device-mapper: crypt: dm-0: INTEGRITY AEAD ERROR, sector 0',
      'device-mapper: table: ',
      'device-mapper: ',
      'device-mapper:',
      'device-mapper: a prefix that is far too long to be a target name at all: x',
    ]) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('holds a table load failure for the ioctl line, which alone is an event without a device', () => {
    const t = finding('device-mapper: table: 254:12: linear: Device lookup failed');
    assert.equal(t.type, 'DM_TABLE_ERROR');
    assert.equal(t.hold, 'dm-table');
    for (const m of ['device-mapper: ioctl: error adding target to table', 'device-mapper: error adding target to table']) {
      const c = parser.parse(rec(m));
      assert.ok(c !== null && isContext(c), m);
      assert.equal(c.context, 'dm-table');
      assert.equal(c.orphan?.type, 'DM_TABLE_ERROR');
      assert.equal(c.orphan?.device, null);
      assert.doesNotMatch(c.orphan?.msg ?? '', /\{dev\}/);
    }
  });

  it('reports dm-verity corruption on the data device it names (3.17+) or on none (3.x)', () => {
    const d = finding('device-mapper: verity: 202:3: data block 0 is corrupted');
    assert.equal(d.type, 'DM_VERITY_CORRUPTION');
    assert.deepEqual(d.device, { printed: '202:3', majmin: '202:3' });
    assert.deepEqual(d.ext, { block_type: 'data', block: '0', data_dev: '202:3' });
    const m = finding('device-mapper: verity: 253:3: metadata block 260095 is corrupted');
    assert.equal(m.ext.block_type, 'metadata');
    assert.equal(m.ext.block, '260095');
    const old = finding('device-mapper: verity: data block 12 is corrupted');
    assert.equal(old.device, null);
    assert.doesNotMatch(old.msg, /\{dev\}/);
  });

  it('reports dm-crypt AEAD and dm-integrity checksum failures as DM_INTEGRITY_ERROR', () => {
    const a = finding('device-mapper: crypt: dm-0: INTEGRITY AEAD ERROR, sector 262144');
    assert.equal(a.type, 'DM_INTEGRITY_ERROR');
    assert.deepEqual(a.device, { printed: 'dm-0', name: 'dm-0' });
    assert.deepEqual(a.ext, { target: 'crypt', sector: '262144' });
    // a leaked pr_fmt prefix of another module, as 6.x kernels print it
    const t = finding('trusted_key: device-mapper: crypt: dm-1: INTEGRITY AEAD ERROR, sector 32');
    assert.deepEqual(t.device, { printed: 'dm-1', name: 'dm-1' });
    assert.equal(t.ext.sector, '32');
    assert.equal(finding('device-mapper: crypt: INTEGRITY AEAD ERROR, sector 8').device, null);
    const i = finding('device-mapper: integrity: dm-4: Checksum failed at sector 0x1e8480');
    assert.deepEqual(i.device, { printed: 'dm-4', name: 'dm-4' });
    assert.deepEqual(i.ext, { target: 'integrity', sector: '0x1e8480' });
    assert.equal(finding('device-mapper: integrity: Checksum failed at sector 0xe228').device, null);
    const j = finding('device-mapper: integrity: Error on journal mac: -84');
    assert.deepEqual(j.ext, { target: 'integrity', what: 'journal mac', error: '-84' });
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const start = performance.now();
    for (const m of fixtureMessages('dm')) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + ' (-EIO)'.repeat(10_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
    }
    let seed = 5;
    const prefixes = ['device-mapper: table: 253:0: ', 'device-mapper: raid1: ', 'device-mapper: dirty region log: ', 'device-mapper: raid: ', 'device-mapper: verity: ', 'trusted_key: device-mapper: crypt: ', 'device-mapper: integrity: dm-0: ', 'device-mapper: ioctl: '];
    for (let n = 0; n < 2000; n++) {
      let s = prefixes[n % prefixes.length]!;
      for (let i = 0; i < 80; i++) { seed = (seed * 1103515245 + 12345) >>> 0; s += String.fromCharCode(seed % 256); }
      parser.parse(rec(s));
    }
    parser.parse(rec(`device-mapper: table: 253:0: linear: ${' ('.repeat(30_000)}`));
    assert.ok(performance.now() - start < 5000);
  });

  it('gives consistent findings for every fixture line it accepts', () => {
    for (const m of fixtureMessages('dm')) {
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
