// Loader for the AF_UNIX datagram addon (src/native/peripety_unixdgram.c),
// built by `npm ci` (hack/build-native.mjs) into build/.
import os from 'node:os';
import { addonLoader } from './load.ts';

export interface UnixDgramNative {
  /** a non-blocking, close-on-exec AF_UNIX SOCK_DGRAM socket (send buffer raised towards `sndbufBytes`, best effort): fd or -errno */
  socket(sndbufBytes: number): number;
  /** 0 or -errno */
  connect(fd: number, path: string): number;
  /** 0 or -errno (tests: play the server) */
  bind(fd: number, path: string): number;
  /** one datagram to `path` (null: the connected peer): bytes sent or -errno; -EAGAIN when the peer's queue is full */
  send(fd: number, path: string | null, data: Uint8Array): number;
  /** the bytes in a sealed memfd, passed with SCM_RIGHTS in an empty datagram: 0 or -errno */
  sendMemfd(fd: number, path: string | null, data: Uint8Array): number;
  /**
   * One datagram into `buf`: its full length, or -errno. `meta[0]`: a passed
   * file descriptor (the caller closes it) or -1; `meta[1]`: 1 when cut.
   */
  recv(fd: number, buf: Uint8Array, meta: Int32Array): number;
  /** F_GET_SEALS of a memfd, or -errno */
  getSeals(fd: number): number;
  /** 0 or -errno */
  close(fd: number): number;
  /** libuv's UV_WRITABLE, for peripety_native's pollStart */
  WRITABLE: number;
  EAGAIN: number;
  EMSGSIZE: number;
  ENOENT: number;
  ECONNREFUSED: number;
  ENOTCONN: number;
  ENOBUFS: number;
  ENAMETOOLONG: number;
  EINVAL: number;
  EPERM: number;
  EACCES: number;
  F_SEAL_SEAL: number;
  F_SEAL_SHRINK: number;
  F_SEAL_GROW: number;
  F_SEAL_WRITE: number;
}

/** The addon, loaded on the first call. */
export const loadUnixDgram = addonLoader<UnixDgramNative>('peripety_unixdgram', 'the unixdgram addon');

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, code]) => [code, name]));

/** The name of a -errno result (ECONNREFUSED), for logs and errors. */
export function errnoName(negErrno: number): string {
  return ERRNO_NAMES.get(-negErrno) ?? `errno ${-negErrno}`;
}
