// Writing lines into the real kernel log, and reading the ring back. Each line gets its own open():
// the kernel rate-limits writers per open file (printk_devkmsg=ratelimit:
// 10 lines per 5 s), and a fresh descriptor starts a fresh budget.
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';

/** Write `line` to /dev/kmsg at kernel level `level` (user facility, as for any writer). */
export function injectKmsg(line: string, level = 3): void {
  const fd = openSync('/dev/kmsg', 'w');
  try {
    // The newline matters: without it the kernel keeps the record open for a
    // continuation and readers see it only when some later record closes it.
    writeSync(fd, `<${level}>${line.endsWith('\n') ? line : `${line}\n`}`);
  } finally {
    closeSync(fd);
  }
}

/** A device-like name no machine has, unique per call: lines using it belong to one test. */
export function uniqueDevice(prefix = 'prpt'): string {
  return `${prefix}${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Every record in the kernel ring now, as /dev/kmsg gives them (prefix;message, then the dictionary lines): a non-blocking read to the end. */
export function readKmsgRing(): string[] {
  const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(16 * 1024);
  const out: string[] = [];
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records overwritten while reading: go on with the next one
        if (code === 'EAGAIN') break; // the end of the ring
        throw err;
      }
      if (n === 0) break;
      out.push(buf.subarray(0, n).toString('latin1'));
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
