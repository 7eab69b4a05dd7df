/* POST /api/v1/launch and /api/v1/stop, GET /api/v1/launch and its log as server-sent
 * events: `vllm serve` with a plan, through ps_launch_run in a thread of its own. Only the
 * executable configured when the server started can run; a request names a model directory
 * and plan options, never a program. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "web/web_internal.h"

static const char *launch_state_name(web_launch_state s) {
  static const char *const names[] = {"idle",     "starting", "ready", "exited",
                                      "stopping", "stopped",  "failed"};
  return names[s];
}

static bool launch_finished(web_launch_state s) {
  return s == LAUNCH_EXITED || s == LAUNCH_STOPPED || s == LAUNCH_FAILED;
}

json_t *ps__web_launch_json(const ps_web *w) {
  const web_launch *L = &w->launch;
  static const char *const health[] = {"unknown", "waiting", "ok", "failed"};
  json_t *o = json_object(), *s = json_object(), *nccl = json_array();
  json_object_set_new(o, "state", json_string(launch_state_name(L->state)));
  json_object_set_new(o, "pid", json_null()); /* ps_launch_run keeps the child to itself */
  json_object_set_new(o, "url", L->url[0] ? json_string(L->url) : json_null());
  json_object_set_new(o, "command", L->command[0] ? json_string(L->command) : json_null());
  json_object_set_new(o, "health", json_string(health[L->health]));
  json_object_set_new(o, "exit_code", L->has_exit ? json_integer(L->exit_code) : json_null());
  json_object_set_new(o, "error", L->error[0] ? json_string(L->error) : json_null());
  const ps_log_summary *m = L->summary;
  json_object_set_new(s, "custom_all_reduce",
                      m->custom_all_reduce < 0 ? json_null() : json_boolean(m->custom_all_reduce));
  json_object_set_new(s, "custom_all_reduce_reason",
                      m->custom_all_reduce_reason[0] ? json_string(m->custom_all_reduce_reason)
                                                     : json_null());
  if (m->nccl_transports & PS_NCCL_P2P) json_array_append_new(nccl, json_string("P2P"));
  if (m->nccl_transports & PS_NCCL_SHM) json_array_append_new(nccl, json_string("SHM"));
  if (m->nccl_transports & PS_NCCL_NET) json_array_append_new(nccl, json_string("NET"));
  json_object_set_new(s, "nccl_transports", nccl);
  json_object_set_new(s, "kv_cache_tokens",
                      m->kv_cache_tokens < 0 ? json_null() : json_integer(m->kv_cache_tokens));
  json_object_set_new(s, "max_concurrency",
                      m->max_concurrency < 0 ? json_null() : json_real(m->max_concurrency));
  json_object_set_new(s, "failure", m->failure ? json_string(m->failure_line) : json_null());
  json_object_set_new(s, "suggestion", L->suggestion[0] ? json_string(L->suggestion) : json_null());
  json_object_set_new(s, "ready", json_boolean(m->ready));
  json_object_set_new(o, "summary", s);
  json_object_set_new(o, "lines", json_integer((json_int_t)L->line_count));
  return o;
}

void ps__web_launch_get(ps_web *w, ps_web_response *resp) {
  pthread_mutex_lock(&w->lock);
  json_t *doc = ps__web_launch_json(w);
  pthread_mutex_unlock(&w->lock);
  ps__web_json(resp, 200, doc);
}

/* Appends a log line to the ring (lock held). */
static void append_line(web_launch *L, const char *prefix, const char *line) {
  size_t slot = L->line_count % PS_WEB_LOG_LINES;
  free(L->lines[slot]);
  size_t n = strlen(prefix) + strlen(line) + 1;
  L->lines[slot] = calloc(1, n);
  if (L->lines[slot]) snprintf(L->lines[slot], n, "%s%s", prefix, line);
  L->line_count++;
}

static void on_line(void *user, int stream, const char *line) {
  ps_web *w = user;
  pthread_mutex_lock(&w->lock);
  append_line(&w->launch, stream == 0 ? "[peerscope] " : "", line);
  if (stream != 0) ps_log_classify_line(w->launch.summary, line);
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
}

static void on_ready(void *user, const ps_launch_result *result) {
  ps_web *w = user;
  pthread_mutex_lock(&w->lock);
  web_launch *L = &w->launch;
  if (L->state == LAUNCH_STARTING) L->state = LAUNCH_READY;
  L->health = 2;
  ps__web_strlcpy(L->url, result->url, sizeof(L->url));
  L->seq++;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
}

typedef struct launch_args {
  ps_web *w;
  int port;
} launch_args;

static void *launch_main(void *arg) {
  launch_args *a = arg;
  ps_web *w = a->w;
  web_launch *L = &w->launch;
  ps_launch_opts opts = {.size = sizeof(opts),
                         .vllm = w->cfg.vllm,
                         .port = a->port,
                         .stop = &L->stop,
                         .on_line = on_line,
                         .on_ready = on_ready,
                         .user = w};
  free(a);
  ps_ctx *ctx = ps_ctx_new();
  ps_launch_result *res = NULL;
  ps_status st = ctx ? ps_launch_run(ctx, L->cmd, &opts, &res) : PS_ERR_NO_MEMORY;
  pthread_mutex_lock(&w->lock);
  if (st != PS_OK) {
    L->state = LAUNCH_FAILED;
    ps__web_strlcpy(L->error, ctx ? ps_ctx_error(ctx) : "out of memory", sizeof(L->error));
  } else {
    static const char *const why[] = {
        [PS_LAUNCH_NOT_FOUND] = "the vLLM executable was not found",
        [PS_LAUNCH_PORT_IN_USE] = "the port is already in use",
        [PS_LAUNCH_HUNG] = "vLLM did not answer /health before the deadline; it was stopped"};
    bool stopped = res->outcome == PS_LAUNCH_STOPPED || res->outcome == PS_LAUNCH_INTERRUPTED;
    L->state = stopped                            ? LAUNCH_STOPPED
               : res->outcome == PS_LAUNCH_EXITED ? LAUNCH_EXITED
                                                  : LAUNCH_FAILED;
    if ((size_t)res->outcome < PS_ARRAY_LEN(why) && why[res->outcome])
      ps__web_strlcpy(L->error, why[res->outcome], sizeof(L->error));
    L->has_exit = res->outcome == PS_LAUNCH_EXITED || stopped;
    L->exit_code = res->exit_code;
    /* Nothing answers /health any more: "ok" would be stale. Never up and not stopped by
     * us: it failed; otherwise unknown. */
    L->health = !res->came_up && !stopped ? 3 : 0;
    if (res->summary.failure) *L->summary = res->summary;
    ps_log_suggest(L->summary, L->plan, L->suggestion, sizeof(L->suggestion));
  }
  ps_launch_result_free(res);
  L->seq++;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  ps_ctx_free(ctx);
  return NULL;
}

/* The command line as a user would type it (for display only; nothing runs through a shell). */
static void command_text(const ps_launch_cmd *cmd, char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < cmd->envc && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s ", cmd->env[i]);
  for (int i = 0; i < cmd->argc && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%s", i ? " " : "", cmd->argv[i]);
}

static void reset_launch(web_launch *L) {
  for (size_t i = 0; i < PS_WEB_LOG_LINES; i++) {
    free(L->lines[i]);
    L->lines[i] = NULL;
  }
  ps_launch_cmd_free(L->cmd);
  ps_plan_free(L->plan);
  /* A fresh summary; out of memory, the old one stays (stale, never NULL). */
  ps_log_summary *summary = ps_log_summary_new();
  if (summary) {
    ps_log_summary_free(L->summary);
  } else {
    summary = L->summary;
  }
  int id = L->id;
  unsigned seq = L->seq;
  memset(L, 0, sizeof(*L));
  L->id = id + 1;
  L->seq = seq + 1;
  L->summary = summary;
}

void ps__web_launch_post(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  static const char *const own[] = {"port", NULL}; /* the plan's fields: the library's */
  json_t *body = ps__web_body_object(req, NULL, resp);
  if (!body) return;
  int port = 8000;
  ps_plan *plan = NULL;
  bool ok = ps__web_get_int(body, "port", 1, 65535, &port, resp);
  if (ok && !json_object_get(body, "model_dir")) {
    ps__web_error(resp, 400, "field 'model_dir' is required: the model vLLM serves");
    ok = false;
  }
  if (ok && port == w->cfg.port) {
    ps__web_error(resp, 400, "port %d is the dashboard's own", port);
    ok = false;
  }
  if (ok) ok = ps__web_make_plan(w, req, own, true, &plan, resp);
  if (ok && !plan->feasible) {
    ps__web_error(resp, 400, "no plan fits: %s", plan->summary);
    ok = false;
  }
  pthread_mutex_lock(&w->lock);
  web_launch *L = &w->launch;
  if (ok && (w->snap->report->source == PS_SOURCE_FILE || !w->cfg.jobs)) {
    ps__web_error(resp, 409,
                  w->cfg.jobs ? "the report is an uploaded topology of another "
                                "machine: vLLM cannot start on its GPUs here"
                              : "launching is disabled in this server");
    ok = false;
  }
  if (ok &&
      (L->state == LAUNCH_STARTING || L->state == LAUNCH_READY || L->state == LAUNCH_STOPPING)) {
    ps__web_error(resp, 409, "vLLM is already %s; stop it first", launch_state_name(L->state));
    ok = false;
  }
  if (ok) {
    if (L->thread_live) pthread_join(L->thread, NULL); /* finished: its state says so */
    reset_launch(L);
    L->plan = plan; /* the launch's now */
    plan = NULL;
    ps_ctx *ctx = ps_ctx_new();
    ps_launch_opts opts = {.size = sizeof(opts), .vllm = w->cfg.vllm, .port = port};
    if (!ctx || ps_launch_argv(ctx, L->plan, &opts, &L->cmd) != PS_OK) {
      ps__web_error(resp, 400, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
      ok = false;
    } else {
      command_text(L->cmd, L->command, sizeof(L->command));
      L->state = LAUNCH_STARTING;
      L->health = 1;
      launch_args *a = calloc(1, sizeof(*a));
      if (a) *a = (launch_args){w, port};
      L->thread_live = a && pthread_create(&L->thread, NULL, launch_main, a) == 0;
      if (!L->thread_live) {
        free(a);
        L->state = LAUNCH_FAILED;
        ps__web_strlcpy(L->error, "cannot start a thread", sizeof(L->error));
      }
    }
    ps_ctx_free(ctx);
  }
  json_t *doc = ok ? ps__web_launch_json(w) : NULL;
  if (ok) pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  if (ok) ps__web_json(resp, 202, doc);
  ps_plan_free(plan);
  json_decref(body);
}

void ps__web_stop_post(ps_web *w, ps_web_response *resp) {
  pthread_mutex_lock(&w->lock);
  web_launch *L = &w->launch;
  if (L->state == LAUNCH_STARTING || L->state == LAUNCH_READY) {
    __atomic_store_n(&L->stop, 1, __ATOMIC_SEQ_CST); /* ps_launch_run stops the group */
    L->state = LAUNCH_STOPPING;
    L->seq++;
    pthread_cond_broadcast(&w->changed);
  }
  json_t *doc = ps__web_launch_json(w);
  pthread_mutex_unlock(&w->lock);
  ps__web_json(resp, 200, doc);
}

void ps__web_launch_shutdown(ps_web *w) {
  pthread_mutex_lock(&w->lock);
  __atomic_store_n(&w->launch.stop, 1, __ATOMIC_SEQ_CST);
  bool live = w->launch.thread_live;
  w->launch.thread_live = false;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  if (live) pthread_join(w->launch.thread, NULL);
  reset_launch(&w->launch);
}

/* ---- server-sent events ------------------------------------------------------------------ */

void ps_web_sse_init(ps_web_sse *s, ps_web *w) {
  memset(s, 0, sizeof(*s));
  s->w = w;
  pthread_mutex_lock(&w->lock);
  s->launch_id = w->launch.id;
  s->status_seq = w->launch.seq - 1; /* the first event is the status */
  pthread_mutex_unlock(&w->lock);
}

/* Adds SSE events to s->pending (lock held); false when nothing was new. */
static bool fill_events(ps_web_sse *s) {
  web_launch *L = &s->w->launch;
  if (s->launch_id != L->id) { /* a new launch: its log from the start */
    s->launch_id = L->id;
    s->next_line = 0;
  }
  size_t room = sizeof(s->pending) - s->pending_len;
  if (s->status_seq != L->seq) {
    json_t *st = ps__web_launch_json(s->w);
    char *text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    int n = text ? snprintf(s->pending + s->pending_len, room, "event: status\ndata: %s\n\n", text)
                 : -1;
    free(text);
    if (n > 0 && (size_t)n < room) {
      s->pending_len += (size_t)n;
      s->status_seq = L->seq;
    }
  }
  if (L->line_count > PS_WEB_LOG_LINES && s->next_line < L->line_count - PS_WEB_LOG_LINES)
    s->next_line = L->line_count - PS_WEB_LOG_LINES; /* fell behind: skip what is gone */
  while (s->next_line < L->line_count) {
    const char *line = L->lines[s->next_line % PS_WEB_LOG_LINES];
    room = sizeof(s->pending) - s->pending_len;
    char clean[2048];
    ps__web_strlcpy(clean, line ? line : "", sizeof(clean));
    for (char *p = clean; *p; p++)
      if (*p == '\r' || *p == '\n') *p = ' ';
    int n = snprintf(s->pending + s->pending_len, room, "event: line\ndata: %s\n\n", clean);
    if (n < 0 || (size_t)n >= room) break;
    s->pending_len += (size_t)n;
    s->next_line++;
  }
  return s->pending_len > 0;
}

/* Something to send now (lock held): pending bytes, a new status or line, the end. */
static bool has_news(const ps_web_sse *s) {
  const web_launch *L = &s->w->launch;
  return s->pending_off < s->pending_len || s->launch_id != L->id || s->status_seq != L->seq ||
         s->next_line < L->line_count || launch_finished(L->state) ||
         __atomic_load_n(&s->w->closing, __ATOMIC_SEQ_CST);
}

bool ps_web_sse_pending(ps_web_sse *s) {
  pthread_mutex_lock(&s->w->lock);
  bool news = has_news(s);
  pthread_mutex_unlock(&s->w->lock);
  return news;
}

/* Waits up to wait_ms for news (lock held); false when none came. */
static bool wait_news(ps_web_sse *s, int wait_ms) {
  if (wait_ms <= 0) return false;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_cond_timedwait(&s->w->changed, &s->w->lock, &until);
  if (fill_events(s)) return true;
  s->pending_len = (size_t)snprintf(s->pending, sizeof(s->pending), ": keep-alive\n\n");
  return true;
}

size_t ps_web_sse_read(ps_web_sse *s, char *buf, size_t len, int wait_ms, bool *end) {
  *end = false;
  ps_web *w = s->w;
  if (__atomic_load_n(&w->closing, __ATOMIC_SEQ_CST)) {
    *end = true;
    return 0;
  }
  if (s->pending_off == s->pending_len) {
    s->pending_off = s->pending_len = 0;
    pthread_mutex_lock(&w->lock);
    if (!fill_events(s)) {
      if (launch_finished(w->launch.state) && s->launch_id == w->launch.id) {
        pthread_mutex_unlock(&w->lock);
        *end = true;
        return 0;
      }
      wait_news(s, wait_ms);
    }
    pthread_mutex_unlock(&w->lock);
  }
  size_t n = s->pending_len - s->pending_off;
  if (n > len) n = len;
  memcpy(buf, s->pending + s->pending_off, n);
  s->pending_off += n;
  return n;
}
