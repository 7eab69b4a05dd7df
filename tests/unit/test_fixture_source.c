/* Fixture selection through the options only: ps_fixture_select chooses the fake drivers and
 * the fixture, probe, verify, bench and doctor play it without PEERSCOPE_DRIVER_DIR or
 * PEERSCOPE_FIXTURE in the environment, and the library sets neither. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static void clean_env(void) {
  unsetenv("PEERSCOPE_DRIVER_DIR");
  unsetenv("PEERSCOPE_FIXTURE");
}

static void env_untouched(void) {
  assert_null(getenv("PEERSCOPE_DRIVER_DIR"));
  assert_null(getenv("PEERSCOPE_FIXTURE"));
}

static void test_select_and_play(void **state) {
  (void)state;
  clean_env();
  ps_ctx *ctx = ps_ctx_new();
  ps_fixture_source *src = NULL;
  const char *path = ps_test_fixture_path("fault-corrupt.topo");
  assert_int_equal(ps_fixture_select(ctx, path, ps_test_env("PEERSCOPE_FAKE_DIR"), &src), PS_OK);
  assert_string_equal(src->fixture, path);
  assert_false(src->example);
  env_untouched();

  ps_probe_opts po = {.size = sizeof(po), .driver_dir = src->driver_dir, .fixture = src->fixture};
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, &po, &r), PS_OK);
  assert_int_equal(r->source, PS_SOURCE_FIXTURE);
  assert_string_equal(r->origin, path);
  assert_int_equal(r->gpu_count, 4);
  /* The worker gets the fixture in its own environment: the fault shows up in a verdict. */
  ps_verify_opts vo = {
      .size = sizeof(vo), .refresh = true, .driver_dir = src->driver_dir, .fixture = src->fixture};
  assert_int_equal(ps_verify(ctx, r, &vo), PS_OK);
  int corrupt = 0;
  for (int i = 0; i < r->pair_count; i++)
    corrupt += r->pairs[i].verdict == PS_VERDICT_CORRUPT;
  assert_true(corrupt > 0);
  ps_doctor_opts dopts = {
      .size = sizeof(dopts), .driver_dir = src->driver_dir, .fixture = src->fixture};
  ps_doctor_result *res = NULL;
  assert_int_equal(ps_doctor_run(ctx, r, &dopts, &res), PS_OK);
  ps_doctor_result_free(res);
  env_untouched();
  ps_report_free(r);

  /* Another fixture in the same process: the earlier choice does not stick. */
  ps_fixture_source *other = NULL;
  const char *h100 = ps_test_fixture_path("hgx-h100-8.topo");
  assert_int_equal(ps_fixture_select(ctx, h100, src->driver_dir, &other), PS_OK);
  po = (ps_probe_opts){
      .size = sizeof(ps_probe_opts), .driver_dir = other->driver_dir, .fixture = other->fixture};
  assert_int_equal(ps_probe(ctx, &po, &r), PS_OK);
  assert_int_equal(r->gpu_count, 8);
  ps_report_free(r);
  ps_fixture_source_free(other);
  ps_fixture_source_free(src);
  ps_ctx_free(ctx);
}

static void test_select_errors(void **state) {
  (void)state;
  clean_env();
  ps_ctx *ctx = ps_ctx_new();
  char path[] = "/tmp/peerscope-bad-fixture-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("peerscope-fixture 1\nmachine \"x\"\nbogus 0 1\n", f);
  fclose(f);
  ps_fixture_source *src = NULL;
  assert_int_equal(ps_fixture_select(ctx, path, NULL, &src), PS_ERR_BAD_INPUT);
  assert_null(src);
  assert_non_null(strstr(ps_ctx_error(ctx), path));
  assert_non_null(strstr(ps_ctx_error(ctx), ":3:"));
  unlink(path);
  assert_int_equal(ps_fixture_select(ctx, "/nonexistent/x.topo", NULL, &src), PS_ERR_BAD_INPUT);
  assert_null(src);
  /* A fixture needs the fake drivers: a directory without them is no driver at all. */
  ps_probe_opts po = {.size = sizeof(po),
                      .driver_dir = "/nonexistent/dir",
                      .fixture = ps_test_fixture_path("example-4x-a100.topo")};
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, &po, &r), PS_ERR_NO_DRIVER);
  assert_null(r);
  env_untouched();
  ps_fixture_source_free(NULL);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_select_and_play),
      cmocka_unit_test(test_select_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
