/* ps_plan_input: the inputs of one plan, as given, checked against the field table
 * (request_fields.c) when they are set; the model loaded from them, and the request. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/request_internal.h"

ps_status ps_plan_input_new(ps_ctx *ctx, ps_plan_input **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_new: out is NULL");
  *out = ps__calloc(1, sizeof(**out));
  return *out ? PS_OK : ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
}

void ps_plan_input_free(ps_plan_input *in) {
  if (!in) return;
  ps__input_measured_free(in);
  for (int i = 0; i < PS__FIELD_MAX; i++)
    ps__free(in->str[i]);
  ps__free(in);
}

ps_status ps__input_store_num(ps_ctx *ctx, ps_plan_input *in, int i, double v) {
  (void)ctx;
  in->num[i] = v;
  in->given[i] = true;
  return PS_OK;
}

ps_status ps__input_store_str(ps_ctx *ctx, ps_plan_input *in, int i, const char *s) {
  char *copy = ps__strdup(s);
  if (!copy) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps__free(in->str[i]);
  in->str[i] = copy;
  ps__input_measured_free(in); /* a new log or version: loaded again */
  in->given[i] = true;
  return PS_OK;
}

/* A GPU listed twice is listed once, in the order first given. */
ps_status ps__input_store_gpus(ps_ctx *ctx, ps_plan_input *in, int i, const int *g, int n) {
  in->gpu_count = 0;
  for (int k = 0; k < n; k++) {
    bool seen = false;
    for (int j = 0; j < in->gpu_count && !seen; j++)
      seen = in->gpus[j] == g[k];
    if (seen) continue;
    if (in->gpu_count == PS_PLAN_MAX_GPUS)
      return ps__fail(ctx, PS_ERR_INVALID_ARG, "more than %d GPUs", PS_PLAN_MAX_GPUS);
    in->gpus[in->gpu_count++] = g[k];
  }
  in->given[i] = true;
  return PS_OK;
}

static bool parse_number(const char *text, bool whole, double *out) {
  char *end = NULL;
  errno = 0;
  double v = whole ? (double)strtoll(text, &end, 10) : strtod(text, &end);
  if (!text[0] || *end || errno || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* "0,2,4-7": indexes and ranges. */
static bool parse_gpus(const char *text, int *gpus, int *n) {
  *n = 0;
  const char *p = text;
  while (*p) {
    char *end = NULL;
    long lo = strtol(p, &end, 10), hi = lo;
    if (end == p || lo < 0) return false;
    if (*end == '-') {
      const char *q = end + 1;
      hi = strtol(q, &end, 10);
      if (end == q || hi < lo) return false;
    }
    if (*end && *end != ',') return false;
    for (long g = lo; g <= hi; g++) {
      if (g >= PS_PLAN_MAX_GPUS || *n == PS_PLAN_MAX_GPUS) return false;
      gpus[(*n)++] = (int)g;
    }
    p = *end ? end + 1 : end;
  }
  return *n > 0;
}

static int choice_index(const ps_plan_field *f, const char *text) {
  for (int k = 0; f->choices && f->choices[k]; k++)
    if (strcmp(text, f->choices[k]) == 0) return k;
  return -1;
}

static ps_status set_text(ps_ctx *ctx, ps_plan_input *in, int i, const char *text) {
  const ps_plan_field *f = &ps__fields[i].pub;
  double v = 0;
  int gpus[PS_PLAN_MAX_GPUS], n = 0;
  switch (f->type) {
  case PS_FIELD_INT:
  case PS_FIELD_NUMBER:
    if (!parse_number(text, f->type == PS_FIELD_INT, &v) || v < f->min || v > f->max) break;
    return ps__input_store_num(ctx, in, i, v);
  case PS_FIELD_STRING:
    if (!text[0] || strlen(text) > PS__STRING_MAX) break;
    return ps__input_store_str(ctx, in, i, text);
  case PS_FIELD_ENUM:
    if ((v = choice_index(f, text)) < 0) break;
    return ps__input_store_num(ctx, in, i, v);
  case PS_FIELD_BOOL:
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
      return ps__input_store_num(ctx, in, i, 1);
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
      return ps__input_store_num(ctx, in, i, 0);
    break;
  case PS_FIELD_GPUS:
    if (!parse_gpus(text, gpus, &n)) break;
    return ps__input_store_gpus(ctx, in, i, gpus, n);
  }
  return PS_ERR_INVALID_ARG;
}

ps_status ps_plan_input_set(ps_ctx *ctx, ps_plan_input *in, const char *key, const char *text) {
  if (!in || !key || !text) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_set: NULL");
  int i = ps__field_index(key);
  if (i < 0) return ps__fail(ctx, PS_ERR_INVALID_ARG, "unknown plan field '%.64s'", key);
  if (key[0] == '-') in->cli_names = true;
  ps_status st = set_text(ctx, in, i, text);
  if (st == PS_ERR_INVALID_ARG)
    return ps__fail(ctx, st, "%s: '%.200s' is not %s", key, text, ps__fields[i].pub.expect);
  return st;
}

ps_status ps_plan_input_set_gpus(ps_ctx *ctx, ps_plan_input *in, const int *gpus, int count) {
  int i = ps__field_index("gpus");
  if (!in || count < 0 || (count && !gpus))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_set_gpus: bad arguments");
  if (count == 0) {
    in->given[i] = false;
    in->gpu_count = 0;
    return PS_OK;
  }
  return ps__input_store_gpus(ctx, in, i, gpus, count);
}

void ps_plan_input_use_flags(ps_plan_input *in) {
  if (in) in->cli_names = true;
}

bool ps_plan_input_get(const ps_plan_input *in, const char *name, char *buf, size_t len) {
  int i = ps__field_index(name);
  if (!in || i < 0 || !in->given[i]) return false;
  if (!buf || !len) return true;
  const ps_plan_field *f = &ps__fields[i].pub;
  size_t used = 0;
  buf[0] = '\0';
  switch (f->type) {
  case PS_FIELD_STRING: ps__strlcpy(buf, in->str[i], len); break;
  case PS_FIELD_ENUM: ps__strlcpy(buf, f->choices[(int)in->num[i]], len); break;
  case PS_FIELD_BOOL: ps__strlcpy(buf, in->num[i] ? "true" : "false", len); break;
  case PS_FIELD_INT: snprintf(buf, len, "%lld", (long long)in->num[i]); break;
  case PS_FIELD_NUMBER: snprintf(buf, len, "%.17g", in->num[i]); break;
  case PS_FIELD_GPUS:
    for (int k = 0; k < in->gpu_count && used < len; k++)
      used += (size_t)snprintf(buf + used, len - used, "%s%d", k ? "," : "", in->gpus[k]);
    break;
  }
  return true;
}

/* The field's name as the caller spoke: "--params-b N" from the CLI, else "params_b". */
static const char *spoken(const ps_plan_input *in, const char *name, char *buf, size_t len) {
  const ps_plan_field *f = ps_plan_field_find(name);
  if (in->cli_names)
    snprintf(buf, len, "--%s%s%s", f->flag, f->metavar ? " " : "", f->metavar ? f->metavar : "");
  else
    snprintf(buf, len, "%s", f->name);
  return buf;
}

ps_status ps_plan_input_check(ps_ctx *ctx, const ps_plan_input *in) {
  if (!in) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_check: NULL");
  bool dir = ps_plan_input_get(in, "model_dir", NULL, 0);
  bool size = ps_plan_input_get(in, "model_size_gb", NULL, 0);
  bool params = ps_plan_input_get(in, "params_b", NULL, 0);
  char a[48], b[48], c[48];
  if (dir + size + params != 1)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "give exactly one of %s, %s or %s",
                    spoken(in, "model_dir", a, sizeof(a)),
                    spoken(in, "model_size_gb", b, sizeof(b)),
                    spoken(in, "params_b", c, sizeof(c)));
  if (ps_plan_input_get(in, "model_name", NULL, 0) && dir)
    return ps__fail(
        ctx, PS_ERR_INVALID_ARG, "%s goes with %s or %s (a directory or id names itself)",
        spoken(in, "model_name", a, sizeof(a)), spoken(in, "model_size_gb", b, sizeof(b)),
        spoken(in, "params_b", c, sizeof(c)));
  if (ps_plan_input_get(in, "dtype", NULL, 0) && !params)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "%s goes with %s", in->cli_names ? "--dtype" : "dtype",
                    in->cli_names ? "--params-b" : "params_b");
  return PS_OK;
}

ps_status ps_plan_input_model(ps_ctx *ctx, const ps_plan_input *in, ps_model **out) {
  return ps_plan_input_model_source(ctx, in, out, NULL);
}

ps_status ps_plan_input_model_source(ps_ctx *ctx, const ps_plan_input *in, ps_model **out,
                                     ps_model_source **source) {
  if (source) *source = NULL;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_model: out is NULL");
  *out = NULL;
  ps_status st = ps_plan_input_check(ctx, in);
  if (st != PS_OK) return st;
  char dir[PS__STRING_MAX + 1], dtype[16] = "bf16";
  /* A directory, or a Hugging Face id from the cache, the catalog or the Hub. */
  if (ps_plan_input_get(in, "model_dir", dir, sizeof(dir)))
    return ps_model_resolve(ctx, dir, NULL, out, source);
  ps_plan_input_get(in, "dtype", dtype, sizeof(dtype));
  int size = ps__field_index("model_size_gb"), params = ps__field_index("params_b");
  return ps_model_synthetic(ctx, in->given[params] ? in->num[params] : 0, dtype,
                            in->given[size] ? in->num[size] : 0, out);
}

/* Writes row i's value into its member of the request. */
static void fill_member(const ps_plan_input *in, int i, ps_plan_request *req) {
  const ps__field *f = &ps__fields[i];
  char *member = (char *)req + f->offset;
  switch (f->pub.type) {
  case PS_FIELD_INT:
  case PS_FIELD_ENUM: *(int *)(void *)member = (int)in->num[i]; break;
  case PS_FIELD_NUMBER: *(double *)(void *)member = in->num[i]; break;
  case PS_FIELD_BOOL: *(bool *)(void *)member = in->num[i] != 0; break;
  case PS_FIELD_STRING: *(const char **)(void *)member = in->str[i]; break;
  case PS_FIELD_GPUS:
    *(const int **)(void *)member = in->gpus;
    *(int *)(void *)((char *)req + f->count_offset) = in->gpu_count;
    break;
  }
}

ps_status ps_plan_input_request(ps_ctx *ctx, const ps_plan_input *in, const ps_model *model,
                                ps_plan_request *req) {
  if (!in || !req) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_input_request: NULL");
  ps_plan_request full = {.size = sizeof(full), .model = model};
  for (int i = 0; i < ps__field_count; i++)
    if (in->given[i] && ps__fields[i].offset >= 0) fill_member(in, i, &full);
  full.model_path = in->str[ps__field_index("model_dir")];
  if (!full.model_path) full.model_path = in->str[ps__field_index("model_name")];
  /* the input owns what the request borrows: the log, the records, the installed version */
  ps_status st = ps__input_measured(ctx, (ps_plan_input *)in, &full);
  if (st != PS_OK) return st;
  return ps__opts_out(ctx, req, &full, sizeof(full), "ps_plan_request");
}
