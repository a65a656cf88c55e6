// Issue 10 C13: a full disk loses nothing the kernel still holds. The event
// files and the spool of a backend share a small real tmpfs (5 MiB) that
// fills up; the saved kmsg position lives elsewhere. The agent reads a few
// hundred unique kernel lines while nothing can be written, and is restarted
// (SIGTERM) before space comes back: what it held in memory is dropped. That
// used to move the saved position past those records, so the restarted agent
// never stored them although the kernel ring still held every one. Now the
// position stays before the first record a must-not-lose backend dropped,
// and after space is freed the restart stores every line exactly once.
//
// The ring is small (128 KiB here) and shared with other tests: 150 lines of
// ~70 bytes stay far below it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { sqliteBackend } from '../../../src/storage/backends/sqlite.ts';
import { type AgentProcess, startAgent } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';

const running: AgentProcess[] = [];
const mounts: string[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
});

const LINES = 150;

function config(start: 'end' | 'resume'): string {
  return `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false

[kmsg]
type = "collector"
start = "${start}"
accept_user_facility = true

[mdraid]
type = "parser"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`;
}

async function sqliteEvents(file: string): Promise<StorageEvent[]> {
  if (!existsSync(file)) return [];
  const b = sqliteBackend.create('test', sqliteBackend.configSchema.parse({ Path: file, ReadOnly: true }), {
    log: silentLogger(), stateDir: path.dirname(file), hostname: 'test', env: {},
  });
  await b.start();
  try {
    return (await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events;
  } finally {
    await b.shutdown();
  }
}

function jsonlEvents(dir: string): StorageEvent[] {
  const out: StorageEvent[] = [];
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as StorageEvent);
      } catch {
        // a line cut short by ENOSPC: not stored
      }
    }
  }
  return out;
}

/** How often each of our devices is stored. */
function counts(evs: StorageEvent[], prefix: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of evs) if (e.dev_name.startsWith(prefix)) m.set(e.dev_name, (m.get(e.dev_name) ?? 0) + 1);
  return m;
}

function mount(args: string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `mount ${args.join(' ')}: ${r.stderr}`);
  mounts.push(args[args.length - 1]!);
}

/** Fill the filesystem of `file` until ENOSPC. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // the last page too
  for (const size of [4096, 512, 64, 1]) {
    try {
      const f = openSync(file, 'a');
      try {
        for (;;) n += writeSync(f, Buffer.alloc(size, 0x61));
      } finally {
        closeSync(f);
      }
    } catch {
      // full at this size
    }
  }
  return n;
}

for (const kind of ['jsonl', 'sqlite'] as const) {
  describe(`hostile: disk full under a ${kind} backend`, { skip: !isRoot() && 'NOT ROOT: needs mount and /dev/kmsg' }, () => {
    it('every line the kernel ring still holds is stored exactly once after space is freed and the agent restarts', async (t) => {
      if (!requireRoot(t, 'needs mount (tmpfs) and to write /dev/kmsg')) return;
      const dir = mkdtempSync(path.join(os.tmpdir(), `prpt-hostile-full-${kind}-`));
      const data = path.join(dir, 'data');
      const stateDir = path.join(dir, 'state');
      mkdirSync(data);
      mkdirSync(path.join(stateDir, 'spool'), { recursive: true, mode: 0o700 });
      // a real 5 MiB tmpfs for the events and the spool; the position file stays on the state directory's disk
      mount(['-t', 'tmpfs', '-o', 'size=5m,mode=0700', 'tmpfs', data]);
      mkdirSync(path.join(data, 'spool'));
      mount(['--bind', path.join(data, 'spool'), path.join(stateDir, 'spool')]);
      const eventsDir = path.join(data, 'events');
      mkdirSync(eventsDir);
      const dbFile = path.join(eventsDir, 'events.db');
      const backend = kind === 'jsonl'
        ? { File: 'jsonl', Run: 'always', Filter: ['1 1 EQ'], Config: { StoragePath: path.join(eventsDir, 'ev-%count%.jsonl') } }
        : { File: 'sqlite', Run: 'always', Filter: ['1 1 EQ'], Config: { Path: dbFile } };
      const storage = path.join(dir, 'storage.json');
      writeFileSync(storage, JSON.stringify({ root: { elos: { EventLogging: { Plugins: { [kind]: backend } } } } }));
      const stored = async (): Promise<StorageEvent[]> => (kind === 'jsonl' ? jsonlEvents(eventsDir) : sqliteEvents(dbFile));

      const a = await startAgent({ config: config('end'), stateDir, args: ['--storage-config', storage] });
      running.push(a);
      // the backend works
      const warm = uniqueDevice('fullw');
      injectKmsg(`md/raid1:${warm}: Disk failure on sdx1, disabling device.`, 2);
      await a.waitFor((e) => e.dev_name === warm);
      for (let i = 0; i < 100 && counts(await stored(), warm).size === 0; i++) await sleep(100);
      assert.equal(counts(await stored(), warm).size, 1, 'the warm-up line is stored');

      const filled = fill(path.join(data, 'filler'));
      t.diagnostic(`filled the tmpfs with ${filled} bytes`);
      const prefix = uniqueDevice('full');
      for (let i = 0; i < LINES; i++) injectKmsg(`md/raid1:${prefix}x${i}: Disk failure on sdx1, disabling device.`, 2);
      // the agent read every line (stdout), and could store none while the disk is full
      await a.waitForCount((e) => e.dev_name.startsWith(prefix), LINES, 15_000);
      await a.waitForLog(/ENOSPC|SQLITE_FULL|database or disk is full|no space/i, 15_000);
      const during = counts(await stored(), prefix).size;
      t.diagnostic(`stored while full: ${during} of ${LINES}`);
      // restart while still full: what the agent holds in memory cannot be written anywhere
      const exit = await a.stop();
      assert.equal(exit.code, 0, 'SIGTERM exits 0');
      const heldLog = /kmsg position held/.test(a.stderr());

      rmSync(path.join(data, 'filler'));
      const b = await startAgent({ config: config('resume'), stateDir, args: ['--storage-config', storage] });
      running.push(b);
      let after = counts(await stored(), prefix);
      for (let i = 0; i < 150 && after.size < LINES; i++) {
        await sleep(100);
        after = counts(await stored(), prefix);
      }
      t.diagnostic(`stored after the restart: ${after.size} of ${LINES} (lost: ${LINES - after.size})`);
      assert.equal(after.size, LINES, `every line is stored after the restart (lost ${LINES - after.size})`);
      const twice = [...after.entries()].filter(([, n]) => n !== 1);
      assert.deepEqual(twice, [], 'each line stored exactly once');
      assert.ok(heldLog, 'the first agent said it held the kmsg position');
      await b.stop();
    });
  });
}
