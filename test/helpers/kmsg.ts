// Writing lines into the real kernel log. Each line gets its own open():
// the kernel rate-limits writers per open file (printk_devkmsg=ratelimit:
// 10 lines per 5 s), and a fresh descriptor starts a fresh budget.
import { closeSync, openSync, writeSync } from 'node:fs';

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
