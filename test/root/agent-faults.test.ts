// Real kernel faults through the running agent: a FUSE-backed loop device
// that returns EIO, and an ext4 image with a damaged directory inode.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type AgentProcess, startAgent, testConfig } from '../helpers/agent.ts';
import { corruptExt4, eioLoop, isRoot, requireRoot } from '../helpers/faults.ts';

const running: AgentProcess[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
});

describe('real kernel faults', { skip: !isRoot() && 'NOT ROOT: needs loop devices, FUSE and mount' }, () => {
  it('a loop device over a FUSE file that fails a range gives BLK_IO_ERROR with a loop: wwid', async (t) => {
    if (!requireRoot(t)) return;
    const a = await startAgent({ config: testConfig() });
    running.push(a);
    const loop = await eioLoop();
    try {
      await loop.readBadRange();
      const ev = await a.waitFor((e) => e.event_type === 'BLK_IO_ERROR' && e.dev_name === loop.loopDev, 15_000, `BLK_IO_ERROR on ${loop.loopDev}`);
      assert.equal(ev.system, 'block');
      assert.equal(ev.severity, 'error');
      assert.equal(ev.dev_wwid, `loop:${loop.backingFile}`);
      assert.equal(ev.extentions.op, 'READ');
      assert.match(ev.extentions.sector ?? '', /^\d+$/);
      assert.equal(ev.extentions.kernel_dev, loop.loopDev);
      assert.match(ev.extentions.raw_msg ?? '', new RegExp(`I/O error, dev ${loop.loopDev}, sector`));
      t.diagnostic(`kernel said: ${ev.extentions.raw_msg}`);
    } finally {
      await loop.cleanup();
      await a.stop();
    }
  });

  it('an ext4 image with a damaged directory inode gives FS_ERROR with the mount point', async (t) => {
    if (!requireRoot(t)) return;
    const a = await startAgent({ config: testConfig() });
    running.push(a);
    const fs = await corruptExt4();
    try {
      await fs.triggerError();
      const ev = await a.waitFor((e) => e.event_type === 'FS_ERROR' && e.dev_name === fs.loopDev, 15_000, `FS_ERROR on ${fs.loopDev}`);
      assert.equal(ev.system, 'fs');
      assert.equal(ev.severity, 'error');
      assert.equal(ev.extentions.mount_point, fs.mountPoint);
      assert.match(ev.dev_wwid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'dev_wwid is the filesystem UUID');
      assert.match(ev.extentions.raw_msg ?? '', new RegExp(`EXT4-fs error \\(device ${fs.loopDev}\\)`));
      t.diagnostic(`kernel said: ${ev.extentions.raw_msg}`);
      // the mount that preceded it was seen too, with the same filesystem UUID
      const mounted = a.events.find((e) => e.event_type === 'FS_MOUNTED' && e.dev_name === fs.loopDev);
      if (mounted) assert.equal(mounted.dev_wwid, ev.dev_wwid);
    } finally {
      await fs.cleanup();
      await a.stop();
    }
  });
});
