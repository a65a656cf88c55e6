// Loader for the native addon (src/native/peripety_native.c), built by
// `npm ci` (hack/build-native.mjs) into build/.
import { addonLoader } from './load.ts';

export interface Native {
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): unknown;
  pollStop(handle: unknown): void;
  /** bytes read, or -errno */
  read(fd: number, buf: Uint8Array): number;
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
