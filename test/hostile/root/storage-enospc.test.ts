// Issue 10 item 15: jsonl stores every event once, also when a batch hit a
// full disk and is retried. A real 512 KiB tmpfs, nearly filled; a batch of
// two dates (two files): the first file's part fits, the second runs out of
// space. After space is freed the same batch is persisted again (what the
// manager's spool replay does) and every event must be in the files exactly
// once. (On f38c4a7 the first part was stored twice, and so were the lines of
// the second part that had fit.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { jsonlBackend } from '../../../src/storage/backends/jsonl.ts';
import { eventKey } from '../../../src/storage/types.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';

const mnt = mkdtempSync(path.join(os.tmpdir(), 'hostile-enospc-'));
let mounted = false;

function ev(i: number, day: number): StorageEvent {
  return {
    hostname: 'node1', severity: 'error', system: 'scsi', timestamp: 1_700_000_000 + day * 86_400 + i,
    event_id: `enospc-${day}-${i}`, event_type: 'DISK_ERROR', dev_wwid: 'wwid', dev_name: 'sda',
    msg: `event ${i} ${'x'.repeat(400)}`, extentions: {},
  };
}

describe('hostile: jsonl after ENOSPC stores every event once (real tmpfs)', { skip: !isRoot() && 'NOT ROOT: needs mount' }, () => {
  after(() => {
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it('a retried batch leaves no duplicate', async (t) => {
    if (!requireRoot(t)) return;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', mnt]);
    mounted = true;
    const dir = path.join(mnt, 'events');
    const b = jsonlBackend.build('enospc', jsonlBackend.options.parse({ StoragePath: `${dir}/ev-%date%-%count%.jsonl` }), {
      log: silentLogger(), stateDir: mnt, hostname: 'node1', env: {},
    });
    await b.start();
    // leave about 12 KiB free (tmpfs counts 4 KiB pages)
    const filler = path.join(mnt, 'filler');
    let size = 512 * 1024;
    for (;;) {
      try {
        writeFileSync(filler, Buffer.alloc(size));
        break;
      } catch {
        size -= 4096;
      }
    }
    writeFileSync(filler, Buffer.alloc(size - 12 * 1024));
    // day 0: 8 events (~3.5 KiB, fits); day 1: 100 events (~45 KiB, does not)
    const batch = [...Array.from({ length: 8 }, (_, i) => ev(i, 0)), ...Array.from({ length: 100 }, (_, i) => ev(i, 1))];
    await assert.rejects(b.persist(batch), /ENOSPC|no space/i, 'the first attempt must hit the full disk');
    unlinkSync(filler);
    await b.persist(batch);
    await b.shutdown();

    const counts = new Map<string, number>();
    let torn = 0;
    for (const f of readdirSync(dir)) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (line === '') continue;
        try {
          const k = eventKey(JSON.parse(line) as StorageEvent);
          counts.set(k, (counts.get(k) ?? 0) + 1);
        } catch {
          torn++;
        }
      }
    }
    const dup = [...counts.values()].filter((n) => n > 1).length;
    const missing = batch.filter((e) => !counts.has(eventKey(e))).length;
    process.stderr.write(`enospc: ${batch.length} events, ${dup} stored more than once, ${missing} missing, ${torn} torn lines\n`);
    assert.equal(missing, 0, 'nothing may be lost');
    assert.equal(dup, 0, `every event must be stored once (${dup} duplicates)`);
  });
});
