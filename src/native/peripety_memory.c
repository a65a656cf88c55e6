/*
 * peripety_memory: glibc's allocator, seen and tuned from the agent (issue 14,
 * docs/performance.md "Memory").
 *
 * A kernel-log storm makes the agent allocate: V8's heap, but also C memory
 * (sqlite's pages and statements, libuv's buffers, Node's Buffers) spread
 * over glibc's per-thread arenas. When the storm is over, glibc keeps the
 * freed chunks of an arena's heap and the free pages below its top; Node
 * never calls malloc_trim, so the resident size stays at the storm's peak.
 *
 *   trim()   malloc_trim(0): every arena's free pages back to the kernel
 *            (MADV_DONTNEED of whole free pages, not only the top of the
 *            heap); returns 1 when something was released
 *   stats()  mallinfo2(): [arena bytes (sbrk/mmap'd heaps), in use, free
 *            in the heaps, mmap'd large blocks, releasable top], for
 *            measuring where the memory is (docs/performance.md)
 *
 * Both are synchronous; trim() walks every arena (a few milliseconds after
 * a storm), so the caller runs it rarely, when the agent went quiet.
 *
 * A separate addon rather than more functions in peripety_native.c: nothing
 * to share, and the kmsg reader's file stays the kmsg reader's.
 */
#define NAPI_VERSION 8
#define NAPI_ADDON_NAME "peripety_memory"
#define _GNU_SOURCE
#include "napi_util.h"
#include <malloc.h>

static napi_value do_trim(napi_env env, napi_callback_info info) {
  return int64_value(env, malloc_trim(0));
}

static napi_value do_stats(napi_env env, napi_callback_info info) {
  struct mallinfo2 mi = mallinfo2();
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 5, &arr));
  const size_t v[5] = {mi.arena, mi.uordblks, mi.fordblks, mi.hblkhd, mi.keepcost};
  for (uint32_t i = 0; i < 5; i++) {
    napi_value x;
    CHECK(napi_create_double(env, (double)v[i], &x));
    CHECK(napi_set_element(env, arr, i, x));
  }
  return arr;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("trim", do_trim),
      NAPI_METHOD("stats", do_stats),
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
