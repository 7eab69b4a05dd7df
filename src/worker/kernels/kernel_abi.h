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
 *       blockIdx.y, so one launch of gridDim.y = N runs N virtual ranks on one GPU.
 *   ps_twoshot_f16 / ps_twoshot_bf16(ps_oneshot_args args)
 *       two-shot all-reduce for large messages: reduce-scatter (rank r sums slice r of every
 *       input into slice r of its output), barrier, all-gather (rank r copies slice q from
 *       rank q's output), barrier: each rank moves 2/N of the data over links instead of all
 *       of it. Slice q is elements [q * part, (q + 1) * part) in 16-byte vectors,
 *       part = ceil(count / 8 / ranks). Same arguments, three barriers. */
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
#define PS_KERNEL_TWOSHOT_F16 "ps_twoshot_f16"
#define PS_KERNEL_TWOSHOT_BF16 "ps_twoshot_bf16"

/* Flags of rank r: PS_AR_FLAG_WORDS unsigned ints on rank r's GPU, zeroed before the first
 * launch. Barrier slots [phase][sender][block] at fixed strides, then rank r's launch counter
 * per block (the epoch): each launch's block b of rank r reads it, adds one, uses the sum as
 * its barriers' value and writes it back at the end. The counter lives on the device, so a
 * launch captured in a CUDA graph and replayed still gets a fresh epoch (vLLM keeps its
 * counter in the signal buffer the same way). A barrier writes the epoch into its slot on
 * every peer and waits until every peer's slot on its own GPU holds at least the epoch;
 * ranks launch the same grids, so their counters agree. */
#define PS_AR_PHASES 3 /* one-shot: 2 barriers; two-shot: 3 */
#define PS_AR_SLOT(phase, sender, block)                                                           \
  (((phase)*PS_ONESHOT_MAX_RANKS + (sender)) * PS_ONESHOT_MAX_BLOCKS + (block))
#define PS_AR_EPOCH_SLOT(block) (PS_AR_SLOT(PS_AR_PHASES, 0, 0) + (block))
#define PS_AR_FLAG_WORDS PS_AR_EPOCH_SLOT(PS_ONESHOT_MAX_BLOCKS)

/* Passed by value; the same for both kernels. */
typedef struct ps_oneshot_args {
  unsigned long long in[PS_ONESHOT_MAX_RANKS];    /* rank r's input, count elements */
  unsigned long long out[PS_ONESHOT_MAX_RANKS];   /* rank r's output */
  unsigned long long flags[PS_ONESHOT_MAX_RANKS]; /* rank r's barrier slots */
  unsigned long long status;     /* one unsigned int, set to 1 when a barrier timed out */
  unsigned long long count;      /* elements, a multiple of 8 (16 bytes) */
  unsigned long long timeout_ns; /* per barrier */
  unsigned int ranks;
  unsigned int rank_base;
  unsigned int pad[2]; /* was the epoch, now counted on the device (PS_AR_EPOCH_SLOT) */
} ps_oneshot_args;

#endif
