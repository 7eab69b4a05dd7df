/* Internals of the benchmarks shared by the orchestration (bench.c), the job token (job.c),
 * statistics (stats.c) and the worker. The names, parsers and kind properties of results
 * belong to the report (report_internal.h), included here for the files that use both. */
#ifndef PS_BENCH_INTERNAL_H
#define PS_BENCH_INTERNAL_H

#include <stddef.h>

#include "peerscope/peerscope.h"
#include "report/report_internal.h"

/* The p-th percentile (0..100) of n sorted samples, linear between closest ranks (as numpy's
 * default); NaN when n == 0. */
double ps__percentile_sorted(const double *sorted, int n, double p);

/* Fills r->us_median, us_p10, us_p90, us_min, us_max, cv and trials from n per-operation
 * times in microseconds (any order; not modified). n == 0 leaves them 0. */
void ps__bench_stats(const double *us, int n, ps_bench_result *r);

/* nccl-tests' bus bandwidth factor for an all-reduce of n ranks: 2(n-1)/n (0 for n < 1). */
double ps__allreduce_bus_factor(int ranks);

/* Appends a zeroed result (src, dst -1) to bench, growing its array by one; NULL when out of
 * memory. */
ps_bench_result *ps__bench_add(ps_bench *bench);

#endif
