import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileTemplate, JsonlBackend, jsonlBackend, utcDate } from '../../../../src/storage/backends/jsonl.ts';
import { JsonlConfig } from '../../../../src/storage/backends/options.ts';
import type { StorageEvent } from '../../../../src/events/schema.ts';
import type { Logger } from '../../../../src/log/logger.ts';
import { backendContract } from './contract.ts';
import { DAY, SEC, T0, capturingLogger, context, ev, evs, ids, tempDir, type TempDir, configIssues } from './events.ts';

const all = { filter: null, newest: 0, oldest: 0, limit: 0 };

backendContract(
  'jsonl',
  () => {
    const t = tempDir();
    return { make: () => jsonlBackend.build('files', JsonlConfig.parse({}), context(t.dir)), cleanup: t.cleanup };
  },
  { persistent: true },
);

const issues = (input: unknown): string[] => configIssues(JsonlConfig, input);

describe('jsonl: configuration', () => {
  it('has defaults, also when Config is left out', () => {
    const d = { StoragePath: 'events/%host%-%date%-%count%.jsonl', MaxSize: 64 * 1024 * 1024, MaxFiles: 30, Fsync: 'batch', DedupWindow: 100_000 };
    assert.deepEqual(JsonlConfig.parse({}), d);
    assert.deepEqual(JsonlConfig.parse(undefined), d);
    assert.deepEqual(JsonlConfig.parse({ StoragePath: '/var/log/elosd_%host%_%date%_%count%.log', Fsync: 'never' }), {
      ...d,
      StoragePath: '/var/log/elosd_%host%_%date%_%count%.log',
      Fsync: 'never',
    });
  });
  it('rejects bad values with clear messages', () => {
    assert.deepEqual(issues({ StoragePath: '/var/log/events-%date%.jsonl' }), [
      'StoragePath: StoragePath must contain %count% exactly once in the file name (rotated files need distinct names)',
    ]);
    assert.deepEqual(issues({ StoragePath: '/var/log/%host%/ev-%count%.jsonl' }), [
      'StoragePath: StoragePath placeholders may only appear in the file name, not in the directory',
    ]);
    assert.deepEqual(issues({ StoragePath: '/var/log/ev-%time%-%count%.jsonl' }), [
      'StoragePath: StoragePath has an unknown placeholder %time% (known: %host%, %date%, %count%)',
    ]);
    assert.deepEqual(issues({ StoragePath: '' }), ['StoragePath: StoragePath must not be empty']);
    assert.deepEqual(issues({ MaxSize: 10 }), ['MaxSize: MaxSize must be from 1024 to 1099511627776 (bytes)']);
    assert.deepEqual(issues({ MaxFiles: 0 }), ['MaxFiles: MaxFiles must be from 1 to 100000 (files)']);
    assert.deepEqual(issues({ DedupWindow: -1 }), ['DedupWindow: DedupWindow must be from 0 to 10000000 (events)']);
    assert.deepEqual(issues({ Fsync: 'always' }), ['Fsync: Fsync must be "batch" or "never"']);
    assert.match(issues({ MaxSizeBytes: 1 })[0]!, /Unrecognized key.*MaxSizeBytes/);
  });
});

describe('jsonl: file names', () => {
  it('fills the template and parses names back, for this host only', () => {
    const t = new FileTemplate('/x/ev_%host%_%date%_%count%.log', '/state', 'node/7 a.b');
    assert.equal(t.dir, '/x');
    assert.equal(t.path('2025-01-15', 3), '/x/ev_node_7_a.b_2025-01-15_3.log');
    assert.deepEqual(t.parse('ev_node_7_a.b_2025-01-15_12.log'), { path: '/x/ev_node_7_a.b_2025-01-15_12.log', date: '2025-01-15', count: 12 });
    assert.equal(t.parse('ev_other_2025-01-15_12.log'), null);
    assert.equal(t.parse('ev_node_7_a.b_2025-01-15_12.log.gz'), null);
    assert.equal(t.parse('ev_node_7_aXb_2025-01-15_12.log'), null, 'the dot is literal');
    const rel = new FileTemplate('events/%count%.jsonl', '/state', 'h');
    assert.equal(rel.path('', 0), '/state/events/0.jsonl');
    assert.equal(rel.hasDate, false);
  });
  it('dates events by UTC, clamping impossible times', () => {
    assert.equal(utcDate(T0), '2025-01-15');
    assert.equal(utcDate(Date.UTC(2025, 0, 15, 23, 59, 59, 999) * 1000 + 999), '2025-01-15');
    assert.equal(utcDate(Date.UTC(2025, 0, 16) * 1000), '2025-01-16');
    assert.equal(utcDate(-5), '1970-01-01');
    assert.equal(utcDate(1e20), '9999-12-31');
  });
});

describe('jsonl: files', () => {
  let t: TempDir;
  let b: JsonlBackend | null = null;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await b?.shutdown();
    b = null;
    t.cleanup();
  });
  const open = async (cfg: object = {}, log?: Logger, host = 'node-1') => {
    await b?.shutdown();
    b = new JsonlBackend('files', JsonlConfig.parse(cfg), context(t.dir, log, host));
    await b.start();
    return b;
  };
  const files = (dir = path.join(t.dir, 'events')) => (existsSync(dir) ? readdirSync(dir).sort(byCount) : []);
  const lines = (name: string, dir = path.join(t.dir, 'events')) => readFileSync(path.join(dir, name), 'utf8').split('\n');

  it('writes one event per line under <stateDir>/events, named by host, event date and count', async () => {
    const j = await open({}, undefined, 'node 7');
    const odd = ev(1, { msg: 'two\nlines\u2028 and a tab\t' });
    await j.persist([ev(0), odd]);
    assert.deepEqual(files(), ['node_7-2025-01-15-0.jsonl']);
    const l = lines('node_7-2025-01-15-0.jsonl');
    assert.equal(l.length, 3);
    assert.equal(l[2], '', 'ends with a newline');
    assert.deepEqual(JSON.parse(l[1]!), odd);
    assert.deepEqual((await j.findEvents(all)).events, [odd, ev(0)]);
  });

  it('rotates by size, never past MaxSize (unless one line is bigger)', async () => {
    const j = await open({ MaxSize: 2048 });
    const lineBytes = JSON.stringify(ev(10)).length + 1;
    await j.persist(evs(0, 7));
    await j.persist(evs(7, 8));
    await j.persist(evs(8, 23));
    const names = files();
    assert.ok(names.length >= Math.ceil((23 * lineBytes) / 2048), `${names.length} files`);
    assert.deepEqual(names, names.map((_, i) => `node-1-2025-01-15-${i}.jsonl`));
    for (const n of names) assert.ok(statSync(path.join(t.dir, 'events', n)).size <= 2048);
    assert.deepEqual(ids((await j.findEvents(all)).events), evs(0, 23).map((_, i) => 22 - i));
    const big = ev(99, { msg: 'x'.repeat(3000) });
    await j.persist([big, ev(100)]);
    const after = files();
    assert.equal(after.length, names.length + 2, 'the big line alone in a file, the next one in another');
    assert.ok(statSync(path.join(t.dir, 'events', after.at(-2)!)).size > 3000);
  });

  it('starts a file per event date, and puts late events into their own date', async () => {
    const j = await open();
    await j.persist([ev(1, { timeUs: T0 - DAY }), ev(2, { timeUs: T0 })]);
    await j.persist([ev(3, { timeUs: T0 + DAY }), ev(4, { timeUs: T0 + DAY + SEC })]);
    // a late event of the first day, after the third day started
    await j.persist([ev(5, { timeUs: T0 - DAY + SEC }), ev(6, { timeUs: T0 + DAY + 2 * SEC })]);
    assert.deepEqual(files(), ['node-1-2025-01-14-0.jsonl', 'node-1-2025-01-15-0.jsonl', 'node-1-2025-01-16-0.jsonl']);
    assert.deepEqual(lines('node-1-2025-01-14-0.jsonl').slice(0, -1).map((l) => (JSON.parse(l) as StorageEvent).event_id), [ev(1).event_id, ev(5).event_id]);
    assert.deepEqual(ids((await j.findEvents(all)).events), [6, 4, 3, 2, 5, 1]);
    assert.deepEqual(ids((await j.findEvents({ ...all, newest: T0, oldest: T0 - DAY })).events), [2, 5]);
  });

  it('keeps MaxFiles files, deleting the oldest', async () => {
    const j = await open({ MaxSize: 1024, MaxFiles: 3 });
    for (let i = 0; i < 12; i++) await j.persist(evs(i * 2, i * 2 + 2));
    await j.persist([ev(100, { timeUs: T0 + 5 * DAY })]);
    const names = files();
    assert.equal(names.length, 3);
    assert.equal(names.at(-1), 'node-1-2025-01-20-0.jsonl');
    const got = ids((await j.findEvents(all)).events);
    assert.equal(got[0], 100);
    assert.ok(got.length < 24 && got.length >= 3, `${got.length} events left`);
    // a restart applies retention too
    const j2 = await open({ MaxSize: 1024, MaxFiles: 1 });
    assert.deepEqual(files(), ['node-1-2025-01-20-0.jsonl']);
    assert.deepEqual(ids((await j2.findEvents(all)).events), [100]);
  });

  it('resumes the highest count after a restart: appends while it has room, else the next count', async () => {
    let j = await open({ MaxSize: 4096 });
    await j.persist(evs(0, 2));
    j = await open({ MaxSize: 4096 });
    await j.persist(evs(2, 4));
    assert.deepEqual(files(), ['node-1-2025-01-15-0.jsonl']);
    assert.equal(lines('node-1-2025-01-15-0.jsonl').length, 5);
    await j.persist(evs(4, 30));
    const before = files();
    assert.ok(before.length > 2);
    const last = before.at(-1)!;
    j = await open({ MaxSize: 1024 });
    await j.persist(evs(30, 31));
    const after = files();
    // the last file (up to 4096 bytes) is full at MaxSize 1024: a new count
    assert.equal(after.length, before.length + 1);
    assert.equal(after.at(-1), `node-1-2025-01-15-${Number(/-(\d+)\.jsonl$/.exec(last)![1]) + 1}.jsonl`);
    assert.equal(ids((await j.findEvents(all)).events).length, 31);
  });

  it('stores a batch replayed after a crash once (recent keys rebuilt from the newest files)', async () => {
    let j = await open({ MaxSize: 1024 });
    const batch = evs(0, 10);
    await j.persist(batch);
    j = await open({ MaxSize: 1024 });
    await j.persist(batch);
    await j.persist([...batch.slice(5), ev(10)]);
    assert.deepEqual(ids((await j.findEvents(all)).events), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('remembers DedupWindow keys: an older replay is stored again (the documented limit)', async () => {
    const j = await open({ DedupWindow: 2 });
    await j.persist(evs(0, 4));
    await j.persist([ev(3), ev(2), ev(0)]);
    assert.deepEqual(ids((await j.findEvents(all)).events), [3, 2, 1, 0, 0]);
  });

  it('skips a line cut short by a crash, with a warning, and continues on a fresh line', async () => {
    const cap = capturingLogger();
    let j = await open({}, cap.log);
    await j.persist(evs(0, 3));
    await j.shutdown();
    const file = path.join(t.dir, 'events', 'node-1-2025-01-15-0.jsonl');
    appendFileSync(file, JSON.stringify(ev(3)).slice(0, 40));
    j = await open({}, cap.log);
    assert.deepEqual(ids((await j.findEvents(all)).events), [2, 1, 0]);
    assert.deepEqual(cap.warnings(), ['jsonl lines that are not events were skipped (a write cut short by a crash?)']);
    // the batch that was cut short is replayed
    await j.persist([ev(2), ev(3), ev(4)]);
    assert.ok(cap.warnings().includes('jsonl file ends in a partial line; new events start on a fresh line'));
    const l = lines('node-1-2025-01-15-0.jsonl');
    assert.equal(l.length, 7);
    assert.equal(l[3]!.length, 40);
    assert.deepEqual(JSON.parse(l[5]!), ev(4));
    assert.deepEqual(ids((await j.findEvents(all)).events), [4, 3, 2, 1, 0]);
  });

  it('skips garbage and over-long lines anywhere', async () => {
    const dir = path.join(t.dir, 'events');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'node-1-2025-01-15-0.jsonl'),
      [JSON.stringify(ev(1)), 'not json', '{"hostname":1}', '', `"${'y'.repeat(17 * 1024 * 1024)}"`, JSON.stringify(ev(2)), ''].join('\n'),
    );
    const j = await open();
    assert.deepEqual(ids((await j.findEvents(all)).events), [2, 1]);
  });

  it('reads only the files of dates in the range, and stops after the newest dates that fill limit', async () => {
    const dir = path.join(t.dir, 'events');
    mkdirSync(dir, { recursive: true });
    // an old file that warns when read
    writeFileSync(path.join(dir, 'node-1-2025-01-10-0.jsonl'), 'garbage\n');
    const cap = capturingLogger();
    const j = await open({}, cap.log);
    await j.persist([ev(1, { timeUs: T0 - DAY }), ev(2, { timeUs: T0 }), ev(3, { timeUs: T0 + SEC })]);
    assert.deepEqual(ids((await j.findEvents({ ...all, oldest: T0 - 2 * DAY })).events), [3, 2, 1]);
    assert.deepEqual(ids((await j.findEvents({ ...all, limit: 2 })).events), [3, 2]);
    assert.deepEqual(cap.warnings(), [], 'the 2025-01-10 file was not read');
    // exactly limit: only reading the older dates tells whether there is more
    const r = await j.findEvents({ ...all, limit: 3 });
    assert.deepEqual(ids(r.events), [3, 2, 1]);
    assert.equal(r.isTruncated, false);
    assert.equal(cap.warnings().length, 1, 'the 2025-01-10 file was read');
  });

  it('without %date%: rotates when the event date moves on, and queries every file', async () => {
    const j = await open({ StoragePath: 'log/ev-%host%-%count%.jsonl' });
    const dir = path.join(t.dir, 'log');
    await j.persist([ev(1, { timeUs: T0 }), ev(2, { timeUs: T0 + SEC })]);
    await j.persist([ev(3, { timeUs: T0 + DAY }), ev(4, { timeUs: T0 - DAY })]);
    assert.deepEqual(files(dir), ['ev-node-1-0.jsonl', 'ev-node-1-1.jsonl']);
    assert.deepEqual(ids((await j.findEvents(all)).events), [3, 2, 1, 4]);
    assert.deepEqual(ids((await j.findEvents({ ...all, limit: 2 })).events), [3, 2]);
    const j2 = await open({ StoragePath: 'log/ev-%host%-%count%.jsonl' });
    await j2.persist([ev(5, { timeUs: T0 + DAY + SEC })]);
    assert.deepEqual(files(dir), ['ev-node-1-0.jsonl', 'ev-node-1-1.jsonl'], 'same date as the last event: appended');
    await j2.persist([ev(6, { timeUs: T0 + 2 * DAY })]);
    assert.deepEqual(files(dir), ['ev-node-1-0.jsonl', 'ev-node-1-1.jsonl', 'ev-node-1-2.jsonl']);
  });

  it('serializes concurrent batches and works without fsync', async () => {
    const j = await open({ MaxSize: 1024, Fsync: 'never' });
    await Promise.all([j.persist(evs(0, 10)), j.persist(evs(10, 20)), j.persist(evs(5, 15))]);
    const got = ids((await j.findEvents(all)).events);
    assert.deepEqual(got, evs(0, 20).map((_, i) => 19 - i));
    for (const n of files()) {
      for (const l of lines(n).slice(0, -1)) JSON.parse(l);
    }
  });

  it('reports a failed write, rejects the batch and stores it on retry', async () => {
    const j = await open();
    await j.persist(evs(0, 1));
    // replace the events directory with a file: the next new file cannot be created
    const dir = path.join(t.dir, 'events');
    t.cleanup();
    mkdirSync(t.dir, { recursive: true });
    writeFileSync(dir, '');
    await assert.rejects(j.persist([ev(1, { timeUs: T0 + DAY })]), /jsonl backend files: write failed/);
    assert.equal(j.health().ok, false);
    unlinkSync(dir);
    mkdirSync(dir);
    await j.persist([ev(1, { timeUs: T0 + DAY })]);
    assert.deepEqual(j.health(), { ok: true });
    assert.deepEqual(ids((await j.findEvents(all)).events), [1]);
  });
});

function byCount(a: string, b: string): number {
  const ka = a.replace(/(\d+)(\.jsonl)$/, (_, n: string, e: string) => n.padStart(8, '0') + e);
  const kb = b.replace(/(\d+)(\.jsonl)$/, (_, n: string, e: string) => n.padStart(8, '0') + e);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
