/* The bench worker's state, shared by its files: bench_worker.c (the mode in the worker-main
 * skeleton: setup, jobs), worker_copy.c (copies and latency), worker_allreduce.c (one-shot
 * kernel and NCCL). Runs in the worker process only, never linked into libpeerscope (see
 * docs/internals.md for why CUDA stays out of the caller). */
#ifndef PS_BENCH_WORKER_INTERNAL_H
#define PS_BENCH_WORKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/job.h"
#include "drv/cuda.h"
#include "drv/nccl.h"
#include "worker/main.h"

#define PS_BW_MAX_GPUS 64

typedef struct bw_gpu {
  int state; /* 0 not set up, 1 ready, -1 failed */
  char error[96];
  CUdevice dev;
  CUcontext ctx;
  CUstream stream;
  CUevent start, stop, mark;
  CUdeviceptr src, dst; /* copy buffers, copy_bytes each; src holds this GPU's pattern */
  int sms;
  CUmodule modules[2];
  CUfunction spin, copy, chase, oneshot_f16, oneshot_bf16, twoshot_f16, twoshot_bf16;
  bool peer_on[PS_BW_MAX_GPUS]; /* peer access from this context to GPU i's memory */
} bw_gpu;

typedef struct bw_worker {
  ps__worker base; /* first: the skeleton's state (driver, GPUs with their ordinals, jobs) */
  bool simulated;
  bool kernels; /* images embedded and loaded */
  ps__nccl nccl;
  bool have_nccl;
  const char *nccl_path; /* --nccl */
  char nccl_note[160];
  uint64_t copy_bytes;
  uint64_t allreduce_span; /* the largest all-reduce message: buffers span this much */
  bw_gpu *gpus;
  volatile int *flag; /* mapped pinned host memory the spin kernels wait on */
  CUdeviceptr flag_dev;
  uint8_t *host;   /* pinned, copy_bytes: H2D source and D2H target */
  CUresult poison; /* a sticky CUDA error met (ps__bw_fail): this process can do no more */
} bw_worker;

/* The outcome of one job before it becomes a `result bench` line. */
typedef struct bw_result {
  ps_bench_outcome outcome;
  int samples;
  double us[64];        /* per-operation time of each trial */
  double ns_per_access; /* chase */
  char reason[160];
} bw_result;

/* Sets up GPU g (context, stream, events, buffers with its pattern, kernels); false with
 * gpus[g].error set. */
bool ps__bw_gpu_ready(bw_worker *w, int g);
/* Turns peer access from a's context to b's memory on or off; false with reason. */
bool ps__bw_set_peer(bw_worker *w, int a, int b, bool on, bw_result *r);
/* Fills r as failed with "<what>: <CUDA error name>"; returns false for `return fail(...)`. */
bool ps__bw_fail(bw_worker *w, bw_result *r, const char *what, CUresult rc);
/* The 64-bit word i of GPU g's source pattern. */
uint64_t ps__bw_pattern_word(int g, uint64_t i);
/* Compares a host copy of `bytes` with GPU g's pattern; false with the first bad offset in r. */
bool ps__bw_check_pattern(const uint8_t *data, uint64_t bytes, int g, bw_result *r);

void ps__bw_run_copy(bw_worker *w, const ps__bench_job *job, bw_result *r);
void ps__bw_run_latency(bw_worker *w, const ps__bench_job *job, bw_result *r);
void ps__bw_run_oneshot(bw_worker *w, const ps__bench_job *job, bw_result *r);
void ps__bw_run_nccl(bw_worker *w, const ps__bench_job *job, bw_result *r);
void ps__bw_release_allreduce(bw_worker *w);

/* The bench worker's entry point: `peerscope-worker --mode bench ...`. */
int ps__bench_worker_main(int argc, char **argv);

#endif
