/* The cache of measured figures: <cache>/vllm-calibration.json, schema
 * "peerscope.vllm-calibration/1", one record per model, GPU type, TP and vLLM version,
 * written through a temporary file and a rename (never half a file). A record that does not
 * read as one is skipped; a file of another schema is no records. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "hub/hub_internal.h"
#include "plan/calibration.h"

#define SCHEMA "peerscope.vllm-calibration/1"
#define FILE_NAME "vllm-calibration.json"
#define MAX_RECORDS 512 /* the oldest go first beyond this */

static bool file_path(ps_ctx *ctx, const char *dir, char *out, size_t len) {
  char base[1024];
  if (!ps__cache_dir(dir, base, sizeof(base)) ||
      snprintf(out, len, "%s/%s", base, FILE_NAME) >= (int)len) {
    ps__fail(ctx, PS_ERR_IO, "no cache directory (set PEERSCOPE_CACHE_DIR or HOME)");
    return false;
  }
  return true;
}

static json_t *record_json(const ps_vllm_calibration *c) {
  json_t *o =
      json_pack("{s:s, s:s, s:i, s:s, s:f, s:i, s:i, s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:s}",
                "model", c->model, "gpu_name", c->gpu_name, "tp", c->tp, "vllm_version",
                c->vllm_version, "gpu_memory_utilization", c->util, "max_model_len",
                c->max_model_len, "max_num_batched_tokens", c->batched, "enforce_eager", c->eager,
                "visible_bytes", (json_int_t)c->visible, "weights_bytes", (json_int_t)c->weights,
                "overhead_bytes", (json_int_t)c->overhead, "kv_bytes", (json_int_t)c->kv_bytes,
                "kv_tokens", (json_int_t)c->kv_tokens, "date", c->date, "source", c->source);
  if (o && c->parts)
    json_object_set_new(o, "parts",
                        json_pack("{s:I, s:I, s:I}", "activation_bytes", (json_int_t)c->activation,
                                  "non_torch_bytes", (json_int_t)c->non_torch, "graphs_bytes",
                                  (json_int_t)c->graphs));
  return o;
}

static bool get_str(json_t *o, const char *key, char *out, size_t len, bool nonempty) {
  const char *s = json_string_value(json_object_get(o, key));
  if (!s || strlen(s) >= len || (nonempty && !*s)) return false;
  ps__strlcpy(out, s, len);
  return true;
}

static bool get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v)) return false;
  *out = json_integer_value(v);
  return *out >= lo && *out <= hi;
}

#define BIG ((json_int_t)1 << 50) /* a PiB: more than any GPU holds */

static bool record_read(json_t *o, ps_vllm_calibration *c) {
  json_int_t tp, len, batched, visible, weights, overhead, kv, tokens;
  json_t *util = json_object_get(o, "gpu_memory_utilization");
  if (!json_is_object(o) || !get_str(o, "model", c->model, sizeof(c->model), true) ||
      !get_str(o, "gpu_name", c->gpu_name, sizeof(c->gpu_name), false) ||
      !get_str(o, "vllm_version", c->vllm_version, sizeof(c->vllm_version), true) ||
      !get_str(o, "date", c->date, sizeof(c->date), true) ||
      !get_str(o, "source", c->source, sizeof(c->source), true) ||
      !get_int(o, "tp", 1, 1024, &tp) || !get_int(o, "max_model_len", 1, 1 << 30, &len) ||
      !get_int(o, "max_num_batched_tokens", 0, 1 << 30, &batched) ||
      !get_int(o, "visible_bytes", 0, BIG, &visible) ||
      !get_int(o, "weights_bytes", 0, BIG, &weights) ||
      !get_int(o, "overhead_bytes", -BIG, BIG, &overhead) ||
      !get_int(o, "kv_bytes", -BIG, BIG, &kv) || !get_int(o, "kv_tokens", 0, BIG, &tokens) ||
      !json_is_number(util) || json_number_value(util) <= 0 || json_number_value(util) > 1 ||
      !json_is_boolean(json_object_get(o, "enforce_eager")))
    return false;
  c->tp = (int)tp;
  c->max_model_len = (int)len;
  c->batched = (int)batched;
  c->visible = (uint64_t)visible;
  c->weights = (uint64_t)weights;
  c->overhead = overhead;
  c->kv_bytes = kv;
  c->kv_tokens = (uint64_t)tokens;
  c->util = json_number_value(util);
  c->eager = json_is_true(json_object_get(o, "enforce_eager"));
  json_t *parts = json_object_get(o, "parts");
  json_int_t a, n, g;
  if (json_is_object(parts) && get_int(parts, "activation_bytes", 0, BIG, &a) &&
      get_int(parts, "non_torch_bytes", 0, BIG, &n) && get_int(parts, "graphs_bytes", 0, BIG, &g)) {
    c->parts = true;
    c->activation = (uint64_t)a;
    c->non_torch = (uint64_t)n;
    c->graphs = (uint64_t)g;
  }
  return true;
}

/* The records of the file, or an empty array (missing, unreadable, another schema). */
static json_t *records_of(const char *path) {
  json_t *doc = json_load_file(path, 0, NULL);
  json_t *records = json_object_get(doc, "records");
  const char *schema = json_string_value(json_object_get(doc, "schema"));
  json_t *out = schema && strcmp(schema, SCHEMA) == 0 && json_is_array(records)
                    ? json_incref(records)
                    : json_array();
  json_decref(doc);
  return out;
}

static bool same_key(json_t *o, const ps_vllm_calibration *c) {
  json_int_t tp;
  const char *m = json_string_value(json_object_get(o, "model"));
  const char *g = json_string_value(json_object_get(o, "gpu_name"));
  const char *v = json_string_value(json_object_get(o, "vllm_version"));
  return m && g && v && get_int(o, "tp", 1, 1024, &tp) && tp == c->tp && strcmp(m, c->model) == 0 &&
         strcmp(g, c->gpu_name) == 0 && strcmp(v, c->vllm_version) == 0;
}

ps_status ps_vllm_calibration_store(ps_ctx *ctx, const char *dir, const ps_vllm_calibration *cal) {
  if (!cal) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_vllm_calibration_store: NULL");
  char path[1100];
  if (!file_path(ctx, dir, path, sizeof(path))) return PS_ERR_IO;
  json_t *records = records_of(path), *kept = json_array();
  size_t i;
  json_t *o;
  json_array_foreach(records, i, o) if (!same_key(o, cal)) json_array_append(kept, o);
  json_decref(records);
  while (json_array_size(kept) >= MAX_RECORDS)
    json_array_remove(kept, 0);
  json_array_append_new(kept, record_json(cal));
  json_t *doc = json_pack("{s:s, s:o}", "schema", SCHEMA, "records", kept);
  char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(doc);
  if (!text) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = ps__hub_write_atomic(ctx, path, text, strlen(text));
  free(text);
  return st;
}

ps_status ps_vllm_calibration_load(ps_ctx *ctx, const char *dir, ps_vllm_calibration ***out,
                                   int *count) {
  if (!out || !count) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_vllm_calibration_load: NULL");
  *out = NULL;
  *count = 0;
  char path[1100];
  if (!file_path(NULL, dir, path, sizeof(path))) return PS_OK; /* no cache: no records */
  json_t *records = records_of(path);
  size_t n = json_array_size(records);
  ps_vllm_calibration **list = n ? ps__calloc(n, sizeof(*list)) : NULL;
  if (n && !list) {
    json_decref(records);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  }
  size_t i;
  json_t *o;
  json_array_foreach(records, i, o) {
    ps_vllm_calibration *c = ps__calloc(1, sizeof(*c));
    if (c && record_read(o, c))
      list[(*count)++] = c;
    else
      ps__free(c);
  }
  json_decref(records);
  if (*count == 0) {
    ps__free(list);
    list = NULL;
  }
  *out = list;
  return PS_OK;
}

void ps_vllm_calibrations_free(ps_vllm_calibration **cals, int count) {
  for (int i = 0; cals && i < count; i++)
    ps__free(cals[i]);
  ps__free(cals);
}
