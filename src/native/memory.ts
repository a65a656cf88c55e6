// Loader for the allocator addon (src/native/peripety_memory.c), built by
// `npm ci` (hack/build-native.mjs) into build/.
import { addonLoader } from './load.ts';

export interface MemoryNative {
  /** malloc_trim(0): 1 when memory went back to the kernel */
  trim(): number;
  /** mallinfo2(): [arena, in use, free, mmap'd blocks, releasable top] in bytes */
  stats(): [number, number, number, number, number];
}

/** The addon, loaded on the first call. */
export const loadMemoryNative = addonLoader<MemoryNative>('peripety_memory', 'the memory addon');
