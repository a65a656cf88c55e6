// A database file that is not a database any more (random bytes, a torn
// header after a disk fault) must not keep the agent from starting: it is
// renamed aside as <file>.corrupt-<timestamp> (with its -wal and -shm), so a
// fresh one can be created, and the evidence stays for whoever investigates.
// Only the newest few are kept: a disk that corrupts every file must not
// fill up with copies.
import { readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

export const KEEP_CORRUPT = 3;

/** SQLite's "file is not a database" / "database disk image is malformed" (what a fresh file would cure). */
export function isCorruptDatabaseError(err: unknown): boolean {
  const e = err as { errcode?: unknown; code?: unknown; message?: unknown };
  // node:sqlite sets errcode to the SQLite result code: 26 SQLITE_NOTADB, 11 SQLITE_CORRUPT
  const code = typeof e.errcode === 'number' ? e.errcode & 0xff : -1;
  if (code === 26 || code === 11) return true;
  return typeof e.message === 'string' && /file is not a database|database disk image is malformed/.test(e.message);
}

/**
 * Rename `file` (and its -wal/-shm) to `<file>.corrupt-<timestamp>` and
 * delete all but the newest KEEP_CORRUPT such copies. Returns the new name.
 */
export function quarantineCorrupt(file: string, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const aside = `${file}.corrupt-${stamp}`;
  renameSync(file, aside);
  for (const suffix of ['-wal', '-shm']) {
    try {
      renameSync(`${file}${suffix}`, `${aside}${suffix}`);
    } catch {
      // absent: nothing to move
    }
  }
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.corrupt-`;
  const copies = readdirSync(dir).filter((n) => n.startsWith(prefix) && !n.endsWith('-wal') && !n.endsWith('-shm')).sort();
  for (const old of copies.slice(0, Math.max(0, copies.length - KEEP_CORRUPT))) {
    for (const suffix of ['', '-wal', '-shm']) rmSync(path.join(dir, `${old}${suffix}`), { force: true });
  }
  return aside;
}
