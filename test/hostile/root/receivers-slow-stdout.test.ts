// Issue 10 C14: a slow consumer cannot stall storage. The agent's stdout is a
// real pipe (a FIFO) that nobody reads; four stdout receivers write to it.
// Writing to a blocked pipe used to park one libuv thread-pool thread per
// receiver in write(2); with all four parked, the jsonl backend's file I/O
// queued behind them, nothing more was stored and SIGTERM did not exit.
// Now: every line is stored in jsonl promptly, the stuck receivers count
// their drops, and SIGTERM exits within a bounded time.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';
import { parseMetrics, sumMetric } from '../../helpers/prom-text.ts';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

const RECEIVERS = ['out1', 'out2', 'out3', 'out4'];

function config(): string {
  return `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false

[kmsg]
type = "collector"
start = "end"
accept_user_facility = true

[mdraid]
type = "parser"

${RECEIVERS.map((r) => `[${r}]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n`).join('\n')}`;
}

function storedDevs(dir: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir)) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line.includes(prefix)) continue;
      try {
        const ev = JSON.parse(line) as { dev_name: string };
        if (ev.dev_name.startsWith(prefix)) out.set(ev.dev_name, (out.get(ev.dev_name) ?? 0) + 1);
      } catch {
        // a line cut short: not stored
      }
    }
  }
  return out;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

describe('hostile: stdout receivers on a pipe nobody reads', { skip: !isRoot() && 'NOT ROOT: needs to write /dev/kmsg' }, () => {
  it('storage keeps storing every line promptly and SIGTERM exits within a bounded time', async (t) => {
    if (!requireRoot(t, 'needs to write /dev/kmsg')) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-stdout-'));
    const fifo = path.join(dir, 'stdout.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    // the read end stays open (so writes do not fail with EPIPE) and is never read
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    cleanups.push(() => closeSync(rfd));
    const wfd = openSync(fifo, constants.O_WRONLY);
    const eventsDir = path.join(dir, 'events');
    const storage = path.join(dir, 'storage.json');
    writeFileSync(storage, JSON.stringify({ root: { elos: { EventLogging: { Plugins: {
      jsonl: { File: 'jsonl', Run: 'always', Filter: ['1 1 EQ'], Config: { StoragePath: path.join(eventsDir, '%host%-%date%-%count%.jsonl') } },
    } } } } }));
    const configFile = path.join(dir, 'agent.toml');
    writeFileSync(configFile, config());
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin/peripety'), 'agent', '--config', configFile, '--storage-config', storage, '--state-dir', path.join(dir, 'state')], {
      stdio: ['ignore', wfd, 'pipe'],
    });
    closeSync(wfd);
    cleanups.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number>((resolve) => proc.on('exit', () => resolve(Date.now())));
    assert.ok(await until(() => stderr.includes('"agent started"'), 20_000), `the agent started; stderr:\n${stderr.slice(-2000)}`);
    const api = /"listen":"([^"]+)","msg":"API listening"/.exec(stderr)![1]!;

    // enough JSON lines, times four receivers, to fill the 64 KiB pipe many times over
    const prefix = uniqueDevice('slow');
    const total = 200;
    for (let i = 0; i < total; i++) {
      injectKmsg(`md/raid1:${prefix}x${i}: Disk failure on sdx1, disabling device.`, 2);
      if (i % 50 === 49) await sleep(50);
    }
    const t0 = Date.now();
    const storedAll = await until(() => storedDevs(eventsDir, prefix).size === total, 20_000);
    const stored = storedDevs(eventsDir, prefix);
    t.diagnostic(`stored in jsonl: ${stored.size} of ${total} (${storedAll ? `${Date.now() - t0} ms after the last line` : 'gave up after 20 s'})`);
    assert.equal(stored.size, total, 'every line is stored in jsonl although stdout is blocked');
    assert.ok([...stored.values()].every((n) => n === 1), 'each line stored once');

    // what the stuck receivers cannot write is dropped and counted, not held forever
    let dropped = 0;
    const end = Date.now() + 15_000;
    while (dropped === 0 && Date.now() < end) {
      const metrics = parseMetrics(await (await fetch(`http://${api}/metrics`)).text());
      dropped = sumMetric(metrics, 'peripety_receiver_dropped_events_total', { receiver: RECEIVERS });
      if (dropped === 0) await sleep(250);
    }
    t.diagnostic(`stdout receivers dropped (counted): ${dropped}`);
    assert.ok(dropped > 0, 'the stuck receivers count their drops');

    const sent = Date.now();
    proc.kill('SIGTERM');
    const exitAt = await Promise.race([exited, sleep(30_000).then(() => null)]);
    t.diagnostic(`SIGTERM → exit: ${exitAt === null ? 'no exit within 30 s' : `${exitAt - sent} ms`}, code ${proc.exitCode}`);
    assert.notEqual(exitAt, null, `the agent exits within 30 s of SIGTERM; stderr:\n${stderr.slice(-2000)}`);
    assert.equal(proc.exitCode, 0);
    assert.match(stderr, /stdout: events dropped/, 'the stuck receivers said they dropped');
  });
});
