import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { RETENTION_CHUNK, SqliteBackend, buildQuery, sqliteBackend } from '../../../../src/storage/backends/sqlite.ts';
import { SqliteConfig } from '../../../../src/storage/backends/options.ts';
import { backendContract } from './contract.ts';
import { DAY, SEC, context, ev, evs, ids, tempDir, type TempDir, configIssues } from './events.ts';
import { predicateFilter, systemIs } from './filters.ts';

const all = { filter: null, newest: 0, oldest: 0, limit: 0 };

backendContract(
  'sqlite',
  () => {
    const t = tempDir();
    return { make: () => sqliteBackend.build('db', SqliteConfig.parse({ MaxAgeDays: 36_500 }), context(t.dir)), cleanup: t.cleanup };
  },
  { persistent: true },
);

const issues = (input: unknown): string[] => configIssues(SqliteConfig, input);

describe('sqlite: configuration', () => {
  it('has defaults, also when Config is left out', () => {
    const d = { MaxAgeDays: 30, MaxRows: 5_000_000, Synchronous: 'NORMAL', ReadOnly: false };
    assert.deepEqual(SqliteConfig.parse({}), d);
    assert.deepEqual(SqliteConfig.parse(undefined), d);
    assert.deepEqual(SqliteConfig.parse({ Path: '/var/lib/x.db', Synchronous: 'FULL' }), { ...d, Path: '/var/lib/x.db', Synchronous: 'FULL' });
  });
  it('rejects bad values with clear messages', () => {
    assert.deepEqual(issues({ MaxAgeDays: 0 }), ['MaxAgeDays: MaxAgeDays must be from 1 to 36500 (days)']);
    assert.deepEqual(issues({ MaxRows: -1 }), ['MaxRows: MaxRows must be from 1 to 1000000000 (rows)']);
    assert.deepEqual(issues({ MaxRows: 1.5 }), ['MaxRows: MaxRows must be a whole number (rows)']);
    assert.deepEqual(issues({ Synchronous: 'OFF' }), ['Synchronous: Synchronous must be "NORMAL" or "FULL"']);
    assert.deepEqual(issues({ Path: '' }), ['Path: Path must not be empty']);
    assert.deepEqual(issues({ Path: 7 }), ['Path: Path must be a file path']);
    assert.match(issues({ MaxAge: 3 })[0]!, /Unrecognized key.*MaxAge/);
  });
});

describe('sqlite: database', () => {
  let t: TempDir;
  let b: SqliteBackend | null = null;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await b?.shutdown();
    b = null;
    t.cleanup();
  });
  // the fixed test times are long past: no age retention unless a test asks for it
  const open = async (cfg: object = {}) => {
    b = new SqliteBackend('db', SqliteConfig.parse({ MaxAgeDays: 36_500, ...cfg }), context(t.dir));
    await b.start();
    return b;
  };

  it('creates <stateDir>/events.db in WAL mode with the schema, its indexes and a version', async () => {
    const db = await open();
    assert.equal(db.path, path.join(t.dir, 'events.db'));
    await db.persist(evs(0, 3));
    assert.ok(existsSync(path.join(t.dir, 'events.db-wal')));
    const peek = new DatabaseSync(db.path, { readOnly: true });
    try {
      assert.equal(peek.prepare('PRAGMA journal_mode').get()!.journal_mode, 'wal');
      assert.equal(peek.prepare('PRAGMA user_version').get()!.user_version, 1);
      const cols = peek.prepare('PRAGMA table_info(events)').all().map((c) => c.name);
      assert.deepEqual(cols, ['time_us', 'timestamp', 'hostname', 'severity', 'system', 'event_type', 'event_id', 'dev_wwid', 'dev_name', 'msg', 'extentions']);
      const idx = peek.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name").all().map((r) => r.name);
      assert.deepEqual(idx, ['events_host_time', 'events_system_time', 'events_time', 'events_type_time', 'events_wwid_time']);
      const row = peek.prepare('SELECT * FROM events WHERE event_id = ?').get(ev(1).event_id)!;
      assert.equal(row.time_us, ev(1).timestamp * SEC);
      assert.deepEqual(JSON.parse(String(row.extentions)), ev(1).extentions);
    } finally {
      peek.close();
    }
  });

  it('puts a relative Path under the state directory and creates its directory', async () => {
    const db = await open({ Path: 'sub/dir/x.db' });
    assert.equal(db.path, path.join(t.dir, 'sub/dir/x.db'));
    assert.ok(existsSync(db.path));
  });

  it('pushes the time range and hint equalities into an index walked newest first', () => {
    const peekDb = new DatabaseSync(':memory:');
    try {
      peekDb.exec(`CREATE TABLE events (time_us INTEGER, timestamp INTEGER, hostname TEXT, severity TEXT, system TEXT, event_type TEXT,
        event_id TEXT, dev_wwid TEXT, dev_name TEXT, msg TEXT, extentions TEXT, UNIQUE (event_id, event_type));
        CREATE INDEX events_time ON events (time_us); CREATE INDEX events_system_time ON events (system, time_us);
        CREATE INDEX events_type_time ON events (event_type, time_us); CREATE INDEX events_wwid_time ON events (dev_wwid, time_us);
        CREATE INDEX events_host_time ON events (hostname, time_us);`);
      const plan = (newest: number, oldest: number, hints: object) => {
        const q = buildQuery(newest, oldest, hints);
        return peekDb.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.params).map((r) => String(r.detail)).join(' | ');
      };
      assert.match(plan(0, 0, {}), /SCAN events USING INDEX events_time/);
      assert.match(plan(5, 1, {}), /SEARCH events USING INDEX events_time \(time_us>\? AND time_us<\?\)/);
      assert.match(plan(5, 1, { equals: { system: 'block' } }), /USING INDEX events_system_time \(system=\? AND time_us>\? AND time_us<\?\)/);
      assert.match(plan(0, 0, { equals: { event_type: 'X' } }), /USING INDEX events_type_time \(event_type=\?\)/);
      assert.match(plan(0, 0, { equals: { dev_wwid: 'X' } }), /USING INDEX events_wwid_time/);
      assert.match(plan(0, 0, { equals: { hostname: 'X' } }), /USING INDEX events_host_time/);
      for (const h of [{}, { equals: { system: 'block' } }, { equals: { hostname: 'h' } }]) {
        assert.doesNotMatch(plan(5, 1, h), /TEMP B-TREE/, 'no sort: the index gives the order');
      }
    } finally {
      peekDb.close();
    }
  });

  it('stops reading rows once limit+1 rows matched, however few match', async () => {
    const db = await open();
    await db.persist(evs(0, 300));
    const every = predicateFilter('1 1 EQ', () => true);
    const r = await db.findEvents({ ...all, filter: every, limit: 5 });
    assert.deepEqual(ids(r.events), [299, 298, 297, 296, 295]);
    assert.equal(r.isTruncated, true);
    assert.equal(every.calls, 6);
    // a filter that rejects most rows: reading continues until enough matched
    const rare = predicateFilter('rare', (e) => Number(e.extentions.kmsg_seq) % 50 === 0);
    const r2 = await db.findEvents({ ...all, filter: rare, limit: 2 });
    assert.deepEqual(ids(r2.events), [250, 200]);
    assert.equal(rare.calls, 150, 'read rows 299 down to 150, the third match');
    const block = systemIs('block');
    await db.findEvents({ ...all, filter: block, limit: 1 });
    assert.equal(block.calls, 2, 'only block rows reach the filter');
  });

  it('deletes rows older than MaxAgeDays and the oldest beyond MaxRows', async () => {
    const now = Date.now() * 1000;
    const db = await open({ MaxAgeDays: 7, MaxRows: 10 });
    await db.persist(evs(0, 5, (i) => ({ timeUs: now - (20 - i) * DAY }))); // 16-20 days old
    await db.persist(evs(5, 25, (i) => ({ timeUs: now - DAY + i * SEC })));
    const r = await db.runRetention();
    assert.deepEqual(r, { byAge: 5, byRows: 10 });
    assert.equal(db.rowCount, 10);
    assert.deepEqual(ids((await db.findEvents(all)).events), [24, 23, 22, 21, 20, 19, 18, 17, 16, 15]);
    assert.deepEqual(await db.runRetention(), { byAge: 0, byRows: 0 });
  });

  it('trims beyond MaxRows by itself after a batch, in chunks', async () => {
    const db = await open({ MaxRows: 100 });
    await db.persist(evs(0, 100 + RETENTION_CHUNK + 50));
    for (let i = 0; i < 200 && db.rowCount > 100; i++) await new Promise((r) => setImmediate(r));
    assert.equal(db.rowCount, 100);
    const got = await db.findEvents({ ...all, limit: 0 });
    assert.equal(got.events.length, 100);
    assert.equal(ids(got.events).at(-1), RETENTION_CHUNK + 50);
  });

  it('counts existing rows after a restart', async () => {
    let db = await open({ MaxRows: 10 });
    await db.persist(evs(0, 8));
    await db.shutdown();
    db = await open({ MaxRows: 10 });
    assert.equal(db.rowCount, 8);
    await db.persist(evs(8, 12));
    await db.runRetention();
    assert.deepEqual(ids((await db.findEvents(all)).events), [11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
  });

  it('refuses a database from a newer schema, or a foreign one, with a clear message', async () => {
    const p = path.join(t.dir, 'events.db');
    let raw = new DatabaseSync(p);
    raw.exec('PRAGMA user_version = 9');
    raw.close();
    await assert.rejects(open(), /schema version 9 is newer than this agent's \(1\)/);
    const q = path.join(t.dir, 'other.db');
    raw = new DatabaseSync(q);
    raw.exec('CREATE TABLE events (x)');
    raw.close();
    await assert.rejects(open({ Path: q }), /events table without a schema version/);
  });

  it('rejects with a clear message when the file cannot be opened', async () => {
    writeFileSync(path.join(t.dir, 'plain'), '');
    await assert.rejects(open({ Path: 'plain/events.db' }), /sqlite backend db: cannot open .*\/plain\/events\.db: /);
    // procfs refuses mkdir with ENOENT: must fail, not spin
    await assert.rejects(open({ Path: '/proc/peripety-test/events.db' }), /cannot open \/proc\/peripety-test\/events\.db/);
  });

  it('opens read-only for queries beside a writer', async () => {
    const w = await open({ Synchronous: 'FULL' });
    await w.persist(evs(0, 4));
    const r = new SqliteBackend('ro', SqliteConfig.parse({ ReadOnly: true }), context(t.dir));
    await r.start();
    try {
      assert.deepEqual(ids((await r.findEvents(all)).events), [3, 2, 1, 0]);
      await w.persist(evs(4, 5));
      assert.deepEqual(ids((await r.findEvents({ ...all, limit: 1 })).events), [4]);
      await assert.rejects(r.persist(evs(5, 6)), /not writable/);
    } finally {
      await r.shutdown();
    }
    const missing = new SqliteBackend('ro', SqliteConfig.parse({ ReadOnly: true, Path: 'none.db' }), context(t.dir));
    await assert.rejects(missing.start(), /cannot open/);
  });

  it('rolls back a failing batch whole, and reports health', async () => {
    const db = await open();
    await db.persist(evs(0, 2));
    const bad = { ...ev(5), msg: undefined as unknown as string };
    await assert.rejects(db.persist([ev(3), ev(4), bad]));
    assert.equal(db.health().ok, false);
    assert.deepEqual(ids((await db.findEvents(all)).events), [1, 0]);
    await db.persist([ev(3)]);
    assert.deepEqual(db.health(), { ok: true });
  });
});
