/* Copy bandwidth and latency in the bench worker, timed the way nvbandwidth times them: a
 * spin kernel holds each stream on a host flag while the warm-up copies, the start event, the
 * copies and the stop event are queued, then the flag is released, so enqueue cost stays out
 * of the timed region and the timed copies start behind running ones. job->trials samples, each
 * with its own warm-up (nvbandwidth's 4 copies); the copied data is checked afterwards. */
#include <stdio.h>
#include <string.h>

#include "worker/kernels/kernel_abi.h"
#include "bench/worker_internal.h"
#include "core/internal.h"

#define SPIN_TIMEOUT_NS 30000000000ull /* the parent's deadline comes well before */
#define WARMUP_COPIES 4                /* per sample, before the start event (nvbandwidth's) */
#define CHASE_STRIDE 128               /* nvbandwidth's latency chain: a node per 128-byte line, */
#define CHASE_MAX_BYTES (2u << 20)     /* each pointing to the next, over a 2 MiB buffer */

/* Queues `count` of a job's operations for one side on `stream` (side 1 is the reverse
 * direction of a bidirectional job). */
typedef CUresult (*enqueue_fn)(bw_worker *w, const ps__bench_job *job, int side, CUstream stream,
                               int count);

static CUresult launch_copy(bw_worker *w, int g, CUdeviceptr src, CUdeviceptr dst, uint64_t bytes,
                            CUstream stream) {
  bw_gpu *s = &w->gpus[g];
  unsigned long long count16 = bytes / 16;
  void *params[] = {&src, &dst, &count16};
  unsigned blocks = (unsigned)(s->sms > 0 ? s->sms * 4 : 128);
  return w->base.cuda.LaunchKernel(s->copy, blocks, 1, 1, PS_COPY_THREADS, 1, 1, 0, stream, params,
                                   NULL);
}

static CUresult enqueue_copy(bw_worker *w, const ps__bench_job *job, int side, CUstream stream,
                             int count) {
  bw_gpu *a = &w->gpus[side ? job->b : job->a], *b = &w->gpus[side ? job->a : job->b];
  int on_a = side ? job->b : job->a, on_b = side ? job->a : job->b;
  CUresult rc = CUDA_SUCCESS;
  for (int i = 0; i < count && rc == CUDA_SUCCESS; i++) {
    switch (job->kind) {
    case PS_BENCH_COPY_CE:
    case PS_BENCH_LATENCY_WRITE:
      rc = w->base.cuda.MemcpyPeerAsync(b->dst, b->ctx, a->src, a->ctx, job->bytes, stream);
      break;
    case PS_BENCH_COPY_SM_READ:
      rc = launch_copy(w, on_b, a->src, b->dst, job->bytes, stream);
      break;
    case PS_BENCH_COPY_SM_WRITE:
      rc = launch_copy(w, on_a, a->src, b->dst, job->bytes, stream);
      break;
    case PS_BENCH_LOCAL_CE:
      rc = w->base.cuda.MemcpyAsync(a->dst, a->src, job->bytes, stream);
      break;
    case PS_BENCH_LOCAL_SM: rc = launch_copy(w, on_a, a->src, a->dst, job->bytes, stream); break;
    case PS_BENCH_H2D:
      rc = w->base.cuda.MemcpyHtoDAsync(a->dst, w->host, job->bytes, stream);
      break;
    case PS_BENCH_D2H:
      rc = w->base.cuda.MemcpyDtoHAsync(w->host, a->src, job->bytes, stream);
      break;
    default: rc = CUDA_ERROR_INVALID_VALUE; break;
    }
  }
  return rc;
}

/* One launch follows `job->iters` links; count is 1 (the sample) or 0. */
static CUresult enqueue_chase(bw_worker *w, const ps__bench_job *job, int side, CUstream stream,
                              int count) {
  (void)side;
  if (count <= 0) return CUDA_SUCCESS;
  bw_gpu *reader = &w->gpus[job->b];
  CUdeviceptr start = w->gpus[job->a].dst, sink = w->flag_dev + 8;
  unsigned int steps = (unsigned int)job->iters;
  void *params[] = {&start, &steps, &sink};
  return w->base.cuda.LaunchKernel(reader->chase, 1, 1, 1, 1, 1, 1, 0, stream, params, NULL);
}

static CUresult launch_spin(bw_worker *w, int g) {
  bw_gpu *s = &w->gpus[g];
  if (!w->kernels) return CUDA_SUCCESS; /* events alone: enqueue cost is inside the timing */
  CUdeviceptr flag = w->flag_dev;
  unsigned long long timeout = SPIN_TIMEOUT_NS;
  void *params[] = {&flag, &timeout};
  return w->base.cuda.LaunchKernel(s->spin, 1, 1, 1, 1, 1, 1, 0, s->stream, params, NULL);
}

static int warmup_count(const ps__bench_job *job) {
  if (job->kind == PS_BENCH_LATENCY_CHASE) return 1; /* one whole chase: the chain is cached */
  return WARMUP_COPIES;
}

/* Stream g held by its spin kernel, then the warm-up operations behind it. */
static CUresult hold_and_warm(bw_worker *w, const ps__bench_job *job, int g, int side,
                              enqueue_fn enqueue) {
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[g].ctx);
  if (rc == CUDA_SUCCESS) rc = launch_spin(w, g);
  if (rc == CUDA_SUCCESS) rc = enqueue(w, job, side, w->gpus[g].stream, warmup_count(job));
  return rc;
}

/* One sample: main's stream carries the start and stop events; other (or -1) runs the
 * reverse direction at the same time, starts at main's start event (as nvbandwidth's
 * simultaneous copies do) and main's stop waits for it. */
static CUresult one_trial(bw_worker *w, const ps__bench_job *job, int main, int other,
                          enqueue_fn enqueue, float *ms) {
  bw_gpu *m = &w->gpus[main], *o = other >= 0 ? &w->gpus[other] : NULL;
  *w->flag = 0;
  __sync_synchronize();
  CUresult rc = hold_and_warm(w, job, main, 0, enqueue);
  if (rc == CUDA_SUCCESS && o) rc = hold_and_warm(w, job, other, 1, enqueue);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(m->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(m->start, m->stream);
  if (rc == CUDA_SUCCESS) rc = enqueue(w, job, 0, m->stream, job->iters);
  if (rc == CUDA_SUCCESS && o) {
    rc = w->base.cuda.CtxSetCurrent(o->ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.StreamWaitEvent(o->stream, m->start, 0);
    if (rc == CUDA_SUCCESS) rc = enqueue(w, job, 1, o->stream, job->iters);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(o->mark, o->stream);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(m->ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.StreamWaitEvent(m->stream, o->mark, 0);
  }
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(m->stop, m->stream);
  __sync_synchronize();
  *w->flag = 1; /* release the spin kernels even when queuing failed */
  __sync_synchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventSynchronize(m->stop);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventElapsedTime(ms, m->start, m->stop);
  if (o && rc == CUDA_SUCCESS) rc = w->base.cuda.StreamSynchronize(o->stream);
  return rc;
}

static bool time_trials(bw_worker *w, const ps__bench_job *job, int main, int other,
                        enqueue_fn enqueue, bw_result *r) {
  int trials = job->trials < (int)PS_ARRAY_LEN(r->us) ? job->trials : (int)PS_ARRAY_LEN(r->us);
  for (int t = 0; t < trials; t++) {
    float ms = 0;
    CUresult rc = one_trial(w, job, main, other, enqueue, &ms);
    if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "timed copies", rc);
    r->us[r->samples++] = (double)ms * 1000.0 / job->iters;
  }
  return true;
}

/* Peer access as the job asks, in both directions (SM copies need it on the side that runs
 * the kernel; a P2P-off copy must find it off on both). */
static bool peer_state(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  if (job->a < 0 || job->b < 0 || job->a == job->b) return true;
  return ps__bw_set_peer(w, job->a, job->b, job->p2p, r) &&
         ps__bw_set_peer(w, job->b, job->a, job->p2p, r);
}

/* Reads `ptr` on GPU g back into the host buffer and checks it holds pattern_gpu's pattern. */
static bool check_device(bw_worker *w, int g, CUdeviceptr ptr, uint64_t bytes, int pattern_gpu,
                         bw_result *r) {
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[g].ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyDtoH(w->host, ptr, bytes);
  if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "reading the result back", rc);
  return ps__bw_check_pattern(w->host, bytes, pattern_gpu, r);
}

static bool clear_dst(bw_worker *w, int g, bw_result *r) {
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[g].ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemsetD8(w->gpus[g].dst, 0, w->copy_bytes);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "clearing the destination", rc);
}

static void fill_host_pattern(bw_worker *w, int g, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes / 8; i++) {
    uint64_t v = ps__bw_pattern_word(g, i);
    memcpy(w->host + i * 8, &v, 8);
  }
}

static bool needs_kernel(ps_bench_kind kind) {
  return kind == PS_BENCH_COPY_SM_READ || kind == PS_BENCH_COPY_SM_WRITE ||
         kind == PS_BENCH_LOCAL_SM || kind == PS_BENCH_LATENCY_CHASE;
}

static bool preconditions(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  if (needs_kernel(job->kind) && !w->kernels) {
    r->outcome = PS_BENCH_WAIVED;
    ps__strlcpy(r->reason, "built without CUDA kernels (no nvcc at build time)", sizeof(r->reason));
    return false;
  }
  /* Kernels move 16 bytes per access; the copy engine takes any size. */
  if (job->bytes == 0 || job->bytes > w->copy_bytes ||
      (needs_kernel(job->kind) && job->bytes % 16)) {
    r->outcome = PS_BENCH_FAILED;
    snprintf(r->reason, sizeof(r->reason),
             "%llu bytes: must be 1..%llu (a multiple of 16 for "
             "kernels)",
             (unsigned long long)job->bytes, (unsigned long long)w->copy_bytes);
    return false;
  }
  return peer_state(w, job, r);
}

void ps__bw_run_copy(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  if (!preconditions(w, job, r)) return;
  bool local = job->kind == PS_BENCH_LOCAL_CE || job->kind == PS_BENCH_LOCAL_SM ||
               job->kind == PS_BENCH_H2D || job->kind == PS_BENCH_D2H;
  int a = job->a, b = local ? job->a : job->b;
  /* The GPU whose stream carries the events: the one that runs the kernel, or the source. */
  int main = job->kind == PS_BENCH_COPY_SM_READ ? b : a;
  int other = job->bidirectional && !local ? (main == a ? b : a) : -1;
  if (job->kind == PS_BENCH_H2D) fill_host_pattern(w, a, job->bytes);
  if (!clear_dst(w, b, r) || (other >= 0 && !clear_dst(w, a, r))) return;
  if (!time_trials(w, job, main, other, enqueue_copy, r)) return;
  if (job->kind == PS_BENCH_D2H) {
    ps__bw_check_pattern(w->host, job->bytes, a, r);
    return;
  }
  if (!check_device(w, b, w->gpus[b].dst, job->bytes, a, r)) return;
  if (other >= 0) check_device(w, a, w->gpus[a].dst, job->bytes, b, r);
}

/* nvbandwidth's latency chain through `bytes` of GPU a's dst buffer: node k (one per
 * 128-byte line) holds the address of node k + 1, the last that of the first. */
static bool upload_chain(bw_worker *w, int a, uint64_t bytes, bw_result *r) {
  uint64_t nodes = bytes / CHASE_STRIDE;
  CUdeviceptr base = w->gpus[a].dst;
  uint64_t *chain = (uint64_t *)(void *)w->host;
  memset(chain, 0, bytes);
  for (uint64_t k = 0; k < nodes; k++)
    chain[k * (CHASE_STRIDE / 8)] = base + (k + 1) % nodes * CHASE_STRIDE;
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[a].ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyHtoD(base, chain, bytes);
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "uploading the pointer chain", rc);
}

void ps__bw_run_latency(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  if (job->kind == PS_BENCH_LATENCY_WRITE) {
    ps__bw_run_copy(w, job, r);
    return;
  }
  if (!preconditions(w, job, r)) return;
  uint64_t bytes = w->copy_bytes < CHASE_MAX_BYTES ? w->copy_bytes : CHASE_MAX_BYTES;
  if (bytes < CHASE_STRIDE * 16) {
    r->outcome = PS_BENCH_FAILED;
    ps__strlcpy(r->reason, "copy buffer too small for the pointer chain", sizeof(r->reason));
    return;
  }
  if (!upload_chain(w, job->a, bytes, r)) return;
  time_trials(w, job, job->b, -1, enqueue_chase, r);
}
