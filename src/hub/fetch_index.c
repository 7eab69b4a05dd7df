/* Checks of what the Hub sent before anything goes into the cache: an index whose sizes add
 * up, a safetensors header whose length and data match the file. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "hub/hub_internal.h"
#include "model/model.h"

#include "hub/fetch_internal.h"

/* "model-00003-of-00030.safetensors" -> 3 and 30; false for other names. */
static bool shard_numbers(const char *name, long *k, long *n) {
  const char *of = strstr(name, "-of-");
  if (!of) return false;
  const char *dash = of;
  while (dash > name && dash[-1] >= '0' && dash[-1] <= '9')
    dash--;
  char *end = NULL;
  if (dash == of || dash == name || dash[-1] != '-') return false;
  *k = strtol(dash, NULL, 10);
  *n = strtol(of + 4, &end, 10);
  return end && end != of + 4 && strcmp(end, ".safetensors") == 0 && *k >= 1 && *k <= *n;
}

/* Every shard "-K-of-N" names the same N, and exactly N of them are listed. */
static ps_status check_shards(ps_ctx *ctx, const char *name, json_t *map) {
  const char *key;
  json_t *v;
  long total = -1, distinct = 0;
  char *seen = NULL;
  ps_status st = PS_OK;
  json_object_foreach(map, key, v) {
    long k, n;
    if (!json_is_string(v))
      return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: weight_map[\"%.80s\"]: expected a file name",
                      name, key);
    if (!shard_numbers(json_string_value(v), &k, &n)) continue;
    if (total < 0) {
      total = n;
      if (n > 100000 || !(seen = ps__calloc((size_t)n + 1, 1)))
        return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: %ld shards", name, n);
    }
    if (n != total) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: the shards do not add up: '%s' is one of %ld, "
                    "others of %ld",
                    name, json_string_value(v), n, total);
      break;
    }
    if (!seen[k]) seen[k] = 1, distinct++;
  }
  if (st == PS_OK && total > 0 && distinct != total)
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s: the sizes do not add up: weight_map names %ld of the %ld shards", name,
                  distinct, total);
  ps__free(seen);
  return st;
}

ps_status ps__hub_check_index(ps_ctx *ctx, const char *name, const char *text, size_t len,
                              uint64_t estimate, ps__hub_total *total) {
  json_t *doc = NULL;
  ps_status st = ps__model_json_load(ctx, text, len, name, &doc);
  if (st != PS_OK) return st;
  json_t *meta = json_object_get(doc, "metadata"), *map = json_object_get(doc, "weight_map");
  json_t *size = json_object_get(meta, "total_size");
  double bytes = json_is_integer(size) ? (double)json_integer_value(size)
                 : json_is_real(size)  ? json_real_value(size)
                                       : -1;
  if (!json_is_object(map) || json_object_size(map) == 0)
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: no weight_map: not a safetensors index", name);
  else if (!(bytes >= 1 && bytes <= (double)PS_MAX_WEIGHT_BYTES))
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s: the sizes do not add up: metadata.total_size is missing, not a positive "
                  "integer or absurd (over 1 PiB)",
                  name);
  else if (estimate &&
           ((uint64_t)bytes > ps__mul_u64_sat(estimate, 8) || (uint64_t)bytes * 8 < estimate))
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s: the sizes do not add up: metadata.total_size is %.0f bytes but the "
                  "config's shapes need about %llu",
                  name, bytes, (unsigned long long)estimate);
  else
    st = check_shards(ctx, name, map);
  if (st == PS_OK) {
    total->bytes = (uint64_t)bytes;
    json_t *p = json_object_get(meta, "total_parameters");
    total->params = json_is_integer(p) && json_integer_value(p) > 0 &&
                            (uint64_t)json_integer_value(p) <= PS_MAX_PARAMS
                        ? (uint64_t)json_integer_value(p)
                        : 0;
  }
  json_decref(doc);
  return st;
}

ps_status ps__hub_check_header(ps_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                               uint64_t file_size, ps__hub_total *total) {
  ps__st_sum sum = {0, 0, 0};
  ps_status st = ps__safetensors_parse_header(ctx, buf, len, name, &sum);
  if (st != PS_OK) return st;
  if (file_size && ps__add_u64_sat(len, sum.data_bytes) != file_size)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: the sizes do not add up: the header describes %llu bytes of tensors "
                    "after %zu header bytes, but the file has %llu",
                    name, (unsigned long long)sum.data_bytes, len, (unsigned long long)file_size);
  total->bytes = sum.data_bytes;
  total->params = sum.params;
  return PS_OK;
}
