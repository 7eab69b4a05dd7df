/* The worker: the only code that initialises CUDA. It runs the jobs it is given in argv and
 * reports each step on stdout (protocol.h). It never decides about deadlines: a step that
 * hangs is the parent's to detect and kill. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include "core/internal.h"
#include "drv/cuda.h"
#include "core/busid.h"
#include "verify/protocol.h"

#define MAX_GPUS 1024
#define MAX_JOBS (MAX_GPUS * 8)

typedef struct gpu_state {
  char bus_id[32];
  int ordinal;   /* CUDA ordinal, -1 when CUDA does not see this GPU */
  int ctx_state; /* 0 not tried, 1 ready, -1 failed */
  char ctx_error[48];
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr src, dst;
} gpu_state;

typedef struct worker {
  ps__cuda cuda;
  size_t bytes;
  uint64_t nonce;
  int gpu_count;
  gpu_state *gpus;
  uint8_t *pattern, *seen;
} worker;

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ps__protocol_vemit(fmt, ap);
  va_end(ap);
}

/* A pattern unique to this run and job: neither zeros nor a constant, so a copy that did
 * nothing, or copied another pair's buffer, cannot pass. */
static void fill_pattern(uint8_t *buf, size_t len, uint64_t seed) {
  uint64_t x = seed ? seed : 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (uint8_t)(x >> 24);
  }
}

static uint64_t job_seed(const worker *w, int a, int b) {
  return w->nonce ^ ((uint64_t)(a + 1) << 40) ^ ((uint64_t)(b + 1) << 20) ^ 0x5851F42D4C957F2Dull;
}

/* Returns the first differing offset, or -1 when equal. */
static long long first_difference(const uint8_t *a, const uint8_t *b, size_t len) {
  if (memcmp(a, b, len) == 0) return -1;
  for (size_t i = 0; i < len; i++)
    if (a[i] != b[i]) return (long long)i;
  return -1;
}

static bool ensure_ctx(worker *w, int g) {
  gpu_state *s = &w->gpus[g];
  if (s->ctx_state) return s->ctx_state > 0;
  emit("step ctx %d", g);
  double t0 = ps__now_ms();
  CUresult rc = CUDA_ERROR_INVALID_DEVICE;
  if (s->ordinal >= 0) {
    rc = w->cuda.DeviceGet(&s->dev, s->ordinal);
    if (rc == CUDA_SUCCESS) rc = w->cuda.DevicePrimaryCtxRetain(&s->ctx, s->dev);
    if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSetCurrent(s->ctx);
    if (rc == CUDA_SUCCESS) rc = w->cuda.MemAlloc(&s->src, w->bytes);
    if (rc == CUDA_SUCCESS) rc = w->cuda.MemAlloc(&s->dst, w->bytes);
  }
  if (rc != CUDA_SUCCESS) {
    s->ctx_state = -1;
    ps__strlcpy(s->ctx_error,
                s->ordinal < 0 ? "NOT_VISIBLE_TO_CUDA" : ps__cuda_error_name(&w->cuda, rc),
                sizeof(s->ctx_error));
    emit("ctx %d fail %s", g, s->ctx_error);
    return false;
  }
  s->ctx_state = 1;
  emit("ctx %d ok ms=%.3f", g, ps__now_ms() - t0);
  return true;
}

/* Runs one leg: device-to-device copy src -> dst (peer or local), then reads dst back to
 * the host through dst's own GPU and compares with the pattern. */
static CUresult copy_leg(worker *w, int from, CUdeviceptr src, int to, CUdeviceptr dst,
                         long long *bad) {
  gpu_state *f = &w->gpus[from], *t = &w->gpus[to];
  CUresult rc = from == to ? w->cuda.MemcpyDtoD(dst, src, w->bytes)
                           : w->cuda.MemcpyPeer(dst, t->ctx, src, f->ctx, w->bytes);
  /* Device-to-device copies may return before they finish: wait on both contexts. */
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSetCurrent(f->ctx);
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSetCurrent(t->ctx);
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemcpyDtoH(w->seen, dst, w->bytes);
  if (rc == CUDA_SUCCESS) *bad = first_difference(w->pattern, w->seen, w->bytes);
  return rc;
}

static void report_corrupt(const char *kind, int a, int b, worker *w, long long off, double us,
                           int access, const char *leg) {
  emit("result %s %d %d corrupt access=%d us=%.3f offset=%lld expected=%u seen=%u "
       "reason=%s: bytes differ at offset %lld (expected 0x%02x, saw 0x%02x)",
       kind, a, b, access, us, off, w->pattern[off], w->seen[off], leg, off, w->pattern[off],
       w->seen[off]);
}

static void report_error(const char *kind, int a, int b, worker *w, CUresult rc, int access,
                         const char *what) {
  const char *name = ps__cuda_error_name(&w->cuda, rc);
  emit("result %s %d %d error access=%d error=%s reason=%s failed: %s", kind, a, b, access, name,
       what, name);
}

static void run_local(worker *w, int g) {
  if (!ensure_ctx(w, g)) {
    emit("step local %d", g);
    emit("result local %d %d error error=%s reason=context creation failed: %s", g, g,
         w->gpus[g].ctx_error, w->gpus[g].ctx_error);
    return;
  }
  gpu_state *s = &w->gpus[g];
  emit("step local %d", g);
  fill_pattern(w->pattern, w->bytes, job_seed(w, g, g));
  long long bad = -1;
  CUresult rc = w->cuda.CtxSetCurrent(s->ctx);
  if (rc == CUDA_SUCCESS) rc = w->cuda.MemcpyHtoD(s->src, w->pattern, w->bytes);
  double t0 = ps__now_ms();
  if (rc == CUDA_SUCCESS) rc = copy_leg(w, g, s->src, g, s->dst, &bad);
  double us = (ps__now_ms() - t0) * 1e3;
  if (rc != CUDA_SUCCESS)
    report_error("local", g, g, w, rc, -1, "local copy");
  else if (bad >= 0)
    report_corrupt("local", g, g, w, bad, us, -1, "local copy within the GPU");
  else
    emit("result local %d %d ok us=%.3f reason=", g, g, us);
}

static void run_pair(worker *w, int a, int b) {
  bool ready = ensure_ctx(w, a);
  ready = ensure_ctx(w, b) && ready;
  emit("step pair %d %d", a, b);
  if (!ready) {
    int bad_gpu = w->gpus[a].ctx_state < 0 ? a : b;
    emit("result pair %d %d error error=%s reason=context creation on GPU %d failed: %s", a, b,
         w->gpus[bad_gpu].ctx_error, bad_gpu, w->gpus[bad_gpu].ctx_error);
    return;
  }
  gpu_state *sa = &w->gpus[a], *sb = &w->gpus[b];
  int access = 0;
  CUresult rc = w->cuda.DeviceCanAccessPeer(&access, sa->dev, sb->dev);
  if (rc != CUDA_SUCCESS) return report_error("pair", a, b, w, rc, -1, "cuDeviceCanAccessPeer");

  /* Peer access must be on, or cuMemcpyPeer silently stages through host memory and the
   * test would prove nothing about the P2P path. */
  rc = w->cuda.CtxSetCurrent(sa->ctx);
  if (rc == CUDA_SUCCESS) rc = w->cuda.CtxEnablePeerAccess(sb->ctx, 0);
  if (rc == CUDA_ERROR_PEER_ACCESS_UNSUPPORTED) {
    emit("result pair %d %d unsupported access=%d error=%s reason=the driver refuses peer access "
         "from GPU %d to GPU %d",
         a, b, access, ps__cuda_error_name(&w->cuda, rc), a, b);
    return;
  }
  if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
    return report_error("pair", a, b, w, rc, access, "cuCtxEnablePeerAccess");

  fill_pattern(w->pattern, w->bytes, job_seed(w, a, b));
  rc = w->cuda.MemcpyHtoD(sa->src, w->pattern, w->bytes);
  if (rc != CUDA_SUCCESS) return report_error("pair", a, b, w, rc, access, "upload");

  char leg[96];
  long long bad = -1;
  double t0 = ps__now_ms();
  rc = copy_leg(w, a, sa->src, b, sb->dst, &bad);
  snprintf(leg, sizeof(leg), "copy GPU%d->GPU%d", a, b);
  if (rc == CUDA_SUCCESS && bad < 0) {
    rc = copy_leg(w, b, sb->dst, a, sa->dst, &bad);
    snprintf(leg, sizeof(leg), "read back GPU%d->GPU%d", b, a);
  }
  double us = (ps__now_ms() - t0) * 1e3;
  if (rc != CUDA_SUCCESS) return report_error("pair", a, b, w, rc, access, leg);
  if (bad >= 0) return report_corrupt("pair", a, b, w, bad, us, access, leg);
  emit("result pair %d %d ok access=%d us=%.3f reason=", a, b, access, us);
}

/* Maps each requested bus id to its CUDA ordinal. */
static void map_devices(worker *w, int cuda_count) {
  for (int g = 0; g < w->gpu_count; g++) {
    w->gpus[g].ordinal = -1;
    for (int o = 0; o < cuda_count; o++) {
      CUdevice dev;
      char bus[32];
      if (w->cuda.DeviceGet(&dev, o) != CUDA_SUCCESS) continue;
      if (w->cuda.DeviceGetPCIBusId(bus, sizeof(bus), dev) != CUDA_SUCCESS) continue;
      if (ps__busid_equal(bus, w->gpus[g].bus_id)) w->gpus[g].ordinal = o;
    }
    emit("map %d %d", g, w->gpus[g].ordinal);
  }
}

static int split_list(char *list, char **items, int cap) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < cap;
       tok = strtok_r(NULL, ",", &save))
    items[n++] = tok;
  return n;
}

static void release(worker *w) {
  for (int g = 0; g < w->gpu_count; g++) {
    gpu_state *s = &w->gpus[g];
    if (s->ctx_state <= 0) continue;
    w->cuda.CtxSetCurrent(s->ctx);
    if (s->src) w->cuda.MemFree(s->src);
    if (s->dst) w->cuda.MemFree(s->dst);
    w->cuda.DevicePrimaryCtxRelease(s->dev);
  }
}

int ps__worker_main(int argc, char **argv) {
  /* Die with the parent: a worker must never outlive the peerscope that started it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  worker w;
  memset(&w, 0, sizeof(w));
  w.bytes = 1 << 20;
  const char *driver_dir = NULL;
  char *gpu_list = NULL, *job_list = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--bytes") == 0)
      w.bytes = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--nonce") == 0)
      w.nonce = strtoull(argv[i + 1], NULL, 16);
    else if (strcmp(argv[i], "--driver-dir") == 0)
      driver_dir = argv[i + 1];
    else if (strcmp(argv[i], "--gpus") == 0)
      gpu_list = argv[i + 1];
    else if (strcmp(argv[i], "--jobs") == 0)
      job_list = argv[i + 1];
    else if (strcmp(argv[i], "--protocol") == 0 && atoi(argv[i + 1]) != PS_WORKER_PROTOCOL) {
      fprintf(stderr, "peerscope-worker: protocol %s unsupported (speaks %d)\n", argv[i + 1],
              PS_WORKER_PROTOCOL);
      return 2;
    }
  }
  if (!gpu_list || !job_list || w.bytes == 0 || w.bytes > (1ull << 30)) {
    fprintf(stderr, "peerscope-worker: usage: --gpus BUS,... --jobs L0,P0.1,... "
                    "[--bytes N] [--nonce HEX] [--driver-dir DIR]\n"
                    "(started by peerscope; not meant to be run by hand)\n");
    return 2;
  }
  emit("hello %d %d", PS_WORKER_PROTOCOL, (int)getpid());

  static char *bus_ids[MAX_GPUS], *jobs[MAX_JOBS];
  w.gpu_count = split_list(gpu_list, bus_ids, MAX_GPUS);
  int job_count = split_list(job_list, jobs, MAX_JOBS);
  w.gpus = calloc((size_t)w.gpu_count, sizeof(*w.gpus));
  w.pattern = malloc(w.bytes);
  w.seen = malloc(w.bytes);
  if (!w.gpus || !w.pattern || !w.seen) {
    emit("init fail OUT_OF_MEMORY host memory for %zu-byte buffers", w.bytes);
    return PS_WORKER_EXIT_INIT_FAILED;
  }
  for (int g = 0; g < w.gpu_count; g++)
    ps__strlcpy(w.gpus[g].bus_id, bus_ids[g], sizeof(w.gpus[g].bus_id));

  char err[PS_ERRBUF_LEN];
  int exit_code = 0;
  double t0 = ps__now_ms();
  if (!ps__cuda_open(&w.cuda, driver_dir, err, sizeof(err))) {
    emit("init fail DRIVER_UNAVAILABLE %s", err);
    exit_code = PS_WORKER_EXIT_INIT_FAILED;
    goto out;
  }
  CUresult rc = w.cuda.Init(0);
  int version = 0, cuda_count = 0;
  if (rc == CUDA_SUCCESS) rc = w.cuda.DriverGetVersion(&version);
  if (rc == CUDA_SUCCESS) rc = w.cuda.DeviceGetCount(&cuda_count);
  if (rc != CUDA_SUCCESS) {
    emit("init fail %s cuInit failed", ps__cuda_error_name(&w.cuda, rc));
    exit_code = PS_WORKER_EXIT_INIT_FAILED;
    goto out_close;
  }
  emit("init ok version=%d count=%d ms=%.3f", version, cuda_count, ps__now_ms() - t0);
  map_devices(&w, cuda_count);

  for (int j = 0; j < job_count; j++) {
    ps__job job;
    if (!ps__job_parse(jobs[j], &job) || job.a >= w.gpu_count || job.b >= w.gpu_count) {
      fprintf(stderr, "peerscope-worker: bad job '%s'\n", jobs[j]);
      exit_code = 2;
      goto out_release;
    }
    if (job.local)
      run_local(&w, job.a);
    else
      run_pair(&w, job.a, job.b);
  }
  emit("done");
out_release:
  release(&w);
out_close:
  ps__cuda_close(&w.cuda);
out:
  free(w.gpus);
  free(w.pattern);
  free(w.seen);
  return exit_code;
}
