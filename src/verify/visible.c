/* ps_report_apply_visible: which GPUs the caller's CUDA shows. Rather than re-implement
 * CUDA's reading of CUDA_VISIBLE_DEVICES (indexes counted fastest-first unless
 * CUDA_DEVICE_ORDER=PCI_BUS_ID, UUID prefixes, MIG devices), the verify worker is started
 * with the caller's two variables and no job: after cuInit it maps every report GPU's PCI
 * bus id to the CUDA ordinal it has there (`map` lines), which is exactly the answer. No
 * context is created. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "report/report_internal.h"
#include "worker/arglist.h"
#include "worker/spawn.h"
#include "worker/watchdog.h"

#define SETUP_DEADLINE_MS 15000
#define MAX_GPUS 1024 /* as the probe */

typedef struct visible_run {
  ps_report *report;
  int ordinal[MAX_GPUS]; /* per report GPU; -1 = not shown */
  int mapped, count;
  bool init_ok, no_device;
  char fail[512]; /* why CUDA could not answer, "" when it did */
} visible_run;

static void on_line(void *user, ps__watch *w, const char *line) {
  (void)w;
  visible_run *v = user;
  int a = -1, b = -1;
  const char *count = strstr(line, "count=");
  if (strncmp(line, "init ok", 7) == 0) {
    v->init_ok = true;
    v->count = count ? atoi(count + 6) : 0;
  } else if (strncmp(line, "init fail ", 10) == 0) {
    v->no_device = strncmp(line + 10, "CUDA_ERROR_NO_DEVICE", 20) == 0;
    ps__strlcpy(v->fail, line + 10, sizeof(v->fail));
  } else if (sscanf(line, "map %d %d", &a, &b) == 2 && a >= 0 && a < v->report->gpu_count) {
    v->ordinal[a] = b;
    v->mapped += b >= 0;
  }
}

static void on_deadline(void *user, ps__watch *w) {
  (void)w;
  snprintf(((visible_run *)user)->fail, sizeof(((visible_run *)user)->fail),
           "the worker did not answer within %d ms", SETUP_DEADLINE_MS);
}

static void on_exit_early(void *user, ps__watch *w, int status) {
  visible_run *v = user;
  char how[96];
  ps__wait_status_text(status, how, sizeof(how));
  if (!v->fail[0])
    snprintf(v->fail, sizeof(v->fail), "the worker exited early (%s)%s%s", how,
             w->err_tail[0] ? ": " : "", w->err_tail);
}

/* Runs the worker; PS_OK when it mapped the GPUs (or found none: v->no_device). */
static ps_status ask_cuda(ps_ctx *ctx, const ps_visible_opts *o, const char *cvd, const char *order,
                          visible_run *v) {
  char worker[1024], cvd_env[320], order_env[96];
  ps_status st = ps__worker_find(ctx, o->worker_path, worker, sizeof(worker));
  if (st != PS_OK) return st;
  const char *env[3] = {NULL, NULL, NULL};
  int envc = 0;
  snprintf(cvd_env, sizeof(cvd_env), "CUDA_VISIBLE_DEVICES=%s", cvd);
  env[envc++] = cvd_env;
  if (order) {
    snprintf(order_env, sizeof(order_env), "CUDA_DEVICE_ORDER=%s", order);
    env[envc++] = order_env;
  }
  char *gpus = ps__arglist_gpus(v->report);
  if (!gpus) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory for the worker's GPU list");
  const char *options[] = {"--protocol", "1", "--bytes", "4096", NULL};
  ps__worker_cmd cmd = {.path = worker,
                        .options = options,
                        .driver_dir = o->driver_dir,
                        .gpus = gpus,
                        .jobs = "",
                        .env = env,
                        .fixture = o->fixture,
                        .caller_devices = true};
  ps__watch_ops ops = {.line = on_line, .deadline = on_deadline, .exited = on_exit_early};
  ps__watch watch;
  int rc = ps__watch_run(&watch, &cmd, SETUP_DEADLINE_MS, &ops, v);
  ps__free(gpus);
  if (rc != 0) return ps__fail(ctx, PS_ERR_WORKER, "cannot start %s: %s", worker, strerror(rc));
  if (v->no_device) return PS_OK;
  if (!v->init_ok || v->fail[0])
    return ps__fail(ctx, PS_ERR_DRIVER_UNAVAILABLE,
                    "cannot tell which GPUs CUDA_VISIBLE_DEVICES=\"%.200s\" allows: %s", cvd,
                    v->fail[0] ? v->fail : "CUDA did not answer");
  return PS_OK;
}

ps_status ps_report_apply_visible(ps_ctx *ctx, ps_report *report, const ps_visible_opts *opts) {
  ps_visible_opts o;
  ps_status st = PS__OPTS_IN(ctx, opts, &o, "ps_visible_opts");
  if (st != PS_OK) return st;
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "no report");
  const char *cvd =
      o.cuda_visible_devices ? o.cuda_visible_devices : getenv("CUDA_VISIBLE_DEVICES");
  const char *order = o.cuda_device_order ? o.cuda_device_order : getenv("CUDA_DEVICE_ORDER");
  if (!cvd || report->source == PS_SOURCE_FILE || report->gpu_count == 0) return PS_OK;
  if (strlen(cvd) >= sizeof(report->cuda_visible_devices))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "CUDA_VISIBLE_DEVICES is longer than %zu bytes",
                    sizeof(report->cuda_visible_devices) - 1);
  visible_run *v = ps__calloc(1, sizeof(*v));
  if (!v) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  v->report = report;
  for (size_t g = 0; g < PS_ARRAY_LEN(v->ordinal); g++)
    v->ordinal[g] = -1;
  if (report->gpu_count > (int)PS_ARRAY_LEN(v->ordinal))
    st = ps__fail(ctx, PS_ERR_INVALID_ARG, "%d GPUs: too many", report->gpu_count);
  else if (*cvd && (st = ask_cuda(ctx, &o, cvd, order, v)) != PS_OK) {
    /* st says why */
  } else if (!*cvd || v->no_device || v->mapped == 0) {
    st = ps__fail(ctx, PS_ERR_INVALID_ARG,
                  "CUDA_VISIBLE_DEVICES=\"%s\" hides every GPU of this machine (CUDA finds no "
                  "device); unset it, or use the whole machine with --all-gpus",
                  cvd);
  } else {
    ps__strlcpy(report->cuda_visible_devices, cvd, sizeof(report->cuda_visible_devices));
    for (int g = 0; g < report->gpu_count; g++) {
      report->gpus[g].visible_ordinal = v->ordinal[g];
      report->gpus[g].valid |= PS_GPU_VISIBLE;
    }
  }
  ps__free(v);
  return st;
}
