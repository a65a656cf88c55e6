// The postgres storage backend against a real PostgreSQL server (a throwaway
// cluster per file, test/helpers/postgres.ts): schema creation, batched
// idempotent inserts, queries with pushdown plus the full filter, jsonb
// extentions, surviving the server going away, and no credentials in logs
// or errors. Config validation runs everywhere; the rest needs root.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { StorageEvent } from '../../src/events/schema.ts';
import type { CompiledFilter, FilterHints, FilterResult } from '../../src/filter/types.ts';
import type { Logger } from '../../src/log/logger.ts';
import { postgresBackend } from '../../src/storage/backends/postgres.ts';
import { CONNECTION_SECRET_STANDALONE_ERROR, PostgresConfig } from '../../src/storage/backends/options.ts';
import type { Backend, BackendContext, EventQuery } from '../../src/storage/types.ts';
import { isRoot } from '../helpers/faults.ts';
import { type PostgresServer, requirePostgres, startPostgres } from '../helpers/postgres.ts';

// ---------------------------------------------------------------------------
// helpers

/** Every log line of every backend in this file, for the no-secrets check at the end. */
let logText = '';
const logSink = new Writable({
  write(chunk: Buffer | string, _enc, cb) {
    logText += chunk.toString();
    cb();
  },
});
const log: Logger = pino({ level: 'debug' }, logSink);
/** Every error message a backend gave us, for the same check. */
const errorTexts: string[] = [];

function ctx(env: NodeJS.ProcessEnv = {}): BackendContext {
  return { log, stateDir: '/nonexistent', hostname: 'test-node', env };
}

const backends: Backend[] = [];
function backend(config: unknown, env: NodeJS.ProcessEnv = {}, name = 'pg'): Backend {
  const b = postgresBackend.build(name, postgresBackend.options.parse(config), ctx(env));
  backends.push(b);
  return b;
}

/** Await a rejection and return its message (recorded for the no-secrets check). */
async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    errorTexts.push(msg);
    return msg;
  }
  assert.fail('expected a rejection');
}

/** A hand-built CompiledFilter: the compiler is not part of this test. */
function filter(source: string, match: (ev: StorageEvent) => boolean | 'ERROR', hints: FilterHints = {}): CompiledFilter {
  const evaluate = (ev: StorageEvent): FilterResult => {
    const r = match(ev);
    return r === 'ERROR' ? 'ERROR' : r ? 'MATCH' : 'NO_MATCH';
  };
  return { source, hints, evaluate, evaluateDetailed: (ev) => ({ result: evaluate(ev) }) };
}

const BASE_US = 1_763_812_345_000_000;

function mkEvent(i: number, over: Partial<StorageEvent> = {}, timeUs = BASE_US + i * 1000): StorageEvent {
  return {
    hostname: `node-${i % 3}`,
    severity: i % 5 === 0 ? 'warn' : 'error',
    system: i % 2 === 0 ? 'block' : 'scsi',
    timestamp: Math.floor(timeUs / 1_000_000),
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    event_type: i % 2 === 0 ? 'BLK_IO_ERROR' : 'SCSI_MEDIUM_ERROR',
    dev_wwid: `naa.${i % 4}`,
    dev_name: 'sdb',
    msg: `event ${i}`,
    extentions: { timestamp_us: String(timeUs), op: i % 2 === 0 ? 'WRITE' : 'READ', kernel_dev: 'sdb', n: String(i) },
    ...over,
  };
}

const ALL: EventQuery = { filter: null, newest: 0, oldest: 0, limit: 0 };
const ids = (evs: readonly StorageEvent[]): string[] => evs.map((e) => e.extentions.n ?? '?');

// ---------------------------------------------------------------------------

describe('postgres backend config', () => {
  it('has defaults, and refuses unknown keys, bad names and numbers, and two sources', () => {
    const d = PostgresConfig.parse({});
    assert.equal(d.Table, 'peripety_events');
    assert.equal(d.PoolSize, 2);
    assert.ok(d.BatchSize > 0 && d.StatementTimeoutMs > 0 && d.ConnectTimeoutMs > 0);
    assert.equal(postgresBackend.name, 'postgres');

    const bad: [unknown, RegExp][] = [
      [{ Tabel: 'x' }, /Tabel/],
      [{ Table: 'Events' }, /identifier/],
      [{ Table: 'x; DROP TABLE y' }, /identifier/],
      [{ Table: '1abc' }, /identifier/],
      [{ Table: 'a'.repeat(41) }, /at most/],
      [{ PoolSize: 0 }, /PoolSize/],
      [{ BatchSize: 1.5 }, /BatchSize/],
      [{ StatementTimeoutMs: -1 }, /StatementTimeoutMs/],
      [{ ConnectTimeoutMs: '5000' }, /ConnectTimeoutMs/],
      [{ ConnectionStringEnv: 'NOT-A-NAME' }, /environment variable/],
      [{ ConnectionSecret: 'Bad_Name' }, /Secret/],
      [{ ConnectionString: 'postgresql://a@b/c', ConnectionStringEnv: 'X' }, /at most one/],
      [{ ConnectionStringFile: '/f', ConnectionSecret: 's' }, /at most one/],
    ];
    for (const [cfg, re] of bad) {
      const r = PostgresConfig.safeParse(cfg);
      assert.equal(r.success, false, `${JSON.stringify(cfg)} must be refused`);
      const text = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      assert.match(text, re, `${JSON.stringify(cfg)}: ${text}`);
    }
    assert.equal(PostgresConfig.parse({ Table: 'events_2', PoolSize: 4 }).Table, 'events_2');
  });

  it('accepts ConnectionSecret, but start in standalone mode says it needs Kubernetes mode', async () => {
    const b = backend({ ConnectionSecret: 'peripety-pg' });
    assert.equal(await rejection(b.start()), `postgres backend "pg": ${CONNECTION_SECRET_STANDALONE_ERROR}`);
    await b.shutdown();
    await b.shutdown();
  });

  it('start names the missing source, never echoes a bad connection string', async () => {
    assert.match(await rejection(backend({}).start()), /PERIPETY_PG_URL is not set/);
    assert.match(await rejection(backend({ ConnectionStringEnv: 'MY_PG' }).start()), /ConnectionStringEnv: MY_PG is not set/);
    assert.match(await rejection(backend({ ConnectionStringFile: '/nonexistent/pg-url' }).start()), /cannot read ConnectionStringFile \/nonexistent\/pg-url: ENOENT/);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peripety-pgcfg-'));
    try {
      await writeFile(path.join(dir, 'empty'), '\n');
      assert.match(await rejection(backend({ ConnectionStringFile: path.join(dir, 'empty') }).start()), /is empty/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const kv = 'host=db user=u password=KeyValueSecret42';
    const m1 = await rejection(backend({ ConnectionString: kv }).start());
    assert.match(m1, /not a URL/);
    assert.doesNotMatch(m1, /KeyValueSecret42/);
    const m2 = await rejection(backend({}, { PERIPETY_PG_URL: 'mysql://u:MysqlSecret42@h/db' }).start());
    assert.match(m2, /must start with postgres:\/\/ or postgresql:\/\//);
    assert.doesNotMatch(m2, /MysqlSecret42/);
  });

  it('refuses to run before start', async () => {
    const b = backend({ ConnectionString: 'postgresql://u:p@127.0.0.1:1/db' });
    assert.match(await rejection(b.persist([mkEvent(1)])), /not started/);
    await b.shutdown();
  });
});

if (!isRoot()) process.stderr.write('*** SKIPPED (needs root): postgres backend against a real server: runs a throwaway PostgreSQL cluster as the postgres user ***\n');

describe('postgres backend against a real server', { skip: !isRoot() && 'NOT ROOT: needs a throwaway PostgreSQL cluster run as the postgres user' }, () => {
  let server: PostgresServer | undefined;
  const srv = (): PostgresServer => {
    assert.ok(server, 'the test server did not start (see the before hook)');
    return server;
  };

  before(async () => {
    // Root without the binaries fails here with the package to install.
    server = await startPostgres({ fsync: false });
  });
  after(async () => {
    for (const b of backends) await b.shutdown();
    await server?.destroy();
  });

  it('start creates the table, its indexes and the replay key; concurrent starts agree', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_create' });
    await b.start();
    assert.deepEqual(b.health(), { ok: true });
    const cols = await srv().query<{ column_name: string; data_type: string }>(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't_create' ORDER BY column_name",
    );
    assert.deepEqual(Object.fromEntries(cols.map((c) => [c.column_name, c.data_type])), {
      dev_name: 'text',
      dev_wwid: 'text',
      event_id: 'text',
      event_type: 'text',
      extentions: 'jsonb',
      hostname: 'text',
      id: 'bigint',
      inserted_at: 'timestamp with time zone',
      msg: 'text',
      severity: 'text',
      system: 'text',
      time_us: 'bigint',
      timestamp: 'bigint',
    });
    const idx = await srv().query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 't_create'");
    const defs = idx.map((r) => r.indexdef.replace(/^.* USING btree /, ''));
    for (const want of ['(time_us, id)', '(system, time_us, id)', '(event_type, time_us, id)', '(dev_wwid, time_us, id)', '(hostname, time_us, id)', '(event_id, event_type)', '(id)']) {
      assert.ok(defs.includes(want), `index ${want} in ${defs.join(' ')}`);
    }
    // a second start on the existing table, and six agents racing on a new one
    await backend({ ConnectionString: srv().url, Table: 't_create' }).start();
    await Promise.all(Array.from({ length: 6 }, () => backend({ ConnectionString: srv().url, Table: 't_race' }).start()));
    assert.equal((await srv().query("SELECT 1 FROM pg_indexes WHERE tablename = 't_race'")).length, 7);
  });

  it('a table made by someone else without the replay key is refused at start', async (t) => {
    if (!requirePostgres(t)) return;
    await srv().query(`CREATE TABLE t_foreign (id bigserial, time_us bigint, timestamp bigint, hostname text, severity text, system text,
      event_type text, event_id text, dev_wwid text, dev_name text, msg text, extentions jsonb)`);
    assert.match(await rejection(backend({ ConnectionString: srv().url, Table: 't_foreign' }).start()), /no UNIQUE \(event_id, event_type\)/);
    await srv().query('CREATE TABLE t_partial (id bigserial, time_us bigint)');
    assert.match(await rejection(backend({ ConnectionString: srv().url, Table: 't_partial' }).start()), /lacks column\(s\) timestamp, hostname/);
  });

  it('persist then findEvents: range, limit, order, pushdown plus the full filter', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_query', BatchSize: 7 });
    await b.start();
    const evs = Array.from({ length: 30 }, (_, i) => mkEvent(i));
    // 30 and 31 share a time with 29: ties go newest-inserted first
    evs.push(mkEvent(30, {}, BASE_US + 29_000), mkEvent(31, {}, BASE_US + 29_000));
    // no timestamp_us: the time is timestamp seconds
    evs.push(mkEvent(32, { timestamp: BASE_US / 1_000_000 - 10, extentions: { n: '32' } }));
    await b.persist(evs.slice(0, 20));
    await b.persist(evs.slice(20));

    const all = await b.findEvents(ALL);
    assert.equal(all.isTruncated, false);
    assert.deepEqual(ids(all.events), ['31', '30', '29', ...Array.from({ length: 29 }, (_, k) => String(28 - k)), '32']);
    assert.deepEqual(all.events.find((e) => e.extentions.n === '7'), evs[7], 'round trip');

    const at = (i: number): number => BASE_US + i * 1000;
    // newest inclusive, oldest exclusive
    assert.deepEqual(ids((await b.findEvents({ ...ALL, newest: at(20), oldest: at(10) })).events), ['20', '19', '18', '17', '16', '15', '14', '13', '12', '11']);
    assert.deepEqual(ids((await b.findEvents({ ...ALL, newest: at(2) })).events), ['2', '1', '0', '32']);
    assert.deepEqual(ids((await b.findEvents({ ...ALL, oldest: at(27) })).events), ['31', '30', '29', '28']);
    assert.deepEqual((await b.findEvents({ ...ALL, newest: at(5), oldest: at(5) })).events, []);

    // limit and isTruncated
    const five = await b.findEvents({ ...ALL, limit: 5 });
    assert.deepEqual([ids(five.events), five.isTruncated], [['31', '30', '29', '28', '27'], true]);
    assert.equal((await b.findEvents({ ...ALL, limit: 33 })).isTruncated, false);
    assert.equal((await b.findEvents({ ...ALL, limit: 32 })).isTruncated, true);
    assert.equal((await b.findEvents({ ...ALL, limit: 34 })).events.length, 33);

    // the hint narrows in SQL; the full filter (a JS-only condition) still decides
    const blockWith1 = filter(".e.system 'block' STRCMP + msg has a 1", (e) => e.system === 'block' && e.msg.includes('1'), { equals: { system: 'block' } });
    assert.deepEqual(ids((await b.findEvents({ ...ALL, filter: blockWith1 })).events), ['18', '16', '14', '12', '10']);
    const lim = await b.findEvents({ ...ALL, filter: blockWith1, limit: 2, newest: at(17) });
    assert.deepEqual([ids(lim.events), lim.isTruncated], [['16', '14'], true]);
    // no hints at all: everything comes from SQL and the filter does the work
    const odd3 = filter('n % 3', (e) => Number(e.extentions.n) % 3 === 0);
    assert.deepEqual(ids((await b.findEvents({ ...ALL, filter: odd3, oldest: at(20) })).events), ['30', '27', '24', '21']);
    // ERROR is not a match
    const errs = filter('errors on odd', (e) => (Number(e.extentions.n) % 2 === 1 ? 'ERROR' : Number(e.extentions.n) >= 26));
    assert.deepEqual(ids((await b.findEvents({ ...ALL, filter: errs })).events), ['30', '28', '26', '32']);
    // several equality hints and timestamp bounds push down together
    const hinted = filter('hinted', () => true, { equals: { hostname: 'node-0', dev_wwid: 'naa.0' }, timestampMin: BASE_US / 1e6 });
    assert.deepEqual(ids((await b.findEvents({ ...ALL, filter: hinted })).events), ['24', '12', '0']);
    const hintedOut = filter('hinted out', () => true, { timestampMax: BASE_US / 1e6 - 11 });
    assert.deepEqual((await b.findEvents({ ...ALL, filter: hintedOut })).events, []);
    assert.deepEqual(b.health(), { ok: true });
  });

  it('equal times come newest-inserted first, across id lengths and pages', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_ties' });
    await b.start();
    // ids 1…1205 in one time: 9 < 10 < 100 < 1000 must order as numbers, and a page boundary falls inside the tie
    const n = 1205;
    await b.persist(Array.from({ length: n }, (_, i) => mkEvent(i, {}, BASE_US)));
    const want = Array.from({ length: n }, (_, i) => String(n - 1 - i));
    assert.deepEqual(ids((await b.findEvents(ALL)).events), want);
    const everyOther = filter('even', (e) => Number(e.extentions.n) % 2 === 0);
    assert.deepEqual(ids((await b.findEvents({ ...ALL, filter: everyOther, limit: 700 })).events), want.filter((x) => Number(x) % 2 === 0).slice(0, 700));
  });

  it('findEvents pages through many rows with bounded pages', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_pages' });
    await b.start();
    const n = 4500;
    await b.persist(Array.from({ length: n }, (_, i) => mkEvent(i)));
    const every7 = filter('every 7th', (e) => Number(e.extentions.n) % 7 === 0);
    const r = await b.findEvents({ ...ALL, filter: every7 });
    const want = Array.from({ length: n }, (_, i) => n - 1 - i).filter((i) => i % 7 === 0).map(String);
    assert.deepEqual(ids(r.events), want);
    const r2 = await b.findEvents({ ...ALL, filter: every7, limit: 300 });
    assert.deepEqual([ids(r2.events), r2.isTruncated], [want.slice(0, 300), true]);
    const r3 = await b.findEvents({ ...ALL, limit: 2000 });
    assert.deepEqual(ids(r3.events), Array.from({ length: 2000 }, (_, i) => String(n - 1 - i)));
    // a filter that matches nothing reads everything and returns nothing
    assert.deepEqual(await b.findEvents({ ...ALL, filter: filter('none', () => false), limit: 10 }), { events: [], isTruncated: false });
  });

  it('replaying a batch stores each (event_id, event_type) once', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_replay', BatchSize: 40 });
    await b.start();
    const batch = Array.from({ length: 100 }, (_, i) => mkEvent(i));
    await b.persist(batch);
    await b.persist(batch);
    await b.persist([...batch.slice(50), ...Array.from({ length: 50 }, (_, i) => mkEvent(100 + i))]);
    // duplicates inside one batch too
    await b.persist([mkEvent(200), mkEvent(200), mkEvent(200)]);
    // a synthetic event shares its raw record's id with another type: a different row
    await b.persist([mkEvent(0, { event_type: 'SCSI_CMD_FAILED' })]);
    const rows = await srv().query<{ n: string }>('SELECT count(*) AS n FROM t_replay');
    assert.equal(rows[0]?.n, '152');
    const keys = await srv().query<{ n: string }>('SELECT count(DISTINCT (event_id, event_type)) AS n FROM t_replay');
    assert.equal(keys[0]?.n, '152');
    assert.equal((await b.findEvents(ALL)).events.length, 152);
  });

  it('extentions are jsonb, queryable, and odd text survives', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_jsonb' });
    await b.start();
    const odd = 'quote " backslash \\ braces {a,b} NULL comma, tab\t newline\n ü 💥';
    await b.persist([
      mkEvent(1),
      mkEvent(2),
      mkEvent(3, { msg: odd, dev_name: 'NULL', extentions: { timestamp_us: String(BASE_US + 3000), odd, n: '3', 'key "q"': '{}' } }),
      mkEvent(4, { msg: 'nul\u0000here', extentions: { timestamp_us: String(BASE_US + 4000), n: '4', nul: 'a\u0000b', text: 'not a NUL: \\u0000' } }),
    ]);
    const reads = await srv().query<{ n: string }>("SELECT extentions->>'n' AS n FROM t_jsonb WHERE extentions->>'op' = 'READ' ORDER BY id");
    assert.deepEqual(reads.map((r) => r.n), ['1']);
    const contains = await srv().query<{ n: string }>(`SELECT extentions->>'n' AS n FROM t_jsonb WHERE extentions @> '{"op": "WRITE"}' ORDER BY id`);
    assert.deepEqual(contains.map((r) => r.n), ['2']);
    const types = await srv().query<{ t: string }>('SELECT DISTINCT jsonb_typeof(extentions) AS t FROM t_jsonb');
    assert.deepEqual(types.map((r) => r.t), ['object']);
    const evs = (await b.findEvents(ALL)).events;
    const e3 = evs.find((e) => e.extentions.n === '3');
    assert.equal(e3?.msg, odd);
    assert.equal(e3?.dev_name, 'NULL');
    assert.deepEqual(e3?.extentions, { timestamp_us: String(BASE_US + 3000), odd, n: '3', 'key "q"': '{}' });
    // NUL cannot be stored: it becomes U+FFFD instead of failing the batch forever
    const e4 = evs.find((e) => e.extentions.n === '4');
    assert.equal(e4?.msg, 'nul\uFFFDhere');
    assert.equal(e4?.extentions.nul, 'a\uFFFDb');
    assert.equal(e4?.extentions.text, 'not a NUL: \\u0000');
  });

  it('connection string from a file and from the environment', async (t) => {
    if (!requirePostgres(t)) return;
    const f = path.join(srv().baseDir, 'pg-url');
    await writeFile(f, `${srv().url}\n`, { mode: 0o600 });
    const fromFile = backend({ ConnectionStringFile: f, Table: 't_sources' });
    await fromFile.start();
    await fromFile.persist([mkEvent(1)]);
    const fromEnv = backend({ Table: 't_sources' }, { PERIPETY_PG_URL: srv().url });
    await fromEnv.start();
    await fromEnv.persist([mkEvent(2)]);
    const named = backend({ ConnectionStringEnv: 'OTHER_PG', Table: 't_sources' }, { OTHER_PG: srv().url });
    await named.start();
    assert.equal((await named.findEvents(ALL)).events.length, 2);
  });

  it('wrong password or database: start rejects, without the password', async (t) => {
    if (!requirePostgres(t)) return;
    const wrong = 'Wr0ng-Secret:@/%-pass';
    const b = backend({ ConnectionString: srv().urlFor('postgres', wrong), Table: 't_auth' });
    const msg = await rejection(b.start());
    assert.match(msg, /password authentication failed/);
    assert.match(msg, /127\.0\.0\.1:\d+\/postgres as peripety/);
    for (const s of [wrong, encodeURIComponent(wrong), srv().password, encodeURIComponent(srv().password)]) assert.ok(!msg.includes(s), msg);
    const noDb = backend({ ConnectionString: srv().urlFor('no_such_db'), Table: 't_auth' });
    assert.match(await rejection(noDb.start()), /database "no_such_db" does not exist/);
    assert.equal(noDb.health().ok, false);
  });

  it('survives the server going away: persist rejects in time, works again after restart (same instance)', async (t) => {
    if (!requirePostgres(t)) return;
    const b = backend({ ConnectionString: srv().url, Table: 't_outage', ConnectTimeoutMs: 1000, StatementTimeoutMs: 1000, PoolSize: 2 });
    await b.start();
    await b.persist([mkEvent(1), mkEvent(2)]);

    await srv().stop();
    let t0 = Date.now();
    const msg = await rejection(b.persist([mkEvent(3)]));
    assert.ok(Date.now() - t0 < 5000, `rejected after ${Date.now() - t0} ms`);
    assert.match(msg, /cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/postgres as peripety/);
    const h = b.health();
    assert.equal(h.ok, false);
    assert.ok(h.detail && !h.detail.includes(srv().password) && !h.detail.includes(encodeURIComponent(srv().password)));
    await rejection(b.findEvents(ALL));

    await srv().start();
    await b.persist([mkEvent(3), mkEvent(4)]);
    assert.deepEqual(b.health(), { ok: true });
    assert.deepEqual(ids((await b.findEvents(ALL)).events), ['4', '3', '2', '1']);

    // a frozen server (accepts TCP, never answers) must not hang persist either
    await srv().pause();
    try {
      t0 = Date.now();
      await rejection(b.persist([mkEvent(5)]));
      const first = Date.now() - t0;
      t0 = Date.now();
      await rejection(b.persist([mkEvent(5)]));
      const second = Date.now() - t0;
      t.diagnostic(`frozen server: persist rejected after ${first} ms (pooled connection) and ${second} ms (new connection)`);
      assert.ok(first < 6000 && second < 6000, `${first} ms, ${second} ms`);
      assert.equal(b.health().ok, false);
    } finally {
      await srv().resume();
    }
    await b.persist([mkEvent(5)]);
    assert.equal((await b.findEvents(ALL)).events.length, 5);
    assert.deepEqual(b.health(), { ok: true });
  });

  it('start while the server is down resolves; the table appears when it is back', async (t) => {
    if (!requirePostgres(t)) return;
    await srv().stop();
    try {
      const b = backend({ ConnectionString: srv().url, Table: 't_late', ConnectTimeoutMs: 1000, StatementTimeoutMs: 1000 });
      await b.start();
      assert.equal(b.health().ok, false);
      await rejection(b.persist([mkEvent(1)]));
      await srv().start();
      await b.persist([mkEvent(1)]);
      assert.deepEqual(ids((await b.findEvents(ALL)).events), ['1']);
      assert.deepEqual(b.health(), { ok: true });
    } finally {
      await srv().start();
    }
  });

  it('no password in any log line or error message', async (t) => {
    if (!requirePostgres(t)) return;
    const pw = srv().password;
    assert.ok(logText.length > 0 && errorTexts.length > 0);
    assert.match(logText, /127\.0\.0\.1:\d+\/postgres as peripety/, 'logs name host, database and user');
    for (const s of [pw, encodeURIComponent(pw), srv().url, 'Wr0ng-Secret']) {
      assert.ok(!logText.includes(s), `log contains a secret: ${s}`);
      for (const e of errorTexts) assert.ok(!e.includes(s), `error contains a secret: ${e}`);
    }
  });
});
