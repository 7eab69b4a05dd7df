/* ps_bench_run: plans the measurements (plan_jobs.c), runs them in bench workers (one per
 * NCCL configuration, each with its environment) under a watchdog, and fills report->bench.
 * A measurement that passes its deadline gets `hang`, the worker is killed and a fresh one
 * goes on with the rest, as ps_verify does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_internal.h"
#include "bench/bench_plan.h"
#include "core/internal.h"
#include "report/report_internal.h"
#include "worker/arglist.h"
#include "worker/spawn.h"
#include "worker/watchdog.h"

#define DEFAULT_TIMEOUT_MS 15000
#define SETUP_DEADLINE_MS 60000 /* cuInit, contexts, buffers, NCCL communicators */

typedef struct session {
  ps_ctx *ctx;
  ps_report *report;
  const ps_bench_opts *opts;
  ps__bench_plan plan;
  bool *done;
  size_t remaining, finished;
  int timeout_ms;
  char worker[1024];
  char nccl[1024];
  bool fatal;
  ps_status status;
} session;

typedef struct run {
  session *s;
  ps__watch watch; /* the worker, its deadline and its stderr tail */
  size_t *slots;   /* job index in this worker -> plan index */
  size_t slot_count;
  int current; /* worker job index, -1 between jobs */
  bool init_failed;
  int completed;
} run;

static ps_bench_result *result_of(session *s, size_t plan_index) {
  return &s->report->bench->results[plan_index];
}

static void finish(session *s, size_t i, ps_bench_outcome outcome, const char *reason) {
  if (s->done[i]) return;
  s->done[i] = true;
  s->remaining--;
  s->finished++;
  ps_bench_result *r = result_of(s, i);
  r->outcome = outcome;
  ps__strlcpy(r->reason, reason ? reason : "", sizeof(r->reason));
  if (s->opts->progress)
    s->opts->progress(s->opts->progress_user, (int)s->finished, (int)s->plan.count, r);
}

/* Times per operation -> statistics and bandwidths. */
static void fill_numbers(ps_bench_result *r, const double *us, int n) {
  ps__bench_stats(us, n, r);
  if (r->us_median <= 0) return;
  double seconds = r->us_median * 1e-6;
  if (r->kind == PS_BENCH_LATENCY_CHASE) {
    r->ns_per_access = r->us_median * 1000.0;
    return;
  }
  r->gbps = (double)r->bytes * (r->bidirectional ? 2.0 : 1.0) / seconds / 1e9;
  if (ps__bench_kind_has_bus_gbps(r->kind))
    r->bus_gbps = r->gbps * ps__allreduce_bus_factor(r->ranks);
}

static void parse_us(const char *text, double *us, int *n, int cap) {
  *n = 0;
  while (*text && *text != ' ' && *n < cap) {
    char *end;
    double v = strtod(text, &end);
    if (end == text) break;
    us[(*n)++] = v;
    text = *end == ',' ? end + 1 : end;
  }
}

static void on_result(session *s, run *w, int j, const char *rest) {
  if (j < 0 || (size_t)j >= w->slot_count) return;
  size_t i = w->slots[j];
  char outcome_name[16] = "";
  sscanf(rest, "%15s", outcome_name);
  ps_bench_outcome outcome = PS_BENCH_FAILED;
  ps__bench_outcome_parse(outcome_name, &outcome);
  const char *us = strstr(rest, " us="), *reason = strstr(rest, " reason=");
  double samples[64];
  int n = 0;
  if (us) parse_us(us + 4, samples, &n, 64);
  ps_bench_result *r = result_of(s, i);
  r->trials = 0; /* what came back, not what was asked for */
  if (n > 0 && (outcome == PS_BENCH_OK || outcome == PS_BENCH_WRONG)) fill_numbers(r, samples, n);
  if (outcome == PS_BENCH_OK && (n == 0 || r->us_median <= 0)) {
    finish(s, i, PS_BENCH_FAILED, "the worker reported no timing");
  } else {
    finish(s, i, outcome, reason ? reason + 8 : "");
  }
  w->completed++;
}

/* Handles one line from the worker (`done` is the watchdog's). */
static void handle_line(void *user, ps__watch *watch, const char *line) {
  run *w = user;
  session *s = w->s;
  int j = -1, n = 0;
  double now = ps__now_ms();
  ps_bench *b = s->report->bench;
  if (strncmp(line, "init ok", 7) == 0) {
    int sim = 0, kernels = 0, nccl = 0;
    const char *p = strstr(line, "simulated=");
    if (p) sscanf(p, "simulated=%d kernels=%d nccl=%d", &sim, &kernels, &nccl);
    b->simulated = sim != 0;
    b->kernels = kernels != 0;
    if (nccl) b->nccl_version = nccl;
    watch->deadline_ms = now + SETUP_DEADLINE_MS;
  } else if (strncmp(line, "init fail ", 10) == 0) {
    s->status = ps__fail(s->ctx, PS_ERR_DRIVER_UNAVAILABLE, "CUDA unusable in the bench worker: %s",
                         line + 10);
    w->init_failed = true;
    s->fatal = true;
  } else if (strncmp(line, "nccl-note ", 10) == 0) {
    ps__strlcpy(b->nccl_note, line + 10, sizeof(b->nccl_note));
  } else if (sscanf(line, "step bench %d", &j) == 1) {
    w->current = j;
    watch->deadline_ms = now + s->timeout_ms;
  } else if (sscanf(line, "result bench %d %n", &j, &n) == 1 && n > 0) {
    on_result(s, w, j, line + n);
    w->current = -1;
    watch->deadline_ms = now + s->timeout_ms;
  }
}

/* Everything of this worker's that is not done gets the outcome. */
static void finish_rest(session *s, run *w, ps_bench_outcome outcome, const char *reason) {
  for (size_t k = 0; k < w->slot_count; k++)
    finish(s, w->slots[k], outcome, reason);
}

static char *join_jobs(session *s, run *w) {
  ps__arglist list = {0};
  for (size_t k = 0; k < w->slot_count; k++) {
    char token[256];
    if (ps__bench_job_format(&s->plan.jobs[w->slots[k]].job, token, sizeof(token)))
      ps__arglist_add(&list, token);
  }
  return ps__arglist_take(&list);
}

/* The flag is written by another thread (a server shutting down) or a signal handler. */
static bool stop_asked(const session *s) {
  return s->opts->stop && __atomic_load_n(s->opts->stop, __ATOMIC_SEQ_CST);
}

/* A stop asked: what this worker had left is not run. */
static bool on_stop(void *user, ps__watch *watch) {
  (void)watch;
  run *w = user;
  if (!stop_asked(w->s)) return false;
  finish_rest(w->s, w, PS_BENCH_FAILED, "stopped before it ran");
  w->s->fatal = true;
  return true;
}

/* A measurement (or the setup) passed its deadline (the watchdog kills the worker). */
static void on_deadline(void *user, ps__watch *watch) {
  (void)watch;
  run *w = user;
  session *s = w->s;
  char reason[160];
  if (w->current >= 0 && (size_t)w->current < w->slot_count) {
    snprintf(reason, sizeof(reason), "did not finish within %d ms; worker killed", s->timeout_ms);
    finish(s, w->slots[w->current], PS_BENCH_HANG, reason);
  } else {
    snprintf(reason, sizeof(reason), "the bench worker stopped answering during setup");
    finish_rest(s, w, PS_BENCH_HANG, reason);
  }
}

/* The worker exited before `done`. */
static void on_early_exit(void *user, ps__watch *watch, int status) {
  run *w = user;
  session *s = w->s;
  if (w->init_failed) {
    finish_rest(s, w, PS_BENCH_FAILED, "CUDA unusable in the bench worker");
    return;
  }
  char how[96], reason[192];
  ps__wait_status_text(status, how, sizeof(how));
  /* Precision keeps the message one bounded line whatever the worker printed. */
  snprintf(reason, sizeof(reason), "the bench worker died (%.60s)%s%.100s", how,
           watch->err_tail[0] ? ": " : "", watch->err_tail);
  if (w->current >= 0 && (size_t)w->current < w->slot_count)
    finish(s, w->slots[w->current], PS_BENCH_FAILED, reason);
  else if (w->completed == 0)
    finish_rest(s, w, PS_BENCH_FAILED, reason);
}

/* One worker over the jobs of `env` that are left. */
static void run_worker(session *s, int env) {
  run w;
  memset(&w, 0, sizeof(w));
  w.s = s;
  w.current = -1;
  w.slots = ps__calloc(s->plan.count + 1, sizeof(*w.slots));
  if (!w.slots) {
    s->status = ps__fail(s->ctx, PS_ERR_NO_MEMORY, "out of memory for the bench jobs");
    s->fatal = true;
    return;
  }
  for (size_t i = 0; i < s->plan.count; i++)
    if (!s->done[i] && s->plan.jobs[i].env == env) w.slots[w.slot_count++] = i;
  char *gpus = ps__arglist_gpus(s->report), *jobs = join_jobs(s, &w);
  char bytes[32], span[32];
  snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)s->plan.copy_bytes);
  uint64_t largest = 0;
  for (int i = 0; i < s->plan.size_count; i++)
    largest = s->plan.sizes[i] > largest ? s->plan.sizes[i] : largest;
  snprintf(span, sizeof(span), "%llu", (unsigned long long)largest);
  if (!gpus || !jobs) {
    s->status = ps__fail(s->ctx, PS_ERR_NO_MEMORY, "out of memory for the bench jobs");
    s->fatal = true;
    goto out;
  }
  const char *options[] = {
      "--mode", "bench", "--copy-bytes", bytes, "--span", span, s->nccl[0] ? "--nccl" : NULL,
      s->nccl,  NULL};
  const char *extra[2] = {env > 0 ? ps__bench_envs[env] : NULL, NULL};
  ps__worker_cmd cmd = {.path = s->worker,
                        .options = options,
                        .driver_dir = s->opts->driver_dir,
                        .gpus = gpus,
                        .jobs = jobs,
                        .env = extra,
                        .fixture = s->opts->fixture};
  /* Short waits when a stop may come, so that it is seen within 100 ms. */
  ps__watch_ops ops = {.line = handle_line,
                       .deadline = on_deadline,
                       .exited = on_early_exit,
                       .quit = on_stop,
                       .quit_poll_ms = s->opts->stop ? 100 : 0};
  int rc = ps__watch_run(&w.watch, &cmd, SETUP_DEADLINE_MS, &ops, &w);
  if (rc != 0) {
    s->status = ps__fail(s->ctx, PS_ERR_WORKER, "cannot start %s: %s", s->worker, strerror(rc));
    finish_rest(s, &w, PS_BENCH_FAILED, "the bench worker could not be started");
    s->fatal = true;
    goto out;
  }
  /* A worker that made no progress and said nothing must not be restarted forever. */
  if (w.completed == 0 && w.current < 0)
    finish_rest(s, &w, PS_BENCH_FAILED, "the bench worker made no progress");
out:
  ps__free(gpus);
  ps__free(jobs);
  ps__free(w.slots);
}

static void prefill(session *s) {
  ps_bench *b = s->report->bench;
  for (size_t i = 0; i < s->plan.count; i++) {
    const ps__bench_planned *p = &s->plan.jobs[i];
    ps_bench_result *r = &b->results[i];
    memset(r, 0, sizeof(*r));
    r->kind = p->job.kind;
    r->src = p->job.a;
    r->dst = p->job.b;
    r->ranks = p->job.ranks;
    memcpy(r->group, p->job.group, sizeof(r->group));
    r->virtual_ranks = p->job.virtual_ranks;
    r->bidirectional = p->job.bidirectional;
    r->p2p = p->job.p2p;
    r->graph = p->job.graph;
    ps__strlcpy(r->env, ps__bench_envs[p->env], sizeof(r->env));
    ps__strlcpy(r->dtype, p->job.dtype, sizeof(r->dtype));
    r->bytes = p->job.bytes;
    r->iters = p->job.iters;
    r->trials = p->job.trials;
    if (r->kind == PS_BENCH_LATENCY_CHASE) r->iters = 1; /* one chain walk per trial */
  }
  b->count = s->plan.count;
  for (size_t i = 0; i < s->plan.count; i++)
    if (s->plan.jobs[i].waived) finish(s, i, PS_BENCH_WAIVED, s->plan.jobs[i].reason);
}

static ps_status find_paths(session *s) {
  ps_status st = ps__worker_find(s->ctx, s->opts->worker_path, s->worker, sizeof(s->worker));
  if (st != PS_OK) return st;
  const char *nccl = s->opts->nccl_path;
  if (!nccl || !*nccl) nccl = getenv("PEERSCOPE_NCCL");
  if (nccl) ps__strlcpy(s->nccl, nccl, sizeof(s->nccl));
  return PS_OK;
}

static ps_status select_gpus(session *s, int *gpus, int *n) {
  const ps_report *r = s->report;
  *n = 0;
  if (!s->opts->gpus) {
    for (int g = 0; g < r->gpu_count; g++)
      if (ps_gpu_allowed(r, g)) gpus[(*n)++] = g; /* not hidden by CUDA_VISIBLE_DEVICES */
    return PS_OK;
  }
  for (int i = 0; i < s->opts->gpu_count; i++) {
    int g = s->opts->gpus[i];
    if (g < 0 || g >= r->gpu_count)
      return ps__fail(s->ctx, PS_ERR_INVALID_ARG, "GPU %d does not exist (this machine has %d)", g,
                      r->gpu_count);
    for (int k = 0; k < *n; k++)
      if (gpus[k] == g) return ps__fail(s->ctx, PS_ERR_INVALID_ARG, "GPU %d listed twice", g);
    if (!ps_gpu_allowed(r, g))
      return ps__fail(s->ctx, PS_ERR_INVALID_ARG,
                      "GPU %d is not among the GPUs CUDA_VISIBLE_DEVICES=%s allows", g,
                      r->cuda_visible_devices);
    gpus[(*n)++] = g;
  }
  return PS_OK;
}

static ps_status check_opts(session *s) {
  const ps_bench_opts *o = s->opts;
  if (o->tests & ~PS_BENCH_TEST_ALL)
    return ps__fail(s->ctx, PS_ERR_INVALID_ARG, "unknown benchmark bits 0x%x", o->tests);
  if (o->iters < 0 || o->iters > 100000 || o->trials < 0 || o->trials > 64 || o->timeout_ms < 0)
    return ps__fail(s->ctx, PS_ERR_INVALID_ARG,
                    "iterations must be 1..100000 and trials 1..64 (got %d and %d)", o->iters,
                    o->trials);
  if (o->copy_bytes && (o->copy_bytes < 4096 || o->copy_bytes > (4ull << 30)))
    return ps__fail(s->ctx, PS_ERR_INVALID_ARG, "copy size must be 4 KiB..4 GiB");
  for (int i = 0; o->sizes && i < o->size_count; i++)
    if (o->sizes[i] < 16 || o->sizes[i] % 16 || o->sizes[i] > (1ull << 30))
      return ps__fail(s->ctx, PS_ERR_INVALID_ARG,
                      "all-reduce size %llu: must be a multiple of 16 bytes, 16 B..1 GiB",
                      (unsigned long long)o->sizes[i]);
  return PS_OK;
}

static void stamp(ps_bench *b) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(b->started, sizeof(b->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

ps_status ps_bench_run(ps_ctx *ctx, ps_report *report, const ps_bench_opts *opts) {
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "no report to benchmark");
  ps_bench_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_bench_opts");
  if (ost != PS_OK) return ost;
  session s;
  memset(&s, 0, sizeof(s));
  s.ctx = ctx;
  s.report = report;
  s.opts = &o;
  s.timeout_ms = s.opts->timeout_ms > 0 ? s.opts->timeout_ms : DEFAULT_TIMEOUT_MS;
  double t0 = ps__now_ms();
  int gpus[PS_REPORT_MAX_GPUS], n = 0;
  ps_status st = check_opts(&s);
  if (st == PS_OK) st = select_gpus(&s, gpus, &n);
  if (st != PS_OK) return st;
  if (n == 0) return ps__fail(ctx, PS_ERR_INVALID_ARG, "no GPU to benchmark");
  if ((st = find_paths(&s)) != PS_OK) return st;

  ps__bench_plan_defaults(&s.plan, s.opts, report->source == PS_SOURCE_FIXTURE);
  ps__bench_plan_make(&s.plan, report, gpus, n, s.opts->tests ? s.opts->tests : PS_BENCH_TEST_ALL);
  ps_bench *b = ps__calloc(1, sizeof(*b));
  s.done = ps__calloc(s.plan.count + 1, sizeof(*s.done));
  if (b) b->results = ps__calloc(s.plan.count + 1, sizeof(*b->results));
  if (s.plan.oom || !b || !b->results || !s.done) {
    ps_bench_free(b);
    ps__free(s.done);
    ps__free(s.plan.jobs);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory planning the benchmarks");
  }
  ps_bench_free(report->bench);
  report->bench = b;
  stamp(b);
  s.remaining = s.plan.count;
  s.status = PS_OK;
  prefill(&s);
  for (int env = 0; env < PS_BENCH_ENV_COUNT && !s.fatal; env++) {
    for (;;) {
      size_t left = 0;
      for (size_t i = 0; i < s.plan.count; i++)
        left += !s.done[i] && s.plan.jobs[i].env == env;
      if (left == 0 || s.fatal) break;
      run_worker(&s, env);
    }
  }
  if (s.fatal)
    for (size_t i = 0; i < s.plan.count; i++)
      finish(&s, i, PS_BENCH_FAILED,
             stop_asked(&s) ? "stopped before it ran"
                            : "not run: the bench worker could not start CUDA");
  b->wall_ms = ps__now_ms() - t0;
  ps__free(s.done);
  ps__free(s.plan.jobs);
  return s.status;
}
