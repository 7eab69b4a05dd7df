/* POST /api/v1/plan: the planner on the current report, from a JSON body with the fields of
 * `peerscope plan` (docs/web-api.yaml, PlanRequest). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "web/web_internal.h"

static const char *const plan_fields[] = {"model_dir",
                                          "model_size_gb",
                                          "params_b",
                                          "dtype",
                                          "tp",
                                          "pp",
                                          "gpus",
                                          "gpu_memory_utilization",
                                          "max_model_len",
                                          "max_num_seqs",
                                          "kv_cache_dtype",
                                          "reserve_gb",
                                          "objective",
                                          NULL};

/* The plan fields of a body (shared with launch, which adds its own). */
typedef struct plan_fields_in {
  const char *model_dir, *dtype, *kv_cache_dtype, *objective;
  double size_gb, params_b, util, reserve_gb;
  int tp, pp, max_model_len, max_num_seqs;
  int gpus[PS_PLAN_MAX_GPUS], gpu_count;
} plan_fields_in;

static bool read_fields(json_t *b, plan_fields_in *f, ps_web_response *r) {
  memset(f, 0, sizeof(*f));
  return ps__web_get_str(b, "model_dir", &f->model_dir, r) &&
         ps__web_get_num(b, "model_size_gb", 0.001, 1e5, &f->size_gb, r) &&
         ps__web_get_num(b, "params_b", 0.001, 1e5, &f->params_b, r) &&
         ps__web_get_str(b, "dtype", &f->dtype, r) &&
         ps__web_get_int(b, "tp", 0, PS_PLAN_MAX_GPUS, &f->tp, r) &&
         ps__web_get_int(b, "pp", 0, PS_PLAN_MAX_GPUS, &f->pp, r) &&
         ps__web_get_gpus(b, "gpus", f->gpus, &f->gpu_count, r) &&
         ps__web_get_num(b, "gpu_memory_utilization", 0.01, 1.0, &f->util, r) &&
         ps__web_get_int(b, "max_model_len", 0, 1 << 24, &f->max_model_len, r) &&
         ps__web_get_int(b, "max_num_seqs", 0, 1 << 20, &f->max_num_seqs, r) &&
         ps__web_get_str(b, "kv_cache_dtype", &f->kv_cache_dtype, r) &&
         ps__web_get_num(b, "reserve_gb", 0, 1e4, &f->reserve_gb, r) &&
         ps__web_get_str(b, "objective", &f->objective, r);
}

static bool load_model(ps_ctx *ctx, const plan_fields_in *f, ps_model *m, ps_web_response *r) {
  int given = (f->model_dir != NULL) + (f->size_gb > 0) + (f->params_b > 0);
  if (given != 1) {
    ps__web_error(r, 400, "give exactly one of model_dir, model_size_gb or params_b");
    return false;
  }
  if (f->dtype && f->params_b <= 0) {
    ps__web_error(r, 400, "dtype goes with params_b");
    return false;
  }
  ps_status st = f->model_dir ? ps_model_load(ctx, f->model_dir, m)
                              : ps_model_synthetic(ctx, f->params_b, f->dtype ? f->dtype : "bf16",
                                                   f->size_gb, m);
  if (st != PS_OK) ps__web_error(r, 400, "%s", ps_ctx_error(ctx));
  return st == PS_OK;
}

bool ps__web_make_plan(ps_web *w, json_t *body, ps_plan *plan, ps_web_response *resp) {
  plan_fields_in f;
  if (!read_fields(body, &f, resp)) return false;
  if (f.objective && strcmp(f.objective, "throughput") != 0 &&
      strcmp(f.objective, "latency") != 0) {
    ps__web_error(resp, 400, "field 'objective' must be 'throughput' or 'latency'");
    return false;
  }
  ps_ctx *ctx = ps_ctx_new();
  ps_model model;
  if (!ctx) {
    ps__web_error(resp, 500, "out of memory");
    return false;
  }
  bool ok = load_model(ctx, &f, &model, resp);
  if (ok) {
    ps_plan_request req = {.model = &model,
                           .tp = f.tp,
                           .pp = f.pp,
                           .gpus = f.gpu_count ? f.gpus : NULL,
                           .gpu_count = f.gpu_count,
                           .gpu_memory_utilization = f.util,
                           .max_model_len = f.max_model_len,
                           .max_num_seqs = f.max_num_seqs,
                           .kv_cache_dtype = f.kv_cache_dtype,
                           .reserve_gib = f.reserve_gb,
                           .objective = f.objective && strcmp(f.objective, "latency") == 0
                                            ? PS_OBJECTIVE_LATENCY
                                            : PS_OBJECTIVE_THROUGHPUT,
                           .model_path = f.model_dir};
    pthread_mutex_lock(&w->lock);
    ps_status st = ps_plan_make(ctx, w->report, &req, plan);
    pthread_mutex_unlock(&w->lock);
    if (st != PS_OK) ps__web_error(resp, 400, "%s", ps_ctx_error(ctx));
    ok = st == PS_OK;
  }
  ps_ctx_free(ctx);
  return ok;
}

/* {"plan": peerscope.plan/1, "shell": ..., "yaml": ..., "args": ...} */
static json_t *plan_response(const ps_plan *plan, ps_web_response *resp) {
  ps_ctx *ctx = ps_ctx_new();
  char *text[4] = {NULL, NULL, NULL, NULL};
  const ps_plan_format formats[4] = {PS_PLAN_JSON, PS_PLAN_SHELL, PS_PLAN_YAML, PS_PLAN_ARGS};
  bool ok = ctx != NULL;
  for (int i = 0; i < 4 && ok; i++)
    ok = ps_plan_write(ctx, plan, formats[i], &text[i]) == PS_OK;
  json_t *doc = NULL, *parsed = ok ? json_loads(text[0], 0, NULL) : NULL;
  if (parsed) {
    doc = json_object();
    json_object_set_new(doc, "plan", parsed);
    json_object_set_new(doc, "shell", json_string(text[1]));
    json_object_set_new(doc, "yaml", json_string(text[2]));
    json_object_set_new(doc, "args", json_string(text[3]));
  } else {
    ps__web_error(resp, 500, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
  }
  for (int i = 0; i < 4; i++)
    ps_free(text[i]);
  ps_ctx_free(ctx);
  return doc;
}

void ps__web_plan_post(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  json_t *body = ps__web_body_object(req, plan_fields, resp);
  if (!body) return;
  ps_plan *plan = ps__calloc(1, sizeof(*plan)); /* ~40 KB: not on a connection's stack */
  if (!plan) {
    json_decref(body);
    return ps__web_error(resp, 500, "out of memory");
  }
  if (ps__web_make_plan(w, body, plan, resp)) {
    json_t *doc = plan_response(plan, resp);
    if (doc) ps__web_json(resp, 200, doc);
  }
  ps__free(plan);
  json_decref(body);
}
