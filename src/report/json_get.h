/* Typed, path-aware access to a parsed JSON document for the report reader. Every failure
 * is a PS_ERR_BAD_INPUT whose one-line message names the input and the JSON path:
 * "rig.json: gpus[2].memory_total_bytes: expected an integer or null". */
#ifndef PS_REPORT_JSON_GET_H
#define PS_REPORT_JSON_GET_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

#define PS_JPATH_LEN 96

typedef struct ps__jreader {
  ps_ctx *ctx;
  const char *name; /* the input's name for messages, e.g. the file path */
} ps__jreader;

/* Records "name: path: message" ("name: message" for the top level, path ""): the one form
 * of every JSON input's error (reports here, model configs in src/model/cfg_get.c). */
ps_status ps__jvfail(const ps__jreader *r, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
ps_status ps__jfail(const ps__jreader *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* path.key ("key" at the top level) and path[i], written into buf. */
const char *ps__jpath_key(char *buf, const char *path, const char *key);
const char *ps__jpath_index(char *buf, const char *path, size_t i);

/* obj (at path) must be an object holding exactly `keys`: a missing key or an unknown one
 * is an error, so a misspelt key never silently reads as null. */
ps_status ps__jkeys(const ps__jreader *r, const json_t *obj, const char *path,
                    const char *const *keys, size_t key_count);

/* Member getters; the key is known to exist (ps__jkeys ran). With nullable, a JSON null
 * leaves *out untouched and sets *set false; *set may be NULL when not nullable. */
ps_status ps__jstr(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, char *out, size_t cap, bool *set);
ps_status ps__jint(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, long long min, long long max, long long *out, bool *set);
/* A non-negative number (integer or real). */
ps_status ps__jreal(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                    bool nullable, double *out, bool *set);
ps_status ps__jbool(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                    bool nullable, bool *out, bool *set);
/* An object, or with nullable NULL for a JSON null. */
ps_status ps__jobj(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, json_t **out);

#endif
