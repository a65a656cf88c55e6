// The udev collector in the real agent against real uevents: losetup on a
// file makes the kernel announce the loop device, losetup -d the opposite.
// Needs root (losetup, netlink multicast); skipped loudly otherwise.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { GROUP_KERNEL, GROUP_UDEV, loadNetlink } from '../../src/native/netlink.ts';
import { ueventEventId } from '../../src/udev/events.ts';
import { encodeKernelUevent, encodeLibudevUevent, parseUevent, type Uevent } from '../../src/udev/uevent.ts';
import { type AgentProcess, startAgent, testConfig } from '../helpers/agent.ts';
import { loopBackingFile, requireRoot, run } from '../helpers/faults.ts';
import { injectKmsg } from '../helpers/kmsg.ts';

const UDEVD_RUNS = existsSync('/run/udev/control');

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempFile(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-udev-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  writeFileSync(file, Buffer.alloc(8 * 1024 * 1024));
  // the kernel reports the backing file with symlinks resolved (tmpdir may be one)
  return realpathSync(file);
}

/** Loop devices this file attached; each detached in `finally`, whatever failed. */
class Loops {
  private readonly attached = new Map<string, string>();
  async attach(file: string, dev?: string): Promise<string> {
    const out = await run('losetup', dev ? ['--show', `/dev/${dev}`, file] : ['--find', '--show', file]);
    const m = /^\/dev\/(loop\d+)$/.exec(out.stdout.trim());
    assert.ok(m?.[1], `losetup printed ${JSON.stringify(out.stdout)}`);
    this.attached.set(m[1], file);
    return m[1];
  }
  async detach(dev: string): Promise<void> {
    const file = this.attached.get(dev);
    this.attached.delete(dev);
    if (file === undefined || loopBackingFile(dev) !== file) return;
    await run('losetup', ['-d', `/dev/${dev}`]);
  }
  async cleanup(): Promise<void> {
    for (const dev of [...this.attached.keys()]) {
      try {
        await this.detach(dev);
      } catch (err) {
        process.stderr.write(`udev test cleanup: ${(err as Error).message}\n`);
      }
    }
  }
}

const udevSection = (extra = '') => `\n[udev]\ntype = "collector"\n${extra}\n`;

function forDevice(dev: string, types: string[], after = -1) {
  return (ev: StorageEvent) => ev.dev_name === dev && types.includes(ev.event_type) && Number(ev.extentions.SEQNUM) > after;
}

function assertUeventProps(ev: StorageEvent, dev: string): void {
  const x = ev.extentions;
  assert.equal(x.SUBSYSTEM, 'block');
  assert.equal(x.MAJOR, '7');
  assert.match(x.MINOR ?? '', /^\d+$/);
  assert.equal(x.DEVNAME, dev);
  assert.equal(x.DEVPATH, `/devices/virtual/block/${dev}`);
  assert.match(x.SEQNUM ?? '', /^\d+$/);
  assert.ok(x.ACTION);
  assert.equal(x.kind, 'synthetic');
  assert.equal(x.plugin, 'udev');
  assert.equal(x.source, 'netlink:uevent');
  assert.equal(ev.system, 'block');
  assert.equal(ev.severity, 'info');
}

async function withAgent(config: string, fn: (agent: AgentProcess, loops: Loops) => Promise<void>): Promise<void> {
  const loops = new Loops();
  const agent = await startAgent({ config });
  try {
    await agent.waitForLog(/"udev collector started"/);
    await fn(agent, loops);
  } finally {
    await loops.cleanup();
    await agent.stop();
  }
}

describe('udev collector (real uevents)', () => {
  it('losetup makes the agent report the loop device; losetup -d its change or removal', async (t) => {
    if (!requireRoot(t, 'needs losetup and a netlink uevent socket')) return;
    await withAgent(testConfig() + udevSection('groups = "kernel"'), async (agent, loops) => {
      const file = tempFile('disk.img');
      const dev = await loops.attach(file);
      const up = await agent.waitFor(forDevice(dev, ['BLK_DEVICE_ADDED', 'BLK_DEVICE_CHANGED']), 10_000, `an ADDED/CHANGED event for ${dev}`);
      assertUeventProps(up, dev);
      assert.equal(up.extentions.uevent_source, 'kernel');
      assert.equal(up.dev_wwid, `loop:${file}`, 'identity from sysfs, read after the uevent');
      assert.match(up.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-5/);

      await loops.detach(dev);
      const down = await agent.waitFor(forDevice(dev, ['BLK_DEVICE_CHANGED', 'BLK_DEVICE_REMOVED'], Number(up.extentions.SEQNUM)), 10_000, `a CHANGED/REMOVED event for ${dev} after losetup -d`);
      assertUeventProps(down, dev);
      assert.notEqual(down.event_id, up.event_id);
    });
  });

  it('uevents invalidate the identity cache: after re-binding a loop device, kernel log events carry the new backing file', async (t) => {
    if (!requireRoot(t, 'needs losetup, /dev/kmsg and a netlink uevent socket')) return;
    await withAgent(testConfig() + udevSection('groups = "kernel"'), async (agent, loops) => {
      const a = tempFile('a.img');
      const b = tempFile('b.img');
      const dev = await loops.attach(a);
      await agent.waitFor(forDevice(dev, ['BLK_DEVICE_ADDED', 'BLK_DEVICE_CHANGED']), 10_000, `the uevent for ${dev}`);
      const block = String(4000 + Math.floor(Math.random() * 1000));
      injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${block}, async page read`);
      const first = await agent.waitFor((ev) => ev.event_type === 'BLK_BUFFER_IO_ERROR' && ev.dev_name === dev && ev.extentions.logical_block === block, 10_000, 'the first kernel log event');
      assert.equal(first.dev_wwid, `loop:${a}`, 'resolved and now cached');

      const seenBefore = agent.events.length;
      await loops.detach(dev);
      await loops.attach(b, dev);
      const rebound = await agent.waitFor((ev) => agent.events.indexOf(ev) >= seenBefore && ev.dev_name === dev && ev.dev_wwid === `loop:${b}`, 10_000, `a uevent showing ${dev} on the new file`);
      assert.equal(rebound.event_type, 'BLK_DEVICE_CHANGED');

      const block2 = String(Number(block) + 1);
      injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${block2}, async page read`);
      const second = await agent.waitFor((ev) => ev.event_type === 'BLK_BUFFER_IO_ERROR' && ev.dev_name === dev && ev.extentions.logical_block === block2, 10_000, 'the second kernel log event');
      // the resolver trusts a cached identity for 30 s: only the uevent made it look again
      assert.equal(second.dev_wwid, `loop:${b}`);
    });
  });

  it('both groups: the udev copy (with ID_* properties) replaces the kernel copy; forged senders are refused', async (t) => {
    if (!requireRoot(t, 'needs losetup and netlink multicast (CAP_NET_ADMIN)')) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-udevctl-'));
    dirs.push(dir);
    const control = path.join(dir, 'control');
    writeFileSync(control, '');
    const nl = loadNetlink();
    // a listener of our own, to learn the kernel's SEQNUM as a udevd would
    const listener = nl.open(GROUP_KERNEL, 4 << 20);
    const sender = nl.open(0, 0);
    try {
      await withAgent(testConfig() + udevSection(`groups = "both"\nudev_wait_ms = 1500\nudev_control_path = "${UDEVD_RUNS ? '/run/udev/control' : control}"`), async (agent, loops) => {
        const file = tempFile('udev.img');
        const dev = await loops.attach(file);
        if (!UDEVD_RUNS) {
          // play udevd: the kernel's uevent, re-sent in the libudev format with what udev rules add
          const u = await nextKernelUevent(nl, listener.fd, (x) => x.subsystem === 'block' && x.props.DEVNAME === dev);
          const sent = nl.send(sender.fd, encodeLibudevUevent({ ...u.props, DEVNAME: `/dev/${dev}`, ID_SERIAL: 'PRPT-TEST-SERIAL', ID_PATH: 'virtual-loop' }), GROUP_UDEV);
          assert.ok(sent > 0, `send to the udev group: errno ${-sent}`);
          const ev = await agent.waitFor((e) => e.dev_name === dev && e.extentions.SEQNUM === u.seqnum, 10_000, `the event of uevent ${u.seqnum}`);
          assert.equal(ev.extentions.uevent_source, 'udev');
          assert.equal(ev.extentions.ID_SERIAL, 'PRPT-TEST-SERIAL');
          assert.equal(ev.dev_wwid, `loop:${file}`, 'sysfs identity first');
          assert.equal(ev.event_id, ueventEventId(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), u.seqnum));
          // the kernel copy waited and was dropped: no second event for that uevent
          await sleep(2000);
          assert.equal(agent.events.filter((e) => e.extentions.SEQNUM === u.seqnum && e.extentions.plugin === 'udev').length, 1);
        } else {
          const ev = await agent.waitFor((e) => e.dev_name === dev && e.extentions.plugin === 'udev', 10_000, `an event for ${dev}`);
          assert.equal(ev.extentions.uevent_source, 'udev', 'udevd runs: its copy wins');
        }

        // Forgeries: the kernel format from a process, and nothing for the device they name.
        const forged = 'prptforged' + String(process.pid);
        const fake = { ACTION: 'change', DEVPATH: `/devices/virtual/block/${forged}`, SUBSYSTEM: 'block', DEVNAME: forged, SEQNUM: '999999999' };
        assert.ok(nl.send(sender.fd, encodeKernelUevent(fake), GROUP_KERNEL) > 0);
        assert.ok(nl.send(sender.fd, encodeLibudevUevent(fake), GROUP_KERNEL) > 0);
        const metrics = async () => (await fetch(`${agent.apiUrl()}/metrics`)).text();
        let text = '';
        for (let i = 0; i < 50 && !/peripety_uevents_rejected_total\{reason="sender"\} [2-9]/.test(text); i++) {
          await sleep(100);
          text = await metrics();
        }
        assert.match(text, /peripety_uevents_rejected_total\{reason="sender"\} 2/);
        assert.equal(agent.events.some((e) => e.dev_name === forged), false);
        assert.match(agent.stderr(), /"uevent refused"/);
      });
    } finally {
      nl.close(listener.fd);
      nl.close(sender.fd);
    }
  });
});

async function nextKernelUevent(nl: ReturnType<typeof loadNetlink>, fd: number, pred: (u: Uevent) => boolean, timeoutMs = 10_000): Promise<Uevent> {
  const buf = Buffer.alloc(64 * 1024);
  const meta = new Int32Array(8);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const n = nl.recv(fd, buf, meta);
    if (n === -nl.EAGAIN) {
      await sleep(5);
      continue;
    }
    if (n <= 0) continue;
    const r = parseUevent(buf.subarray(0, n));
    if (r.ok && r.uevent.source === 'kernel' && meta[0] === 0 && pred(r.uevent)) return r.uevent;
  }
  throw new Error('no matching kernel uevent');
}
