/* Verification through the real worker against the fake CUDA: each injected fault gives its
 * verdict, a hang is cut at the deadline, no worker is left behind, and the cache works. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

static char cache_dir[256];

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Probes and verifies `fixture`; returns the report, status in *st. */
static ps_report *verify(const char *fixture, int timeout_ms, bool refresh, ps_status *st) {
  ps_test_use_fixture("fake", fixture);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_probe(ctx, NULL, &r) != PS_OK) fail_msg("probe %s: %s", fixture, ps_ctx_error(ctx));
  ps_verify_opts opts = PS_INIT(ps_verify_opts);
  opts.timeout_ms = timeout_ms;
  opts.refresh = refresh;
  opts.cache_dir = cache_dir;
  *st = ps_verify(ctx, r, &opts);
  ps_ctx_free(ctx);
  return r;
}

static void assert_no_children(void) {
  /* every worker is reaped: a finished one by the library's reaper thread once its teardown
   * ends (ps__worker_let_go), so give that a moment; nothing is left to wait for */
  for (int i = 0; i < 500 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
    usleep(10000);
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

static void test_all_ok(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify("example-4x-a100.topo", 0, true, &st);
  assert_int_equal(st, PS_OK);
  assert_true(r->verified);
  for (int i = 0; i < r->pair_count; i++) {
    assert_int_equal(r->pairs[i].verdict, PS_VERDICT_OK);
    assert_true(r->pairs[i].valid & PS_PAIR_CUDA_CLAIM);
    assert_true(r->pairs[i].cuda_can_access);
    assert_true(r->pairs[i].valid & PS_PAIR_COPY_TIME);
  }
  for (int g = 0; g < r->gpu_count; g++) {
    assert_int_equal(r->gpus[g].local_verdict, PS_VERDICT_OK);
    assert_int_equal(r->gpus[g].cuda_ordinal, g);
  }
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  assert_no_children();
  ps_report_free(r);
}

static void test_corrupt(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify("fault-corrupt.topo", 0, true, &st);
  assert_int_equal(st, PS_OK);
  const ps_pair *p = ps_report_pair(r, 1, 2);
  assert_int_equal(p->verdict, PS_VERDICT_CORRUPT);
  assert_int_equal(p->claim_read, PS_CLAIM_OK); /* the driver's claim was a lie */
  assert_true(p->valid & PS_PAIR_CORRUPT_DETAIL);
  assert_int_not_equal(p->corrupt_expected, p->corrupt_seen);
  assert_non_null(strstr(p->reason, "GPU1->GPU2"));
  assert_int_equal(ps_report_pair(r, 0, 1)->verdict, PS_VERDICT_OK);
  ps_report_free(r);
}

/* The fault-corrupt machine with `faults` appended (later lines win), in a scratch file. */
static ps_report *verify_with_faults(const char *faults, char *root) {
  assert_true(ps_test_scratch_dir("verify", root));
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/machine.topo", root);
  FILE *in = fopen(ps_test_fixture_path("fault-corrupt.topo"), "r"), *out = fopen(path, "w");
  assert_non_null(in);
  assert_non_null(out);
  char line[4096];
  while (fgets(line, sizeof(line), in))
    fputs(line, out);
  fputs(faults, out);
  fclose(in);
  assert_int_equal(fclose(out), 0);
  ps_test_use_fixture("fake", "fault-corrupt.topo");
  setenv("PEERSCOPE_FIXTURE", path, 1);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_probe(ctx, NULL, &r) != PS_OK) fail_msg("probe %s: %s", path, ps_ctx_error(ctx));
  ps_verify_opts opts = PS_INIT(ps_verify_opts);
  opts.refresh = true;
  opts.cache_dir = cache_dir;
  assert_int_equal(ps_verify(ctx, r, &opts), PS_OK);
  ps_ctx_free(ctx);
  return r;
}

static void expect_corrupt(const ps_report *r, int a, int b, uint64_t offset, unsigned xor_mask,
                           const char *leg) {
  const ps_pair *p = ps_report_pair(r, a, b);
  if (p->verdict != PS_VERDICT_CORRUPT)
    fail_msg("GPU%d->GPU%d: %s, expected corrupt (%s)", a, b, ps_verdict_name(p->verdict), leg);
  assert_true(p->valid & PS_PAIR_CORRUPT_DETAIL);
  assert_int_equal(p->corrupt_offset, offset);
  assert_int_equal(p->corrupt_expected ^ p->corrupt_seen, xor_mask);
  if (!strstr(p->reason, leg))
    fail_msg("GPU%d->GPU%d: reason '%s' lacks '%s'", a, b, p->reason, leg);
}

/* Corruption anywhere in the 1 MiB buffer, on either leg of a pair: the first byte, one in
 * the middle, the last; a fault past the end changes nothing. Pair (a, b) copies a -> b, then
 * reads back b -> a, so a fault on b -> a shows as pair (a, b)'s read-back leg. */
static void test_corrupt_anywhere(void **state) {
  (void)state;
  char root[PATH_MAX];
  ps_report *r = verify_with_faults("fault corrupt 1 2 offset=524287 xor=0x80\n"
                                    "fault corrupt 0 1 offset=0 xor=0x01\n"
                                    "fault corrupt 2 3 offset=1048575 xor=0xff\n"
                                    "fault corrupt 3 0 offset=1048576 xor=0x01\n"
                                    "fault corrupt 3 3 offset=1048575 xor=0x10\n",
                                    root);
  expect_corrupt(r, 0, 1, 0, 0x01, "copy GPU0->GPU1");
  expect_corrupt(r, 1, 0, 0, 0x01, "read back GPU0->GPU1");
  expect_corrupt(r, 1, 2, 524287, 0x80, "copy GPU1->GPU2");
  expect_corrupt(r, 2, 1, 524287, 0x80, "read back GPU1->GPU2");
  expect_corrupt(r, 2, 3, 1048575, 0xff, "copy GPU2->GPU3");
  expect_corrupt(r, 3, 2, 1048575, 0xff, "read back GPU2->GPU3");
  static const int clean[][2] = {{0, 2}, {2, 0}, {0, 3}, {3, 0}, {1, 3}, {3, 1}};
  for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
    assert_int_equal(ps_report_pair(r, clean[i][0], clean[i][1])->verdict, PS_VERDICT_OK);
  assert_int_equal(r->gpus[3].local_verdict, PS_VERDICT_CORRUPT);
  assert_non_null(strstr(r->gpus[3].local_reason, "offset 1048575"));
  assert_int_equal(r->gpus[0].local_verdict, PS_VERDICT_OK);
  ps_report_free(r);
  assert_int_equal(ps_test_remove_tree(root), 0);
  assert_no_children();
}

static void test_hang(void **state) {
  (void)state;
  ps_status st;
  double t0 = now_ms();
  ps_report *r = verify("fault-hang.topo", 1500, true, &st);
  double took = now_ms() - t0;
  assert_int_equal(st, PS_OK);
  assert_int_equal(ps_report_pair(r, 0, 3)->verdict, PS_VERDICT_HANG);
  assert_true(r->hang_workers >= 1);
  /* a fresh worker finished the rest */
  assert_int_equal(ps_report_pair(r, 1, 2)->verdict, PS_VERDICT_OK);
  assert_int_equal(ps_report_pair(r, 2, 1)->verdict, PS_VERDICT_OK);
  /* each hung step costs its deadline and little more */
  assert_true(took < 1500.0 * (r->hang_workers + 1) + 2000.0);
  assert_no_children();
  ps_report_free(r);
}

static void test_other_faults(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify("fault-unsupported.topo", 0, true, &st);
  assert_int_equal(st, PS_OK);
  int unsupported = 0;
  for (int i = 0; i < r->pair_count; i++)
    unsupported += r->pairs[i].verdict == PS_VERDICT_UNSUPPORTED;
  assert_true(unsupported >= 1);
  ps_report_free(r);

  r = verify("fault-copy-error.topo", 0, true, &st);
  int errors = 0;
  for (int i = 0; i < r->pair_count; i++)
    if (r->pairs[i].verdict == PS_VERDICT_ERROR) {
      errors++;
      assert_string_equal(r->pairs[i].error_name, "CUDA_ERROR_LAUNCH_FAILED");
    }
  assert_true(errors >= 1);
  ps_report_free(r);

  r = verify("fault-local-corrupt.topo", 0, true, &st);
  assert_int_equal(r->gpus[1].local_verdict, PS_VERDICT_CORRUPT);
  assert_int_equal(r->gpus[0].local_verdict, PS_VERDICT_OK);
  ps_report_free(r);

  r = verify("fault-gpu-lost.topo", 0, true, &st);
  assert_int_equal(st, PS_OK);
  assert_int_equal(ps_report_pair(r, 0, 2)->verdict, PS_VERDICT_ERROR);
  assert_int_equal(ps_report_pair(r, 0, 1)->verdict, PS_VERDICT_OK);
  ps_report_free(r);

  r = verify("fault-cuda-init.topo", 0, true, &st);
  assert_int_equal(st, PS_ERR_DRIVER_UNAVAILABLE);
  assert_int_equal(r->pairs[0].verdict, PS_VERDICT_ERROR);
  ps_report_free(r);

  r = verify("fault-missing-symbol.topo", 0, true, &st);
  assert_int_equal(st, PS_ERR_DRIVER_UNAVAILABLE);
  ps_report_free(r);
  assert_no_children();
}

static void test_cache(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify("rtx3090-2-nvlink.topo", 0, true, &st);
  assert_false(r->cache_used);
  ps_report_free(r);
  r = verify("rtx3090-2-nvlink.topo", 0, false, &st);
  assert_true(r->cache_used);
  assert_true(r->pairs[0].from_cache);
  assert_int_equal(r->pairs[0].verdict, PS_VERDICT_OK);
  assert_true(r->timings.worker_spawn_ms < 0); /* no worker was needed */
  ps_report_free(r);
}

static void test_bad_selection(void **state) {
  (void)state;
  ps_test_use_fixture("fake", "example-4x-a100.topo");
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_OK);
  int gpus[] = {0, 7};
  ps_verify_opts opts = {
      .size = sizeof(opts), .gpus = gpus, .gpu_count = 2, .cache_dir = cache_dir};
  assert_int_equal(ps_verify(ctx, r, &opts), PS_ERR_INVALID_ARG);
  assert_non_null(strstr(ps_ctx_error(ctx), "GPU 7"));
  opts.worker_path = "/nonexistent/peerscope-worker";
  gpus[1] = 1;
  opts.refresh = true;
  assert_int_equal(ps_verify(ctx, r, &opts), PS_ERR_WORKER);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

int main(void) {
  snprintf(cache_dir, sizeof(cache_dir), "/tmp/peerscope-test-cache-%d", (int)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_ok),           cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_corrupt_anywhere), cmocka_unit_test(test_hang),
      cmocka_unit_test(test_other_faults),     cmocka_unit_test(test_cache),
      cmocka_unit_test(test_bad_selection),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
  return failed;
}
