/* Shared by the report's JSON writer and reader (json_write.c, json_read.c) and those of its
 * optional "bench" member (json_bench_write.c, json_bench_read.c). */
#ifndef PS_REPORT_JSON_INTERNAL_H
#define PS_REPORT_JSON_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"
#include "report/json_get.h"

/* For the readers: a step that fails jumps to `cleanup` with `st` set (both in scope), and an
 * object must hold exactly the keys listed (reader `r` in scope). */
#define CHECK(expr)                                                                                \
  do {                                                                                             \
    st = (expr);                                                                                   \
    if (st != PS_OK) goto cleanup;                                                                 \
  } while (0)

#define KEYS(obj, path, ...)                                                                       \
  do {                                                                                             \
    static const char *const keys_[] = {__VA_ARGS__};                                              \
    CHECK(ps__jkeys(r, obj, path, keys_, PS_ARRAY_LEN(keys_)));                                    \
  } while (0)

typedef struct ps__jwriter {
  bool failed;   /* out of memory somewhere; the document is incomplete */
  char bad[160]; /* a value JSON cannot carry, "" if none */
} ps__jwriter;

/* Adds value (a new reference, may be NULL after a failed allocation) under key. */
void ps__jput(ps__jwriter *w, json_t *obj, const char *key, json_t *value);
/* A string, or null when empty; bytes that are not UTF-8 become '?'. */
json_t *ps__jstr_or_null(const char *s, size_t cap);
/* Rounded to `decimals` (0..6) decimals; null when negative or not finite. */
json_t *ps__jreal_or_null(double value, int decimals);

/* verification.worker_restarts (restarts.c): the array, and reading it into report. */
json_t *ps__restarts_json(ps__jwriter *w, const ps_report *report);
ps_status ps__restarts_read(const ps__jreader *r, const json_t *list, ps_report *report);
/* The "bench" object (json_bench_write.c); problems go to w. */
json_t *ps__bench_json(ps__jwriter *w, const ps_bench *bench);
/* Reads the "bench" object at path "bench" of a report of gpu_count GPUs
 * (json_bench_read.c). */
ps_status ps__bench_read(const ps__jreader *r, const json_t *obj, int gpu_count, ps_bench **out);

#endif
