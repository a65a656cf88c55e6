// Writing many lines into the real kernel log quickly (root). The kernel
// rate-limits /dev/kmsg writers per open file unless
// /proc/sys/kernel/printk_devkmsg is "on" (default "ratelimit": a burst of
// 10 lines per 5 s per descriptor, the rest dropped with a "callbacks
// suppressed" note). unlimitDevkmsg() turns the limit off and returns how to
// put the previous setting back; when it cannot (a read-only /proc/sys),
// the flood opens a fresh descriptor per line instead, which gets a fresh
// budget each time.
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { atExit } from './exit.ts';

const DEVKMSG = '/proc/sys/kernel/printk_devkmsg';

/** Set printk_devkmsg to "on"; resolves with a restore function, or null when it cannot be changed. */
export function unlimitDevkmsg(): { previous: string; restore: () => void } | null {
  let previous: string;
  try {
    previous = readFileSync(DEVKMSG, 'utf8').trim();
  } catch {
    return null;
  }
  if (previous === 'on') return { previous, restore: () => undefined };
  try {
    writeFileSync(DEVKMSG, 'on\n');
  } catch {
    return null;
  }
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    unregister();
    try {
      writeFileSync(DEVKMSG, `${previous}\n`);
    } catch {
      // best effort: nothing else to do
    }
  };
  // even when the test process dies mid-flood
  const unregister = atExit(restore);
  return { previous, restore };
}

export interface FloodResult {
  written: number;
  elapsedMs: number;
  /** one descriptor for all lines (printk_devkmsg on) or one per line */
  mode: 'one-fd' | 'fd-per-line';
}

/**
 * Write `count` copies of `line` (kernel level `level`) in `batches` even
 * batches spread over `spreadMs`: a storm of identical lines as a failing
 * disk produces. `unlimited`: printk_devkmsg is "on", so one descriptor
 * suffices.
 */
export async function floodKmsg(line: string, opts: { count: number; level?: number; spreadMs: number; batches?: number; unlimited: boolean }): Promise<FloodResult> {
  const record = Buffer.from(`<${opts.level ?? 4}>${line.endsWith('\n') ? line : `${line}\n`}`);
  const batches = opts.batches ?? 100;
  const t0 = Date.now();
  let written = 0;
  const fd = opts.unlimited ? openSync('/dev/kmsg', 'w') : -1;
  try {
    for (let b = 0; b < batches; b++) {
      const upto = Math.round(((b + 1) * opts.count) / batches);
      for (; written < upto; written++) {
        if (fd >= 0) writeSync(fd, record);
        else {
          const f = openSync('/dev/kmsg', 'w');
          try {
            writeSync(f, record);
          } finally {
            closeSync(f);
          }
        }
      }
      await sleep(Math.max(0, t0 + ((b + 1) * opts.spreadMs) / batches - Date.now()));
    }
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return { written, elapsedMs: Date.now() - t0, mode: fd >= 0 ? 'one-fd' : 'fd-per-line' };
}
