// `prpt monitor` and `peripety receive` as users run them: usage errors are
// one line and exit 2; both print what arrives on the multicast group (on
// loopback here), report lost events, and exit 0 on SIGTERM; monitor also
// streams from an agent's /v1/stream.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../src/api/auth.ts';
import { ApiServer } from '../../src/api/server.ts';
import { EventStreamHub } from '../../src/api/stream.ts';
import { done } from '../../src/contracts/outcome.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { encode } from '../../src/multicast/envelope.ts';
import { ROOT } from '../helpers/agent.ts';
import { NO_ACK } from '../../src/contracts/ack.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'prpt-monitor-'));

function run(bin: 'prpt' | 'peripety', args: string[]) {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin', bin), ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('prpt monitor / peripety receive usage errors', () => {
  const noReceiver = path.join(tmp, 'no-receiver.toml');
  writeFileSync(noReceiver, '[main]\nreceiver_multicast_port = 16001\n[kmsg]\ntype = "collector"\n');
  const cases: [string, 'prpt' | 'peripety', string[], number, RegExp][] = [
    ['not IP:PORT', 'prpt', ['monitor', '--multicast', 'nowhere'], 2, /^prpt: --multicast: "nowhere" is not IP\[:PORT\]/],
    ['not a group', 'prpt', ['monitor', '--multicast', '10.0.0.1:6000'], 2, /^prpt: --multicast: 10\.0\.0\.1 is not an IPv4 multicast group address/],
    ['IPv6 group', 'prpt', ['monitor', '--multicast', '[ff15::1]:6000'], 2, /^prpt: --multicast: "\[ff15::1\]:6000" is not IP\[:PORT\]/],
    ['bad port', 'prpt', ['monitor', '--multicast', '239.0.0.1:70000'], 2, /^prpt: --multicast: port 70000 is not 1-65535/],
    ['bad interface', 'prpt', ['monitor', '--interface', 'eth0'], 2, /^prpt: --interface: "eth0" is not an IPv4 address/],
    ['agent and multicast', 'prpt', ['monitor', '--agent', 'http://127.0.0.1:2', '--multicast', '239.0.0.1'], 2, /^prpt: --agent excludes --multicast/],
    ['token file without agent', 'prpt', ['monitor', '--token-file', '/x'], 2, /^prpt: --token-file goes with --agent/],
    ['bad agent URL', 'prpt', ['monitor', '--agent', 'not a url'], 2, /^prpt: --agent: "not a url" is not a URL/],
    ['bad severity', 'prpt', ['monitor', '--severity', 'fatal'], 2, /^prpt: --severity: "fatal" is not one of info, warn, error/],
    ['bad system', 'prpt', ['monitor', '--system', 'scsi,zfs'], 2, /^prpt: --system: "zfs" is not a system/],
    ['bad event type', 'prpt', ['monitor', '--event-type', 'io error'], 2, /^prpt: --event-type: "IO ERROR" is not an event type/],
    ['bad filter', 'prpt', ['monitor', '--filter', '.event.severity 1'], 2, /^prpt: --filter: .*\(position \d+/],
    ['bad count', 'prpt', ['monitor', '--count', '0'], 2, /^prpt: --count: "0" is not a positive integer/],
    ['unknown flag', 'prpt', ['monitor', '--sevrity', 'error'], 2, /^prpt: Unknown option '--sevrity'/],
    ['stray argument', 'prpt', ['monitor', 'sdb'], 2, /^prpt: unexpected argument "sdb"/],
    ['agent unreachable', 'prpt', ['monitor', '--agent', 'http://127.0.0.1:2', '--token-file', writeToml('t', 'token-0123456789abcdef\n')], 1, /^prpt: cannot reach the agent at http:\/\/127\.0\.0\.1:2: ECONNREFUSED/],
    ['receive: unknown flag', 'peripety', ['receive', '--confg', 'x'], 2, /^peripety: Unknown option '--confg'/],
    ['receive: bad interface', 'peripety', ['receive', '--interface', 'lo'], 2, /^peripety: --interface: "lo" is not an IPv4 address/],
    ['receive: bad metrics address', 'peripety', ['receive', '--metrics-listen', 'nowhere'], 2, /^peripety: --metrics-listen: listen address "nowhere" must be host:port/],
    ['receive: no receiver section', 'peripety', ['receive', '--config', noReceiver], 1, /^peripety: the configuration has no enabled receiver section/],
    ['receive: unicast group', 'peripety', ['receive', '--config', writeToml('uni.toml', '[main]\nreceiver_multicast_ip = "10.1.2.3"\n')], 1, /receiver_multicast_ip: must be an IPv4 multicast group address/],
  ];
  for (const [name, bin, args, code, want] of cases) {
    it(name, () => {
      const r = run(bin, args);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});

function writeToml(name: string, text: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

function ev(i: number, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'h', severity: 'error', system: 'block', timestamp: 1763812345, event_id: `id-${i}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdq', msg: `event ${i}`, extentions: { kernel_dev: 'sdq' }, ...over,
  };
}

interface Child {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  waitErr(re: RegExp, timeoutMs?: number): Promise<void>;
  waitOut(pred: (out: string) => boolean, timeoutMs?: number): Promise<void>;
}

const children: Child[] = [];
const sockets: dgram.Socket[] = [];
after(() => {
  for (const c of children) c.proc.kill('SIGKILL');
  for (const s of sockets) s.close();
});

function start(bin: 'prpt' | 'peripety', args: string[]): Child {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', bin), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const wait = async (check: () => boolean, what: string, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}; stderr:\n${err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const c: Child = {
    proc, out: () => out, err: () => err, exited,
    waitErr: (re, t = 10_000) => wait(() => re.test(err), String(re), t),
    waitOut: (pred, t = 10_000) => wait(() => pred(out), 'output', t),
  };
  children.push(c);
  return c;
}

function randomGroup(): string {
  const b = randomBytes(2);
  return `239.254.${b[0]}.${1 + (b[1]! % 250)}`;
}

function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 30_000);
}

async function sender() {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  s.setMulticastInterface('127.0.0.1');
  const id = randomBytes(16);
  sockets.push(s);
  return (e: StorageEvent, seq: number, group: string, port: number) => {
    const r = encode(e, { sender: id, seq });
    assert.ok(r.ok);
    return new Promise<void>((resolve, reject) => s.send(r.buf, port, group, (err) => (err ? reject(err) : resolve())));
  };
}

describe('prpt monitor on the multicast group', () => {
  it('prints matching events as JSON, reports lost ones, stops after --count', async () => {
    const group = randomGroup();
    const port = randomPort();
    const m = start('prpt', ['monitor', '--multicast', `${group}:${port}`, '--interface', '127.0.0.1', '--json', '--severity', 'warn', '--count', '3']);
    await m.waitErr(/listening on/);
    const send = await sender();
    await send(ev(1), 1, group, port);
    await send(ev(2, { severity: 'info' }), 2, group, port); // below --severity
    await send(ev(5), 5, group, port); // 3 and 4 lost
    await send(ev(6, { severity: 'warn' }), 6, group, port);
    assert.equal(await m.exited, 0, m.err());
    const shown = m.out().trim().split('\n').map((l) => (JSON.parse(l) as StorageEvent).event_id);
    assert.deepEqual(shown, ['id-1', 'id-5', 'id-6']);
    assert.match(m.err(), /prpt monitor: lost 2 events \(from 127\.0\.0\.1:\d+, sender [0-9a-f]{8}, seq 3-4\)/);
    assert.match(m.err(), /prpt monitor: 4 events received, 3 shown, 2 lost/);
  });

  it('filters by --system, --event-type, --dev and --filter; --envelope shows sender and seq; exits 0 on SIGTERM', async () => {
    const group = randomGroup();
    const port = randomPort();
    const m = start('prpt', ['monitor', '-m', `${group}:${port}`, '-i', '127.0.0.1', '--envelope', '--system', 'block,fs', '--event-type', 'blk_io_error',
      '--dev', '/dev/sdq', '--filter', ".event.msg r'^keep' REGEX"]);
    await m.waitErr(/listening on/);
    const send = await sender();
    const evs = [
      ev(1, { msg: 'keep 1' }),
      ev(2, { msg: 'keep 2', system: 'scsi' }),
      ev(3, { msg: 'keep 3', event_type: 'FS_IO_ERROR' }),
      ev(4, { msg: 'keep 4', dev_name: 'sdz', extentions: { kernel_dev: 'sdz' } }),
      ev(5, { msg: 'drop 5' }),
      ev(6, { msg: 'keep 6', dev_name: 'dm-9', extentions: { kernel_dev: 'sdq' } }),
    ];
    for (let i = 0; i < evs.length; i++) await send(evs[i]!, i + 1, group, port);
    await m.waitOut((o) => o.includes('"id-6"'));
    m.proc.kill('SIGTERM');
    assert.equal(await m.exited, 0);
    const lines = m.out().trim().split('\n').map((l) => JSON.parse(l) as { sender: string; seq: number; truncated: boolean; event: StorageEvent });
    assert.deepEqual(lines.map((l) => [l.seq, l.event.event_id]), [[1, 'id-1'], [6, 'id-6']]);
    assert.match(lines[0]!.sender, /^[0-9a-f]{32}$/);
    assert.equal(lines[0]!.truncated, false);
    assert.match(m.err(), /6 events received, 2 shown, 0 lost/);
  });

  it('prints text by default', async () => {
    const group = randomGroup();
    const port = randomPort();
    const m = start('prpt', ['monitor', '-m', `${group}:${port}`, '-i', '127.0.0.1', '-n', '1']);
    await m.waitErr(/listening on/);
    const send = await sender();
    await send(ev(1), 1, group, port);
    assert.equal(await m.exited, 0);
    assert.match(m.out(), /^2025-11-22T\d\d:\d\d:\d\d\.\d{3}Z h ERROR block\/BLK_IO_ERROR sdq: event 1\n$/);
  });
});

describe('prpt monitor --agent (GET /v1/stream)', () => {
  const TOKEN = 'monitor-token-0123456789abcdef';
  const tokenFile = writeToml('token', `${TOKEN}\n`);

  async function agentApi() {
    const hub = new EventStreamHub();
    const server = new ApiServer({
      listen: '127.0.0.1:0', auth: new StaticTokenAuthenticator(TOKEN), log: silentLogger(),
      handlers: { registry: new Registry(), readiness: () => ({ ready: true, reasons: [] }), status: () => ({}), queryEvents: () => Promise.resolve(done({ events: [], isTruncated: false })), stream: hub },
    });
    const { port } = await server.start();
    return { hub, server, url: `http://127.0.0.1:${port}` };
  }

  it('prints the streamed events that match', async () => {
    const { hub, server, url } = await agentApi();
    try {
      const m = start('prpt', ['monitor', '--agent', url, '--token-file', tokenFile, '--json', '--severity', 'error', '--count', '2']);
      await m.waitErr(/streaming from/);
      hub.deliver(ev(1), NO_ACK);
      hub.deliver(ev(2, { severity: 'warn' }), NO_ACK);
      hub.deliver(ev(3), NO_ACK);
      assert.equal(await m.exited, 0, m.err());
      assert.deepEqual(m.out().trim().split('\n').map((l) => (JSON.parse(l) as StorageEvent).event_id), ['id-1', 'id-3']);
    } finally {
      await server.stop();
    }
  });

  it('says so when the token is wrong', async () => {
    const { server, url } = await agentApi();
    try {
      const bad = writeToml('bad-token', 'not-the-token-at-all-0000\n');
      const m = start('prpt', ['monitor', '--agent', url, '--token-file', bad]);
      assert.equal(await m.exited, 1);
      assert.match(m.err(), /^prpt: the agent answered 403: the token is not valid for this agent\n$/);
    } finally {
      await server.stop();
    }
  });

  it('reconnects when the agent restarts the stream, and reports what went by', async () => {
    const { hub, server, url } = await agentApi();
    try {
      const m = start('prpt', ['monitor', '--agent', url, '--token-file', tokenFile, '--json']);
      await m.waitErr(/streaming from/);
      hub.deliver(ev(1), NO_ACK);
      await m.waitOut((o) => o.includes('"id-1"'));
      // drop the connection from the server side, publish while the client is away
      const before = hub.clientCount;
      assert.equal(before, 1);
      hub.closeAll();
      for (let i = 2; i <= 4; i++) hub.deliver(ev(i), NO_ACK);
      await m.waitErr(/stream reopened/, 15_000);
      await m.waitErr(/lost 3 events/, 5_000);
      hub.deliver(ev(5), NO_ACK);
      await m.waitOut((o) => o.includes('"id-5"'));
      m.proc.kill('SIGINT');
      assert.equal(await m.exited, 0);
    } finally {
      await server.stop();
    }
  });
});

describe('peripety receive', () => {
  it('hands every event to the configured receivers, counts and logs the lost ones, exits 0 on SIGTERM', async () => {
    const group = randomGroup();
    const port = randomPort();
    const cfg = writeToml(`recv-${port}.toml`, `[main]
receiver_bind_ip = "127.0.0.1"
receiver_multicast_ip = "${group}"
receiver_multicast_port = ${port}

[kmsg]
type = "collector"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`);
    const r = start('peripety', ['receive', '--config', cfg, '--metrics-listen', '127.0.0.1:0']);
    await r.waitErr(/"metrics listening"/);
    assert.match(r.err(), /"receiving multicast events"/);
    const metricsAt = /"listen":"([^"]+)","msg":"metrics listening"/.exec(r.err())![1]!;
    const send = await sender();
    const seqs = [1, 2, 3, 4, 8, 9, 10, 10, 20];
    for (const s of seqs) await send(ev(s), s, group, port);
    await r.waitOut((o) => o.includes('"id-20"'));
    await r.waitErr(/"lost":9/, 5000);
    const metrics = await (await fetch(`http://${metricsAt}/metrics`)).text();
    assert.match(metrics, /peripety_multicast_lost_events_total 12\b/);
    assert.match(metrics, /peripety_multicast_received_events_total 8\b/);
    r.proc.kill('SIGTERM');
    assert.equal(await r.exited, 0);
    const ids = r.out().trim().split('\n').map((l) => (JSON.parse(l) as StorageEvent).event_id);
    assert.deepEqual(ids, ['id-1', 'id-2', 'id-3', 'id-4', 'id-8', 'id-9', 'id-10', 'id-20']);
    // the first gap is logged at once, the next within the rate limit
    assert.match(r.err(), /"lost":3,"gaps":\[\{"sender":"[0-9a-f]{32}","from":"127\.0\.0\.1:\d+","seq":"5-7"\}\]/);
    assert.match(r.err(), /"received":8,"lost":12,"duplicates":1,.*"msg":"multicast receive stopped"/);
  });
});
