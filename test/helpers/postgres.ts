// A real, throwaway PostgreSQL server for root tests: Debian's server
// binaries (/usr/lib/postgresql/<ver>/bin; package `postgresql`, see
// hack/ci-deps.sh) run as the `postgres` user (initdb refuses root) on a
// cluster in its own temp directory, listening on 127.0.0.1 on a free port
// with SCRAM password authentication, so connection strings really carry
// credentials. No system-wide service is involved.
//
// For outage tests: stop()/start() take the server away and bring it back on
// the same port and data; pause()/resume() freeze it (SIGSTOP) so that the
// port still accepts connections but nothing answers. Every operation is
// awaitable, idempotent and serialized; destroy() always removes the cluster
// and its processes, and whatever a test forgets is torn down at process
// exit (or on SIGINT/SIGTERM).
import { execFile, type ExecFileException, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { appendFile, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isRoot, requireRoot } from './faults.ts';
import { atExit } from './exit.ts';

const PG_ROOT = '/usr/lib/postgresql';
const RUN_AS = 'postgres';
/** The package that brings initdb/pg_ctl and the `postgres` user (Debian/Ubuntu). */
export const POSTGRES_PACKAGE = 'postgresql';
const INSTALL_HINT = `install Debian package "${POSTGRES_PACKAGE}" (apt-get install -y ${POSTGRES_PACKAGE}, or run hack/ci-deps.sh)`;

/** The newest installed server's bin directory, or undefined. */
export function postgresBinDir(): string | undefined {
  let versions: string[];
  try {
    versions = readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(PG_ROOT, v, 'bin');
    if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

function postgresUserIds(): { uid: number; gid: number; home: string } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === RUN_AS && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' };
    }
  } catch {
    // no passwd file: treated as missing
  }
  return undefined;
}

/**
 * Where the throwaway cluster's directory goes: the temp directory when the
 * postgres user can pass through it, else that user's home directory. Some
 * machines (this project's CI among them) have a 0700 /tmp, and initdb, run
 * as postgres, then cannot even change into its own directory.
 */
function clusterParentDir(ids: { uid: number; gid: number; home: string }): string {
  const tmp = os.tmpdir();
  if ((statSync(tmp).mode & 0o001) !== 0) return tmp;
  const home = ids.home && existsSync(ids.home) ? ids.home : '';
  if (home && statSync(home).uid === ids.uid) return home;
  throw new Error(`test PostgreSQL server: ${tmp} is not passable by the "${RUN_AS}" user (mode ${(statSync(tmp).mode & 0o777).toString(8)}) and its home directory "${ids.home}" is not its own`);
}

/** Why a PostgreSQL server cannot be made here, or undefined when it can. */
export function postgresUnavailable(): string | undefined {
  if (!isRoot()) return 'needs root (runs initdb/pg_ctl as the postgres user)';
  if (!postgresBinDir()) return `PostgreSQL server binaries not found under ${PG_ROOT}/<version>/bin: ${INSTALL_HINT}`;
  if (!postgresUserIds()) return `no "${RUN_AS}" user: ${INSTALL_HINT}`;
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser')) return 'no runuser: install Debian package "util-linux"';
  return undefined;
}

/**
 * For a test that needs a server: when not root, skip it loudly and return
 * false; when root but PostgreSQL is missing, fail saying what to install
 * (CI runs as root, so a missing package must not pass as a skip).
 */
export function requirePostgres(t: TestContext): boolean {
  if (!requireRoot(t, 'needs root to run a throwaway PostgreSQL cluster as the postgres user')) return false;
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  return true;
}

// ---------------------------------------------------------------------------
// commands

function runuserPath(): string {
  for (const p of ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser']) if (existsSync(p)) return p;
  return 'runuser';
}

/** A fixed, small environment: nothing of the test's (PGPASSWORD, locale) leaks into the server. */
const CHILD_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', LANG: 'C' };

interface RunOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command as the postgres user; resolves with its exit code (non-zero is not an error here). */
function runAsPostgres(cwd: string, cmd: string, args: readonly string[], timeoutMs: number): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    execFile(
      runuserPath(),
      ['-u', RUN_AS, '--', cmd, ...args],
      { cwd, env: CHILD_ENV, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 4 << 20 },
      (err: ExecFileException | null, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        if (typeof err.code === 'number' && !err.killed) return resolve({ code: err.code, stdout, stderr });
        const how = err.killed ? `timed out after ${timeoutMs} ms` : `failed (${String(err.code ?? err.signal ?? err.message)})`;
        reject(new Error(`${cmd} ${args.join(' ')} ${how}: ${(stderr || stdout).trim()}`));
      },
    );
  });
}

async function mustRun(cwd: string, cmd: string, args: readonly string[], timeoutMs: number): Promise<RunOutcome> {
  const r = await runAsPostgres(cwd, cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')}: exit status ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster's pid per its pid file, when that process is alive. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The postmaster and every process below it (backends, checkpointer, …), from /proc. */
function clusterPids(dataDir: string): number[] {
  const root = postmasterPid(dataDir);
  if (root === undefined) return [];
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // fields after the parenthesized command name: state ppid …
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // the process exited meanwhile
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}


// ---------------------------------------------------------------------------
// the server

export interface PostgresServer {
  /** postgresql://user:password@127.0.0.1:port/database (the password URL-encoded) */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** deliberately full of URL-special characters, so encoding and redaction are exercised */
  readonly password: string;
  readonly database: string;
  /** the cluster's data directory (PGDATA) */
  readonly dataDir: string;
  /** the temp directory holding everything (data, socket, log, password file) */
  readonly baseDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  /** the URL for another database (and optionally another password, e.g. a wrong one) */
  urlFor(database: string, password?: string): string;
  /** whether the server is up per pg_ctl (asks it) */
  isRunning(): Promise<boolean>;
  /** start (again) on the same port and data; resolves when it accepts connections; no-op when running */
  start(): Promise<void>;
  /** take the server away (fast shutdown: open connections are cut); no-op when stopped */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** freeze every server process (SIGSTOP): connections hang instead of failing */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** run SQL with a short-lived connection */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** create a database and return its URL */
  createDatabase(name: string): Promise<string>;
  /** the server's own log so far (for diagnostics on failure) */
  serverLog(): string;
  /** stop everything and remove the temp directory; idempotent, never throws */
  destroy(): Promise<void>;
}

export interface StartPostgresOptions {
  /** fsync on (default true: realistic commit cost); off for speed when durability does not matter */
  fsync?: boolean;
  /** how long start may take (ms) */
  startTimeoutMs?: number;
}

const USER = 'peripety';
const DATABASE = 'postgres';

/** Create, configure and start a throwaway cluster. Call requirePostgres(t) (or check postgresUnavailable()) first. */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const why = postgresUnavailable();
  if (why) throw new Error(`cannot start a test PostgreSQL server: ${why}`);
  const bin = postgresBinDir()!;
  const ids = postgresUserIds()!;
  const startTimeoutS = Math.ceil((opts.startTimeoutMs ?? 30_000) / 1000);

  const baseDir = await mkdtemp(path.join(clusterParentDir(ids), 'peripety-pg-'));
  const dataDir = path.join(baseDir, 'data');
  const socketDir = path.join(baseDir, 'sock');
  const logFile = path.join(baseDir, 'server.log');
  const pwFile = path.join(baseDir, 'pwfile');
  const password = `pw-${randomBytes(9).toString('base64url')}:@/?#%&+ ü`;
  let destroyed = false;
  let paused = false;

  const cleanupSync = (): void => {
    const pids = clusterPids(dataDir);
    signalAll(pids, 'SIGCONT');
    if (pids.length > 0) {
      try {
        execFileSync(runuserPath(), ['-u', RUN_AS, '--', path.join(bin, 'pg_ctl'), '-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'], {
          cwd: baseDir,
          env: CHILD_ENV,
          stdio: 'ignore',
          timeout: 15_000,
        });
      } catch {
        // killed below
      }
      signalAll(clusterPids(dataDir), 'SIGKILL');
    }
    rmSync(baseDir, { recursive: true, force: true });
  };
  const forgetExitHook = atExit(cleanupSync);

  // One operation at a time: a stop racing a start would leave either state.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  const pgCtl = (args: string[], timeoutMs: number): Promise<RunOutcome> =>
    runAsPostgres(baseDir, path.join(bin, 'pg_ctl'), ['-D', dataDir, ...args], timeoutMs);

  const isRunningNow = async (): Promise<boolean> => (await pgCtl(['status'], 10_000)).code === 0;

  const serverLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  const startNow = async (): Promise<void> => {
    if (destroyed) throw new Error('test PostgreSQL server: start after destroy');
    if (paused) {
      signalAll(clusterPids(dataDir), 'SIGCONT');
      paused = false;
    }
    if (await isRunningNow()) return;
    const r = await pgCtl(['-l', logFile, '-w', '-t', String(startTimeoutS), 'start'], (startTimeoutS + 10) * 1000);
    if (r.code !== 0) {
      throw new Error(`pg_ctl start failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}\n--- server log (tail) ---\n${serverLog().slice(-3000)}`);
    }
  };

  const stopNow = async (mode: 'fast' | 'immediate'): Promise<void> => {
    if (paused) {
      signalAll(clusterPids(dataDir), 'SIGCONT');
      paused = false;
    }
    if (postmasterPid(dataDir) === undefined) return;
    const r = await pgCtl(['-m', mode, '-w', '-t', '20', 'stop'], 30_000);
    if (r.code === 0 || !(await isRunningNow())) return;
    if (mode === 'fast' && (await pgCtl(['-m', 'immediate', '-w', '-t', '10', 'stop'], 15_000)).code === 0) return;
    signalAll(clusterPids(dataDir), 'SIGKILL');
    for (let i = 0; i < 50 && postmasterPid(dataDir) !== undefined; i++) await sleep(100);
    if (postmasterPid(dataDir) !== undefined) throw new Error(`cannot stop test PostgreSQL server in ${dataDir}`);
  };

  let port = 0;
  try {
    await chown(baseDir, ids.uid, ids.gid);
    await mkdir(socketDir, { mode: 0o700 });
    await chown(socketDir, ids.uid, ids.gid);
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    await chown(pwFile, ids.uid, ids.gid);
    await mustRun(
      baseDir,
      path.join(bin, 'initdb'),
      ['-D', dataDir, '-U', USER, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'],
      120_000,
    );
    const fsync = (opts.fsync ?? true) ? 'on' : 'off';
    // A free port can be taken between probing and binding: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      await appendFile(
        path.join(dataDir, 'postgresql.conf'),
        [
          '',
          '# peripety test cluster (test/helpers/postgres.ts); a later line wins',
          "listen_addresses = '127.0.0.1'",
          `port = ${port}`,
          `unix_socket_directories = '${socketDir}'`,
          `fsync = ${fsync}`,
          `full_page_writes = ${fsync}`,
          'max_connections = 100',
          'shared_buffers = 64MB',
          "password_encryption = 'scram-sha-256'",
          'log_min_messages = warning',
          '',
        ].join('\n'),
      );
      try {
        await startNow();
        break;
      } catch (err) {
        if (attempt >= 3 || !/could not bind|Address already in use/i.test(serverLog())) throw err;
      }
    }
  } catch (err) {
    forgetExitHook();
    cleanupSync();
    throw err;
  }

  const host = '127.0.0.1';
  const urlFor = (database: string, pw = password): string =>
    `postgresql://${USER}:${encodeURIComponent(pw)}@${host}:${port}/${encodeURIComponent(database)}`;

  const server: PostgresServer = {
    url: urlFor(DATABASE),
    host,
    port,
    user: USER,
    password,
    database: DATABASE,
    dataDir,
    baseDir,
    socketDir,
    logFile,
    urlFor,
    isRunning: () => serial(isRunningNow),
    start: () => serial(startNow),
    stop: (mode = 'fast') => serial(() => stopNow(mode)),
    pause: () =>
      serial(async () => {
        const pids = clusterPids(dataDir);
        if (pids.length === 0) throw new Error('test PostgreSQL server: pause while not running');
        signalAll(pids, 'SIGSTOP');
        paused = true;
      }),
    resume: () =>
      serial(async () => {
        signalAll(clusterPids(dataDir), 'SIGCONT');
        paused = false;
      }),
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = DATABASE): Promise<R[]> {
      const client = new pg.Client({ connectionString: urlFor(database), connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
      client.on('error', () => undefined); // a server going away mid-query rejects the query; nothing else to do
      await client.connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
      await server.query(`CREATE DATABASE "${name}"`);
      return urlFor(name);
    },
    serverLog,
    destroy: () =>
      serial(async () => {
        if (destroyed) return;
        destroyed = true;
        try {
          await stopNow('immediate');
        } catch {
          // cleanupSync kills what is left
        }
        forgetExitHook();
        cleanupSync();
      }),
  };
  return server;
}
