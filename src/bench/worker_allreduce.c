/* All-reduce in the bench worker: peerscope's custom all-reduce kernels (kernels/oneshot.cu:
 * one-shot, two-shot for large messages as vLLM picks them) and NCCL, timed the same way and as
 * nccl-tests' all_reduce_perf times them: after a warm-up, `iters` back-to-back operations are
 * enqueued between two readings of the host clock, the second after every rank's stream is
 * synchronised; in a CUDA graph (-G) the `iters` operations are captured once per rank's
 * stream and the graphs launched GRAPH_REPLAYS times. No spin latch, so launch cost counts as
 * it does for an application. On the fake driver (w->simulated) the clock is a pair of events
 * on rank 0's stream instead: its modelled time. Inputs are small integers: every sum is exact
 * in fp16 and bf16, whatever order a ring adds them in, and the outputs are checked element for
 * element. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/kernels/kernel_abi.h"
#include "bench/worker_internal.h"
#include "core/internal.h"

/* nccl-tests' -w 1 warm-up operation and the synchronised one each of its timings starts with. */
#define WARMUP_OPS 2
/* A graph is launched this many times per trial, as all_reduce_perf -G 20 does; a decode
 * step's graph holds a hundred or more all-reduces, so a launch is amortised as widely
 * (docs/bench.md). */
#define GRAPH_REPLAYS 20
/* Above this a graph launch is noise against the transfer: one launch keeps a 64 MiB trial
 * at a few milliseconds instead of a second (measured on 2 H100s: 45 s for the whole run). */
#define GRAPH_AMORTISE_BYTES (1u << 20)
#define BARRIER_TIMEOUT_NS 200000000ull /* 200 ms: far beyond any healthy barrier */

typedef struct ar_state {
  int ranks;
  int gpu[PS_BENCH_MAX_RANKS];
  uint64_t bytes, count;
  uint64_t span; /* bytes allocated per buffer: operation i uses offset (i % steps) * bytes */
  uint64_t steps;
  bool bf16;
  bool virtual_ranks; /* ranks are buffers of one GPU: one stream, one launch */
  bool twoshot;       /* the kernel: two-shot, else one-shot */
  unsigned blocks;    /* the kernel's blocks per rank */
  CUdeviceptr in[PS_BENCH_MAX_RANKS], out[PS_BENCH_MAX_RANKS], flags[PS_BENCH_MAX_RANKS];
} ar_state;

/* Enqueues `ops` operations on the ranks' streams (or into their captures). */
typedef bool (*ar_enqueue)(bw_worker *w, const ar_state *s, int ops, bw_result *r);

/* The NCCL communicators of the last group, kept across the sizes and types of that group. */
static struct {
  int ranks;
  int gpu[PS_BENCH_MAX_RANKS];
  ncclComm_t comms[PS_BENCH_MAX_RANKS];
} nccl_group;

static int input_value(uint64_t i, int rank) { return (int)((i * 7 + (uint64_t)rank * 3) % 9) - 4; }

/* Exact for the integers these buffers hold (|v| <= 2048). */
static uint16_t int_to_f16(int v) {
  if (v == 0) return 0;
  uint16_t sign = v < 0 ? 0x8000 : 0;
  unsigned m = (unsigned)(v < 0 ? -v : v);
  int e = 31 - __builtin_clz(m);
  return (uint16_t)(sign | (unsigned)(e + 15) << 10 | ((m << (10 - e)) & 0x3FF));
}

static uint16_t int_to_bf16(int v) {
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)(u >> 16); /* exact: small integers have no bits below the top 16 */
}

static uint16_t encode(int v, bool bf16) { return bf16 ? int_to_bf16(v) : int_to_f16(v); }

/* Whether rank k drives its own stream: virtual ranks share their GPU's. */
static bool own_stream(const ar_state *s, int k) {
  for (int q = 0; q < k; q++)
    if (s->gpu[q] == s->gpu[k]) return false;
  return true;
}

static bool sync_all(bw_worker *w, const ar_state *s, bw_result *r, const char *what) {
  for (int k = 0; k < s->ranks; k++) {
    if (!own_stream(s, k)) continue;
    CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.StreamSynchronize(w->gpus[s->gpu[k]].stream);
    if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, what, rc);
  }
  return true;
}

/* Starts a trial's clock: the host's (nccl-tests' timer) or, simulated, an event on rank 0's
 * stream. */
static bool clock_start(bw_worker *w, const ar_state *s, double *t0_ms, bw_result *r) {
  if (!w->simulated) {
    *t0_ms = ps__now_ms();
    return true;
  }
  bw_gpu *g0 = &w->gpus[s->gpu[0]];
  CUresult rc = w->base.cuda.CtxSetCurrent(g0->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(g0->start, g0->stream);
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "cuEventRecord", rc);
}

/* The modelled clock: the stop event waits for every rank's stream. */
static bool events_stop(bw_worker *w, const ar_state *s, float *ms, bw_result *r) {
  bw_gpu *g0 = &w->gpus[s->gpu[0]];
  CUresult rc = CUDA_SUCCESS;
  for (int k = 1; k < s->ranks && rc == CUDA_SUCCESS; k++) {
    bw_gpu *g = &w->gpus[s->gpu[k]];
    if (!own_stream(s, k)) continue;
    rc = w->base.cuda.CtxSetCurrent(g->ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(g->mark, g->stream);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(g0->ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.StreamWaitEvent(g0->stream, g->mark, 0);
  }
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(g0->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventRecord(g0->stop, g0->stream);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventSynchronize(g0->stop);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.EventElapsedTime(ms, g0->start, g0->stop);
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "timing the all-reduce", rc);
}

/* Stops the clock once every rank's stream is done; microseconds per operation. */
static bool clock_stop(bw_worker *w, const ar_state *s, double t0_ms, int ops, double *us,
                       bw_result *r) {
  double ms = 0;
  float event_ms = 0;
  if (!w->simulated) {
    if (!sync_all(w, s, r, "timing the all-reduce")) return false;
    ms = ps__now_ms() - t0_ms;
  } else if (events_stop(w, s, &event_ms, r)) {
    ms = event_ms;
  } else {
    return false;
  }
  *us = ms * 1000.0 / ops;
  return true;
}

/* Buffers outlive a job: the sizes and types of one group reuse them, so a run of 36 jobs
 * allocates and uploads twice (once per type), not 36 times. */
static struct {
  int ranks;
  int gpu[PS_BENCH_MAX_RANKS];
  uint64_t span;
  int loaded; /* input type uploaded: 0 none, 1 fp16, 2 bf16 */
  CUdeviceptr in[PS_BENCH_MAX_RANKS], out[PS_BENCH_MAX_RANKS], flags[PS_BENCH_MAX_RANKS];
} cache;

/* Barrier slots and epochs (kernel_abi.h), then the status word in the last 16 bytes. Zeroed
 * before each job's first launch, slots and epochs together, so every rank's counters agree. */
#define FLAG_BYTES 4096
_Static_assert(PS_AR_FLAG_WORDS * 4 + 16 <= FLAG_BYTES, "flags fit");

static void cache_release(bw_worker *w) {
  for (int k = 0; k < cache.ranks; k++) {
    w->base.cuda.CtxSetCurrent(w->gpus[cache.gpu[k]].ctx);
    if (cache.in[k]) w->base.cuda.MemFree(cache.in[k]);
    if (cache.out[k]) w->base.cuda.MemFree(cache.out[k]);
    if (cache.flags[k]) w->base.cuda.MemFree(cache.flags[k]);
  }
  memset(&cache, 0, sizeof(cache));
}

/* Where operation `op` reads and writes: like nccl-tests, consecutive operations walk through a
 * span as large as the biggest message, so a small message is not timed from a warm L2. */
static uint64_t shift_of(const ar_state *s, int op) { return (uint64_t)op % s->steps * s->bytes; }

/* Input element i of rank k: periodic in 8 elements (16 bytes), so every message size and
 * offset sees the same values and one upload serves them all. */
static int input_at(uint64_t i, int k) { return input_value(i % 8, k); }

static CUresult upload_inputs(bw_worker *w, const ar_state *s) {
  uint16_t *host = malloc(s->span);
  if (!host) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult rc = CUDA_SUCCESS;
  for (int k = 0; k < s->ranks && rc == CUDA_SUCCESS; k++) {
    for (uint64_t i = 0; i < 8; i++)
      host[i] = encode(input_at(i, k), s->bf16);
    for (uint64_t done = 16; done < s->span; done *= 2) /* doubling copies of the 16 bytes */
      memcpy((char *)host + done, host, s->span - done < done ? s->span - done : done);
    rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyHtoD(cache.in[k], host, s->span);
  }
  free(host);
  return rc;
}

/* Points s at the cached buffers (allocating them for a new group), uploads the inputs for
 * s's type, clears the output a check will read and, for the one-shot kernel, the flags. */
static bool setup_buffers(bw_worker *w, ar_state *s, bool with_flags, bw_result *r) {
  CUresult rc = CUDA_SUCCESS;
  if (cache.ranks != s->ranks || cache.span < s->span ||
      memcmp(cache.gpu, s->gpu, sizeof(cache.gpu)) != 0) {
    cache_release(w);
    cache.ranks = s->ranks;
    memcpy(cache.gpu, s->gpu, sizeof(cache.gpu));
    cache.span = s->span;
    for (int k = 0; k < s->ranks && rc == CUDA_SUCCESS; k++) {
      rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
      if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&cache.in[k], s->span);
      if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&cache.out[k], s->span);
      if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemAlloc(&cache.flags[k], FLAG_BYTES);
    }
  }
  if (rc == CUDA_SUCCESS && cache.loaded != 1 + s->bf16) {
    rc = upload_inputs(w, s);
    cache.loaded = rc == CUDA_SUCCESS ? 1 + s->bf16 : 0;
  }
  for (int k = 0; k < s->ranks && rc == CUDA_SUCCESS; k++) {
    s->in[k] = cache.in[k];
    s->out[k] = cache.out[k];
    s->flags[k] = with_flags ? cache.flags[k] : 0;
    rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemsetD8(s->out[k], 0, s->bytes);
    if (rc == CUDA_SUCCESS && with_flags) rc = w->base.cuda.MemsetD8(s->flags[k], 0, FLAG_BYTES);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  }
  if (rc != CUDA_SUCCESS) cache_release(w);
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "all-reduce buffers", rc);
}

/* Every rank's output must be the exact sum of all inputs. */
static bool check_outputs(bw_worker *w, const ar_state *s, bool in_place, bw_result *r) {
  uint16_t *host = malloc(s->bytes);
  if (!host) return true; /* nothing to check with; the timing stands */
  bool ok = true;
  for (int k = 0; k < s->ranks && ok; k++) {
    CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS)
      rc = w->base.cuda.MemcpyDtoH(host, in_place ? s->in[k] : s->out[k], s->bytes);
    if (rc != CUDA_SUCCESS) {
      ok = ps__bw_fail(w, r, "reading the all-reduce result", rc);
      break;
    }
    for (uint64_t i = 0; i < s->count; i++) {
      int sum = 0;
      for (int q = 0; q < s->ranks; q++)
        sum += input_at(i, q);
      if (host[i] != encode(sum, s->bf16)) {
        r->outcome = PS_BENCH_WRONG;
        snprintf(r->reason, sizeof(r->reason),
                 "rank %d (GPU %d) element %llu is 0x%04x, the sum is %d (0x%04x)", k, s->gpu[k],
                 (unsigned long long)i, host[i], sum, encode(sum, s->bf16));
        ok = false;
        break;
      }
    }
  }
  free(host);
  return ok;
}

static bool init_state(bw_worker *w, const ps__bench_job *job, ar_state *s, bw_result *r) {
  memset(s, 0, sizeof(*s));
  s->ranks = job->ranks;
  memcpy(s->gpu, job->group, sizeof(s->gpu));
  s->bytes = job->bytes;
  s->count = job->bytes / 2;
  s->span =
      w->allreduce_span > job->bytes ? w->allreduce_span / job->bytes * job->bytes : job->bytes;
  s->steps = s->span / s->bytes;
  s->bf16 = strcmp(job->dtype, "bf16") == 0;
  if (s->ranks < 1 || s->ranks > PS_ONESHOT_MAX_RANKS || job->bytes == 0 || job->bytes % 16 ||
      (!s->bf16 && strcmp(job->dtype, "fp16") != 0)) {
    r->outcome = PS_BENCH_FAILED;
    snprintf(r->reason, sizeof(r->reason), "bad all-reduce job: %d ranks, %llu bytes, %s", s->ranks,
             (unsigned long long)job->bytes, job->dtype);
    return false;
  }
  return true;
}

/* ---- graphs and the timed loop, shared by the kernels and NCCL ------------------------- */

/* Captures `ops` operations into one graph per rank's stream (as all_reduce_perf -G does). */
static bool capture(bw_worker *w, const ar_state *s, ar_enqueue enqueue, int ops,
                    CUgraphExec *execs, bw_result *r) {
  CUresult rc = CUDA_SUCCESS;
  for (int k = 0; k < s->ranks && rc == CUDA_SUCCESS; k++) {
    if (!own_stream(s, k)) continue;
    rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS)
      rc = w->base.cuda.StreamBeginCapture(w->gpus[s->gpu[k]].stream,
                                           CU_STREAM_CAPTURE_MODE_RELAXED);
  }
  if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "cuStreamBeginCapture", rc);
  bool queued = enqueue(w, s, ops, r);
  for (int k = 0; k < s->ranks; k++) {
    if (!own_stream(s, k)) continue;
    CUgraph graph = NULL;
    CUresult end = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (end == CUDA_SUCCESS) end = w->base.cuda.StreamEndCapture(w->gpus[s->gpu[k]].stream, &graph);
    if (end == CUDA_SUCCESS && queued) end = w->base.cuda.GraphInstantiate(&execs[k], graph, 0);
    if (graph) w->base.cuda.GraphDestroy(graph);
    if (end != CUDA_SUCCESS && rc == CUDA_SUCCESS) rc = end;
  }
  if (!queued) return false;
  return rc == CUDA_SUCCESS || ps__bw_fail(w, r, "capturing the all-reduce in a CUDA graph", rc);
}

static bool launch_graphs(bw_worker *w, const ar_state *s, CUgraphExec *execs, bw_result *r) {
  for (int k = 0; k < s->ranks; k++) {
    if (!execs[k]) continue;
    CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS) rc = w->base.cuda.GraphLaunch(execs[k], w->gpus[s->gpu[k]].stream);
    if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "cuGraphLaunch", rc);
  }
  return true;
}

/* Warm-up, then job->trials timings of job->iters operations (eager) or of GRAPH_REPLAYS
 * launches of a graph holding them (one launch above GRAPH_AMORTISE_BYTES). */
static bool timed(bw_worker *w, const ps__bench_job *job, const ar_state *s, ar_enqueue enqueue,
                  bw_result *r) {
  CUgraphExec execs[PS_BENCH_MAX_RANKS] = {0};
  bool ok = enqueue(w, s, WARMUP_OPS, r) && sync_all(w, s, r, "all-reduce warm-up");
  if (ok && job->graph)
    ok = capture(w, s, enqueue, job->iters, execs, r) && launch_graphs(w, s, execs, r) &&
         sync_all(w, s, r, "graph warm-up");
  int replays = !job->graph ? 1 : job->bytes <= GRAPH_AMORTISE_BYTES ? GRAPH_REPLAYS : 1;
  for (int t = 0; ok && t < job->trials && t < (int)PS_ARRAY_LEN(r->us); t++) {
    double t0 = 0;
    ok = clock_start(w, s, &t0, r);
    for (int k = 0; ok && k < replays; k++)
      ok = job->graph ? launch_graphs(w, s, execs, r) : enqueue(w, s, job->iters, r);
    if (ok) ok = clock_stop(w, s, t0, job->iters * replays, &r->us[r->samples], r);
    if (ok) r->samples++;
  }
  for (int k = 0; k < s->ranks; k++)
    if (execs[k]) w->base.cuda.GraphExecDestroy(execs[k]);
  return ok;
}

/* ---- one-shot and two-shot kernels ----------------------------------------------------- */

/* vLLM's choice (custom_all_reduce.cuh): one-shot for 2 ranks at every size and for 4 (8)
 * ranks below 512 (256) KiB, two-shot above, where moving 2/N of the data beats moving all. */
static bool use_twoshot(int ranks, uint64_t bytes) {
  if (ranks <= 2) return false;
  return bytes >= (ranks <= 4 ? 512u << 10 : 256u << 10);
}

/* As many blocks as the message needs, at most 36 (vLLM's); virtual ranks spin on each other
 * inside one launch, so all their blocks must be resident at once: no more blocks in all than
 * multiprocessors. */
static unsigned kernel_blocks(const bw_worker *w, const ar_state *s) {
  int sms = w->gpus[s->gpu[0]].sms > 0 ? w->gpus[s->gpu[0]].sms : 16;
  uint64_t vecs = s->count / 8, per_rank = s->twoshot ? (vecs + s->ranks - 1) / s->ranks : vecs;
  uint64_t needed = (per_rank + PS_ONESHOT_THREADS - 1) / PS_ONESHOT_THREADS;
  int cap = s->virtual_ranks ? sms / s->ranks : sms;
  if (cap > PS_ONESHOT_MAX_BLOCKS) cap = PS_ONESHOT_MAX_BLOCKS;
  if (needed < (uint64_t)cap) cap = (int)needed;
  return cap < 1 ? 1u : (unsigned)cap;
}

static CUresult launch_kernel(bw_worker *w, const ar_state *s, int op) {
  ps_oneshot_args args;
  memset(&args, 0, sizeof(args));
  for (int k = 0; k < s->ranks; k++) {
    args.in[k] = s->in[k] + shift_of(s, op);
    args.out[k] = s->out[k] + shift_of(s, op);
    args.flags[k] = s->flags[k];
  }
  args.count = s->count;
  args.timeout_ns = BARRIER_TIMEOUT_NS;
  args.ranks = (unsigned)s->ranks;
  int launches = s->virtual_ranks ? 1 : s->ranks;
  CUresult rc = CUDA_SUCCESS;
  for (int k = 0; k < launches && rc == CUDA_SUCCESS; k++) {
    bw_gpu *g = &w->gpus[s->gpu[k]];
    CUfunction f = s->twoshot ? (s->bf16 ? g->twoshot_bf16 : g->twoshot_f16)
                              : (s->bf16 ? g->oneshot_bf16 : g->oneshot_f16);
    args.rank_base = (unsigned)k;
    args.status = s->flags[k] + FLAG_BYTES - 16;
    void *params[] = {&args};
    rc = w->base.cuda.CtxSetCurrent(g->ctx);
    if (rc == CUDA_SUCCESS)
      rc = w->base.cuda.LaunchKernel(f, s->blocks, s->virtual_ranks ? (unsigned)s->ranks : 1u, 1,
                                     PS_ONESHOT_THREADS, 1, 1, 0, g->stream, params, NULL);
  }
  return rc;
}

static bool kernel_enqueue(bw_worker *w, const ar_state *s, int ops, bw_result *r) {
  for (int i = 0; i < ops; i++) {
    CUresult rc = launch_kernel(w, s, i);
    if (rc != CUDA_SUCCESS)
      return ps__bw_fail(
          w, r, s->twoshot ? "launching the two-shot kernel" : "launching the one-shot kernel", rc);
  }
  return true;
}

static bool barrier_status_ok(bw_worker *w, const ar_state *s, bw_result *r) {
  for (int k = 0; k < s->ranks; k++) {
    unsigned status = 0;
    CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[s->gpu[k]].ctx);
    if (rc == CUDA_SUCCESS)
      rc = w->base.cuda.MemcpyDtoH(&status, s->flags[k] + FLAG_BYTES - 16, sizeof(status));
    if (rc != CUDA_SUCCESS) return ps__bw_fail(w, r, "reading the barrier status", rc);
    if (status) {
      r->outcome = PS_BENCH_FAILED;
      snprintf(r->reason, sizeof(r->reason),
               "rank %d (GPU %d): a peer's barrier signal never arrived within %llu ms (peer "
               "writes lost?)",
               k, s->gpu[k], BARRIER_TIMEOUT_NS / 1000000ull);
      return false;
    }
  }
  return true;
}

static bool kernel_peers(bw_worker *w, const ar_state *s, bw_result *r) {
  for (int i = 0; i < s->ranks; i++)
    for (int j = 0; j < s->ranks; j++)
      if (s->gpu[i] != s->gpu[j] && !ps__bw_set_peer(w, s->gpu[i], s->gpu[j], true, r))
        return false;
  return true;
}

/* The custom all-reduce: one-shot, or two-shot for large messages (use_twoshot). */
void ps__bw_run_oneshot(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  ar_state s;
  if (!init_state(w, job, &s, r)) return;
  if (!w->kernels) {
    r->outcome = PS_BENCH_WAIVED;
    ps__strlcpy(r->reason, "built without CUDA kernels (no nvcc at build time)", sizeof(r->reason));
    return;
  }
  if (!job->virtual_ranks && !kernel_peers(w, &s, r)) return;
  s.virtual_ranks = job->virtual_ranks;
  s.twoshot = use_twoshot(s.ranks, s.bytes);
  s.blocks = kernel_blocks(w, &s);
  if (!setup_buffers(w, &s, true, r)) return;
  if (timed(w, job, &s, kernel_enqueue, r) && barrier_status_ok(w, &s, r))
    check_outputs(w, &s, false, r);
}

/* ---- NCCL ----------------------------------------------------------------------------- */

static void release_comms(bw_worker *w) {
  for (int k = 0; k < nccl_group.ranks; k++)
    if (nccl_group.comms[k]) w->nccl.CommDestroy(nccl_group.comms[k]);
  memset(&nccl_group, 0, sizeof(nccl_group));
}

void ps__bw_release_allreduce(bw_worker *w) {
  cache_release(w);
  release_comms(w);
}

static bool nccl_fail(bw_worker *w, bw_result *r, const char *what, ncclResult_t rc) {
  r->outcome = PS_BENCH_FAILED;
  snprintf(r->reason, sizeof(r->reason), "%s: %s", what, ps__nccl_error(&w->nccl, rc));
  return false;
}

static bool nccl_comms(bw_worker *w, const ar_state *s, bw_result *r) {
  if (nccl_group.ranks == s->ranks && memcmp(nccl_group.gpu, s->gpu, sizeof(s->gpu)) == 0)
    return true;
  release_comms(w);
  int devs[PS_BENCH_MAX_RANKS];
  for (int k = 0; k < s->ranks; k++) {
    devs[k] = w->base.gpus[s->gpu[k]].ordinal;
    for (int q = 0; q < k; q++)
      if (s->gpu[q] == s->gpu[k]) {
        r->outcome = PS_BENCH_WAIVED;
        ps__strlcpy(r->reason, "NCCL needs one GPU per rank", sizeof(r->reason));
        return false;
      }
  }
  ncclResult_t rc = w->nccl.CommInitAll(nccl_group.comms, s->ranks, devs);
  if (rc != ncclSuccess) return nccl_fail(w, r, "ncclCommInitAll", rc);
  nccl_group.ranks = s->ranks;
  memcpy(nccl_group.gpu, s->gpu, sizeof(s->gpu));
  return true;
}

/* One group call per operation, all ranks in it, as all_reduce_perf -g N drives N GPUs; one
 * rank alone without a group, as it does too (a group costs about 0.5 us per operation). */
static bool nccl_enqueue(bw_worker *w, const ar_state *s, int ops, bw_result *r) {
  bool group = s->ranks > 1;
  for (int i = 0; i < ops; i++) {
    ncclResult_t rc = group ? w->nccl.GroupStart() : ncclSuccess;
    uint64_t shift = shift_of(s, i);
    for (int k = 0; k < s->ranks && rc == ncclSuccess; k++)
      rc = w->nccl.AllReduce((const void *)(uintptr_t)(s->in[k] + shift),
                             (void *)(uintptr_t)(s->out[k] + shift), s->count,
                             s->bf16 ? ncclBfloat16 : ncclFloat16, ncclSum, nccl_group.comms[k],
                             w->gpus[s->gpu[k]].stream);
    ncclResult_t end = group ? w->nccl.GroupEnd() : ncclSuccess;
    if (rc == ncclSuccess) rc = end;
    if (rc != ncclSuccess) return nccl_fail(w, r, "ncclAllReduce", rc);
  }
  return true;
}

void ps__bw_run_nccl(bw_worker *w, const ps__bench_job *job, bw_result *r) {
  ar_state s;
  if (!init_state(w, job, &s, r)) return;
  if (!w->have_nccl) {
    r->outcome = PS_BENCH_WAIVED;
    ps__strlcpy(r->reason, "NCCL (libnccl.so.2) is not installed or could not be loaded",
                sizeof(r->reason));
    return;
  }
  if (!nccl_comms(w, &s, r)) return;
  if (setup_buffers(w, &s, false, r) && timed(w, job, &s, nccl_enqueue, r))
    check_outputs(w, &s, false, r);
}
