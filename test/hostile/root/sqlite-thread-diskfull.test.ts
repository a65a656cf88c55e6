// A full disk under the sqlite backend's database thread (issue 14): the
// database lives on a real 3 MiB tmpfs that a filler file fills up. A batch
// that cannot be written is rejected with SQLite's own reason (the storage
// worker spools it), nothing of it is stored, the thread stays up (no
// restart, no backoff), and once space is back the same batch is stored
// once. Does not touch /dev/kmsg.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { SqliteConfig } from '../../../src/storage/backends/options.ts';
import { SqliteBackend } from '../../../src/storage/backends/sqlite.ts';
import { isRoot } from '../../helpers/faults.ts';
import { context, evs } from '../../unit/storage/backends/events.ts';

const mounts: string[] = [];
after(() => {
  for (const m of mounts.reverse()) {
    spawnSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
});

/** Write 64 KiB chunks until the file system refuses: the space left is then (nearly) none. */
function fill(file: string): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let data = Buffer.alloc(0);
  for (;;) {
    try {
      writeFileSync(file, chunk, { flag: 'a' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
      throw err;
    }
    data = chunk;
  }
  // and the last few KiB
  for (const size of [4096, 512]) {
    try {
      for (;;) writeFileSync(file, data.subarray(0, size), { flag: 'a' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
}

function count(file: string): number {
  const peek = new DatabaseSync(file, { readOnly: true });
  try {
    return Number(peek.prepare('SELECT count(*) AS n FROM events').get()!.n);
  } finally {
    peek.close();
  }
}

describe('hostile: sqlite database thread on a full disk', { skip: !isRoot() && 'NOT ROOT: needs mount' }, () => {
  it('rejects the batch with SQLite\'s reason, keeps the thread, and stores the batch once when space is back', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-sqlite-full-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, `mount: ${r.stderr}`);
    mounts.push(dir);
    const b = new SqliteBackend('local', SqliteConfig.parse({ MaxAgeDays: 36_500 }), context(dir));
    await b.start();
    try {
      await b.persist(evs(0, 100));
      const filler = path.join(dir, 'filler');
      fill(filler);
      const batch = evs(100, 3100);
      const err = await b.persist(batch).then(() => null, (e: unknown) => e as Error);
      assert.ok(err !== null, 'a batch of 3000 events cannot fit in no space');
      assert.match(err.message, /^sqlite backend local: insert failed: .*(full|disk).*\(SQLite code 13\)/);
      assert.equal(b.health().ok, false);
      assert.equal(count(b.path), 100, 'the failed batch was rolled back whole');
      rmSync(filler);
      // the same thread takes the retry at once (it did not die: no restart backoff)
      await b.persist(batch);
      assert.equal(count(b.path), 3100);
      assert.equal(b.rowCount, 3100);
      assert.deepEqual(b.health(), { ok: true });
    } finally {
      await b.shutdown();
    }
  });
});
