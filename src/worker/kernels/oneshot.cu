// One-shot all-reduce, the algorithm of vLLM's and TensorRT-LLM's custom all-reduce for small
// messages: after a barrier, every rank reads every rank's input through peer mappings, sums
// in fp32 and writes its own output; a second barrier keeps inputs alive until all have read.
// Ranks may be GPUs (one launch each) or buffers of one GPU (gridDim.y ranks in one launch).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernel_abi.h"

static __device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Thread p < ranks of each block signals peer p and waits for peer p's signal to this block.
// Slots are per block, so no block waits on another block of its own rank.
static __device__ void barrier(const ps_oneshot_args &a, unsigned int rank, unsigned int phase) {
  __syncthreads();
  const unsigned int peer = threadIdx.x, blocks = gridDim.x;
  if (peer < a.ranks) {
    __threadfence_system(); // this block's writes before the signal, on every GPU
    volatile unsigned int *theirs = (volatile unsigned int *)a.flags[peer];
    volatile unsigned int *mine = (volatile unsigned int *)a.flags[rank];
    theirs[(phase * a.ranks + rank) * blocks + blockIdx.x] = a.epoch;
    const unsigned long long start = now_ns();
    while (mine[(phase * a.ranks + peer) * blocks + blockIdx.x] < a.epoch) {
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

template <typename T> static __device__ void oneshot(const ps_oneshot_args &a) {
  const unsigned int rank = a.rank_base + blockIdx.y;
  barrier(a, rank, 0);
  const unsigned long long vecs = a.count / 8, stride = (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < vecs;
       i += stride) {
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
        acc[k] += to_float(e[k]); // rank order, as the host reference sums
    }
    uint4 o;
    T *oe = (T *)&o;
#pragma unroll
    for (int k = 0; k < 8; k++)
      oe[k] = from_float<T>(acc[k]);
    ((uint4 *)a.out[rank])[i] = o;
  }
  barrier(a, rank, 1);
}

extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_oneshot_f16(const ps_oneshot_args args) {
  oneshot<__half>(args);
}
extern "C" __global__ void __launch_bounds__(PS_ONESHOT_THREADS)
    ps_oneshot_bf16(const ps_oneshot_args args) {
  oneshot<__nv_bfloat16>(args);
}
