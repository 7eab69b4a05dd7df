/* The verification's worker mode: the pair tests, run by peerscope-worker in the worker-main
 * skeleton (src/worker/main.c), reporting each step on stdout (protocol.h). This file holds
 * the mode's hooks, contexts, what every mode shares (patterns, result lines) and the ce mode
 * (cuMemcpyPeer out and back); worker_sm.c and worker_ipc.c the other modes. It never decides
 * about deadlines: a step that hangs is the parent's to detect and kill. */
#include "verify/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "verify/protocol.h"
#include "verify/worker_internal.h"

#define MAX_GPUS 1024
#define MAX_JOBS (MAX_GPUS * 16) /* ce, sm and ipc jobs of 64 GPUs fit */

/* ---- what every mode shares ------------------------------------------------------------- */

/* The driver error the current job ended with (CUDA_SUCCESS if none): run() asks whether it
 * poisoned the process. One job runs at a time in a worker. */
static CUresult job_error;

void ps__vw_fill_pattern(uint8_t *buf, size_t len, uint64_t nonce, int mode, int a, int b) {
  uint64_t x = nonce ^ ((uint64_t)(a + 1) << 40) ^ ((uint64_t)(b + 1) << 20) ^
               ((uint64_t)mode << 56) ^ 0x5851F42D4C957F2Dull;
  if (!x) x = 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) { /* xorshift64, eight bytes per step */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(buf + i, &x, 8);
  }
  for (; i < len; i++)
    buf[i] = (uint8_t)(x >> (8 * (i % 8)) ^ (uint8_t)i);
}

long long ps__vw_first_difference(const uint8_t *a, const uint8_t *b, size_t len) {
  if (memcmp(a, b, len) == 0) return -1;
  for (size_t i = 0; i < len; i++)
    if (a[i] != b[i]) return (long long)i;
  return -1;
}

void ps__vw_corrupt(vw_outcome *out, const uint8_t *pattern, const uint8_t *seen, long long offset,
                    const char *leg) {
  memset(out, 0, sizeof(*out));
  out->verdict = "corrupt";
  out->offset = offset;
  out->expected = pattern[offset];
  out->seen = seen[offset];
  snprintf(out->reason, sizeof(out->reason),
           "%.90s: bytes differ at offset %lld (expected 0x%02x, saw 0x%02x)", leg, offset,
           out->expected, out->seen);
}

void ps__vw_error(vw_outcome *out, const ps__cuda *cuda, CUresult rc, const char *what) {
  memset(out, 0, sizeof(*out));
  out->verdict = "error";
  out->rc = rc;
  ps__strlcpy(out->error, ps__cuda_error_name(cuda, rc), sizeof(out->error));
  snprintf(out->reason, sizeof(out->reason), "%s failed: %s", what, out->error);
}

void ps__vw_emit_result(const char *word, int a, int b, const vw_outcome *out, int access,
                        double us) {
  char fields[256] = "";
  size_t n = 0;
  if (out->rc != CUDA_SUCCESS) job_error = out->rc;
  if (access >= 0) n += (size_t)snprintf(fields + n, sizeof(fields) - n, " access=%d", access);
  if (us >= 0) n += (size_t)snprintf(fields + n, sizeof(fields) - n, " us=%.3f", us);
  if (strcmp(out->verdict, "corrupt") == 0)
    n += (size_t)snprintf(fields + n, sizeof(fields) - n, " offset=%lld expected=%u seen=%u",
                          out->offset, out->expected, out->seen);
  if (out->error[0] && n < sizeof(fields))
    snprintf(fields + n, sizeof(fields) - n, " error=%s", out->error);
  vw_emit("result %s %d %d %s%s reason=%s", word, a, b, out->verdict, fields, out->reason);
}

/* ---- contexts and peer access ----------------------------------------------------------- */

/* Creates GPU g's context and buffers (no `step` line); the driver error, CUDA_SUCCESS. May
 * run on a thread of its own (ps__vw_make_contexts): it touches only w->gpus[g]. */
CUresult ps__vw_create_ctx(vw_worker *w, int g) {
  vw_gpu *s = &w->gpus[g];
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
    s->ctx_rc = rc;
    ps__strlcpy(s->ctx_error,
                ordinal < 0 ? "NOT_VISIBLE_TO_CUDA" : ps__cuda_error_name(&w->base.cuda, rc),
                sizeof(s->ctx_error));
    vw_emit("ctx %d fail %s", g, s->ctx_error);
    return rc;
  }
  s->ctx_state = 1;
  vw_emit("ctx %d ok ms=%.3f", g, ps__now_ms() - t0);
  return CUDA_SUCCESS;
}

bool ps__vw_ensure_ctx(vw_worker *w, int g) {
  vw_gpu *s = &w->gpus[g];
  if (!s->ctx_state) {
    vw_emit("step ctx %d", g);
    ps__vw_create_ctx(w, g);
  }
  if (s->ctx_rc != CUDA_SUCCESS) { /* the job that meets it asks whether it poisoned us */
    job_error = s->ctx_rc;
    s->ctx_rc = CUDA_SUCCESS;
  }
  return s->ctx_state > 0;
}

/* cuCtxEnablePeerAccess from a's (current) context to b's. At the driver's peer limit
 * (CUDA_ERROR_TOO_MANY_PEERS: 8 on many machines, and a context here meets every other GPU)
 * the earlier peers' mappings are dropped and the call is made once more. */
static CUresult enable_peer(vw_worker *w, int a, int b) {
  CUresult rc = w->base.cuda.CtxEnablePeerAccess(w->gpus[b].ctx, 0);
  if (rc != CUDA_ERROR_TOO_MANY_PEERS || !w->base.cuda.CtxDisablePeerAccess) return rc;
  for (int g = 0; g < w->base.gpu_count; g++)
    if (g != a && g != b && w->gpus[g].ctx_state > 0)
      w->base.cuda.CtxDisablePeerAccess(w->gpus[g].ctx); /* NOT_ENABLED for most: fine */
  return w->base.cuda.CtxEnablePeerAccess(w->gpus[b].ctx, 0);
}

bool ps__vw_peer_on(vw_worker *w, int a, int b, int *access, vw_outcome *out) {
  vw_gpu *sa = &w->gpus[a], *sb = &w->gpus[b];
  *access = -1;
  CUresult rc = w->base.cuda.DeviceCanAccessPeer(access, sa->dev, sb->dev);
  if (rc != CUDA_SUCCESS) {
    *access = -1;
    ps__vw_error(out, &w->base.cuda, rc, "cuDeviceCanAccessPeer");
    return false;
  }
  /* Peer access must be on, or cuMemcpyPeer silently stages through host memory and the
   * test would prove nothing about the P2P path. */
  rc = w->base.cuda.CtxSetCurrent(sa->ctx);
  if (rc == CUDA_SUCCESS) rc = enable_peer(w, a, b);
  if (rc == CUDA_ERROR_PEER_ACCESS_UNSUPPORTED) {
    memset(out, 0, sizeof(*out));
    out->verdict = "unsupported";
    ps__strlcpy(out->error, ps__cuda_error_name(&w->base.cuda, rc), sizeof(out->error));
    snprintf(out->reason, sizeof(out->reason),
             "the driver refuses peer access from GPU %d to GPU %d", a, b);
    return false;
  }
  if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED) {
    ps__vw_error(out, &w->base.cuda, rc, "cuCtxEnablePeerAccess");
    return false;
  }
  return true;
}

/* ---- the ce mode ------------------------------------------------------------------------ */

/* Runs one leg: device-to-device copy src -> dst (peer or local), then reads dst back to
 * the host through dst's own GPU and compares with the pattern. */
static CUresult copy_leg(vw_worker *w, int from, CUdeviceptr src, int to, CUdeviceptr dst,
                         long long *bad) {
  vw_gpu *f = &w->gpus[from], *t = &w->gpus[to];
  CUresult rc = from == to ? w->base.cuda.MemcpyDtoD(dst, src, w->bytes)
                           : w->base.cuda.MemcpyPeer(dst, t->ctx, src, f->ctx, w->bytes);
  /* Device-to-device copies may return before they finish: wait on both contexts. */
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(f->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(t->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyDtoH(w->seen, dst, w->bytes);
  if (rc == CUDA_SUCCESS) *bad = ps__vw_first_difference(w->pattern, w->seen, w->bytes);
  return rc;
}

static void run_local(vw_worker *w, int g) {
  vw_outcome out = {.verdict = "ok"};
  if (!ps__vw_ensure_ctx(w, g)) {
    vw_emit("step local %d", g);
    out.verdict = "error";
    ps__strlcpy(out.error, w->gpus[g].ctx_error, sizeof(out.error));
    snprintf(out.reason, sizeof(out.reason), "context creation failed: %s", out.error);
    return ps__vw_emit_result("local", g, g, &out, -1, -1);
  }
  vw_gpu *s = &w->gpus[g];
  vw_emit("step local %d", g);
  ps__vw_fill_pattern(w->pattern, w->bytes, w->nonce, PS_MODE_CE, g, g);
  long long bad = -1;
  CUresult rc = w->base.cuda.CtxSetCurrent(s->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyHtoD(s->src, w->pattern, w->bytes);
  double t0 = ps__now_ms();
  if (rc == CUDA_SUCCESS) rc = copy_leg(w, g, s->src, g, s->dst, &bad);
  double us = (ps__now_ms() - t0) * 1e3;
  if (rc != CUDA_SUCCESS)
    ps__vw_error(&out, &w->base.cuda, rc, "local copy");
  else if (bad >= 0)
    ps__vw_corrupt(&out, w->pattern, w->seen, bad, "local copy within the GPU");
  ps__vw_emit_result("local", g, g, &out, -1, rc == CUDA_SUCCESS ? us : -1);
}

/* Both contexts, or the `result` line that says which failed; false then. */
static bool pair_ready(vw_worker *w, const char *word, int a, int b) {
  bool ready = ps__vw_ensure_ctx(w, a);
  ready = ps__vw_ensure_ctx(w, b) && ready;
  vw_emit("step %s %d %d", word, a, b);
  if (ready) return true;
  int bad_gpu = w->gpus[a].ctx_state < 0 ? a : b;
  vw_outcome out = {.verdict = "error"};
  ps__strlcpy(out.error, w->gpus[bad_gpu].ctx_error, sizeof(out.error));
  snprintf(out.reason, sizeof(out.reason), "context creation on GPU %d failed: %s", bad_gpu,
           out.error);
  ps__vw_emit_result(word, a, b, &out, -1, -1);
  return false;
}

static void run_pair(vw_worker *w, int a, int b) {
  if (!pair_ready(w, "pair", a, b)) return;
  vw_gpu *sa = &w->gpus[a], *sb = &w->gpus[b];
  vw_outcome out = {.verdict = "ok"};
  int access = -1;
  if (!ps__vw_peer_on(w, a, b, &access, &out))
    return ps__vw_emit_result("pair", a, b, &out, access, -1);
  ps__vw_fill_pattern(w->pattern, w->bytes, w->nonce, PS_MODE_CE, a, b);
  CUresult rc = w->base.cuda.MemcpyHtoD(sa->src, w->pattern, w->bytes);
  if (rc != CUDA_SUCCESS) {
    ps__vw_error(&out, &w->base.cuda, rc, "upload");
    return ps__vw_emit_result("pair", a, b, &out, access, -1);
  }
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
  if (rc != CUDA_SUCCESS)
    ps__vw_error(&out, &w->base.cuda, rc, leg);
  else if (bad >= 0)
    ps__vw_corrupt(&out, w->pattern, w->seen, bad, leg);
  ps__vw_emit_result("pair", a, b, &out, access, rc == CUDA_SUCCESS ? us : -1);
}

/* ---- the mode's hooks ------------------------------------------------------------------- */

static vw_worker *self(ps__worker *base) { return (vw_worker *)base; }

/* What both modes share (this one and the ipc peer's, ipc_peer.c). */
bool ps__vw_option(ps__worker *base, const char *name, const char *value) {
  if (strcmp(name, "--bytes") == 0)
    self(base)->bytes = strtoull(value, NULL, 10);
  else if (strcmp(name, "--nonce") == 0)
    self(base)->nonce = strtoull(value, NULL, 16);
  else
    return false;
  return true;
}

bool ps__vw_valid(ps__worker *base) {
  return self(base)->bytes > 0 && self(base)->bytes <= (1ull << 30);
}

bool ps__vw_alloc_host(vw_worker *w) {
  w->gpus = calloc((size_t)w->base.gpu_count + 1, sizeof(*w->gpus));
  w->pattern = malloc(w->bytes);
  w->seen = malloc(w->bytes);
  if (w->gpus && w->pattern && w->seen) return true;
  vw_emit("init fail OUT_OF_MEMORY host memory for %zu-byte buffers", w->bytes);
  return false;
}

void ps__vw_started(ps__worker *base, double init_ms, char *fields, size_t len) {
  (void)base;
  snprintf(fields, len, "ms=%.3f", init_ms);
}

static bool option(ps__worker *base, const char *name, const char *value) {
  if (strcmp(name, "--ipc-early") != 0) return ps__vw_option(base, name, value);
  self(base)->ipc_early = strcmp(value, "1") == 0;
  return true;
}

static bool prepare(ps__worker *base) {
  vw_worker *w = self(base);
  if (!ps__vw_alloc_host(w)) return false;
  for (int g = 0; g < base->gpu_count; g++)
    w->gpus[g].exp.fd = -1;
  for (int j = 0; j < base->job_count; j++)
    w->wants_ipc = w->wants_ipc || base->jobs[j][0] == 'I';
  /* The second process of the ipc mode starts now: its CUDA start-up overlaps ours. */
  if (w->wants_ipc && !(w->ipc_sent = calloc((size_t)base->job_count + 1, 1))) {
    vw_emit("init fail OUT_OF_MEMORY host memory for the job list");
    return false;
  }
  if (w->peer_early && w->wants_ipc)
    ps__vw_peer_lists(w);
  else if (w->peer_early)
    ps__vw_stop_peer(w); /* started for nothing: the jobs left hold no ipc job */
  else if (w->wants_ipc)
    ps__vw_start_peer(w);
  return true;
}

/* The optional entry points of the sm and ipc modes: a driver without them still verifies
 * in the ce mode, and the others say "unavailable" with the missing name. */
static bool opened(ps__worker *base) {
  vw_worker *w = self(base);
  /* Lists to come (the parent is still probing): the ipc peer's CUDA start-up overlaps ours
   * only if it starts now, before cuInit; it gets its GPU list when we have it. */
  if (w->ipc_early && !base->gpus) {
    ps__vw_start_peer(w);
    w->peer_early = w->peer.state > 0;
  }
  w->bench_api = ps__cuda_open_bench(&base->cuda, w->bench_error, sizeof(w->bench_error));
  w->ipc_api = ps__cuda_open_ipc(&base->cuda, w->ipc_error, sizeof(w->ipc_error));
  ps__cuda_open_peer_disable(&base->cuda); /* enable_peer's way out of the peer limit */
  return true;
}

/* Whether the error the job ended with poisoned the process: one the driver documents as
 * sticky, or any error after which a context the job did not use (else the job's own) fails
 * too (a driver that poisons on other codes; a lost GPU leaves the others working). */
static bool poisoned(vw_worker *w, CUresult rc, int a, int b) {
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
  ps__job job;
  if (!ps__job_parse(token, &job) || job.a >= base->gpu_count || job.b >= base->gpu_count)
    return false;
  vw_worker *w = self(base);
  if (!w->contexts_made) {
    w->contexts_made = true;
    ps__vw_make_contexts(w);
  }
  job_error = CUDA_SUCCESS;
  switch (job.mode) {
  case PS_MODE_CE: job.local ? run_local(w, job.a) : run_pair(w, job.a, job.b); break;
  case PS_MODE_SM: ps__vw_run_sm(w, job.a, job.b); break;
  case PS_MODE_IPC: ps__vw_run_ipc(w, index, job.a, job.b); break;
  }
  if (job_error != CUDA_SUCCESS && poisoned(w, job_error, job.a, job.b)) {
    const char *name = ps__cuda_error_name(&base->cuda, job_error);
    vw_emit("poisoned %s reason=%s on the %s%s %d->%d: every later CUDA call in %s fails", name,
            name, job.mode == PS_MODE_CE ? "" : ps_mode_name(job.mode),
            job.mode == PS_MODE_CE ? (job.local ? "local copy" : "pair")
                                   : (job.local ? " local control" : " pair"),
            job.a, job.b, job.mode == PS_MODE_IPC ? "the ipc peer process" : "this worker");
    base->stop = true;
  }
  return true;
}

static void release(ps__worker *base) {
  vw_worker *w = self(base);
  ps__vw_stop_peer(w);
  for (int g = 0; g < base->gpu_count; g++) {
    vw_gpu *s = &w->gpus[g];
    if (s->ctx_state <= 0) continue;
    base->cuda.CtxSetCurrent(s->ctx);
    ps__vw_release_ipc(w, g);
    ps__vw_release_sm(w, g);
    if (s->src) base->cuda.MemFree(s->src);
    if (s->dst) base->cuda.MemFree(s->dst);
    base->cuda.DevicePrimaryCtxRelease(s->dev);
  }
}

static void free_host(ps__worker *base) {
  vw_worker *w = self(base);
  ps__vw_stop_peer(w); /* when the driver never started */
  free(w->gpus);
  free(w->pattern);
  free(w->seen);
  free(w->ipc_sent);
}

static const ps__worker_mode verify_mode = {
    .usage = "peerscope-worker: usage: --gpus BUS,... --jobs L0,P0.1,S0.1,I0.1,... "
             "[--bytes N] [--nonce HEX] [--driver-dir DIR] [--ipc-early 0|1]\n"
             "(--gpus - --jobs -: both lists on stdin, one line each, read after cuInit)\n"
             "(started by peerscope; not meant to be run by hand)\n",
    .job_word = "job",
    .max_gpus = MAX_GPUS,
    .max_jobs = MAX_JOBS,
    .option = option,
    .valid = ps__vw_valid,
    .prepare = prepare,
    .opened = opened,
    .started = ps__vw_started,
    .run = run,
    .release = release,
    .free_host = free_host};

int ps__vw_main(const ps__worker_mode *mode, int argc, char **argv) {
  vw_worker w;
  memset(&w, 0, sizeof(w));
  w.bytes = 1 << 20;
  w.peer.sock = -1;
  return ps__worker_run(&w.base, mode, argc, argv);
}

int ps__verify_worker_main(int argc, char **argv) { return ps__vw_main(&verify_mode, argc, argv); }
