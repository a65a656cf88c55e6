// Kernel record timestamps count microseconds on the monotonic clock since
// boot; events carry Unix time. The offset is taken once per start (or reload).
import { nowUs } from '../events/time.ts';

export function bootEpochUs(): number {
  // libuv's hrtime is CLOCK_MONOTONIC, the clock /dev/kmsg timestamps follow
  return nowUs() - Number(process.hrtime.bigint() / 1000n);
}
