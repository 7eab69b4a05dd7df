// Copy-path kernels: the spin latch that keeps enqueue time out of a timed region, the SM
// copy (peer loads or peer stores, 16 bytes per access) and the pointer chase.
#include "kernel_abi.h"

static __device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Holds the stream until the host sets *flag (mapped pinned memory), or timeout_ns passed:
// a host that died must not leave the GPU spinning.
extern "C" __global__ void ps_spin(volatile int *flag, unsigned long long timeout_ns) {
  unsigned long long start = now_ns();
  while (*flag == 0 && now_ns() - start < timeout_ns)
    __nanosleep(256);
}

// Four independent 16-byte loads in flight per thread before the first store: a peer load
// costs a microsecond, and bandwidth needs many of them outstanding.
extern "C" __global__ void ps_copy(const uint4 *__restrict__ src, uint4 *__restrict__ dst,
                                   unsigned long long count16) {
  const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < count16; i += 4 * stride) {
    uint4 v0 = src[i], v1 = src[i + stride], v2 = src[i + 2 * stride], v3 = src[i + 3 * stride];
    dst[i] = v0;
    dst[i + stride] = v1;
    dst[i + 2 * stride] = v2;
    dst[i + 3 * stride] = v3;
  }
  for (; i < count16; i += stride)
    dst[i] = src[i];
}

// One thread, one dependent load per step, as nvbandwidth's latency kernel: plain loads, so a
// chain that fits in L2 is served from the cache that holds it (this GPU's, or the peer's for
// peer memory), and time / steps is the latency nvbandwidth reports.
extern "C" __global__ void ps_chase(const unsigned long long *start, unsigned int steps,
                                    unsigned long long *sink) {
  const unsigned long long *p = start;
  for (unsigned int i = 0; i < steps; i++)
    p = (const unsigned long long *)*p;
  *sink = (unsigned long long)p;
}
