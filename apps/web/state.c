/* The dashboard's state: the current report (an immutable snapshot), the background job
 * (verify or bench) and its thread, and the JSON of both. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "web/web_internal.h"

bool ps_web_make_token(char out[PS_WEB_TOKEN_HEX + 1]) {
  unsigned char raw[PS_WEB_TOKEN_HEX / 2];
  if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) return false;
  for (size_t i = 0; i < sizeof(raw); i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
  return true;
}

/* ---- snapshots ------------------------------------------------------------------------ */

web_snapshot *ps__web_snapshot_new(ps_ctx *ctx, ps_report *report, bool *too_large) {
  *too_large = false;
  web_snapshot *s = calloc(1, sizeof(*s));
  char *text = NULL;
  if (!s || ps_report_to_json(ctx, report, &text) != PS_OK) {
    free(s);
    ps_report_free(report);
    return NULL;
  }
  /* libpeerscope's buffer goes back through ps_free; ours is plain malloc. */
  s->json_len = strlen(text);
  *too_large = s->json_len > PS_WEB_MAX_ANSWER;
  s->json = *too_large ? NULL : malloc(s->json_len + 1);
  if (s->json) memcpy(s->json, text, s->json_len + 1);
  ps_free(text);
  if (!s->json) {
    free(s);
    ps_report_free(report);
    return NULL;
  }
  s->refs = 1;
  s->report = report;
  return s;
}

web_snapshot *ps__web_snapshot_get(ps_web *w) {
  pthread_mutex_lock(&w->lock);
  web_snapshot *s = w->snap;
  __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&w->lock);
  return s;
}

void ps__web_snapshot_put(web_snapshot *s) {
  if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  ps_report_free(s->report);
  free(s->json);
  free(s);
}

web_snapshot *ps__web_snapshot_swap(ps_web *w, web_snapshot *s) {
  web_snapshot *old = w->snap;
  w->snap = s;
  return old;
}

/* ---- the server ------------------------------------------------------------------------- */

ps_web *ps_web_new(const ps_web_config *cfg, ps_report *report) {
  ps_web *w = calloc(1, sizeof(*w));
  ps_ctx *ctx = ps_ctx_new();
  bool too_large = false;
  if (w && ctx)
    w->snap = ps__web_snapshot_new(ctx, report, &too_large);
  else
    ps_report_free(report);
  ps_ctx_free(ctx);
  if (w) w->launch.summary = ps_log_summary_new(); /* nothing seen yet: every field unknown */
  if (!w || !w->snap || !w->launch.summary || !ps_web_make_token(w->session)) {
    if (w) ps__web_snapshot_put(w->snap);
    if (w) ps_log_summary_free(w->launch.summary);
    free(w);
    return NULL;
  }
  w->cfg = *cfg;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->changed, NULL);
  return w;
}

const ps_web_config *ps_web_config_of(const ps_web *w) { return &w->cfg; }

void ps_web_free(ps_web *w) {
  if (!w) return;
  /* A running benchmark stops at once (ps_bench_opts.stop). */
  __atomic_store_n(&w->closing, 1, __ATOMIC_SEQ_CST);
  ps__web_launch_shutdown(w);
  ps_log_summary_free(w->launch.summary);
  if (w->job.thread_live) pthread_join(w->job.thread, NULL);
  ps__web_snapshot_put(w->snap);
  pthread_cond_destroy(&w->changed);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

static const char *job_kind_name(web_job_kind k) {
  return k == JOB_VERIFY ? "verify" : k == JOB_BENCH ? "bench" : "none";
}

static const char *job_state_name(web_job_state s) {
  static const char *const names[] = {"idle", "running", "done", "failed"};
  return names[s];
}

json_t *ps__web_job_json(const ps_web *w) {
  const web_job *j = &w->job;
  json_t *o = json_object();
  json_object_set_new(o, "id", json_integer(j->id));
  json_object_set_new(o, "kind", json_string(job_kind_name(j->kind)));
  json_object_set_new(o, "state", json_string(job_state_name(j->state)));
  json_object_set_new(o, "done", json_integer(j->done));
  json_object_set_new(o, "total", json_integer(j->total));
  json_object_set_new(o, "label", json_string(j->label));
  json_object_set_new(o, "error", j->error[0] ? json_string(j->error) : json_null());
  return o;
}

void ps__web_job_get(ps_web *w, ps_web_response *resp) {
  pthread_mutex_lock(&w->lock);
  json_t *doc = ps__web_job_json(w);
  pthread_mutex_unlock(&w->lock);
  ps__web_json(resp, 200, doc);
}

/* ---- the background job --------------------------------------------------------------- */

static void on_bench_progress(void *user, int done, int total, const ps_bench_result *last) {
  ps_web *w = user;
  pthread_mutex_lock(&w->lock);
  w->job.done = done;
  w->job.total = total;
  ps__web_strlcpy(w->job.label, ps_bench_kind_name(last->kind), sizeof(w->job.label));
  pthread_mutex_unlock(&w->lock);
}

/* A fresh probe and verification of this machine (on the drivers and fixture the server
 * started on): the job never touches the report others are reading. */
static ps_status fresh_report(const ps_web *w, ps_ctx *ctx, bool refresh, ps_report **out) {
  const char *dir = w->cfg.driver_dir[0] ? w->cfg.driver_dir : NULL;
  const char *fixture = w->cfg.fixture[0] ? w->cfg.fixture : NULL;
  ps_probe_opts po = {.size = sizeof(po), .driver_dir = dir, .fixture = fixture};
  ps_status st = ps_probe(ctx, &po, out);
  /* Only the GPUs the server's CUDA_VISIBLE_DEVICES allows, as at start-up. */
  ps_visible_opts so = {.size = sizeof(so), .driver_dir = dir, .fixture = fixture};
  if (st == PS_OK && !w->cfg.all_gpus) st = ps_report_apply_visible(ctx, *out, &so);
  ps_verify_opts vo = {
      .size = sizeof(vo), .refresh = refresh, .driver_dir = dir, .fixture = fixture};
  if (st == PS_OK) st = ps_verify(ctx, *out, &vo);
  if (st != PS_OK) {
    ps_report_free(*out);
    *out = NULL;
  }
  return st;
}

/* A verification keeps the last benchmark: the same GPUs, measured a moment ago. The current
 * snapshot is shared and immutable: its bench is read back from its JSON, not taken. */
static void keep_bench(ps_web *w, ps_ctx *ctx, ps_report *r) {
  web_snapshot *cur = ps__web_snapshot_get(w);
  ps_report *copy = NULL;
  if (cur->report->bench && !r->bench &&
      ps_report_parse_json(ctx, cur->json, cur->json_len, "current", &copy) == PS_OK) {
    r->bench = copy->bench;
    copy->bench = NULL;
  }
  ps_report_free(copy);
  ps__web_snapshot_put(cur);
}

/* The job's report (taken) as the next snapshot: its JSON made here, off the lock. NULL with
 * the reason in error. */
static web_snapshot *job_snapshot(ps_web *w, ps_ctx *ctx, web_job_kind kind, ps_report *r,
                                  char *error, size_t len) {
  if (kind == JOB_VERIFY) keep_bench(w, ctx, r);
  bool too_large = false;
  web_snapshot *snap = ps__web_snapshot_new(ctx, r, &too_large);
  if (!snap && too_large)
    snprintf(error, len, "the report's JSON is over %u bytes", PS_WEB_MAX_ANSWER);
  else if (!snap)
    snprintf(error, len, "%s", ps_ctx_error(ctx));
  return snap;
}

static void *job_main(void *arg) {
  ps_web *w = arg;
  pthread_mutex_lock(&w->lock);
  web_job job = w->job;
  pthread_mutex_unlock(&w->lock);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  web_snapshot *snap = NULL, *old = NULL;
  ps_status st = ctx ? fresh_report(w, ctx, job.kind == JOB_VERIFY, &r) : PS_ERR_NO_MEMORY;
  if (st == PS_OK && job.kind == JOB_BENCH) {
    ps_bench_opts opts = {.size = sizeof(opts),
                          .tests = job.tests,
                          .quick = job.quick,
                          .stop = &w->closing,
                          .gpus = job.gpu_count ? job.gpus : NULL,
                          .gpu_count = job.gpu_count,
                          .progress = on_bench_progress,
                          .progress_user = w,
                          .driver_dir = w->cfg.driver_dir[0] ? w->cfg.driver_dir : NULL,
                          .fixture = w->cfg.fixture[0] ? w->cfg.fixture : NULL};
    st = ps_bench_run(ctx, r, &opts);
  }
  char error[256];
  ps__web_strlcpy(error, ctx ? ps_ctx_error(ctx) : "out of memory", sizeof(error));
  if (st == PS_OK) {
    snap = job_snapshot(w, ctx, job.kind, r, error, sizeof(error));
    r = NULL; /* the snapshot's, or freed */
  }
  pthread_mutex_lock(&w->lock);
  if (snap) {
    old = ps__web_snapshot_swap(w, snap);
    w->job.state = JOB_DONE;
  } else {
    ps__web_strlcpy(w->job.error, error, sizeof(w->job.error));
    w->job.state = JOB_FAILED;
  }
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  ps__web_snapshot_put(old);
  ps_report_free(r);
  ps_ctx_free(ctx);
  return NULL;
}

/* Starts `kind` unless a job runs or the report is an uploaded topology (lock not held). */
void ps__web_start_job(ps_web *w, web_job_kind kind, const web_job *request,
                       ps_web_response *resp) {
  pthread_mutex_lock(&w->lock);
  if (w->job.state == JOB_RUNNING) {
    const char *running = job_kind_name(w->job.kind); /* read under the lock */
    pthread_mutex_unlock(&w->lock);
    return ps__web_error(resp, 409, "a %s is already running; wait for it (GET /api/v1/job)",
                         running);
  }
  if (w->snap->report->source == PS_SOURCE_FILE || !w->cfg.jobs) {
    pthread_mutex_unlock(&w->lock);
    return ps__web_error(resp, 409,
                         w->cfg.jobs ? "the report is an uploaded topology of another machine: "
                                       "nothing here to verify or measure"
                                     : "background jobs are disabled in this server");
  }
  for (int i = 0; i < request->gpu_count; i++)
    if (!ps_gpu_allowed(w->snap->report, request->gpus[i])) {
      char why[400];
      snprintf(why, sizeof(why), "GPU %d is not among the GPUs CUDA_VISIBLE_DEVICES=%s allows",
               request->gpus[i], w->snap->report->cuda_visible_devices);
      pthread_mutex_unlock(&w->lock);
      return ps__web_error(resp, 400, "%s", why);
    }
  if (w->job.thread_live) pthread_join(w->job.thread, NULL); /* the last one has finished */
  w->job.thread_live = false;
  int id = w->job.id + 1;
  w->job = *request;
  w->job.id = id;
  w->job.kind = kind;
  w->job.state = JOB_RUNNING;
  w->job.done = w->job.total = 0;
  ps__web_strlcpy(w->job.label, kind == JOB_VERIFY ? "verifying every pair" : "starting",
                  sizeof(w->job.label));
  w->job.error[0] = '\0';
  if (pthread_create(&w->job.thread, NULL, job_main, w) != 0) {
    w->job.state = JOB_FAILED;
    ps__web_strlcpy(w->job.error, "cannot start a thread", sizeof(w->job.error));
  } else {
    w->job.thread_live = true;
  }
  json_t *doc = ps__web_job_json(w);
  int status = w->job.state == JOB_FAILED ? 500 : 202;
  pthread_mutex_unlock(&w->lock);
  ps__web_json(resp, status, doc);
}

void ps__web_verify_post(ps_web *w, ps_web_response *resp) {
  web_job req = {0};
  ps__web_start_job(w, JOB_VERIFY, &req, resp);
}
