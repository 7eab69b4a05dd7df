/* The plan request as JSON: a body of the web API (POST /api/v1/plan, /api/v1/launch) or of
 * the Python package, checked field by field against the table (request_fields.c). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/request_internal.h"

static bool is_own(const char *const *own, const char *key) {
  for (size_t i = 0; own && own[i]; i++)
    if (strcmp(own[i], key) == 0) return true;
  return false;
}

static ps_status read_gpus(ps_ctx *ctx, ps_plan_input *in, int i, const json_t *v) {
  const char *name = ps__fields[i].pub.name;
  if (!json_is_array(v) || json_array_size(v) > PS_PLAN_MAX_GPUS)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "field '%s' must be a list of at most %d GPU indexes",
                    name, PS_PLAN_MAX_GPUS);
  int gpus[PS_PLAN_MAX_GPUS], n = 0;
  size_t k;
  json_t *item;
  json_array_foreach(v, k, item) {
    if (!json_is_integer(item) || json_integer_value(item) < 0 ||
        json_integer_value(item) >= PS_PLAN_MAX_GPUS)
      return ps__fail(ctx, PS_ERR_INVALID_ARG, "field '%s': item %zu is not a GPU index", name, k);
    gpus[n++] = (int)json_integer_value(item);
  }
  return ps__input_store_gpus(ctx, in, i, gpus, n);
}

/* One field's value, checked for type and range. */
static ps_status read_value(ps_ctx *ctx, ps_plan_input *in, int i, const json_t *v) {
  const ps_plan_field *f = &ps__fields[i].pub;
  double x;
  switch (f->type) {
  case PS_FIELD_INT:
    if (!json_is_integer(v)) break;
    x = (double)json_integer_value(v);
    if (x < f->min || x > f->max) break;
    return ps__input_store_num(ctx, in, i, x);
  case PS_FIELD_NUMBER:
    if (!json_is_number(v) || json_number_value(v) < f->min || json_number_value(v) > f->max) break;
    return ps__input_store_num(ctx, in, i, json_number_value(v));
  case PS_FIELD_STRING:
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > PS__STRING_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
      return ps__fail(ctx, PS_ERR_INVALID_ARG,
                      "field '%s' must be a non-empty string (at most %d bytes)", f->name,
                      PS__STRING_MAX);
    return ps__input_store_str(ctx, in, i, json_string_value(v));
  case PS_FIELD_ENUM:
    for (int k = 0; json_is_string(v) && f->choices[k]; k++)
      if (strcmp(json_string_value(v), f->choices[k]) == 0)
        return ps__input_store_num(ctx, in, i, k);
    break;
  case PS_FIELD_BOOL:
    if (!json_is_boolean(v)) break;
    return ps__input_store_num(ctx, in, i, json_is_true(v));
  case PS_FIELD_GPUS: return read_gpus(ctx, in, i, v);
  }
  return ps__fail(ctx, PS_ERR_INVALID_ARG, "field '%s' must be %s", f->name, f->expect);
}

static ps_status read_object(ps_ctx *ctx, const json_t *doc, const char *const *own,
                             ps_plan_input *in) {
  if (!json_is_object(doc)) return ps__fail(ctx, PS_ERR_BAD_INPUT, "expected a JSON object");
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)doc, key, value) {
    if (is_own(own, key)) continue;
    int i = ps__field_index(key);
    if (i < 0 || strcmp(key, ps__fields[i].pub.name) != 0)
      return ps__fail(ctx, PS_ERR_INVALID_ARG, "unknown field '%.64s'", key);
    if (json_is_null(value)) continue;
    ps_status st = read_value(ctx, in, i, value);
    if (st != PS_OK) return st;
  }
  return PS_OK;
}

ps_status ps_plan_input_from_json(ps_ctx *ctx, const char *json, size_t len, const char *const *own,
                                  ps_plan_input **out) {
  if (!out || (!json && len))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_from_json: NULL");
  *out = NULL;
  json_error_t err;
  json_t *doc = len ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &err) : json_object();
  if (!doc)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s at line %d column %d", err.text, err.line,
                    err.column);
  ps_plan_input *in = NULL;
  ps_status st = ps_plan_input_new(ctx, &in);
  if (st == PS_OK) st = read_object(ctx, doc, own, in);
  json_decref(doc);
  if (st != PS_OK) {
    ps_plan_input_free(in);
    return st;
  }
  *out = in;
  return PS_OK;
}

static json_t *value_json(const ps_plan_input *in, int i) {
  const ps_plan_field *f = &ps__fields[i].pub;
  json_t *a;
  switch (f->type) {
  case PS_FIELD_INT: return json_integer((json_int_t)in->num[i]);
  case PS_FIELD_NUMBER: return json_real(in->num[i]);
  case PS_FIELD_STRING: return json_string(in->str[i]);
  case PS_FIELD_ENUM: return json_string(f->choices[(int)in->num[i]]);
  case PS_FIELD_BOOL: return json_boolean(in->num[i] != 0);
  case PS_FIELD_GPUS:
    a = json_array();
    for (int k = 0; k < in->gpu_count; k++)
      json_array_append_new(a, json_integer(in->gpus[k]));
    return a;
  }
  return json_null();
}

ps_status ps_plan_input_to_json(ps_ctx *ctx, const ps_plan_input *in, char **out) {
  if (!in || !out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_to_json: NULL");
  *out = NULL;
  json_t *doc = json_object();
  for (int i = 0; i < ps__field_count; i++)
    if (in->given[i]) json_object_set_new(doc, ps__fields[i].pub.name, value_json(in, i));
  char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(doc);
  if (text) *out = ps__strdup(text);
  free(text);
  return *out ? PS_OK : ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
}
