/* Which measurements `peerscope bench` makes: the job list for the selected GPUs, the tests
 * asked for and --quick. Pure: no driver, so tests can check the list. */
#include <string.h>

#include "bench/bench_internal.h"
#include "bench/bench_plan.h"
#include "core/internal.h"

static const uint64_t default_sizes[] = {1u << 10, 4u << 10, 16u << 10, 64u << 10, 256u << 10,
                                         1u << 20, 4u << 20, 16u << 20, 64u << 20};
static const uint64_t quick_sizes[] = {4u << 10, 64u << 10, 256u << 10, 1u << 20, 16u << 20};
/* A fixture runs on the fake drivers, which copy and add on the CPU: small buffers keep it to
 * seconds, and its timings are modelled from the fixture's links whatever the size. */
static const uint64_t simulated_sizes[] = {4u << 10, 64u << 10, 256u << 10, 1u << 20};
#define STAGED_MAX_BYTES (64ull << 20)
static const uint64_t latency_sizes[] = {4, 64, 1024, 8192, 65536};
static const uint64_t quick_latency_sizes[] = {4, 65536};

const char *const ps__bench_envs[PS_BENCH_ENV_COUNT] = {"default", "NCCL_P2P_DISABLE=1",
                                                        "NCCL_P2P_LEVEL=NVL"};

static ps__bench_planned *add(ps__bench_plan *p, ps_bench_kind kind, int a, int b) {
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    ps__bench_planned *grown = ps__realloc(p->jobs, cap * sizeof(*grown));
    if (!grown) {
      p->oom = true;
      return NULL;
    }
    p->jobs = grown;
    p->cap = cap;
  }
  ps__bench_planned *j = &p->jobs[p->count++];
  memset(j, 0, sizeof(*j));
  j->job.kind = kind;
  j->job.a = a;
  j->job.b = b;
  j->job.bytes = p->copy_bytes;
  j->job.iters = p->iters;
  j->job.trials = p->trials;
  return j;
}

static void waive(ps__bench_plan *p, ps_bench_kind kind, const char *reason) {
  ps__bench_planned *j = add(p, kind, -1, -1);
  if (!j) return;
  j->waived = true;
  ps__strlcpy(j->reason, reason, sizeof(j->reason));
}

static void plan_copies(ps__bench_plan *p, const int *gpus, int n) {
  static const ps_bench_kind per_gpu[] = {PS_BENCH_LOCAL_CE, PS_BENCH_LOCAL_SM, PS_BENCH_H2D,
                                          PS_BENCH_D2H};
  for (int i = 0; i < n; i++)
    for (size_t k = 0; k < PS_ARRAY_LEN(per_gpu); k++)
      add(p, per_gpu[k], gpus[i], -1);
  if (n < 2) {
    waive(p, PS_BENCH_COPY_CE, "one GPU selected: peer copies need two");
    return;
  }
  /* P2P off is the staged path through host memory, an order of magnitude slower: fewer
   * copies keep a trial in the same few milliseconds. Its copies stay at most 64 MiB, the
   * size measured before the 512 MiB default: the driver's staging may need the host while
   * the spin latch holds the stream, not tried with larger copies. */
  int staged_iters = p->iters / 4 > 2 ? p->iters / 4 : 2;
  uint64_t staged_bytes = p->copy_bytes < STAGED_MAX_BYTES ? p->copy_bytes : STAGED_MAX_BYTES;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < n; k++) {
      if (i == k) continue;
      int a = gpus[i], b = gpus[k];
      ps__bench_planned *j;
      if ((j = add(p, PS_BENCH_COPY_CE, a, b))) j->job.p2p = true;
      if ((j = add(p, PS_BENCH_COPY_CE, a, b))) {
        j->job.iters = staged_iters;
        j->job.bytes = staged_bytes;
      }
      if ((j = add(p, PS_BENCH_COPY_SM_READ, a, b))) j->job.p2p = true;
      if ((j = add(p, PS_BENCH_COPY_SM_WRITE, a, b))) j->job.p2p = true;
      if (a > b) continue; /* both directions at once: once per unordered pair */
      if ((j = add(p, PS_BENCH_COPY_CE, a, b))) j->job.p2p = j->job.bidirectional = true;
      if ((j = add(p, PS_BENCH_COPY_CE, a, b))) {
        j->job.bidirectional = true;
        j->job.iters = staged_iters;
        j->job.bytes = staged_bytes;
      }
      if (!p->quick && (j = add(p, PS_BENCH_COPY_SM_WRITE, a, b)))
        j->job.p2p = j->job.bidirectional = true;
    }
}

static void plan_latency(ps__bench_plan *p, const int *gpus, int n) {
  const uint64_t *sizes = p->quick ? quick_latency_sizes : latency_sizes;
  size_t size_count = p->quick ? PS_ARRAY_LEN(quick_latency_sizes) : PS_ARRAY_LEN(latency_sizes);
  int chase_steps = p->quick ? 20000 : 100000; /* passes through the 2 MiB chain: ~6 */
  ps__bench_planned *j;
  for (int i = 0; i < n; i++)
    if ((j = add(p, PS_BENCH_LATENCY_CHASE, gpus[i], gpus[i]))) j->job.iters = chase_steps;
  if (n < 2) {
    waive(p, PS_BENCH_LATENCY_WRITE, "one GPU selected: peer latency needs two");
    return;
  }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < n; k++) {
      if (i == k) continue;
      for (size_t s = 0; s < size_count; s++)
        for (int on = 1; on >= 0; on--)
          if ((j = add(p, PS_BENCH_LATENCY_WRITE, gpus[i], gpus[k]))) {
            j->job.bytes = sizes[s];
            j->job.p2p = on;
            j->job.iters = 100;
          }
      if ((j = add(p, PS_BENCH_LATENCY_CHASE, gpus[i], gpus[k]))) {
        j->job.p2p = true;
        j->job.iters = chase_steps;
      }
    }
}

/* Virtual ranks in a graph: what the graph saves is launch cost, the same for both types and
 * noise beyond a few MiB, while a job's set-up and check grow with ranks x size (the default
 * bench on one GPU stays under 30 s): one type, messages up to this size. */
#define VIRTUAL_GRAPH_MAX_BYTES (4u << 20)

static void add_allreduce(ps__bench_plan *p, ps_bench_kind kind, const int *group, int ranks,
                          bool virtual_ranks, int env, bool graph) {
  static const char *const dtypes[] = {"fp16", "bf16"};
  bool lean = virtual_ranks && graph;
  for (size_t d = p->quick || lean ? 1 : 0; d < PS_ARRAY_LEN(dtypes); d++)
    for (int s = 0; s < p->size_count; s++) {
      if (lean && p->sizes[s] > VIRTUAL_GRAPH_MAX_BYTES) continue;
      ps__bench_planned *j = add(p, kind, -1, -1);
      if (!j) return;
      j->env = env;
      j->job.graph = graph;
      j->job.virtual_ranks = virtual_ranks;
      j->job.p2p = kind == PS_BENCH_ALLREDUCE_ONESHOT || env != 1;
      j->job.bytes = p->sizes[s];
      j->job.iters = p->allreduce_iters;
      ps__strlcpy(j->job.dtype, dtypes[d], sizeof(j->job.dtype));
      j->job.ranks = ranks;
      memcpy(j->job.group, group, (size_t)ranks * sizeof(int));
    }
}

/* The TP groups the planner would consider: 2, 4, 8 ... GPUs that can all reach each other
 * (the best such group), or the first GPUs when none can (NCCL still runs, without P2P). */
static int tp_group(const ps__bench_plan *p, const ps_report *r, const int *gpus, int n, int tp,
                    int *out) {
  if (ps_best_group(r, gpus, n, tp, out, PS_BENCH_MAX_RANKS) == tp) return tp;
  memcpy(out, gpus, (size_t)tp * sizeof(int));
  (void)p;
  return tp;
}

static void plan_allreduce(ps__bench_plan *p, const ps_report *r, const int *gpus, int n) {
  int group[PS_BENCH_MAX_RANKS];
  if (n == 1) /* NCCL on one rank: its fixed cost, and whether it loads at all */
    for (int graph = 0; graph <= !p->quick; graph++)
      add_allreduce(p, PS_BENCH_ALLREDUCE_NCCL, gpus, 1, false, 0, graph);
  for (int tp = 2; tp <= n && tp <= PS_BENCH_MAX_RANKS; tp *= 2) {
    tp_group(p, r, gpus, n, tp, group);
    for (int graph = 0; graph <= !p->quick; graph++) /* eager, and in a graph as vLLM replays it */
      add_allreduce(p, PS_BENCH_ALLREDUCE_ONESHOT, group, tp, false, 0, graph);
    for (int env = 0; env < PS_BENCH_ENV_COUNT; env++)
      for (int graph = 0; graph <= !p->quick; graph++)
        add_allreduce(p, PS_BENCH_ALLREDUCE_NCCL, group, tp, false, env, graph);
  }
  /* N ranks as N buffers of one GPU: the kernel's correctness and its HBM-bound speed on any
   * machine, and its only test on a one-GPU machine. */
  if (n == 1 || !p->quick)
    for (int ranks = 2; ranks <= PS_BENCH_MAX_RANKS; ranks *= 2) {
      for (int k = 0; k < ranks; k++)
        group[k] = gpus[0];
      for (int graph = 0; graph <= !p->quick; graph++)
        add_allreduce(p, PS_BENCH_ALLREDUCE_ONESHOT, group, ranks, true, 0, graph);
    }
}

void ps__bench_plan_make(ps__bench_plan *p, const ps_report *r, const int *gpus, int n,
                         unsigned tests) {
  if (tests & PS_BENCH_TEST_COPY) plan_copies(p, gpus, n);
  if (tests & PS_BENCH_TEST_LATENCY) plan_latency(p, gpus, n);
  if (tests & PS_BENCH_TEST_ALLREDUCE) plan_allreduce(p, r, gpus, n);
}

void ps__bench_plan_defaults(ps__bench_plan *p, const ps_bench_opts *o, bool simulated) {
  memset(p, 0, sizeof(*p));
  p->quick = o->quick;
  /* nvbandwidth's default buffer: at 512 MiB a copy lasts long enough (0.25 ms even within
   * one H200) that the gap between two queued copies is below a part in a thousand. */
  p->copy_bytes = o->copy_bytes ? o->copy_bytes : (o->quick ? 32u << 20 : 512u << 20);
  if (simulated && !o->copy_bytes) p->copy_bytes = 1u << 20;
  p->iters = o->iters > 0 ? o->iters : (o->quick ? 8 : 16);
  p->trials = o->trials > 0 ? o->trials : 3;
  p->allreduce_iters = o->iters > 0 ? o->iters : 20;
  if (o->sizes && o->size_count > 0) {
    p->sizes = o->sizes;
    p->size_count = o->size_count;
  } else if (simulated) {
    p->sizes = simulated_sizes;
    p->size_count = (int)PS_ARRAY_LEN(simulated_sizes);
  } else {
    p->sizes = o->quick ? quick_sizes : default_sizes;
    p->size_count = o->quick ? (int)PS_ARRAY_LEN(quick_sizes) : (int)PS_ARRAY_LEN(default_sizes);
  }
}
