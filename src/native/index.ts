// Loader for the native addon (src/native/peripety_native.c), built by
// `npm ci` (hack/build-native.mjs) into build/.
import { addonLoader } from './load.ts';

export interface Native {
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): unknown;
  pollStop(handle: unknown): void;
  /** bytes read, or -errno */
  read(fd: number, buf: Uint8Array): number;
  /**
   * Records one after the other into `buf`, one read() each (/dev/kmsg: a
   * record per read): how many. Record i ends at `ends[i]` and starts where
   * the one before ended (the first at 0). Stops at the first read that
   * returns no record, after `maxReads` reads, when `ends` is full or when
   * fewer than `minRoom` bytes are left; an EPIPE is skipped (counted as a
   * read). `state[0]`: -errno of the read that stopped it (-EAGAIN: no more
   * now), 0 at end of file, 1 at a limit; `state[1]`: reads made.
   */
  readRecords(fd: number, buf: Uint8Array, ends: Int32Array, state: Int32Array, maxReads: number, minRoom: number): number;
  /** new offset, or -errno */
  lseek(fd: number, offset: number, whence: number): number;
  READABLE: number;
  PRIORITIZED: number;
  EAGAIN: number;
  EPIPE: number;
  EINVAL: number;
}

/** The addon, loaded on the first call. */
export const loadNative = addonLoader<Native>('peripety_native', 'the native addon');

export const SEEK_SET = 0;
export const SEEK_END = 2;
