// Hostile input against the real agent: a kernel line carrying terminal
// control bytes (the kernel stores them escaped as \xNN; the parser restores
// them) goes through the agent's stdout receiver (text) and its signed
// multicast broadcast. The agent's text output must show visible escapes,
// never raw ESC/BEL; a listener with the shared key gets the agent's signed
// datagrams, refuses a forged max-sequence datagram under the agent's own
// sender id, and keeps receiving the agent's events with no false loss.
// Needs root (/dev/kmsg).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { encode } from '../../../src/multicast/envelope.ts';
import { readKeyFile } from '../../../src/multicast/key.ts';
import { MulticastListener, type ReceivedInfo } from '../../../src/multicast/listener.ts';
import { ROOT } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-agent-'));
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
  rmSync(tmp, { recursive: true, force: true });
});

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('the real agent: escaped text output, signed multicast', { skip: !isRoot() && 'NOT ROOT: needs /dev/kmsg' }, () => {
  it('prints visible escapes and signs its datagrams; a forged datagram is refused and loses nothing', { timeout: 90_000 }, async (t) => {
    if (!requireRoot(t, 'needs /dev/kmsg')) return;
    const keyFile = path.join(tmp, 'mcast.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const k = readKeyFile(keyFile);
    assert.ok(k.ok);
    const g = randomBytes(2);
    const group = `239.251.${g[0]}.${1 + (g[1]! % 250)}`;
    const port = 20_000 + Math.floor(Math.random() * 30_000);

    const registry = new Registry();
    const got: { ev: StorageEvent; info: ReceivedInfo }[] = [];
    const listener = new MulticastListener({ group, port, interfaceIp: '127.0.0.1', key: k.key, registry, onEvent: (ev, info) => got.push({ ev, info }) });
    await listener.start();
    cleanup.push(() => listener.close());

    const conf = path.join(tmp, 'agent.toml');
    writeFileSync(conf, [
      '[main]', 'api_listen = "off"', `receiver_multicast_ip = "${group}"`, `receiver_multicast_port = ${port}`,
      'receiver_bind_ip = "127.0.0.1"', `multicast_key_file = "${keyFile}"`,
      '[kmsg]', 'type = "collector"', 'start = "end"', 'accept_user_facility = true',
      '[mdraid]', 'type = "parser"',
      '[out]', 'type = "receiver"', 'plugin = "stdout"', 'format = "text"', '',
    ].join('\n'));
    const agent = spawn(process.execPath, [path.join(ROOT, 'bin', 'peripety'), 'agent', '--config', conf, '--state-dir', path.join(tmp, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.push(() => void agent.kill('SIGKILL'));
    const out: Buffer[] = [];
    let err = '';
    agent.stdout.on('data', (c: Buffer) => out.push(c));
    agent.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    await until(() => /multicast sender ready/.test(err) && /"signed":true/.test(err), `the agent's signed sender; stderr: ${err.slice(-1500)}`);
    await until(() => /kmsg|collector/i.test(err), 'the collector');
    await sleep(300);

    const dev = uniqueDevice('esc');
    // raw ESC and BEL into the kernel log: the kernel keeps them as \x1b and \x07
    injectKmsg(`md/raid1:md0: Disk failure on ${dev}\x1b]0;pwned\x07\x1b]52;c;cm0gLXJm\x07, disabling device.`);
    const text = () => Buffer.concat(out).toString('utf8');
    await until(() => text().includes(dev), `the agent's text line for ${dev}; stderr: ${err.slice(-1500)}`);
    await until(() => got.some((x) => x.ev.extentions.member?.startsWith(dev) === true), 'the signed datagram');
    const line = text().split('\n').find((l) => l.includes(dev))!;
    const raw = Buffer.concat(out);
    for (const b of raw) assert.ok(!((b < 0x20 && b !== 0x09 && b !== 0x0a) || b === 0x7f), `control byte 0x${b.toString(16)} in the agent's stdout: ${JSON.stringify(line)}`);
    assert.match(line, new RegExp(`${dev}\\\\x1b\\]0;pwned\\\\x07\\\\x1b\\]52;c;cm0gLXJm\\\\x07 failed`), line);
    const first = got.find((x) => x.ev.extentions.member?.startsWith(dev) === true)!;
    assert.equal(first.ev.extentions.member, `${dev}\x1b]0;pwned\x07\x1b]52;c;cm0gLXJm\x07`, 'the datagram keeps the exact value');

    // forged: the agent's own sender id, the largest sequence number, unsigned and signed with another key
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    s.setMulticastInterface('127.0.0.1');
    cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
    const sender = Buffer.from(first.info.sender, 'hex');
    const forged = { ...first.ev, event_id: 'forged', msg: 'forged' };
    for (const key of [undefined, randomBytes(32)]) {
      const r = encode(forged, { sender, seq: Number.MAX_SAFE_INTEGER, key, nowMs: Date.now() });
      assert.ok(r.ok);
      await new Promise<void>((resolve, reject) => s.send(r.buf, port, group, (e) => (e ? reject(e) : resolve())));
    }
    await until(() => listener.stats.rejected >= 2, 'two refusals');
    const dev2 = uniqueDevice('after');
    injectKmsg(`md/raid1:md0: Disk failure on ${dev2}, disabling device.`);
    await until(() => got.some((x) => x.ev.extentions.member === dev2), 'the next genuine event');
    assert.ok(!got.some((x) => x.ev.event_id === 'forged'));
    assert.equal(listener.stats.lost, 0, JSON.stringify(listener.stats));
    const metrics = await registry.metrics();
    assert.match(metrics, /^peripety_multicast_rejected_datagrams_total\{reason="unsigned"\} 1$/m);
    assert.match(metrics, /^peripety_multicast_rejected_datagrams_total\{reason="bad_mac"\} 1$/m);
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
  });
});
