/*
 * peripety_netlink: a NETLINK_KOBJECT_UEVENT socket for the udev collector.
 *
 * Node has no AF_NETLINK sockets. This addon only opens, reads and closes
 * the socket; waiting for readability is peripety_native's uv_poll, so no
 * call here ever blocks and no thread-pool thread is used.
 *
 * recv() reports the sender (netlink port id and destination groups) and the
 * SCM_CREDENTIALS the kernel attached, because the collector must refuse
 * uevents that do not come from the kernel (port 0) or from a root udevd:
 * any process with CAP_NET_ADMIN in the network namespace can multicast on
 * these groups.
 *
 * Errors are returned as -errno, as in peripety_native: EAGAIN (nothing to
 * read) and ENOBUFS (the receive buffer overflowed, uevents were lost) are
 * normal outcomes the collector counts, not exceptions.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/netlink.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "peripety_netlink: " #call " failed");   \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* recv() fills these slots of the caller's Int32Array. */
enum { META_PORT, META_GROUPS, META_HAS_CRED, META_UID, META_PID, META_TRUNC, META_LEN };

static napi_value int64_value(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
  char code[16];
  snprintf(code, sizeof(code), "%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

/*
 * open(groups, rcvbufBytes) -> { fd, rcvbuf }; throws with the failing step.
 * The buffer size matters: a burst (udevadm trigger, a multipath failover
 * touching hundreds of paths) must not overflow it while JS is busy.
 */
static napi_value do_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "open(groups, rcvbufBytes)");
    return NULL;
  }
  uint32_t groups;
  int32_t rcvbuf;
  CHECK(napi_get_value_uint32(env, argv[0], &groups));
  CHECK(napi_get_value_int32(env, argv[1], &rcvbuf));

  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", errno);

  /* FORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; the plain option is capped by it. */
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "setsockopt(SO_PASSCRED)", err);
  }
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof(addr));
  addr.nl_family = AF_NETLINK;
  addr.nl_pid = 0; /* the kernel assigns a unique port id */
  addr.nl_groups = groups;
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind(NETLINK_KOBJECT_UEVENT)", err);
  }
  int effective = 0;
  socklen_t len = sizeof(effective);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &len) < 0) effective = -1;

  napi_value out, v;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_int32(env, effective, &v));
  CHECK(napi_set_named_property(env, out, "rcvbuf", v));
  return out;
}

/*
 * recv(fd, uint8array, meta Int32Array(6)) -> the datagram's length, or -errno.
 * The caller reuses both arrays, so a message costs no allocation here.
 * MSG_TRUNC makes the kernel return the real length: a result larger than the
 * buffer means the datagram was cut (meta[TRUNC] is 1 as well).
 */
static napi_value do_recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "recv(fd, buffer, meta)");
    return NULL;
  }
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset));
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "recv: buffer must be a Uint8Array");
    return NULL;
  }
  size_t mlen;
  void *mdata;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &mlen, &mdata, &ab, &offset));
  if (type != napi_int32_array || mlen < META_LEN) {
    napi_throw_type_error(env, NULL, "recv: meta must be an Int32Array of at least 6 elements");
    return NULL;
  }
  int32_t *meta = (int32_t *)mdata;

  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof(addr));
  struct iovec iov = {.iov_base = data, .iov_len = length};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct ucred))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof(addr);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return int64_value(env, -(int64_t)errno);

  meta[META_PORT] = (int32_t)addr.nl_pid;
  meta[META_GROUPS] = (int32_t)addr.nl_groups;
  meta[META_HAS_CRED] = 0;
  meta[META_UID] = -1;
  meta[META_PID] = 0;
  meta[META_TRUNC] = ((size_t)n > length || (msg.msg_flags & MSG_TRUNC)) ? 1 : 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      meta[META_HAS_CRED] = 1;
      meta[META_UID] = (int32_t)cred.uid;
      meta[META_PID] = (int32_t)cred.pid;
    }
  }
  return int64_value(env, (int64_t)n);
}

/*
 * send(fd, uint8array, groups) -> bytes sent, or -errno. Multicasts to the
 * given groups as a user-space sender: the root tests use it to play udevd
 * (there is no udevd on the test machines). Needs CAP_NET_ADMIN.
 */
static napi_value do_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "send(fd, buffer, groups)");
    return NULL;
  }
  int32_t fd;
  uint32_t groups;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset));
  CHECK(napi_get_value_uint32(env, argv[2], &groups));
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof(addr));
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = groups;
  ssize_t n;
  do {
    n = sendto(fd, data, length, MSG_DONTWAIT, (struct sockaddr *)&addr, sizeof(addr));
  } while (n < 0 && errno == EINTR);
  return int64_value(env, n < 0 ? -(int64_t)errno : (int64_t)n);
}

/* close(fd) -> 0 or -errno */
static napi_value do_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "close(fd)");
    return NULL;
  }
  /* no retry on EINTR: on Linux the descriptor is released anyway */
  int r = close(fd);
  return int64_value(env, r < 0 ? -(int64_t)errno : 0);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, do_open, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, do_recv, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, do_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, do_close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  static const struct {
    const char *name;
    int value;
  } constants[] = {
      {"EAGAIN", EAGAIN}, {"ENOBUFS", ENOBUFS}, {"EINTR", EINTR}, {"EBADF", EBADF},
      {"EPERM", EPERM},   {"EACCES", EACCES},   {"META_LEN", META_LEN},
  };
  for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
    napi_value v;
    if (napi_create_int32(env, constants[i].value, &v) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, constants[i].name, v) != napi_ok) return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
