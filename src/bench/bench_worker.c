/* The bench worker: `peerscope-worker --mode bench`, started by ps_bench_run (bench.c) with
 * the jobs in argv. Like the verification worker it never decides about deadlines; a job that
 * hangs is killed by the parent and the rest go to a fresh worker.
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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench/bench_internal.h"
#include "bench/kernels.h"
#include "bench/kernels/kernel_abi.h"
#include "bench/worker_internal.h"
#include "core/internal.h"
#include "core/busid.h"
#include "verify/protocol.h"

#define MAX_JOBS 65536

void ps__bw_emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ps__protocol_vemit(fmt, ap);
  va_end(ap);
}

bool ps__bw_fail(bw_worker *w, bw_result *r, const char *what, CUresult rc) {
  r->outcome = PS_BENCH_FAILED;
  snprintf(r->reason, sizeof(r->reason), "%s: %s", what, ps__cuda_error_name(&w->cuda, rc));
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
    CUresult rc = w->cuda.ModuleLoadData(&s->modules[i], images[i].data);
    if (rc != CUDA_SUCCESS) {
      snprintf(s->error, sizeof(s->error), "loading the %s kernels: %s", images[i].name,
               ps__cuda_error_name(&w->cuda, rc));
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
             {&s->oneshot_bf16, 1, PS_KERNEL_ONESHOT_BF16}};
  for (size_t i = 0; i < PS_ARRAY_LEN(fns); i++) {
    CUresult rc = w->cuda.ModuleGetFunction(fns[i].fn, s->modules[fns[i].module], fns[i].name);
    if (rc != CUDA_SUCCESS) {
      snprintf(s->error, sizeof(s->error), "kernel %s: %s", fns[i].name,
               ps__cuda_error_name(&w->cuda, rc));
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
  CUresult rc = w->cuda.MemcpyHtoD(s->src, w->host, w->copy_bytes);
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemsetD8(s->dst, 0, w->copy_bytes);
  return rc;
}

static bool setup_host(bw_worker *w, char *err, size_t len) {
  void *flag = NULL, *host = NULL;
  CUresult rc =
      w->cuda.MemHostAlloc(&flag, 64, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemHostGetDevicePointer(&w->flag_dev, flag, 0);
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemHostAlloc(&host, w->copy_bytes, CU_MEMHOSTALLOC_PORTABLE);
  w->flag = flag;
  w->host = host;
  if (rc != CUDA_SUCCESS)
    snprintf(err, len, "pinned host memory: %s", ps__cuda_error_name(&w->cuda, rc));
  return rc == CUDA_SUCCESS;
}

bool ps__bw_gpu_ready(bw_worker *w, int g) {
  bw_gpu *s = &w->gpus[g];
  if (s->state) return s->state > 0;
  s->state = -1;
  if (s->ordinal < 0) {
    ps__strlcpy(s->error, "CUDA does not see this GPU", sizeof(s->error));
    return false;
  }
  const char *what = "cuDevicePrimaryCtxRetain";
  CUresult rc = w->cuda.DeviceGet(&s->dev, s->ordinal);
  if (rc == CUDA_SUCCESS) rc = w->cuda.DevicePrimaryCtxRetain(&s->ctx, s->dev);
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSetCurrent(s->ctx);
  /* Pinned host memory needs a current context; PORTABLE makes it every context's. */
  char err[PS_ERRBUF_LEN];
  if (rc == CUDA_SUCCESS && !w->flag && !setup_host(w, err, sizeof(err))) {
    snprintf(s->error, sizeof(s->error), "%.90s", err);
    return false;
  }
  if (rc == CUDA_SUCCESS && (what = "cuDeviceGetAttribute"))
    rc = w->cuda.DeviceGetAttribute(&s->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, s->dev);
  if (rc == CUDA_SUCCESS && (what = "cuStreamCreate"))
    rc = w->cuda.StreamCreate(&s->stream, CU_STREAM_NON_BLOCKING);
  if (rc == CUDA_SUCCESS && (what = "cuEventCreate")) rc = w->cuda.EventCreate(&s->start, 0);
  if (rc == CUDA_SUCCESS) rc = w->cuda.EventCreate(&s->stop, 0);
  if (rc == CUDA_SUCCESS) rc = w->cuda.EventCreate(&s->mark, 0);
  if (rc == CUDA_SUCCESS && (what = "cuMemAlloc")) rc = w->cuda.MemAlloc(&s->src, w->copy_bytes);
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemAlloc(&s->dst, w->copy_bytes);
  if (rc == CUDA_SUCCESS && (what = "uploading the pattern")) rc = upload_pattern(w, g);
  if (rc != CUDA_SUCCESS) {
    snprintf(s->error, sizeof(s->error), "%s: %s", what, ps__cuda_error_name(&w->cuda, rc));
    return false;
  }
  if (!load_kernels(w, s)) return false;
  s->state = 1;
  return true;
}

bool ps__bw_set_peer(bw_worker *w, int a, int b, bool on, bw_result *r) {
  bw_gpu *sa = &w->gpus[a], *sb = &w->gpus[b];
  if (a == b || sa->peer_on[b] == on) return true;
  CUresult rc = w->cuda.CtxSetCurrent(sa->ctx);
  if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "cuCtxSetCurrent", rc);
  rc = on ? w->cuda.CtxEnablePeerAccess(sb->ctx, 0) : w->cuda.CtxDisablePeerAccess(sb->ctx);
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
  ps__bw_emit("result bench %d %s us=%s ns=%.3f reason=%s", j, ps_bench_outcome_name(r->outcome),
              len ? us : "-", r->ns_per_access, r->reason);
}

static void run_job(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  int gpus[2 + PS_BENCH_MAX_RANKS], n = 0;
  if (job->a >= 0) gpus[n++] = job->a;
  if (job->b >= 0) gpus[n++] = job->b;
  for (int i = 0; i < job->ranks; i++)
    gpus[n++] = job->group[i];
  for (int i = 0; i < n; i++) {
    if (gpus[i] >= w->gpu_count || !ps__bw_gpu_ready(w, gpus[i])) {
      r->outcome = PS_BENCH_FAILED;
      snprintf(r->reason, sizeof(r->reason), "GPU %d: %s", gpus[i],
               gpus[i] < w->gpu_count ? w->gpus[gpus[i]].error : "no such GPU");
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

static int split(char *list, char **items, int cap) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < cap;
       tok = strtok_r(NULL, ",", &save))
    items[n++] = tok;
  return n;
}

static void map_devices(bw_worker *w, int cuda_count) {
  for (int g = 0; g < w->gpu_count; g++) {
    w->gpus[g].ordinal = -1;
    for (int o = 0; o < cuda_count; o++) {
      CUdevice dev;
      char bus[32];
      if (w->cuda.DeviceGet(&dev, o) != CUDA_SUCCESS) continue;
      if (w->cuda.DeviceGetPCIBusId(bus, sizeof(bus), dev) != CUDA_SUCCESS) continue;
      if (ps__busid_equal(bus, w->gpus[g].bus_id)) w->gpus[g].ordinal = o;
    }
    ps__bw_emit("map %d %d", g, w->gpus[g].ordinal);
  }
}

static void release(bw_worker *w) {
  ps__bw_release_allreduce(w);
  for (int g = 0; g < w->gpu_count; g++) {
    bw_gpu *s = &w->gpus[g];
    if (!s->ctx) continue;
    w->cuda.CtxSetCurrent(s->ctx);
    w->cuda.CtxSynchronize();
    if (s->src) w->cuda.MemFree(s->src);
    if (s->dst) w->cuda.MemFree(s->dst);
    if (s->start) w->cuda.EventDestroy(s->start);
    if (s->stop) w->cuda.EventDestroy(s->stop);
    if (s->mark) w->cuda.EventDestroy(s->mark);
    if (s->stream) w->cuda.StreamDestroy(s->stream);
    for (int m = 0; m < 2; m++)
      if (s->modules[m]) w->cuda.ModuleUnload(s->modules[m]);
    w->cuda.DevicePrimaryCtxRelease(s->dev);
  }
  if (w->flag) w->cuda.MemFreeHost((void *)w->flag);
  if (w->host) w->cuda.MemFreeHost(w->host);
}

/* cuInit, the bench entry points, NCCL when a job needs it. */
static bool init_driver(bw_worker *w, const char *driver_dir, const char *nccl_path,
                        bool want_nccl) {
  char err[PS_ERRBUF_LEN];
  if (!ps__cuda_open(&w->cuda, driver_dir, err, sizeof(err))) {
    ps__bw_emit("init fail DRIVER_UNAVAILABLE %s", err);
    return false;
  }
  if (!ps__cuda_open_bench(&w->cuda, err, sizeof(err))) {
    ps__bw_emit("init fail DRIVER_UNAVAILABLE %s (a driver too old for the benchmarks)", err);
    return false;
  }
  w->simulated = ps__lib_symbol(&w->cuda.lib, "ps_fake_simulated") != NULL;
  int version = 0, count = 0;
  CUresult rc = w->cuda.Init(0);
  if (rc == CUDA_SUCCESS) rc = w->cuda.DriverGetVersion(&version);
  if (rc == CUDA_SUCCESS) rc = w->cuda.DeviceGetCount(&count);
  if (rc != CUDA_SUCCESS) {
    ps__bw_emit("init fail %s cuInit failed", ps__cuda_error_name(&w->cuda, rc));
    return false;
  }
  if (want_nccl) {
    w->have_nccl = ps__nccl_open(&w->nccl, nccl_path, driver_dir, err, sizeof(err));
    if (!w->have_nccl) ps__bw_emit("nccl-note %s", err);
  }
  size_t images = 0;
  ps__kernel_images(&images);
  ps__bw_emit("init ok version=%d count=%d simulated=%d kernels=%d nccl=%d", version, count,
              w->simulated, images > 0, w->have_nccl ? w->nccl.version : 0);
  map_devices(w, count);
  return true;
}

int ps__bench_worker_main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the peerscope that started us */
  static bw_worker w;
  const char *driver_dir = NULL, *nccl_path = NULL;
  char *gpu_list = NULL, *job_list = NULL;
  w.copy_bytes = 1 << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--copy-bytes") == 0)
      w.copy_bytes = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--span") == 0)
      w.allreduce_span = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--driver-dir") == 0)
      driver_dir = argv[i + 1];
    else if (strcmp(argv[i], "--nccl") == 0)
      nccl_path = argv[i + 1];
    else if (strcmp(argv[i], "--gpus") == 0)
      gpu_list = argv[i + 1];
    else if (strcmp(argv[i], "--jobs") == 0)
      job_list = argv[i + 1];
  }
  w.copy_bytes &= ~(uint64_t)4095; /* whole pages: 16-byte kernel accesses, 8-byte patterns */
  if (!gpu_list || !job_list || w.copy_bytes == 0 || w.copy_bytes > (4ull << 30)) {
    fprintf(stderr, "peerscope-worker --mode bench: usage: --gpus BUS,... --jobs JOB,... "
                    "--copy-bytes N [--driver-dir DIR] [--nccl PATH]\n"
                    "(started by peerscope bench; not meant to be run by hand)\n");
    return 2;
  }
  ps__bw_emit("hello %d %d", PS_WORKER_PROTOCOL, (int)getpid());
  static char *bus_ids[PS_BW_MAX_GPUS], *jobs[MAX_JOBS];
  w.gpu_count = split(gpu_list, bus_ids, PS_BW_MAX_GPUS);
  int job_count = split(job_list, jobs, MAX_JOBS);
  w.gpus = calloc((size_t)w.gpu_count, sizeof(*w.gpus));
  if (!w.gpus) return PS_WORKER_EXIT_INIT_FAILED;
  for (int g = 0; g < w.gpu_count; g++)
    ps__strlcpy(w.gpus[g].bus_id, bus_ids[g], sizeof(w.gpus[g].bus_id));
  int exit_code = 0;
  if (!init_driver(&w, driver_dir, nccl_path, needs_nccl(jobs, job_count))) {
    exit_code = PS_WORKER_EXIT_INIT_FAILED;
    goto out;
  }
  for (int j = 0; j < job_count; j++) {
    ps__bench_job job;
    if (!ps__bench_job_parse(jobs[j], &job)) {
      fprintf(stderr, "peerscope-worker: bad bench job '%s'\n", jobs[j]);
      exit_code = 2;
      break;
    }
    ps__bw_emit("step bench %d", j);
    bw_result r;
    memset(&r, 0, sizeof(r));
    r.outcome = PS_BENCH_OK;
    run_job(&w, &job, &r);
    report(j, &r);
  }
  if (exit_code == 0) ps__bw_emit("done");
  release(&w);
out:
  if (w.have_nccl) ps__nccl_close(&w.nccl);
  ps__cuda_close(&w.cuda);
  free(w.gpus);
  return exit_code;
}
