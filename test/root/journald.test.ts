// The journald receiver against a REAL systemd-journald (Debian package
// `systemd`), without systemd as PID 1 and without touching the host's
// journal: journald runs as a journal namespace instance
// (`systemd-journald <namespace>`: no /dev/kmsg, no audit, no syslog
// forwarding; socket in /run/systemd/journal.<namespace>/) inside a private
// mount namespace (`unshare -m`) where a fresh tmpfs covers /run and temp
// directories are bind-mounted over /run/systemd and /var/log. The socket and
// the journal files therefore land in the test's temp directory, where this
// process sends to the socket and `journalctl --directory` reads the entries
// back as JSON. Needs root (mounts) and hack/ci-deps.sh (systemd).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { JournaldReceiver } from '../../src/receivers/journald.ts';
import { JournaldOptions } from '../../src/receivers/options.ts';
import { requireRoot, run } from '../helpers/faults.ts';
import { watchChild } from '../helpers/cli-process.ts';
import { NO_ACK } from '../../src/contracts/ack.ts';

const JOURNALD = ['/usr/lib/systemd/systemd-journald', '/lib/systemd/systemd-journald'].find((p) => existsSync(p));

interface RealJournald {
  socket: string;
  /** the directory journalctl --directory reads */
  journalDir: string;
  stop(): Promise<void>;
}

/** Start systemd-journald as namespace `ns`, confined to `dir` (see the file comment). */
async function startJournald(dir: string, ns: string): Promise<RealJournald> {
  if (!JOURNALD) throw new Error('systemd-journald not found in /usr/lib/systemd or /lib/systemd: run hack/ci-deps.sh (Debian package systemd)');
  const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
  if (!/^[0-9a-f]{32}$/.test(machineId)) throw new Error(`/etc/machine-id holds no machine id (${JSON.stringify(machineId)}): journald needs one (systemd-machine-id-setup)`);
  const runDir = path.join(dir, 'run');
  const logDir = path.join(dir, 'log');
  mkdirSync(runDir);
  // /var/log/journal must exist for journald's Storage=auto to write persistent files there
  mkdirSync(path.join(logDir, 'journal'), { recursive: true });
  const script = 'set -e; mount -t tmpfs -o mode=0755 tmpfs /run; mkdir -p /run/systemd /run/log; '
    + 'mount --bind "$1" /run/systemd; mount --bind "$2" /var/log; exec "$3" "$4"';
  const child: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', runDir, logDir, JOURNALD, ns], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watched = watchChild(child);

  const socket = path.join(runDir, `journal.${ns}`, 'socket');
  const stdoutSocket = path.join(runDir, `journal.${ns}`, 'stdout');
  const deadline = Date.now() + 15_000;
  while (!existsSync(socket) || !existsSync(stdoutSocket)) {
    if (watched.exited() !== null) throw new Error(`systemd-journald ${ns} ended before creating its socket (${watched.exited()}): ${watched.output().trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`systemd-journald ${ns} made no socket at ${socket} within 15 s: ${watched.output().trim()}`);
    }
    await sleep(25);
  }
  // A namespace instance exits after 30 s without stream or varlink clients
  // (native datagrams do not count): hold one stdout-stream connection open.
  const keepAlive = net.connect(stdoutSocket);
  keepAlive.on('error', () => undefined);

  return {
    socket,
    journalDir: path.join(logDir, 'journal', `${machineId}.${ns}`),
    async stop(): Promise<void> {
      keepAlive.destroy();
      await watched.stop();
    },
  };
}

type JournalJson = Record<string, string | number[] | null | (string | number[])[]>;

/** A journalctl -o json value as text (journalctl prints values it deems unprintable as byte arrays). */
function text(v: JournalJson[string] | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v.length > 0 && typeof v[0] !== 'number') throw new Error(`field has several values: ${JSON.stringify(v).slice(0, 200)}`);
  return Buffer.from(v as number[]).toString('utf8');
}

async function readEntries(dir: string, identifier: string): Promise<JournalJson[]> {
  // -a: no field is shortened or replaced by null for its size
  const { stdout } = await run('journalctl', ['--directory', dir, '-o', 'json', '-a', '--no-pager', '-q', `SYSLOG_IDENTIFIER=${identifier}`]);
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as JournalJson);
}

function event(n: number, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'node-7', severity: 'error', system: 'block', timestamp: 1763812345 + n, event_id: `5f0c2a4e-0000-4000-8000-${String(n).padStart(12, '0')}`,
    event_type: 'BLK_IO_ERROR', dev_wwid: 'naa.5000c500a1b2c3d4', dev_name: 'sdb', msg: `I/O error on sdb (READ, sector ${n})`,
    extentions: { sector: String(n), op: 'READ', kernel_dev: 'sdb', kernel_level: '3', timestamp_us: `${1763812345 + n}000000` }, ...over,
  };
}

async function withJournald(t: TestContext, fn: (j: RealJournald) => Promise<void>): Promise<void> {
  // short: the socket path must fit sun_path (108 bytes)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-jd-'));
  const ns = `prpt${randomBytes(4).toString('hex')}`;
  let j: RealJournald | null = null;
  try {
    j = await startJournald(dir, ns);
    await fn(j);
  } finally {
    await j?.stop();
    rmSync(dir, { recursive: true, force: true });
    t.diagnostic(`journald namespace ${ns} in ${dir}`);
  }
}

describe('journald receiver with a real systemd-journald', () => {
  it('writes entries journalctl reads back: priorities, identifier, PERIPETY_* fields, multi-line values, a memfd-sized entry', async (t) => {
    if (!requireRoot(t, 'runs systemd-journald in a private mount namespace (unshare -m, mount)')) return;
    await withJournald(t, async (j) => {
      const identifier = `peripety-test-${process.pid}`;
      const metrics = new AgentMetrics();
      const r = new JournaldReceiver('journal', JournaldOptions.parse({ socket: j.socket, identifier }), 1000, { log: silentLogger(), metrics });
      const big = 'B'.repeat(300_000); // well above the 64 KiB memfd threshold
      const events = [
        event(1),
        event(2, { severity: 'warn', event_type: 'SCSI_TIMEOUT', system: 'scsi', extentions: { kernel_level: '4' } }),
        event(3, { severity: 'info', event_type: 'BLK_CAPACITY_CHANGE', extentions: { kernel_level: '6' } }),
        event(4, { extentions: { kernel_level: '1' } }), // the kernel said alert
        event(5, { msg: 'first line\nsecond line', extentions: { raw_msg: 'sd 2:0:0:0: [sdb] tag#0 FAILED\nsd 2:0:0:0: [sdb] CDB: Read(10)', 'ID_SERIAL.short': 'WD-123', kernel_dev: 'sdb' } }),
        event(6, { extentions: { blob: big, tail: 'x\ny' } }),
      ];
      try {
        for (const e of events) assert.ok(r.deliver(e, NO_ACK));
        const sent = async () => (await metrics.receiverSent.get()).values.reduce((a, v) => a + v.value, 0);
        const deadline = Date.now() + 15_000;
        let got: JournalJson[] = [];
        while (got.length < events.length) {
          if (Date.now() > deadline) throw new Error(`journal holds ${got.length} of ${events.length} entries (receiver sent ${await sent()})`);
          await sleep(100);
          if (existsSync(j.journalDir)) got = await readEntries(j.journalDir, identifier);
        }
        assert.equal(got.length, events.length);
        const byId = new Map(got.map((g) => [text(g.PERIPETY_EVENT_ID), g]));
        for (const e of events) {
          const g = byId.get(e.event_id);
          assert.ok(g, `entry of ${e.event_id}`);
          assert.equal(text(g.SYSLOG_IDENTIFIER), identifier);
          assert.equal(text(g._TRANSPORT), 'journal');
          assert.equal(text(g.PERIPETY_EVENT_TYPE), e.event_type);
          assert.equal(text(g.PERIPETY_SYSTEM), e.system);
          assert.equal(text(g.PERIPETY_SEVERITY), e.severity);
          assert.equal(text(g.PERIPETY_DEV_NAME), e.dev_name);
          assert.equal(text(g.PERIPETY_DEV_WWID), e.dev_wwid);
          assert.equal(text(g.PERIPETY_HOSTNAME), e.hostname);
          assert.equal(text(g.PERIPETY_TIMESTAMP), String(e.timestamp));
          assert.equal(text(g.PERIPETY_MSG), e.msg);
          assert.equal(text(g.MESSAGE), `${e.system}/${e.event_type} sdb (naa.5000c500a1b2c3d4): ${e.msg}`);
        }
        const prio = (n: number) => text(byId.get(events[n - 1]!.event_id)!.PRIORITY);
        assert.equal(prio(1), '3');
        assert.equal(prio(2), '4');
        assert.equal(prio(3), '6');
        assert.equal(prio(4), '1');
        const ml = byId.get(events[4]!.event_id)!;
        assert.equal(text(ml.PERIPETY_EXT_RAW_MSG), 'sd 2:0:0:0: [sdb] tag#0 FAILED\nsd 2:0:0:0: [sdb] CDB: Read(10)');
        assert.equal(text(ml.MESSAGE), 'block/BLK_IO_ERROR sdb (naa.5000c500a1b2c3d4): first line\nsecond line');
        assert.equal(text(ml.PERIPETY_EXT_ID_SERIAL_SHORT), 'WD-123');
        assert.equal(text(ml.PERIPETY_EXT_KERNEL_DEV), 'sdb');
        const large = byId.get(events[5]!.event_id)!;
        assert.equal(text(large.PERIPETY_EXT_BLOB), big);
        assert.equal(text(large.PERIPETY_EXT_TAIL), 'x\ny');
        const transports = (await metrics.registry.getSingleMetric('peripety_journald_entries_total')!.get()).values;
        assert.equal(transports.find((v) => v.labels.transport === 'memfd')?.value, 1, 'the large entry went through a sealed memfd');
        assert.equal(transports.find((v) => v.labels.transport === 'datagram')?.value, 5);
        assert.equal(await sent(), events.length);
      } finally {
        await r.close();
      }
    });
  });

  it('a burst of 3000 events (the socket queue fills: EAGAIN, wait, resume) all arrive, none dropped', async (t) => {
    if (!requireRoot(t, 'runs systemd-journald in a private mount namespace (unshare -m, mount)')) return;
    await withJournald(t, async (j) => {
      const identifier = `peripety-storm-${process.pid}`;
      const metrics = new AgentMetrics();
      const r = new JournaldReceiver('journal', JournaldOptions.parse({ socket: j.socket, identifier }), 10_000, { log: silentLogger(), metrics });
      const n = 3000;
      try {
        for (let i = 0; i < n; i++) assert.ok(r.deliver(event(1000 + i, { severity: 'info', extentions: {} }), NO_ACK));
        const deadline = Date.now() + 60_000;
        let count = 0;
        while (count < n) {
          if (Date.now() > deadline) throw new Error(`journal holds ${count} of ${n} entries`);
          await sleep(250);
          if (existsSync(j.journalDir)) count = (await readEntries(j.journalDir, identifier)).length;
        }
        assert.equal(count, n);
        assert.equal((await metrics.receiverDropped.get()).values.reduce((a, v) => a + v.value, 0), 0);
      } finally {
        await r.close();
      }
    });
  });
});
