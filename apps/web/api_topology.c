/* GET/POST /api/v1/topology and GET /api/v1/doctor: the current report, an uploaded one
 * (offline mode: parsed by the CLI's importers, never written to disk), and the doctor. */
#include <stdlib.h>
#include <string.h>

#include "web/web_internal.h"

/* The report JSON as the CLI writes it (ps_report_to_json), made once when the snapshot was:
 * a reader copies it, whatever a job or an upload is doing meanwhile. */
void ps__web_topology_get(ps_web *w, ps_web_response *resp) {
  web_snapshot *snap = ps__web_snapshot_get(w);
  ps_web_response_free(resp);
  resp->body = malloc(snap->json_len + 1);
  if (resp->body) {
    memcpy(resp->body, snap->json, snap->json_len + 1);
    resp->len = snap->json_len;
    resp->status = 200;
    resp->content_type = "application/json";
  }
  ps__web_snapshot_put(snap);
  if (!resp->body) ps__web_error(resp, 500, "out of memory");
}

static bool looks_like_json(const ps_web_request *req) {
  if (req->content_type && strncmp(req->content_type, "application/json", 16) == 0) return true;
  for (size_t i = 0; i < req->body_len; i++) {
    char c = req->body[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{';
  }
  return false;
}

void ps__web_topology_post(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  if (req->body_len == 0)
    return ps__web_error(resp, 400,
                         "empty upload: send a peerscope report (JSON) or the text "
                         "of nvidia-smi topo -m");
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return ps__web_error(resp, 500, "out of memory");
  ps_report *r = NULL;
  ps_status st = looks_like_json(req)
                     ? ps_report_parse_json(ctx, req->body, req->body_len, "upload", &r)
                     : ps_import_topology_text(ctx, req->body, req->body_len, "upload", &r);
  if (st != PS_OK) {
    ps__web_error(resp, 400, "%s", ps_ctx_error(ctx));
    ps_ctx_free(ctx);
    return;
  }
  /* An uploaded report describes another machine even when it was live there. */
  r->source = PS_SOURCE_FILE;
  ps__web_strlcpy(r->origin, "upload", sizeof(r->origin));
  /* Parsed and written as JSON here, off the lock: readers keep the current snapshot. */
  bool too_large = false;
  web_snapshot *snap = ps__web_snapshot_new(ctx, r, &too_large), *old = NULL;
  if (!snap) {
    if (too_large)
      ps__web_error(resp, 413, "the uploaded topology's report is over %u bytes as JSON",
                    PS_WEB_MAX_ANSWER);
    else
      ps__web_error(resp, 500, "%s", ps_ctx_error(ctx));
    ps_ctx_free(ctx);
    return;
  }
  ps_ctx_free(ctx);
  const char *running = NULL;
  pthread_mutex_lock(&w->lock);
  if (w->job.state == JOB_RUNNING) /* the kind is read under the lock */
    running = w->job.kind == JOB_BENCH ? "benchmark" : "verification";
  else
    old = ps__web_snapshot_swap(w, snap);
  pthread_mutex_unlock(&w->lock);
  if (running) {
    ps__web_snapshot_put(snap);
    return ps__web_error(resp, 409, "a %s is running on the current report; upload afterwards",
                         running);
  }
  ps__web_snapshot_put(old);
  ps__web_topology_get(w, resp);
}

void ps__web_doctor_get(ps_web *w, ps_web_response *resp) {
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return ps__web_error(resp, 500, "out of memory");
  ps_doctor_result *res = NULL;
  char *text = NULL;
  /* The snapshot stays alive while referenced (a verification may swap in another). */
  web_snapshot *snap = ps__web_snapshot_get(w);
  ps_doctor_opts opts = {.size = sizeof(opts),
                         .driver_dir = w->cfg.driver_dir[0] ? w->cfg.driver_dir : NULL,
                         .fixture = w->cfg.fixture[0] ? w->cfg.fixture : NULL};
  ps_status st = ps_doctor_run(ctx, snap->report, &opts, &res);
  if (st == PS_OK) st = ps_doctor_to_json(ctx, snap->report, res, &text);
  ps__web_snapshot_put(snap);
  if (st == PS_OK)
    ps__web_text(resp, 200, "application/json", text);
  else
    ps__web_error(resp, 500, "%s", ps_ctx_error(ctx));
  ps_free(text);
  ps_doctor_result_free(res);
  ps_ctx_free(ctx);
}
