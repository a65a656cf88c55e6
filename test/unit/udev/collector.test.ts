// The udev collector against a fake socket and a fake resolver: sender
// checks, kernel/udev de-duplication, cache invalidation, overflow
// accounting, and staying down (not failing the agent) without a socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { CollectorSink } from '../../../src/contracts/collector.ts';
import type { DeviceResolver, Identity } from '../../../src/contracts/device.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { GROUP_KERNEL, GROUP_UDEV, META } from '../../../src/native/netlink.ts';
import type { DeviceRef } from '../../../src/contracts/parser.ts';
import { UdevCollector, type UeventIo, udevMetrics } from '../../../src/udev/collector.ts';
import { UdevOptions } from '../../../src/udev/options.ts';
import { encodeKernelUevent, encodeLibudevUevent } from '../../../src/udev/uevent.ts';

const EAGAIN = 11;
const ENOBUFS = 105;
const BOOT = '1c8e2f4a-9b3d-4c5e-8f70-112233445566';

interface Datagram {
  bytes: Buffer;
  port: number;
  groups: number;
  uid?: number;
  trunc?: boolean;
}

class FakeIo implements UeventIo {
  readonly READABLE = 1;
  readonly EAGAIN = EAGAIN;
  readonly ENOBUFS = ENOBUFS;
  queue: (Datagram | number)[] = [];
  openedGroups = -1;
  closed = false;
  recvCalls = 0;
  private cb: ((status: number, events: number) => void) | null = null;
  private readonly failOpen: string | null;
  constructor(failOpen: string | null = null) {
    this.failOpen = failOpen;
  }
  open(groups: number, rcvbuf: number) {
    if (this.failOpen) throw new Error(this.failOpen);
    this.openedGroups = groups;
    return { fd: 42, rcvbuf };
  }
  recv(_fd: number, buf: Uint8Array, meta: Int32Array): number {
    this.recvCalls++;
    const d = this.queue.shift();
    if (d === undefined) return -EAGAIN;
    if (typeof d === 'number') return -d;
    const n = Math.min(d.bytes.length, buf.length);
    buf.set(d.bytes.subarray(0, n));
    meta[META.PORT] = d.port;
    meta[META.GROUPS] = d.groups;
    meta[META.HAS_CRED] = d.uid === undefined ? 0 : 1;
    meta[META.UID] = d.uid ?? -1;
    meta[META.PID] = 1;
    meta[META.TRUNC] = d.trunc ? 1 : 0;
    return d.bytes.length;
  }
  close(): number {
    this.closed = true;
    return 0;
  }
  pollStart(_fd: number, _events: number, cb: (status: number, events: number) => void): unknown {
    this.cb = cb;
    return {};
  }
  pollStop(): void {
    this.cb = null;
  }
  /** what libuv does when the socket becomes readable */
  readable(status = 0): void {
    assert.ok(this.cb, 'the collector watches the socket');
    this.cb(status, status < 0 ? 0 : this.READABLE);
  }
  get watching(): boolean {
    return this.cb !== null;
  }
}

/** A resolver with a cache in front of a mutable "sysfs". */
class FakeResolver implements DeviceResolver {
  sysfs = new Map<string, Identity>();
  cache = new Map<string, Identity | null>();
  invalidations: (string | undefined)[] = [];
  resolve(ref: DeviceRef): Readonly<Identity> | null {
    const name = ref.name ?? '';
    if (!this.cache.has(name)) this.cache.set(name, this.sysfs.get(name) ?? null);
    return this.cache.get(name) ?? null;
  }
  filesystem() {
    return {};
  }
  describe() {
    return null;
  }
  invalidate(name?: string): void {
    this.invalidations.push(name);
    if (name === undefined) this.cache.clear();
    else this.cache.delete(name);
  }
  invalidateMounts(): void {}
}

function kernelMsg(action: string, seq: number, extra: Record<string, string> = {}, name = 'loop0'): Buffer {
  return encodeKernelUevent({ ACTION: action, DEVPATH: `/devices/virtual/block/${name}`, SUBSYSTEM: 'block', MAJOR: '7', MINOR: '0', DEVNAME: name, DEVTYPE: 'disk', SEQNUM: String(seq), ...extra });
}

function udevMsg(action: string, seq: number, extra: Record<string, string> = {}, name = 'loop0'): Buffer {
  return encodeLibudevUevent({ ACTION: action, DEVPATH: `/devices/virtual/block/${name}`, SUBSYSTEM: 'block', DEVNAME: `/dev/${name}`, SEQNUM: String(seq), ID_SERIAL: 'S1', ...extra });
}

const fromKernel = (bytes: Buffer): Datagram => ({ bytes, port: 0, groups: GROUP_KERNEL, uid: 0 });
const fromUdevd = (bytes: Buffer): Datagram => ({ bytes, port: 1234, groups: GROUP_UDEV, uid: 0 });

function setup(options: Record<string, unknown> = {}, io = new FakeIo(), metrics = new AgentMetrics()) {
  const events: StorageEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as Record<string, unknown>) });
  const resolver = new FakeResolver();
  const sink: CollectorSink = {
    record: () => assert.fail('no kernel records from the udev collector'),
    overrun: () => assert.fail('no overruns from the udev collector'),
    publish: (ev) => events.push(ev),
  };
  const c = new UdevCollector('udev', UdevOptions.parse({ udev_control_path: '/nonexistent/udev/control', ...options }), {
    stateDir: '/nonexistent', bootId: BOOT, log, metrics, resolver: () => resolver, hostname: 'node-7', io: () => io,
  }, sink);
  return { c, io, events, logs, resolver, metrics };
}

async function metricValue(metrics: AgentMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, want]) => x.labels[k] === want));
  return v?.value ?? 0;
}

describe('udev collector', () => {
  it('options: strict, block and auto by default', () => {
    const o = UdevOptions.parse({});
    assert.deepEqual(o.subsystems, ['block']);
    assert.equal(o.groups, 'auto');
    assert.equal(UdevOptions.safeParse({ group: 'kernel' }).success, false);
    assert.equal(UdevOptions.safeParse({ subsystems: [] }).success, false);
    assert.equal(UdevOptions.safeParse({ subsystems: ['a/b'] }).success, false);
    assert.equal(UdevOptions.safeParse({ udev_control_path: 'relative' }).success, false);
  });

  it('auto reads the kernel group without udevd, both groups with it', () => {
    const a = setup();
    a.c.start();
    assert.equal(a.c.state, 'kernel');
    assert.equal(a.io.openedGroups, GROUP_KERNEL);
    a.c.stop();
    const b = setup({ udev_control_path: '/' });
    b.c.start();
    assert.equal(b.c.state, 'both');
    assert.equal(b.io.openedGroups, GROUP_KERNEL | GROUP_UDEV);
    b.c.stop();
    const u = setup({ groups: 'udev' });
    u.c.start();
    assert.equal(u.io.openedGroups, GROUP_UDEV);
    u.c.stop();
    assert.equal(u.io.closed, true);
  });

  it('turns kernel uevents into events and invalidates the device cache', () => {
    const { c, io, events, resolver } = setup({ groups: 'kernel' });
    c.start();
    resolver.sysfs.set('loop0', { name: 'loop0', wwid: 'loop:/a.img', majmin: '7:0' });
    io.queue.push(fromKernel(kernelMsg('change', 10, { DISK_MEDIA_CHANGE: '1' })));
    io.readable();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.event_type, 'BLK_DEVICE_CHANGED');
    assert.equal(events[0]!.dev_wwid, 'loop:/a.img');
    assert.equal(events[0]!.hostname, 'node-7');
    assert.ok(resolver.invalidations.includes('loop0'));
    // re-bound to another file: the cache must not answer with the old one
    resolver.sysfs.set('loop0', { name: 'loop0', wwid: 'loop:/b.img', majmin: '7:0' });
    assert.equal(resolver.resolve({ printed: 'loop0', name: 'loop0' })?.wwid, 'loop:/a.img', 'the fake caches like the real one');
    io.queue.push(fromKernel(kernelMsg('change', 11)));
    io.readable();
    assert.equal(events[1]!.dev_wwid, 'loop:/b.img');
    assert.equal(events[1]!.extentions.previous_wwid, 'loop:/a.img');
    assert.equal(resolver.resolve({ printed: 'loop0', name: 'loop0' })?.wwid, 'loop:/b.img', 'kmsg events after it see the new identity');
    c.stop();
  });

  it('a remove keeps the identity known before the device went away', () => {
    const { c, io, events, resolver } = setup({ groups: 'kernel' });
    c.start();
    resolver.sysfs.set('sdb', { name: 'sdb', wwid: 'naa.5000c500a1b2c3d4' });
    resolver.resolve({ printed: 'sdb', name: 'sdb' });
    resolver.sysfs.delete('sdb');
    io.queue.push(fromKernel(kernelMsg('remove', 12, {}, 'sdb')));
    io.readable();
    assert.equal(events[0]!.event_type, 'BLK_DEVICE_REMOVED');
    assert.equal(events[0]!.dev_wwid, 'naa.5000c500a1b2c3d4');
    assert.equal(resolver.cache.has('sdb'), false, 'and the cache forgot it');
    c.stop();
  });

  it('dm and md devices, and renames, invalidate the whole cache', () => {
    const { c, io, resolver } = setup({ groups: 'kernel' });
    c.start();
    io.queue.push(fromKernel(kernelMsg('add', 20, {}, 'dm-3')), fromKernel(kernelMsg('change', 21, {}, 'md0')), fromKernel(kernelMsg('move', 22, { DEVPATH_OLD: '/devices/virtual/block/sdx' }, 'sdy')));
    io.readable();
    assert.deepEqual(resolver.invalidations, [undefined, undefined, undefined]);
    c.stop();
  });

  it('invalidates on block uevents it does not report, and skips other subsystems', async () => {
    const { c, io, events, resolver, metrics } = setup({ groups: 'kernel' });
    c.start();
    io.queue.push(
      fromKernel(kernelMsg('bind', 30)),
      fromKernel(encodeKernelUevent({ ACTION: 'add', DEVPATH: '/devices/virtual/net/veth0', SUBSYSTEM: 'net', INTERFACE: 'veth0', SEQNUM: '31' })),
    );
    io.readable();
    assert.equal(events.length, 0);
    assert.deepEqual(resolver.invalidations, ['loop0']);
    assert.equal(await metricValue(metrics, 'peripety_uevents_skipped_total', { reason: 'action' }), 1);
    assert.equal(await metricValue(metrics, 'peripety_uevents_skipped_total', { reason: 'subsystem' }), 1);
    assert.equal(await metricValue(metrics, 'peripety_uevents_total', { source: 'kernel', action: 'bind' }), 1);
    c.stop();
  });

  it('refuses kernel-format uevents not from the kernel and udev ones not from root', async () => {
    const { c, io, events, metrics, logs } = setup({ groups: 'both' });
    c.start();
    io.queue.push(
      { bytes: kernelMsg('add', 40), port: 4242, groups: GROUP_KERNEL, uid: 0 }, // a process, not the kernel
      { bytes: kernelMsg('add', 41), port: 0, groups: 0, uid: 0 }, // not multicast
      { bytes: udevMsg('add', 42), port: 4242, groups: GROUP_UDEV, uid: 1000 }, // not root
      { bytes: udevMsg('add', 43), port: 4242, groups: GROUP_UDEV }, // no credentials
      { bytes: udevMsg('add', 44), port: 0, groups: GROUP_UDEV, uid: 0 }, // libudev format "from the kernel"
      { bytes: udevMsg('add', 45), port: 4242, groups: GROUP_KERNEL, uid: 0 }, // udev format on the kernel group
      { bytes: kernelMsg('add', 46), port: 0, groups: GROUP_KERNEL, uid: 0, trunc: true },
      { bytes: Buffer.from('garbage'), port: 0, groups: GROUP_KERNEL, uid: 0 },
    );
    io.readable();
    assert.equal(events.length, 0);
    assert.equal(await metricValue(metrics, 'peripety_uevents_rejected_total', { reason: 'sender' }), 6);
    assert.equal(await metricValue(metrics, 'peripety_uevents_rejected_total', { reason: 'truncated' }), 1);
    assert.equal(await metricValue(metrics, 'peripety_uevents_rejected_total', { reason: 'bad_header' }), 1);
    assert.ok(logs.some((l) => l.msg === 'uevent refused' && l.reason === 'sender' && l.uid === 1000));
    c.stop();
  });

  it('both: the udev copy replaces the waiting kernel copy; a late copy is dropped', async () => {
    const { c, io, events, metrics } = setup({ groups: 'both', udev_wait_ms: 5_000 });
    c.start();
    io.queue.push(fromKernel(kernelMsg('add', 50)));
    io.readable();
    assert.equal(events.length, 0, 'the kernel copy waits');
    io.queue.push(fromUdevd(udevMsg('add', 50, { ID_SERIAL: 'QM1' })));
    io.readable();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.extentions.uevent_source, 'udev');
    assert.equal(events[0]!.extentions.ID_SERIAL, 'QM1');
    // a udev copy with no kernel copy (lost, or from before the start) goes out
    io.queue.push(fromUdevd(udevMsg('change', 51)), fromUdevd(udevMsg('change', 51)));
    io.readable();
    assert.equal(events.length, 2);
    assert.equal(await metricValue(metrics, 'peripety_uevents_skipped_total', { reason: 'duplicate' }), 2);
    c.stop();
  });

  it('both: a kernel copy goes out alone when udevd is too slow, and on stop', async () => {
    const { c, io, events, metrics } = setup({ groups: 'both', udev_wait_ms: 30 });
    c.start();
    io.queue.push(fromKernel(kernelMsg('add', 60)), fromKernel(kernelMsg('change', 61)));
    io.readable();
    assert.equal(events.length, 0);
    await sleep(80);
    assert.deepEqual(events.map((e) => [e.event_type, e.extentions.uevent_source]), [['BLK_DEVICE_ADDED', 'kernel'], ['BLK_DEVICE_CHANGED', 'kernel']]);
    assert.equal(await metricValue(metrics, 'peripety_uevents_udev_timeouts_total'), 2);
    io.queue.push(fromUdevd(udevMsg('add', 60)));
    io.readable();
    assert.equal(events.length, 2, 'the late udev copy is a duplicate');
    io.queue.push(fromKernel(kernelMsg('remove', 62)));
    io.readable();
    c.stop();
    assert.equal(events.length, 3, 'stop sends what waits');
    assert.equal(events[2]!.event_type, 'BLK_DEVICE_REMOVED');
  });

  it('both: max_pending bounds the kernel copies waiting', () => {
    const { c, io, events } = setup({ groups: 'both', udev_wait_ms: 60_000, max_pending: 2 });
    c.start();
    io.queue.push(fromKernel(kernelMsg('change', 70)), fromKernel(kernelMsg('change', 71)), fromKernel(kernelMsg('change', 72)));
    io.readable();
    assert.deepEqual(events.map((e) => e.extentions.SEQNUM), ['70']);
    c.stop();
  });

  it('counts receive buffer overflows and reads on', async () => {
    const { c, io, events, metrics, logs } = setup({ groups: 'kernel' });
    c.start();
    io.queue.push(ENOBUFS, fromKernel(kernelMsg('change', 80)), ENOBUFS);
    io.readable();
    assert.equal(events.length, 1);
    assert.equal(await metricValue(metrics, 'peripety_uevents_dropped_total', { reason: 'overflow' }), 2);
    assert.ok(logs.some((l) => typeof l.msg === 'string' && l.msg.includes('overflowed')));
    c.stop();
  });

  it('re-arms after libuv stopped the watch on EPOLLERR', () => {
    const { c, io, events } = setup({ groups: 'kernel' });
    c.start();
    io.queue.push(ENOBUFS, fromKernel(kernelMsg('change', 90)));
    io.readable(-9);
    assert.equal(events.length, 1);
    assert.ok(io.watching, 'watching again');
    c.stop();
    assert.equal(io.watching, false);
  });

  it('reads at most a bounded number of datagrams per wakeup, the rest right after', async () => {
    const { c, io, events } = setup({ groups: 'kernel' });
    c.start();
    for (let i = 0; i < 1200; i++) io.queue.push(fromKernel(kernelMsg('change', 1000 + i)));
    io.readable();
    assert.ok(events.length > 0 && events.length < 1200, `${events.length} in one wakeup`);
    // the rest follows on the next turns of the event loop, without a new wakeup (bounded wait: a loaded CI machine)
    for (let k = 0; k < 200 && events.length < 1200; k++) await sleep(10);
    assert.equal(events.length, 1200);
    c.stop();
  });

  it('stays down without failing the agent when the socket cannot be opened', async () => {
    const io = new FakeIo('socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT): Address family not supported by protocol');
    const { c, logs } = setup({}, io);
    assert.doesNotThrow(() => c.start());
    assert.equal(c.state, 'down');
    assert.match(c.failure, /Address family not supported/);
    assert.equal(c.up, false, 'the agent reads this to set peripety_plugin_up to 0');
    assert.ok(logs.some((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.startsWith('udev collector is down')));
    assert.doesNotThrow(() => c.stop());
    assert.doesNotThrow(() => c.flush());
  });

  it('registers its metrics once per registry (reloads build new collectors)', () => {
    const metrics = new AgentMetrics();
    const a = setup({}, new FakeIo(), metrics);
    const b = setup({}, new FakeIo(), metrics);
    assert.equal(udevMetrics(metrics.registry), udevMetrics(metrics.registry));
    a.c.start();
    b.c.start();
    a.c.stop();
    b.c.stop();
  });
});
