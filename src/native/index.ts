// Loader for the native addon (src/native/peripety_native.c), built by
// `npm ci` (hack/build-native.mjs) into build/.
import { createRequire } from 'node:module';
import path from 'node:path';

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

const ADDON = path.resolve(import.meta.dirname, '../../build/peripety_native.node');
let cached: Native | null = null;

export function loadNative(): Native {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)(ADDON) as Native;
    return cached;
  } catch (err) {
    throw new Error(`the native addon is missing or broken (${ADDON}): run "npm ci" or "node hack/build-native.mjs" (needs a C compiler): ${(err as Error).message}`);
  }
}

export const SEEK_SET = 0;
export const SEEK_END = 2;
