// `prpt query` against a real sqlite file written by the sqlite backend, and
// its errors: one clear line, the right exit code, no stack trace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { sqliteBackend } from '../../src/storage/backends/sqlite.ts';
import { ROOT } from '../helpers/agent.ts';

function prpt(args: string[], env: NodeJS.ProcessEnv = { PERIPETY_TOKEN: 'a-token-of-sixteen-plus' }) {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin', 'prpt'), 'query', ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
}

const NOW_S = Math.floor(Date.now() / 1000);

function ev(i: number, system: 'block' | 'fs', ageS: number): StorageEvent {
  const ts = NOW_S - ageS;
  return {
    hostname: 'node-a', severity: system === 'block' ? 'error' : 'warn', system, timestamp: ts,
    event_id: `00000000-0000-5000-8000-${String(i).padStart(12, '0')}`, event_type: system === 'block' ? 'BLK_IO_ERROR' : 'FS_WARNING',
    dev_wwid: '', dev_name: system === 'block' ? 'sdb' : 'sdb1', msg: `event ${i}`,
    extentions: { n: String(i), op: 'READ', timestamp_us: String(ts * 1_000_000) },
  };
}

describe('prpt query --sqlite', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-query-'));
  const db = path.join(dir, 'events.db');
  before(async () => {
    const b = sqliteBackend.build('t', sqliteBackend.options.parse({ Path: db }), { log: silentLogger(), stateDir: dir, hostname: 'node-a', env: {} });
    await b.start();
    // 40 events, one every 10 minutes back from now, alternating systems
    await b.persist(Array.from({ length: 40 }, (_, i) => ev(i, i % 2 === 0 ? 'block' : 'fs', (40 - i) * 600)));
    await b.shutdown();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('filters by system and time, newest first, as JSON lines', () => {
    const r = prpt(['--sqlite', db, '--filter', ".event.system 'block' STRCMP", '--since', '2h', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const got = r.stdout.trim().split('\n').map((l) => StorageEvent.parse(JSON.parse(l)));
    // within the last 2 h: ages 600..7200 s → i = 28..39 (age 7200 s is i=28, exclusive bound: --since is oldest, exclusive)
    assert.deepEqual(got.map((e) => e.extentions.n), ['38', '36', '34', '32', '30']);
    assert.ok(got.every((e) => e.system === 'block'));
  });
  it('says when --limit cut the answer', () => {
    const r = prpt(['--sqlite', db, '--limit', '3']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 3);
    assert.match(r.stdout, /event 39/);
    assert.match(r.stderr, /more events match; showing the newest 3/);
  });
  it('--limit 0 gives everything', () => {
    const r = prpt(['--sqlite', db, '--limit', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 40);
  });
  const bad: [string, string[], number, RegExp][] = [
    ['a broken filter names position and token', ['--sqlite', db, '--filter', '.event.system 1 EQ'], 2, /^prpt: --filter: .*position 16, token "EQ"/],
    ['an unknown time', ['--sqlite', db, '--since', 'last tuesday'], 2, /^prpt: --since: "last tuesday" is not a time/],
    ['a bad limit', ['--sqlite', db, '--limit', 'many'], 2, /^prpt: --limit: "many" is not a non-negative integer/],
    ['both sources', ['--sqlite', db, '--agent', 'http://127.0.0.1:9477'], 2, /^prpt: --agent and --sqlite exclude each other/],
    ['a missing file', ['--sqlite', path.join(dir, 'nope.db')], 1, /^prpt: no such file: /],
    ['until before since', ['--sqlite', db, '--since', '1h', '--until', '2h'], 2, /^prpt: --since must be before|oldest must be before newest/],
    ['not a token', ['--agent', 'http://127.0.0.1:9', '--token-file', db], 1, /^prpt: .*events\.db does not hold an API token/],
    ['no agent there', ['--agent', 'http://127.0.0.1:40123'], 1, /^prpt: cannot reach the agent at http:\/\/127\.0\.0\.1:40123: ECONNREFUSED/],
    ['no token file', ['--agent', 'http://127.0.0.1:9', '--token-file', path.join(dir, 'no-token')], 1, /^prpt: cannot read the API token .*ENOENT/],
  ];
  for (const [name, args, code, want] of bad) {
    it(name, () => {
      const r = prpt(args);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});

describe('prpt query --agent', () => {
  it('sends the token and prints what the agent answers', async () => {
    const { createServer } = await import('node:http');
    const seen: { auth?: string; url?: string }[] = [];
    const server = createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, url: req.url });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ events: [ev(7, 'fs', 60)], isTruncated: false }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-query-agent-'));
    try {
      const token = path.join(dir, 'token');
      writeFileSync(token, 'a-token-of-sixteen-plus\n');
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        // async spawn: the server runs in this process
        import('node:child_process').then(({ execFile }) => {
          execFile(process.execPath, [path.join(ROOT, 'bin', 'prpt'), 'query', '--agent', `http://127.0.0.1:${port}`, '--token-file', token, '--filter', ".e.system 'fs' STRCMP", '--since', '1700000000'], (err, stdout, stderr) => {
            resolve({ status: err ? (err.code as number) : 0, stdout, stderr });
          });
        });
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /FS_WARNING sdb1: event 7/);
      assert.equal(seen[0]!.auth, 'Bearer a-token-of-sixteen-plus');
      const q = new URL(seen[0]!.url!, 'http://x').searchParams;
      assert.equal(q.get('filter'), ".e.system 'fs' STRCMP");
      assert.equal(q.get('oldest'), '1700000000000000');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
