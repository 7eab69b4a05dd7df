/* peerscope/core.h: status codes, the context, versions and the rules of the whole API.
 *
 * The rules here hold for every header under peerscope/; <peerscope/peerscope.h> includes them
 * all (core, report, bench, model, plan, doctor, capture, launch).
 *
 * Error rule: every function that can fail returns a ps_status. PS_OK is 0; anything else
 * is a failure whose one-line detail (file:line, GPU, driver error name) is in
 * ps_ctx_error(). The library never prints and never exits.
 *
 * Ownership, one style for the whole API:
 * - Results are library memory. A function that creates one (a report, plan, model, launch
 *   command, ...) returns it through a `T **out` parameter; it is the caller's to release
 *   with the matching ps_T_free (NULL is fine for every *_free). On failure *out is NULL.
 *   Text the library creates (JSON, rendered plans) is a `char **out`, released with ps_free.
 *   The caller never allocates a result struct, so result structs may grow.
 * - Options and requests the caller passes in (ps_*_opts, ps_plan_request) start with
 *   `size_t size`: declare them with `T x = PS_INIT(T);` (size = sizeof(T), every other
 *   field zero = its default). The library reads only the fields that fit in `size`, so a
 *   program built against an older header keeps working when fields are appended at the end;
 *   a size of 0 (not set) is PS_ERR_INVALID_ARG. A NULL options pointer means all defaults.
 * - Short text written into a caller's buffer with its length (ps_bundled_path, ps_link_name,
 *   ps_log_suggest, ps_plan_input_get) stays that way: it is truncated to fit, always
 *   NUL-terminated.
 * - Pointers passed in are borrowed for the duration of the call only (ps_plan_input_request
 *   says what its request keeps pointing to).
 * PS_ABI_VERSION is bumped whenever a public struct changes layout.
 *
 * Environment: the library reads a few variables as defaults (PEERSCOPE_DRIVER_DIR,
 * PEERSCOPE_FIXTURE, PEERSCOPE_SYSFS_ROOT, ...) but never sets one: what a caller chooses
 * (driver directory, fixture, sysfs root) travels in the options, and to a worker process in
 * its argv or its own environment block.
 *
 * Invalid fields: a value the driver could not supply has its bit clear in the struct's
 * `valid` mask (PS_GPU_* / PS_PAIR_* bits) and must be shown as n/a or null, never 0. */
#ifndef PEERSCOPE_CORE_H
#define PEERSCOPE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PS_BUILDING_LIBRARY)
#define PS_API __attribute__((visibility("default")))
#else
#define PS_API
#endif

#define PS_VERSION_MAJOR 0
#define PS_VERSION_MINOR 1
#define PS_VERSION_PATCH 0
/* Bumped whenever a public struct changes layout; the Python package checks it. */
#define PS_ABI_VERSION 8

/* Declares an option or request struct with its size set and every other field zero:
 * `ps_probe_opts opts = PS_INIT(ps_probe_opts);`. */
#ifdef __cplusplus
#define PS_INIT(T) (ps_init_cxx<T>())
#else
#define PS_INIT(T)                                                                                 \
  { .size = sizeof(T) }
#endif

/* Status codes. Numbers are fixed forever: append new ones before the end only. */
#define PS_STATUS_MAP(XX)                                                                          \
  XX(OK, 0, "success")                                                                             \
  XX(ERR_INVALID_ARG, 1, "invalid argument")                                                       \
  XX(ERR_NO_MEMORY, 2, "out of memory")                                                            \
  XX(ERR_DRIVER_UNAVAILABLE, 3, "GPU driver unavailable")                                          \
  XX(ERR_DRIVER, 4, "GPU driver call failed")                                                      \
  XX(ERR_BAD_INPUT, 5, "malformed input")                                                          \
  XX(ERR_IO, 6, "input/output error")                                                              \
  XX(ERR_WORKER, 7, "worker process failed")                                                       \
  XX(ERR_NOT_FOUND, 8, "not found")                                                                \
  XX(ERR_INTERNAL, 9, "internal error")                                                            \
  XX(ERR_NO_DRIVER, 10, "no GPU driver installed")                                                 \
  XX(ERR_NETWORK, 11, "network trouble")

typedef enum ps_status {
#define PS_STATUS_ENUM(name, num, text) PS_##name = num,
  PS_STATUS_MAP(PS_STATUS_ENUM)
#undef PS_STATUS_ENUM
      PS_STATUS_LAST
} ps_status;

PS_API const char *ps_status_name(ps_status st); /* "ERR_BAD_INPUT" */
PS_API const char *ps_status_str(ps_status st);  /* "malformed input" */
PS_API const char *ps_version(void);             /* "0.1.0" */
PS_API int ps_abi_version(void);                 /* PS_ABI_VERSION */

/* ---- context ---------------------------------------------------------------------- */

typedef struct ps_ctx ps_ctx;

/* Returns NULL only when out of memory. */
PS_API ps_ctx *ps_ctx_new(void);
PS_API void ps_ctx_free(ps_ctx *ctx);
/* The one-line detail of the last failure, "" if none. Owned by ctx. */
PS_API const char *ps_ctx_error(const ps_ctx *ctx);

/* ---- files shipped with peerscope ------------------------------------------------- */

typedef enum ps_bundled {
  PS_BUNDLED_WORKER = 0,       /* the peerscope-worker executable */
  PS_BUNDLED_FAKE_DRIVERS = 1, /* directory of the fake libcuda.so.1 / libnvidia-ml.so.1 */
  PS_BUNDLED_FIXTURES = 2,     /* directory of the example machines (*.topo) */
  PS_BUNDLED_MODELS = 3        /* directory of the model catalog (docs/models.md) */
} ps_bundled;

/* Finds a shipped file or directory next to libpeerscope (build tree or install tree).
 * PS_ERR_NOT_FOUND when it is not there. */
PS_API ps_status ps_bundled_path(ps_ctx *ctx, ps_bundled what, char *out, size_t len);

PS_API void ps_free(void *ptr);

#ifdef __cplusplus
}
template <class T> static inline T ps_init_cxx() {
  T x = T();
  x.size = sizeof(T);
  return x;
}
#endif
#endif
