// SysfsResolver against the REAL machine: attach a loop device to a temp file
// and resolve it by name and by major:minor under /sys, /dev and
// /proc/1/mountinfo. Needs root (losetup); skipped loudly otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { SysfsResolver } from '../../src/device/resolver.ts';
import { DEFAULT_ROOTS } from '../../src/contracts/device.ts';

/** major:minor of a device node, decoded from st_rdev (glibc's gnu_dev_major/minor). */
function majMinOf(node: string): string {
  const rdev = statSync(node).rdev;
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0);
  const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00);
  return `${major}:${minor}`;
}

it('resolves a real loop device by name and by major:minor', (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    console.error(`*** SKIPPED (needs root): ${t.name}: losetup needs root ***`);
    t.skip('NOT ROOT: needs losetup');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-devreal-'));
  const file = path.join(dir, 'backing file.img');
  writeFileSync(file, Buffer.alloc(4 * 1024 * 1024));
  let loopDev = '';
  try {
    loopDev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
    assert.match(loopDev, /^\/dev\/loop\d+$/);
    const name = path.basename(loopDev);
    const majmin = majMinOf(loopDev);
    assert.match(majmin, /^7:\d+$/);
    // the kernel prints the backing file with symlinks resolved (tmpdir may be one)
    const wwid = `loop:${realpathSync(file)}`;

    const r = new SysfsResolver(DEFAULT_ROOTS);
    assert.deepEqual(r.resolve({ printed: name, name }), { name, wwid, majmin });
    assert.deepEqual(r.resolve({ printed: majmin, majmin }), { name, wwid, majmin });
    const info = r.describe(loopDev);
    assert.equal(info?.identity.wwid, wwid);
    assert.deepEqual(info?.below, []);
    assert.deepEqual(r.filesystem(name), {}, 'not mounted');
  } finally {
    if (loopDev !== '') execFileSync('losetup', ['-d', loopDev]);
    rmSync(dir, { recursive: true, force: true });
  }
});
