// One-shot and two-shot all-reduce, the algorithms of vLLM's and TensorRT-LLM's custom
// all-reduce. One-shot (small messages): after a barrier, every rank reads every rank's input
// through peer mappings, sums in fp32 and writes its own output; a second barrier keeps inputs
// alive until all have read. Two-shot (large messages): each rank reduces its own slice
// (reduce-scatter), then copies the other slices from their owners (all-gather).
// Ranks may be GPUs (one launch each) or buffers of one GPU (gridDim.y ranks in one launch).
// The barrier epoch is a per-(rank, block) counter in the flags (kernel_abi.h), so a launch
// replayed from a CUDA graph needs no new argument and no extra launch.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernel_abi.h"

static __device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// This block's launch counter of `rank`, plus one: read by every thread before the first
// barrier, written back by thread 0 after the last (epoch_done).
static __device__ __forceinline__ unsigned int epoch_begin(const ps_oneshot_args &a,
                                                           unsigned int rank) {
  return ((volatile unsigned int *)a.flags[rank])[PS_AR_EPOCH_SLOT(blockIdx.x)] + 1u;
}

static __device__ __forceinline__ void epoch_done(const ps_oneshot_args &a, unsigned int rank,
                                                  unsigned int epoch) {
  if (threadIdx.x == 0)
    ((volatile unsigned int *)a.flags[rank])[PS_AR_EPOCH_SLOT(blockIdx.x)] = epoch;
}

// A flag store that publishes what this block wrote before it (the __syncthreads before it
// makes the other threads' writes the storing thread's to release), and a load that makes what
// the peer wrote before its store visible to this block: vLLM's st.release / ld.acquire at
// system scope, cheaper than a full __threadfence_system per barrier.
static __device__ __forceinline__ void store_release(unsigned int *p, unsigned int v) {
  asm volatile("st.release.sys.global.u32 [%1], %0;" ::"r"(v), "l"(p) : "memory");
}
static __device__ __forceinline__ unsigned int load_acquire(const unsigned int *p) {
  unsigned int v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Thread p < ranks of each block signals peer p and waits for peer p's signal to this block.
// Slots are per block, so no block waits on another block of its own rank. Only a barrier
// after which peers read what this block wrote in this launch (two-shot's middle one) needs
// the release/acquire pair; the others order nothing but reads, and the inputs were written
// before the launch: plain volatile flags there, as vLLM's custom all-reduce does (a
// system-scope release costs about a microsecond per barrier).
template <bool fenced>
static __device__ void barrier(const ps_oneshot_args &a, unsigned int rank, unsigned int phase,
                               unsigned int epoch) {
  __syncthreads();
  const unsigned int peer = threadIdx.x;
  if (peer < a.ranks) {
    unsigned int *theirs = (unsigned int *)a.flags[peer] + PS_AR_SLOT(phase, rank, blockIdx.x);
    const unsigned int *mine =
        (const unsigned int *)a.flags[rank] + PS_AR_SLOT(phase, peer, blockIdx.x);
    if (fenced)
      store_release(theirs, epoch);
    else
      *(volatile unsigned int *)theirs = epoch;
    const unsigned long long start = now_ns();
    while ((fenced ? load_acquire(mine) : *(const volatile unsigned int *)mine) < epoch) {
      if (now_ns() - start > a.timeout_ns) {
        atomicExch((unsigned int *)a.status, 1u); // the host reports it; never hang
        break;
      }
    }
  }
  __syncthreads();
}

static __device__ __forceinline__ float to_float(__half h) { return __half2float(h); }
static __device__ __forceinline__ float to_float(__nv_bfloat16 h) { return __bfloat162float(h); }
template <typename T> static __device__ __forceinline__ T from_float(float f);
template <> __device__ __forceinline__ __half from_float<__half>(float f) {
  return __float2half_rn(f);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float f) {
  return __float2bfloat16_rn(f);
}

// The sum of 16-byte vector i over every rank's input, in rank order as the host reference.
template <typename T>
static __device__ __forceinline__ uint4 sum_vec(const ps_oneshot_args &a, unsigned long long i) {
  uint4 v[PS_ONESHOT_MAX_RANKS];
#pragma unroll
  for (int r = 0; r < PS_ONESHOT_MAX_RANKS; r++)
    if (r < (int)a.ranks) v[r] = ((const uint4 *)a.in[r])[i]; // all loads issued first
  float acc[8];
#pragma unroll
  for (int k = 0; k < 8; k++)
    acc[k] = 0.0f;
#pragma unroll
  for (int r = 0; r < PS_ONESHOT_MAX_RANKS; r++) {
    if (r >= (int)a.ranks) break;
    const T *e = (const T *)&v[r];
#pragma unroll
    for (int k = 0; k < 8; k++)
      acc[k] += to_float(e[k]);
  }
  uint4 o;
  T *oe = (T *)&o;
#pragma unroll
  for (int k = 0; k < 8; k++)
    oe[k] = from_float<T>(acc[k]);
  return o;
}

template <typename T> static __device__ void oneshot(const ps_oneshot_args &a) {
  const unsigned int rank = a.rank_base + blockIdx.y, epoch = epoch_begin(a, rank);
  barrier<false>(a, rank, 0, epoch);
  const unsigned long long vecs = a.count / 8, stride = (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < vecs;
       i += stride)
    ((uint4 *)a.out[rank])[i] = sum_vec<T>(a, i);
  barrier<false>(a, rank, 1, epoch); // peers have read this rank's input
  epoch_done(a, rank, epoch);
}

template <typename T> static __device__ void twoshot(const ps_oneshot_args &a) {
  const unsigned int rank = a.rank_base + blockIdx.y, epoch = epoch_begin(a, rank);
  const unsigned long long vecs = a.count / 8, part = (vecs + a.ranks - 1) / a.ranks;
  const unsigned long long first = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x,
                           stride = (unsigned long long)gridDim.x * blockDim.x;
  barrier<false>(a, rank, 0, epoch);
  const unsigned long long lo = rank * part, hi = lo + part < vecs ? lo + part : vecs;
  for (unsigned long long i = lo + first; i < hi; i += stride)
    ((uint4 *)a.out[rank])[i] = sum_vec<T>(a, i);
  barrier<true>(a, rank, 1, epoch); // every slice reduced and visible to the peers
  for (unsigned int q = 0; q < a.ranks; q++) {
    if (q == rank) continue;
    const unsigned long long qlo = q * part, qhi = qlo + part < vecs ? qlo + part : vecs;
    const uint4 *src = (const uint4 *)a.out[q];
    for (unsigned long long i = qlo + first; i < qhi; i += stride)
      ((uint4 *)a.out[rank])[i] = src[i];
  }
  barrier<false>(a, rank, 2, epoch); // no peer still reads this rank's output
  epoch_done(a, rank, epoch);
}

extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_oneshot_f16(const ps_oneshot_args args) {
  oneshot<__half>(args);
}
extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_oneshot_bf16(const ps_oneshot_args args) {
  oneshot<__nv_bfloat16>(args);
}
extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_twoshot_f16(const ps_oneshot_args args) {
  twoshot<__half>(args);
}
extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_twoshot_bf16(const ps_oneshot_args args) {
  twoshot<__nv_bfloat16>(args);
}
