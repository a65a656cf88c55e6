// "A device whose kind does not match what the message says is not taken"
// (issue 12 §3): a device-mapper message's `253:N` is resolved only to a
// device-mapper device. Here the fake sysfs (test/helpers/fake-sysfs.ts) gets
// a zram0 at 253:7, as a host whose zram module took major 253 has.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OfflineParser } from '../../../src/agent/offline.ts';
import type { ResolverRoots } from '../../../src/contracts/device.ts';
import { SysfsResolver } from '../../../src/device/resolver.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { makeFakeSysfs } from '../../helpers/fake-sysfs.ts';

/** zram0 (253:7): a block device without dm/, as the zram driver makes it. */
function addZram(roots: ResolverRoots): void {
  const dir = path.join(roots.sysfs, 'devices/virtual/block/zram0');
  mkdirSync(path.join(dir, 'holders'), { recursive: true });
  mkdirSync(path.join(dir, 'slaves'), { recursive: true });
  writeFileSync(path.join(dir, 'dev'), '253:7\n');
  writeFileSync(path.join(dir, 'size'), '8388608\n');
  writeFileSync(path.join(dir, 'uevent'), 'MAJOR=253\nMINOR=7\nDEVNAME=zram0\nDEVTYPE=disk\n');
  for (const link of ['class/block/zram0', 'block/zram0', 'dev/block/253:7']) {
    const at = path.join(roots.sysfs, link);
    symlinkSync(path.relative(path.dirname(at), dir), at);
  }
  writeFileSync(path.join(roots.dev, 'zram0'), '');
}

function parse(roots: ResolverRoots, lines: string[]): StorageEvent[] {
  const events: StorageEvent[] = [];
  const p = new OfflineParser({ hostname: 'h', bootId: 'b', bootEpochUs: 0, resolver: new SysfsResolver(roots), source: 'test' }, (e) => events.push(e), () => {});
  for (const l of lines) p.line(l);
  p.end();
  return events;
}

describe('a device-mapper ref takes only a device-mapper device', () => {
  let dir = '';
  let roots: ResolverRoots;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-dmkind-'));
    roots = makeFakeSysfs(dir);
    addZram(roots);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the resolver: a dm ref refuses zram0 at 253:7, takes dm-0 at 253:0 and the map above a path', () => {
    const r = new SysfsResolver(roots);
    assert.equal(r.resolve({ printed: '253:7', majmin: '253:7' })?.name, 'zram0', 'without a kind, 253:7 is zram0');
    assert.equal(r.resolve({ printed: '253:7', majmin: '253:7', kind: 'dm' }), null);
    assert.equal(r.resolve({ printed: '253:0', majmin: '253:0', kind: 'dm' })?.name, 'dm-0');
    assert.equal(r.resolve({ printed: '8:16', holderOf: '8:16', kind: 'dm' })?.name, 'dm-0');
    assert.equal(r.resolve({ printed: 'sdb', name: 'sdb', kind: 'dm' }), null);
    // refused from the cache too (the first lookup above cached zram0)
    assert.equal(r.resolve({ printed: '253:7', majmin: '253:7', kind: 'dm' }), null);
  });

  it('prpt parse --resolve: a multipath map printed as 253:7 stays 253:7; its path still resolves', () => {
    const [ev, ...rest] = parse(roots, ['[  100.000000] device-mapper: multipath: 253:7: Failing path 8:16.']);
    assert.equal(rest.length, 0);
    assert.equal(ev?.event_type, 'DM_MPATH_PATH_FAILED');
    assert.equal(ev.dev_name, '253:7');
    assert.equal(ev.extentions.kernel_dev, '253:7');
    assert.equal(ev.extentions.dm_name, undefined);
    assert.equal(ev.extentions.path, 'sdb');
  });

  it('prpt parse --resolve: the same line naming 253:0 (a dm device here) resolves to it', () => {
    const [ev] = parse(roots, ['[  100.000000] device-mapper: multipath: 253:0: Failing path 8:16.']);
    assert.equal(ev?.dev_name, 'dm-0');
    assert.equal(ev.extentions.dm_name, 'mpatha');
  });

  it('a thin pool message is a dm device too; a block message of 253:7 takes zram0', () => {
    const [thin] = parse(roots, ['[  100.000000] device-mapper: thin: 253:7: reached low water mark for data device: sending event.']);
    assert.equal(thin?.event_type, 'LVM_THIN_LOW_WATER_MARK');
    assert.equal(thin.dev_name, '253:7');
    const [thin0] = parse(roots, ['[  100.000000] device-mapper: thin: 253:1: reached low water mark for data device: sending event.']);
    assert.equal(thin0?.dev_name, 'dm-1');
  });
});
