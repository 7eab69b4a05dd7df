/* The list of measurements (plan_jobs.c) that ps_bench_run hands to its workers. */
#ifndef PS_BENCH_PLAN_H
#define PS_BENCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/job.h"

/* NCCL configurations, each measured in a worker of its own with that environment. */
#define PS_BENCH_ENV_COUNT 3
extern const char *const ps__bench_envs[PS_BENCH_ENV_COUNT];

typedef struct ps__bench_planned {
  ps__bench_job job;
  int env;          /* index into ps__bench_envs */
  bool waived;      /* decided without running anything */
  char reason[160]; /* why waived */
} ps__bench_planned;

typedef struct ps__bench_plan {
  bool quick;
  uint64_t copy_bytes;
  int iters, trials, allreduce_iters;
  const uint64_t *sizes;
  int size_count;
  ps__bench_planned *jobs;
  size_t count, cap;
  bool oom;
} ps__bench_plan;

/* Defaults from the options (buffer sizes, counts, message sizes; smaller for a simulated
 * machine: a fixture on the fake drivers); documented in docs/bench.md. */
void ps__bench_plan_defaults(ps__bench_plan *plan, const ps_bench_opts *opts, bool simulated);
/* Appends the jobs for `gpus` (report indexes) and the PS_BENCH_TEST_* bits. */
void ps__bench_plan_make(ps__bench_plan *plan, const ps_report *report, const int *gpus, int n,
                         unsigned tests);

#endif
