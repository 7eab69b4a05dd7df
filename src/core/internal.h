/* Internal helpers shared by every module of libpeerscope. Not installed. */
#ifndef PS_CORE_INTERNAL_H
#define PS_CORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

#define PS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PS_ERRBUF_LEN 512

struct ps_ctx {
  char error[PS_ERRBUF_LEN];
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

/* Monotonic clock in milliseconds. */
double ps__now_ms(void);

#endif
