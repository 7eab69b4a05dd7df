/* Fake libnccl.so.2: the NCCL subset of src/drv/nccl_abi.h (single-process cliques from
 * ncclCommInitAll, sum all-reduce over fp16, bf16 and fp32), on top of the fake libcuda.so.1
 * it links against (fake_cuda_internal.h: ps_fake_* hooks).
 *
 * An all-reduce completes when every rank of its clique has posted it: at ncclGroupEnd, or at
 * once for a single rank. The sum for the whole clique then runs as one host op on rank 0's
 * stream (so stream capture records it there and every graph launch recomputes it), and
 * every rank's stream advances by the modelled time of a ring all-reduce:
 *   8 us + 2 (n - 1) / n x bytes / the slowest link of the ring (ranks in devlist order),
 * each link as the fake libcuda models a direct peer copy (NVLink, PCIe P2P), or, with
 * NCCL_P2P_DISABLE set to non-zero when the communicators were created or without CUDA peer
 * access between a pair, 20 us + ... / the staged (host memory) bandwidth. NCCL_P2P_LEVEL
 * (LOC, NVL, PIX, PXB, PHB, SYS) also stages a ring link whose path is farther than it allows.
 * One rank: a local copy. The ranks' streams are not synchronised with each other.
 *
 * Fixture faults (docs/fixture-format.md): `nccl_hang A B`: a collective over a clique holding
 * GPUs a and b never returns (the call sleeps forever); `nccl_corrupt A B`: its result on the
 * rank of GPU b has one byte flipped.
 *
 * The reduction's descriptor (buffers, count, type) is what the host op points to; it lives
 * until the clique's last communicator is destroyed, and identical calls share one, so a
 * benchmark loop allocates nothing. Use from one thread at a time. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drv/nccl_abi.h"
#include "fake_cuda_internal.h"

/* Public entry points of the fake libcuda that this library calls. */
CUresult cuInit(unsigned int flags);
CUresult cuDeviceGetCount(int *count);
CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);

#define MAX_RANKS PS_FIX_MAX_GPUS

/* One rank's ncclAllReduce call, waiting for the other ranks. */
typedef struct post {
  const void *send;
  void *recv;
  size_t count;
  ncclDataType_t type;
  ncclRedOp_t op;
  CUstream stream;
} post;

/* What the host op on rank 0's stream computes. */
typedef struct reduction {
  ncclDataType_t type;
  size_t count;
  int n;
  const void *send[MAX_RANKS];
  void *recv[MAX_RANKS];
  int corrupt_rank; /* `fault nccl_corrupt`: this rank's result gets a flipped byte; -1 none */
  size_t corrupt_offset;
  uint8_t corrupt_xor;
  struct reduction *next;
} reduction;

typedef struct clique {
  int n;         /* ranks */
  int live;      /* communicators not destroyed yet */
  int p2p;       /* NCCL_P2P_DISABLE was not set */
  int p2p_level; /* NCCL_P2P_LEVEL as a path rank (ps_fake_path_rank), -1 unset */
  struct ncclComm *rank[MAX_RANKS];
  reduction *reductions;
} clique;

struct ncclComm {
  clique *clique;
  int rank;
  CUdevice dev;
  post *posts;
  size_t n_posts, cap_posts;
  struct ncclComm *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ncclComm *comms;
static _Thread_local int group_depth;

static size_t type_size(ncclDataType_t type) {
  if (type == ncclFloat32) return 4;
  return type == ncclFloat16 || type == ncclBfloat16 ? 2 : 0;
}

static float load(const void *base, size_t i, ncclDataType_t type) {
  if (type == ncclFloat32) {
    float f;
    memcpy(&f, (const char *)base + 4 * i, sizeof(f));
    return f;
  }
  uint16_t h;
  memcpy(&h, (const char *)base + 2 * i, sizeof(h));
  return type == ncclBfloat16 ? ps__fake_bf16_to_float(h) : ps__fake_half_to_float(h);
}

static void store(void *base, size_t i, ncclDataType_t type, float v) {
  if (type == ncclFloat32) {
    memcpy((char *)base + 4 * i, &v, sizeof(v));
    return;
  }
  uint16_t h = type == ncclBfloat16 ? ps__fake_float_to_bf16(v) : ps__fake_float_to_half(v);
  memcpy((char *)base + 2 * i, &h, sizeof(h));
}

/* The host op (runs under the fake libcuda's lock). Sums in float over the ranks in order and
 * rounds once; element i of every input is read before it is written, so in place works. */
static void reduce(void *arg) {
  const reduction *r = arg;
  for (size_t i = 0; i < r->count; i++) {
    float acc = 0;
    for (int k = 0; k < r->n; k++)
      acc += load(r->send[k], i, r->type);
    for (int k = 0; k < r->n; k++)
      store(r->recv[k], i, r->type, acc);
  }
  if (r->corrupt_rank >= 0 && r->corrupt_offset < r->count * type_size(r->type))
    ((uint8_t *)r->recv[r->corrupt_rank])[r->corrupt_offset] ^= r->corrupt_xor;
}

static struct ncclComm *comm_find(ncclComm_t h) {
  struct ncclComm *m = comms;
  while (m && m != h)
    m = m->next;
  return m;
}

static bool p2p_disabled(void) {
  const char *v = getenv("NCCL_P2P_DISABLE");
  return v && strtol(v, NULL, 10) != 0;
}

/* NCCL_P2P_LEVEL: the farthest path P2P may take, by name (LOC, NVL, PIX, PXB, PHB, SYS) or by
 * NCCL's old numbers (0 LOC, 1 PIX, 2 PXB, 3 PHB, 4 SYS); unset or unknown: -1 (NCCL warns
 * and keeps its default, here: wherever CUDA grants peer access). */
static int p2p_level(void) {
  static const char *const names[] = {"LOC", "NVL", "PIX", "PXB", "PHB", "SYS"};
  const char *v = getenv("NCCL_P2P_LEVEL");
  if (!v || !*v) return -1;
  for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
    if (strcmp(v, names[i]) == 0) return i;
  if (v[0] >= '0' && v[0] <= '4' && !v[1]) return v[0] == '0' ? 0 : v[0] - '0' + 1;
  return -1;
}

/* The fault of `kind` (0 hang, 1 corrupt) on a pair of the clique's GPUs (a GPU with itself
 * included): the rank it hits, or -1. */
static int clique_fault(const clique *c, int kind, unsigned long long *offset, unsigned *xor_mask) {
  for (int i = 0; i < c->n; i++)
    for (int j = 0; j < c->n; j++)
      if (ps_fake_nccl_fault(kind, c->rank[i]->dev, c->rank[j]->dev, offset, xor_mask)) return j;
  return -1;
}

/* ---- communicators ---------------------------------------------------------------------- */

/* NCCL's own checks: CUDA ordinals in range ("invalid argument"), no GPU twice ("Duplicate
 * GPU detected": invalid usage). NULL devlist means 0 .. ndev - 1. */
static ncclResult_t check_devices(int ndev, const int *devlist, int *devs) {
  int count = 0;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&count) != CUDA_SUCCESS)
    return ncclUnhandledCudaError;
  for (int i = 0; i < ndev; i++) {
    devs[i] = devlist ? devlist[i] : i;
    if (devs[i] < 0 || devs[i] >= count) return ncclInvalidArgument;
    for (int j = 0; j < i; j++)
      if (devs[j] == devs[i]) return ncclInvalidUsage;
  }
  return ncclSuccess;
}

static void clique_free(clique *c) {
  while (c->reductions) {
    reduction *next = c->reductions->next;
    free(c->reductions);
    c->reductions = next;
  }
  free(c);
}

/* Like NCCL, a communicator holds its device's primary context. */
static ncclResult_t add_rank(clique *c, int rank, CUdevice dev) {
  CUcontext ctx = NULL;
  struct ncclComm *m = calloc(1, sizeof(*m));
  if (!m) return ncclSystemError;
  if (cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS) {
    free(m);
    return ncclUnhandledCudaError;
  }
  *m = (struct ncclComm){.clique = c, .rank = rank, .dev = dev};
  c->rank[rank] = m;
  c->live++;
  return ncclSuccess;
}

static void drop_ranks(clique *c) {
  for (int i = 0; i < c->n; i++) {
    if (!c->rank[i]) continue;
    cuDevicePrimaryCtxRelease_v2(c->rank[i]->dev);
    free(c->rank[i]);
  }
  clique_free(c);
}

static ncclResult_t init_all(ncclComm_t *out, int ndev, const int *devlist) {
  int devs[MAX_RANKS];
  if (!out || ndev < 1 || ndev > MAX_RANKS) return ncclInvalidArgument;
  ncclResult_t r = check_devices(ndev, devlist, devs);
  clique *c = r == ncclSuccess ? calloc(1, sizeof(*c)) : NULL;
  if (r == ncclSuccess && !c) r = ncclSystemError;
  if (r != ncclSuccess) return r;
  c->n = ndev;
  c->p2p = !p2p_disabled();
  c->p2p_level = p2p_level();
  for (int i = 0; i < ndev && r == ncclSuccess; i++)
    r = add_rank(c, i, devs[i]);
  if (r != ncclSuccess) {
    drop_ranks(c);
    return r;
  }
  for (int i = ndev - 1; i >= 0; i--) {
    c->rank[i]->next = comms;
    comms = c->rank[i];
  }
  for (int i = 0; i < ndev; i++)
    out[i] = c->rank[i];
  return ncclSuccess;
}

/* NULL is fine, as in NCCL. The clique goes with its last communicator. */
static ncclResult_t comm_destroy(ncclComm_t h) {
  if (!h) return ncclSuccess;
  struct ncclComm **p = &comms;
  while (*p && *p != h)
    p = &(*p)->next;
  if (!*p) return ncclInvalidArgument;
  struct ncclComm *m = *p;
  *p = m->next;
  clique *c = m->clique;
  c->rank[m->rank] = NULL;
  cuDevicePrimaryCtxRelease_v2(m->dev); /* a lost GPU still frees the communicator */
  free(m->posts);
  free(m);
  if (--c->live == 0) clique_free(c);
  return ncclSuccess;
}

/* ---- collectives ------------------------------------------------------------------------ */

/* Ring all-reduce time (see the top of the file). */
static ncclResult_t model_us(const clique *c, size_t bytes, double *us) {
  double gbps = 1e30, link_gbps = 0, lat = 0;
  int p2p = 1, staged = 0;
  for (int i = 0; i < c->n; i++) {
    CUdevice a = c->rank[i]->dev, b = c->rank[(i + 1) % c->n]->dev;
    int allow = c->p2p && (c->p2p_level < 0 || ps_fake_path_rank(a, b) <= c->p2p_level);
    if (ps_fake_link_model(a, b, allow, &link_gbps, &lat, &p2p) != CUDA_SUCCESS)
      return ncclUnhandledCudaError;
    gbps = link_gbps < gbps ? link_gbps : gbps;
    staged = staged || !p2p;
  }
  if (c->n == 1)
    *us = lat + bytes / (gbps * 1e3);
  else
    *us = (staged ? 20.0 : 8.0) + 2.0 * (c->n - 1) / c->n * bytes / (gbps * 1e3);
  return ncclSuccess;
}

static ncclResult_t from_cuda(CUresult r) {
  if (r == CUDA_SUCCESS) return ncclSuccess;
  /* A lost GPU (46, 999) or a sticky error (7xx) is CUDA's failure, the rest our caller's. */
  bool cuda_failed =
      r == CUDA_ERROR_DEVICE_UNAVAILABLE || r == CUDA_ERROR_UNKNOWN || (r >= 700 && r < 800);
  return cuda_failed ? ncclUnhandledCudaError : ncclInvalidArgument;
}

/* The stream and buffers must be on the rank's device. */
static ncclResult_t check_post(const struct ncclComm *m, const post *p, size_t bytes) {
  ncclResult_t r = from_cuda(ps_fake_stream_check(m->dev, p->stream));
  if (r == ncclSuccess && bytes)
    r = from_cuda(ps_fake_buffer_check(m->dev, (CUdeviceptr)(uintptr_t)p->send, bytes));
  if (r == ncclSuccess && bytes)
    r = from_cuda(ps_fake_buffer_check(m->dev, (CUdeviceptr)(uintptr_t)p->recv, bytes));
  return r;
}

/* The clique's descriptor for collective j, shared with earlier identical calls. */
static ncclResult_t find_reduction(clique *c, size_t j, reduction **out) {
  reduction key;
  memset(&key, 0, sizeof(key));
  key.type = c->rank[0]->posts[j].type;
  key.count = c->rank[0]->posts[j].count;
  key.n = c->n;
  for (int i = 0; i < c->n; i++) {
    key.send[i] = c->rank[i]->posts[j].send;
    key.recv[i] = c->rank[i]->posts[j].recv;
  }
  for (reduction *r = c->reductions; r; r = r->next) {
    if (r->type == key.type && r->count == key.count && r->n == key.n &&
        !memcmp(r->send, key.send, sizeof(key.send)) &&
        !memcmp(r->recv, key.recv, sizeof(key.recv))) {
      *out = r;
      return ncclSuccess;
    }
  }
  reduction *r = malloc(sizeof(*r));
  if (!r) return ncclSystemError;
  unsigned long long offset = 0;
  unsigned xor_mask = 0;
  key.corrupt_rank = clique_fault(c, 1, &offset, &xor_mask);
  key.corrupt_offset = (size_t)offset;
  key.corrupt_xor = (uint8_t)xor_mask;
  *r = key;
  r->next = c->reductions;
  c->reductions = r;
  *out = r;
  return ncclSuccess;
}

/* Collective j of every rank: the sum on rank 0's stream, the time on every stream. */
static ncclResult_t run_collective(clique *c, size_t j) {
  const post *p0 = &c->rank[0]->posts[j];
  size_t bytes = p0->count * type_size(p0->type);
  ncclResult_t r = ncclSuccess;
  if (clique_fault(c, 0, NULL, NULL) >= 0) { /* `fault nccl_hang`: never returns */
    pthread_mutex_unlock(&lock);
    for (;;)
      pause(); /* the parent kills us */
  }
  for (int i = 0; r == ncclSuccess && i < c->n; i++) {
    const post *p = &c->rank[i]->posts[j];
    if (p->count != p0->count || p->type != p0->type || p->op != p0->op) return ncclInvalidUsage;
    r = check_post(c->rank[i], p, bytes);
  }
  double us = 0;
  reduction *red = NULL;
  if (r == ncclSuccess) r = model_us(c, bytes, &us);
  if (r == ncclSuccess) r = find_reduction(c, j, &red);
  if (r == ncclSuccess)
    r = from_cuda(ps_fake_device_stream_host_op(c->rank[0]->dev, p0->stream, reduce, red, us));
  for (int i = 1; r == ncclSuccess && i < c->n; i++)
    r = from_cuda(ps_fake_device_stream_host_op(c->rank[i]->dev, c->rank[i]->posts[j].stream, NULL,
                                                NULL, us));
  return r;
}

/* Runs and clears what the clique's ranks posted. A rank that posted less than the others
 * (or was destroyed) would make real NCCL wait forever: invalid usage instead. */
static ncclResult_t run_clique(clique *c) {
  ncclResult_t r = ncclSuccess;
  size_t k = c->rank[0] ? c->rank[0]->n_posts : 0;
  for (int i = 0; i < c->n; i++)
    if (!c->rank[i] || c->rank[i]->n_posts != k) r = ncclInvalidUsage;
  for (size_t j = 0; r == ncclSuccess && j < k; j++)
    r = run_collective(c, j);
  for (int i = 0; i < c->n; i++)
    if (c->rank[i]) c->rank[i]->n_posts = 0;
  return r;
}

static ncclResult_t run_pending(void) {
  ncclResult_t first = ncclSuccess;
  for (struct ncclComm *m = comms; m; m = m->next) {
    if (!m->n_posts) continue;
    ncclResult_t r = run_clique(m->clique);
    if (first == ncclSuccess) first = r;
  }
  return first;
}

static ncclResult_t post_append(struct ncclComm *m, const post *p) {
  if (m->n_posts == m->cap_posts) {
    size_t cap = m->cap_posts ? 2 * m->cap_posts : 8;
    post *posts = realloc(m->posts, cap * sizeof(*posts));
    if (!posts) return ncclSystemError;
    m->posts = posts;
    m->cap_posts = cap;
  }
  m->posts[m->n_posts++] = *p;
  return ncclSuccess;
}

static ncclResult_t all_reduce(const post *p, ncclComm_t h) {
  struct ncclComm *m = comm_find(h);
  if (!m || !type_size(p->type) || p->op != ncclSum || (p->count && (!p->send || !p->recv)))
    return ncclInvalidArgument;
  /* Outside a group, a call of one rank of several blocks until the other ranks call too,
   * which this single thread only does after it returns: real NCCL deadlocks here. */
  if (group_depth == 0 && m->clique->n > 1) return ncclInvalidUsage;
  ncclResult_t r = post_append(m, p);
  if (r == ncclSuccess && group_depth == 0) r = run_clique(m->clique);
  return r;
}

static ncclResult_t group_end(void) {
  if (group_depth == 0) return ncclInvalidUsage;
  return --group_depth == 0 ? run_pending() : ncclSuccess;
}

/* ---- exports ---------------------------------------------------------------------------- */

#define LOCKED(call)                                                                               \
  do {                                                                                             \
    pthread_mutex_lock(&lock);                                                                     \
    ncclResult_t r_ = (call);                                                                      \
    pthread_mutex_unlock(&lock);                                                                   \
    return r_;                                                                                     \
  } while (0)

/* 2.28.9 */
PS_FAKE_EXPORT ncclResult_t ncclGetVersion(int *version) {
  if (!version) return ncclInvalidArgument;
  *version = 22809;
  return ncclSuccess;
}

PS_FAKE_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist) {
  LOCKED(init_all(comm, ndev, devlist));
}

PS_FAKE_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) { LOCKED(comm_destroy(comm)); }

PS_FAKE_EXPORT ncclResult_t ncclGroupStart(void) {
  group_depth++;
  return ncclSuccess;
}

PS_FAKE_EXPORT ncclResult_t ncclGroupEnd(void) { LOCKED(group_end()); }

PS_FAKE_EXPORT ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count,
                                          ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                                          CUstream stream) {
  const post p = {send, recv, count, type, op, stream};
  LOCKED(all_reduce(&p, comm));
}

PS_FAKE_EXPORT const char *ncclGetErrorString(ncclResult_t result) {
  static const char *const texts[] = {
      [ncclSuccess] = "no error",
      [ncclUnhandledCudaError] = "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
      [ncclSystemError] = "unhandled system error (run with NCCL_DEBUG=INFO for details)",
      [ncclInternalError] = "internal error - please report this issue to the NCCL developers",
      [ncclInvalidArgument] = "invalid argument (run with NCCL_DEBUG=WARN for details)",
      [ncclInvalidUsage] = "invalid usage (run with NCCL_DEBUG=WARN for details)",
      [ncclRemoteError] = "remote process exited or there was a network error",
      [ncclInProgress] = "NCCL operation in progress",
  };
  if (result < 0 || result >= (int)(sizeof(texts) / sizeof(texts[0]))) return "unknown result code";
  return texts[result];
}

/* Communicators never destroyed go at dlclose or exit (their contexts go with libcuda). */
__attribute__((destructor)) static void fake_nccl_fini(void) {
  pthread_mutex_lock(&lock);
  while (comms) {
    struct ncclComm *m = comms;
    comms = m->next;
    free(m->posts);
    if (--m->clique->live == 0) clique_free(m->clique);
    free(m);
  }
  pthread_mutex_unlock(&lock);
}
