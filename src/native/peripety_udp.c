/*
 * peripety_udp: a UDP socket for the multicast sender that sends a whole
 * batch of datagrams with one sendmmsg(2).
 *
 * Node's dgram sends one datagram per call, each a JS -> C++ -> libuv round
 * trip with a callback; under a kernel-log storm that was about a fifth of
 * the agent's CPU (issue 14). Here the sender packs a batch into one buffer
 * (datagram i is bytes ends[i-1]..ends[i]) and one call hands as many of them
 * to the kernel as it takes. The datagrams themselves are the same bytes.
 *
 * Every socket is non-blocking: a full send buffer is -EAGAIN, and the
 * caller waits for writability with peripety_native's uv_poll, so no call
 * here blocks the event loop. Errors are results (-errno), as in the other
 * addons; only misuse (wrong argument types) throws.
 */
#define NAPI_VERSION 8
#define NAPI_ADDON_NAME "peripety_udp"
#define _GNU_SOURCE
#include "napi_util.h"
#include <uv.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

/* sendmmsg takes at most UIO_MAXIOV (1024) messages a call; the stack arrays hold this many. */
#define CHUNK 256

/*
 * The socket address in a caller's Uint8Array (at least sizeof(struct
 * sockaddr_storage) bytes, filled by address()): its length by family, or 0
 * when it holds no IPv4/IPv6 address.
 */
static socklen_t sa_len(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) return sizeof(struct sockaddr_in);
  if (ss->ss_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return 0;
}

/* A Uint8Array argument holding a sockaddr_storage: 0, or -1 when `v` is not one or holds no address. */
static int get_sa(napi_env env, napi_value v, struct sockaddr_storage **ss, socklen_t *len) {
  void *data;
  size_t n;
  if (get_bytes(env, v, &data, &n) < 0 || n < sizeof(struct sockaddr_storage)) return -1;
  /* the bytes may be unaligned in the caller's buffer: work on the caller's copy only via memcpy */
  *ss = (struct sockaddr_storage *)data;
  struct sockaddr_storage tmp;
  memcpy(&tmp, data, sizeof(tmp));
  *len = sa_len(&tmp);
  return *len == 0 ? -1 : 0;
}

/*
 * address(ip, port, out Uint8Array(SOCKADDR_BYTES)) -> 4, 6, or -EINVAL.
 * A numeric IPv4 or IPv6 address (an IPv6 one may name its scope,
 * "fe80::1%eth0", as Node's dgram accepts) and a port as a socket address in
 * `out`, parsed once by the caller and passed to bind() and send().
 */
static napi_value do_address(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t iplen;
  int32_t port;
  void *out;
  size_t outlen;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], ip, sizeof(ip), &iplen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || get_bytes(env, argv[2], &out, &outlen) < 0 ||
      outlen < sizeof(struct sockaddr_storage)) {
    return throw_type_error(env, "address(ip, port, Uint8Array(SOCKADDR_BYTES))");
  }
  if (iplen == 0 || iplen >= sizeof(ip) - 1 || strlen(ip) != iplen || port < 0 || port > 65535) return int64_value(env, -EINVAL);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  char service[8];
  snprintf(service, sizeof(service), "%d", (int)port);
  if (getaddrinfo(ip, service, &hints, &res) != 0 || res == NULL) {
    if (res) freeaddrinfo(res);
    return int64_value(env, -EINVAL);
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  int family = 0;
  if ((res->ai_family == AF_INET || res->ai_family == AF_INET6) && res->ai_addrlen <= sizeof(ss)) {
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    family = res->ai_family == AF_INET ? 4 : 6;
  }
  freeaddrinfo(res);
  if (family == 0) return int64_value(env, -EINVAL);
  memcpy(out, &ss, sizeof(ss));
  return int64_value(env, family);
}

/* socket(family 4 | 6) -> fd or -errno: a non-blocking, close-on-exec UDP socket. */
static napi_value do_socket(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t family;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &family) != napi_ok || (family != 4 && family != 6)) {
    return throw_type_error(env, "socket(4 | 6)");
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return result_or_errno(env, fd);
}

/* bind(fd, sockaddr) -> 0 or -errno */
static napi_value do_bind(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int fd;
  struct sockaddr_storage *ss;
  socklen_t len;
  if (argc < 2 || get_fd(env, argv[0], &fd) < 0 || get_sa(env, argv[1], &ss, &len) < 0) {
    return throw_type_error(env, "bind(fd, sockaddr)");
  }
  struct sockaddr_storage copy;
  memcpy(&copy, ss, sizeof(copy));
  return result_or_errno(env, bind(fd, (struct sockaddr *)&copy, len));
}

/*
 * multicastOptions(fd, interfaceSockaddr, ttl, loopback) -> 0 or -errno: the
 * outgoing interface, TTL (hop limit) and loopback of multicast datagrams,
 * as Node's setMulticastInterface/TTL/Loopback (libuv) set them: IPv4 by the
 * interface's address, IPv6 by the scope of the address (its interface
 * index; 0, no scope: the kernel's choice).
 */
static napi_value do_multicast_options(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int fd;
  struct sockaddr_storage *ssp;
  socklen_t len;
  int32_t ttl;
  bool loop;
  if (argc < 4 || get_fd(env, argv[0], &fd) < 0 || get_sa(env, argv[1], &ssp, &len) < 0 ||
      napi_get_value_int32(env, argv[2], &ttl) != napi_ok || napi_get_value_bool(env, argv[3], &loop) != napi_ok) {
    return throw_type_error(env, "multicastOptions(fd, sockaddr, ttl, loopback)");
  }
  if (ttl < 0 || ttl > 255) return int64_value(env, -EINVAL);
  struct sockaddr_storage ss;
  memcpy(&ss, ssp, sizeof(ss));
  int on = loop ? 1 : 0;
  int hops = ttl;
  if (ss.ss_family == AF_INET) {
    struct in_addr ifa = ((struct sockaddr_in *)&ss)->sin_addr;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof(ifa)) < 0) return int64_value(env, -errno);
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof(hops)) < 0) return int64_value(env, -errno);
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &on, sizeof(on)) < 0) return int64_value(env, -errno);
  } else {
    unsigned int ifindex = ((struct sockaddr_in6 *)&ss)->sin6_scope_id;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)) < 0) return int64_value(env, -errno);
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0) return int64_value(env, -errno);
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &on, sizeof(on)) < 0) return int64_value(env, -errno);
  }
  return int64_value(env, 0);
}

/*
 * send(fd, sockaddr, buf, ends Int32Array, from, to, status Int32Array(1))
 *   -> datagrams sent, starting with datagram `from`.
 * Datagram i is buf[ends[i-1] .. ends[i]) (datagram 0 starts at 0); those
 * from `from` up to, not including, `to` go to `sockaddr`, CHUNK a
 * sendmmsg(2). It stops at the first datagram the kernel refuses: then
 * status[0] is that datagram's errno (EAGAIN: the send buffer is full, wait
 * for writability; anything else: that datagram is lost), else 0. Never
 * blocks (MSG_DONTWAIT on a non-blocking socket).
 */
static napi_value do_send(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  int fd;
  struct sockaddr_storage *ssp;
  socklen_t salen;
  void *data;
  size_t len;
  int32_t *ends, *status;
  int32_t from, to;
  napi_typedarray_type type;
  napi_value ab;
  size_t nends, offset;
  void *ends_data;
  if (argc < 7 || get_fd(env, argv[0], &fd) < 0 || get_sa(env, argv[1], &ssp, &salen) < 0 ||
      get_bytes(env, argv[2], &data, &len) < 0 ||
      napi_get_typedarray_info(env, argv[3], &type, &nends, &ends_data, &ab, &offset) != napi_ok || type != napi_int32_array ||
      napi_get_value_int32(env, argv[4], &from) != napi_ok || napi_get_value_int32(env, argv[5], &to) != napi_ok ||
      get_int32s(env, argv[6], 1, &status) < 0) {
    return throw_type_error(env, "send(fd, sockaddr, Uint8Array, Int32Array, from, to, Int32Array(1))");
  }
  ends = (int32_t *)ends_data;
  if (from < 0 || to < from || (size_t)to > nends) return throw_type_error(env, "send: 0 <= from <= to <= ends.length");
  for (int32_t i = from; i < to; i++) {
    int32_t start = i == 0 ? 0 : ends[i - 1];
    if (start < 0 || ends[i] < start || (size_t)ends[i] > len) return throw_type_error(env, "send: ends must grow within the buffer");
  }
  struct sockaddr_storage sa;
  memcpy(&sa, ssp, sizeof(sa));
  struct mmsghdr msgs[CHUNK];
  struct iovec iov[CHUNK];
  int32_t sent = 0;
  status[0] = 0;
  int32_t i = from;
  while (i < to) {
    int n = to - i < CHUNK ? to - i : CHUNK;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)n);
    for (int k = 0; k < n; k++) {
      int32_t start = i + k == 0 ? 0 : ends[i + k - 1];
      iov[k].iov_base = (uint8_t *)data + start;
      iov[k].iov_len = (size_t)(ends[i + k] - start);
      msgs[k].msg_hdr.msg_name = &sa;
      msgs[k].msg_hdr.msg_namelen = salen;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = (int)TEMP_FAILURE_RETRY(sendmmsg(fd, msgs, (unsigned int)n, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (r <= 0) {
      /* nothing of this chunk went: the first datagram's error */
      status[0] = r < 0 ? errno : EAGAIN;
      break;
    }
    sent += r;
    i += r;
    /* a short count: the next datagram failed; the next call reports why (or sends it) */
    if (r < n) continue;
  }
  return int64_value(env, sent);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("address", do_address),
      NAPI_METHOD("socket", do_socket),
      NAPI_METHOD("bind", do_bind),
      NAPI_METHOD("multicastOptions", do_multicast_options),
      NAPI_METHOD("send", do_send),
      NAPI_METHOD("close", close_fd_call),
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  set_int_property(env, exports, "SOCKADDR_BYTES", (int32_t)sizeof(struct sockaddr_storage));
  set_int_property(env, exports, "WRITABLE", UV_WRITABLE);
  set_int_property(env, exports, "EAGAIN", EAGAIN);
  set_int_property(env, exports, "ENOBUFS", ENOBUFS);
  set_int_property(env, exports, "EINVAL", EINVAL);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
