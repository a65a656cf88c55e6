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
#define NAPI_ADDON_NAME "peripety_netlink"
#define _GNU_SOURCE
#include "napi_util.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/netlink.h>

/* recv() fills these slots of the caller's Int32Array. */
enum { META_PORT, META_GROUPS, META_HAS_CRED, META_UID, META_PID, META_TRUNC, META_LEN };

/*
 * open(groups, rcvbufBytes) -> { fd, rcvbuf }; throws with the failing step.
 * The buffer size matters: a burst (udevadm trigger, a multipath failover
 * touching hundreds of paths) must not overflow it while JS is busy.
 */
static napi_value do_open(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  if (argc < 2) return throw_type_error(env, "open(groups, rcvbufBytes)");
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
  GET_ARGS(3);
  if (argc < 3) return throw_type_error(env, "recv(fd, buffer, meta)");
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  void *data;
  size_t length;
  if (get_bytes(env, argv[1], &data, &length) < 0) return throw_type_error(env, "recv: buffer must be a Uint8Array");
  int32_t *meta;
  if (get_int32s(env, argv[2], META_LEN, &meta) < 0) {
    return throw_type_error(env, "recv: meta must be an Int32Array of at least 6 elements");
  }

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

  ssize_t n = TEMP_FAILURE_RETRY(recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC));
  if (n < 0) return result_or_errno(env, n);

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
  GET_ARGS(3);
  if (argc < 3) return throw_type_error(env, "send(fd, buffer, groups)");
  int32_t fd;
  uint32_t groups;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  void *data;
  size_t length;
  if (get_bytes(env, argv[1], &data, &length) < 0) return throw_type_error(env, "send: buffer must be a Uint8Array");
  CHECK(napi_get_value_uint32(env, argv[2], &groups));
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof(addr));
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = groups;
  return result_or_errno(env, TEMP_FAILURE_RETRY(sendto(fd, data, length, MSG_DONTWAIT, (struct sockaddr *)&addr, sizeof(addr))));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("open", do_open),
      NAPI_METHOD("recv", do_recv),
      NAPI_METHOD("send", do_send),
      NAPI_METHOD("close", close_fd_call),
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
    if (set_int_property(env, exports, constants[i].name, constants[i].value) != napi_ok) return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
