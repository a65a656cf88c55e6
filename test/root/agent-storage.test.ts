// The agent with real storage backends on the real kernel log: what sqlite
// and jsonl acknowledged survives a SIGKILL, and after the restart every
// injected record is stored exactly once in each; queries over HTTP work.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { type AgentProcess, startAgent, testConfig } from '../helpers/agent.ts';
import { isRoot, requireRoot } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import { jsonlEvents, sqliteEvents } from '../helpers/stored-events.ts';

const running: AgentProcess[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
});

describe('agent storage on the real /dev/kmsg', { skip: !isRoot() && 'NOT ROOT: needs to write /dev/kmsg' }, () => {
  it('loses no event acknowledged by sqlite and jsonl across SIGKILL; every record stored once after the restart', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-storage-kill-'));
    const stateDir = path.join(dir, 'state');
    const dbFile = path.join(dir, 'events.db');
    const jsonlDir = path.join(dir, 'jsonl');
    const storageFile = path.join(dir, 'storage.json');
    writeFileSync(storageFile, JSON.stringify({
      root: { elos: { EventLogging: { Plugins: {
        db: { File: 'sqlite', Run: 'always', Filter: [".event.system 'block' STRCMP"], Config: { Path: dbFile } },
        files: { File: 'jsonl', Run: 'always', Filter: ['.event.messageCode 6000 GE'], Config: { StoragePath: `${jsonlDir}/events-%count%.jsonl` } },
      } } } },
    }));
    const dev = uniqueDevice('sdk');
    const total = 300;
    const mine = (e: StorageEvent) => e.dev_name === dev && e.event_type === 'BLK_BUFFER_IO_ERROR';
    const line = (i: number) => `Buffer I/O error on dev ${dev}, logical block ${i}, async page read`;
    const start = async () => {
      const a = await startAgent({ config: testConfig({ start: 'resume' }), stateDir, args: ['--storage-config', storageFile] });
      running.push(a);
      return a;
    };

    const first = await start();
    let i = 0;
    while (first.events.filter(mine).length < total / 3) {
      injectKmsg(line(i++));
      if (i % 5 === 0) await sleep(1);
      assert.ok(i < total, 'the agent took too little');
    }
    for (let k = 0; k < 20 && i < total; k++) injectKmsg(line(i++));
    first.proc.kill('SIGKILL');
    await first.exited;
    // What the backends acknowledged is what they hold now.
    const ackDb = new Set((await sqliteEvents(dbFile)).filter(mine).map((e) => e.extentions.logical_block));
    const ackFiles = new Set(jsonlEvents(jsonlDir).filter(mine).map((e) => e.extentions.logical_block));
    while (i < total) injectKmsg(line(i++));

    const second = await start();
    await second.waitFor((e) => mine(e) && e.extentions.logical_block === String(total - 1), 20_000, 'the last record');
    await second.stop();

    const db = (await sqliteEvents(dbFile)).filter(mine);
    const files = jsonlEvents(jsonlDir).filter(mine);
    for (const [name, events, acked] of [['sqlite', db, ackDb], ['jsonl', files, ackFiles]] as const) {
      const blocks = events.map((e) => e.extentions.logical_block);
      const missing = [...Array(total).keys()].map(String).filter((b) => !blocks.includes(b));
      const twice = blocks.length - new Set(blocks).size;
      t.diagnostic(`${name}: ${acked.size} acknowledged before the kill; after the restart ${new Set(blocks).size}/${total} stored, missing ${missing.length}, stored twice ${twice}`);
      assert.deepEqual(missing, [], `${name}: records missing after the restart`);
      assert.equal(twice, 0, `${name}: a replayed record was stored twice`);
      for (const b of acked) assert.ok(blocks.includes(b), `${name}: acknowledged block ${b} lost`);
    }
    assert.ok(ackDb.size > 0 && ackFiles.size > 0, 'both backends had acknowledged events before the kill');
  });

  it('SIGHUP applies a new storage configuration only when it starts; a broken one keeps the running backends', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-storage-reload-'));
    const storageFile = path.join(dir, 'storage.json');
    const plugins = (p: Record<string, unknown>) => JSON.stringify({ root: { elos: { EventLogging: { Plugins: p } } } });
    writeFileSync(storageFile, plugins({ first: { File: 'memory', Filter: ['1 1 EQ'], Config: { BufferSize: 100 } } }));
    const a = await startAgent({ config: testConfig(), args: ['--storage-config', storageFile] });
    running.push(a);
    const auth = { authorization: `Bearer ${a.apiToken()}` };
    const backends = async () => ((await (await fetch(`${a.apiUrl()}/v1/status`, { headers: auth })).json()) as { storage: { backends: { name: string; started: boolean }[] } }).storage.backends.map((b) => `${b.name}:${b.started}`);
    assert.deepEqual(await backends(), ['first:true']);
    // an unknown File: the new manager cannot start, the old one keeps running
    writeFileSync(storageFile, plugins({ second: { File: 'nosuch', Filter: ['1 1 EQ'] } }));
    a.proc.kill('SIGHUP');
    await a.waitForLog(/configuration rejected/); // SIGHUP applies both files or neither (docs/lifecycle.md)
    assert.match(a.stderr(), /nosuch/);
    assert.deepEqual(await backends(), ['first:true']);
    const dev = uniqueDevice('sdr');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 1, async page read`);
    await a.waitFor((e) => e.dev_name === dev);
    // a valid one: switched once it started
    writeFileSync(storageFile, plugins({ second: { File: 'memory', Filter: [".event.system 'block' STRCMP"] } }));
    a.proc.kill('SIGHUP');
    await a.waitForLog(/"generation":2[,}].*storage manager started|storage manager started.*"generation":2/);
    assert.deepEqual(await backends(), ['second:true']);
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 2, async page read`);
    await a.waitFor((e) => e.dev_name === dev && e.extentions.logical_block === '2');
    let got: StorageEvent[] = [];
    for (let k = 0; k < 50 && got.length === 0; k++) {
      got = ((await (await fetch(`${a.apiUrl()}/v1/events?backend=second`, { headers: auth })).json()) as { events: StorageEvent[] }).events.filter((e) => e.dev_name === dev);
      if (got.length === 0) await sleep(100);
    }
    const status = got.length === 0 ? JSON.stringify(await (await fetch(`${a.apiUrl()}/v1/status`, { headers: auth })).json()) : '';
    assert.deepEqual(got.map((e) => e.extentions.logical_block), ['2'], `status: ${status}\nagent log:\n${a.stderr().slice(-3000)}`);
    const { code } = await a.stop();
    assert.equal(code, 0);
  });

  it('answers queries over HTTP with the token, newest first, filtered', async (t) => {
    if (!requireRoot(t)) return;
    const a = await startAgent({ config: testConfig() });
    running.push(a);
    const dev = uniqueDevice('sdq');
    for (let i = 0; i < 5; i++) injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${i}, async page read`);
    injectKmsg(`md/raid1:md${Math.floor(Math.random() * 1e6)}: Disk failure on ${dev}, disabling device.`);
    await a.waitForCount((e) => e.dev_name === dev, 5);
    const url = `${a.apiUrl()}/v1/events?filter=${encodeURIComponent(`.event.dev_name '${dev}' STRCMP`)}&limit=3`;
    // stored asynchronously after stdout printed them: poll briefly
    let body: { events: StorageEvent[]; isTruncated: boolean } = { events: [], isTruncated: false };
    for (let k = 0; k < 50 && body.events.length < 3; k++) {
      const res = await fetch(url, { headers: { authorization: `Bearer ${a.apiToken()}` } });
      assert.equal(res.status, 200);
      body = (await res.json()) as typeof body;
      if (body.events.length < 3) await sleep(100);
    }
    assert.deepEqual(body.events.map((e) => e.extentions.logical_block), ['4', '3', '2']);
    assert.equal(body.isTruncated, true);
    assert.equal((await fetch(url)).status, 401, 'no token, no events');
    const bad = await fetch(`${a.apiUrl()}/v1/events?filter=${encodeURIComponent('.event.nosuch 1 EQ')}`, { headers: { authorization: `Bearer ${a.apiToken()}` } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /position/);
    assert.equal((await fetch(`${a.apiUrl()}/readyz`)).status, 200);
    assert.match(await (await fetch(`${a.apiUrl()}/metrics`)).text(), /peripety_backend_writes_total\{backend="local",result="ok"\} [1-9]/);
    await a.stop();
  });
});
