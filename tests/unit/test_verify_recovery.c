/* The verification against a driver as hostile as the real one: a sticky error poisons the
 * worker, and a fresh worker must test the pairs left with their true verdicts; a lost GPU
 * ends only its own pairs; the report says which workers were restarted and why, in memory
 * and through JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

/* The 4-GPU PIX base of the fault fixtures (fault-copy-error.topo without its fault) plus
 * `faults`, in a temporary file; returns its path (static buffer). */
static const char *base_with(const char *faults) {
  static char path[64];
  char line[1024];
  FILE *in = fopen(ps_test_fixture_path("fault-copy-error.topo"), "r");
  assert_non_null(in);
  snprintf(path, sizeof(path), "/tmp/ps-recovery-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *out = fdopen(fd, "w");
  assert_non_null(out);
  while (fgets(line, sizeof(line), in))
    if (strncmp(line, "fault ", 6) != 0) fputs(line, out);
  fprintf(out, "%s\n", faults);
  fclose(in);
  fclose(out);
  return path;
}

static ps_report *verify_faults(const char *faults, ps_status *st) {
  const char *path = base_with(faults);
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/../fake", ps_test_env("PEERSCOPE_FAKE_DIR"));
  setenv("PEERSCOPE_DRIVER_DIR", dir, 1);
  setenv("PEERSCOPE_FIXTURE", path, 1);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_probe(ctx, NULL, &r) != PS_OK) fail_msg("probe: %s", ps_ctx_error(ctx));
  ps_verify_opts opts = PS_INIT(ps_verify_opts);
  opts.refresh = true;
  opts.cache_dir = "/nonexistent-cache";
  /* The copy engine's mode alone: the faults break cuMemcpy*, which the ipc mode's copies use
   * too, and the counts below are those of one mode (tests/cli/test_cli.py covers the others). */
  opts.modes = PS_MODE_BIT(PS_MODE_CE);
  *st = ps_verify(ctx, r, &opts);
  ps_ctx_free(ctx);
  unlink(path);
  return r;
}

/* Every pair but a->b and b->a (and every local copy) verified ok. */
static void assert_others_ok(const ps_report *r, int a, int b) {
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    bool faulty = (p->from == a && p->to == b) || (p->from == b && p->to == a);
    if (!faulty) assert_int_equal(p->verdict, PS_VERDICT_OK);
  }
  for (int g = 0; g < r->gpu_count; g++)
    assert_int_equal(r->gpus[g].local_verdict, PS_VERDICT_OK);
}

/* 700 is sticky by default: both pairs whose legs copy 1 -> 3 fail with its name, one
 * restart each, and everything else is ok. */
static void test_illegal_address(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify_faults("fault illegal_address 1 3", &st);
  assert_int_equal(st, PS_OK);
  assert_int_equal(ps_report_pair(r, 1, 3)->verdict, PS_VERDICT_ERROR);
  assert_string_equal(ps_report_pair(r, 1, 3)->error_name, "CUDA_ERROR_ILLEGAL_ADDRESS");
  assert_int_equal(ps_report_pair(r, 3, 1)->verdict, PS_VERDICT_ERROR);
  assert_non_null(strstr(ps_report_pair(r, 3, 1)->reason, "read back GPU1->GPU3"));
  assert_others_ok(r, 1, 3);
  assert_int_equal(r->restart_count, 2);
  assert_int_equal(r->restarts[0].cause, PS_RESTART_STICKY);
  assert_int_equal(r->restarts[0].from, 1);
  assert_int_equal(r->restarts[0].to, 3);
  assert_string_equal(r->restarts[0].error_name, "CUDA_ERROR_ILLEGAL_ADDRESS");
  assert_int_equal(r->restarts[1].from, 3);
  assert_int_equal(r->restarts[1].to, 1);
  assert_int_equal(r->hang_workers, 0);
  assert_string_equal(ps_restart_cause_name(PS_RESTART_STICKY), "sticky_error");
  ps_report_free(r);
}

/* A code the worker does not know as sticky, made sticky by the driver: the probe of an
 * untouched context finds the process poisoned all the same. */
static void test_unknown_sticky_code(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify_faults("fault copy_error 0 1 code=1 sticky=1", &st);
  assert_int_equal(st, PS_OK);
  assert_string_equal(ps_report_pair(r, 0, 1)->error_name, "CUDA_ERROR_INVALID_VALUE");
  assert_others_ok(r, 0, 1);
  assert_int_equal(r->restart_count, 2);
  assert_string_equal(r->restarts[1].error_name, "CUDA_ERROR_INVALID_VALUE");
  ps_report_free(r);
}

/* A code that is not sticky stays with its call: one worker does everything. */
static void test_not_sticky(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify_faults("fault copy_error 2 0 code=999", &st);
  assert_int_equal(st, PS_OK);
  assert_string_equal(ps_report_pair(r, 2, 0)->error_name, "CUDA_ERROR_UNKNOWN");
  assert_int_equal(ps_report_pair(r, 0, 2)->verdict, PS_VERDICT_ERROR);
  assert_others_ok(r, 0, 2);
  assert_int_equal(r->restart_count, 0);
  assert_null(r->restarts);
  ps_report_free(r);

  /* 719 the driver chose not to make sticky: the worker cannot know, and restarts anyway
   * (the documented sticky codes always do); the verdicts are the same. */
  r = verify_faults("fault copy_error 2 0 sticky=0", &st);
  assert_string_equal(ps_report_pair(r, 2, 0)->error_name, "CUDA_ERROR_LAUNCH_FAILED");
  assert_others_ok(r, 0, 2);
  assert_int_equal(r->restart_count, 2);
  ps_report_free(r);
}

/* GPU 3 is lost once its context exists (CUDA call 90: after init, mapping and the four
 * contexts): every pair that touches it ends in 999, the others are ok, and no worker is
 * restarted for it (the other contexts still work). */
static void test_lost_mid_run(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify_faults("fault gpu_lost 3 after=90 driver=cuda", &st);
  assert_int_equal(st, PS_OK);
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    if (p->from == 3 || p->to == 3) {
      assert_int_equal(p->verdict, PS_VERDICT_ERROR);
      assert_string_equal(p->error_name, "CUDA_ERROR_UNKNOWN");
    } else {
      assert_int_equal(p->verdict, PS_VERDICT_OK);
    }
  }
  assert_int_equal(r->restart_count, 0);
  ps_report_free(r);
}

/* The restarts survive JSON: written under verification.worker_restarts and read back. */
static void test_restarts_json(void **state) {
  (void)state;
  ps_status st;
  ps_report *r = verify_faults("fault illegal_address 2 1", &st);
  ps_ctx *ctx = ps_ctx_new();
  char *json = NULL;
  assert_int_equal(ps_report_to_json(ctx, r, &json), PS_OK);
  assert_non_null(strstr(json, "\"worker_restarts\""));
  ps_report *back = NULL;
  assert_int_equal(ps_report_parse_json(ctx, json, strlen(json), "rig.json", &back), PS_OK);
  assert_int_equal(back->restart_count, r->restart_count);
  for (int i = 0; i < r->restart_count; i++) {
    assert_int_equal(back->restarts[i].cause, r->restarts[i].cause);
    assert_int_equal(back->restarts[i].from, r->restarts[i].from);
    assert_int_equal(back->restarts[i].to, r->restarts[i].to);
    assert_string_equal(back->restarts[i].error_name, r->restarts[i].error_name);
    assert_string_equal(back->restarts[i].reason, r->restarts[i].reason);
  }
  /* A bad cause names its path. */
  char *bad = strstr(json, "sticky_error");
  assert_non_null(bad);
  memcpy(bad, "sticky_errox", 12);
  ps_report *none = NULL;
  assert_int_equal(ps_report_parse_json(ctx, json, strlen(json), "rig.json", &none),
                   PS_ERR_BAD_INPUT);
  assert_non_null(strstr(ps_ctx_error(ctx), "verification.worker_restarts[0].cause"));
  ps_free(json);
  ps_report_free(back);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_illegal_address), cmocka_unit_test(test_unknown_sticky_code),
      cmocka_unit_test(test_not_sticky),      cmocka_unit_test(test_lost_mid_run),
      cmocka_unit_test(test_restarts_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
