// The options (`Config`) of every built-in backend, and which backends are
// built in: pure (zod only), so that configuration checks (the CRD code, the
// controller) read them without loading a backend (and with it pg or
// node:sqlite). Each backend's factory (memory.ts, jsonl.ts, sqlite.ts,
// postgres.ts) parses with its schema from here.
import path from 'node:path';
import { z } from 'zod';
import type { PluginInfo } from '../../contracts/plugin.ts';

const MiB = 1024 * 1024;

const int = (key: string, min: number, max: number, unit: string) =>
  z
    .number({ error: `${key} must be a number (${unit})` })
    .int({ error: `${key} must be a whole number (${unit})` })
    .min(min, { error: `${key} must be from ${min} to ${max} (${unit})` })
    .max(max, { error: `${key} must be from ${min} to ${max} (${unit})` });

// memory

const MAX_BUFFER_SIZE = 1_000_000;

export const MemoryConfig = z
  .strictObject({
    BufferSize: z
      .number({ error: 'BufferSize must be a number of events' })
      .int({ error: 'BufferSize must be a whole number of events' })
      .min(1, { error: `BufferSize must be from 1 to ${MAX_BUFFER_SIZE} events` })
      .max(MAX_BUFFER_SIZE, { error: `BufferSize must be from 1 to ${MAX_BUFFER_SIZE} events` })
      .default(1000),
  })
  // `Config` may be left out of the plugin entry: every key has a default.
  .prefault({});
export type MemoryConfig = z.infer<typeof MemoryConfig>;

// jsonl

const DEFAULT_STORAGE_PATH = 'events/%host%-%date%-%count%.jsonl';
const PLACEHOLDER = /%[A-Za-z]+%/g;
const KNOWN_PLACEHOLDERS = new Set(['%host%', '%date%', '%count%']);

const storagePath = z
  .string({ error: 'StoragePath must be a path template' })
  .min(1, { error: 'StoragePath must not be empty', abort: true })
  .max(4096, { error: 'StoragePath must be at most 4096 characters' })
  .superRefine((t, ctx) => {
    if (t.includes('\0')) ctx.addIssue({ code: 'custom', message: 'StoragePath must not contain NUL' });
    for (const m of t.match(PLACEHOLDER) ?? []) {
      if (!KNOWN_PLACEHOLDERS.has(m)) {
        ctx.addIssue({ code: 'custom', message: `StoragePath has an unknown placeholder ${m} (known: %host%, %date%, %count%)` });
      }
    }
    if (/%(host|date|count)%/.test(path.dirname(t))) {
      ctx.addIssue({ code: 'custom', message: 'StoragePath placeholders may only appear in the file name, not in the directory' });
    }
    const base = path.basename(t);
    if ((base.match(/%count%/g) ?? []).length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'StoragePath must contain %count% exactly once in the file name (rotated files need distinct names)' });
    }
    if ((base.match(/%date%/g) ?? []).length > 1) {
      ctx.addIssue({ code: 'custom', message: 'StoragePath may contain %date% at most once' });
    }
  });

export const JsonlConfig = z
  .strictObject({
    /** relative templates are under the agent's state directory */
    StoragePath: storagePath.default(DEFAULT_STORAGE_PATH),
    MaxSize: int('MaxSize', 1024, 1024 * 1024 * MiB, 'bytes').default(64 * MiB),
    MaxFiles: int('MaxFiles', 1, 100_000, 'files').default(30),
    Fsync: z.enum(['batch', 'never'], { error: 'Fsync must be "batch" or "never"' }).default('batch'),
    DedupWindow: int('DedupWindow', 0, 10_000_000, 'events').default(100_000),
  })
  // `Config` may be left out of the plugin entry: every key has a default.
  .prefault({});
export type JsonlConfig = z.infer<typeof JsonlConfig>;

// sqlite

export const SqliteConfig = z
  .strictObject({
    /** database file; relative paths are under the agent's state directory (default `<stateDir>/events.db`) */
    Path: z
      .string({ error: 'Path must be a file path' })
      .min(1, { error: 'Path must not be empty' })
      .max(4096, { error: 'Path must be at most 4096 characters' })
      .refine((p) => !p.includes('\0'), { error: 'Path must not contain NUL' })
      .optional(),
    MaxAgeDays: int('MaxAgeDays', 1, 36_500, 'days').default(30),
    MaxRows: int('MaxRows', 1, 1_000_000_000, 'rows').default(5_000_000),
    Synchronous: z.enum(['NORMAL', 'FULL'], { error: 'Synchronous must be "NORMAL" or "FULL"' }).default('NORMAL'),
    /** open an existing database for queries only (e.g. from the CLI while the agent writes it) */
    ReadOnly: z.boolean({ error: 'ReadOnly must be true or false' }).default(false),
  })
  // `Config` may be left out of the plugin entry: every key has a default.
  .prefault({});
export type SqliteConfig = z.infer<typeof SqliteConfig>;

// postgres

/** The variable read when Config names no source of the connection string. */
export const DEFAULT_CONNECTION_ENV = 'PERIPETY_PG_URL';
const DEFAULT_TABLE = 'peripety_events';

/** The key of the Secret read when ConnectionSecret names none (`<name>` rather than `<name>/<key>`). */
export const DEFAULT_SECRET_KEY = 'connectionString';

export const CONNECTION_SECRET_STANDALONE_ERROR =
  'ConnectionSecret needs Kubernetes mode (the agent reads the Secret with its ServiceAccount); standalone, use ConnectionString, ConnectionStringFile or ConnectionStringEnv';

const SECRET_NAME = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
/** a Secret data key (Kubernetes: [-._a-zA-Z0-9]+, at most 253) */
const SECRET_KEY = '[-._a-zA-Z0-9]{1,253}';
const SECRET_REF = new RegExp(`^(?<name>${SECRET_NAME})(?:/(?<key>${SECRET_KEY}))?$`);

/** `<name>` or `<name>/<key>` (key default DEFAULT_SECRET_KEY); null when it is neither. */
export function parseSecretRef(s: string): { name: string; key: string } | null {
  if (s.length > 253 + 1 + 253) return null;
  const g = SECRET_REF.exec(s)?.groups;
  const name = g?.name;
  if (name === undefined || name.length > 253) return null;
  return { name, key: g?.key ?? DEFAULT_SECRET_KEY };
}

// Index names are `<table><suffix>`; PostgreSQL silently cuts identifiers at
// 63 bytes, and two cut names could then collide (the second CREATE INDEX IF
// NOT EXISTS would see the first and skip). So the table name is limited to
// what leaves room for the longest suffix.
export const INDEXES = [
  // Every index ends in (time_us, id): with the equality columns first, an
  // index range scan yields rows already in ORDER BY time_us DESC, id DESC
  // and serves the keyset condition, so a page costs its own rows, not a
  // sort of everything that matches.
  { suffix: '_time_us_id_idx', columns: 'time_us, id' },
  { suffix: '_system_time_us_idx', columns: 'system, time_us, id' },
  { suffix: '_event_type_time_us_idx', columns: 'event_type, time_us, id' },
  { suffix: '_dev_wwid_time_us_idx', columns: 'dev_wwid, time_us, id' },
  { suffix: '_hostname_time_us_idx', columns: 'hostname, time_us, id' },
] as const;
const MAX_TABLE_LENGTH = 63 - Math.max(...INDEXES.map((i) => i.suffix.length));

const timeoutMs = z.int().min(100).max(600_000);

export const PostgresConfig = z
  .strictObject({
    /** standalone mode: the connection string itself (a postgres:// or postgresql:// URL) */
    ConnectionString: z.string().min(1).max(4096).optional(),
    /** a file holding the connection string (e.g. a mounted Secret); read on start */
    ConnectionStringFile: z.string().min(1).max(4096).optional(),
    /** the name of an environment variable holding it; `PERIPETY_PG_URL` when no source is given */
    ConnectionStringEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name')
      .optional(),
    /**
     * Kubernetes mode: `<secret>` or `<secret>/<key>` (key default `connectionString`), a Secret in the
     * agent's namespace that the agent reads on start with its ServiceAccount; refused in standalone mode
     */
    ConnectionSecret: z
      .string()
      .max(253 + 1 + 253)
      .refine((v) => parseSecretRef(v) !== null, `must be a Kubernetes Secret name, optionally followed by /<key> (default key ${DEFAULT_SECRET_KEY})`)
      .optional(),
    Table: z
      .string()
      .max(MAX_TABLE_LENGTH, `must be at most ${MAX_TABLE_LENGTH} characters (index names are derived from it)`)
      .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier (letters, digits, _; not starting with a digit)')
      .default(DEFAULT_TABLE),
    /** rows per INSERT statement; a larger persist() batch runs several statements in one transaction */
    BatchSize: z.int().min(1).max(50_000).default(1000),
    /** connections to the server (one writes while another queries) */
    PoolSize: z.int().min(1).max(64).default(2),
    /** server-side statement_timeout; the client gives up a little later if the server does not answer at all */
    StatementTimeoutMs: timeoutMs.default(15_000),
    /** giving up on opening a connection (or on waiting for a free one) */
    ConnectTimeoutMs: timeoutMs.default(5_000),
  })
  .superRefine((c, ctx) => {
    const sources = (['ConnectionString', 'ConnectionStringFile', 'ConnectionStringEnv', 'ConnectionSecret'] as const).filter(
      (k) => c[k] !== undefined,
    );
    if (sources.length > 1) {
      ctx.addIssue({ code: 'custom', message: `give at most one of ConnectionString, ConnectionStringFile, ConnectionStringEnv, ConnectionSecret (got ${sources.join(', ')})` });
    }
  });
export type PostgresConfig = z.output<typeof PostgresConfig>;

/**
 * The built-in backends, by the `File` value that names them: the pure half of
 * their registry (index.ts adds how to build each, under the same names).
 */
export const BACKEND_PLUGINS = {
  memory: { name: 'memory', description: 'the newest BufferSize events in memory; gone at a restart', options: MemoryConfig },
  jsonl: { name: 'jsonl', description: 'JSON lines files under the state directory, rotated by size, the oldest removed', options: JsonlConfig },
  sqlite: { name: 'sqlite', description: 'one SQLite database file, rows aged out by MaxAgeDays and MaxRows', options: SqliteConfig },
  postgres: { name: 'postgres', description: 'a PostgreSQL table; the connection string from Config, a file, the environment or a Secret', options: PostgresConfig },
} as const satisfies Record<string, PluginInfo>;
export type BuiltinBackendName = keyof typeof BACKEND_PLUGINS;
