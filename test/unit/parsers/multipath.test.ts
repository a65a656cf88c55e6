// dm-multipath parser details the fixture table does not cover: the map and
// path references, the map-less old form, dm names in the map slot, and
// robustness against truncated, binary and huge input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify } from '../../../src/kmsg/classify.ts';
import { parser } from '../../../src/parsers/multipath.ts';
import { type ClassifiedRecord, type Finding, isContext } from '../../../src/contracts/parser.ts';
import { fixtureMessages } from '../../helpers/parser-fixtures.ts';

const rec = (message: string, level = 4): ClassifiedRecord => ({ level, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem: '', device: '', system: 'multipath' });

function finding(message: string): Finding {
  const r = parser.parse(rec(message));
  assert.ok(r !== null && !isContext(r), `expected a finding for ${message}`);
  return r;
}

describe('multipath parser', () => {
  it('declares its name and systems', () => {
    assert.equal(parser.name, 'multipath');
    assert.deepEqual(parser.systems, ['multipath']);
  });

  it('names the map as the device and the failed path as related.path', () => {
    const f = finding('device-mapper: multipath: 253:0: Failing path 8:16.');
    assert.equal(f.type, 'DM_MPATH_PATH_FAILED');
    assert.deepEqual(f.device, { printed: '253:0', majmin: '253:0' });
    assert.deepEqual(f.related, { path: { printed: '8:16', majmin: '8:16' } });
    assert.match(f.msg, /\{dev\}/);
    assert.match(f.msg, /\{path\}/);
    assert.equal(f.ext.path_kernel_dev, '8:16');
  });

  it('finds the map through the path holder when the kernel omits it', () => {
    const f = finding('device-mapper: multipath: Failing path 8:16.');
    assert.deepEqual(f.device, { printed: '8:16', holderOf: '8:16' });
    assert.deepEqual(f.related?.path, { printed: '8:16', majmin: '8:16' });
    assert.equal(f.ext.map, undefined);
  });

  it('keeps a dm name in the map slot and still offers the holder lookup', () => {
    const f = finding('device-mapper: multipath: mpatha: Reinstating path 8:48.');
    assert.equal(f.type, 'DM_MPATH_PATH_REINSTATED');
    assert.deepEqual(f.device, { printed: 'mpatha', holderOf: '8:48' });
    const g = finding('device-mapper: multipath: dm-3: Failing path 8:48.');
    assert.deepEqual(g.device, { printed: 'dm-3', name: 'dm-3' });
  });

  it('reads both queue_if_no_path timeout forms', () => {
    assert.deepEqual(finding('device-mapper: multipath: queue_if_no_path timeout on 253:3, failing queued IO').device, { printed: '253:3', majmin: '253:3' });
    assert.deepEqual(finding('device-mapper: multipath: 253:4: queue_if_no_path timeout, failing queued IO').device, { printed: '253:4', majmin: '253:4' });
    assert.equal(parser.parse(rec('device-mapper: multipath: queue_if_no_path timeout, failing queued IO')), null, 'no map, no event');
  });

  it('tolerates trailing whitespace', () => {
    assert.equal(finding('device-mapper: multipath: 253:0: Failing path 8:16.  ').type, 'DM_MPATH_PATH_FAILED');
  });

  it('ignores other subsystems, path selectors and near misses', () => {
    for (const m of [
      'device-mapper: thin: 253:2: switching pool to read-only mode',
      'device-mapper: multipath round-robin: version 1.2.0 loaded',
      'device-mapper: multipath: 253:0: Failing path',
      'device-mapper: multipath: 253:0: Failing path 8:16 and more',
      'device-mapper: multipath: Failing paths 8:16.',
      'device-mapper: multipath:',
      'device-mapper: multipath',
      '',
    ]) assert.equal(parser.parse(rec(m)), null, m);
  });

  it('never throws on truncated, binary or huge input, and stays fast', () => {
    const base = fixtureMessages('multipath');
    const start = performance.now();
    for (const m of base) {
      for (let i = 0; i <= m.length; i++) parser.parse(rec(m.slice(0, i)));
      parser.parse(rec(m + 'x'.repeat(100_000)));
      parser.parse(rec(m.replace(/\d/g, '9'.repeat(40))));
      parser.parse(rec(`${m.slice(0, 40)}\u0000\uffff${m.slice(40)}`));
    }
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      let s = 'device-mapper: multipath: ';
      for (let i = 0; i < 80; i++) { seed = (seed * 1103515245 + 12345) >>> 0; s += String.fromCharCode(seed % 256); }
      parser.parse(rec(s));
    }
    parser.parse(rec(`device-mapper: multipath: ${'253:0: '.repeat(5000)}Failing path 8:16.`));
    parser.parse(rec(`device-mapper: multipath: queue_if_no_path timeout on ${'a'.repeat(50_000)}`));
    assert.ok(performance.now() - start < 5000, 'no pathological slowness');
  });

  it('gives consistent findings for every fixture line it accepts', () => {
    for (const m of fixtureMessages('multipath')) {
      const r = classify({ level: 4, facility: 0, seq: 1, tsUsec: 1, flag: '-', message: m, subsystem: '', device: '' }) === 'multipath' ? parser.parse(rec(m)) : null;
      if (r === null || isContext(r)) continue;
      for (const [k, v] of Object.entries(r.ext)) assert.equal(typeof v, 'string', `ext.${k}`);
      for (const key of r.msg.match(/\{([a-z_]+)\}/g) ?? []) {
        const name = key.slice(1, -1);
        assert.ok(name === 'dev' ? r.device !== null : r.related?.[name] !== undefined, `${key} in "${r.msg}"`);
      }
    }
  });
});
