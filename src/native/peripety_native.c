/*
 * peripety_native: the few system calls Node.js cannot make on its own.
 *
 * /dev/kmsg (and, later, netlink sockets) must be read without blocking the
 * event loop and without parking a libuv thread-pool thread in read() forever.
 * Node offers no way to wait for readability of an arbitrary file descriptor,
 * so this addon exposes libuv's uv_poll on a descriptor, plus non-blocking
 * read() and lseek() that report errno as a negative number (EAGAIN and EPIPE
 * are normal outcomes on /dev/kmsg, not exceptions).
 *
 * Built with N-API only, so one build works on every Node version >= 18.
 */
#define NAPI_VERSION 8
#define NAPI_ADDON_NAME "peripety_native"
#include "napi_util.h"
#include <uv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  int closing;      /* uv_close requested */
  int closed;       /* uv_close callback ran */
  int finalized;    /* the JS external was garbage collected */
} poll_watch;

static void watch_free(poll_watch *w) {
  free(w);
}

static void on_close(uv_handle_t *h) {
  poll_watch *w = (poll_watch *)h->data;
  w->closed = 1;
  if (w->finalized) watch_free(w);
}

static void watch_release_js(poll_watch *w) {
  if (w->callback) {
    napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  if (w->async_ctx) {
    napi_async_destroy(w->env, w->async_ctx);
    w->async_ctx = NULL;
  }
}

static void watch_close(poll_watch *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->handle);
  watch_release_js(w);
  uv_close((uv_handle_t *)&w->handle, on_close);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poll_watch *w = (poll_watch *)data;
  w->finalized = 1;
  if (!w->closing) {
    watch_close(w); /* frees in on_close */
  } else if (w->closed) {
    watch_free(w);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poll_watch *w = (poll_watch *)h->data;
  if (w->closing || !w->callback) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok) {
    /* make_callback runs the microtask queue afterwards, as any I/O callback. */
    napi_status s = napi_make_callback(env, w->async_ctx, recv, cb, 2, argv, &result);
    if (s == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* pollStart(fd, events, callback(status, events)) -> handle */
static napi_value poll_start(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  if (argc < 3) return throw_type_error(env, "pollStart(fd, events, callback)");
  int32_t fd, events;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &events));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));

  poll_watch *w = calloc(1, sizeof(*w));
  if (!w) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  w->env = env;
  int rc = uv_poll_init(loop, &w->handle, fd);
  if (rc != 0) {
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->handle.data = w;
  napi_value resource_name;
  CHECK(napi_create_string_utf8(env, "peripety.poll", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, NULL, resource_name, &w->async_ctx));
  CHECK(napi_create_reference(env, argv[2], 1, &w->callback));
  rc = uv_poll_start(&w->handle, events, on_poll);
  if (rc != 0) {
    watch_close(w);
    w->finalized = 1; /* no JS object will own it */
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  napi_value external;
  CHECK(napi_create_external(env, w, on_finalize, NULL, &external));
  return external;
}

/* pollStop(handle): idempotent. */
static napi_value poll_stop(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    return throw_type_error(env, "pollStop(handle)");
  }
  watch_close((poll_watch *)data);
  return NULL;
}

/* read(fd, uint8array) -> bytes read, or -errno. Never blocks if fd is O_NONBLOCK. */
static napi_value do_read(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int fd;
  void *data;
  size_t length;
  if (get_fd(env, argv[0], &fd) < 0 || get_bytes(env, argv[1], &data, &length) < 0) {
    return throw_type_error(env, "read(fd, Uint8Array)");
  }
  return result_or_errno(env, TEMP_FAILURE_RETRY(read(fd, data, length)));
}

/*
 * readRecords(fd, buf, ends Int32Array, state Int32Array(2), maxReads, minRoom)
 *   -> records read.
 * /dev/kmsg returns one record per read(); under a storm a JS -> C call per
 * record was a sixth of the agent's CPU (issue 14). This reads records one
 * after the other into `buf` in one call: record i is buf[ends[i-1] ..
 * ends[i]) (the first starts at 0). It stops at the first read that returns
 * no record, or after `maxReads` reads, or when `ends` is full, or when less
 * than `minRoom` bytes of `buf` are left (kmsg refuses a record larger than
 * the buffer with EINVAL and keeps it, so there must always be room for the
 * largest). An EPIPE (records were overwritten; the next read returns the
 * oldest one) is skipped, as the caller did, and counts as a read.
 * state[0]: why it stopped: -errno of the read that returned no record
 * (-EAGAIN: nothing more now), 0 for end of file, 1 for a limit (more may be
 * there); state[1]: the reads made (records and EPIPEs).
 */
static napi_value do_read_records(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  int fd;
  void *data;
  size_t length;
  napi_typedarray_type type;
  napi_value ab;
  size_t nends, offset;
  void *ends_data;
  int32_t *state;
  int32_t max_reads, min_room;
  if (argc < 6 || get_fd(env, argv[0], &fd) < 0 || get_bytes(env, argv[1], &data, &length) < 0 ||
      napi_get_typedarray_info(env, argv[2], &type, &nends, &ends_data, &ab, &offset) != napi_ok || type != napi_int32_array ||
      get_int32s(env, argv[3], 2, &state) < 0 || napi_get_value_int32(env, argv[4], &max_reads) != napi_ok ||
      napi_get_value_int32(env, argv[5], &min_room) != napi_ok || min_room < 1 || length > INT32_MAX) {
    return throw_type_error(env, "readRecords(fd, Uint8Array, Int32Array, Int32Array(2), maxReads, minRoom)");
  }
  int32_t *ends = (int32_t *)ends_data;
  size_t off = 0;
  int32_t count = 0, reads = 0, stop = 1;
  while (reads < max_reads && (size_t)count < nends && length - off >= (size_t)min_room) {
    ssize_t n = TEMP_FAILURE_RETRY(read(fd, (char *)data + off, length - off));
    reads++;
    if (n < 0) {
      if (errno == EPIPE) continue;
      stop = -errno;
      break;
    }
    if (n == 0) {
      stop = 0;
      break;
    }
    off += (size_t)n;
    ends[count++] = (int32_t)off;
  }
  state[0] = stop;
  state[1] = reads;
  return int64_value(env, count);
}

/* lseek(fd, offset, whence) -> new offset, or -errno. */
static napi_value do_lseek(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t fd, whence;
  int64_t off;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int64(env, argv[1], &off));
  CHECK(napi_get_value_int32(env, argv[2], &whence));
  return result_or_errno(env, lseek(fd, (off_t)off, whence));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("pollStart", poll_start),
      NAPI_METHOD("pollStop", poll_stop),
      NAPI_METHOD("read", do_read),
      NAPI_METHOD("readRecords", do_read_records),
      NAPI_METHOD("lseek", do_lseek),
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  /* constants the JS side needs */
  set_int_property(env, exports, "READABLE", UV_READABLE);
  set_int_property(env, exports, "PRIORITIZED", UV_PRIORITIZED);
  set_int_property(env, exports, "EAGAIN", EAGAIN);
  set_int_property(env, exports, "EPIPE", EPIPE);
  set_int_property(env, exports, "EINVAL", EINVAL);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
