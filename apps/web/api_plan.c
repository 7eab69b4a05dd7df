/* POST /api/v1/plan: the planner on the current report, from a JSON body with the fields of
 * `peerscope plan` (docs/web-api.yaml, PlanRequest), parsed by the library's one definition of
 * the plan request; GET /api/v1/plan/fields: that definition. */
#include <stdlib.h>
#include <string.h>

#include "web/web_internal.h"

/* Fields of POST /api/v1/plan only (not of launch): the model's size instead of its directory. */
static const char *const size_fields[] = {"model_size_gb", "params_b", "dtype", NULL};

/* The body's plan fields through the library's one parser (ps_plan_input_from_json), the model
 * they name, the request, and the plan on the current report. */
static bool parse_input(ps_ctx *ctx, const ps_web_request *req, const char *const *own,
                        bool dir_only, ps_plan_input **in, ps_web_response *resp) {
  ps_status st = ps_plan_input_from_json(ctx, req->body, req->body_len, own, in);
  if (st != PS_OK) {
    ps__web_error(resp, 400, "request body: %s", ps_ctx_error(ctx));
    return false;
  }
  if (ps_plan_input_get(*in, "vllm_log", NULL, 0)) { /* a path: the server reads no files */
    ps__web_error(resp, 400,
                  "field 'vllm_log' names a file, and the web API reads none: use peerscope plan "
                  "--vllm-log FILE (its figures are kept for later plans, here too)");
    return false;
  }
  for (int i = 0; dir_only && size_fields[i]; i++)
    if (ps_plan_input_get(*in, size_fields[i], NULL, 0)) {
      ps__web_error(resp, 400,
                    "field '%s' is for POST /api/v1/plan: launch serves a model directory "
                    "(model_dir)",
                    size_fields[i]);
      return false;
    }
  return true;
}

bool ps__web_make_plan(ps_web *w, const ps_web_request *req, const char *const *own, bool dir_only,
                       ps_plan **plan, ps_web_response *resp) {
  *plan = NULL;
  ps_ctx *ctx = ps_ctx_new();
  ps_plan_input *in = NULL;
  ps_model *model = NULL;
  if (!ctx) {
    ps__web_error(resp, 500, "out of memory");
    return false;
  }
  bool ok = parse_input(ctx, req, own, dir_only, &in, resp);
  if (ok && ps_plan_input_model(ctx, in, &model) != PS_OK) {
    ps__web_error(resp, 400, "%s", ps_ctx_error(ctx));
    ok = false;
  }
  ps_plan_request preq = PS_INIT(ps_plan_request);
  if (ok && ps_plan_input_request(ctx, in, model, &preq) == PS_OK) {
    web_snapshot *snap = ps__web_snapshot_get(w); /* the planner is re-entrant: no lock */
    ps_status st = ps_plan_make(ctx, snap->report, &preq, plan);
    ps__web_snapshot_put(snap);
    if (st != PS_OK) ps__web_error(resp, 400, "%s", ps_ctx_error(ctx));
    ok = st == PS_OK;
  }
  ps_plan_input_free(in);
  ps_model_free(model);
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
  ps_plan *plan = NULL;
  if (ps__web_make_plan(w, req, NULL, false, &plan, resp)) {
    json_t *doc = plan_response(plan, resp);
    if (doc) ps__web_json(resp, 200, doc);
  }
  ps_plan_free(plan);
}

/* GET /api/v1/plan/fields: the library's table of plan fields, for the dashboard's form. */
void ps__web_plan_fields_get(ps_web *w, ps_web_response *resp) {
  (void)w;
  ps_ctx *ctx = ps_ctx_new();
  char *text = NULL;
  json_t *doc = NULL;
  if (ctx && ps_plan_fields_json(ctx, &text) == PS_OK) doc = json_loads(text, 0, NULL);
  if (doc)
    ps__web_json(resp, 200, doc);
  else
    ps__web_error(resp, 500, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
  ps_free(text);
  ps_ctx_free(ctx);
}
