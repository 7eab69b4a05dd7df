/* Statistics over a benchmark's trials (percentiles, spread) and the results array. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_internal.h"
#include "core/internal.h"

/* Trials usually number a few dozen: sort a copy on the stack, the heap only beyond. */
#define STATS_STACK 256

double ps__percentile_sorted(const double *sorted, int n, double p) {
  if (!sorted || n <= 0) return NAN;
  if (!(p > 0)) return sorted[0]; /* also NaN p */
  if (p >= 100) return sorted[n - 1];
  double h = (double)(n - 1) * p / 100.0;
  int lo = (int)h; /* h >= 0: truncation is floor */
  if (lo >= n - 1) return sorted[n - 1];
  return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Square root by Newton's method: libpeerscope does not link libm. From a start above the
 * root the iterates fall monotonically; the first one that does not is the answer. */
static double root(double x) {
  if (!(x > 0) || !isfinite(x)) return 0;
  double g = x > 1 ? x : 1;
  for (int i = 0; i < 2100; i++) {
    double next = 0.5 * (g + x / g);
    if (!(next < g)) break;
    g = next;
  }
  return g;
}

void ps__bench_stats(const double *us, int n, ps_bench_result *r) {
  if (!r || !us || n <= 0) return;
  double stack[STATS_STACK];
  double *sorted = n <= STATS_STACK ? stack : ps__calloc((size_t)n, sizeof(double));
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += us[i];
  double mean = sum / n, sq = 0;
  for (int i = 0; i < n; i++)
    sq += (us[i] - mean) * (us[i] - mean);
  /* Population spread (numpy's default, ddof = 0): the trials are all there is. */
  r->cv = mean > 0 ? root(sq / n / (mean * mean)) : 0;
  r->trials = n;
  if (!sorted) { /* out of memory for a huge n: the mean stands in for the percentiles */
    r->us_min = r->us_max = us[0];
    for (int i = 1; i < n; i++) {
      if (us[i] < r->us_min) r->us_min = us[i];
      if (us[i] > r->us_max) r->us_max = us[i];
    }
    r->us_median = r->us_p10 = r->us_p90 = mean;
    return;
  }
  memcpy(sorted, us, (size_t)n * sizeof(double));
  qsort(sorted, (size_t)n, sizeof(double), cmp_double);
  r->us_median = ps__percentile_sorted(sorted, n, 50);
  r->us_p10 = ps__percentile_sorted(sorted, n, 10);
  r->us_p90 = ps__percentile_sorted(sorted, n, 90);
  r->us_min = sorted[0];
  r->us_max = sorted[n - 1];
  if (sorted != stack) ps__free(sorted);
}

double ps__allreduce_bus_factor(int ranks) {
  return ranks < 1 ? 0 : 2.0 * (double)(ranks - 1) / (double)ranks;
}

/* Grows by one: ps_bench keeps no capacity, so anyone may hand us an exactly sized array
 * (the JSON reader does); realloc amortises the copying. */
ps_bench_result *ps__bench_add(ps_bench *bench) {
  if (!bench) return NULL;
  ps_bench_result *grown = ps__realloc(bench->results, (bench->count + 1) * sizeof(*grown));
  if (!grown) return NULL;
  bench->results = grown;
  ps_bench_result *r = &grown[bench->count++];
  memset(r, 0, sizeof(*r));
  r->src = r->dst = -1;
  return r;
}
