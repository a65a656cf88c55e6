// What several parsers recognize the same way: lines the kernel prints for
// more than one subsystem, and the clean-up every parser does first.
import type { DeviceRef, Finding } from '../contracts/parser.ts';

/**
 * `s` without trailing white space. Most kernel lines have none, so the
 * check of the last character spares them trimEnd() (the parsers are on the
 * hot path of every record). nvme's nvme_log_error() ends its lines with a
 * space.
 */
export function trimLineEnd(s: string): string {
  const last = s.charCodeAt(s.length - 1);
  return last === 32 || last === 9 || last === 10 || last === 13 ? s.trimEnd() : s;
}

/**
 * lib/ratelimit.c: `<function>: <N> callbacks suppressed`; ext4's own rate
 * limiters are named `EXT4-fs error`, `EXT4-fs warning` and `EXT4-fs`.
 */
const SUPPRESSED = /^([A-Za-z_][\w.]{0,63}|EXT4-fs(?: error| warning)?): (\d{1,10}) callbacks suppressed$/;

/**
 * The kernel's rate limiter dropped messages of a storage function
 * (classify.ts routes only those to the block, scsi and nvme parsers):
 * KERNEL_LOG_SUPPRESSED, or null when `m` is not such a line.
 */
export function suppressedFinding(m: string): Finding | null {
  const s = SUPPRESSED.exec(m);
  if (!s) return null;
  return {
    type: 'KERNEL_LOG_SUPPRESSED',
    device: null,
    msg: `The kernel suppressed ${s[2]!} messages from ${s[1]!}`,
    ext: { suppressed: s[2]!, function: s[1]! },
  };
}

/** `<disk>: detected capacity change from <from> to <to>` (block/genhd.c), as the block and nvme parsers see it. */
export function capacityChangeFinding(device: DeviceRef, from: string, to: string): Finding {
  return {
    type: 'BLK_CAPACITY_CHANGE',
    device,
    msg: `The capacity of {dev} changed from ${from} to ${to}`,
    ext: { from, to },
  };
}
