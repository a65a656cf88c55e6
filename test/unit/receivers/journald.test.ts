// The journald receiver against a socket that plays journald (no root, no
// systemd): what arrives is decoded byte for byte, memfds included, and the
// receiver's waiting (full queue, journald away) never blocks the event loop.
// test/root/journald.test.ts runs the real systemd-journald.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { loadNative } from '../../../src/native/index.ts';
import { loadUnixDgram } from '../../../src/native/unixdgram.ts';
import { JournaldReceiver } from '../../../src/receivers/journald.ts';
import { JournaldOptions } from '../../../src/receivers/options.ts';
import { decodeEntry } from '../../../src/receivers/journald-format.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';

const dgram = loadUnixDgram();
const uv = loadNative();
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempSocketPath(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'prpt-jd-'));
  dirs.push(d);
  return path.join(d, 'socket');
}

interface Received {
  fields: Map<string, string>;
  raw: Buffer;
  memfd: boolean;
  seals: number;
}

/** A socket bound where journald's would be, decoding what it receives (datagrams and memfds). */
class FakeJournald {
  readonly path: string;
  readonly got: Received[] = [];
  private fd: number;
  private handle: unknown = null;
  private readonly buf = Buffer.alloc(1 << 20);
  private readonly meta = new Int32Array(2);
  private waiters: (() => void)[] = [];

  constructor(socketPath: string, opts: { read?: boolean } = {}) {
    this.path = socketPath;
    this.fd = dgram.socket(0);
    assert.ok(this.fd >= 0);
    assert.equal(dgram.bind(this.fd, socketPath), 0);
    if (opts.read !== false) this.resume();
  }

  /** Start reading (again). */
  resume(): void {
    if (this.handle !== null) return;
    this.drain();
    this.handle = uv.pollStart(this.fd, uv.READABLE, () => this.drain());
  }

  /** Stop reading: the socket's queue fills and senders get EAGAIN. */
  pause(): void {
    if (this.handle !== null) uv.pollStop(this.handle);
    this.handle = null;
  }

  private drain(): void {
    for (;;) {
      const n = dgram.recv(this.fd, this.buf, this.meta);
      if (n < 0) {
        assert.equal(n, -dgram.EAGAIN);
        break;
      }
      assert.equal(this.meta[1], 0, 'datagram cut: test buffer too small');
      const passed = this.meta[0]!;
      let raw: Buffer;
      let seals = -1;
      if (passed >= 0) {
        assert.equal(n, 0, 'a datagram with a memfd must have no payload');
        seals = dgram.getSeals(passed);
        raw = readFileSync(`/proc/self/fd/${passed}`);
        dgram.close(passed);
      } else {
        raw = Buffer.from(this.buf.subarray(0, n));
      }
      const fields = new Map(decodeEntry(raw).map(([k, v]) => [k, v.toString('utf8')]));
      this.got.push({ fields, raw, memfd: passed >= 0, seals });
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async waitFor(count: number, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.got.length < count) {
      if (Date.now() > deadline) throw new Error(`fake journald: ${this.got.length} of ${count} entries after ${ms} ms`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(50)]);
    }
  }

  close(): void {
    this.pause();
    if (this.fd >= 0) dgram.close(this.fd);
    this.fd = -1;
    rmSync(this.path, { force: true });
  }
}

let seq = 0;
function event(over: Partial<StorageEvent> = {}): StorageEvent {
  seq++;
  return {
    hostname: 'node-1', severity: 'error', system: 'block', timestamp: 1763812345, event_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    event_type: 'BLK_IO_ERROR', dev_wwid: 'naa.5000c500a1b2c3d4', dev_name: 'sdb', msg: `I/O error on sdb (READ, sector ${seq})`,
    extentions: { sector: String(seq), op: 'READ', kernel_level: '3' }, ...over,
  };
}

function receiver(socketPath: string, opts: Partial<JournaldOptions> = {}, sndbufBytes?: number) {
  const metrics = new AgentMetrics();
  const warnings: string[] = [];
  const log = silentLogger();
  log.warn = ((obj: unknown, msg?: string) => { warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`); }) as typeof log.warn;
  const r = new JournaldReceiver('journal', JournaldOptions.parse({ socket: socketPath, ...opts }), 1000, { log, metrics }, sndbufBytes === undefined ? {} : { sndbufBytes });
  const value = async (name: string, labels: Record<string, string> = { receiver: 'journal' }): Promise<number> => {
    const m = await metrics.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
    return v?.value ?? 0;
  };
  const deliver = (ev: StorageEvent): boolean => r.deliver(ev, NO_ACK);
  return { r, metrics, value, deliver, warnings };
}

describe('unixdgram addon', () => {
  it('reports errors as -errno and misuse as TypeError', () => {
    const fd = dgram.socket(0);
    assert.ok(fd >= 0);
    try {
      assert.equal(dgram.connect(fd, `/${'x'.repeat(200)}`), -dgram.ENAMETOOLONG);
      assert.equal(dgram.connect(fd, '/nonexistent/prpt/socket'), -dgram.ENOENT);
      assert.equal(dgram.connect(fd, ''), -dgram.EINVAL);
      assert.ok(dgram.send(fd, null, Buffer.from('A=b\n')) < 0, 'no peer');
      assert.equal(dgram.send(fd, '/nonexistent/prpt/socket', Buffer.from('A=b\n')), -dgram.ENOENT);
      assert.throws(() => dgram.send(fd, null, 'text' as unknown as Uint8Array), TypeError);
      assert.throws(() => dgram.send(fd, 5 as unknown as string, Buffer.alloc(1)), TypeError);
      assert.throws(() => dgram.recv(fd, Buffer.alloc(1), new Int32Array(1)), TypeError);
      assert.equal(dgram.getSeals(fd), -dgram.EINVAL); // not a memfd
    } finally {
      assert.equal(dgram.close(fd), 0);
    }
    assert.ok(dgram.close(fd) < 0);
  });

  it('sends to a path without connecting, and passes a memfd that way too', () => {
    const p = tempSocketPath();
    const srv = dgram.socket(0);
    const cli = dgram.socket(0);
    try {
      assert.equal(dgram.bind(srv, p), 0);
      assert.equal(dgram.send(cli, p, Buffer.from('A=b\n')), 4);
      assert.equal(dgram.sendMemfd(cli, p, Buffer.from('B=c\n')), 0);
      const buf = Buffer.alloc(64);
      const meta = new Int32Array(2);
      assert.equal(dgram.recv(srv, buf, meta), 4);
      assert.equal(buf.toString('utf8', 0, 4), 'A=b\n');
      assert.equal(meta[0], -1);
      assert.equal(dgram.recv(srv, buf, meta), 0);
      assert.ok(meta[0]! >= 0);
      assert.equal(readFileSync(`/proc/self/fd/${meta[0]}`, 'utf8'), 'B=c\n');
      dgram.close(meta[0]!);
      assert.equal(dgram.recv(srv, buf, meta), -dgram.EAGAIN);
    } finally {
      dgram.close(srv);
      dgram.close(cli);
    }
  });
});

describe('journald receiver (fake journald)', () => {
  it('sends one datagram per event with the mapped fields; a multi-line value in the binary form', async () => {
    const j = new FakeJournald(tempSocketPath());
    const { r, value, deliver } = receiver(j.path);
    try {
      const a = event({ severity: 'warn', extentions: { raw_msg: 'first line\nsecond line', kernel_level: '4', 'weird key!': 'w' } });
      const b = event({ severity: 'info', extentions: { kernel_level: '1' } });
      assert.ok(deliver(a));
      assert.ok(deliver(b));
      await j.waitFor(2);
      const [ea, eb] = j.got;
      assert.equal(ea!.memfd, false);
      assert.equal(ea!.fields.get('MESSAGE'), `block/BLK_IO_ERROR sdb (naa.5000c500a1b2c3d4): ${a.msg}`);
      assert.equal(ea!.fields.get('PRIORITY'), '4');
      assert.equal(ea!.fields.get('SYSLOG_IDENTIFIER'), 'peripety');
      assert.equal(ea!.fields.get('PERIPETY_EVENT_ID'), a.event_id);
      assert.equal(ea!.fields.get('PERIPETY_EXT_RAW_MSG'), 'first line\nsecond line');
      assert.equal(ea!.fields.get('PERIPETY_EXT_WEIRD_KEY_'), 'w');
      // the binary form on the wire: name, newline, 64-bit LE length
      const at = ea!.raw.indexOf('PERIPETY_EXT_RAW_MSG\n');
      assert.ok(at >= 0);
      assert.equal(ea!.raw.readBigUInt64LE(at + 'PERIPETY_EXT_RAW_MSG\n'.length), 22n);
      assert.equal(eb!.fields.get('PRIORITY'), '1');
      assert.equal(await value('peripety_journald_entries_total', { receiver: 'journal', transport: 'datagram' }), 2);
      assert.equal(await value('peripety_receiver_sent_events_total'), 2);
    } finally {
      await r.close();
      j.close();
    }
  });

  it('sends entries above memfd_threshold_bytes as a sealed memfd in an empty datagram', async () => {
    const j = new FakeJournald(tempSocketPath());
    const { r, value, deliver } = receiver(j.path, { memfd_threshold_bytes: 4096 });
    try {
      const big = event({ extentions: { blob: 'x'.repeat(100_000), tail: 'a\nb' } });
      deliver(big);
      deliver(event());
      await j.waitFor(2);
      assert.equal(j.got[0]!.memfd, true);
      const want = dgram.F_SEAL_SEAL | dgram.F_SEAL_SHRINK | dgram.F_SEAL_GROW | dgram.F_SEAL_WRITE;
      assert.equal(j.got[0]!.seals, want, 'exactly the four seals journald checks for');
      assert.equal(j.got[0]!.fields.get('PERIPETY_EXT_BLOB'), 'x'.repeat(100_000));
      assert.equal(j.got[0]!.fields.get('PERIPETY_EVENT_ID'), big.event_id);
      assert.equal(j.got[1]!.memfd, false);
      assert.equal(await value('peripety_journald_entries_total', { receiver: 'journal', transport: 'memfd' }), 1);
    } finally {
      await r.close();
      j.close();
    }
  });

  it('falls back to a memfd when the kernel refuses the datagram with EMSGSIZE', async () => {
    const j = new FakeJournald(tempSocketPath());
    // a tiny send buffer: a 20 kB entry no longer fits one datagram
    const { r, value, deliver } = receiver(j.path, { memfd_threshold_bytes: 8 << 20 }, 4096);
    try {
      deliver(event({ extentions: { blob: 'y'.repeat(20_000) } }));
      await j.waitFor(1);
      assert.equal(j.got[0]!.memfd, true);
      assert.equal(j.got[0]!.fields.get('PERIPETY_EXT_BLOB'), 'y'.repeat(20_000));
      assert.equal(await value('peripety_journald_entries_total', { receiver: 'journal', transport: 'memfd' }), 1);
      assert.equal(await value('peripety_receiver_errors_total'), 0);
    } finally {
      await r.close();
      j.close();
    }
  });

  it('waits without blocking while journald\'s queue is full (EAGAIN), then delivers everything in order', async () => {
    const j = new FakeJournald(tempSocketPath(), { read: false });
    const { r, value, deliver } = receiver(j.path);
    try {
      const evs = Array.from({ length: 200 }, () => event());
      for (const e of evs) assert.ok(deliver(e));
      // the socket queue holds a few datagrams (net.unix.max_dgram_qlen); the rest wait in the receiver's queue
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      await sleep(200);
      clearInterval(timer);
      assert.ok(ticks >= 10, `the event loop kept running (${ticks} ticks)`);
      assert.ok(r.depth > 100, `events wait in the queue (depth ${r.depth})`);
      j.resume();
      await j.waitFor(200);
      assert.deepEqual(j.got.map((g) => g.fields.get('PERIPETY_EVENT_ID')), evs.map((e) => e.event_id));
      assert.equal(await value('peripety_receiver_errors_total'), 0);
      assert.equal(await value('peripety_receiver_dropped_events_total'), 0);
    } finally {
      await r.close();
      j.close();
    }
  });

  it('keeps events while journald is away and delivers them once it is back', async () => {
    const p = tempSocketPath();
    const { r, value, deliver, warnings } = receiver(p);
    let j: FakeJournald | null = null;
    try {
      deliver(event());
      deliver(event());
      await sleep(350); // a few reconnect attempts (100, 200 ms)
      assert.ok(await value('peripety_receiver_errors_total') >= 2);
      assert.ok(warnings.some((w) => /journald unreachable/.test(w) && /ENOENT/.test(w)), warnings.join('\n'));
      assert.equal(r.depth, 1); // one waits in write(), one in the queue
      j = new FakeJournald(p);
      await j.waitFor(2, 10_000);
      assert.equal(await value('peripety_receiver_sent_events_total'), 2);
      assert.equal(await value('peripety_receiver_dropped_events_total'), 0);
    } finally {
      await r.close();
      j?.close();
    }
  });

  it('reconnects when journald restarts (a new socket at the same path)', async () => {
    const p = tempSocketPath();
    let j = new FakeJournald(p);
    const { r, deliver } = receiver(p);
    try {
      deliver(event());
      await j.waitFor(1);
      j.close();
      j = new FakeJournald(p);
      const e = event();
      deliver(e);
      await j.waitFor(1, 10_000);
      assert.equal(j.got[0]!.fields.get('PERIPETY_EVENT_ID'), e.event_id);
    } finally {
      await r.close();
      j.close();
    }
  });

  it('close() gives up on a send still waiting and counts it as dropped', async () => {
    const p = tempSocketPath();
    const { r, value, deliver } = receiver(p);
    deliver(event());
    deliver(event());
    await sleep(50);
    await r.close(100);
    assert.equal(await value('peripety_receiver_dropped_events_total'), 2);
    assert.equal(await value('peripety_plugin_up', { plugin: 'journal' }), 0);
    assert.equal(r.deliver(event(), NO_ACK), false);
  });

  it('validates its options', () => {
    assert.equal(JournaldOptions.parse({}).socket, '/run/systemd/journal/socket');
    assert.equal(JournaldOptions.parse({}).memfd_threshold_bytes, 65536);
    assert.equal(JournaldOptions.safeParse({ socket: 'relative' }).success, false);
    assert.equal(JournaldOptions.safeParse({ socket: `/${'x'.repeat(120)}` }).success, false);
    assert.equal(JournaldOptions.safeParse({ identifier: 'a\nb' }).success, false);
    assert.equal(JournaldOptions.safeParse({ nope: 1 }).success, false);
  });
});
