// The raw record every collector hands the pipeline (parsers read it, the
// kmsg parser in src/kmsg/record.ts builds it). A contract: imports nothing.

/** One kernel log record, as the collectors and `prpt parse` hand it on. */
export interface KernelRecord {
  /** kernel log level 0-7, or -1 when the input did not say (plain dmesg) */
  level: number;
  /** syslog facility: 0 is the kernel, 1 user space writing to /dev/kmsg */
  facility: number;
  /** record sequence number, or -1 when the input had none */
  seq: number;
  /** microseconds since boot (CLOCK_MONOTONIC), or -1 when unknown */
  tsUsec: number;
  /** `-` complete, `c` / `+` continuation fragments of older kernels */
  flag: string;
  /** the message, `\xNN` escapes undone */
  message: string;
  /** ` SUBSYSTEM=` of the continuation dictionary */
  subsystem: string;
  /** ` DEVICE=` of the continuation dictionary (`b8:16`, `+scsi:2:0:0:0`…) */
  device: string;
  /**
   * Only for a line read from text (`prpt parse`): the host and the
   * wall-clock time (µs since the epoch) the line's format carried. The event
   * says them instead of this machine's name and its boot time + tsUsec.
   */
  host?: string;
  wallUs?: number;
}
