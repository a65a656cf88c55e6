// The messages between the sqlite backend (main thread, sqlite.ts) and its
// database thread (sqlite-thread.ts). Types and one constant only: the thread
// imports this file, and each import costs RSS in the thread's isolate.
//
// No zod here: both ends are this program, started from the same files, so
// the messages are not a trust boundary (the configuration they carry was
// validated by SqliteConfig on the main thread).

/** values per row in a persist message, in the order of the table's columns */
export const COLUMN_COUNT = 11;

/** workerData: what the thread needs to open its connection */
export interface ThreadStart {
  path: string;
  synchronous: 'NORMAL' | 'FULL';
  columns: readonly string[];
  walCheckpointPages: number;
  cacheKiB: number;
  busyTimeoutMs: number;
}

export type ThreadRequest =
  | { op: 'open'; id: number }
  /** cols: COLUMN_COUNT values per event, row after row */
  | { op: 'persist'; id: number; cols: unknown[]; cutoffUs: number; maxRows: number; chunk: number }
  | { op: 'retain'; id: number; cutoffUs: number; maxRows: number; chunk: number }
  /** test hook (SqliteBackend.injectFault): the next persist kills the thread */
  | { op: 'fault'; id: number; kind: 'exit-before-commit' | 'exit-after-commit' }
  | { op: 'close'; id: number };

export type ThreadReply =
  /** insertMs / commitMs: a persist's time in the thread, inserting and committing (with any WAL checkpoint) */
  | { id: number; ok: true; rows: number; added?: number; byAge?: number; byRows?: number; insertMs?: number; commitMs?: number }
  /** code: SQLite's primary result code when known (13 SQLITE_FULL, 11 SQLITE_CORRUPT, 10 SQLITE_IOERR…) */
  | { id: number; ok: false; error: string; code: number | undefined };
