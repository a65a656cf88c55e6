// The shared multicast key (docs/multicast.md, "Signed datagrams"): read
// from a file named in the configuration by the agent (sender) and by
// `peripety receive` / `prpt monitor` (receivers). The file is a trust
// boundary: it must be a regular file (a FIFO would block the reader, a
// device would be read without end), it is read up to a small bound, and a
// file that others can write is refused (whoever can write it can forge
// events). One that others can read is allowed with a warning: Kubernetes
// mounts Secrets 0644 unless told otherwise, and the pod's mount namespace
// is what protects it there.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Enough for any sensible key; a longer file is not a key file. */
const MAX_KEY_FILE_BYTES = 4096;
/** 128 bits: below this the key can be guessed. */
const MIN_KEY_BYTES = 16;

type KeyFileResult =
  | { ok: true; key: Buffer; warnings: string[] }
  | { ok: false; error: string };

function kind(mode: number): string {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFDIR: return 'a directory';
    case constants.S_IFIFO: return 'a FIFO';
    case constants.S_IFCHR: return 'a character device';
    case constants.S_IFBLK: return 'a block device';
    case constants.S_IFSOCK: return 'a socket';
    default: return 'not a regular file';
  }
}

/**
 * The key in `file`: its bytes without trailing white space (so `echo … >
 * file` works), at least MIN_KEY_BYTES. Never throws; never blocks on a FIFO
 * (opened non-blocking, refused after fstat).
 */
export function readKeyFile(file: string): KeyFileResult {
  const fail = (why: string): KeyFileResult => ({ ok: false, error: `the multicast key file ${file} ${why}` });
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    return fail(`cannot be opened: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return fail(`is ${kind(st.mode)}; it must be a regular file`);
    if ((st.mode & 0o022) !== 0) return fail(`is writable by ${(st.mode & 0o002) !== 0 ? 'every user' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}); whoever can write it can forge events: chmod go-w`);
    if (st.size > MAX_KEY_FILE_BYTES) return fail(`is ${st.size} bytes; a key file holds at most ${MAX_KEY_FILE_BYTES}`);
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_KEY_FILE_BYTES) return fail(`holds more than ${MAX_KEY_FILE_BYTES} bytes`);
    }
    let end = n;
    while (end > 0 && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x20 || buf[end - 1] === 0x09)) end--;
    if (end < MIN_KEY_BYTES) return fail(`holds ${end} bytes; a key has at least ${MIN_KEY_BYTES} (e.g. head -c 32 /dev/urandom | base64 > FILE)`);
    const warnings = (st.mode & 0o004) !== 0 ? [`the multicast key file ${file} is readable by every user (mode ${(st.mode & 0o777).toString(8)}); anyone who reads it can forge events: chmod o-r`] : [];
    return { ok: true, key: Buffer.from(buf.subarray(0, end)), warnings };
  } catch (err) {
    return fail(`cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The key of `file` for a sender or a listener: its warnings go to `warn`,
 * a problem is thrown (`prefix` first, e.g. the configuration key that named it).
 */
export function loadKeyFile(file: string, warn: (warning: string) => void, prefix = ''): Buffer {
  const r = readKeyFile(file);
  if (!r.ok) throw new Error(`${prefix}${r.error}`);
  for (const w of r.warnings) warn(w);
  return r.key;
}
