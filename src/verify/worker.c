/* The verification's worker mode: the pair tests, run by peerscope-worker in the worker-main
 * skeleton (src/worker/main.c), reporting each step on stdout (protocol.h). It never decides
 * about deadlines: a step that hangs is the parent's to detect and kill. */
#include "verify/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "verify/protocol.h"
#include "worker/main.h"

#define MAX_GPUS 1024
#define MAX_JOBS (MAX_GPUS * 8)

typedef struct gpu_state {
  int ctx_state; /* 0 not tried, 1 ready, -1 failed */
  char ctx_error[48];
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr src, dst;
} gpu_state;

typedef struct worker {
  ps__worker base; /* first: the skeleton's state */
  size_t bytes;
  uint64_t nonce;
  gpu_state *gpus;
  uint8_t *pattern, *seen;
  CUresult job_error; /* the driver error the current job ended with, CUDA_SUCCESS if none */
} worker;

#define emit ps__worker_emit

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
  int ordinal = w->base.gpus[g].ordinal;
  if (ordinal >= 0) {
    rc = w->base.cuda.DeviceGet(&s->dev, ordinal);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.DevicePrimaryCtxRetain(&s->ctx, s->dev);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(s->ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&s->src, w->bytes);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&s->dst, w->bytes);
  }
  if (rc != CUDA_SUCCESS) {
    s->ctx_state = -1;
    w->job_error = rc;
    ps__strlcpy(s->ctx_error,
                ordinal < 0 ? "NOT_VISIBLE_TO_CUDA" : ps__cuda_error_name(&w->base.cuda, rc),
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
  CUresult rc = from == to ? w->base.cuda.MemcpyDtoD(dst, src, w->bytes)
                           : w->base.cuda.MemcpyPeer(dst, t->ctx, src, f->ctx, w->bytes);
  /* Device-to-device copies may return before they finish: wait on both contexts. */
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(f->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(t->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyDtoH(w->seen, dst, w->bytes);
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
  const char *name = ps__cuda_error_name(&w->base.cuda, rc);
  w->job_error = rc;
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
  CUresult rc = w->base.cuda.CtxSetCurrent(s->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyHtoD(s->src, w->pattern, w->bytes);
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

/* cuCtxEnablePeerAccess from a's (current) context to b's. At the driver's peer limit
 * (CUDA_ERROR_TOO_MANY_PEERS: 8 on many machines, and a context here meets every other GPU)
 * the earlier peers' mappings are dropped and the call is made once more. */
static CUresult enable_peer(worker *w, int a, int b) {
  CUresult rc = w->base.cuda.CtxEnablePeerAccess(w->gpus[b].ctx, 0);
  if (rc != CUDA_ERROR_TOO_MANY_PEERS || !w->base.cuda.CtxDisablePeerAccess) return rc;
  for (int g = 0; g < w->base.gpu_count; g++)
    if (g != a && g != b && w->gpus[g].ctx_state > 0)
      w->base.cuda.CtxDisablePeerAccess(w->gpus[g].ctx); /* NOT_ENABLED for most: fine */
  return w->base.cuda.CtxEnablePeerAccess(w->gpus[b].ctx, 0);
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
  CUresult rc = w->base.cuda.DeviceCanAccessPeer(&access, sa->dev, sb->dev);
  if (rc != CUDA_SUCCESS) return report_error("pair", a, b, w, rc, -1, "cuDeviceCanAccessPeer");

  /* Peer access must be on, or cuMemcpyPeer silently stages through host memory and the
   * test would prove nothing about the P2P path. */
  rc = w->base.cuda.CtxSetCurrent(sa->ctx);
  if (rc == CUDA_SUCCESS) rc = enable_peer(w, a, b);
  if (rc == CUDA_ERROR_PEER_ACCESS_UNSUPPORTED) {
    emit("result pair %d %d unsupported access=%d error=%s reason=the driver refuses peer access "
         "from GPU %d to GPU %d",
         a, b, access, ps__cuda_error_name(&w->base.cuda, rc), a, b);
    return;
  }
  if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
    return report_error("pair", a, b, w, rc, access, "cuCtxEnablePeerAccess");

  fill_pattern(w->pattern, w->bytes, job_seed(w, a, b));
  rc = w->base.cuda.MemcpyHtoD(sa->src, w->pattern, w->bytes);
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

static worker *self(ps__worker *base) { return (worker *)base; }

static bool option(ps__worker *base, const char *name, const char *value) {
  if (strcmp(name, "--bytes") == 0)
    self(base)->bytes = strtoull(value, NULL, 10);
  else if (strcmp(name, "--nonce") == 0)
    self(base)->nonce = strtoull(value, NULL, 16);
  else
    return false;
  return true;
}

static bool valid(ps__worker *base) {
  return self(base)->bytes > 0 && self(base)->bytes <= (1ull << 30);
}

static bool prepare(ps__worker *base) {
  worker *w = self(base);
  w->gpus = calloc((size_t)base->gpu_count + 1, sizeof(*w->gpus));
  w->pattern = malloc(w->bytes);
  w->seen = malloc(w->bytes);
  if (w->gpus && w->pattern && w->seen) return true;
  emit("init fail OUT_OF_MEMORY host memory for %zu-byte buffers", w->bytes);
  return false;
}

static void started(ps__worker *base, double init_ms, char *fields, size_t len) {
  (void)base;
  snprintf(fields, len, "ms=%.3f", init_ms);
}

/* Whether the error the job ended with poisoned the process: one the driver documents as
 * sticky, or any error after which a context the job did not use (else the job's own) fails
 * too (a driver that poisons on other codes; a lost GPU leaves the others working). */
static bool poisoned(worker *w, CUresult rc, int a, int b) {
  if (ps__cuda_error_sticky(rc)) return true;
  int probe = -1;
  for (int g = 0; g < w->base.gpu_count && probe < 0; g++)
    if (g != a && g != b && w->gpus[g].ctx_state > 0) probe = g;
  if (probe < 0) probe = w->gpus[a].ctx_state > 0 ? a : w->gpus[b].ctx_state > 0 ? b : -1;
  if (probe < 0) return false;
  CUresult r = w->base.cuda.CtxSetCurrent(w->gpus[probe].ctx);
  if (r == CUDA_SUCCESS) r = w->base.cuda.CtxSynchronize();
  return r != CUDA_SUCCESS;
}

static bool run(ps__worker *base, int index, const char *token) {
  (void)index;
  ps__job job;
  worker *w = self(base);
  if (!ps__job_parse(token, &job) || job.a >= base->gpu_count || job.b >= base->gpu_count)
    return false;
  w->job_error = CUDA_SUCCESS;
  if (job.local)
    run_local(w, job.a);
  else
    run_pair(w, job.a, job.b);
  if (w->job_error != CUDA_SUCCESS && poisoned(w, w->job_error, job.a, job.b)) {
    const char *name = ps__cuda_error_name(&base->cuda, w->job_error);
    emit("poisoned %s reason=%s on %s %d->%d: every later CUDA call in this worker fails", name,
         name, job.local ? "the local copy" : "the pair", job.a, job.b);
    base->stop = true;
  }
  return true;
}

/* After the driver opened: cuCtxDisablePeerAccess, when there is one (enable_peer). */
static bool opened(ps__worker *base) {
  ps__cuda_open_peer_disable(&base->cuda);
  return true;
}

static void release(ps__worker *base) {
  worker *w = self(base);
  for (int g = 0; g < base->gpu_count; g++) {
    gpu_state *s = &w->gpus[g];
    if (s->ctx_state <= 0) continue;
    base->cuda.CtxSetCurrent(s->ctx);
    if (s->src) base->cuda.MemFree(s->src);
    if (s->dst) base->cuda.MemFree(s->dst);
    base->cuda.DevicePrimaryCtxRelease(s->dev);
  }
}

static void free_host(ps__worker *base) {
  worker *w = self(base);
  free(w->gpus);
  free(w->pattern);
  free(w->seen);
}

static const ps__worker_mode verify_mode = {
    .usage = "peerscope-worker: usage: --gpus BUS,... --jobs L0,P0.1,... "
             "[--bytes N] [--nonce HEX] [--driver-dir DIR]\n"
             "(started by peerscope; not meant to be run by hand)\n",
    .job_word = "job",
    .max_gpus = MAX_GPUS,
    .max_jobs = MAX_JOBS,
    .option = option,
    .valid = valid,
    .prepare = prepare,
    .opened = opened,
    .started = started,
    .run = run,
    .release = release,
    .free_host = free_host};

int ps__verify_worker_main(int argc, char **argv) {
  worker w;
  memset(&w, 0, sizeof(w));
  w.bytes = 1 << 20;
  return ps__worker_run(&w.base, &verify_mode, argc, argv);
}
