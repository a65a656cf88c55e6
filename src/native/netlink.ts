// Loader for the netlink addon (src/native/peripety_netlink.c), built by
// `npm ci` (hack/build-native.mjs) into build/.
import { addonLoader } from './load.ts';

interface NetlinkNative {
  /**
   * A non-blocking, close-on-exec NETLINK_KOBJECT_UEVENT socket bound to the
   * multicast `groups` (bit 0: kernel, bit 1: udev), with SO_PASSCRED and a
   * receive buffer of about `rcvbufBytes` (`rcvbuf`: what the kernel granted,
   * doubled by its bookkeeping). Throws an Error naming the failing call.
   */
  open(groups: number, rcvbufBytes: number): { fd: number; rcvbuf: number };
  /**
   * One datagram into `buf`: its full length (more than `buf.length` when it
   * was cut), or -errno (-EAGAIN: nothing to read; -ENOBUFS: the receive
   * buffer overflowed and uevents were lost). `meta` gets the sender: see META.
   */
  recv(fd: number, buf: Uint8Array, meta: Int32Array): number;
  /** multicast `buf` to `groups` as a user-space sender (tests play udevd); bytes sent or -errno */
  send(fd: number, buf: Uint8Array, groups: number): number;
  /** 0 or -errno */
  close(fd: number): number;
  EAGAIN: number;
  ENOBUFS: number;
  EINTR: number;
  EBADF: number;
  EPERM: number;
  EACCES: number;
  /** the length `meta` must have */
  META_LEN: number;
}

/** Slots of recv()'s `meta` array. */
export const META = {
  /** the sender's netlink port id: 0 is the kernel */
  PORT: 0,
  /** the groups the datagram was sent to (1 kernel, 2 udev) */
  GROUPS: 1,
  /** 1 when SCM_CREDENTIALS came with it */
  HAS_CRED: 2,
  /** the sender's uid (from SCM_CREDENTIALS) */
  UID: 3,
  /** the sender's pid (from SCM_CREDENTIALS) */
  PID: 4,
  /** 1 when the datagram did not fit the buffer */
  TRUNC: 5,
} as const;

export const GROUP_KERNEL = 1;
export const GROUP_UDEV = 2;

/** The addon, loaded on the first call. */
export const loadNetlink = addonLoader<NetlinkNative>('peripety_netlink', 'the netlink addon');
