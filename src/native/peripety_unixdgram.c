/*
 * peripety_unixdgram: AF_UNIX datagram sockets with file-descriptor passing,
 * for the journald receiver (journald's native protocol).
 *
 * Node has neither AF_UNIX SOCK_DGRAM sockets nor SCM_RIGHTS. Every socket
 * here is non-blocking: a full peer queue is -EAGAIN, and the caller waits
 * for writability with peripety_native's uv_poll, so no call here ever
 * blocks the event loop or parks a thread-pool thread.
 *
 * journald takes entries larger than a datagram as an empty datagram that
 * carries one sealed memfd holding the same bytes; sendMemfd() builds and
 * sends that. bind() and recv() exist so tests can play journald and check
 * the bytes (and the passed memfd's seals) exactly.
 *
 * Errors are returned as -errno, as in peripety_native: EAGAIN, EMSGSIZE,
 * ECONNREFUSED and ENOENT are outcomes the receiver handles, not exceptions.
 * Only misuse (wrong argument types) throws.
 */
#define NAPI_VERSION 8
#define NAPI_ADDON_NAME "peripety_unixdgram"
#define _GNU_SOURCE
#include "napi_util.h"
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

/*
 * The seals journald requires of a passed memfd. Older journald versions
 * compare the seal set for equality with exactly these four, so no other
 * seal (F_SEAL_EXEC) may be added.
 */
#define JOURNAL_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/*
 * A sockaddr_un for `v` (a string path), or none when `v` is null/undefined
 * (use the connected peer). Returns 0, -ENAMETOOLONG/-EINVAL for a path that
 * does not fit sun_path, or -1 after throwing for a wrong type.
 */
static int get_addr(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *salen, int *has) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) {
    *has = 0;
    *salen = 0;
    return 0;
  }
  if (t != napi_string) {
    napi_throw_type_error(env, NULL, "socket path must be a string, null or undefined");
    return -1;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len == 0) return -EINVAL;
  if (len >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  size_t copied;
  if (napi_get_value_string_utf8(env, v, sa->sun_path, sizeof(sa->sun_path), &copied) != napi_ok) return -1;
  if (strlen(sa->sun_path) != copied) return -EINVAL; /* embedded NUL */
  *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + copied + 1);
  *has = 1;
  return 0;
}

/*
 * socket(sndbufBytes) -> fd or -errno. A non-blocking, close-on-exec AF_UNIX
 * datagram socket. A larger send buffer lets bigger datagrams through
 * before EMSGSIZE and delays EAGAIN (journald's protocol document advises
 * it); SO_SNDBUFFORCE passes net.core.wmem_max with CAP_NET_ADMIN, else the
 * plain option is capped there. Best effort: the socket works either way.
 */
static napi_value do_socket(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t sndbuf = 0;
  if (argc >= 1 && napi_get_value_int32(env, argv[0], &sndbuf) != napi_ok) return throw_type_error(env, "socket(sndbufBytes)");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return result_or_errno(env, fd);
  if (sndbuf > 0) {
    int v = sndbuf;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
  }
  return int64_value(env, fd);
}

/* connect(fd, path) / bind(fd, path) -> 0 or -errno */
static napi_value addr_call(napi_env env, napi_callback_info info, int is_bind) {
  GET_ARGS(2);
  int fd;
  struct sockaddr_un sa;
  socklen_t salen;
  int has;
  if (argc < 2 || get_fd(env, argv[0], &fd) < 0) return throw_type_error(env, is_bind ? "bind(fd, path)" : "connect(fd, path)");
  int r = get_addr(env, argv[1], &sa, &salen, &has);
  if (r == -1) return NULL;
  if (r < 0) return int64_value(env, r);
  if (!has) return int64_value(env, -EINVAL);
  return result_or_errno(env, TEMP_FAILURE_RETRY(is_bind ? bind(fd, (struct sockaddr *)&sa, salen)
                                                         : connect(fd, (struct sockaddr *)&sa, salen)));
}

static napi_value do_connect(napi_env env, napi_callback_info info) {
  return addr_call(env, info, 0);
}

static napi_value do_bind(napi_env env, napi_callback_info info) {
  return addr_call(env, info, 1);
}

/*
 * How send() and sendMemfd() deliver `len` bytes at `data` on `fd`: to `sa`,
 * or to the connected peer when `sa` is NULL. Returns their result: bytes
 * sent (send) or 0 (sendMemfd), or -errno.
 */
typedef int64_t (*deliver_fn)(int fd, const void *data, size_t len, const struct sockaddr *sa, socklen_t salen);

/*
 * The argument parsing send() and sendMemfd() share, (fd, path | null,
 * Uint8Array), then `deliver`. A wrong type throws a TypeError with `usage`;
 * a path that does not fit sun_path is -ENAMETOOLONG/-EINVAL without sending.
 */
static napi_value send_call(napi_env env, napi_callback_info info, const char *usage, deliver_fn deliver) {
  GET_ARGS(3);
  int fd;
  void *data;
  size_t len;
  if (argc < 3 || get_fd(env, argv[0], &fd) < 0 || get_bytes(env, argv[2], &data, &len) < 0) {
    return throw_type_error(env, usage);
  }
  struct sockaddr_un sa;
  socklen_t salen;
  int has;
  int r = get_addr(env, argv[1], &sa, &salen, &has);
  if (r == -1) return NULL;
  if (r < 0) return int64_value(env, r);
  return int64_value(env, deliver(fd, data, len, has ? (struct sockaddr *)&sa : NULL, has ? salen : 0));
}

/* One datagram. */
static int64_t send_datagram(int fd, const void *data, size_t len, const struct sockaddr *sa, socklen_t salen) {
  ssize_t n = TEMP_FAILURE_RETRY(sendto(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT, sa, salen));
  return n < 0 ? -(int64_t)errno : (int64_t)n;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/*
 * Copies the bytes into a new memfd, seals it (JOURNAL_SEALS: nobody can
 * change it while journald maps it) and sends it as the only content of an
 * empty datagram. The memfd is closed here: the datagram in flight holds its
 * own reference. No MFD_NOEXEC_SEAL: it would add F_SEAL_EXEC, which older
 * journald versions take for "not sealed" (and refuse from non-root senders).
 */
static int64_t send_sealed_memfd(int fd, const void *data, size_t len, const struct sockaddr *sa, socklen_t salen) {
  int mfd = memfd_create("peripety-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return -(int64_t)errno;
  int r = write_all(mfd, (const uint8_t *)data, len);
  if (r == 0 && fcntl(mfd, F_ADD_SEALS, JOURNAL_SEALS) < 0) r = -errno;
  if (r < 0) {
    close(mfd);
    return r;
  }

  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_name = (void *)sa;
  mh.msg_namelen = salen;
  mh.msg_control = control.buf;
  mh.msg_controllen = sizeof(control.buf);
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &mfd, sizeof(int));
  ssize_t n = TEMP_FAILURE_RETRY(sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
  int err = n < 0 ? errno : 0;
  close(mfd);
  return -(int64_t)err;
}

/* send(fd, path | null, uint8array) -> bytes sent or -errno. One datagram. */
static napi_value do_send(napi_env env, napi_callback_info info) {
  return send_call(env, info, "send(fd, path | null, Uint8Array)", send_datagram);
}

/* sendMemfd(fd, path | null, uint8array) -> 0 or -errno: the bytes in a sealed memfd (send_sealed_memfd). */
static napi_value do_send_memfd(napi_env env, napi_callback_info info) {
  return send_call(env, info, "sendMemfd(fd, path | null, Uint8Array)", send_sealed_memfd);
}

/*
 * recv(fd, uint8array, meta Int32Array(2)) -> datagram length or -errno.
 * meta[0]: the file descriptor passed with it (close-on-exec; the caller owns
 * it) or -1; meta[1]: 1 when the datagram did not fit `buf`. Extra passed
 * descriptors beyond the first are closed.
 */
static napi_value do_recv(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int fd;
  void *data;
  size_t len;
  int32_t *meta;
  if (argc < 3 || get_fd(env, argv[0], &fd) < 0 || get_bytes(env, argv[1], &data, &len) < 0 ||
      get_int32s(env, argv[2], 2, &meta) < 0) {
    return throw_type_error(env, "recv(fd, Uint8Array, Int32Array(2))");
  }
  meta[0] = -1;
  meta[1] = 0;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } control;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.buf;
  mh.msg_controllen = sizeof(control.buf);
  ssize_t n = TEMP_FAILURE_RETRY(recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC));
  if (n < 0) return result_or_errno(env, n);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; i++) {
      int passed;
      memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (meta[0] < 0) meta[0] = passed;
      else close(passed);
    }
  }
  if ((size_t)n > len || (mh.msg_flags & MSG_TRUNC)) meta[1] = 1;
  return int64_value(env, (int64_t)n);
}

/* getSeals(fd) -> the F_SEAL_* bits of a memfd, or -errno */
static napi_value do_get_seals(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || get_fd(env, argv[0], &fd) < 0) return throw_type_error(env, "getSeals(fd)");
  return result_or_errno(env, fcntl(fd, F_GET_SEALS));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("socket", do_socket),
      NAPI_METHOD("connect", do_connect),
      NAPI_METHOD("bind", do_bind),
      NAPI_METHOD("send", do_send),
      NAPI_METHOD("sendMemfd", do_send_memfd),
      NAPI_METHOD("recv", do_recv),
      NAPI_METHOD("getSeals", do_get_seals),
      NAPI_METHOD("close", close_fd_call),
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  set_int_property(env, exports, "WRITABLE", UV_WRITABLE);
  set_int_property(env, exports, "EAGAIN", EAGAIN);
  set_int_property(env, exports, "EMSGSIZE", EMSGSIZE);
  set_int_property(env, exports, "ENOENT", ENOENT);
  set_int_property(env, exports, "ECONNREFUSED", ECONNREFUSED);
  set_int_property(env, exports, "ENOTCONN", ENOTCONN);
  set_int_property(env, exports, "ENOBUFS", ENOBUFS);
  set_int_property(env, exports, "ENAMETOOLONG", ENAMETOOLONG);
  set_int_property(env, exports, "EINVAL", EINVAL);
  set_int_property(env, exports, "EPERM", EPERM);
  set_int_property(env, exports, "EACCES", EACCES);
  set_int_property(env, exports, "F_SEAL_SEAL", F_SEAL_SEAL);
  set_int_property(env, exports, "F_SEAL_SHRINK", F_SEAL_SHRINK);
  set_int_property(env, exports, "F_SEAL_GROW", F_SEAL_GROW);
  set_int_property(env, exports, "F_SEAL_WRITE", F_SEAL_WRITE);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
