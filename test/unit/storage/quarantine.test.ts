// A corrupt database moved aside: renamed with its -wal/-shm, at most
// KEEP_CORRUPT copies kept; and which SQLite errors count as corrupt.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCorruptDatabaseError, KEEP_CORRUPT, quarantineCorrupt } from '../../../src/storage/quarantine.ts';

describe('quarantineCorrupt', () => {
  it('renames the file with its -wal and -shm, and keeps only the newest copies', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-quarantine-'));
    const file = path.join(dir, 'events.db');
    const names: string[] = [];
    for (let i = 0; i < KEEP_CORRUPT + 2; i++) {
      writeFileSync(file, `bad ${i}`);
      writeFileSync(`${file}-wal`, 'wal');
      writeFileSync(`${file}-shm`, 'shm');
      names.push(path.basename(quarantineCorrupt(file, new Date(Date.UTC(2026, 0, 1, 0, 0, i)))));
      assert.equal(existsSync(file), false);
      assert.equal(existsSync(`${file}-wal`), false);
    }
    const left = readdirSync(dir).sort();
    const kept = names.slice(-KEEP_CORRUPT);
    assert.deepEqual(left, kept.flatMap((n) => [n, `${n}-shm`, `${n}-wal`]).sort());
    assert.match(kept[0]!, /^events\.db\.corrupt-2026-01-01T00-00-02-000Z$/);
  });

  it('knows SQLITE_NOTADB and SQLITE_CORRUPT, nothing else', () => {
    assert.equal(isCorruptDatabaseError(Object.assign(new Error('file is not a database'), { errcode: 26 })), true);
    assert.equal(isCorruptDatabaseError(Object.assign(new Error('database disk image is malformed'), { errcode: 11 })), true);
    assert.equal(isCorruptDatabaseError(Object.assign(new Error('database or disk is full'), { errcode: 13 })), false);
    assert.equal(isCorruptDatabaseError(new Error('database schema version 9 is newer than this agent\'s (1)')), false);
  });
});
