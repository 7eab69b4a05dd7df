/* Fake libcuda.so.1, benchmark half: streams, events, asynchronous copies, pinned host memory,
 * the benchmark kernels of src/worker/kernels/kernel_abi.h emulated on the host, stream capture
 * and graphs, and the fake-only hooks of fake_cuda_internal.h.
 *
 * Work runs synchronously when it is issued (or replayed); what is modelled is its time. Each
 * stream has a clock in virtual microseconds and so has the host: an operation starts at
 * max(stream clock, host clock) and ends its modelled duration later; synchronising on a
 * stream, an event or a context moves the host clock up to what it waited for. Events store
 * their stream's clock, so cuEventElapsedTime returns modelled time, the same in every run.
 * Not modelled: the legacy default stream's implicit ordering with other streams, and links
 * shared by concurrent transfers (two streams each advance their own clock).
 *
 * Durations (1 GB/s = 1000 bytes/us), each with a deterministic jitter of +-1% drawn from an
 * operation counter so that statistics have a spread:
 *   copy of n bytes     latency + n / bandwidth, the path given by the owners of both ends
 *     same GPU          1500 GB/s, 2 us
 *     host <-> GPU      the GPU's PCIe bandwidth (pageable host memory: half of it), 5 us
 *     GPU <-> GPU with peer access enabled (in either direction):
 *       NVLink          links x per-link GB/s per direction (NVML version 1: 20; 2-6, i.e.
 *                       NVLink 2.0 to 4.0: 25; 7: 50) x 0.85 efficiency, 2.5 us
 *       PCIe            min of both GPUs' PCIe bandwidth (x16: gen3 12, gen4 24, gen5 50 GB/s,
 *                       linear in the width; unknown: gen3 x16), x 0.9 through a host bridge
 *                       (PHB, NODE), x 0.8 across sockets (SYS), 10 us
 *     GPU <-> GPU without peer access (staged through host memory): min PCIe / 2, 15 us
 *   ps_spin             2 us when its flag is already set; otherwise its stream is held (a
 *                       latch) until the host is seen to have set the flag (any later call
 *                       into the fake, before it waits on the stream): events behind a held
 *                       latch are not complete. A host that waits on a stream still held
 *                       meets the kernel's timeout: everything behind the spin runs
 *                       timeout_ns later (how a missing release shows up in the timings).
 *                       Work behind a latch still runs at once (data), only its time waits.
 *   ps_copy             1.05 x the copy above, from the kernel's GPU to the slower of its ends
 *   ps_chase            2 us + steps x load latency (local 0.5, NVLink 0.8, PCIe or host 1.5 us)
 *   ps_oneshot_*        5 us + grid_y x ranks x count x 2 bytes / slowest link to a buffer
 *   ps_twoshot_*        7.5 us (three barriers) + grid_y x 2 x count x 2 bytes / slowest link
 *   (both write the all-reduce's result, and count the launch in the flags as the kernels
 *   do: each rank's per-block epoch goes up by one and is written into its barrier slots on
 *   every peer, so a graph replayed N times leaves the epochs at N; the barriers never wait)
 *   host op             what the caller says (the fake NCCL)
 *   graph launch        2 us, then each op 2 us shorter than on a stream (but at least a
 *                       quarter of it): the launch overhead graphs save */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/kernels/kernel_abi.h"
#include "fake_cuda_internal.h"

#define LAUNCH_US 2.0
#define HOST_PINNED (-2)   /* owner of cuMemHostAlloc memory */
#define HOST_PAGEABLE (-3) /* owner of other host memory */
#define WANT_ANY (-1)      /* device or pinned memory (unified addressing) */
#define WANT_HOST (-4)     /* host memory, pinned or not */
#define STREAM_LEGACY ((CUstream)(uintptr_t)1)
#define STREAM_PER_THREAD ((CUstream)(uintptr_t)2)

enum {
  K_SPIN,
  K_COPY,
  K_CHASE,
  K_ONESHOT_F16,
  K_ONESHOT_BF16,
  K_TWOSHOT_F16,
  K_TWOSHOT_BF16,
  K_COUNT
};
static const char *const kernel_names[K_COUNT] = {
    PS_KERNEL_SPIN,         PS_KERNEL_COPY,        PS_KERNEL_CHASE,       PS_KERNEL_ONESHOT_F16,
    PS_KERNEL_ONESHOT_BF16, PS_KERNEL_TWOSHOT_F16, PS_KERNEL_TWOSHOT_BF16};

/* A kernel's parameters, copied at launch like the real driver does. */
typedef union kernel_args {
  struct {
    CUdeviceptr flag;
    uint64_t timeout_ns;
  } spin;
  struct {
    CUdeviceptr src, dst;
    uint64_t count16;
  } copy;
  struct {
    CUdeviceptr start;
    uint32_t steps;
    CUdeviceptr sink;
  } chase;
  ps_oneshot_args oneshot;
} kernel_args;

typedef enum op_kind { OP_COPY, OP_MEMSET, OP_KERNEL, OP_HOST, OP_RECORD, OP_WAIT } op_kind;

typedef struct copy_op {
  CUdeviceptr dst, src;
  size_t bytes;
  int want_dst, want_src; /* a fixture GPU, WANT_ANY or WANT_HOST */
} copy_op;

typedef struct kernel_op {
  int kernel;
  int gpu; /* where it runs: the launch stream's */
  unsigned grid_x, grid_y;
  kernel_args arg;
} kernel_op;

/* One unit of stream work, executed at once or recorded into a graph. */
typedef struct op {
  op_kind kind;
  union {
    copy_op copy;
    struct {
      CUdeviceptr dst;
      size_t bytes;
      unsigned char value;
    } memset;
    kernel_op kernel;
    struct {
      void (*fn)(void *);
      void *arg;
      double us;
    } host;
    CUevent event;
  } u;
} op;

struct CUgraph_st {
  op *ops;
  size_t count, cap;
  bool open;        /* still being captured: not a handle the caller has */
  bool invalidated; /* an error during capture */
  struct CUgraph_st *next;
};

struct CUgraphExec_st {
  op *ops;
  size_t count;
  struct CUgraphExec_st *next;
};

struct CUstream_st {
  struct CUctx_st *ctx;
  double clock_us;
  CUdeviceptr latch_flag;     /* held by a ps_spin on this int (0: not held) */
  double latch_timeout_us;    /* the spin's timeout */
  struct CUgraph_st *capture; /* the graph ops go into, or NULL */
  bool capture_origin;        /* cuStreamBeginCapture was called on it */
  bool is_default;
  struct CUstream_st *next;
};

struct CUevent_st {
  struct CUctx_st *ctx;
  unsigned flags;
  bool recorded;
  double t_us;
  struct CUstream_st *latch;  /* recorded behind this stream's held spin: not complete yet */
  struct CUgraph_st *capture; /* recorded inside this capture */
  struct CUevent_st *next;
};

struct CUfunc_st {
  struct CUmod_st *module;
  int kernel;
};

struct CUmod_st {
  struct CUctx_st *ctx;
  struct CUfunc_st fn[K_COUNT];
  struct CUmod_st *next;
};

typedef struct host_block {
  uintptr_t base;
  size_t size;
  struct host_block *next;
} host_block;

/* The modelled path of a transfer. */
typedef struct path {
  double gbps, latency_us, load_us; /* load_us: one dependent load (ps_chase) */
} path;

static struct CUstream_st *streams;
static struct CUstream_st default_streams[PS_FIX_MAX_GPUS];
static struct CUevent_st *events;
static struct CUmod_st *modules;
static host_block *host_blocks;
static struct CUgraph_st *graphs;
static struct CUgraphExec_st *execs;
static double host_us;
static unsigned long op_counter;

PS_FAKE_EXPORT int ps_fake_simulated = 1;

/* ---- lists ----------------------------------------------------------------------------- */

/* out = the node of the list at head that equals h, or NULL. */
#define LIST_FIND(head, h, out) for ((out) = (head); (out) && (out) != (h); (out) = (out)->next)

/* Unlinks every node for which cond (on var) holds and runs release on it. */
#define LIST_DROP_IF(head, var, cond, release)                                                     \
  for (__typeof__(head) *pp_ = &(head), var; (var = *pp_) != NULL;)                                \
    if (cond) {                                                                                    \
      *pp_ = var->next;                                                                            \
      release;                                                                                     \
    } else                                                                                         \
      pp_ = &var->next

static void graph_free(struct CUgraph_st *g);

static void stream_free(struct CUstream_st *s) {
  for (struct CUevent_st *e = events; e; e = e->next)
    if (e->latch == s) e->latch = NULL;
  if (s->capture && s->capture_origin) graph_free(s->capture);
  free(s);
}

static void host_block_free(host_block *b) {
  free((void *)b->base);
  free(b);
}

static void exec_free(struct CUgraphExec_st *x) {
  free(x->ops);
  free(x);
}

/* Stops every stream and event that records into g. */
static void detach_capture(const struct CUgraph_st *g) {
  for (struct CUstream_st *s = streams; s; s = s->next)
    if (s->capture == g) s->capture = NULL, s->capture_origin = false;
  for (struct CUevent_st *e = events; e; e = e->next)
    if (e->capture == g) e->capture = NULL;
}

static void graph_free(struct CUgraph_st *g) {
  detach_capture(g);
  LIST_DROP_IF(graphs, x, x == g, (void)0);
  free(g->ops);
  free(g);
}

void ps__fake_bench_reset(void) {
  LIST_DROP_IF(streams, s, true, free(s));
  LIST_DROP_IF(events, e, true, free(e));
  LIST_DROP_IF(modules, m, true, free(m));
  LIST_DROP_IF(host_blocks, b, true, host_block_free(b));
  LIST_DROP_IF(graphs, g, true, (free(g->ops), free(g)));
  LIST_DROP_IF(execs, x, true, exec_free(x));
  memset(default_streams, 0, sizeof(default_streams));
  host_us = 0;
  op_counter = 0;
}

void ps__fake_bench_context_gone(int gpu) {
  const struct CUctx_st *ctx = ps__cuda_context(gpu);
  LIST_DROP_IF(streams, s, s->ctx == ctx, stream_free(s));
  LIST_DROP_IF(events, e, e->ctx == ctx, free(e));
  LIST_DROP_IF(modules, m, m->ctx == ctx, free(m));
  memset(&default_streams[gpu], 0, sizeof(default_streams[gpu]));
}

/* ---- clocks and the time model ---------------------------------------------------------- */

static double dmax(double a, double b) { return a > b ? a : b; }
static double dmin(double a, double b) { return a < b ? a : b; }

static void host_wait(double t_us) { host_us = dmax(host_us, t_us); }

/* ---- the ps_spin latch ------------------------------------------------------------------- */

static int latch_flag_value(const struct CUstream_st *s) {
  int v = 0;
  memcpy(&v, (const void *)(uintptr_t)s->latch_flag, sizeof(v));
  return v;
}

/* Ends s's latch; timed_out: the spin gave up, so all behind it happened timeout later. */
static void latch_end(struct CUstream_st *s, bool timed_out) {
  double shift = timed_out ? s->latch_timeout_us : 0;
  for (struct CUevent_st *e = events; e; e = e->next)
    if (e->latch == s) {
      e->t_us += shift;
      e->latch = NULL;
    }
  s->clock_us += shift;
  s->latch_flag = 0;
}

/* What the spins see now: the latches whose flag the host has set let go. */
static void latches_observe(void) {
  for (struct CUstream_st *s = streams; s; s = s->next)
    if (s->latch_flag && latch_flag_value(s)) latch_end(s, false);
  for (int g = 0; g < PS_FIX_MAX_GPUS; g++)
    if (default_streams[g].latch_flag && latch_flag_value(&default_streams[g]))
      latch_end(&default_streams[g], false);
}

/* The host blocks on s: a latch still held lasts until the spin's timeout. */
static void latch_wait(struct CUstream_st *s) {
  latches_observe();
  if (s && s->latch_flag) latch_end(s, true);
}

/* A ps_spin launched on s: holds s unless its flag is set already. */
static void latch_begin(struct CUstream_st *s, const kernel_op *k) {
  int v = 0;
  memcpy(&v, (const void *)(uintptr_t)k->arg.spin.flag, sizeof(v));
  if (v) return;
  s->latch_flag = k->arg.spin.flag;
  s->latch_timeout_us = (double)k->arg.spin.timeout_ns / 1000.0;
}

void ps__fake_bench_sync_context(const struct CUctx_st *ctx) {
  for (struct CUstream_st *s = streams; s; s = s->next)
    if (s->ctx == ctx) {
      latch_wait(s);
      host_wait(s->clock_us);
    }
  latch_wait(&default_streams[ctx->gpu]);
  host_wait(default_streams[ctx->gpu].clock_us);
}

/* +-1%, from a multiplicative hash of the operation counter. */
static double jitter(double us) {
  uint32_t h = (uint32_t)(++op_counter * 2654435761u);
  return us * (1.0 + ((double)(h >> 16) / 65535.0 - 0.5) * 0.02);
}

static double transfer_us(path p, size_t bytes) { return p.latency_us + bytes / (p.gbps * 1e3); }

static double pcie_gbps(const ps_fix_gpu *g) {
  static const double x16[8] = {12, 3, 6, 12, 24, 50, 100, 200}; /* by gen; 0 = unknown */
  int gen = g->pcie_gen >= 1 && g->pcie_gen <= 7 ? g->pcie_gen : 0;
  return x16[gen] * (g->pcie_width > 0 ? g->pcie_width : 16) / 16.0;
}

static double nvlink_gbps(int nvml_version) {
  if (nvml_version == 1) return 20;
  return nvml_version >= 7 ? 50 : 25;
}

static double min_pcie(const ps_fixture *f, int a, int b) {
  return dmin(pcie_gbps(&f->gpus[a]), pcie_gbps(&f->gpus[b]));
}

static path local_path(void) { return (path){1500, 2.0, 0.5}; }

static path host_path(const ps_fixture *f, int gpu, bool pageable) {
  return (path){pcie_gbps(&f->gpus[gpu]) * (pageable ? 0.5 : 1.0), 5.0, 1.5};
}

/* The direct link: NVLink, else PCIe P2P. */
static path peer_path(const ps_fixture *f, int a, int b) {
  const ps_fix_pair *p = ps__fixture_pair(f, a, b);
  int up = ps__fake_nvlinks_up(f, a, b); /* links down carry nothing; all down: PCIe */
  if (up > 0) return (path){up * nvlink_gbps(p->nvlink_version) * 0.85, 2.5, 0.8};
  ps_fix_link pcie = p->link == PS_FIX_LINK_NV ? p->pcie : p->link;
  double level = pcie == PS_FIX_LINK_SYS                               ? 0.8
                 : pcie == PS_FIX_LINK_PHB || pcie == PS_FIX_LINK_NODE ? 0.9
                                                                       : 1.0;
  return (path){min_pcie(f, a, b) * level, 10.0, 1.5};
}

static path staged_path(const ps_fixture *f, int a, int b) {
  return (path){min_pcie(f, a, b) / 2, 15.0, 1.5};
}

static bool peer_enabled(int a, int b) {
  return ps__cuda_context(a)->peer[b] || ps__cuda_context(b)->peer[a];
}

/* A copy engine's path between two owners (fixture GPUs or HOST_*). */
static path copy_path(const ps_fixture *f, int src, int dst) {
  if (src < 0 && dst < 0) return (path){10, 2.0, 1.5}; /* host memcpy */
  if (src < 0 || dst < 0)
    return host_path(f, src < 0 ? dst : src, src == HOST_PAGEABLE || dst == HOST_PAGEABLE);
  if (src == dst) return local_path();
  return peer_enabled(src, dst) ? peer_path(f, src, dst) : staged_path(f, src, dst);
}

/* ---- memory ownership ------------------------------------------------------------------- */

static host_block *find_host(uintptr_t p, size_t n) {
  for (host_block *b = host_blocks; b; b = b->next)
    if (p >= b->base && p - b->base <= b->size && n <= b->size - (p - b->base)) return b;
  return NULL;
}

/* Who owns [p, p + n): a fixture GPU, HOST_PINNED or (want == WANT_HOST only) HOST_PAGEABLE.
 * want >= 0 requires that GPU's memory. */
static CUresult owner_of(CUdeviceptr p, size_t n, int want, int *owner) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  if (want >= 0) return ps__cuda_check_range(p, n, want, owner);
  int gpu = 0;
  CUresult r = ps__cuda_check_range(p, n, -1, &gpu);
  if (r == CUDA_SUCCESS) {
    *owner = gpu;
    return want == WANT_HOST ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
  }
  if (r != CUDA_ERROR_INVALID_VALUE) return r; /* the GPU is lost */
  if (find_host((uintptr_t)p, n)) {
    *owner = HOST_PINNED;
    return CUDA_SUCCESS;
  }
  *owner = HOST_PAGEABLE;
  return want == WANT_HOST ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* A load or store by a kernel on GPU k: device memory of k, of a GPU that k has peer access
 * to, or pinned host memory. Anything else is an illegal address, as on a GPU. */
static CUresult kernel_access(int k, CUdeviceptr p, size_t n, int *owner, path *via) {
  const ps_fixture *f = ps__cuda_fixture();
  CUresult r = owner_of(p, n, WANT_ANY, owner);
  if (r != CUDA_SUCCESS) return r == CUDA_ERROR_INVALID_VALUE ? CUDA_ERROR_ILLEGAL_ADDRESS : r;
  if (*owner == k)
    *via = local_path();
  else if (*owner == HOST_PINNED)
    *via = host_path(f, k, false);
  else if (ps__cuda_context(k)->peer[*owner])
    *via = peer_path(f, k, *owner);
  else
    return CUDA_ERROR_ILLEGAL_ADDRESS;
  return CUDA_SUCCESS;
}

/* The hang and copy_error faults of data moving from GPU src into GPU dst: a zero-byte copy. */
static CUresult link_faults(int src, int dst) {
  if (src < 0 || dst < 0 || src == dst) return CUDA_SUCCESS;
  return ps__cuda_copy(0, dst, 0, src, 0);
}

/* ---- fp16 / bf16 buffers ---------------------------------------------------------------- */

static uint16_t load16(CUdeviceptr base, size_t i) {
  uint16_t v;
  memcpy(&v, (const void *)(uintptr_t)(base + 2 * i), sizeof(v));
  return v;
}

static void store16(CUdeviceptr base, size_t i, uint16_t v) {
  memcpy((void *)(uintptr_t)(base + 2 * i), &v, sizeof(v));
}

/* ---- stream work ------------------------------------------------------------------------ */

/* Each *_work checks its op and, unless dry, performs it and sets *us to its duration. */

static CUresult copy_work(const copy_op *c, bool dry, double *us) {
  int src = 0, dst = 0;
  CUresult r = owner_of(c->src, c->bytes, c->want_src, &src);
  if (r == CUDA_SUCCESS) r = owner_of(c->dst, c->bytes, c->want_dst, &dst);
  if (r != CUDA_SUCCESS || dry) return r;
  *us = transfer_us(copy_path(ps__cuda_fixture(), src, dst), c->bytes);
  return ps__cuda_copy(c->dst, dst, c->src, src, c->bytes);
}

static CUresult memset_work(const op *o, bool dry, double *us) {
  int owner = 0;
  CUresult r = owner_of(o->u.memset.dst, o->u.memset.bytes, WANT_ANY, &owner);
  if (r != CUDA_SUCCESS || dry) return r;
  memset((void *)(uintptr_t)o->u.memset.dst, o->u.memset.value, o->u.memset.bytes);
  path p = owner < 0 ? (path){10, 2.0, 1.5} : local_path();
  *us = transfer_us(p, o->u.memset.bytes);
  return CUDA_SUCCESS;
}

/* `fault sm_corrupt`: a kernel on GPU k that loaded from src's or stored into dst's memory
 * leaves the fault's byte of what it wrote flipped (once, whichever end matched). */
static void sm_corrupt(int k, int src, int dst, CUdeviceptr out, size_t n) {
  const ps_fix_fault *ft = src >= 0 ? ps__fake_fault(PS_FAULT_SM_CORRUPT, k, src) : NULL;
  if (!ft && dst >= 0) ft = ps__fake_fault(PS_FAULT_SM_CORRUPT, k, dst);
  if (ft && ft->offset < n) ((unsigned char *)(uintptr_t)out)[ft->offset] ^= ft->xor_mask;
}

static CUresult ps_copy(const kernel_op *k, bool dry, double *us) {
  if (k->arg.copy.count16 > SIZE_MAX / 16) return CUDA_ERROR_ILLEGAL_ADDRESS;
  size_t n = (size_t)k->arg.copy.count16 * 16;
  int src = 0, dst = 0;
  path ps = local_path(), pd = local_path();
  CUresult r = kernel_access(k->gpu, k->arg.copy.src, n, &src, &ps);
  if (r == CUDA_SUCCESS) r = kernel_access(k->gpu, k->arg.copy.dst, n, &dst, &pd);
  if (r != CUDA_SUCCESS || dry) return r;
  path slow = {dmin(ps.gbps, pd.gbps), dmax(ps.latency_us, pd.latency_us), 0};
  *us = 1.05 * transfer_us(slow, n);
  r = ps__cuda_copy(k->arg.copy.dst, dst, k->arg.copy.src, src, n);
  if (r == CUDA_SUCCESS) sm_corrupt(k->gpu, src, dst, k->arg.copy.dst, n);
  return r;
}

/* Dry, checks the first load and the sink; otherwise every load as it goes. */
static CUresult ps_chase(const kernel_op *k, bool dry, double *us) {
  int owner = 0;
  path p = local_path();
  CUresult r = kernel_access(k->gpu, k->arg.chase.sink, 8, &owner, &p);
  CUdeviceptr at = k->arg.chase.start;
  double t = LAUNCH_US;
  for (uint32_t i = 0; r == CUDA_SUCCESS && i < k->arg.chase.steps; i++) {
    r = kernel_access(k->gpu, at, 8, &owner, &p);
    if (r == CUDA_SUCCESS && dry) return r;
    if (r == CUDA_SUCCESS) r = link_faults(owner, k->gpu);
    if (r == CUDA_SUCCESS) memcpy(&at, (const void *)(uintptr_t)at, sizeof(at));
    t += p.load_us;
  }
  if (r != CUDA_SUCCESS || dry) return r;
  memcpy((void *)(uintptr_t)k->arg.chase.sink, &at, sizeof(at));
  *us = t;
  return CUDA_SUCCESS;
}

/* The buffers of a one-shot launch: owners, and the slowest link to any of them. */
typedef struct oneshot_plan {
  int in[PS_ONESHOT_MAX_RANKS], out[PS_ONESHOT_MAX_RANKS];
  double gbps;
} oneshot_plan;

static CUresult oneshot_check(const kernel_op *k, oneshot_plan *plan) {
  const ps_oneshot_args *a = &k->arg.oneshot;
  if (a->ranks < 1 || a->ranks > PS_ONESHOT_MAX_RANKS || a->rank_base >= a->ranks ||
      k->grid_y > a->ranks - a->rank_base || a->count == 0 || a->count % 8 ||
      a->count > SIZE_MAX / 4)
    return CUDA_ERROR_INVALID_VALUE;
  size_t n = (size_t)a->count * 2;
  path p = local_path();
  CUresult r = CUDA_SUCCESS;
  plan->gbps = 1e30;
  for (unsigned i = 0; r == CUDA_SUCCESS && i < a->ranks; i++) {
    r = kernel_access(k->gpu, a->in[i], n, &plan->in[i], &p);
    plan->gbps = dmin(plan->gbps, p.gbps);
  }
  for (unsigned q = a->rank_base; r == CUDA_SUCCESS && q < a->rank_base + k->grid_y; q++) {
    r = kernel_access(k->gpu, a->out[q], n, &plan->out[q], &p);
    plan->gbps = dmin(plan->gbps, p.gbps);
  }
  return r;
}

/* Faults of every input GPU -> output GPU pair; *xor_at[q] = corrupt element of out[q] (or
 * -1). A corrupted element gets the fault's xor in its high byte, so that it changes by a
 * power of two or its sign and a tolerant check still sees it. */
static CUresult oneshot_faults(const kernel_op *k, const oneshot_plan *plan, long *xor_at,
                               uint16_t *xor_mask) {
  const ps_oneshot_args *a = &k->arg.oneshot;
  for (unsigned q = a->rank_base; q < a->rank_base + k->grid_y; q++) {
    xor_at[q] = -1;
    xor_mask[q] = 0;
    for (unsigned i = 0; i < a->ranks; i++) {
      int src = plan->in[i], dst = plan->out[q];
      CUresult r = link_faults(src, dst);
      if (r != CUDA_SUCCESS) return r;
      const ps_fix_fault *ft =
          src >= 0 && dst >= 0 && src != dst ? ps__fake_fault(PS_FAULT_CORRUPT, src, dst) : NULL;
      if (!ft) continue;
      xor_at[q] = (long)((ft->offset / 2) % a->count);
      xor_mask[q] = (uint16_t)(ft->xor_mask << 8);
    }
  }
  return CUDA_SUCCESS;
}

/* Every output rank gets the same sum, accumulated in float over the ranks in order and
 * rounded once; element i of every input is read before any output's element i is written,
 * so in-place buffers work. */
static void oneshot_sum(const kernel_op *k, bool bf16) {
  const ps_oneshot_args *a = &k->arg.oneshot;
  for (size_t i = 0; i < a->count; i++) {
    float acc = 0;
    for (unsigned r = 0; r < a->ranks; r++) {
      uint16_t v = load16(a->in[r], i);
      acc += bf16 ? ps__fake_bf16_to_float(v) : ps__fake_half_to_float(v);
    }
    uint16_t h = bf16 ? ps__fake_float_to_bf16(acc) : ps__fake_float_to_half(acc);
    for (unsigned q = a->rank_base; q < a->rank_base + k->grid_y; q++)
      store16(a->out[q], i, h);
  }
}

/* The kernels' launch counting (kernel_abi.h): for each rank q of the launch and block b, the
 * epoch in q's flags goes up by one and lands in q's slot of every barrier phase on every
 * peer. Flags of 0 (a test without barriers) are left alone; flags out of reach are an
 * illegal address, as on a GPU. */
static CUresult oneshot_epochs(const kernel_op *k, bool dry) {
  const ps_oneshot_args *a = &k->arg.oneshot;
  size_t bytes = PS_AR_FLAG_WORDS * sizeof(uint32_t);
  int owner = 0;
  path p = local_path();
  if (k->grid_x > PS_ONESHOT_MAX_BLOCKS) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < a->ranks; i++)
    if (a->flags[i]) {
      CUresult r = kernel_access(k->gpu, a->flags[i], bytes, &owner, &p);
      if (r != CUDA_SUCCESS) return r;
    }
  for (unsigned q = a->rank_base; !dry && q < a->rank_base + k->grid_y; q++) {
    if (!a->flags[q]) continue;
    uint32_t *mine = (uint32_t *)(uintptr_t)a->flags[q];
    for (unsigned b = 0; b < k->grid_x; b++) {
      uint32_t epoch = ++mine[PS_AR_EPOCH_SLOT(b)];
      for (unsigned peer = 0; peer < a->ranks; peer++)
        for (unsigned phase = 0; a->flags[peer] && phase < PS_AR_PHASES; phase++)
          ((uint32_t *)(uintptr_t)a->flags[peer])[PS_AR_SLOT(phase, q, b)] = epoch;
    }
  }
  return CUDA_SUCCESS;
}

/* The status word is not touched: the emulated barriers never wait. */
static CUresult ps_oneshot(const kernel_op *k, bool dry, double *us) {
  const ps_oneshot_args *a = &k->arg.oneshot;
  oneshot_plan plan;
  long xor_at[PS_ONESHOT_MAX_RANKS];
  uint16_t xor_mask[PS_ONESHOT_MAX_RANKS];
  CUresult r = oneshot_check(k, &plan);
  if (r == CUDA_SUCCESS) r = oneshot_epochs(k, dry);
  if (r != CUDA_SUCCESS || dry) return r;
  r = oneshot_faults(k, &plan, xor_at, xor_mask);
  if (r != CUDA_SUCCESS) return r;
  bool twoshot = k->kernel == K_TWOSHOT_F16 || k->kernel == K_TWOSHOT_BF16;
  oneshot_sum(k, k->kernel == K_ONESHOT_BF16 || k->kernel == K_TWOSHOT_BF16);
  for (unsigned q = a->rank_base; q < a->rank_base + k->grid_y; q++)
    if (xor_at[q] >= 0)
      store16(a->out[q], (size_t)xor_at[q], load16(a->out[q], (size_t)xor_at[q]) ^ xor_mask[q]);
  double moved = twoshot ? 2.0 : (double)a->ranks; /* message sizes each rank moves */
  *us =
      (twoshot ? 7.5 : 5.0) + (double)k->grid_y * moved * (double)a->count * 2 / (plan.gbps * 1e3);
  return CUDA_SUCCESS;
}

static CUresult kernel_work(const kernel_op *k, bool dry, double *us) {
  switch (k->kernel) {
  case K_SPIN: {
    int owner = 0;
    path p;
    *us = LAUNCH_US; /* the flag is host memory the kernel reads: a bad pointer faults */
    return kernel_access(k->gpu, k->arg.spin.flag, sizeof(int), &owner, &p);
  }
  case K_COPY: return ps_copy(k, dry, us);
  case K_CHASE: return ps_chase(k, dry, us);
  default: return ps_oneshot(k, dry, us);
  }
}

static CUresult op_work(const op *o, bool dry, double *us) {
  switch (o->kind) {
  case OP_COPY: return copy_work(&o->u.copy, dry, us);
  case OP_MEMSET: return memset_work(o, dry, us);
  case OP_KERNEL: return kernel_work(&o->u.kernel, dry, us);
  case OP_HOST:
    if (!dry && o->u.host.fn) o->u.host.fn(o->u.host.arg);
    *us = o->u.host.us;
    return CUDA_SUCCESS;
  default: return CUDA_SUCCESS;
  }
}

static struct CUevent_st *event_find(CUevent h) {
  struct CUevent_st *e;
  LIST_FIND(events, h, e);
  return e;
}

/* Runs o on s now and advances the clock; in_graph: replayed from a graph. */
static CUresult run_op(struct CUstream_st *s, const op *o, bool in_graph) {
  double start = dmax(s->clock_us, host_us), us = 0;
  struct CUevent_st *e = o->kind == OP_RECORD || o->kind == OP_WAIT ? event_find(o->u.event) : NULL;
  if ((o->kind == OP_RECORD || o->kind == OP_WAIT) && !e) return CUDA_ERROR_INVALID_HANDLE;
  if (o->kind == OP_RECORD) {
    e->t_us = s->clock_us = start;
    e->recorded = true;
    e->latch = s->latch_flag ? s : NULL;
    return CUDA_SUCCESS;
  }
  if (o->kind == OP_WAIT) {
    if (e->recorded) s->clock_us = dmax(s->clock_us, e->t_us);
    return CUDA_SUCCESS;
  }
  CUresult r = op_work(o, false, &us);
  if (r != CUDA_SUCCESS) return r;
  us = jitter(us);
  if (in_graph) us = dmax(us - LAUNCH_US, us / 4);
  s->clock_us = start + us;
  if (o->kind == OP_KERNEL && o->u.kernel.kernel == K_SPIN && !in_graph)
    latch_begin(s, &o->u.kernel);
  return CUDA_SUCCESS;
}

static CUresult graph_append(struct CUgraph_st *g, const op *o) {
  if (g->count == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 16;
    op *ops = realloc(g->ops, cap * sizeof(*ops));
    if (!ops) return CUDA_ERROR_OUT_OF_MEMORY;
    g->ops = ops;
    g->cap = cap;
  }
  g->ops[g->count++] = *o;
  return CUDA_SUCCESS;
}

/* Runs o on s, or records it when s is capturing (after checking it, as the driver does; an
 * invalid op invalidates the capture). */
static CUresult submit(struct CUstream_st *s, const op *o) {
  if (!s->capture) return run_op(s, o, false);
  double us = 0;
  CUresult r = op_work(o, true, &us);
  if (r == CUDA_SUCCESS) r = graph_append(s->capture, o);
  if (r != CUDA_SUCCESS) s->capture->invalidated = true;
  return r;
}

/* ---- handles ---------------------------------------------------------------------------- */

static CUresult enter_current(struct CUctx_st **ctx) {
  CUresult r = ps__cuda_enter();
  *ctx = ps__cuda_current();
  return r == CUDA_SUCCESS ? ps__cuda_check_ctx(*ctx) : r;
}

/* NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are ctx's default stream. */
static CUresult stream_of(CUstream h, struct CUctx_st *ctx, struct CUstream_st **out) {
  if (!h || h == STREAM_LEGACY || h == STREAM_PER_THREAD) {
    CUresult r = ps__cuda_check_ctx(ctx);
    if (r != CUDA_SUCCESS) return r;
    *out = &default_streams[ctx->gpu];
    (*out)->ctx = ctx;
    (*out)->is_default = true;
    return CUDA_SUCCESS;
  }
  LIST_FIND(streams, h, *out);
  return *out ? ps__cuda_check_ctx((*out)->ctx) : CUDA_ERROR_INVALID_HANDLE;
}

/* Counts the call and resolves the stream (NULL: the current context's). */
static CUresult enter_stream(CUstream h, struct CUstream_st **s) {
  CUresult r = ps__cuda_enter();
  latches_observe();
  return r == CUDA_SUCCESS ? stream_of(h, ps__cuda_current(), s) : r;
}

static CUresult event_of(CUevent h, struct CUevent_st **out) {
  *out = event_find(h);
  return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* A synchronising call on a capturing stream: refused, and the capture is lost. */
static CUresult capture_misuse(struct CUgraph_st *g) {
  g->invalidated = true;
  return PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

#define LOCKED(call)                                                                               \
  do {                                                                                             \
    ps__fake_lock();                                                                               \
    CUresult r_ = (call);                                                                          \
    ps__fake_unlock();                                                                             \
    return r_;                                                                                     \
  } while (0)

/* ---- peer access ------------------------------------------------------------------------ */

static CUresult disable_peer(CUcontext peer) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS) r = ps__cuda_check_ctx(peer);
  if (r == CUDA_SUCCESS && !ctx->peer[peer->gpu]) r = CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
  if (r == CUDA_SUCCESS) ctx->peer[peer->gpu] = false;
  return r;
}

PS_FAKE_EXPORT CUresult cuCtxDisablePeerAccess(CUcontext peer) { LOCKED(disable_peer(peer)); }

/* ---- streams ---------------------------------------------------------------------------- */

static CUresult stream_create(CUstream *out, unsigned flags) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS && (!out || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING)))
    r = CUDA_ERROR_INVALID_VALUE;
  struct CUstream_st *s = r == CUDA_SUCCESS ? calloc(1, sizeof(*s)) : NULL;
  if (r == CUDA_SUCCESS && !s) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  *s = (struct CUstream_st){.ctx = ctx, .clock_us = host_us, .next = streams};
  streams = s;
  *out = s;
  return CUDA_SUCCESS;
}

static CUresult stream_destroy(CUstream h) {
  CUresult r = ps__cuda_enter();
  struct CUstream_st *s = NULL;
  if (r == CUDA_SUCCESS) LIST_FIND(streams, h, s);
  if (r == CUDA_SUCCESS && !s) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS) {
    LIST_DROP_IF(streams, x, x == s, stream_free(x));
  }
  return r;
}

static CUresult stream_sync(CUstream h) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS && s->capture) r = capture_misuse(s->capture);
  if (r == CUDA_SUCCESS) latch_wait(s);
  if (r == CUDA_SUCCESS) host_wait(s->clock_us);
  return r;
}

/* Waiting on an event recorded inside a capture pulls the stream into that capture. */
static CUresult stream_wait(CUstream h, CUevent event, unsigned flags) {
  struct CUstream_st *s = NULL;
  struct CUevent_st *e = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS) r = event_of(event, &e);
  if (r == CUDA_SUCCESS && flags != 0) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && e->capture && !s->capture && s->is_default)
    r = capture_misuse(e->capture);
  if (r != CUDA_SUCCESS) return r;
  if (e->capture && !s->capture) s->capture = e->capture;
  op o = {.kind = OP_WAIT, .u.event = event};
  return submit(s, &o);
}

PS_FAKE_EXPORT CUresult cuStreamCreate(CUstream *stream, unsigned int flags) {
  LOCKED(stream_create(stream, flags));
}
PS_FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream stream) { LOCKED(stream_destroy(stream)); }
PS_FAKE_EXPORT CUresult cuStreamSynchronize(CUstream stream) { LOCKED(stream_sync(stream)); }
PS_FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
  LOCKED(stream_wait(stream, event, flags));
}

/* ---- events ----------------------------------------------------------------------------- */

static CUresult event_create(CUevent *out, unsigned flags) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS && (!out || (flags & ~0x7u))) r = CUDA_ERROR_INVALID_VALUE;
  struct CUevent_st *e = r == CUDA_SUCCESS ? calloc(1, sizeof(*e)) : NULL;
  if (r == CUDA_SUCCESS && !e) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  *e = (struct CUevent_st){.ctx = ctx, .flags = flags, .next = events};
  events = e;
  *out = e;
  return CUDA_SUCCESS;
}

static CUresult event_destroy(CUevent h) {
  struct CUevent_st *e = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) r = event_of(h, &e);
  if (r == CUDA_SUCCESS) {
    LIST_DROP_IF(events, x, x == e, free(x));
  }
  return r;
}

static CUresult event_record(CUevent h, CUstream hs) {
  struct CUstream_st *s = NULL;
  struct CUevent_st *e = NULL;
  CUresult r = enter_stream(hs, &s);
  if (r == CUDA_SUCCESS) r = event_of(h, &e);
  if (r == CUDA_SUCCESS && e->ctx != s->ctx) r = CUDA_ERROR_INVALID_HANDLE;
  op o = {.kind = OP_RECORD, .u.event = h};
  if (r == CUDA_SUCCESS) r = submit(s, &o);
  if (r == CUDA_SUCCESS) e->capture = s->capture;
  return r;
}

static CUresult event_sync(CUevent h) {
  struct CUevent_st *e = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) r = event_of(h, &e);
  if (r == CUDA_SUCCESS && e->latch) latch_wait(e->latch);
  if (r == CUDA_SUCCESS && e->recorded) host_wait(e->t_us);
  return r;
}

/* Like CUDA: both recorded (else INVALID_HANDLE) and complete, i.e. the host has waited past
 * them (else NOT_READY). */
static CUresult event_elapsed(float *ms, CUevent start, CUevent end) {
  struct CUevent_st *a = NULL, *b = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && !ms) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = event_of(start, &a);
  if (r == CUDA_SUCCESS) r = event_of(end, &b);
  latches_observe();
  if (r == CUDA_SUCCESS && (a->latch || b->latch)) r = CUDA_ERROR_NOT_READY;
  if (r == CUDA_SUCCESS &&
      (((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) || !a->recorded || !b->recorded))
    r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS && (a->t_us > host_us || b->t_us > host_us)) r = CUDA_ERROR_NOT_READY;
  if (r == CUDA_SUCCESS) *ms = (float)((b->t_us - a->t_us) / 1000.0);
  return r;
}

PS_FAKE_EXPORT CUresult cuEventCreate(CUevent *event, unsigned int flags) {
  LOCKED(event_create(event, flags));
}
PS_FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent event) { LOCKED(event_destroy(event)); }
PS_FAKE_EXPORT CUresult cuEventRecord(CUevent event, CUstream stream) {
  LOCKED(event_record(event, stream));
}
PS_FAKE_EXPORT CUresult cuEventSynchronize(CUevent event) { LOCKED(event_sync(event)); }
PS_FAKE_EXPORT CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) {
  LOCKED(event_elapsed(ms, start, end));
}

/* ---- asynchronous copies and memset ----------------------------------------------------- */

static CUresult memcpy_async(CUdeviceptr dst, int want_dst, CUdeviceptr src, int want_src,
                             size_t bytes, CUstream h) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  op o = {.kind = OP_COPY, .u.copy = {dst, src, bytes, want_dst, want_src}};
  return r == CUDA_SUCCESS ? submit(s, &o) : r;
}

static CUresult memcpy_peer_async(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                                  CUcontext src_ctx, size_t bytes, CUstream h) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS) r = ps__cuda_check_ctx(dst_ctx);
  if (r == CUDA_SUCCESS) r = ps__cuda_check_ctx(src_ctx);
  if (r != CUDA_SUCCESS) return r;
  op o = {.kind = OP_COPY, .u.copy = {dst, src, bytes, dst_ctx->gpu, src_ctx->gpu}};
  return submit(s, &o);
}

/* On the current context's default stream (which never captures). */
static CUresult memset_d8(CUdeviceptr dst, unsigned char value, size_t count) {
  struct CUctx_st *ctx = NULL;
  struct CUstream_st *s = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS) r = stream_of(NULL, ctx, &s);
  op o = {.kind = OP_MEMSET};
  o.u.memset.dst = dst;
  o.u.memset.bytes = count;
  o.u.memset.value = value;
  return r == CUDA_SUCCESS ? submit(s, &o) : r;
}

PS_FAKE_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                                      CUstream stream) {
  LOCKED(memcpy_async(dst, WANT_ANY, src, WANT_ANY, bytes, stream));
}
PS_FAKE_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                                          CUcontext src_ctx, size_t bytes, CUstream stream) {
  LOCKED(memcpy_peer_async(dst, dst_ctx, src, src_ctx, bytes, stream));
}
PS_FAKE_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes,
                                             CUstream stream) {
  LOCKED(memcpy_async(dst, WANT_ANY, (CUdeviceptr)(uintptr_t)src, WANT_HOST, bytes, stream));
}
PS_FAKE_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes,
                                             CUstream stream) {
  LOCKED(memcpy_async((CUdeviceptr)(uintptr_t)dst, WANT_HOST, src, WANT_ANY, bytes, stream));
}
PS_FAKE_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count) {
  LOCKED(memset_d8(dst, value, count));
}

/* ---- pinned host memory ----------------------------------------------------------------- */

/* Page-aligned and zeroed; ranges are checked against the size asked for. */
static CUresult host_alloc(void **out, size_t bytes, unsigned flags) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS && (!out || bytes == 0 || (flags & ~0x7u))) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && bytes > SIZE_MAX - 4095) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  size_t size = (bytes + 4095) & ~(size_t)4095;
  void *mem = aligned_alloc(4096, size);
  host_block *b = calloc(1, sizeof(*b));
  if (!mem || !b) {
    free(mem);
    free(b);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  memset(mem, 0, size);
  *b = (host_block){.base = (uintptr_t)mem, .size = bytes, .next = host_blocks};
  host_blocks = b;
  *out = mem;
  return CUDA_SUCCESS;
}

static CUresult host_free(void *p) {
  CUresult r = ps__cuda_enter();
  host_block *b = r == CUDA_SUCCESS ? find_host((uintptr_t)p, 0) : NULL;
  if (r == CUDA_SUCCESS && (!p || !b || b->base != (uintptr_t)p)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    LIST_DROP_IF(host_blocks, x, x == b, host_block_free(x));
  }
  return r;
}

/* Unified addressing: the device address is the host address. */
static CUresult host_device_pointer(CUdeviceptr *out, void *p, unsigned flags) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS && (!out || flags || !p || !find_host((uintptr_t)p, 1)))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) *out = (CUdeviceptr)(uintptr_t)p;
  return r;
}

PS_FAKE_EXPORT CUresult cuMemHostAlloc(void **ptr, size_t bytes, unsigned int flags) {
  LOCKED(host_alloc(ptr, bytes, flags));
}
PS_FAKE_EXPORT CUresult cuMemFreeHost(void *ptr) { LOCKED(host_free(ptr)); }
PS_FAKE_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *dptr, void *ptr,
                                                     unsigned int flags) {
  LOCKED(host_device_pointer(dptr, ptr, flags));
}

/* ---- modules and kernels ---------------------------------------------------------------- */

/* Any image loads: the kernels are known by name, not by code. */
static CUresult module_load(CUmodule *out, const void *image) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  if (r == CUDA_SUCCESS && (!out || !image)) r = CUDA_ERROR_INVALID_VALUE;
  struct CUmod_st *m = r == CUDA_SUCCESS ? calloc(1, sizeof(*m)) : NULL;
  if (r == CUDA_SUCCESS && !m) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  m->ctx = ctx;
  for (int k = 0; k < K_COUNT; k++)
    m->fn[k] = (struct CUfunc_st){.module = m, .kernel = k};
  m->next = modules;
  modules = m;
  *out = m;
  return CUDA_SUCCESS;
}

static CUresult module_unload(CUmodule h) {
  struct CUmod_st *m = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) LIST_FIND(modules, h, m);
  if (r == CUDA_SUCCESS && !m) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS) {
    LIST_DROP_IF(modules, x, x == m, free(x));
  }
  return r;
}

static CUresult module_function(CUfunction *out, CUmodule h, const char *name) {
  struct CUmod_st *m = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && (!out || !name)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) LIST_FIND(modules, h, m);
  if (r == CUDA_SUCCESS && !m) r = CUDA_ERROR_INVALID_HANDLE;
  if (r != CUDA_SUCCESS) return r;
  for (int k = 0; k < K_COUNT; k++) {
    if (strcmp(name, kernel_names[k]) == 0) {
      *out = &m->fn[k];
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_NOT_FOUND;
}

static struct CUfunc_st *function_find(CUfunction h) {
  for (struct CUmod_st *m = modules; m; m = m->next)
    for (int k = 0; k < K_COUNT; k++)
      if (&m->fn[k] == h) return &m->fn[k];
  return NULL;
}

static CUresult check_dims(const unsigned grid[3], const unsigned block[3], unsigned shared) {
  for (int i = 0; i < 3; i++)
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  if (grid[1] > 65535 || grid[2] > 65535 || shared > 48 * 1024 ||
      (unsigned long long)block[0] * block[1] * block[2] > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

/* params[i] points to the i-th parameter's value (kernel_abi.h gives the lists). */
static CUresult read_params(int kernel, void **p, kernel_args *a) {
  static const int counts[K_COUNT] = {2, 3, 3, 1, 1, 1, 1};
  for (int i = 0; i < counts[kernel]; i++)
    if (!p[i]) return CUDA_ERROR_INVALID_VALUE;
  switch (kernel) {
  case K_SPIN:
    memcpy(&a->spin.flag, p[0], sizeof(a->spin.flag));
    memcpy(&a->spin.timeout_ns, p[1], sizeof(a->spin.timeout_ns));
    break;
  case K_COPY:
    memcpy(&a->copy.src, p[0], sizeof(a->copy.src));
    memcpy(&a->copy.dst, p[1], sizeof(a->copy.dst));
    memcpy(&a->copy.count16, p[2], sizeof(a->copy.count16));
    break;
  case K_CHASE:
    memcpy(&a->chase.start, p[0], sizeof(a->chase.start));
    memcpy(&a->chase.steps, p[1], sizeof(a->chase.steps));
    memcpy(&a->chase.sink, p[2], sizeof(a->chase.sink));
    break;
  default: memcpy(&a->oneshot, p[0], sizeof(a->oneshot)); break;
  }
  return CUDA_SUCCESS;
}

/* `extra` (packed parameters) is not supported: the worker passes kernelParams. */
static CUresult launch(CUfunction f, const unsigned grid[3], const unsigned block[3],
                       unsigned shared, CUstream h, void **params, void **extra) {
  struct CUstream_st *s = NULL;
  struct CUfunc_st *fn = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS && !(fn = function_find(f))) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS && fn->module->ctx != s->ctx) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS) r = check_dims(grid, block, shared);
  if (r == CUDA_SUCCESS && (extra || !params)) r = CUDA_ERROR_INVALID_VALUE;
  op o = {.kind = OP_KERNEL};
  if (r == CUDA_SUCCESS) {
    o.u.kernel = (kernel_op){.kernel = fn->kernel, .gpu = s->ctx->gpu};
    o.u.kernel.grid_x = grid[0];
    o.u.kernel.grid_y = grid[1];
    r = read_params(fn->kernel, params, &o.u.kernel.arg);
  }
  return r == CUDA_SUCCESS ? submit(s, &o) : r;
}

PS_FAKE_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  LOCKED(module_load(module, image));
}
PS_FAKE_EXPORT CUresult cuModuleUnload(CUmodule module) { LOCKED(module_unload(module)); }
PS_FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *fn, CUmodule module, const char *name) {
  LOCKED(module_function(fn, module, name));
}
PS_FAKE_EXPORT CUresult cuLaunchKernel(CUfunction fn, unsigned int grid_x, unsigned int grid_y,
                                       unsigned int grid_z, unsigned int block_x,
                                       unsigned int block_y, unsigned int block_z,
                                       unsigned int shared_bytes, CUstream stream, void **params,
                                       void **extra) {
  const unsigned grid[3] = {grid_x, grid_y, grid_z}, block[3] = {block_x, block_y, block_z};
  LOCKED(launch(fn, grid, block, shared_bytes, stream, params, extra));
}

/* ---- capture and graphs ----------------------------------------------------------------- */

static CUresult begin_capture(CUstream h, int mode) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS && (mode < 0 || mode > CU_STREAM_CAPTURE_MODE_RELAXED))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && s->is_default) r = PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (r == CUDA_SUCCESS && s->capture) r = PS_FAKE_CUDA_ERROR_ILLEGAL_STATE;
  struct CUgraph_st *g = r == CUDA_SUCCESS ? calloc(1, sizeof(*g)) : NULL;
  if (r == CUDA_SUCCESS && !g) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  *g = (struct CUgraph_st){.open = true, .next = graphs};
  graphs = g;
  s->capture = g;
  s->capture_origin = true;
  return CUDA_SUCCESS;
}

/* Ends the capture of every stream that joined it; an invalidated capture yields no graph. */
static CUresult end_capture(CUstream h, CUgraph *out) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  if (r == CUDA_SUCCESS && !out) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && (!s->capture || !s->capture_origin))
    r = PS_FAKE_CUDA_ERROR_ILLEGAL_STATE;
  if (r != CUDA_SUCCESS) return r;
  struct CUgraph_st *g = s->capture;
  detach_capture(g);
  if (g->invalidated) {
    graph_free(g);
    *out = NULL;
    return PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  g->open = false;
  *out = g;
  return CUDA_SUCCESS;
}

static struct CUgraph_st *graph_find(CUgraph h) {
  struct CUgraph_st *g;
  LIST_FIND(graphs, h, g);
  return g && !g->open ? g : NULL;
}

static struct CUgraphExec_st *exec_find(CUgraphExec h) {
  struct CUgraphExec_st *x;
  LIST_FIND(execs, h, x);
  return x;
}

/* Instantiation flags (auto free, upload, priorities) change nothing in a host replay. */
static CUresult graph_instantiate(CUgraphExec *out, CUgraph h) {
  struct CUgraph_st *g = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && !out) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && !(g = graph_find(h))) r = CUDA_ERROR_INVALID_HANDLE;
  struct CUgraphExec_st *x = r == CUDA_SUCCESS ? calloc(1, sizeof(*x)) : NULL;
  if (r == CUDA_SUCCESS && !x) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r == CUDA_SUCCESS && g->count && !(x->ops = malloc(g->count * sizeof(op)))) {
    free(x);
    r = CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (r != CUDA_SUCCESS) return r;
  if (g->count) memcpy(x->ops, g->ops, g->count * sizeof(op));
  x->count = g->count;
  x->next = execs;
  execs = x;
  *out = x;
  return CUDA_SUCCESS;
}

/* Replays the ops on the launch stream; launched into a capturing stream, records them. */
static CUresult graph_launch(CUgraphExec h, CUstream hs) {
  struct CUstream_st *s = NULL;
  struct CUgraphExec_st *x = NULL;
  CUresult r = enter_stream(hs, &s);
  if (r == CUDA_SUCCESS && !(x = exec_find(h))) r = CUDA_ERROR_INVALID_HANDLE;
  if (r != CUDA_SUCCESS) return r;
  if (s->capture) {
    for (size_t i = 0; r == CUDA_SUCCESS && i < x->count; i++)
      r = graph_append(s->capture, &x->ops[i]);
    return r;
  }
  s->clock_us = dmax(s->clock_us, host_us) + LAUNCH_US;
  for (size_t i = 0; r == CUDA_SUCCESS && i < x->count; i++)
    r = run_op(s, &x->ops[i], true);
  return r;
}

static CUresult exec_destroy(CUgraphExec h) {
  struct CUgraphExec_st *x = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && !(x = exec_find(h))) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS) {
    LIST_DROP_IF(execs, y, y == x, exec_free(y));
  }
  return r;
}

static CUresult graph_destroy(CUgraph h) {
  struct CUgraph_st *g = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && !(g = graph_find(h))) r = CUDA_ERROR_INVALID_HANDLE;
  if (r == CUDA_SUCCESS) graph_free(g);
  return r;
}

PS_FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream stream, int mode) {
  LOCKED(begin_capture(stream, mode));
}
PS_FAKE_EXPORT CUresult cuStreamEndCapture(CUstream stream, CUgraph *graph) {
  LOCKED(end_capture(stream, graph));
}
PS_FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph,
                                                    unsigned long long flags) {
  (void)flags;
  LOCKED(graph_instantiate(exec, graph));
}
PS_FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  LOCKED(graph_launch(exec, stream));
}
PS_FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec) { LOCKED(exec_destroy(exec)); }
PS_FAKE_EXPORT CUresult cuGraphDestroy(CUgraph graph) { LOCKED(graph_destroy(graph)); }

/* ---- hooks for the fake NCCL ------------------------------------------------------------ */

static CUresult host_op(struct CUstream_st *s, void (*fn)(void *), void *arg, double us) {
  if (!(us >= 0 && us < 1e12)) return CUDA_ERROR_INVALID_VALUE; /* also NaN */
  op o = {.kind = OP_HOST};
  o.u.host.fn = fn;
  o.u.host.arg = arg;
  o.u.host.us = us;
  return submit(s, &o);
}

/* A stream of CUDA device dev (NULL: its primary context's default stream). */
static CUresult device_stream(CUdevice dev, CUstream h, struct CUstream_st **s) {
  int gpu = 0;
  CUresult r = ps__cuda_device_gpu(dev, &gpu);
  if (r == CUDA_SUCCESS) r = stream_of(h, ps__cuda_context(gpu), s);
  if (r == CUDA_SUCCESS && (*s)->ctx->gpu != gpu) r = CUDA_ERROR_INVALID_HANDLE;
  return r;
}

static CUresult stream_host_op(CUstream h, void (*fn)(void *), void *arg, double us) {
  struct CUstream_st *s = NULL;
  CUresult r = enter_stream(h, &s);
  return r == CUDA_SUCCESS ? host_op(s, fn, arg, us) : r;
}

static CUresult device_host_op(CUdevice dev, CUstream h, void (*fn)(void *), void *arg, double us) {
  struct CUstream_st *s = NULL;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) r = device_stream(dev, h, &s);
  return r == CUDA_SUCCESS ? host_op(s, fn, arg, us) : r;
}

static CUresult stream_check(CUdevice dev, CUstream h) {
  struct CUstream_st *s = NULL;
  return device_stream(dev, h, &s);
}

static CUresult buffer_check(CUdevice dev, CUdeviceptr ptr, size_t bytes) {
  int gpu = 0, owner = 0;
  CUresult r = ps__cuda_device_gpu(dev, &gpu);
  return r == CUDA_SUCCESS ? ps__cuda_check_range(ptr, bytes, gpu, &owner) : r;
}

static CUresult link_model(CUdevice a, CUdevice b, int allow_p2p, double *gbps, double *lat,
                           int *p2p) {
  int ga = 0, gb = 0;
  CUresult r = !gbps || !lat || !p2p ? CUDA_ERROR_INVALID_VALUE : ps__cuda_device_gpu(a, &ga);
  if (r == CUDA_SUCCESS) r = ps__cuda_device_gpu(b, &gb);
  if (r != CUDA_SUCCESS) return r;
  const ps_fixture *f = ps__cuda_fixture();
  *p2p = ga == gb || (allow_p2p && ps__fixture_pair(f, ga, gb)->cuda_peer);
  path p = ga == gb ? local_path() : *p2p ? peer_path(f, ga, gb) : staged_path(f, ga, gb);
  *gbps = p.gbps;
  *lat = p.latency_us;
  return CUDA_SUCCESS;
}

PS_FAKE_EXPORT CUresult ps_fake_stream_host_op(CUstream stream, void (*fn)(void *), void *arg,
                                               double us) {
  LOCKED(stream_host_op(stream, fn, arg, us));
}
PS_FAKE_EXPORT CUresult ps_fake_device_stream_host_op(CUdevice dev, CUstream stream,
                                                      void (*fn)(void *), void *arg, double us) {
  LOCKED(device_host_op(dev, stream, fn, arg, us));
}
PS_FAKE_EXPORT CUresult ps_fake_stream_check(CUdevice dev, CUstream stream) {
  LOCKED(stream_check(dev, stream));
}
PS_FAKE_EXPORT CUresult ps_fake_buffer_check(CUdevice dev, CUdeviceptr ptr, size_t bytes) {
  LOCKED(buffer_check(dev, ptr, bytes));
}
PS_FAKE_EXPORT CUresult ps_fake_link_model(CUdevice a, CUdevice b, int allow_p2p, double *gbps,
                                           double *latency_us, int *p2p) {
  LOCKED(link_model(a, b, allow_p2p, gbps, latency_us, p2p));
}
