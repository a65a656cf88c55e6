// File-safety rules for every path the agent reads or writes (issue 10,
// docs/security.md "Files"): a state or storage file is a regular file or
// absent — never a device, a FIFO or a symbolic link; what the agent writes
// is private (directories 0700, files 0600, also when they existed with
// looser modes); configuration and token reads are bounded; nothing is ever
// created under /proc or /sys, where mkdir fails in ways that made Node's
// recursive mkdir spin forever.
//
// Pure checks (classifyPath, describeKind, isUnderVirtualFs, confine) plus
// thin synchronous I/O helpers: they run at start, at reload and for small
// state files, never per event.
import {
  readdirSync, chmodSync, closeSync, constants as C, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync,
  realpathSync, renameSync, statSync, type Stats, unlinkSync, writeSync,
} from 'node:fs';
import path from 'node:path';

/** --config, the TOML configuration */
export const MAX_TOML_CONFIG_BYTES = 1024 * 1024;
/** --storage-config, the elos JSON (src/storage/config.ts MAX_CONFIG_TEXT_BYTES) */
export const MAX_STORAGE_CONFIG_BYTES = 4 * 1024 * 1024;
/** API token files */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;
/** small state files (the kmsg position) */
export const MAX_STATE_FILE_BYTES = 64 * 1024;
/** applied.json holds a TOML and a storage configuration */
export const MAX_APPLIED_FILE_BYTES = MAX_TOML_CONFIG_BYTES + MAX_STORAGE_CONFIG_BYTES + 64 * 1024;

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The file systems nothing may be created in: kernel interfaces, not storage. */
const VIRTUAL_ROOTS = ['/proc', '/sys'];
/** a directory chain deeper than this is not a state directory (and bounds the mkdir walk) */
const MAX_DIR_DEPTH = 64;

/** A path the file-safety rules refuse; the message names the path and the reason. */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
}

/** "a character device", "a FIFO", … for an lstat/fstat result. */
export function describeKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** True for /proc, /sys and anything below them (after resolving `.`/`..`). */
export function isUnderVirtualFs(p: string): boolean {
  const abs = path.resolve(p);
  return VIRTUAL_ROOTS.some((r) => abs === r || abs.startsWith(`${r}/`));
}

/** Throws when `p` is under /proc or /sys. `what` names the setting ("[main] state_dir"). */
export function refuseVirtualFs(p: string, what: string): void {
  if (isUnderVirtualFs(p)) {
    throw new UnsafePathError(`${what} ${p} is under ${path.resolve(p).startsWith('/sys') ? '/sys' : '/proc'}, a kernel interface and not storage; choose a directory on a real file system`);
  }
}

/**
 * `p` resolved against `root`, or an error when it leaves `root` (an absolute
 * path elsewhere, or `..`). Kubernetes mode confines every backend file to
 * the agent's state directory this way.
 */
export function confine(root: string, p: string, what: string): string {
  const base = path.resolve(root);
  const full = path.resolve(base, p);
  const rel = path.relative(base, full);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new UnsafePathError(`${what} ${JSON.stringify(p)} is outside the agent's state directory ${base} (in Kubernetes mode every backend file must be under it; use a relative path)`);
  }
  return full;
}

/**
 * After the directories exist: the deepest existing ancestor of `full`,
 * with symbolic links resolved, must still be inside `root` (a link inside
 * the state directory cannot lead a confined path out of it).
 */
export function confineReal(root: string, full: string, what: string): void {
  const realRoot = realpathSync(root);
  let d = path.dirname(full);
  for (let i = 0; i < MAX_DIR_DEPTH; i++) {
    try {
      const real = realpathSync(d);
      const rel = path.relative(realRoot, real);
      if (rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new UnsafePathError(`${what} ${full} leads outside the agent's state directory ${realRoot} (through a symbolic link to ${real})`);
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    d = path.dirname(d);
  }
}

/** 'absent', 'file', or throws: a storage or state file must be a regular file (not followed when it is a link). */
export function checkRegularOrAbsent(file: string, what: string): 'absent' | 'file' {
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'absent';
    if (code === 'ENOTDIR') throw new UnsafePathError(`${what} ${file}: a parent is not a directory`);
    throw err;
  }
  if (st.isFile()) return 'file';
  throw new UnsafePathError(`${what} ${file} is ${describeKind(st)}; only a regular file (or a missing one, which is created) is accepted`);
}

/**
 * mkdir -p that always ends: one level at a time from the deepest existing
 * ancestor, each mkdir tried once (Node's recursive mkdir retried forever
 * under /proc, at 100% CPU). Created directories get `mode`.
 */
export function makeDirs(dir: string, mode: number = PRIVATE_DIR_MODE): void {
  const missing: string[] = [];
  let d = path.resolve(dir);
  for (let i = 0; ; i++) {
    if (i > MAX_DIR_DEPTH) throw new UnsafePathError(`${dir}: more than ${MAX_DIR_DEPTH} levels of directories to create`);
    try {
      const st = lstatSync(d);
      if (!st.isDirectory() && !(st.isSymbolicLink() && statIsDir(d))) throw new Error(`${d} is ${describeKind(st)}, not a directory`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.push(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(`cannot create the directory ${m}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
    }
  }
}

function statIsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The agent's state directory: refused under /proc and /sys, created when
 * missing, and made 0700 whatever its mode was (the chart's hostPath
 * DirectoryOrCreate makes a 0755 one). Returns true when the mode changed.
 */
export function ensurePrivateDir(dir: string, what: string): boolean {
  refuseVirtualFs(dir, what);
  refuseSharedDir(dir, what);
  makeDirs(dir, PRIVATE_DIR_MODE);
  const st = lstatSync(dir);
  // chmod only a directory that can be the agent's own (never /tmp, /var/lib, …)
  if (st.isDirectory() && (st.mode & 0o1002) !== 0) {
    throw new UnsafePathError(`${what} ${dir} is shared (world-writable${(st.mode & 0o1000) !== 0 ? ', sticky' : ''}); give the agent a directory of its own, e.g. /var/lib/peripety`);
  }
  return tightenMode(dir, PRIVATE_DIR_MODE, true);
}

/** System directories that are never anyone's state directory (making them 0700 would break the host). */
const SHARED_DIRS = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/media', '/mnt', '/opt', '/root', '/run', '/sbin',
  '/srv', '/tmp', '/usr', '/usr/lib', '/usr/local', '/usr/share', '/var', '/var/lib', '/var/log', '/var/run', '/var/tmp', '/var/cache',
  '/var/spool', '/var/opt', '/var/local',
]);

/** Throws when `dir` is a well-known system directory. */
function refuseSharedDir(dir: string, what: string): void {
  const abs = path.resolve(dir);
  if (SHARED_DIRS.has(abs)) {
    throw new UnsafePathError(`${what} ${abs} is a system directory; give the agent a directory of its own, e.g. /var/lib/peripety (its mode is made 0700)`);
  }
}

/**
 * `dir` made 0700 when it lies strictly inside `root` (a backend's directory
 * in the state directory); a directory elsewhere keeps its mode (it was the
 * administrator's choice, e.g. one shared with a log shipper).
 */
export function tightenDirInside(root: string, dir: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(dir));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return false;
  return tightenMode(dir, PRIVATE_DIR_MODE, true);
}

/**
 * chmod `p` to `mode` when group or others have any access; a symbolic link
 * is never followed (a regular file or directory only). Returns true when
 * the mode changed.
 */
export function tightenMode(p: string, mode: number, isDir = false): boolean {
  let st: Stats;
  try {
    st = lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (isDir ? !st.isDirectory() : !st.isFile()) return false;
  if ((st.mode & 0o777) === mode || (st.mode & 0o077) === 0) return false;
  chmodSync(p, mode);
  return true;
}

/** entries a tree walk looks at, at most (a state directory holds far fewer) */
const MAX_TREE_ENTRIES = 100_000;

/**
 * Make the named entries of a directory private: the directory itself and
 * each named directory (recursively) 0700, regular files 0600; symbolic
 * links and special files are left alone (never followed), and nothing that
 * is not named is touched. Bounded in depth and entries. Returns how many
 * modes changed. Used at start on the state directory, where an older
 * version (or a hostPath) left 0755/0644.
 */
export function privatizeTree(dir: string, names: readonly string[]): number {
  let changed = 0;
  let seen = 0;
  const visit = (p: string, depth: number): void => {
    if (++seen > MAX_TREE_ENTRIES) return;
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isFile()) {
      if (tightenMode(p, PRIVATE_FILE_MODE)) changed++;
      return;
    }
    if (!st.isDirectory()) return;
    if (tightenMode(p, PRIVATE_DIR_MODE, true)) changed++;
    if (depth >= MAX_DIR_DEPTH) return;
    let entries: string[];
    try {
      entries = readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries) visit(path.join(p, e), depth + 1);
  };
  if (tightenMode(dir, PRIVATE_DIR_MODE, true)) changed++;
  for (const n of names) visit(path.join(dir, n), 1);
  return changed;
}

interface ReadLimitOptions {
  /** bytes; a larger file is refused */
  maxBytes: number;
  /** refuse a symbolic link (the agent's own state files); configuration may be one (ConfigMap and Secret mounts are) */
  noFollow?: boolean;
}

/**
 * Read a whole file as UTF-8 when it is a regular file of at most maxBytes.
 * Opened non-blocking, so a FIFO is refused at once instead of blocking for
 * a writer; /dev/zero and other devices are refused before any read.
 * Throws UnsafePathError (kind, size) or the open error (ENOENT…).
 */
export function readRegularFile(file: string, what: string, opts: ReadLimitOptions): string {
  const flags = C.O_RDONLY | C.O_NONBLOCK | C.O_NOCTTY | (opts.noFollow ? C.O_NOFOLLOW : 0);
  let fd: number;
  try {
    fd = openSync(file, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP' && opts.noFollow) {
      throw new UnsafePathError(`${what} ${file} is a symbolic link; it is not followed`);
    }
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafePathError(`${what} ${file} is ${describeKind(st)}; only a regular file is read`);
    if (st.size > opts.maxBytes) throw new UnsafePathError(`${what} ${file} is larger than ${opts.maxBytes} bytes (${st.size})`);
    // The file may grow while we read: never read past the limit.
    const buf = Buffer.allocUnsafe(Math.min(opts.maxBytes + 1, Math.max(st.size + 1, 4096)));
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > opts.maxBytes) throw new UnsafePathError(`${what} ${file} is larger than ${opts.maxBytes} bytes`);
        break;
      }
      const n = readSync(fd, buf, len, buf.length - len, len);
      if (n === 0) break;
      len += n;
    }
    if (len > opts.maxBytes) throw new UnsafePathError(`${what} ${file} is larger than ${opts.maxBytes} bytes`);
    return buf.toString('utf8', 0, len);
  } finally {
    closeSync(fd);
  }
}

/**
 * Open (create) a private file for writing: never through a symbolic link,
 * never a device or FIFO (O_NONBLOCK: a FIFO without a reader fails instead
 * of blocking), 0600 also when it existed with a looser mode.
 */
export function openPrivateFile(file: string, what: string, flags: number): number {
  let fd: number;
  try {
    fd = openSync(file, flags | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY, PRIVATE_FILE_MODE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new UnsafePathError(`${what} ${file} is a symbolic link; it is not followed`);
    if (code === 'ENXIO') throw new UnsafePathError(`${what} ${file} is a FIFO (named pipe); only a regular file is accepted`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafePathError(`${what} ${file} is ${describeKind(st)}; only a regular file is accepted`);
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Replace `file` atomically with `data` (a private temporary file, optional
 * fsync, rename). The rename replaces a symbolic link itself, never its
 * target; a directory or device in the way is refused.
 */
export function writePrivateFileAtomic(file: string, data: string, what: string, opts: { fsync?: boolean } = {}): void {
  checkRegularOrAbsent(file, what);
  // one fixed name (one agent owns a state directory): a crash leaves at most one leftover
  const tmp = `${file}.tmp`;
  // a leftover of a crashed run (or something planted): start from nothing
  try {
    unlinkSync(tmp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = openPrivateFile(tmp, what, C.O_WRONLY | C.O_CREAT | C.O_EXCL);
  try {
    const buf = Buffer.from(data);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.fsync) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // best effort
    }
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
}
