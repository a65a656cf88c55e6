// Loader for the UDP addon (src/native/peripety_udp.c), built by `npm ci`
// (hack/build-native.mjs) into build/: the multicast sender's socket, which
// sends a batch of datagrams with one sendmmsg(2).
import { addonLoader } from './load.ts';

export interface UdpNative {
  /** `ip` (numeric; IPv6 may carry a scope, "fe80::1%eth0") and `port` as a socket address in `out` (SOCKADDR_BYTES): 4, 6, or -EINVAL */
  address(ip: string, port: number, out: Uint8Array): number;
  /** a non-blocking, close-on-exec UDP socket of family 4 or 6: fd or -errno */
  socket(family: 4 | 6): number;
  /** 0 or -errno */
  bind(fd: number, sockaddr: Uint8Array): number;
  /** the outgoing interface (by its address), TTL and loopback of multicast datagrams: 0 or -errno */
  multicastOptions(fd: number, interfaceSockaddr: Uint8Array, ttl: number, loopback: boolean): number;
  /**
   * Datagrams `from` … `to - 1` of `buf` (datagram i ends at `ends[i]` and
   * starts where the one before ended, or at 0) to `sockaddr`, with
   * sendmmsg(2): how many were sent from `from` on. When that is short of
   * `to - from`, `status[0]` is the errno of the first one not sent (EAGAIN:
   * the send buffer is full; anything else: that datagram cannot be sent).
   */
  send(fd: number, sockaddr: Uint8Array, buf: Uint8Array, ends: Int32Array, from: number, to: number, status: Int32Array): number;
  /** 0 or -errno */
  close(fd: number): number;
  SOCKADDR_BYTES: number;
  /** libuv's UV_WRITABLE, for peripety_native's pollStart */
  WRITABLE: number;
  EAGAIN: number;
  ENOBUFS: number;
  EINVAL: number;
}

/** The addon, loaded on the first call. */
export const loadUdp = addonLoader<UdpNative>('peripety_udp', 'the udp addon');
