// Hostile input, multicast: anyone on the group can send datagrams. One that
// carries a real sender's id with sequence number 2^53−1 must not silence
// that sender (every later genuine number would look stale) nor turn the
// loss counter into 9×10^15. With a shared key, forged, changed, unsigned and
// replayed datagrams are dropped and counted, and genuine ones still arrive.
// Real UDP multicast on loopback, the real MulticastSender and listener.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { encode } from '../../src/multicast/envelope.ts';
import { MulticastListener, type ReceivedInfo } from '../../src/multicast/listener.ts';
import { MulticastSender } from '../../src/multicast/sender.ts';
import { ROOT } from '../helpers/agent.ts';
import { NO_ACK } from '../../src/contracts/ack.ts';

const MAX_SEQ = Number.MAX_SAFE_INTEGER; // 2^53 − 1
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-mcast-'));
const running: { close(): Promise<void> }[] = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
  rmSync(tmp, { recursive: true, force: true });
});

function ev(i: number, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'node-h', severity: 'error', system: 'block', timestamp: 1763812345, event_id: `genuine-${i}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg: `event ${i}`, extentions: { n: String(i) }, ...over,
  };
}

function randomGroup(): string {
  const b = randomBytes(2);
  return `239.252.${b[0]}.${1 + (b[1]! % 250)}`;
}

async function socket() {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  s.setMulticastInterface('127.0.0.1');
  s.setMulticastLoopback(true);
  running.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
  const send = (buf: Uint8Array, group: string, port: number) => new Promise<void>((resolve, reject) => s.send(buf, port, group, (e) => (e ? reject(e) : resolve())));
  return { s, send };
}

function datagram(e: StorageEvent, sender: Uint8Array, seq: number, key?: Uint8Array, nowMs = Date.now()): Buffer {
  const r = encode(e, { sender, seq, key, nowMs });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.buf;
}

async function listen(group: string, opts: { key?: Uint8Array; registry?: Registry; port?: number } = {}) {
  const got: { ev: StorageEvent; info: ReceivedInfo }[] = [];
  const l = new MulticastListener({ group, port: opts.port ?? 0, interfaceIp: '127.0.0.1', key: opts.key, registry: opts.registry, onEvent: (e, info) => got.push({ ev: e, info }) });
  const { port } = await l.start();
  running.push(l);
  return { l, port, got };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const genuineIds = (got: { ev: StorageEvent }[]) => got.map((g) => g.ev.event_id).filter((id) => id.startsWith('genuine-'));

describe('without a key: one forged datagram cannot silence a sender', () => {
  it('a max-sequence datagram under the real id from another address: every genuine event still arrives, lost stays 0', async () => {
    const group = randomGroup();
    const { l, port, got } = await listen(group);
    const genuine = await socket();
    const attacker = await socket();
    const id = randomBytes(16);
    for (let i = 1; i <= 5; i++) await genuine.send(datagram(ev(i), id, i), group, port);
    await until(() => got.length >= 5, 'the first 5');
    await attacker.send(datagram(ev(0, { event_id: 'forged-1' }), id, MAX_SEQ), group, port);
    await until(() => got.length >= 6, 'the forged one');
    for (let i = 6; i <= 10; i++) await genuine.send(datagram(ev(i), id, i), group, port);
    await until(() => genuineIds(got).length >= 10 || l.stats.duplicates >= 5, 'the last 5');
    await sleep(50);
    assert.deepEqual(genuineIds(got), Array.from({ length: 10 }, (_, i) => `genuine-${i + 1}`), `stats ${JSON.stringify(l.stats)}`);
    assert.equal(l.stats.lost, 0, `lost must stay honest; stats ${JSON.stringify(l.stats)}`);
  });

  it('even from the genuine source address (spoofed): the stream resyncs instead of going stale, and a forged gap is taken back', async () => {
    const group = randomGroup();
    const registry = new Registry();
    const { l, port, got } = await listen(group, { registry });
    const genuine = await socket(); // the attacker spoofs this socket's address: here, it simply sends from it
    const id = randomBytes(16);
    let seq = 0;
    const next = async () => {
      seq++;
      await genuine.send(datagram(ev(seq), id, seq), group, port);
    };
    for (let i = 0; i < 5; i++) await next();
    await genuine.send(datagram(ev(0, { event_id: 'forged-max' }), id, MAX_SEQ), group, port);
    for (let i = 0; i < 5; i++) await next();
    // a forged jump inside the plausible bound (5,000 ahead) opens a 4,999-event "gap"…
    await genuine.send(datagram(ev(0, { event_id: 'forged-near' }), id, seq + 5000), group, port);
    // …that the genuine stream, continuing below it, shows to be false
    for (let i = 0; i < 5; i++) await next();
    await until(() => genuineIds(got).length >= 15 || l.stats.received + l.stats.duplicates >= 17, 'all datagrams');
    await sleep(50);
    assert.deepEqual(genuineIds(got), Array.from({ length: 15 }, (_, i) => `genuine-${i + 1}`), `stats ${JSON.stringify(l.stats)}`);
    assert.equal(l.stats.lost, 0, `lost must stay honest; stats ${JSON.stringify(l.stats)}`);
    const text = await registry.metrics();
    assert.match(text, /^peripety_multicast_resynced_streams_total [1-9]/m, 'the implausible jumps are counted');
  });
});

describe('with a shared key: forged, changed, unsigned and replayed datagrams are dropped and counted', () => {
  const keyFile = path.join(tmp, 'mcast.key');
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const otherKey = randomBytes(32);

  it('the real sender signs; a keyed listener takes only its datagrams; a keyless one still reads them', async () => {
    const group = randomGroup();
    const registry = new Registry();
    const { readKeyFile } = await import('../../src/multicast/key.ts');
    const k = readKeyFile(keyFile);
    assert.ok(k.ok);
    const { l, port, got } = await listen(group, { key: k.key, registry });
    const plain = await listen(group, { port }); // no key: reads signed datagrams without checking them
    // capture what goes over the wire, as an attacker on the group would
    const wire: Buffer[] = [];
    const cap = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => cap.bind({ address: group, port }, resolve));
    cap.addMembership(group, '127.0.0.1');
    cap.on('message', (m) => wire.push(m));
    running.push({ close: () => new Promise<void>((r) => cap.close(() => r())) });

    const sender = new MulticastSender('multicast', {
      group, port, bindIp: '127.0.0.1', ttl: 0, loopback: true, maxDatagram: 1400, queueSize: 100, keyFile,
    }, { log: silentLogger(), metrics: new AgentMetrics(new Registry()) });
    running.push({ close: () => sender.close() });
    for (let i = 1; i <= 3; i++) sender.deliver(ev(i), NO_ACK);
    await until(() => got.length >= 3 && wire.length >= 3, 'three signed events');
    const id = wire[0]!.subarray(8, 24);

    const attacker = await socket();
    // 1. unsigned (version 1) under the real id, maximum sequence number
    await attacker.send(datagram(ev(0, { event_id: 'forged-unsigned' }), id, MAX_SEQ), group, port);
    // 2. signed with another key
    await attacker.send(datagram(ev(0, { event_id: 'forged-other-key' }), id, 4, otherKey), group, port);
    // 3. a captured genuine datagram with its message changed (same length)
    const tampered = Buffer.from(wire[1]!);
    const at = tampered.indexOf('event 2');
    assert.ok(at > 0);
    tampered.write('event X', at);
    await attacker.send(tampered, group, port);
    // 4. a captured genuine datagram sent again, from another address
    await attacker.send(wire[2]!, group, port);
    // 5. a datagram signed ten minutes ago (captured long ago) under a sender id this listener never saw
    await attacker.send(datagram(ev(0, { event_id: 'replayed-old' }), randomBytes(16), 7, k.key, Date.now() - 600_000), group, port);
    await until(() => l.stats.rejected >= 5 || got.length > 3, 'five refusals');
    for (let i = 4; i <= 5; i++) sender.deliver(ev(i), NO_ACK);
    await until(() => got.length >= 5, 'the genuine 4 and 5');
    await sleep(50);

    assert.deepEqual(got.map((g) => g.ev.event_id), ['genuine-1', 'genuine-2', 'genuine-3', 'genuine-4', 'genuine-5'], `stats ${JSON.stringify(l.stats)}`);
    assert.equal(l.stats.lost, 0);
    assert.equal(l.stats.rejected, 5);
    const text = await registry.metrics();
    for (const [reason, n] of [['unsigned', 1], ['bad_mac', 2], ['replayed', 1], ['expired', 1]] as const) {
      assert.match(text, new RegExp(`^peripety_multicast_rejected_datagrams_total\\{reason="${reason}"\\} ${n}$`, 'm'), `${reason}: ${text.split('\n').filter((x) => x.includes('rejected')).join('\n')}`);
    }
    // compatibility: a listener without the key still reads the signed stream (and trusts it, as before)
    assert.ok(genuineIds(plain.got).length >= 5);
  });

  it('prpt monitor --key-file shows only the signed events and says how many it refused', async () => {
    const group = randomGroup();
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'prpt'), 'monitor', '-m', `${group}:${port}`, '-i', '127.0.0.1', '--key-file', keyFile, '--json', '-n', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.push({ close: async () => void proc.kill('SIGKILL') });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    await until(() => /listening on/.test(err), `prpt monitor listening; stderr: ${err}`);
    const { readKeyFile } = await import('../../src/multicast/key.ts');
    const k = readKeyFile(keyFile);
    assert.ok(k.ok);
    const s = await socket();
    const id = randomBytes(16);
    await s.send(datagram(ev(0, { event_id: 'forged-unsigned' }), id, 1), group, port);
    await s.send(datagram(ev(0, { event_id: 'forged-other-key' }), id, 1, otherKey), group, port);
    await s.send(datagram(ev(1), id, 1, k.key), group, port);
    await s.send(datagram(ev(2), id, 2, k.key), group, port);
    assert.equal(await exited, 0, err);
    assert.deepEqual(out.trim().split('\n').map((l) => (JSON.parse(l) as StorageEvent).event_id), ['genuine-1', 'genuine-2']);
    assert.match(err, /2 events received, 2 shown, 0 lost, 2 refused by the key checks/);
  });

  it('an unsafe key file is refused with a clear message, and a FIFO does not hang the reader', async () => {
    const { readKeyFile } = await import('../../src/multicast/key.ts');
    const writable = path.join(tmp, 'writable.key');
    writeFileSync(writable, 'x'.repeat(32));
    chmodSync(writable, 0o666);
    const r1 = readKeyFile(writable);
    assert.ok(!r1.ok && /writable by every user \(mode 666\)/.test(r1.error), JSON.stringify(r1));
    const short = path.join(tmp, 'short.key');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    const r2 = readKeyFile(short);
    assert.ok(!r2.ok && /holds 3 bytes; a key has at least 16/.test(r2.error), JSON.stringify(r2));
    const readable = path.join(tmp, 'readable.key');
    writeFileSync(readable, 'y'.repeat(32));
    chmodSync(readable, 0o644);
    const r3 = readKeyFile(readable);
    assert.ok(r3.ok && r3.warnings.length === 1 && /readable by every user/.test(r3.warnings[0]!), JSON.stringify(r3));
    const dev = readKeyFile('/dev/zero');
    assert.ok(!dev.ok && /is a character device/.test(dev.error), JSON.stringify(dev));
    const fifo = path.join(tmp, 'key.fifo');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.on('exit', r));
    // the agent and peripety receive read it at start: a FIFO must be refused, not waited on
    const conf = path.join(tmp, 'fifo.toml');
    writeFileSync(conf, `[main]\nreceiver_multicast_ip = "${randomGroup()}"\nmulticast_key_file = "${fifo}"\n[out]\ntype = "receiver"\nplugin = "stdout"\n`);
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'peripety'), 'receive', '--config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.push({ close: async () => void proc.kill('SIGKILL') });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const code = await Promise.race([new Promise<number | null>((r) => proc.on('exit', (c) => r(c))), sleep(15_000).then(() => 'hung')]);
    assert.equal(code, 1, `peripety receive with a FIFO key file: ${String(code)}; stderr ${err}`);
    assert.match(err, /multicast key file .*key\.fifo is a FIFO; it must be a regular file/);
  });
});
