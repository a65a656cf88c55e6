// The `postgres` storage backend (docs/storage.md "Backends"): the shared, cluster-wide
// event history in a real PostgreSQL server.
//
// - One table (default `peripety_events`), created on start under an advisory
//   lock, since every agent of a cluster starts at once and concurrent
//   CREATE TABLE IF NOT EXISTS can fail on the catalog's unique indexes.
// - persist: one transaction per batch, INSERT … SELECT FROM unnest(arrays)
//   (11 parameters per statement whatever the row count, so no 65535-parameter
//   chunking) ON CONFLICT (event_id, event_type) DO NOTHING: a replayed batch
//   is stored once. Resolves only after COMMIT: acknowledged
//   (docs/architecture.md "Acknowledgement") means committed by the server.
// - Never hangs: connect, statement and client-side read timeouts; a client
//   that saw any error is destroyed rather than returned to the pool, so a
//   half-dead connection is never reused and the next call reconnects.
// - findEvents pushes the time range, the filter's equality hints and the
//   order into SQL, reads keyset pages by (time_us, id) and runs the full
//   filter on each page: memory is bounded by the page and the result.
// - Credentials: the connection string is resolved on start (from Config, a
//   file, an environment variable, or in Kubernetes mode a Secret in the
//   agent's namespace read with the agent's ServiceAccount) and never logged;
//   logs and errors name host, port, database and user only, and every
//   message passed on is scrubbed of the password and the connection string.
// `pg` is loaded when a postgres backend starts (doStart), not with this
// module: the backend registry imports every built-in backend, and an agent
// without a postgres backend must not pay for pg's code (issue 14).
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { StorageEvent } from '../../events/schema.ts';
import type { Logger } from '../../log/logger.ts';
import type { Backend, BackendContext, BackendHealth, BackendPlugin, EventQuery, QueryResult } from '../types.ts';
import { eventTimeUs } from '../../events/time.ts';
import { confine, MAX_TOKEN_FILE_BYTES, readRegularFile, UnsafePathError } from '../../fsutil/safe-files.ts';
import { BACKEND_PLUGINS, CONNECTION_SECRET_STANDALONE_ERROR, DEFAULT_CONNECTION_ENV, INDEXES, parseSecretRef, PostgresConfig } from './options.ts';


const COLUMNS = [
  'id',
  'time_us',
  'timestamp',
  'hostname',
  'severity',
  'system',
  'event_type',
  'event_id',
  'dev_wwid',
  'dev_name',
  'msg',
  'extentions',
  'inserted_at',
] as const;

/** Columns the filter compiler may give equality hints for (FilterHints.equals); a whitelist, since they become SQL. */
const HINT_COLUMNS = new Set(['hostname', 'system', 'event_type', 'event_id', 'dev_wwid', 'dev_name']);

/** Where the server is, for logs and health: never the password. */
interface Target {
  host: string;
  port: string;
  database: string;
  user: string;
}

function describeTarget(t: Target): string {
  return `${t.host}:${t.port}/${t.database} as ${t.user}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Check the connection string and take what may be shown from it. The error
 * never contains the string (node's URL error carries the input, so it is
 * not passed on).
 */
function parseConnectionString(cs: string, where: string): { target: Target; secrets: string[] } {
  let url: URL;
  try {
    url = new URL(cs);
  } catch {
    throw new Error(`the connection string from ${where} is not a URL (expected postgresql://user:password@host:port/database)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`the connection string from ${where} must start with postgres:// or postgresql://`);
  }
  const q = url.searchParams;
  const secrets = [cs];
  for (const p of [url.password, q.get('password') ?? '']) {
    if (p) secrets.push(p, decode(p), encodeURIComponent(decode(p)));
  }
  const target: Target = {
    host: q.get('host') ?? (url.hostname ? decode(url.hostname) : 'localhost'),
    port: q.get('port') ?? (url.port || '5432'),
    database: q.get('dbname') ?? (decode(url.pathname.replace(/^\//, '')) || '(default)'),
    user: q.get('user') ?? (url.username ? decode(url.username) : '(default)'),
  };
  return { target, secrets };
}

/** Replace every secret in a message; longest first, so a secret contained in another goes with it. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length > 0) out = out.split(s).join('***');
  }
  // Belt and braces: credentials in any URL the driver may have echoed.
  return out.replace(/(postgres(?:ql)?:\/\/)[^@\s/]*@/gi, '$1***@');
}

function errCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const c = (err as { code: unknown }).code;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

function errMessage(err: unknown): string {
  if (err instanceof Error) {
    // AggregateError (several addresses tried) has an empty message of its own.
    if (!err.message && err instanceof AggregateError) return err.errors.map(errMessage).join('; ');
    return err.message || err.name;
  }
  return String(err);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT', // a unix socket that is not there
]);
const DRIVER_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'Connection ended',
];

/** The server could not be reached or went away: transient, worth retrying later. */
function isUnreachable(err: unknown): boolean {
  const code = errCode(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code)) return true;
    // SQLSTATE 08 connection exception; 57P01-03 admin/crash shutdown, cannot connect now; 53300 too many connections
    if (/^08/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  }
  if (err instanceof AggregateError) return err.errors.some(isUnreachable);
  const msg = errMessage(err);
  return DRIVER_CONNECTION_MESSAGES.some((m) => msg.includes(m));
}

/** A failure to talk to the server at all (unreachable, or it refused our credentials): what health reports. */
function isConnectionError(err: unknown): boolean {
  const code = errCode(err);
  // 28000 invalid authorization, 28P01 wrong password, 3D000 no such database
  return isUnreachable(err) || code === '28000' || code === '28P01' || code === '3D000';
}

/** An error safe to hand on: scrubbed message, the SQLSTATE/errno kept, no cause (it may hold the secret). */
class PostgresBackendError extends Error {
  readonly code: string | undefined;
  readonly connection: boolean;
  constructor(message: string, code: string | undefined, connection: boolean) {
    super(message);
    this.name = 'PostgresBackendError';
    this.code = code;
    this.connection = connection;
  }
}

/** PostgreSQL text and jsonb cannot hold NUL; one such event must not make its whole batch fail on every retry. */
function noNul(s: string): string {
  return s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
}

function extentionsJson(ext: Record<string, string>): string {
  const json = JSON.stringify(ext);
  // JSON.stringify writes NUL as \u0000, which jsonb rejects; clean the
  // strings themselves (rare), not the JSON text, where "\\u0000" may be
  // an escaped backslash followed by text.
  if (!json.includes('\\u0000')) return json;
  return JSON.stringify(Object.fromEntries(Object.entries(ext).map(([k, v]) => [noNul(k), noNul(v)])));
}

/** A row as read back; validated before it is returned, since other writers share the table. */
interface EventRow extends QueryResultRow {
  id_text: string;
  time_us_text: string;
  timestamp_text: string;
  hostname: unknown;
  severity: unknown;
  system: unknown;
  event_type: unknown;
  event_id: unknown;
  dev_wwid: unknown;
  dev_name: unknown;
  msg: unknown;
  extentions: unknown;
}

/** Rows read per round trip of findEvents. */
const PAGE_ROWS = 1000;
/** With a filter that runs in JS, a small limit still reads at least this many rows per page. */
const MIN_FILTERED_PAGE_ROWS = 200;
/** The client waits this much longer than statement_timeout, so the server normally cancels first and the connection stays usable. */
const CLIENT_TIMEOUT_MARGIN_MS = 2_000;

class PostgresBackend implements Backend {
  readonly name: string;
  private readonly cfg: PostgresConfig;
  private readonly ctx: BackendContext;
  private readonly log: Logger;
  private readonly table: string;
  private pool: Pool | undefined;
  private target: Target | undefined;
  private secrets: string[] = [];
  private schemaReady = false;
  private schemaPromise: Promise<void> | undefined;
  private lastError: PostgresBackendError | undefined;
  private ended: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private invalidRows = 0;
  private filterErrors = 0;

  constructor(name: string, cfg: PostgresConfig, ctx: BackendContext) {
    this.name = name;
    this.cfg = cfg;
    this.ctx = ctx;
    this.log = ctx.log.child({ backend: name, file: 'postgres' });
    // Validated by the schema to /^[a-z_][a-z0-9_]*$/: quoting only guards reserved words.
    this.table = `"${cfg.Table}"`;
  }

  private async connectionString(): Promise<{ cs: string; where: string }> {
    const c = this.cfg;
    if (c.ConnectionSecret !== undefined) {
      const read = this.ctx.secret;
      if (!read) throw new Error(CONNECTION_SECRET_STANDALONE_ERROR);
      const ref = parseSecretRef(c.ConnectionSecret);
      if (!ref) throw new Error(`ConnectionSecret ${JSON.stringify(c.ConnectionSecret)} is not <secret> or <secret>/<key>`);
      const got = await read(ref);
      if (!got.ok) throw new Error(`ConnectionSecret: ${got.error}`);
      const cs = got.value.trim();
      return { cs, where: `ConnectionSecret ${ref.name}/${ref.key}` };
    }
    if (c.ConnectionString !== undefined) return { cs: c.ConnectionString.trim(), where: 'ConnectionString' };
    if (c.ConnectionStringFile !== undefined) {
      let text: string;
      try {
        // Kubernetes mode: a path from a cluster user may not name any file of the node (use ConnectionSecret there)
        const file = this.ctx.confineTo !== undefined ? confine(this.ctx.confineTo, c.ConnectionStringFile, 'ConnectionStringFile') : c.ConnectionStringFile;
        // a regular file of at most 64 KiB: a FIFO or /dev/zero must not hang or fill memory
        text = readRegularFile(file, 'ConnectionStringFile', { maxBytes: MAX_TOKEN_FILE_BYTES });
      } catch (err) {
        if (err instanceof UnsafePathError) throw err;
        throw new Error(`cannot read ConnectionStringFile ${c.ConnectionStringFile}: ${errCode(err) ?? errMessage(err)}`);
      }
      const cs = text.trim();
      if (!cs) throw new Error(`ConnectionStringFile ${c.ConnectionStringFile} is empty`);
      return { cs, where: `ConnectionStringFile ${c.ConnectionStringFile}` };
    }
    const env = c.ConnectionStringEnv ?? DEFAULT_CONNECTION_ENV;
    const cs = this.ctx.env[env]?.trim();
    if (!cs) {
      const how = c.ConnectionStringEnv === undefined ? `no ConnectionString, ConnectionStringFile or ConnectionStringEnv given, and ${env}` : `ConnectionStringEnv: ${env}`;
      throw new Error(`${how} is not set (or empty) in the environment`);
    }
    return { cs, where: `environment variable ${env}` };
  }

  start(): Promise<void> {
    // Concurrent calls share one start; a failed start may be tried again.
    this.starting ??= this.doStart().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (this.ended) throw new Error(`postgres backend "${this.name}": start after shutdown`);
    let cs: string;
    let where: string;
    try {
      ({ cs, where } = await this.connectionString());
      const parsed = parseConnectionString(cs, where);
      this.target = parsed.target;
      this.secrets = parsed.secrets;
    } catch (err) {
      throw new Error(`postgres backend "${this.name}": ${errMessage(err)}`);
    }
    const { Pool } = await import('pg');
    const pool = new Pool({
      connectionString: cs,
      max: this.cfg.PoolSize,
      connectionTimeoutMillis: this.cfg.ConnectTimeoutMs,
      statement_timeout: this.cfg.StatementTimeoutMs,
      query_timeout: this.cfg.StatementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
      // A transaction left open by a stuck agent must not hold row locks for long.
      idle_in_transaction_session_timeout: Math.max(60_000, 2 * this.cfg.StatementTimeoutMs),
      // Detect a peer that vanished without a FIN (node reboot, network partition).
      keepAlive: true,
      application_name: `peripety/${this.ctx.hostname}`.slice(0, 63),
    });
    // An idle connection dying (server restart) is reported here; without a
    // listener it would be an uncaught exception. The pool drops that client.
    pool.on('error', (err) => {
      this.log.warn({ target: this.where(), reason: this.safe(err) }, 'idle PostgreSQL connection lost');
    });
    this.pool = pool;
    this.log.info({ target: this.where(), table: this.cfg.Table, source: where }, 'postgres backend starting');
    try {
      await this.ensureSchema();
      this.lastError = undefined;
      this.log.info({ target: this.where(), table: this.cfg.Table }, 'postgres backend started');
    } catch (err) {
      const e = this.wrap('start', err);
      // Only "away" is tolerated: wrong credentials or a missing database are configuration errors.
      if (isUnreachable(err)) {
        // The server being away is the very case this backend must survive:
        // the agent starts, persist rejects (the manager spools) and the
        // table is created on the first call that reaches the server.
        this.log.warn({ target: this.where(), reason: e.message }, 'PostgreSQL unreachable at start; the table will be created when it is back');
        return;
      }
      this.pool = undefined;
      await pool.end().catch(() => undefined);
      throw e;
    }
  }

  private recovered(): void {
    if (this.lastError) this.log.info({ target: this.where() }, 'PostgreSQL reachable again');
    this.lastError = undefined;
  }

  private where(): string {
    return this.target ? describeTarget(this.target) : '(not started)';
  }

  private safe(err: unknown): string {
    const code = errCode(err);
    const msg = errMessage(err);
    return scrub(code && !msg.includes(code) ? `${msg} (${code})` : msg, this.secrets);
  }

  /** Record the outcome for health() and turn any error into one safe to pass on. */
  private wrap(op: string, err: unknown): PostgresBackendError {
    if (err instanceof PostgresBackendError) {
      this.lastError = err.connection ? err : undefined;
      return err;
    }
    const connection = isConnectionError(err);
    const what = isUnreachable(err)
      ? `cannot reach PostgreSQL at ${this.where()}`
      : connection
        ? `cannot connect to PostgreSQL at ${this.where()}`
        : `PostgreSQL at ${this.where()}`;
    const e = new PostgresBackendError(`postgres backend "${this.name}": ${op}: ${what}: ${this.safe(err)}`, errCode(err), connection);
    this.lastError = connection ? e : undefined;
    return e;
  }

  /** Run `fn` on one pooled client; a client that saw an error is destroyed, not reused. */
  private async withClient<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const pool = this.pool;
    if (!pool) throw new Error(`postgres backend "${this.name}": not started`);
    const client = await pool.connect();
    let failed: Error | undefined;
    // While checked out the pool does not listen for the client's errors;
    // an unheard 'error' event would crash the process.
    const onError = (err: Error): void => {
      failed ??= err;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      failed ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(failed ?? undefined);
    }
  }

  private ensureSchema(): Promise<void> {
    if (this.schemaReady) return Promise.resolve();
    // Concurrent callers share one attempt; a failed one is retried by the next call.
    this.schemaPromise ??= this.withClient((c) => this.createSchema(c))
      .then(() => {
        this.schemaReady = true;
      })
      .finally(() => {
        this.schemaPromise = undefined;
      });
    return this.schemaPromise;
  }

  private async createSchema(c: PoolClient): Promise<void> {
    const t = this.table;
    const name = this.cfg.Table;
    await c.query('BEGIN');
    try {
      // Serialize schema setup across agents (see the top of this file).
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`peripety:${name}`]);
      const exists = await c.query<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [t]);
      if (exists.rows[0]?.oid == null) {
        await c.query(`CREATE TABLE IF NOT EXISTS ${t} (
          id          bigserial PRIMARY KEY,
          time_us     bigint      NOT NULL,
          timestamp   bigint      NOT NULL,
          hostname    text        NOT NULL,
          severity    text        NOT NULL,
          system      text        NOT NULL,
          event_type  text        NOT NULL,
          event_id    text        NOT NULL,
          dev_wwid    text        NOT NULL,
          dev_name    text        NOT NULL,
          msg         text        NOT NULL,
          extentions  jsonb       NOT NULL DEFAULT '{}'::jsonb,
          inserted_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (event_id, event_type)
        )`);
        this.log.info({ table: name }, 'created table');
      } else {
        await this.checkExistingTable(c);
      }
      const have = await c.query<{ indexname: string }>(
        'SELECT indexname FROM pg_indexes WHERE schemaname = (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass($1)) AND tablename = $2',
        [t, name],
      );
      const existing = new Set(have.rows.map((r) => r.indexname));
      for (const ix of INDEXES) {
        const ixName = `${name}${ix.suffix}`;
        if (existing.has(ixName)) continue;
        await c.query('SAVEPOINT ix');
        try {
          await c.query(`CREATE INDEX IF NOT EXISTS "${ixName}" ON ${t} (${ix.columns})`);
          await c.query('RELEASE SAVEPOINT ix');
        } catch (err) {
          // A table made by a DBA may not be ours to index; queries are slower, not wrong.
          if (errCode(err) !== '42501') throw err;
          await c.query('ROLLBACK TO SAVEPOINT ix');
          this.log.warn({ table: name, index: ixName }, 'no privilege to create index; queries on that column will be slower');
        }
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** A table made by someone else must have our columns and the key ON CONFLICT needs; else fail now, not on every persist. */
  private async checkExistingTable(c: PoolClient): Promise<void> {
    const cols = await c.query<{ attname: string }>(
      'SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped',
      [this.table],
    );
    const have = new Set(cols.rows.map((r) => r.attname));
    const missing = COLUMNS.filter((col) => col !== 'inserted_at' && !have.has(col));
    if (missing.length > 0) {
      throw new PostgresBackendError(
        `postgres backend "${this.name}": table ${this.cfg.Table} exists but lacks column(s) ${missing.join(', ')}`,
        undefined,
        false,
      );
    }
    const key = await c.query(
      `SELECT 1 FROM pg_index i
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indnkeyatts = 2
          AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
                 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) = ARRAY['event_id','event_type']`,
      [this.table],
    );
    if (key.rowCount === 0) {
      throw new PostgresBackendError(
        `postgres backend "${this.name}": table ${this.cfg.Table} exists but has no UNIQUE (event_id, event_type), which idempotent replay needs`,
        undefined,
        false,
      );
    }
  }

  private requireStarted(): void {
    if (!this.pool) throw new Error(`postgres backend "${this.name}": ${this.ended ? 'shut down' : 'not started'}`);
  }

  async persist(events: readonly StorageEvent[]): Promise<void> {
    this.requireStarted();
    if (events.length === 0) return;
    try {
      await this.ensureSchema();
      await this.withClient(async (c) => {
        await c.query('BEGIN');
        try {
          for (let i = 0; i < events.length; i += this.cfg.BatchSize) {
            await this.insertChunk(c, events.slice(i, i + this.cfg.BatchSize));
          }
          await c.query('COMMIT');
        } catch (err) {
          // On a dead connection this fails too; the client is destroyed either way.
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
      this.recovered();
    } catch (err) {
      const wasOk = this.lastError === undefined;
      const e = this.wrap('persist', err);
      // The manager retries while the server is away: say it once, not per retry.
      this.log[wasOk ? 'warn' : 'debug']({ target: this.where(), events: events.length, reason: e.message }, 'persist failed');
      throw e;
    }
  }

  private async insertChunk(c: PoolClient, chunk: readonly StorageEvent[]): Promise<void> {
    const n = chunk.length;
    const timeUs = new Array<string>(n);
    const ts = new Array<string>(n);
    const host = new Array<string>(n);
    const sev = new Array<string>(n);
    const sys = new Array<string>(n);
    const type = new Array<string>(n);
    const id = new Array<string>(n);
    const wwid = new Array<string>(n);
    const dev = new Array<string>(n);
    const msg = new Array<string>(n);
    const ext = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const ev = chunk[i]!;
      timeUs[i] = String(eventTimeUs(ev));
      ts[i] = String(ev.timestamp);
      host[i] = noNul(ev.hostname);
      sev[i] = ev.severity;
      sys[i] = ev.system;
      type[i] = noNul(ev.event_type);
      id[i] = noNul(ev.event_id);
      wwid[i] = noNul(ev.dev_wwid);
      dev[i] = noNul(ev.dev_name);
      msg[i] = noNul(ev.msg);
      ext[i] = extentionsJson(ev.extentions);
    }
    // WITH ORDINALITY … ORDER BY: ids (insertion order, the tie-break of
    // equal times) follow the batch order, not whatever order the executor picks.
    await c.query(
      `INSERT INTO ${this.table} (time_us, timestamp, hostname, severity, system, event_type, event_id, dev_wwid, dev_name, msg, extentions)
       SELECT u.time_us, u.ts, u.hostname, u.severity, u.system, u.event_type, u.event_id, u.dev_wwid, u.dev_name, u.msg, u.ext
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[])
              WITH ORDINALITY AS u(time_us, ts, hostname, severity, system, event_type, event_id, dev_wwid, dev_name, msg, ext, ord)
        ORDER BY u.ord
       ON CONFLICT (event_id, event_type) DO NOTHING`,
      [timeUs, ts, host, sev, sys, type, id, wwid, dev, msg, ext],
    );
  }

  async findEvents(query: EventQuery): Promise<QueryResult> {
    const { filter, limit } = query;
    for (const [k, v] of [['newest', query.newest], ['oldest', query.oldest], ['limit', limit]] as const) {
      if (!Number.isFinite(v)) throw new RangeError(`postgres backend "${this.name}": findEvents: ${k} must be a finite number`);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    // Integers only reach SQL: floor keeps "<= newest" and "> oldest" exact for fractional bounds.
    if (query.newest > 0) where.push(`time_us <= ${param(String(Math.floor(query.newest)))}::bigint`);
    if (query.oldest > 0) where.push(`time_us > ${param(String(Math.floor(query.oldest)))}::bigint`);
    const hints = filter?.hints ?? {};
    for (const [col, v] of Object.entries(hints.equals ?? {})) {
      if (HINT_COLUMNS.has(col) && typeof v === 'string') where.push(`${col} = ${param(noNul(v))}`);
    }
    if (typeof hints.timestampMin === 'number' && Number.isFinite(hints.timestampMin)) {
      where.push(`timestamp >= ${param(String(Math.ceil(hints.timestampMin)))}::bigint`);
    }
    if (typeof hints.timestampMax === 'number' && Number.isFinite(hints.timestampMax)) {
      where.push(`timestamp <= ${param(String(Math.floor(hints.timestampMax)))}::bigint`);
    }
    const want = limit > 0 ? Math.floor(limit) : Infinity;
    const pageRows = Number.isFinite(want)
      ? Math.min(PAGE_ROWS, Math.max(want + 1, filter ? MIN_FILTERED_PAGE_ROWS : 0))
      : PAGE_ROWS;
    const fixed = params.length;

    this.requireStarted();
    const events: StorageEvent[] = [];
    let isTruncated = false;
    let after: { timeUs: string; id: string } | undefined;
    try {
      await this.ensureSchema();
      // Keyset pages rather than one long cursor: no transaction or
      // connection is held between pages, and each page is an index range scan.
      for (;;) {
        params.length = fixed;
        const conds = [...where];
        if (after) conds.push(`(time_us, id) < (${param(after.timeUs)}::bigint, ${param(after.id)}::bigint)`);
        // bigint as text: exact keys for the next page whatever their size.
        // ORDER BY names the table's columns (e.), not the text outputs.
        const sql = `SELECT e.id::text AS id_text, e.time_us::text AS time_us_text, e.timestamp::text AS timestamp_text,
                            e.hostname, e.severity, e.system, e.event_type, e.event_id, e.dev_wwid, e.dev_name, e.msg, e.extentions
                       FROM ${this.table} AS e
                      ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''}
                      ORDER BY e.time_us DESC, e.id DESC
                      LIMIT ${pageRows}`;
        const res = await this.withClient((c) => c.query<EventRow>(sql, params));
        for (const row of res.rows) {
          const ev = this.toEvent(row);
          if (!ev) continue;
          if (filter) {
            const r = filter.evaluate(ev);
            if (r === 'ERROR') this.filterErrors++;
            if (r !== 'MATCH') continue;
          }
          if (events.length >= want) {
            isTruncated = true;
            break;
          }
          events.push(ev);
        }
        if (isTruncated || res.rows.length < pageRows) break;
        const last = res.rows[res.rows.length - 1]!;
        after = { timeUs: last.time_us_text, id: last.id_text };
      }
      this.recovered();
    } catch (err) {
      const wasOk = this.lastError === undefined;
      const e = this.wrap('findEvents', err);
      this.log[wasOk ? 'warn' : 'debug']({ target: this.where(), reason: e.message }, 'query failed');
      throw e;
    }
    return { events, isTruncated };
  }

  private toEvent(row: EventRow): StorageEvent | undefined {
    const parsed = StorageEvent.safeParse({
      hostname: row.hostname,
      severity: row.severity,
      system: row.system,
      timestamp: Number(row.timestamp_text),
      event_id: row.event_id,
      event_type: row.event_type,
      dev_wwid: row.dev_wwid,
      dev_name: row.dev_name,
      msg: row.msg,
      extentions: row.extentions,
    });
    if (parsed.success) return parsed.data;
    // Another writer's row that is not an event of ours: skip it, say so once in a while.
    if (this.invalidRows++ % 1000 === 0) {
      this.log.warn({ table: this.cfg.Table, id: row.id_text, skipped: this.invalidRows }, 'skipping a row that is not a valid storage event');
    }
    return undefined;
  }

  health(): BackendHealth {
    if (this.lastError) return { ok: false, detail: this.lastError.message };
    return { ok: true };
  }

  shutdown(): Promise<void> {
    this.ended ??= (async () => {
      const pool = this.pool;
      this.pool = undefined;
      if (!pool) return;
      try {
        await pool.end();
      } catch (err) {
        this.log.warn({ reason: this.safe(err) }, 'closing the PostgreSQL pool failed');
      }
      if (this.filterErrors > 0) this.log.info({ filterErrors: this.filterErrors }, 'filter errors during queries');
    })();
    return this.ended;
  }
}

export const postgresBackend: BackendPlugin<PostgresConfig> = {
  ...BACKEND_PLUGINS.postgres,
  build(name: string, config: PostgresConfig, ctx: BackendContext): Backend {
    return new PostgresBackend(name, config, ctx);
  },
};
