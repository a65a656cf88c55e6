// What a storage backend's files hold, read the way a user would (the sqlite
// backend read-only, jsonl files line by line), for tests that check what an
// agent stored. A missing file or directory holds nothing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { StorageEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { sqliteBackend } from '../../src/storage/backends/sqlite.ts';

/** Every event in the sqlite database `file` (opened read-only). */
export async function sqliteEvents(file: string): Promise<StorageEvent[]> {
  if (!existsSync(file)) return [];
  const b = sqliteBackend.build('test', sqliteBackend.options.parse({ Path: file, ReadOnly: true }), {
    log: silentLogger(), stateDir: path.dirname(file), hostname: 'test', env: {},
  });
  await b.start();
  try {
    return (await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events;
  } finally {
    await b.shutdown();
  }
}

/**
 * Every event in the *.jsonl files of `dir`, in file-name order. A line that
 * does not parse (cut by a kill or by ENOSPC) was never acknowledged: skipped.
 */
export function jsonlEvents(dir: string): StorageEvent[] {
  const out: StorageEvent[] = [];
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as StorageEvent);
      } catch {
        // a torn line: not stored
      }
    }
  }
  return out;
}
