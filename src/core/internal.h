/* Internal helpers shared by every module of libpeerscope. Not installed. */
#ifndef PS_CORE_INTERNAL_H
#define PS_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

#define PS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PS_ERRBUF_LEN 512

struct ps_ctx {
  char error[PS_ERRBUF_LEN];
  /* A verification worker started ahead (ps_probe_for_verify) for the next ps_verify, and
   * how to kill and free it (the verify module's; core only calls it). */
  void *early;
  void (*early_free)(void *early);
};

/* Records a one-line error detail in ctx (may be NULL) and returns st. */
ps_status ps__fail(ps_ctx *ctx, ps_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void *ps__calloc(size_t count, size_t size);
void *ps__realloc(void *ptr, size_t size);
char *ps__strdup(const char *s);
void ps__free(void *ptr);

/* Copies src into dst (size dst_len), always terminating; returns dst. */
char *ps__strlcpy(char *dst, const char *src, size_t dst_len);

/* peerscope's cache directory: `given` (may be NULL), else $PEERSCOPE_CACHE_DIR, else
 * $XDG_CACHE_HOME/peerscope, else ~/.cache/peerscope; false when none can be named. */
bool ps__cache_dir(const char *given, char *out, size_t len);
/* mkdir -p path (mode 0700 for what it creates); best effort. */
void ps__make_dirs(char *path);

/* s quoted for a one-line message: bytes outside printable ASCII (and backslash) as \xNN,
 * cut with "..." to fit len; returns buf. A message never carries a raw newline or escape. */
const char *ps__printable(const char *s, char *buf, size_t len);

/* Monotonic clock in milliseconds. */
double ps__now_ms(void);

/* A public option or request struct (first field `size_t size`) as the caller built it: copies
 * the fields that fit in its size into *local, zeroing the rest (NULL opts: all zero); sets
 * local->size. PS_ERR_INVALID_ARG naming `what` when size is not set. */
ps_status ps__opts_in(ps_ctx *ctx, const void *opts, void *local, size_t local_size,
                      const char *what);
#define PS__OPTS_IN(ctx, opts, local, what) ps__opts_in(ctx, opts, local, sizeof(*(local)), what)
/* The other way: fills the caller's struct `out` (its size set) from `full`, as far as it
 * reaches; the caller's size stays. */
ps_status ps__opts_out(ps_ctx *ctx, void *out, const void *full, size_t full_size,
                       const char *what);

#endif
