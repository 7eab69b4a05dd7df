/* ps_verify: runs every pair test in a worker process under a watchdog. A step that passes
 * its deadline gets the verdict `hang`, the worker is killed, and a fresh worker carries on
 * with the jobs that are left; so does one after a job whose CUDA error poisoned the worker
 * (`poisoned`: a sticky error). The report lists every such restart and why. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "report/report_internal.h"
#include "verify/cache.h"
#include "verify/early.h"
#include "verify/protocol.h"
#include "worker/arglist.h"
#include "worker/spawn.h"
#include "worker/watchdog.h"

#define DEFAULT_TIMEOUT_MS 2000
/* cuInit and a first context can take seconds on a big machine without persistence mode. */
#define MIN_SETUP_DEADLINE_MS 15000

typedef struct job_slot {
  ps__job job;
  bool done;
} job_slot;

typedef struct session {
  ps_ctx *ctx;
  ps_report *report;
  const ps_verify_opts *opts;
  job_slot *jobs;
  int job_count, remaining;
  int timeout_ms, setup_deadline_ms;
  size_t bytes;
  uint64_t nonce;
  unsigned modes; /* PS_MODE_BIT of each mode to run */
  char worker[1024];
  bool fatal;       /* no further worker can help (CUDA unusable) */
  ps_status status; /* what ps_verify returns */
  bool first_spawn_timed;
  bool restarting; /* the next worker replaces one that ended early: next_why says why */
  ps_restart next_why;
  ps__early_worker *early; /* started ahead (ps_probe_for_verify): the first worker */
} session;

/* What the current worker is doing, for the watchdog. */
typedef enum phase { PHASE_SETUP, PHASE_IDLE, PHASE_CTX, PHASE_JOB } phase;

typedef struct worker_run {
  session *s;
  ps__watch watch; /* the worker, its deadline and its stderr tail */
  phase phase;
  int ctx_gpu;       /* the first GPU whose context is being made */
  bool *ctx_pending; /* per GPU: `step ctx` without its `ctx` line yet (parallel contexts) */
  int ctx_pending_count;
  double ctx_start_ms;
  int job; /* slot index in PHASE_JOB */
  double step_start_ms;
  int completed;
} worker_run;

static int find_job(const session *s, const ps__job *want) {
  for (int i = 0; i < s->job_count; i++) {
    const ps__job *j = &s->jobs[i].job;
    if (!s->jobs[i].done && j->mode == want->mode && j->local == want->local && j->a == want->a &&
        j->b == want->b)
      return i;
  }
  return -1;
}

/* Where a job's verdict goes in the sm and ipc modes. */
static ps_mode_result *mode_result(ps_report *r, const ps__job *j) {
  if (j->local) return j->mode == PS_MODE_SM ? &r->gpus[j->a].local_sm : &r->gpus[j->a].local_ipc;
  ps_pair *pair = (ps_pair *)ps_report_pair(r, j->a, j->b);
  return j->mode == PS_MODE_SM ? &pair->sm : &pair->ipc;
}

static void finish_job(session *s, int slot, ps_verdict verdict, const char *error,
                       const char *reason) {
  job_slot *js = &s->jobs[slot];
  if (js->done) return;
  js->done = true;
  s->remaining--;
  if (js->job.mode != PS_MODE_CE) {
    ps_mode_result *m = mode_result(s->report, &js->job);
    m->verdict = verdict;
    ps__strlcpy(m->error_name, error ? error : "", sizeof(m->error_name));
    ps__strlcpy(m->reason, reason, sizeof(m->reason));
    return;
  }
  if (js->job.local) {
    ps_gpu *gpu = &s->report->gpus[js->job.a];
    gpu->local_verdict = verdict;
    ps__strlcpy(gpu->local_reason, reason, sizeof(gpu->local_reason));
    return;
  }
  ps_pair *pair = (ps_pair *)ps_report_pair(s->report, js->job.a, js->job.b);
  pair->verdict = verdict;
  ps__strlcpy(pair->error_name, error ? error : "", sizeof(pair->error_name));
  ps__strlcpy(pair->reason, reason, sizeof(pair->reason));
}

/* Every job left that involves gpu (or all, when gpu < 0) gets this verdict. */
static void finish_involving(session *s, int gpu, ps_verdict verdict, const char *error,
                             const char *reason) {
  for (int i = 0; i < s->job_count; i++) {
    const ps__job *j = &s->jobs[i].job;
    if (!s->jobs[i].done && (gpu < 0 || j->a == gpu || j->b == gpu))
      finish_job(s, i, verdict, error, reason);
  }
}

static void apply_result(session *s, worker_run *w, const ps__job *job, const ps__job_result *r) {
  int slot = find_job(s, job);
  if (slot < 0) return; /* a result we did not ask for: ignore */
  int a = job->a, b = job->b;
  s->report->timings.copies_ms += ps__now_ms() - w->step_start_ms;
  if (job->mode == PS_MODE_CE && !job->local) {
    ps_pair *pair = (ps_pair *)ps_report_pair(s->report, a, b);
    if (r->access >= 0) {
      pair->cuda_can_access = r->access != 0;
      pair->valid |= PS_PAIR_CUDA_CLAIM;
    }
    if (r->copy_us >= 0) {
      pair->copy_us = r->copy_us;
      pair->valid |= PS_PAIR_COPY_TIME;
    }
    if (r->has_corrupt) {
      pair->corrupt_offset = r->offset;
      pair->corrupt_expected = (uint8_t)r->expected;
      pair->corrupt_seen = (uint8_t)r->seen;
      pair->valid |= PS_PAIR_CORRUPT_DETAIL;
    }
  }
  finish_job(s, slot, r->verdict, r->error, r->reason);
  w->completed++;
}

/* The current worker ends early and a fresh one will carry on with the jobs left (if any):
 * the report lists it when that one starts (run_worker). */
static void note_restart(session *s, ps_restart_cause cause, int a, int b, const char *error,
                         const char *reason) {
  ps_restart *x = &s->next_why;
  memset(x, 0, sizeof(*x));
  x->cause = cause;
  x->from = a;
  x->to = b;
  ps__strlcpy(x->error_name, error ? error : "", sizeof(x->error_name));
  ps__strlcpy(x->reason, reason, sizeof(x->reason));
  s->restarting = true;
}

/* `poisoned <error name> reason=<text>`: the worker stops after its current job. */
static void handle_poisoned(session *s, const worker_run *w, const char *line) {
  char error[48] = "";
  sscanf(line, "poisoned %47s", error);
  const char *reason = strstr(line, "reason=");
  const ps__job *j = w->job >= 0 ? &s->jobs[w->job].job : NULL;
  note_restart(s, PS_RESTART_STICKY, j ? j->a : -1, j ? (j->local ? j->a : j->b) : -1, error,
               reason ? reason + 7 : line);
}

static double field_ms(const char *line) {
  const char *ms = strstr(line, "ms=");
  return ms ? strtod(ms + 3, NULL) : 0;
}

/* "<word> <a> [<b>]" of a step or result line (word: local, pair, sm, ipc) as a job; *used =
 * the characters read. */
static bool step_job(const char *text, ps__job *job, int *used) {
  char word[8];
  int n = 0, m = 0;
  memset(job, 0, sizeof(*job));
  job->b = -1;
  int got = sscanf(text, "%7s %d%n %d%n", word, &job->a, &n, &job->b, &m);
  if (got < 2) return false;
  if (strcmp(word, "local") == 0) { /* `step local g`, `result local g g` */
    job->local = true;
    if (got == 3 && job->b != job->a) return false;
    if (got == 3) n = m;
    job->b = job->a;
  } else if (strcmp(word, "pair") == 0 || ps__mode_parse(word, &job->mode)) {
    if (job->b < 0 || (job->mode == PS_MODE_CE && strcmp(word, "pair") != 0)) return false;
    job->local = job->a == job->b;
    n = m;
  } else {
    return false;
  }
  if (used) *used = n;
  return job->a >= 0 && (job->mode != PS_MODE_CE || job->local == (word[0] == 'l'));
}

/* Handles one line from the worker (`done` is the watchdog's). */
static void handle_line(void *user, ps__watch *watch, const char *line) {
  worker_run *w = user;
  session *s = w->s;
  int a = -1, b = -1, n = 0, n2 = 0;
  char verdict[32];
  ps__job job;
  double now = ps__now_ms();
  if (strncmp(line, "hello ", 6) == 0) {
    /* t=: when the worker said it (one clock for all processes); it may have been started
     * ahead and read only now. */
    const char *t = strstr(line, " t=");
    double said = t ? strtod(t + 3, NULL) : now;
    if (!s->first_spawn_timed) s->report->timings.worker_spawn_ms = said - watch->spawn_ms;
    s->first_spawn_timed = true;
  } else if (strncmp(line, "init ok", 7) == 0) {
    if (s->report->timings.cuda_init_ms < 0) s->report->timings.cuda_init_ms = field_ms(line);
    w->phase = PHASE_IDLE;
    watch->deadline_ms = now + s->setup_deadline_ms;
  } else if (strncmp(line, "init fail ", 10) == 0) {
    char error[48] = "", reason[512];
    sscanf(line + 10, "%47s", error);
    const char *detail = line + 10 + strlen(error);
    while (*detail == ' ')
      detail++;
    /* A CUDA error name adds to the detail; the worker's own words (DRIVER_UNAVAILABLE...) do
     * not. */
    bool cuda_error = strncmp(error, "CUDA_", 5) == 0;
    snprintf(reason, sizeof(reason), "CUDA unusable in the worker: %s%s%s%s", detail,
             cuda_error ? " (" : "", cuda_error ? error : "", cuda_error ? ")" : "");
    s->status = ps__fail(s->ctx, PS_ERR_DRIVER_UNAVAILABLE, "%s", reason);
    finish_involving(s, -1, PS_VERDICT_ERROR, cuda_error ? error : NULL, reason);
    s->fatal = true;
  } else if (strncmp(line, "poisoned ", 9) == 0) {
    handle_poisoned(s, w, line);
  } else if (sscanf(line, "map %d %d", &a, &b) == 2) {
    if (a >= 0 && a < s->report->gpu_count && b >= 0) {
      s->report->gpus[a].cuda_ordinal = b;
      s->report->gpus[a].valid |= PS_GPU_CUDA_ORDINAL;
    }
  } else if (sscanf(line, "step ctx %d", &a) == 1) {
    if (a < 0 || a >= s->report->gpu_count) return;
    if (!w->ctx_pending_count) w->ctx_gpu = a, w->ctx_start_ms = now;
    w->ctx_pending_count += !w->ctx_pending[a];
    w->ctx_pending[a] = true;
    w->phase = PHASE_CTX;
    watch->deadline_ms = now + s->setup_deadline_ms;
  } else if (sscanf(line, "ctx %d %31s", &a, verdict) == 2) {
    if (a < 0 || a >= s->report->gpu_count) return;
    w->ctx_pending_count -= w->ctx_pending[a];
    w->ctx_pending[a] = false;
    if (w->ctx_pending_count > 0) { /* others still being made: the first pending one */
      for (int g = 0; g < s->report->gpu_count; g++)
        if (w->ctx_pending[g]) w->ctx_gpu = g;
      watch->deadline_ms = now + s->setup_deadline_ms;
      return;
    }
    /* contexts: the wall time they took (made in parallel, or one by one) */
    if (s->report->timings.contexts_ms < 0) s->report->timings.contexts_ms = 0;
    s->report->timings.contexts_ms += now - w->ctx_start_ms;
    w->phase = PHASE_IDLE;
    watch->deadline_ms = now + s->setup_deadline_ms;
  } else if (strncmp(line, "step ", 5) == 0 && step_job(line + 5, &job, NULL)) {
    w->phase = PHASE_JOB;
    w->job = find_job(s, &job);
    w->step_start_ms = now;
    watch->deadline_ms = now + s->timeout_ms;
  } else if (strncmp(line, "result ", 7) == 0 && step_job(line + 7, &job, &n)) {
    ps__job_result r;
    if (sscanf(line + 7 + n, "%31s %n", verdict, &n2) == 1 &&
        ps__result_parse(verdict, line + 7 + n + n2, &r))
      apply_result(s, w, &job, &r);
    w->phase = PHASE_IDLE;
    watch->deadline_ms = now + s->timeout_ms;
  }
}

static void hang_reason(const ps__job *j, int limit, char *out, size_t len) {
  static const char *const what[PS_MODE_COUNT][2] = {
      [PS_MODE_CE] = {"copy", "local copy"},
      [PS_MODE_SM] = {"kernel through the peer mapping", "local kernel copy"},
      [PS_MODE_IPC] = {"opening the export in a second process",
                       "local export to a second process"}};
  if (j->local)
    snprintf(out, len, "%s on GPU %d did not finish within %d ms", what[j->mode][1], j->a, limit);
  else
    snprintf(out, len, "%s GPU%d->GPU%d did not finish within %d ms; worker killed",
             what[j->mode][0], j->a, j->b, limit);
}

/* A pair that hung in one mode is not tried in the modes after it: each hang costs a
 * deadline and a fresh worker, and the link is known bad. */
static void skip_after_hang(session *s, const ps__job *hung) {
  char reason[160];
  snprintf(reason, sizeof(reason), "not tested: the %s test of this pair hung",
           ps_mode_name(hung->mode));
  for (int i = 0; i < s->job_count; i++) {
    const ps__job *j = &s->jobs[i].job;
    if (!s->jobs[i].done && j->mode > hung->mode && j->a == hung->a && j->b == hung->b)
      finish_job(s, i, PS_VERDICT_SKIPPED, NULL, reason);
  }
}

/* The worker passed a deadline: record what hung (the watchdog kills it). */
static void on_deadline(void *user, ps__watch *watch) {
  (void)watch;
  worker_run *w = user;
  session *s = w->s;
  char reason[160];
  int limit = w->phase == PHASE_JOB ? s->timeout_ms : s->setup_deadline_ms;
  switch (w->phase) {
  case PHASE_JOB:
    if (w->job >= 0) {
      hang_reason(&s->jobs[w->job].job, limit, reason, sizeof(reason));
      finish_job(s, w->job, PS_VERDICT_HANG, NULL, reason);
      const ps__job *j = &s->jobs[w->job].job;
      note_restart(s, PS_RESTART_HANG, j->a, j->local ? j->a : j->b, NULL, reason);
      skip_after_hang(s, j);
    }
    break;
  case PHASE_CTX:
    for (int g = 0; g < s->report->gpu_count; g++) {
      if (!w->ctx_pending[g] && g != w->ctx_gpu) continue;
      snprintf(reason, sizeof(reason), "context creation on GPU %d did not finish within %d ms", g,
               limit);
      finish_involving(s, g, PS_VERDICT_HANG, NULL, reason);
      if (g == w->ctx_gpu) note_restart(s, PS_RESTART_HANG, g, g, NULL, reason);
    }
    break;
  case PHASE_SETUP:
  case PHASE_IDLE:
    snprintf(reason, sizeof(reason), "the worker stopped answering within %d ms (CUDA setup)",
             limit);
    finish_involving(s, -1, PS_VERDICT_HANG, NULL, reason);
    s->fatal = true;
    break;
  }
  s->report->hang_workers++;
}

/* The worker exited before `done`. */
static void on_early_exit(void *user, ps__watch *watch, int status) {
  worker_run *w = user;
  session *s = w->s;
  const char *tail = watch->err_tail;
  char how[96], reason[512];
  ps__wait_status_text(status, how, sizeof(how));
  if (s->fatal) return; /* init fail already explained it */
  if (w->phase == PHASE_JOB && w->job >= 0) {
    snprintf(reason, sizeof(reason), "the worker died during this test (%s)%s%s", how,
             tail[0] ? ": " : "", tail);
    finish_job(s, w->job, PS_VERDICT_ERROR, NULL, reason);
    const ps__job *j = &s->jobs[w->job].job;
    note_restart(s, PS_RESTART_DIED, j->a, j->local ? j->a : j->b, NULL, reason);
  } else if (w->phase == PHASE_CTX) {
    for (int g = 0; g < s->report->gpu_count; g++) {
      if (!w->ctx_pending[g] && g != w->ctx_gpu) continue;
      snprintf(reason, sizeof(reason), "the worker died creating a context on GPU %d (%s)", g, how);
      finish_involving(s, g, PS_VERDICT_ERROR, NULL, reason);
      if (g == w->ctx_gpu) note_restart(s, PS_RESTART_DIED, g, g, NULL, reason);
    }
  } else {
    s->status = ps__fail(s->ctx, PS_ERR_WORKER, "%s exited before its work was done (%s)%s%s",
                         s->worker, how, tail[0] ? ": " : "", tail);
    snprintf(reason, sizeof(reason), "the worker exited early (%s)", how);
    finish_involving(s, -1, PS_VERDICT_ERROR, NULL, reason);
    s->fatal = true;
  }
}

/* Once fatal (CUDA unusable), the worker is of no further use. */
static bool is_fatal(void *user, ps__watch *watch) {
  (void)watch;
  return ((worker_run *)user)->s->fatal;
}

static const ps__watch_ops watch_ops = {
    .line = handle_line, .deadline = on_deadline, .exited = on_early_exit, .quit = is_fatal};

/* --jobs: the ones left. */
static char *job_list(session *s) {
  ps__arglist list = {0};
  for (int i = 0; i < s->job_count; i++) {
    char item[64];
    if (s->jobs[i].done) continue;
    ps__job_token(&s->jobs[i].job, item, sizeof(item));
    ps__arglist_add(&list, item);
  }
  return ps__arglist_take(&list);
}

/* Runs one worker over the jobs left. */
static void run_worker(session *s) {
  worker_run w;
  memset(&w, 0, sizeof(w));
  w.s = s;
  w.job = -1;
  if (s->restarting && !ps__report_add_restart(s->report, &s->next_why)) {
    s->status = ps__fail(s->ctx, PS_ERR_NO_MEMORY, "out of memory listing worker restarts");
    s->fatal = true;
    return;
  }
  s->restarting = false;
  w.ctx_pending = ps__calloc((size_t)s->report->gpu_count + 1, sizeof(*w.ctx_pending));
  char *gpus = ps__arglist_gpus(s->report), *jobs = job_list(s);
  if (!w.ctx_pending) {
    ps__free(gpus);
    ps__free(jobs);
    gpus = jobs = NULL; /* out of memory: said below */
  }
  char bytes[32], nonce[32];
  snprintf(bytes, sizeof(bytes), "%zu", s->bytes);
  snprintf(nonce, sizeof(nonce), "%" PRIx64, s->nonce);
  if (!gpus || !jobs) {
    s->status = ps__fail(s->ctx, PS_ERR_NO_MEMORY, "out of memory building the worker's job list");
    s->fatal = true;
    goto out;
  }
  const char *options[] = {"--protocol", "1", "--bytes", bytes, "--nonce", nonce, NULL};
  ps__worker_cmd cmd = {.path = s->worker,
                        .options = options,
                        .driver_dir = s->opts->driver_dir,
                        .gpus = gpus,
                        .jobs = jobs,
                        .fixture = s->opts->fixture};
  w.phase = PHASE_SETUP;
  int rc = 0;
  if (s->early) { /* its CUDA start-up ran while NVML probed */
    w.watch = s->early->watch;
    s->early->watch.child.pid = -1;
    ps__early_free(s->early);
    s->early = NULL;
    if (ps__watch_send_lists(&w.watch, gpus, jobs))
      ps__watch_loop(&w.watch, s->setup_deadline_ms, &watch_ops, &w);
    else { /* it could not take them (ended, or lists beyond its socket's buffer): afresh */
      ps__watch_abandon(&w.watch);
      rc = ps__watch_run(&w.watch, &cmd, s->setup_deadline_ms, &watch_ops, &w);
    }
  } else {
    rc = ps__watch_run(&w.watch, &cmd, s->setup_deadline_ms, &watch_ops, &w);
  }
  if (rc != 0) {
    s->status = ps__fail(s->ctx, PS_ERR_WORKER, "cannot start %s: %s", s->worker, strerror(rc));
    finish_involving(s, -1, PS_VERDICT_ERROR, NULL, "the worker could not be started");
    s->fatal = true;
    goto out;
  }
  /* A worker that ended without finishing anything and without saying why must not be
   * restarted forever. */
  if (w.completed == 0 && s->remaining > 0 && !s->fatal && w.phase != PHASE_JOB &&
      w.phase != PHASE_CTX) {
    finish_involving(s, -1, PS_VERDICT_ERROR, NULL, "the worker made no progress");
    s->fatal = true;
  }
out:
  ps__free(gpus);
  ps__free(jobs);
  ps__free(w.ctx_pending);
}

/* The GPUs given, else every one CUDA_VISIBLE_DEVICES allows (ps_report_apply_visible). */
static bool in_selection(const ps_report *r, const ps_verify_opts *opts, int gpu) {
  if (!opts->gpus) return ps_gpu_allowed(r, gpu);
  for (int i = 0; i < opts->gpu_count; i++)
    if (opts->gpus[i] == gpu) return true;
  return false;
}

unsigned ps__verify_default_modes(const ps_report *r, const ps_verify_opts *opts) {
  int selected = 0;
  for (int g = 0; g < r->gpu_count; g++)
    selected += in_selection(r, opts, g);
  return selected >= 2 ? PS_MODES_ALL : PS_MODES_ALL & ~PS_MODE_BIT(PS_MODE_IPC);
}

static ps_status make_jobs(session *s) {
  ps_report *r = s->report;
  for (int i = 0; s->opts->gpus && i < s->opts->gpu_count; i++)
    if (s->opts->gpus[i] < 0 || s->opts->gpus[i] >= r->gpu_count)
      return ps__fail(s->ctx, PS_ERR_INVALID_ARG, "GPU %d does not exist (this machine has %d)",
                      s->opts->gpus[i], r->gpu_count);
    else if (!ps_gpu_allowed(r, s->opts->gpus[i]))
      return ps__fail(s->ctx, PS_ERR_INVALID_ARG,
                      "GPU %d is not among the GPUs CUDA_VISIBLE_DEVICES=%s allows",
                      s->opts->gpus[i], r->cuda_visible_devices);
  s->jobs = ps__calloc((size_t)PS_MODE_COUNT * (size_t)r->gpu_count * (size_t)r->gpu_count + 1,
                       sizeof(*s->jobs));
  if (!s->jobs) return ps__fail(s->ctx, PS_ERR_NO_MEMORY, "out of memory for the job list");
  /* Mode by mode, the local controls first: the ce verdicts come before anything a kernel or
   * a second process could break, and the ipc peer starts up while they run. */
  for (int m = 0; m < PS_MODE_COUNT; m++) {
    if (!(s->modes & PS_MODE_BIT(m))) continue;
    for (int a = 0; a < r->gpu_count; a++)
      if (in_selection(r, s->opts, a)) s->jobs[s->job_count++].job = (ps__job){m, true, a, a};
    for (int a = 0; a < r->gpu_count; a++)
      for (int b = 0; b < r->gpu_count; b++)
        if (a != b && in_selection(r, s->opts, a) && in_selection(r, s->opts, b))
          s->jobs[s->job_count++].job = (ps__job){m, false, a, b};
  }
  s->remaining = s->job_count;
  /* GPUs NVML could not identify cannot be matched to CUDA devices: skip them honestly. */
  for (int g = 0; g < r->gpu_count; g++)
    if (!(r->gpus[g].valid & PS_GPU_PCI_BUS_ID))
      finish_involving(s, g, PS_VERDICT_SKIPPED, NULL,
                       "NVML could not read this GPU's PCI bus id (GPU lost?)");
  return PS_OK;
}

ps_status ps_verify(ps_ctx *ctx, ps_report *report, const ps_verify_opts *opts) {
  ps_verify_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_verify_opts");
  if (ost != PS_OK) return ost;
  session s;
  memset(&s, 0, sizeof(s));
  s.ctx = ctx;
  s.report = report;
  s.opts = &o;
  s.timeout_ms = s.opts->timeout_ms > 0 ? s.opts->timeout_ms : DEFAULT_TIMEOUT_MS;
  s.setup_deadline_ms =
      s.timeout_ms * 4 > MIN_SETUP_DEADLINE_MS ? s.timeout_ms * 4 : MIN_SETUP_DEADLINE_MS;
  s.bytes = ps__verify_bytes(s.opts);
  s.modes = s.opts->modes ? s.opts->modes & PS_MODES_ALL : ps__verify_default_modes(report, &o);
  if (!s.modes)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_verify_opts.modes names no mode (0x%x)",
                    s.opts->modes);
  report->modes = s.modes;
  s.nonce = ps__verify_nonce();
  s.status = PS_OK;
  double t0 = ps__now_ms();

  ps_status st = make_jobs(&s);
  if (st != PS_OK) goto out;
  ps__cache cache;
  ps__cache_open(&cache, report, s.opts, s.bytes);
  for (int i = 0; i < s.job_count && !s.opts->refresh; i++) {
    const ps__job *j = &s.jobs[i].job;
    if (!s.jobs[i].done && ps__cache_lookup(&cache, report, j->mode, j->local, j->a, j->b)) {
      s.jobs[i].done = true;
      s.remaining--;
      report->cache_used = true;
    }
  }
  if (s.remaining > 0) {
    st = ps__worker_find(ctx, s.opts->worker_path, s.worker, sizeof(s.worker));
    if (st != PS_OK) {
      ps__cache_close(&cache);
      goto out;
    }
    if ((s.early = ps__early_take(ctx, s.worker, s.opts, s.bytes))) s.nonce = s.early->nonce;
    if (report->timings.copies_ms < 0) report->timings.copies_ms = 0;
    while (s.remaining > 0 && !s.fatal)
      run_worker(&s);
  }
  if (s.status == PS_OK) ps__cache_store(&cache, report);
  ps__cache_close(&cache);
  report->verified = true;
  st = s.status;
out:
  report->timings.total_ms =
      (report->timings.driver_init_ms > 0 ? report->timings.driver_init_ms : 0) +
      (report->timings.probe_ms > 0 ? report->timings.probe_ms : 0) + (ps__now_ms() - t0);
  ps__free(s.jobs);
  ps__early_free(s.early); /* not used (a fatal error first) */
  if (ctx && ctx->early) { /* every verdict came from the cache: never needed */
    ctx->early_free(ctx->early);
    ctx->early = NULL;
  }
  return st;
}
