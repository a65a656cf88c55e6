// The running agent against the real kernel log: lines written to /dev/kmsg
// come out as events; restarts resume without loss; overwritten records are
// counted; reload and shutdown behave. Needs root (writes /dev/kmsg).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { type AgentProcess, startAgent, testConfig } from '../helpers/agent.ts';
import { isRoot, requireRoot } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import { parseMetrics, sumMetric } from '../helpers/prom-text.ts';

const running: AgentProcess[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
});
async function agent(config: string, stateDir?: string): Promise<AgentProcess> {
  const a = await startAgent({ config, stateDir });
  running.push(a);
  return a;
}

describe('agent on the real /dev/kmsg', { skip: !isRoot() && 'NOT ROOT: needs to write /dev/kmsg' }, () => {
  it('turns an injected kernel line into the right event', async (t) => {
    if (!requireRoot(t)) return;
    const a = await agent(testConfig());
    const dev = uniqueDevice('md');
    injectKmsg(`md/raid1:${dev}: Disk failure on sdx1, disabling device.`, 2);
    const ev = await a.waitFor((e) => e.dev_name === dev, 10_000, 'MD_DISK_FAILURE');
    assert.equal(ev.event_type, 'MD_DISK_FAILURE');
    assert.equal(ev.system, 'mdraid');
    assert.equal(ev.severity, 'error');
    assert.equal(ev.extentions.member, 'sdx1');
    assert.equal(ev.extentions.kernel_level, '2');
    assert.match(ev.extentions.kmsg_seq ?? '', /^\d+$/);
    assert.match(ev.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-5/);
    assert.equal(ev.extentions.source, '/dev/kmsg');
    assert.ok(Math.abs(ev.timestamp - Date.now() / 1000) < 60, `timestamp ${ev.timestamp} is now`);
    await a.stop();
  });

  it('attaches a SCSI CDB line to the failure it follows instead of making an event of it', async (t) => {
    if (!requireRoot(t)) return;
    const a = await agent(testConfig());
    const dev = uniqueDevice('sd');
    injectKmsg(`sd 9:0:7:0: [${dev}] tag#3 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE cmd_age=0s`, 6);
    injectKmsg(`sd 9:0:7:0: [${dev}] tag#3 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00`, 6);
    const ev = await a.waitFor((e) => e.dev_name === dev, 10_000, 'SCSI_CMD_FAILED');
    assert.equal(ev.event_type, 'SCSI_CMD_FAILED');
    assert.match(ev.extentions.cdb ?? '', /Read\(10\) 28 00/);
    await sleep(300);
    assert.equal(a.events.filter((e) => e.dev_name === dev).length, 1, 'the CDB line made no event of its own');
    await a.stop();
  });

  it('ignores user-space lines unless accept_user_facility is set', async (t) => {
    if (!requireRoot(t)) return;
    const strict = await agent(testConfig().replace('accept_user_facility = true', 'accept_user_facility = false'));
    const open = await agent(testConfig());
    const dev = uniqueDevice('loop');
    injectKmsg(`I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`);
    await open.waitFor((e) => e.dev_name === dev);
    await sleep(300);
    assert.equal(strict.events.filter((e) => e.dev_name === dev).length, 0, 'a forged user-space line was accepted');
    await strict.stop();
    await open.stop();
  });

  it('reloads on SIGHUP, keeps the old configuration when the new one is invalid, drains and exits 0 on SIGTERM', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-reload-'));
    const a = await agent(testConfig(), path.join(dir, 'state'));
    const configFile = a.proc.spawnargs[a.proc.spawnargs.indexOf('--config') + 1]!;
    const dev1 = uniqueDevice('md');
    // an invalid file: the agent must keep running with the old configuration
    writeFileSync(configFile, '[kmsg]\ntype = "collector"\nstart = "sideways"\n');
    a.proc.kill('SIGHUP');
    await a.waitForLog(/start: must be one of/);
    injectKmsg(`md: ${dev1}: recovery done.`, 6);
    await a.waitFor((e) => e.dev_name === dev1, 10_000, 'an event after the rejected reload');
    // a valid file without the mdraid parser: md lines stop producing events, block lines still do
    writeFileSync(configFile, testConfig().replace('[mdraid]\ntype = "parser"\n', ''));
    a.proc.kill('SIGHUP');
    await a.waitForLog(/configuration reloaded/);
    const dev2 = uniqueDevice('md');
    const dev3 = uniqueDevice('loop');
    injectKmsg(`md: ${dev2}: recovery done.`, 6);
    injectKmsg(`I/O error, dev ${dev3}, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0`);
    await a.waitFor((e) => e.dev_name === dev3, 10_000, 'an event after the applied reload');
    assert.equal(a.events.filter((e) => e.dev_name === dev2).length, 0, 'mdraid parser was removed by the reload');
    const { code, signal } = await a.stop('SIGTERM');
    assert.equal(signal, null);
    assert.equal(code, 0);
  });

  it('saves its read position at most once a second under a steady stream, and once more at stop', async (t) => {
    if (!requireRoot(t)) return;
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-save-')), 'state');
    const a = await agent(testConfig({ start: 'resume' }), stateDir);
    const saves = async () => sumMetric(parseMetrics(await (await fetch(`${a.apiUrl()}/metrics`)).text()), 'peripety_kmsg_position_saves_total');
    const dev = uniqueDevice('sdq');
    const lines = 80;
    const s0 = await saves();
    const t0 = performance.now();
    // one record every 25 ms for 2 s: each commits on its own (per-record saves would be 80)
    for (let i = 0; i < lines; i++) {
      injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${i}, async page read`);
      await sleep(25);
    }
    await a.waitFor((e) => e.dev_name === dev && e.extentions.logical_block === String(lines - 1), 10_000, 'the last record');
    await sleep(1100); // the interval's last save
    const secs = (performance.now() - t0) / 1000;
    const n = (await saves()) - s0;
    t.diagnostic(`${lines} records over ${secs.toFixed(1)} s: ${n} position saves`);
    assert.ok(n >= 1, 'the position was saved');
    assert.ok(n <= Math.ceil(secs) + 1, `${n} saves in ${secs.toFixed(1)} s: more than one a second`);
    const last = (await a.waitFor((e) => e.dev_name === dev && e.extentions.logical_block === String(lines - 1), 1000, 'the last record')).extentions.kmsg_seq;
    await a.stop();
    const saved = JSON.parse(readFileSync(path.join(stateDir, 'kmsg.position.json'), 'utf8')) as { seq: number };
    assert.ok(saved.seq >= Number(last), `saved ${saved.seq} after stop, the last record was ${last}`);
  });

  it('resumes after SIGKILL without losing a record; repeats only in-flight records, with the same event_id', async (t) => {
    if (!requireRoot(t)) return;
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-kill-')), 'state');
    const dev = uniqueDevice('sdk');
    const total = 400;
    const mine = (e: StorageEvent) => e.dev_name === dev && e.event_type === 'BLK_BUFFER_IO_ERROR';
    const line = (i: number) => `Buffer I/O error on dev ${dev}, logical block ${i}, async page read`;
    const first = await agent(testConfig({ start: 'resume' }), stateDir);
    let i = 0;
    // inject until the agent has printed about a third, then kill -9 it mid-stream
    while (first.events.filter(mine).length < total / 3) {
      injectKmsg(line(i++));
      if (i % 5 === 0) await sleep(1);
      assert.ok(i < total, 'the agent printed too little');
    }
    for (let k = 0; k < 20 && i < total; k++) injectKmsg(line(i++)); // more in flight at the moment of the kill
    first.proc.kill('SIGKILL');
    await first.exited;
    await sleep(100); // the stdout pipe delivers what was written before the kill
    while (i < total) injectKmsg(line(i++)); // written while no agent runs
    const saved = JSON.parse(readFileSync(path.join(stateDir, 'kmsg.position.json'), 'utf8')) as { seq: number };
    const second = await agent(testConfig({ start: 'resume' }), stateDir);
    const blocks = (evs: StorageEvent[]) => evs.filter(mine).map((e) => Number(e.extentions.logical_block));
    await second.waitFor((e) => mine(e) && e.extentions.logical_block === String(total - 1), 20_000, 'the last record');
    const a1 = first.events.filter(mine);
    const a2 = second.events.filter(mine);
    const seen = new Set([...blocks(a1), ...blocks(a2)]);
    const missing = [...Array(total).keys()].filter((b) => !seen.has(b));
    const idsFirst = new Map(a1.map((e) => [e.extentions.logical_block, e.event_id]));
    const repeated = a2.filter((e) => idsFirst.has(e.extentions.logical_block));
    t.diagnostic(`kill -9 resume: ${total} records injected, first run printed ${a1.length}, second run ${a2.length}, missing ${missing.length}, repeated ${repeated.length} (saved seq at kill ${saved.seq})`);
    console.error(`# kill -9 resume: injected ${total}, missing ${missing.length}, repeated ${repeated.length}`);
    assert.deepEqual(missing, [], 'records lost across the SIGKILL');
    for (const e of repeated) assert.equal(e.event_id, idsFirst.get(e.extentions.logical_block), 'a repeated record keeps its event_id');
    for (const e of repeated) assert.ok(Number(e.extentions.kmsg_seq) > saved.seq, 'only records after the saved position come again');
    assert.equal(new Set(blocks(a2)).size, a2.length, 'the second run printed no record twice');
    await second.stop();
  });

  it('counts records overwritten before they were read and emits KMSG_OVERRUN', async (t) => {
    if (!requireRoot(t)) return;
    const a = await agent(testConfig());
    const dev = uniqueDevice('sdo');
    a.proc.kill('SIGSTOP'); // the agent cannot read while the ring wraps
    // Each storage line is followed by a large line that makes no event, so
    // the ring (128 KiB here) wraps many times over.
    const filler = `prpt overrun filler ${'x'.repeat(700)}`;
    const n = 800;
    try {
      for (let i = 0; i < n; i++) {
        injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${i}, async page read`);
        injectKmsg(filler, 6);
      }
    } finally {
      a.proc.kill('SIGCONT');
    }
    const ov = await a.waitFor((e) => e.event_type === 'KMSG_OVERRUN', 15_000, 'KMSG_OVERRUN');
    const lost = Number(ov.extentions.lost);
    await a.waitFor((e) => e.dev_name === dev && e.extentions.logical_block === String(n - 1), 15_000, 'the newest record');
    const blocks = a.events.filter((e) => e.dev_name === dev).map((e) => Number(e.extentions.logical_block));
    const got = blocks.length;
    t.diagnostic(`overrun: injected ${n} storage + ${n} filler records, received ${got} storage events, KMSG_OVERRUN lost=${lost}`);
    assert.ok(got < n, 'the ring really wrapped');
    // The oldest records are the ones overwritten: what arrives is an unbroken
    // run up to the newest, and the reported loss covers every record before it.
    assert.deepEqual(blocks, Array.from({ length: got }, (_, i) => n - got + i), 'an unbroken run of the newest records, in order');
    assert.ok(lost >= 2 * (n - got) - 1, `lost ${lost} covers the ${n - got} storage and as many filler records overwritten`);
    assert.equal(ov.severity, 'warn');
    await a.stop();
  });
});
