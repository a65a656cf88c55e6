// Real kernel storage faults for root tests: a loop device over a FUSE file
// that fails a byte range with EIO (block-layer "I/O error, dev loopN, …"),
// and an ext4 image with a cleared directory inode ("EXT4-fs error (device
// loopN): ext4_lookup…"). Every fixture gets its own temp directory and its
// own loop device (`losetup -f --show`), so tests may run in parallel.
// Packages: hack/ci-deps.sh. Each fixture's cleanup() is idempotent and works
// after a partial setup; anything a test forgets is torn down at process exit.
import { type ChildProcess, type ExecFileException, execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const EIOFS = path.join(import.meta.dirname, 'eiofs.py');
/** Debian's interpreter: python3-fusepy lives there, not under a pyenv/venv python3. */
const PYTHON = '/usr/bin/python3';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** When not root: skip `t` loudly (test report and stderr) and return false. */
export function requireRoot(t: TestContext, why = 'needs loop devices, FUSE and mount'): boolean {
  if (isRoot()) return true;
  process.stderr.write(`*** SKIPPED (needs root): ${t.name}: ${why} ***\n`);
  t.skip(`NOT ROOT: ${why}`);
  return false;
}

// ---------------------------------------------------------------------------
// commands

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a command; on failure throw an Error naming it, with its exit status and stderr. */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (err: ExecFileException | null, stdout, stderr) => {
      if (!err) {
        resolve({ stdout, stderr });
        return;
      }
      const how = err.killed
        ? `timed out after ${timeoutMs} ms`
        : err.signal
          ? `killed by ${err.signal}`
          : typeof err.code === 'number'
            ? `exit status ${err.code}`
            : `could not start (${String(err.code ?? err.message)})`;
      const detail = (stderr || stdout || '').trim();
      reject(new Error(`command failed: ${[cmd, ...args].join(' ')}: ${how}${detail ? `: ${detail}` : ''}`));
    });
  });
}

/** Synchronous best-effort command (exit-time cleanup): never throws. */
function runQuietSync(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // best effort
  }
}

// ---------------------------------------------------------------------------
// exit-time safety net: whatever a test did not clean up

const pendingAtExit = new Set<() => void>();
let exitHookInstalled = false;
function atExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of pendingAtExit) {
        try {
          f();
        } catch {
          // best effort
        }
      }
      pendingAtExit.clear();
    });
  }
  pendingAtExit.add(fn);
  return () => pendingAtExit.delete(fn);
}

// ---------------------------------------------------------------------------
// mounts and loop devices

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The filesystem type mounted exactly at `dir` (the topmost mount), or undefined. */
export function mountTypeAt(dir: string): string | undefined {
  let found: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0 || fields.length < 5) continue;
    if (unescapeMountinfo(fields[4] ?? '') === dir) found = fields[sep + 1];
  }
  return found;
}

export function isMounted(dir: string): boolean {
  return mountTypeAt(dir) !== undefined;
}

/** The backing file of /dev/<loopDev> per sysfs, or undefined when it is detached. */
export function loopBackingFile(loopDev: string): string | undefined {
  try {
    const s = readFileSync(`/sys/block/${loopDev}/loop/backing_file`, 'utf8').trim();
    return s || undefined;
  } catch {
    return undefined;
  }
}

async function attachLoop(file: string, directIo: boolean, readOnly = false): Promise<string> {
  const base = ['-f', '--show', ...(readOnly ? ['-r'] : [])];
  let out: RunResult;
  if (directIo) {
    try {
      out = await run('losetup', [...base, '--direct-io=on', file]);
    } catch {
      out = await run('losetup', [...base, file]);
    }
  } else {
    out = await run('losetup', [...base, file]);
  }
  const dev = out.stdout.trim();
  const m = /^\/dev\/(loop\d+)$/.exec(dev);
  if (!m?.[1]) throw new Error(`losetup -f --show ${file}: unexpected output ${JSON.stringify(out.stdout)}`);
  return m[1];
}

/** Detach /dev/<loopDev> if it is still bound to `file`; wait until the kernel let it go. */
async function detachLoop(loopDev: string, file: string): Promise<void> {
  if (loopBackingFile(loopDev) !== file) return; // already gone (or reused by someone else)
  let lastErr: unknown;
  for (let i = 0; i < 50; i++) {
    if (loopBackingFile(loopDev) !== file) return;
    try {
      await run('losetup', ['-d', `/dev/${loopDev}`]);
    } catch (err) {
      lastErr = err;
    }
    // the kernel clears the device at last close: someone else may hold it briefly
    for (let j = 0; j < 10 && loopBackingFile(loopDev) === file; j++) await sleep(20);
  }
  if (loopBackingFile(loopDev) === file) {
    throw new Error(`could not detach /dev/${loopDev} from ${file}${lastErr instanceof Error ? `: ${lastErr.message}` : ''}`);
  }
}

/** Unmount `dir` (normal, then lazy); no-op when nothing is mounted there. */
async function unmount(dir: string, fuse: boolean): Promise<void> {
  if (!isMounted(dir)) return;
  const errors: string[] = [];
  const attempts: [string, string[]][] = fuse
    ? [['fusermount3', ['-u', dir]], ['umount', [dir]], ['umount', ['-l', dir]]]
    : [['umount', [dir]], ['umount', ['-l', dir]]];
  for (const [cmd, args] of attempts) {
    try {
      await run(cmd, args);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
    if (!isMounted(dir)) return;
  }
  throw new Error(`could not unmount ${dir}: ${errors.join('; ')}`);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!exited(child) && Date.now() < deadline) await sleep(20);
  return exited(child);
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Run `steps` in order, each even if an earlier one failed; throw the first failure. */
async function allSteps(steps: (() => Promise<void>)[]): Promise<void> {
  const errors: Error[] = [];
  for (const s of steps) {
    try {
      await s();
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new Error(`cleanup failed: ${errors.map((e) => e.message).join(' | ')}`);
}

async function makeTempDir(prefix: string): Promise<string> {
  // realpath: the kernel reports loop backing files by their resolved path
  return realpathSync(await mkdtemp(path.join(os.tmpdir(), prefix)));
}

// ---------------------------------------------------------------------------
// eioLoop

export interface EioLoopOptions {
  /** Size of the served file, bytes (default 64 MiB). */
  sizeBytes?: number;
  /** Start of the failing range, bytes (default 8 MiB: sector 16384). */
  badOffset?: number;
  /** Length of the failing range, bytes (default 64 KiB). */
  badLength?: number;
}

export interface EioLoop {
  /** Kernel name of the loop device, e.g. "loop3". */
  loopDev: string;
  /** The FUSE file under the loop device, as the kernel reports it. */
  backingFile: string;
  /** The FUSE mount point. */
  mountPoint: string;
  /** First 512-byte sector of the bad range on the loop device. */
  badSector: number;
  /**
   * One direct 4 KiB read at the start of the bad range through the loop
   * device; it fails with EIO and the kernel logs
   * `I/O error, dev loopN, sector <badSector> op 0x0:(READ) …` (rate-limited
   * per call site: about 10 lines per 5 s machine-wide). Throws if the read
   * unexpectedly succeeds.
   */
  readBadRange(): Promise<void>;
  /** Detach, unmount, stop eiofs, remove temp files. Idempotent. */
  cleanup(): Promise<void>;
}

/** A loop device over a FUSE file (test/helpers/eiofs.py) whose bad byte range fails with EIO. */
export async function eioLoop(opts: EioLoopOptions = {}): Promise<EioLoop> {
  const sizeBytes = opts.sizeBytes ?? 64 << 20;
  const badOffset = opts.badOffset ?? 8 << 20;
  const badLength = opts.badLength ?? 64 << 10;
  if (sizeBytes % 512 !== 0 || sizeBytes <= 0) throw new Error(`eioLoop: sizeBytes ${sizeBytes} is not a positive multiple of 512`);
  if (badOffset < 0 || badLength <= 0 || badOffset + badLength > sizeBytes) {
    throw new Error(`eioLoop: bad range [${badOffset}, +${badLength}) does not fit in ${sizeBytes} bytes`);
  }

  const dir = await makeTempDir('prpt-eio-');
  const mountPoint = path.join(dir, 'mnt');
  const logFile = path.join(dir, 'eiofs.log');
  const backingFile = path.join(mountPoint, 'disk.img');
  let child: ChildProcess | undefined;
  let loopDev: string | undefined;
  let cleaned = false;

  const cleanupSync = (): void => {
    if (loopDev && loopBackingFile(loopDev) === backingFile) runQuietSync('losetup', ['-d', `/dev/${loopDev}`]);
    if (isMounted(mountPoint)) {
      runQuietSync('fusermount3', ['-u', mountPoint]);
      if (isMounted(mountPoint)) runQuietSync('umount', ['-l', mountPoint]);
    }
    if (child && !exited(child)) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const forgetExitHook = atExit(cleanupSync);

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    try {
      await allSteps([
        async () => {
          if (loopDev) await detachLoop(loopDev, backingFile);
        },
        () => unmount(mountPoint, true),
        async () => {
          if (!child || exited(child)) return;
          // unmounting ends eiofs; SIGTERM, then SIGKILL, if it lingers
          if (await waitExit(child, 3000)) return;
          child.kill('SIGTERM');
          if (await waitExit(child, 2000)) return;
          child.kill('SIGKILL');
          await waitExit(child, 2000);
        },
        async () => {
          // a killed eiofs leaves a dead mount ("Transport endpoint is not connected")
          if (isMounted(mountPoint)) await unmount(mountPoint, true);
        },
        () => rm(dir, { recursive: true, force: true }),
      ]);
    } finally {
      forgetExitHook();
    }
  };

  try {
    await run('mkdir', ['-p', mountPoint]);
    const logFd = openSync(logFile, 'w');
    try {
      child = spawn(PYTHON, [EIOFS, mountPoint, String(sizeBytes), String(badOffset), String(badLength)], {
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    child.unref(); // a forgotten cleanup must not keep the test process alive
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });

    // wait until the mount is really there and serves the file
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (spawnError) throw new Error(`could not start ${PYTHON} ${EIOFS}: ${spawnError.message}`);
      if (exited(child)) {
        throw new Error(`eiofs exited early (${child.exitCode ?? child.signalCode}): ${readLog(logFile) || 'no output'}` +
          (existsSync(PYTHON) ? '' : ` (${PYTHON} missing: run hack/ci-deps.sh)`));
      }
      if (mountTypeAt(mountPoint)?.startsWith('fuse')) {
        try {
          if ((await stat(backingFile)).size === sizeBytes) break;
        } catch {
          // not answering yet
        }
      }
      if (Date.now() > deadline) throw new Error(`eiofs did not mount ${mountPoint} within 15 s: ${readLog(logFile) || 'no output'}`);
      await sleep(25);
    }

    // Direct I/O from the loop device to the file: no page cache of the loop
    // device's own in between (either mode logs the block-layer error).
    loopDev = await attachLoop(backingFile, true);
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }

  const dev = loopDev;
  const badSector = Math.floor(badOffset / 512);
  return {
    loopDev: dev,
    backingFile,
    mountPoint,
    badSector,
    async readBadRange(): Promise<void> {
      // 4 KiB (the loop device's usual I/O size) starting at the 4 KiB block that holds badOffset
      const block = Math.floor(badOffset / 4096);
      try {
        await run('dd', [`if=/dev/${dev}`, 'of=/dev/null', 'bs=4096', `skip=${block}`, 'count=1', 'iflag=direct', 'status=none']);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (/Input\/output error/.test(msg)) return; // the expected failure
        throw err;
      }
      throw new Error(`readBadRange: a direct read of /dev/${dev} at block ${block} succeeded; expected EIO (eiofs log: ${readLog(logFile)})`);
    },
    cleanup,
  };
}

// ---------------------------------------------------------------------------
// corruptExt4

export interface CorruptExt4 {
  /** Kernel name of the loop device, e.g. "loop3". */
  loopDev: string;
  /** Where the filesystem is mounted (errors=continue). */
  mountPoint: string;
  /** The image file under the loop device. */
  imageFile: string;
  /** The directory whose inode was cleared (a path under mountPoint). */
  damagedDir: string;
  /**
   * `ls` the damaged directory: the lookup fails and the kernel logs
   * `EXT4-fs error (device loopN): ext4_lookup:…: inode #2: comm ls: deleted inode referenced: 12`
   * (rate-limited per filesystem: ext4 allows about 10 per 5 s).
   */
  triggerError(): Promise<void>;
  /** Unmount, detach, remove temp files. Idempotent. */
  cleanup(): Promise<void>;
}

/** A small ext4 image whose directory `victim` has a cleared inode, mounted errors=continue on a loop device. */
export async function corruptExt4(opts: { sizeBytes?: number } = {}): Promise<CorruptExt4> {
  const sizeBytes = opts.sizeBytes ?? 32 << 20;
  const dir = await makeTempDir('prpt-ext4-');
  const imageFile = path.join(dir, 'fs.img');
  const mountPoint = path.join(dir, 'mnt');
  const dirName = 'victim';
  const damagedDir = path.join(mountPoint, dirName);
  let loopDev: string | undefined;
  let cleaned = false;

  const cleanupSync = (): void => {
    if (isMounted(mountPoint)) {
      runQuietSync('umount', [mountPoint]);
      if (isMounted(mountPoint)) runQuietSync('umount', ['-l', mountPoint]);
    }
    if (loopDev && loopBackingFile(loopDev) === imageFile) runQuietSync('losetup', ['-d', `/dev/${loopDev}`]);
    rmSync(dir, { recursive: true, force: true });
  };
  const forgetExitHook = atExit(cleanupSync);

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    try {
      await allSteps([
        () => unmount(mountPoint, false),
        async () => {
          if (loopDev) await detachLoop(loopDev, imageFile);
        },
        () => rm(dir, { recursive: true, force: true }),
      ]);
    } finally {
      forgetExitHook();
    }
  };

  try {
    await run('mkdir', ['-p', mountPoint]);
    await run('truncate', ['-s', String(sizeBytes), imageFile]);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'prpt-test', imageFile], 60_000);
    await run('debugfs', ['-w', '-R', `mkdir ${dirName}`, imageFile]);
    // check the directory exists before damaging it (debugfs reports errors on stderr, exit 0)
    const ls = await run('debugfs', ['-R', `stat ${dirName}`, imageFile]);
    if (!/Type: directory/.test(ls.stdout)) throw new Error(`debugfs mkdir ${dirName} in ${imageFile} did not create it: ${ls.stderr.trim()}`);
    await run('debugfs', ['-w', '-R', `clri ${dirName}`, imageFile]);
    loopDev = await attachLoop(imageFile, false);
    await run('mount', ['-t', 'ext4', '-o', 'errors=continue', `/dev/${loopDev}`, mountPoint]);
    if (mountTypeAt(mountPoint) !== 'ext4') throw new Error(`mount /dev/${loopDev} ${mountPoint}: not an ext4 mount afterwards`);
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }

  return {
    loopDev,
    mountPoint,
    imageFile,
    damagedDir,
    async triggerError(): Promise<void> {
      try {
        await run('ls', [damagedDir]);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (/Structure needs cleaning|Input\/output error/.test(msg)) return; // the expected failure
        throw err;
      }
      throw new Error(`triggerError: ls ${damagedDir} succeeded; expected the lookup of the cleared inode to fail`);
    },
    cleanup,
  };
}
