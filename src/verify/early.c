/* ps_probe_for_verify: peerscope check's faster start. A verification cached for this
 * machine needs only the machine key from NVML (UUIDs, driver version, boot id), not the
 * probe: the probe is cached beside the verdicts under the same key. Otherwise the worker
 * starts first, so that its cuInit runs while NVML probes (early.h). */
#include "verify/early.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "probe/key.h"
#include "report/report_internal.h"
#include "verify/protocol.h"
#include "worker/spawn.h"

#define DEFAULT_COPY_BYTES (1u << 20)

uint64_t ps__verify_nonce(void) {
  /* A fresh pattern every run, so a buffer left from an earlier run cannot pass; tests fix
   * it (PEERSCOPE_VERIFY_SEED, hex) to get the same corrupt bytes in golden files. */
  const char *seed = getenv("PEERSCOPE_VERIFY_SEED");
  return seed && *seed ? strtoull(seed, NULL, 16)
                       : (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL);
}

size_t ps__verify_bytes(const ps_verify_opts *opts) {
  return opts->copy_bytes ? opts->copy_bytes : DEFAULT_COPY_BYTES;
}

void ps__early_free(void *early) {
  ps__early_worker *e = early;
  if (!e) return;
  ps__watch_abandon(&e->watch);
  ps__free(e);
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* A step that failed without consequence (no cache, no early worker) leaves no error behind. */
static void clear_error(ps_ctx *ctx) {
  if (ctx) ctx->error[0] = '\0';
}

ps__early_worker *ps__early_take(ps_ctx *ctx, const char *worker, const ps_verify_opts *opts,
                                 size_t bytes) {
  ps__early_worker *e = ctx ? ctx->early : NULL;
  if (!e) return NULL;
  ctx->early = NULL;
  if (strcmp(e->worker, worker) != 0 || strcmp(e->driver_dir, or_empty(opts->driver_dir)) != 0 ||
      strcmp(e->fixture, or_empty(opts->fixture)) != 0 || e->bytes != bytes) {
    ps__early_free(e);
    return NULL;
  }
  return e;
}

/* Whether the default modes will hold ipc (two GPUs or more selected), guessed before the
 * probe: --gpus says; else the GPU nodes this process sees, narrowed by CUDA_VISIBLE_DEVICES.
 * Unknown counts as two: the worker stops a peer it turns out not to need. */
static bool may_select_two(const ps_verify_opts *opts) {
  if (opts->gpus) return opts->gpu_count >= 2;
  if (opts->fixture || opts->driver_dir) return true;
  const char *fixture = getenv("PEERSCOPE_FIXTURE"), *dir = getenv("PEERSCOPE_DRIVER_DIR");
  if ((fixture && *fixture) || (dir && *dir)) return true;
  int nodes = ps__probe_gpu_nodes("");
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  if (visible && *visible && !strchr(visible, ',')) return false; /* one entry at most */
  return nodes < 0 || nodes >= 2;
}

/* Starts the worker with its lists to come; nothing when it cannot (ps_verify then starts
 * one itself and reports why). */
static void start_early(ps_ctx *ctx, const ps_verify_opts *opts) {
  ps__early_worker *e = ctx ? ps__calloc(1, sizeof(*e)) : NULL; /* parked in ctx: none, none */
  if (!e) return;
  if (ps__worker_find(ctx, opts->worker_path, e->worker, sizeof(e->worker)) != PS_OK) {
    ps__free(e);
    clear_error(ctx);
    return;
  }
  ps__strlcpy(e->driver_dir, or_empty(opts->driver_dir), sizeof(e->driver_dir));
  ps__strlcpy(e->fixture, or_empty(opts->fixture), sizeof(e->fixture));
  e->bytes = ps__verify_bytes(opts);
  e->nonce = ps__verify_nonce();
  char bytes[32], nonce[32];
  snprintf(bytes, sizeof(bytes), "%zu", e->bytes);
  snprintf(nonce, sizeof(nonce), "%" PRIx64, e->nonce);
  /* The ipc peer starts before the worker's cuInit too, when the ipc mode will run. */
  bool ipc = opts->modes ? (opts->modes & PS_MODE_BIT(PS_MODE_IPC)) != 0 : may_select_two(opts);
  const char *options[] = {"--protocol", "1",           "--bytes",       bytes, "--nonce",
                           nonce,        "--ipc-early", ipc ? "1" : "0", NULL};
  ps__worker_cmd cmd = {.path = e->worker,
                        .options = options,
                        .driver_dir = opts->driver_dir,
                        .fixture = opts->fixture};
  if (ps__watch_start(&e->watch, &cmd) != 0) {
    ps__free(e);
    return;
  }
  if (ctx->early && ctx->early_free) ctx->early_free(ctx->early);
  ctx->early = e;
  ctx->early_free = ps__early_free;
}

static bool probe_cache_path(const ps_verify_opts *opts, uint64_t key, char *out, size_t len) {
  char dir[768];
  if (!ps__cache_dir(opts->cache_dir, dir, sizeof(dir))) return false;
  snprintf(out, len, "%s/probe-%016" PRIx64 ".json", dir, key);
  return true;
}

/* Best effort: the probe's report under its key, atomically (temp file and rename). */
static void store_probe(ps_ctx *ctx, const ps_report *report, const ps_verify_opts *opts,
                        uint64_t key) {
  char path[1024], tmp[1100];
  char *text = NULL;
  for (int g = 0; g < report->gpu_count; g++)
    if (!(report->gpus[g].valid & PS_GPU_UUID)) return; /* the verdicts are not cached either */
  if (!probe_cache_path(opts, key, path, sizeof(path))) return;
  if (ps_report_to_json(ctx, report, &text) != PS_OK) {
    clear_error(ctx);
    return;
  }
  char *slash = strrchr(path, '/');
  *slash = '\0';
  ps__make_dirs(path);
  *slash = '/';
  snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "w");
  bool ok = f && fputs(text, f) >= 0;
  if (f && fclose(f) != 0) ok = false;
  if (!ok || rename(tmp, path) != 0) unlink(tmp);
  ps_free(text);
}

/* The cached probe under key, or NULL. */
static ps_report *cached_probe(ps_ctx *ctx, const ps_verify_opts *vopts, uint64_t key,
                               double init_ms, double read_ms) {
  char path[1024];
  ps_report *report = NULL;
  if (!probe_cache_path(vopts, key, path, sizeof(path)) || access(path, R_OK) != 0) return NULL;
  double t0 = ps__now_ms();
  if (ps_report_read_json(ctx, path, &report) != PS_OK) {
    clear_error(ctx);
    return NULL;
  }
  /* What the probe reads of the process itself is this run's, not the cached run's. */
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  ps__strlcpy(report->cuda_visible_devices, visible ? visible : "",
              sizeof(report->cuda_visible_devices));
  report->timings = (ps_timings){-1, -1, -1, -1, -1, -1, -1};
  report->timings.driver_init_ms = init_ms;
  report->timings.probe_ms = read_ms + (ps__now_ms() - t0);
  return report;
}

ps_status ps_probe_for_verify(ps_ctx *ctx, const ps_probe_opts *popts, const ps_verify_opts *vopts,
                              ps_report **out) {
  ps_probe_opts po;
  ps_verify_opts vo;
  ps_status st;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_probe_for_verify: out is NULL");
  *out = NULL;
  if ((st = PS__OPTS_IN(ctx, popts, &po, "ps_probe_opts")) != PS_OK) return st;
  if ((st = PS__OPTS_IN(ctx, vopts, &vo, "ps_verify_opts")) != PS_OK) return st;
  if (vo.refresh) start_early(ctx, &vo); /* a worker will be needed: before anything */
  uint64_t key = 0;
  bool keyed = false;
  double init_ms = 0, read_ms = 0;
  if (ps__probe_key_read(ctx, &po, &key, &keyed, &init_ms, &read_ms) != PS_OK) {
    keyed = false; /* ps_probe says why, below */
    clear_error(ctx);
  }
  if (keyed && !vo.refresh && (*out = cached_probe(ctx, &vo, key, init_ms, read_ms)) != NULL)
    return PS_OK;
  if (!vo.refresh) start_early(ctx, &vo);
  st = ps_probe(ctx, &po, out);
  if (st != PS_OK && ctx) {
    ps__early_free(ctx->early);
    ctx->early = NULL;
  }
  if (st != PS_OK) return st;
  if (keyed) store_probe(ctx, *out, &vo, key);
  return PS_OK;
}
