/* Typed access to config.json with one-line messages naming the file and the JSON path.
 * Lenient where Hugging Face configs vary (aliases, null for "default", 4096.0), strict
 * about types: a string where a count belongs is an error, never a silent default. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"
#include "report/json_get.h"

ps_status ps__cfg_fail(const ps__cfg *c, const char *path, const char *fmt, ...) {
  ps__jreader r = {c->ctx, c->name};
  va_list ap;
  va_start(ap, fmt);
  ps_status st = ps__jvfail(&r, path, fmt, ap);
  va_end(ap);
  return st;
}

static void join(char *path, size_t len, const char *prefix, const char *key) {
  snprintf(path, len, "%s%s%s", prefix, *prefix ? "." : "", key);
}

const json_t *ps__cfg_find(const ps__cfg *c, const char *const *keys, size_t key_count, char *path,
                           size_t path_len) {
  for (size_t i = 0; i < key_count; i++) {
    const json_t *v = json_object_get(c->text, keys[i]);
    if (v && !json_is_null(v)) {
      join(path, path_len, c->text_key, keys[i]);
      return v;
    }
  }
  if (c->text != c->top) {
    for (size_t i = 0; i < key_count; i++) {
      const json_t *v = json_object_get(c->top, keys[i]);
      if (v && !json_is_null(v)) {
        join(path, path_len, "", keys[i]);
        return v;
      }
    }
  }
  join(path, path_len, c->text_key, keys[0]);
  return NULL;
}

ps_status ps__cfg_int(const ps__cfg *c, const char *const *keys, size_t key_count, bool required,
                      int min, int max, int *out, bool *found) {
  char path[128];
  const char *what = min > 0 ? "a positive integer" : "a non-negative integer";
  const json_t *v = ps__cfg_find(c, keys, key_count, path, sizeof(path));
  if (found) *found = false;
  if (!v) return required ? ps__cfg_fail(c, path, "expected %s", what) : PS_OK;
  double d;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    d = i < -PS_MODEL_INT_MAX ? -1e18 : i > PS_MODEL_INT_MAX ? 1e18 : (double)i;
  } else if (json_is_real(v) && json_real_value(v) > -1e18 && json_real_value(v) < 1e18 &&
             (double)(long long)json_real_value(v) == json_real_value(v)) {
    d = json_real_value(v); /* integral: 4096.0 */
  } else {
    return ps__cfg_fail(c, path, "expected %s", what);
  }
  if (d < min) return ps__cfg_fail(c, path, "expected %s", what);
  if (d > max) {
    if (d >= 1e18) return ps__cfg_fail(c, path, "too large (at most %d)", max);
    return ps__cfg_fail(c, path, "%.0f is too large (at most %d)", d, max);
  }
  *out = (int)d;
  if (found) *found = true;
  return PS_OK;
}

ps_status ps__cfg_bool(const ps__cfg *c, const char *key, bool *out, bool *found) {
  char path[128];
  const json_t *v = ps__cfg_find(c, &key, 1, path, sizeof(path));
  if (found) *found = false;
  if (!v) return PS_OK;
  if (!json_is_boolean(v)) return ps__cfg_fail(c, path, "expected true or false");
  *out = json_is_true(v);
  if (found) *found = true;
  return PS_OK;
}

ps_status ps__cfg_str(const ps__cfg *c, const char *key, char *out, size_t cap) {
  char path[128];
  const json_t *v = ps__cfg_find(c, &key, 1, path, sizeof(path));
  out[0] = '\0';
  if (!v) return PS_OK;
  if (!json_is_string(v)) return ps__cfg_fail(c, path, "expected a string");
  ps__strlcpy(out, json_string_value(v), cap);
  return PS_OK;
}
