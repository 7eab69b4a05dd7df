/* The kernels' names and parameters, shared by the CUDA sources (copy.cu, oneshot.cu), the
 * workers that launch them (src/bench/bench_worker.c, src/verify/worker_sm.c) and the fake
 * libcuda that emulates them (tests/fake/). Plain C: every pointer is a CUdeviceptr-sized
 * integer.
 *
 *   ps_spin(volatile int *flag, u64 timeout_ns)
 *       holds its stream until *flag != 0 (or timeout_ns passed: it never hangs a GPU), so the
 *       start event, the timed work and the stop event are all queued before any of it runs.
 *   ps_copy(const uint4 *src, uint4 *dst, u64 count16)
 *       SM copy, 16 bytes per thread and step, grid-stride. Launched on the reading GPU it
 *       measures peer loads; on the writing GPU, peer stores.
 *   ps_chase(const u64 *start, u32 steps, u64 *sink)
 *       one thread follows a chain of pointers (each element holds the address of the next):
 *       every step is one dependent (cached) load, so time / steps is the load latency.
 *   ps_oneshot_f16 / ps_oneshot_bf16(ps_oneshot_args args)
 *       one-shot all-reduce: every rank reads every rank's input over peer mappings and writes
 *       the sum to its own output, between two flag barriers. Rank = args.rank_base +
 *       blockIdx.y, so one launch of gridDim.y = N runs N virtual ranks on one GPU. */
#ifndef PS_WORKER_KERNEL_ABI_H
#define PS_WORKER_KERNEL_ABI_H

#define PS_ONESHOT_MAX_RANKS 8
#define PS_ONESHOT_MAX_BLOCKS 36 /* per rank: vLLM's grid search found 36 best */
#define PS_ONESHOT_THREADS 512
#define PS_COPY_THREADS 512

#define PS_KERNEL_SPIN "ps_spin"
#define PS_KERNEL_COPY "ps_copy"
#define PS_KERNEL_CHASE "ps_chase"
#define PS_KERNEL_ONESHOT_F16 "ps_oneshot_f16"
#define PS_KERNEL_ONESHOT_BF16 "ps_oneshot_bf16"

/* Passed by value. Flags of rank r: flags[r] points to 2 * ranks * blocks unsigned ints on
 * rank r's GPU, slot [phase][sender][block], zeroed once before the first launch. A barrier
 * of launch `epoch` (1, 2, 3, ...) writes epoch into its slot on every peer and waits until
 * every peer's slot on its own GPU holds at least epoch. */
typedef struct ps_oneshot_args {
  unsigned long long in[PS_ONESHOT_MAX_RANKS];    /* rank r's input, count elements */
  unsigned long long out[PS_ONESHOT_MAX_RANKS];   /* rank r's output */
  unsigned long long flags[PS_ONESHOT_MAX_RANKS]; /* rank r's barrier slots */
  unsigned long long status;     /* one unsigned int, set to 1 when a barrier timed out */
  unsigned long long count;      /* elements, a multiple of 8 (16 bytes) */
  unsigned long long timeout_ns; /* per barrier */
  unsigned int ranks;
  unsigned int rank_base;
  unsigned int epoch;
  unsigned int pad;
} ps_oneshot_args;

#endif
