/* peerscope/bench.h: measured copy bandwidth, latency and all-reduce (docs/bench.md).
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_BENCH_H
#define PEERSCOPE_BENCH_H

#include "report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bench: measured copy bandwidth, latency and all-reduce (docs/bench.md) ---------- */

typedef enum ps_bench_kind {
  PS_BENCH_COPY_CE,          /* copy engine src -> dst (cuMemcpyPeerAsync) */
  PS_BENCH_COPY_SM_READ,     /* copy kernel on dst loading from src over the peer mapping */
  PS_BENCH_COPY_SM_WRITE,    /* copy kernel on src storing into dst over the peer mapping */
  PS_BENCH_LOCAL_CE,         /* within one GPU, copy engine */
  PS_BENCH_LOCAL_SM,         /* within one GPU, copy kernel */
  PS_BENCH_H2D,              /* pinned host -> GPU, copy engine */
  PS_BENCH_D2H,              /* GPU -> pinned host, copy engine */
  PS_BENCH_LATENCY_WRITE,    /* small src -> dst copies: time per copy */
  PS_BENCH_LATENCY_CHASE,    /* pointer chase on dst through src's memory: ns per load */
  PS_BENCH_ALLREDUCE_NCCL,   /* ncclAllReduce over the group, one process */
  PS_BENCH_ALLREDUCE_ONESHOT /* peerscope's one-shot P2P all-reduce kernel */
} ps_bench_kind;
#define PS_BENCH_KIND_COUNT 11

typedef enum ps_bench_outcome {
  PS_BENCH_OK,     /* measured (and the data checked) */
  PS_BENCH_WAIVED, /* a precondition is missing (reason says which); not a failure */
  PS_BENCH_FAILED, /* a driver or NCCL error (reason) */
  PS_BENCH_HANG,   /* passed its deadline; the worker was killed */
  PS_BENCH_WRONG   /* ran, but the data after it was wrong */
} ps_bench_outcome;

#define PS_BENCH_MAX_RANKS 8

typedef struct ps_bench_result {
  ps_bench_kind kind;
  ps_bench_outcome outcome;
  int src, dst;                  /* GPU indexes; -1 = host or not applicable */
  int ranks;                     /* all-reduce: ranks in group[] */
  int group[PS_BENCH_MAX_RANKS]; /* all-reduce GPUs; virtual ranks repeat one GPU */
  bool virtual_ranks;            /* all-reduce ranks are buffers on one GPU */
  bool bidirectional;            /* both directions at once (copy) */
  bool p2p;                      /* peer access enabled for this measurement */
  bool graph;                    /* all-reduce captured in a CUDA graph and replayed */
  char env[40];                  /* NCCL configuration: "default", "NCCL_P2P_DISABLE=1", ... */
  char dtype[8];                 /* "fp16", "bf16"; "" for copies */
  uint64_t bytes;                /* per copy, or per rank's all-reduce buffer */
  int iters;                     /* operations per trial */
  int trials;                    /* timed trials (after one warm-up) */
  double us_median, us_p10, us_p90, us_min, us_max; /* per operation, over the trials */
  double cv;                                        /* coefficient of variation of the trials */
  double gbps;          /* bytes / time; both directions summed when bidirectional; algbw */
  double bus_gbps;      /* all-reduce: algbw * 2(n-1)/n (nccl-tests' busBw) */
  double ns_per_access; /* latency chase */
  char reason[192];     /* waived, failed, hang, wrong: why; ok: "" */
} ps_bench_result;

typedef struct ps_bench {
  bool simulated;      /* measured on the fake drivers: modelled timings, not a machine's */
  bool kernels;        /* the library carries the CUDA kernels (built with nvcc) */
  int nccl_version;    /* 22809 for 2.28.9; 0 when NCCL was not loaded */
  char nccl_note[192]; /* why NCCL measurements were waived, or "" */
  char started[32];    /* UTC, ISO 8601 */
  double wall_ms;
  size_t count;
  ps_bench_result *results;
} ps_bench;

#define PS_BENCH_TEST_COPY 1u
#define PS_BENCH_TEST_LATENCY 2u
#define PS_BENCH_TEST_ALLREDUCE 4u
#define PS_BENCH_TEST_ALL 7u

typedef struct ps_bench_opts {
  size_t size;     /* sizeof(ps_bench_opts): PS_INIT(ps_bench_opts) */
  unsigned tests;  /* PS_BENCH_TEST_* bits; 0 = all */
  const int *gpus; /* GPUs to measure; NULL = all */
  int gpu_count;
  const uint64_t *sizes; /* all-reduce message sizes in bytes; NULL = default */
  int size_count;
  uint64_t copy_bytes;     /* copy buffer; 0 = default */
  int iters;               /* operations per trial; 0 = default */
  int trials;              /* timed trials; 0 = default */
  bool quick;              /* smaller buffers, fewer sizes and trials */
  int timeout_ms;          /* per measurement; 0 = default */
  const char *worker_path; /* NULL: PEERSCOPE_WORKER, then next to libpeerscope */
  const char *driver_dir;  /* as ps_probe_opts */
  const char *nccl_path;   /* libnccl.so.2 to load; NULL: PEERSCOPE_NCCL, then the system */
  /* Called after each measurement (done of total), from the calling thread. */
  void (*progress)(void *user, int done, int total, const ps_bench_result *last);
  void *progress_user;
  /* Set non-zero (a signal handler, a server shutting down) to stop: the running worker is
   * killed and what is left is recorded as failed "stopped". May be NULL. */
  const volatile int *stop;
  const char *fixture; /* as ps_probe_opts.fixture, passed on to the workers */
} ps_bench_opts;

/* Runs the benchmarks on the report's GPUs in worker processes under the verify watchdog and
 * attaches the results to report->bench (replacing earlier ones). A measurement that is
 * waived, fails or hangs is recorded and the others go on: that is PS_OK. Errors only for
 * bad options, a missing worker, or a driver the worker cannot start. */
PS_API ps_status ps_bench_run(ps_ctx *ctx, ps_report *report, const ps_bench_opts *opts);
PS_API void ps_bench_free(struct ps_bench *bench);
PS_API const char *ps_bench_kind_name(ps_bench_kind kind);          /* "copy_ce", ... */
PS_API const char *ps_bench_outcome_name(ps_bench_outcome outcome); /* "ok", "waived", ... */
/* The smallest P2P-enabled unidirectional copy-engine bandwidth measured, or -1 if none. */
PS_API double ps_bench_min_p2p_gbps(const struct ps_bench *bench);

typedef enum ps_bench_format {
  PS_BENCH_TEXT, /* tables for a terminal */
  PS_BENCH_CSV,  /* one row per result */
  PS_BENCH_SVG   /* heatmaps of the copy bandwidth and latency matrices */
} ps_bench_format;
/* Renders report->bench; *out is freed with ps_free. */
PS_API ps_status ps_bench_write(ps_ctx *ctx, const ps_report *report, ps_bench_format format,
                                char **out);

#ifdef __cplusplus
}
#endif
#endif
