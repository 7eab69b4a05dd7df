/* Internals of the benchmarks shared by the orchestration (bench.c), statistics (stats.c),
 * names (names.c) and the renderers (src/emit/bench_write.c). */
#ifndef PS_BENCH_INTERNAL_H
#define PS_BENCH_INTERNAL_H

#include <stddef.h>

#include "peerscope/peerscope.h"

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

/* ps_bench_kind_name's and ps_bench_outcome_name's inverses (names.c); false for an unknown
 * name, *out untouched. */
bool ps__bench_kind_parse(const char *name, ps_bench_kind *out);
bool ps__bench_outcome_parse(const char *name, ps_bench_outcome *out);

/* Which derived numbers a kind has (names.c); the others stay 0 and are null in JSON. */
bool ps__bench_kind_has_gbps(ps_bench_kind kind);     /* all but latency_chase */
bool ps__bench_kind_has_bus_gbps(ps_bench_kind kind); /* the all-reduces */
bool ps__bench_kind_has_ns(ps_bench_kind kind);       /* latency_chase */

#endif
