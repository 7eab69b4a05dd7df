/* The bench worker: `peerscope-worker --mode bench`, started by ps_bench_run (bench.c) with
 * the jobs in argv, in the worker-main skeleton (src/worker/main.c). Like the verification
 * worker it never decides about deadlines; a job that hangs is killed by the parent and the
 * rest go to a fresh worker.
 *
 *   argv:  --mode bench --protocol 1 --gpus BUS,... --jobs JOB,JOB,... --copy-bytes N
 *          [--span N] [--driver-dir D] [--nccl PATH]   (span: the largest all-reduce size)
 *   lines: hello 1 <pid>
 *          init ok version=<cuda> count=<n> simulated=0|1 kernels=0|1 nccl=<version|0>
 *          init fail <error name> <message>
 *          nccl-note <why NCCL is unavailable>
 *          map <gpu> <ordinal>
 *          step bench <job>      result bench <job> <outcome> us=<t,t,...> ns=<n> reason=<text>
 *          done */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_internal.h"
#include "worker/kernels.h"
#include "worker/kernels/kernel_abi.h"
#include "bench/worker_internal.h"
#include "core/internal.h"

#define MAX_JOBS 65536

bool ps__bw_fail(bw_worker *w, bw_result *r, const char *what, CUresult rc) {
  r->outcome = PS_BENCH_FAILED;
  snprintf(r->reason, sizeof(r->reason), "%s: %s", what, ps__cuda_error_name(&w->base.cuda, rc));
  if (ps__cuda_error_sticky(rc) && !w->poison) w->poison = rc;
  return false;
}

/* A pattern that differs per GPU and per word: a copy that did nothing, or copied the wrong
 * GPU's buffer, cannot pass. */
uint64_t ps__bw_pattern_word(int g, uint64_t i) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)(g + 1) << 56);
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

bool ps__bw_check_pattern(const uint8_t *data, uint64_t bytes, int g, bw_result *r) {
  for (uint64_t i = 0; i < (bytes + 7) / 8; i++) {
    uint64_t want = ps__bw_pattern_word(g, i), seen = want;
    memcpy(&seen, data + i * 8, bytes - i * 8 < 8 ? bytes - i * 8 : 8); /* a short tail too */
    if (seen != want) {
      r->outcome = PS_BENCH_WRONG;
      snprintf(r->reason, sizeof(r->reason),
               "data wrong after the run: 8 bytes at offset %llu differ from GPU %d's pattern",
               (unsigned long long)(i * 8), g);
      return false;
    }
  }
  return true;
}

static bool load_kernels(bw_worker *w, bw_gpu *s) {
  size_t count = 0;
  const ps__kernel_image *images = ps__kernel_images(&count);
  if (count == 0) return true; /* "built without CUDA kernels": jobs that need them say so */
  for (size_t i = 0; i < count && i < 2; i++) {
    CUresult rc = w->base.cuda.ModuleLoadData(&s->modules[i], images[i].data);
    if (rc != CUDA_SUCCESS) {
      snprintf(s->error, sizeof(s->error), "loading the %s kernels: %s", images[i].name,
               ps__cuda_error_name(&w->base.cuda, rc));
      return false;
    }
  }
  struct {
    CUfunction *fn;
    int module;
    const char *name;
  } fns[] = {{&s->spin, 0, PS_KERNEL_SPIN},
             {&s->copy, 0, PS_KERNEL_COPY},
             {&s->chase, 0, PS_KERNEL_CHASE},
             {&s->oneshot_f16, 1, PS_KERNEL_ONESHOT_F16},
             {&s->oneshot_bf16, 1, PS_KERNEL_ONESHOT_BF16},
             {&s->twoshot_f16, 1, PS_KERNEL_TWOSHOT_F16},
             {&s->twoshot_bf16, 1, PS_KERNEL_TWOSHOT_BF16}};
  for (size_t i = 0; i < PS_ARRAY_LEN(fns); i++) {
    CUresult rc = w->base.cuda.ModuleGetFunction(fns[i].fn, s->modules[fns[i].module], fns[i].name);
    if (rc != CUDA_SUCCESS) {
      snprintf(s->error, sizeof(s->error), "kernel %s: %s", fns[i].name,
               ps__cuda_error_name(&w->base.cuda, rc));
      return false;
    }
  }
  w->kernels = true;
  return true;
}

/* Uploads GPU g's pattern into its source buffer, through the pinned host buffer. */
static CUresult upload_pattern(bw_worker *w, int g) {
  bw_gpu *s = &w->gpus[g];
  for (uint64_t i = 0; i < w->copy_bytes / 8; i++) {
    uint64_t v = ps__bw_pattern_word(g, i);
    memcpy(w->host + i * 8, &v, 8);
  }
  CUresult rc = w->base.cuda.MemcpyHtoD(s->src, w->host, w->copy_bytes);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemsetD8(s->dst, 0, w->copy_bytes);
  return rc;
}

static bool setup_host(bw_worker *w, char *err, size_t len) {
  void *flag = NULL, *host = NULL;
  CUresult rc =
      w->base.cuda.MemHostAlloc(&flag, 64, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemHostGetDevicePointer(&w->flag_dev, flag, 0);
  if (rc == CUDA_SUCCESS)
    rc = w->base.cuda.MemHostAlloc(&host, w->copy_bytes, CU_MEMHOSTALLOC_PORTABLE);
  w->flag = flag;
  w->host = host;
  if (rc != CUDA_SUCCESS)
    snprintf(err, len, "pinned host memory: %s", ps__cuda_error_name(&w->base.cuda, rc));
  return rc == CUDA_SUCCESS;
}

bool ps__bw_gpu_ready(bw_worker *w, int g) {
  bw_gpu *s = &w->gpus[g];
  if (s->state) return s->state > 0;
  s->state = -1;
  int ordinal = w->base.gpus[g].ordinal;
  if (ordinal < 0) {
    ps__strlcpy(s->error, "CUDA does not see this GPU", sizeof(s->error));
    return false;
  }
  const char *what = "cuDevicePrimaryCtxRetain";
  CUresult rc = w->base.cuda.DeviceGet(&s->dev, ordinal);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.DevicePrimaryCtxRetain(&s->ctx, s->dev);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(s->ctx);
  /* Pinned host memory needs a current context; PORTABLE makes it every context's. */
  char err[PS_ERRBUF_LEN];
  if (rc == CUDA_SUCCESS && !w->flag && !setup_host(w, err, sizeof(err))) {
    snprintf(s->error, sizeof(s->error), "%.90s", err);
    return false;
  }
  if (rc == CUDA_SUCCESS && (what = "cuDeviceGetAttribute"))
    rc = w->base.cuda.DeviceGetAttribute(&s->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, s->dev);
  if (rc == CUDA_SUCCESS && (what = "cuStreamCreate"))
    rc = w->base.cuda.StreamCreate(&s->stream, CU_STREAM_NON_BLOCKING);
  if (rc == CUDA_SUCCESS && (what = "cuEventCreate")) rc = w->base.cuda.EventCreate(&s->start, 0);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventCreate(&s->stop, 0);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventCreate(&s->mark, 0);
  if (rc == CUDA_SUCCESS && (what = "cuMemAlloc"))
    rc = w->base.cuda.MemAlloc(&s->src, w->copy_bytes);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&s->dst, w->copy_bytes);
  if (rc == CUDA_SUCCESS && (what = "uploading the pattern")) rc = upload_pattern(w, g);
  if (rc != CUDA_SUCCESS) {
    snprintf(s->error, sizeof(s->error), "%s: %s", what, ps__cuda_error_name(&w->base.cuda, rc));
    return false;
  }
  if (!load_kernels(w, s)) return false;
  s->state = 1;
  return true;
}

bool ps__bw_set_peer(bw_worker *w, int a, int b, bool on, bw_result *r) {
  bw_gpu *sa = &w->gpus[a], *sb = &w->gpus[b];
  if (a == b || sa->peer_on[b] == on) return true;
  CUresult rc = w->base.cuda.CtxSetCurrent(sa->ctx);
  if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "cuCtxSetCurrent", rc);
  rc = on ? w->base.cuda.CtxEnablePeerAccess(sb->ctx, 0)
          : w->base.cuda.CtxDisablePeerAccess(sb->ctx);
  if (rc == CUDA_ERROR_PEER_ACCESS_UNSUPPORTED) {
    r->outcome = PS_BENCH_WAIVED;
    snprintf(r->reason, sizeof(r->reason), "the driver refuses peer access from GPU %d to GPU %d",
             a, b);
    return false;
  }
  if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED &&
      rc != CUDA_ERROR_PEER_ACCESS_NOT_ENABLED)
    return ps__bw_fail(w, r, on ? "cuCtxEnablePeerAccess" : "cuCtxDisablePeerAccess", rc);
  sa->peer_on[b] = on;
  return true;
}

static void report(int j, const bw_result *r) {
  char us[64 * 16] = "";
  size_t len = 0;
  for (int i = 0; i < r->samples && len + 20 < sizeof(us); i++)
    len += (size_t)snprintf(us + len, sizeof(us) - len, "%s%.4f", i ? "," : "", r->us[i]);
  ps__worker_emit("result bench %d %s us=%s ns=%.3f reason=%s", j,
                  ps_bench_outcome_name(r->outcome), len ? us : "-", r->ns_per_access, r->reason);
}

static void run_job(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  int gpus[2 + PS_BENCH_MAX_RANKS], n = 0;
  if (job->a >= 0) gpus[n++] = job->a;
  if (job->b >= 0) gpus[n++] = job->b;
  for (int i = 0; i < job->ranks; i++)
    gpus[n++] = job->group[i];
  for (int i = 0; i < n; i++) {
    if (gpus[i] >= w->base.gpu_count || !ps__bw_gpu_ready(w, gpus[i])) {
      r->outcome = PS_BENCH_FAILED;
      snprintf(r->reason, sizeof(r->reason), "GPU %d: %s", gpus[i],
               gpus[i] < w->base.gpu_count ? w->gpus[gpus[i]].error : "no such GPU");
      return;
    }
  }
  switch (job->kind) {
  case PS_BENCH_LATENCY_WRITE:
  case PS_BENCH_LATENCY_CHASE: ps__bw_run_latency(w, job, r); break;
  case PS_BENCH_ALLREDUCE_ONESHOT: ps__bw_run_oneshot(w, job, r); break;
  case PS_BENCH_ALLREDUCE_NCCL: ps__bw_run_nccl(w, job, r); break;
  default: ps__bw_run_copy(w, job, r); break;
  }
}

static bool needs_nccl(char **jobs, int count) {
  for (int j = 0; j < count; j++)
    if (strncmp(jobs[j], "allreduce_nccl/", 15) == 0) return true;
  return false;
}

static bw_worker *self(ps__worker *base) { return (bw_worker *)base; }

static bool option(ps__worker *base, const char *name, const char *value) {
  bw_worker *w = self(base);
  if (strcmp(name, "--copy-bytes") == 0)
    w->copy_bytes = strtoull(value, NULL, 10);
  else if (strcmp(name, "--span") == 0)
    w->allreduce_span = strtoull(value, NULL, 10);
  else if (strcmp(name, "--nccl") == 0)
    w->nccl_path = value;
  else
    return false;
  return true;
}

static bool valid(ps__worker *base) {
  bw_worker *w = self(base);
  w->copy_bytes &= ~(uint64_t)4095; /* whole pages: 16-byte kernel accesses, 8-byte patterns */
  return w->copy_bytes > 0 && w->copy_bytes <= (4ull << 30);
}

static bool prepare(ps__worker *base) {
  self(base)->gpus = calloc((size_t)base->gpu_count + 1, sizeof(bw_gpu));
  return self(base)->gpus != NULL;
}

/* The bench entry points (cuInit comes after). */
static bool opened(ps__worker *base) {
  bw_worker *w = self(base);
  char err[PS_ERRBUF_LEN];
  if (!ps__cuda_open_bench(&base->cuda, err, sizeof(err))) {
    ps__worker_emit("init fail DRIVER_UNAVAILABLE %s (a driver too old for the benchmarks)", err);
    return false;
  }
  w->simulated = ps__lib_symbol(&base->cuda.lib, "ps_fake_simulated") != NULL;
  return true;
}

/* NCCL when a job needs it, and what the parent learns in `init ok`. */
static void started(ps__worker *base, double init_ms, char *fields, size_t len) {
  (void)init_ms;
  bw_worker *w = self(base);
  char err[PS_ERRBUF_LEN];
  if (needs_nccl(base->jobs, base->job_count)) {
    w->have_nccl = ps__nccl_open(&w->nccl, w->nccl_path, base->driver_dir, err, sizeof(err));
    if (!w->have_nccl) ps__worker_emit("nccl-note %s", err);
  }
  size_t images = 0;
  ps__kernel_images(&images);
  snprintf(fields, len, "simulated=%d kernels=%d nccl=%d", w->simulated, images > 0,
           w->have_nccl ? w->nccl.version : 0);
}

static bool run(ps__worker *base, int j, const char *token) {
  ps__bench_job job;
  if (!ps__bench_job_parse(token, &job)) return false;
  ps__worker_emit("step bench %d", j);
  bw_result r;
  memset(&r, 0, sizeof(r));
  r.outcome = PS_BENCH_OK;
  run_job(self(base), &job, &r);
  report(j, &r);
  /* As in the verification: a sticky error ends this worker; the parent starts a fresh one
   * for the measurements left. */
  if (self(base)->poison) {
    const char *name = ps__cuda_error_name(&base->cuda, self(base)->poison);
    ps__worker_emit("poisoned %s reason=%s: every later CUDA call in this worker fails", name,
                    name);
    base->stop = true;
  }
  return true;
}

static void release(ps__worker *base) {
  bw_worker *w = self(base);
  ps__bw_release_allreduce(w);
  for (int g = 0; g < w->base.gpu_count; g++) {
    bw_gpu *s = &w->gpus[g];
    if (!s->ctx) continue;
    w->base.cuda.CtxSetCurrent(s->ctx);
    w->base.cuda.CtxSynchronize();
    if (s->src) w->base.cuda.MemFree(s->src);
    if (s->dst) w->base.cuda.MemFree(s->dst);
    if (s->start) w->base.cuda.EventDestroy(s->start);
    if (s->stop) w->base.cuda.EventDestroy(s->stop);
    if (s->mark) w->base.cuda.EventDestroy(s->mark);
    if (s->stream) w->base.cuda.StreamDestroy(s->stream);
    for (int m = 0; m < 2; m++)
      if (s->modules[m]) w->base.cuda.ModuleUnload(s->modules[m]);
    w->base.cuda.DevicePrimaryCtxRelease(s->dev);
  }
  if (w->flag) w->base.cuda.MemFreeHost((void *)w->flag);
  if (w->host) w->base.cuda.MemFreeHost(w->host);
  if (w->have_nccl) ps__nccl_close(&w->nccl);
}

static void free_host(ps__worker *base) { free(self(base)->gpus); }

static const ps__worker_mode bench_mode = {
    .usage = "peerscope-worker --mode bench: usage: --gpus BUS,... --jobs JOB,... "
             "--copy-bytes N [--driver-dir DIR] [--nccl PATH]\n"
             "(started by peerscope bench; not meant to be run by hand)\n",
    .job_word = "bench job",
    .max_gpus = PS_BW_MAX_GPUS,
    .max_jobs = MAX_JOBS,
    .option = option,
    .valid = valid,
    .prepare = prepare,
    .opened = opened,
    .started = started,
    .run = run,
    .release = release,
    .free_host = free_host};

int ps__bench_worker_main(int argc, char **argv) {
  static bw_worker w;
  w.copy_bytes = 1 << 20;
  return ps__worker_run(&w.base, &bench_mode, argc, argv);
}
