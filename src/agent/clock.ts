// Kernel record timestamps count microseconds on the monotonic clock since
// boot; events carry Unix time. The offset is taken once per start (or reload).
export function bootEpochUs(): number {
  // libuv's hrtime is CLOCK_MONOTONIC, the clock /dev/kmsg timestamps follow
  return Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n);
}
