/* Benchmark statistics against hand-computed values, the results array, names and the
 * smallest P2P bandwidth. */
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "bench/bench_internal.h"
#include "bench/bench_plan.h"
#include "core/internal.h"

/* No libm in the tests either: a tolerance by hand. */
static void assert_near(double got, double want) {
  double d = got > want ? got - want : want - got;
  if (!(d <= 1e-9 * (want > 1 ? want : 1))) fail_msg("got %.12g, want %.12g", got, want);
}

static void test_percentile_small(void **state) {
  (void)state;
  const double one[] = {5};
  assert_near(ps__percentile_sorted(one, 1, 0), 5);
  assert_near(ps__percentile_sorted(one, 1, 50), 5);
  assert_near(ps__percentile_sorted(one, 1, 100), 5);
  const double two[] = {1, 3};
  assert_near(ps__percentile_sorted(two, 2, 50), 2);
  assert_near(ps__percentile_sorted(two, 2, 10), 1.2);
  assert_near(ps__percentile_sorted(two, 2, 90), 2.8);
  double nan = ps__percentile_sorted(two, 0, 50);
  assert_true(nan != nan);
  assert_true(ps__percentile_sorted(NULL, 3, 50) != ps__percentile_sorted(NULL, 3, 50));
}

static void test_percentile_odd_even(void **state) {
  (void)state;
  const double odd[] = {1, 2, 3, 4, 5}; /* numpy.percentile: 3, 1.4, 4.6 */
  assert_near(ps__percentile_sorted(odd, 5, 50), 3);
  assert_near(ps__percentile_sorted(odd, 5, 10), 1.4);
  assert_near(ps__percentile_sorted(odd, 5, 90), 4.6);
  const double even[] = {10, 20, 30, 40}; /* 25, 13, 37 */
  assert_near(ps__percentile_sorted(even, 4, 50), 25);
  assert_near(ps__percentile_sorted(even, 4, 10), 13);
  assert_near(ps__percentile_sorted(even, 4, 90), 37);
  assert_near(ps__percentile_sorted(even, 4, 25), 17.5);
  /* Out of range clamps to the ends. */
  assert_near(ps__percentile_sorted(even, 4, -5), 10);
  assert_near(ps__percentile_sorted(even, 4, 0), 10);
  assert_near(ps__percentile_sorted(even, 4, 100), 40);
  assert_near(ps__percentile_sorted(even, 4, 250), 40);
}

static void test_stats_unsorted(void **state) {
  (void)state;
  double us[] = {5, 1, 4, 2, 3};
  const double copy[] = {5, 1, 4, 2, 3};
  ps_bench_result r = {0};
  ps__bench_stats(us, 5, &r);
  assert_memory_equal(us, copy, sizeof(us)); /* input untouched */
  assert_int_equal(r.trials, 5);
  assert_near(r.us_median, 3);
  assert_near(r.us_p10, 1.4);
  assert_near(r.us_p90, 4.6);
  assert_near(r.us_min, 1);
  assert_near(r.us_max, 5);
  /* mean 3, population variance 2: cv = sqrt(2) / 3 */
  assert_near(r.cv, 0.47140452079103173);

  double pair[] = {4, 2};
  ps__bench_stats(pair, 2, &r);
  assert_int_equal(r.trials, 2);
  assert_near(r.us_median, 3);
  assert_near(r.us_p10, 2.2);
  assert_near(r.us_p90, 3.8);
  assert_near(r.cv, 1.0 / 3.0);
}

static void test_stats_edges(void **state) {
  (void)state;
  ps_bench_result r = {0};
  double one[] = {7.25};
  ps__bench_stats(one, 1, &r);
  assert_int_equal(r.trials, 1);
  assert_near(r.us_median, 7.25);
  assert_near(r.us_p10, 7.25);
  assert_near(r.us_p90, 7.25);
  assert_near(r.cv, 0);

  double same[] = {2, 2, 2};
  ps__bench_stats(same, 3, &r);
  assert_near(r.cv, 0);

  ps_bench_result zero = {0};
  ps__bench_stats(one, 0, &zero); /* n == 0 leaves everything 0 */
  ps_bench_result empty = {0};
  assert_memory_equal(&zero, &empty, sizeof(zero));

  /* More samples than the stack copy holds: 1..300 shuffled. */
  double many[300];
  for (int i = 0; i < 300; i++)
    many[i] = (double)((i * 7) % 300 + 1); /* 7 and 300 coprime: a permutation */
  ps__bench_stats(many, 300, &r);
  assert_int_equal(r.trials, 300);
  assert_near(r.us_median, 150.5);
  assert_near(r.us_p10, 30.9);
  assert_near(r.us_p90, 270.1);
  assert_near(r.us_min, 1);
  assert_near(r.us_max, 300);
  /* mean 150.5, variance (300^2 - 1) / 12: cv = sqrt(89999 / 12) / 150.5 */
  assert_near(r.cv, 0.5754289651287912);
}

static void test_bus_factor(void **state) {
  (void)state;
  assert_near(ps__allreduce_bus_factor(1), 0);
  assert_near(ps__allreduce_bus_factor(2), 1);
  assert_near(ps__allreduce_bus_factor(4), 1.5);
  assert_near(ps__allreduce_bus_factor(8), 1.75);
  assert_near(ps__allreduce_bus_factor(0), 0);
  assert_near(ps__allreduce_bus_factor(-3), 0);
}

static void test_bench_add(void **state) {
  (void)state;
  ps_bench *b = calloc(1, sizeof(*b));
  assert_non_null(b);
  for (int i = 0; i < 40; i++) {
    ps_bench_result *r = ps__bench_add(b);
    assert_non_null(r);
    assert_int_equal(b->count, (size_t)i + 1);
    assert_ptr_equal(r, &b->results[i]);
    assert_int_equal(r->src, -1);
    assert_int_equal(r->dst, -1);
    assert_int_equal(r->kind, 0);
    assert_int_equal(r->trials, 0);
    assert_true(r->gbps == 0);
    assert_string_equal(r->reason, "");
    r->iters = i; /* earlier entries survive the growth */
  }
  for (int i = 0; i < 40; i++)
    assert_int_equal(b->results[i].iters, i);
  assert_null(ps__bench_add(NULL));
  ps_bench_free(b);
  ps_bench_free(NULL);
}

static void test_names(void **state) {
  (void)state;
  static const char *const kinds[] = {
      "copy_ce", "copy_sm_read",  "copy_sm_write", "local_ce",       "local_sm",         "h2d",
      "d2h",     "latency_write", "latency_chase", "allreduce_nccl", "allreduce_oneshot"};
  assert_int_equal(sizeof(kinds) / sizeof(kinds[0]), PS_BENCH_KIND_COUNT);
  for (int k = 0; k < PS_BENCH_KIND_COUNT; k++) {
    assert_string_equal(ps_bench_kind_name((ps_bench_kind)k), kinds[k]);
    ps_bench_kind back = (ps_bench_kind)-1;
    assert_true(ps__bench_kind_parse(kinds[k], &back));
    assert_int_equal(back, k);
  }
  static const char *const outcomes[] = {"ok", "waived", "failed", "hang", "wrong"};
  for (int o = 0; o < 5; o++) {
    assert_string_equal(ps_bench_outcome_name((ps_bench_outcome)o), outcomes[o]);
    ps_bench_outcome back = (ps_bench_outcome)-1;
    assert_true(ps__bench_outcome_parse(outcomes[o], &back));
    assert_int_equal(back, o);
  }
  assert_string_equal(ps_bench_kind_name((ps_bench_kind)PS_BENCH_KIND_COUNT), "?");
  assert_string_equal(ps_bench_outcome_name((ps_bench_outcome)5), "?");
  ps_bench_kind k = PS_BENCH_H2D;
  assert_false(ps__bench_kind_parse("COPY_CE", &k));
  assert_false(ps__bench_kind_parse("", &k));
  assert_false(ps__bench_kind_parse(NULL, &k));
  assert_int_equal(k, PS_BENCH_H2D); /* untouched */
  ps_bench_outcome o = PS_BENCH_HANG;
  assert_false(ps__bench_outcome_parse("OK", &o));
  assert_int_equal(o, PS_BENCH_HANG);
  assert_true(ps__bench_kind_has_gbps(PS_BENCH_COPY_CE));
  assert_false(ps__bench_kind_has_gbps(PS_BENCH_LATENCY_CHASE));
  assert_true(ps__bench_kind_has_bus_gbps(PS_BENCH_ALLREDUCE_ONESHOT));
  assert_false(ps__bench_kind_has_bus_gbps(PS_BENCH_COPY_CE));
  assert_true(ps__bench_kind_has_ns(PS_BENCH_LATENCY_CHASE));
  assert_false(ps__bench_kind_has_ns(PS_BENCH_LATENCY_WRITE));
}

static void add(ps_bench *b, ps_bench_kind kind, ps_bench_outcome outcome, bool p2p, bool bidir,
                double gbps) {
  ps_bench_result *r = ps__bench_add(b);
  assert_non_null(r);
  r->kind = kind;
  r->outcome = outcome;
  r->src = 0;
  r->dst = 1;
  r->p2p = p2p;
  r->bidirectional = bidir;
  r->gbps = gbps;
}

static void test_min_p2p_gbps(void **state) {
  (void)state;
  assert_true(ps_bench_min_p2p_gbps(NULL) == -1);
  ps_bench *b = calloc(1, sizeof(*b));
  assert_true(ps_bench_min_p2p_gbps(b) == -1);
  add(b, PS_BENCH_COPY_CE, PS_BENCH_WAIVED, true, false, 1);  /* not ok */
  add(b, PS_BENCH_COPY_CE, PS_BENCH_OK, false, false, 2);     /* P2P off */
  add(b, PS_BENCH_COPY_CE, PS_BENCH_OK, true, true, 3);       /* both ways */
  add(b, PS_BENCH_COPY_SM_READ, PS_BENCH_OK, true, false, 4); /* not the copy engine */
  add(b, PS_BENCH_LOCAL_CE, PS_BENCH_OK, true, false, 5);     /* within a GPU */
  assert_true(ps_bench_min_p2p_gbps(b) == -1);
  add(b, PS_BENCH_COPY_CE, PS_BENCH_OK, true, false, 370.5);
  add(b, PS_BENCH_COPY_CE, PS_BENCH_OK, true, false, 24.25);
  add(b, PS_BENCH_COPY_CE, PS_BENCH_OK, true, false, 180);
  assert_true(ps_bench_min_p2p_gbps(b) == 24.25);
  ps_bench_free(b);
}

/* ps_report_free owns the bench (ASan's leak check sees it otherwise). */
static void test_report_frees_bench(void **state) {
  (void)state;
  ps_report *r = calloc(1, sizeof(*r));
  r->bench = calloc(1, sizeof(*r->bench));
  assert_non_null(ps__bench_add(r->bench));
  ps_report_free(r);
}

/* The copy buffer nvbandwidth uses by default (512 MiB) unless --quick, a fixture or
 * --copy-size say otherwise; the pointer chase walks several times through its chain. */
static void test_plan_copy_defaults(void **state) {
  (void)state;
  ps_bench_opts o = PS_INIT(ps_bench_opts);
  ps__bench_plan p;
  ps__bench_plan_defaults(&p, &o, false);
  assert_int_equal(p.copy_bytes, 512ull << 20);
  assert_int_equal(p.iters, 16);
  assert_int_equal(p.trials, 3);
  ps__bench_plan_defaults(&p, &o, true);
  assert_int_equal(p.copy_bytes, 1ull << 20);
  o.quick = true;
  ps__bench_plan_defaults(&p, &o, false);
  assert_int_equal(p.copy_bytes, 32ull << 20);
  o.copy_bytes = 4096;
  ps__bench_plan_defaults(&p, &o, true);
  assert_int_equal(p.copy_bytes, 4096);

  int gpu = 0;
  o = (ps_bench_opts)PS_INIT(ps_bench_opts);
  ps__bench_plan_defaults(&p, &o, false);
  ps__bench_plan_make(&p, NULL, &gpu, 1, PS_BENCH_TEST_COPY | PS_BENCH_TEST_LATENCY);
  assert_false(p.oom);
  int copies = 0, chases = 0;
  for (size_t i = 0; i < p.count; i++) {
    const ps__bench_job *j = &p.jobs[i].job;
    if (p.jobs[i].waived) continue;
    if (j->kind == PS_BENCH_LATENCY_CHASE) {
      chases++;
      assert_int_equal(j->iters, 100000);
    } else {
      copies++;
      assert_int_equal(j->bytes, 512ull << 20);
      assert_int_equal(j->iters, 16);
    }
  }
  assert_int_equal(copies, 4); /* local CE and SM, H2D, D2H */
  assert_int_equal(chases, 1);
  ps__free(p.jobs);

  /* Two GPUs: peer copies at 512 MiB, the staged path (P2P off) at 64 MiB and 4 copies. */
  const int two[] = {0, 1};
  ps__bench_plan_defaults(&p, &o, false);
  ps__bench_plan_make(&p, NULL, two, 2, PS_BENCH_TEST_COPY);
  int staged = 0;
  for (size_t i = 0; i < p.count; i++) {
    const ps__bench_job *j = &p.jobs[i].job;
    if (j->kind != PS_BENCH_COPY_CE) continue;
    assert_int_equal(j->bytes, j->p2p ? 512ull << 20 : 64ull << 20);
    assert_int_equal(j->iters, j->p2p ? 16 : 4);
    staged += !j->p2p;
  }
  assert_int_equal(staged, 3); /* 0 -> 1, 1 -> 0, both at once */
  ps__free(p.jobs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_percentile_small),
      cmocka_unit_test(test_percentile_odd_even),
      cmocka_unit_test(test_stats_unsorted),
      cmocka_unit_test(test_stats_edges),
      cmocka_unit_test(test_bus_factor),
      cmocka_unit_test(test_bench_add),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_min_p2p_gbps),
      cmocka_unit_test(test_report_frees_bench),
      cmocka_unit_test(test_plan_copy_defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
