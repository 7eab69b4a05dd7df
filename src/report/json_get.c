/* Typed, path-aware JSON member access with one-line error messages (see json_get.h). */
#include "report/json_get.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

ps_status ps__jvfail(const ps__jreader *r, const char *path, const char *fmt, va_list ap) {
  char msg[PS_ERRBUF_LEN];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (path && *path) return ps__fail(r->ctx, PS_ERR_BAD_INPUT, "%s: %s: %s", r->name, path, msg);
  return ps__fail(r->ctx, PS_ERR_BAD_INPUT, "%s: %s", r->name, msg);
}

ps_status ps__jfail(const ps__jreader *r, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ps_status st = ps__jvfail(r, path, fmt, ap);
  va_end(ap);
  return st;
}

const char *ps__jpath_key(char *buf, const char *path, const char *key) {
  snprintf(buf, PS_JPATH_LEN, "%s%s%s", path, *path ? "." : "", key);
  return buf;
}

const char *ps__jpath_index(char *buf, const char *path, size_t i) {
  snprintf(buf, PS_JPATH_LEN, "%s[%zu]", path, i);
  return buf;
}

ps_status ps__jkeys(const ps__jreader *r, const json_t *obj, const char *path,
                    const char *const *keys, size_t key_count) {
  if (!json_is_object(obj)) return ps__jfail(r, path, "expected an object");
  for (size_t i = 0; i < key_count; i++)
    if (!json_object_get(obj, keys[i])) return ps__jfail(r, path, "missing key '%s'", keys[i]);
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)obj, key, value) {
    bool known = false;
    for (size_t i = 0; i < key_count && !known; i++)
      known = strcmp(key, keys[i]) == 0;
    if (!known) return ps__jfail(r, path, "unknown key '%s'", key);
  }
  return PS_OK;
}

/* The member, or NULL after recording "expected <what>[ or null]" for a wrong type. */
static const json_t *member(const ps__jreader *r, const json_t *obj, const char *path,
                            const char *key, bool nullable, bool *set, json_type type,
                            const char *what, ps_status *st) {
  char at[PS_JPATH_LEN];
  const json_t *value = json_object_get(obj, key);
  *st = PS_OK;
  if (set) *set = false;
  if (nullable && json_is_null(value)) return NULL;
  bool ok = value && (json_typeof(value) == type ||
                      (type == JSON_REAL && json_typeof(value) == JSON_INTEGER) ||
                      (type == JSON_TRUE && json_typeof(value) == JSON_FALSE));
  if (!ok) {
    *st = ps__jfail(r, ps__jpath_key(at, path, key), "expected %s%s", what,
                    nullable ? " or null" : "");
    return NULL;
  }
  if (set) *set = true;
  return value;
}

ps_status ps__jstr(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, char *out, size_t cap, bool *set) {
  ps_status st;
  char at[PS_JPATH_LEN];
  const json_t *v = member(r, obj, path, key, nullable, set, JSON_STRING, "a string", &st);
  if (!v) return st;
  size_t len = json_string_length(v);
  if (len == 0) {
    return ps__jfail(r, ps__jpath_key(at, path, key), "empty string%s",
                     nullable ? " (write null for an unknown value)" : "");
  }
  if (len >= cap)
    return ps__jfail(r, ps__jpath_key(at, path, key), "%zu bytes is too long (at most %zu)", len,
                     cap - 1);
  memcpy(out, json_string_value(v), len);
  out[len] = '\0';
  return PS_OK;
}

ps_status ps__jint(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, long long min, long long max, long long *out, bool *set) {
  ps_status st;
  char at[PS_JPATH_LEN];
  const json_t *v = member(r, obj, path, key, nullable, set, JSON_INTEGER, "an integer", &st);
  if (!v) return st;
  long long value = json_integer_value(v);
  if (value < min)
    return ps__jfail(r, ps__jpath_key(at, path, key), "%lld is below the minimum %lld", value, min);
  if (value > max)
    return ps__jfail(r, ps__jpath_key(at, path, key), "%lld is above the maximum %lld", value, max);
  *out = value;
  return PS_OK;
}

ps_status ps__jreal(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                    bool nullable, double *out, bool *set) {
  ps_status st;
  char at[PS_JPATH_LEN];
  const json_t *v = member(r, obj, path, key, nullable, set, JSON_REAL, "a number", &st);
  if (!v) return st;
  double value = json_number_value(v);
  if (value < 0)
    return ps__jfail(r, ps__jpath_key(at, path, key), "%g is negative%s", value,
                     nullable ? " (write null for a value not measured)" : "");
  *out = value;
  return PS_OK;
}

ps_status ps__jbool(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                    bool nullable, bool *out, bool *set) {
  ps_status st;
  const json_t *v = member(r, obj, path, key, nullable, set, JSON_TRUE,
                           nullable ? "true, false" : "true or false", &st);
  if (!v) return st;
  *out = json_is_true(v);
  return PS_OK;
}

ps_status ps__jobj(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                   bool nullable, json_t **out) {
  ps_status st;
  const json_t *v = member(r, obj, path, key, nullable, NULL, JSON_OBJECT, "an object", &st);
  *out = (json_t *)v;
  return st;
}
