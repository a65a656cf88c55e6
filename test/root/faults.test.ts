// The fault fixtures themselves (test/helpers/faults.ts): each one makes the
// real kernel log its line, and cleanup leaves no loop device or mount.
// Kernel lines are read from /dev/kmsg by sequence number, so lines logged
// before the fault (or by other tests on other loop devices) do not count.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { corruptExt4, eioLoop, isMounted, loopBackingFile, requireRoot, run } from '../helpers/faults.ts';
import { readKmsgRing } from '../helpers/kmsg.ts';

interface KmsgRecord {
  seq: number;
  text: string;
}

/** Every record now in the kernel ring, as sequence number and message. */
function readKmsg(): KmsgRecord[] {
  // "<pri>,<seq>,<usec>,<flags>[,…];<text>\n[ continuation lines]"
  return readKmsgRing().map((rec) => {
    const semi = rec.indexOf(';');
    return { seq: Number(rec.slice(0, semi).split(',')[1]), text: rec.slice(semi + 1).split('\n')[0] ?? '' };
  });
}

function lastSeq(): number {
  return readKmsg().at(-1)?.seq ?? -1;
}

/** Wait up to `ms` for a record after `since` matching `re`. */
async function waitKmsg(since: number, re: RegExp, ms: number): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = readKmsg().find((r) => r.seq > since && re.test(r.text));
    if (hit) return hit.text;
    if (Date.now() > deadline) return undefined;
    await sleep(50);
  }
}

/** Assert no `losetup -a` line still binds `loopDev` to `file` (the number may be reused by others). */
async function assertDetached(loopDev: string, file: string): Promise<void> {
  const { stdout } = await run('losetup', ['-a']);
  const ours = stdout.split('\n').filter((l) => l.startsWith(`/dev/${loopDev}:`) && l.includes(file));
  assert.deepEqual(ours, [], `losetup -a still lists /dev/${loopDev} on ${file}`);
  assert.notEqual(loopBackingFile(loopDev), file, `sysfs still shows /dev/${loopDev} on ${file}`);
}

describe('real kernel fault fixtures', () => {
  it('eioLoop: a direct read of the bad range logs a block-layer I/O error on its loop device', async (t) => {
    if (!requireRoot(t)) return;
    const loop = await eioLoop();
    let cleaned = false;
    try {
      assert.match(loop.loopDev, /^loop\d+$/);
      assert.equal(loopBackingFile(loop.loopDev), loop.backingFile);
      assert.ok(isMounted(loop.mountPoint), 'FUSE mount is there');

      const re = new RegExp(`I/O error, dev ${loop.loopDev}, sector ${loop.badSector} op 0x0:\\(READ\\)`);
      let line: string | undefined;
      // printk_ratelimited is shared machine-wide (~10 lines per 5 s): when
      // other tests used the budget, try once more after the interval
      for (let attempt = 0; attempt < 2 && !line; attempt++) {
        if (attempt > 0) {
          t.diagnostic('no kernel line yet (rate limit?): reading again after 5.5 s');
          await sleep(5500);
        }
        const since = lastSeq();
        await loop.readBadRange();
        line = await waitKmsg(since, re, 3000);
      }
      assert.ok(line, `kernel logged ${re}`);
      t.diagnostic(`kernel said: ${line}`);

      const { loopDev, backingFile, mountPoint } = loop;
      await loop.cleanup();
      cleaned = true;
      await assertDetached(loopDev, backingFile);
      assert.ok(!isMounted(mountPoint), `${mountPoint} is unmounted`);
      const fuse = (await run('mount', [])).stdout.split('\n').filter((l) => l.includes(mountPoint));
      assert.deepEqual(fuse, [], 'mount no longer lists the FUSE mount');
      const procs = await run('pgrep', ['-f', `eiofs.py ${mountPoint}`]).then((r) => r.stdout.trim(), () => '');
      assert.equal(procs, '', 'eiofs has exited');
      await loop.cleanup(); // idempotent
    } finally {
      if (!cleaned) await loop.cleanup();
    }
  });

  it('corruptExt4: ls of the cleared directory logs an EXT4-fs error on its loop device', async (t) => {
    if (!requireRoot(t)) return;
    const fs = await corruptExt4();
    let cleaned = false;
    try {
      assert.match(fs.loopDev, /^loop\d+$/);
      assert.ok(isMounted(fs.mountPoint), 'ext4 is mounted');

      const since = lastSeq();
      await fs.triggerError();
      const re = new RegExp(`EXT4-fs error \\(device ${fs.loopDev}\\): ext4_lookup:\\d+: inode #2: comm ls: deleted inode referenced: \\d+`);
      const line = await waitKmsg(since, re, 3000);
      assert.ok(line, `kernel logged ${re}`);
      t.diagnostic(`kernel said: ${line}`);

      const { loopDev, imageFile, mountPoint } = fs;
      await fs.cleanup();
      cleaned = true;
      await assertDetached(loopDev, imageFile);
      assert.ok(!isMounted(mountPoint), `${mountPoint} is unmounted`);
      const mounts = (await run('mount', [])).stdout.split('\n').filter((l) => l.includes(mountPoint));
      assert.deepEqual(mounts, [], 'mount no longer lists the ext4 mount');
      await fs.cleanup(); // idempotent
    } finally {
      if (!cleaned) await fs.cleanup();
    }
  });

  it('fixtures in parallel get distinct loop devices and clean up', async (t) => {
    if (!requireRoot(t)) return;
    // all three set up at once: each must get its own loop device
    const [ra, rb, rc] = await Promise.allSettled([
      eioLoop({ sizeBytes: 8 << 20, badOffset: 1 << 20, badLength: 4096 }),
      eioLoop({ sizeBytes: 8 << 20, badOffset: 2 << 20, badLength: 4096 }),
      corruptExt4(),
    ] as const);
    if (ra.status === 'rejected' || rb.status === 'rejected' || rc.status === 'rejected') {
      await Promise.all([ra, rb, rc].map((r) => (r.status === 'fulfilled' ? r.value.cleanup() : undefined)));
      throw [ra, rb, rc].find((r) => r.status === 'rejected')?.reason;
    }
    const [a, b, c] = [ra.value, rb.value, rc.value];
    try {
      const devs = [a.loopDev, b.loopDev, c.loopDev];
      assert.equal(new Set(devs).size, 3, `distinct loop devices: ${devs.join(' ')}`);
    } finally {
      await Promise.all([a.cleanup(), b.cleanup(), c.cleanup()]);
    }
    await assertDetached(a.loopDev, a.backingFile);
    await assertDetached(b.loopDev, b.backingFile);
    await assertDetached(c.loopDev, c.imageFile);
    for (const m of [a.mountPoint, b.mountPoint, c.mountPoint]) assert.ok(!isMounted(m), `${m} is unmounted`);
  });

  it('a failing setup reports the command and leaves nothing behind', async (t) => {
    if (!requireRoot(t)) return;
    await assert.rejects(eioLoop({ sizeBytes: 4096, badOffset: 8192, badLength: 512 }), /does not fit/);
    await assert.rejects(run('losetup', ['-d', '/dev/prpt-no-such-loop']), /command failed: losetup -d \/dev\/prpt-no-such-loop: exit status \d+: .+/);
  });
});
