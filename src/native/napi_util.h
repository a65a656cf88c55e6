/*
 * napi_util.h: the N-API helpers every peripety addon uses.
 *
 * Define NAPI_ADDON_NAME (the addon's name as a string literal) and
 * NAPI_VERSION before including it: CHECK's message names the addon, so a
 * failure in one of three addons says which.
 *
 * Conventions the helpers serve: system-call failures are results (-errno,
 * an int64 the JS side compares with the exported E* constants), not
 * exceptions; only misuse (wrong argument types) throws, as a TypeError with
 * the call's usage.
 */
#ifndef PERIPETY_NAPI_UTIL_H
#define PERIPETY_NAPI_UTIL_H

#ifndef NAPI_ADDON_NAME
#error "define NAPI_ADDON_NAME (the addon's name, a string literal) before including napi_util.h"
#endif

#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* An N-API call that must not fail: throw naming the call and the addon, and return NULL. */
#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, NULL, NAPI_ADDON_NAME ": " #call " failed");    \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

/*
 * Declares `argc` and `argv[n]` from the callback's `info`: arguments not
 * passed are undefined, `argc` says how many were.
 */
#define GET_ARGS(n)                                                         \
  size_t argc = (n);                                                        \
  napi_value argv[(n)];                                                     \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))

/* The result of a system call, repeated while a signal interrupts it (EINTR). glibc has it with _GNU_SOURCE. */
#ifndef TEMP_FAILURE_RETRY
#define TEMP_FAILURE_RETRY(expression)                                      \
  (__extension__({                                                          \
    long int __result;                                                      \
    do __result = (long int)(expression);                                   \
    while (__result == -1L && errno == EINTR);                              \
    __result;                                                               \
  }))
#endif

/* One entry of an addon's exports table: a JS method `name` implemented by `fn`. */
#define NAPI_METHOD(name, fn) {(name), NULL, (fn), NULL, NULL, NULL, napi_default, NULL}

static inline napi_value int64_value(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

/* A system call's result for JS: `r` (bytes, an offset, a descriptor), or -errno when it failed (r < 0). */
static inline napi_value result_or_errno(napi_env env, int64_t r) {
  return int64_value(env, r < 0 ? -(int64_t)errno : r);
}

/* Throws a TypeError with the call's usage; returns NULL, the callback's result after throwing. */
static inline napi_value throw_type_error(napi_env env, const char *usage) {
  napi_throw_type_error(env, NULL, usage);
  return NULL;
}

/* Throws an Error "what: strerror(err)" whose code is the errno number; returns NULL. */
static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
  char code[16];
  snprintf(code, sizeof(code), "%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

/* A file descriptor argument: 0, or -1 when `v` is not a number. */
static inline int get_fd(napi_env env, napi_value v, int *fd) {
  int32_t x;
  if (napi_get_value_int32(env, v, &x) != napi_ok) return -1;
  *fd = x;
  return 0;
}

/* A byte-buffer argument (a Uint8Array, Buffer included): 0, or -1 when `v` is anything else. */
static inline int get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok) return -1;
  if (type != napi_uint8_array) return -1;
  return 0;
}

/*
 * An Int32Array argument of at least `min` elements, which the call fills in
 * (the caller reuses it, so a call allocates nothing): 0, or -1 otherwise.
 */
static inline int get_int32s(napi_env env, napi_value v, size_t min, int32_t **out) {
  napi_typedarray_type type;
  napi_value ab;
  size_t len, offset;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &offset) != napi_ok) return -1;
  if (type != napi_int32_array || len < min) return -1;
  *out = (int32_t *)data;
  return 0;
}

/* Sets exports[name] to the integer `v` (the constants the JS side compares results with). */
static inline napi_status set_int_property(napi_env env, napi_value exports, const char *name, int32_t v) {
  napi_value x;
  napi_status s = napi_create_int32(env, v, &x);
  return s == napi_ok ? napi_set_named_property(env, exports, name, x) : s;
}

/* close(fd) -> 0 or -errno: the addons' socket and descriptor close. */
static inline napi_value close_fd_call(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int fd;
  if (argc < 1 || get_fd(env, argv[0], &fd) < 0) return throw_type_error(env, "close(fd)");
  /* no retry on EINTR: on Linux the descriptor is released anyway */
  return result_or_errno(env, close(fd));
}

#endif
