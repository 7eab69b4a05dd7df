/* Pure helpers: status names, PCI bus ids, cpulists, the worker protocol's parsers, the
 * bundled-file lookup. */
#include <string.h>

#include "support.h"

#include "core/busid.h"
#include "core/internal.h"
#include "probe/probe_internal.h"
#include "verify/protocol.h"

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(ps_status_name(PS_OK), "OK");
  assert_string_equal(ps_status_name(PS_ERR_NO_DRIVER), "ERR_NO_DRIVER");
  assert_string_equal(ps_status_str(PS_ERR_BAD_INPUT), "malformed input");
  assert_string_equal(ps_status_name((ps_status)999), "UNKNOWN_STATUS");
  /* numbers are an ABI: the Python mirror depends on them */
  assert_int_equal(PS_ERR_INTERNAL, 9);
  assert_int_equal(PS_ERR_NO_DRIVER, 10);
  assert_int_equal(ps_abi_version(), PS_ABI_VERSION);
}

static void test_busid(void **state) {
  (void)state;
  char out[32];
  assert_true(ps__busid_canonical("0000:1b:00.0", out, sizeof(out)));
  assert_string_equal(out, "00000000:1B:00.0");
  assert_true(ps__busid_canonical("00000000:1B:00.0", out, sizeof(out)));
  assert_string_equal(out, "00000000:1B:00.0");
  assert_true(ps__busid_equal("0000:1b:00.0", "00000000:1B:00.0"));
  assert_false(ps__busid_equal("0000:1b:00.0", "0000:1c:00.0"));
  assert_false(ps__busid_canonical("not a bus id", out, sizeof(out)));
  assert_false(ps__busid_canonical("0000:1b:00.0x", out, sizeof(out)));
  assert_false(ps__busid_canonical("0000:1ff:00.0", out, sizeof(out)));
  assert_false(ps__busid_canonical("", out, sizeof(out)));
}

static void test_cpulist(void **state) {
  (void)state;
  unsigned long mask[4] = {0};
  char out[64];
  ps__cpulist_format(mask, 4, out, sizeof(out));
  assert_string_equal(out, "");
  mask[0] = 0xffffUL;         /* 0-15 */
  mask[1] = 1UL | (1UL << 2); /* 64, 66 */
  ps__cpulist_format(mask, 4, out, sizeof(out));
  assert_string_equal(out, "0-15,64,66");
  mask[0] = ~0UL;
  mask[1] = ~0UL; /* a run across words */
  ps__cpulist_format(mask, 4, out, sizeof(out));
  assert_string_equal(out, "0-127");
  char tiny[4];
  ps__cpulist_format(mask, 4, tiny, sizeof(tiny)); /* truncates, stays terminated */
  assert_true(strlen(tiny) < sizeof(tiny));
}

static void test_job_parse(void **state) {
  (void)state;
  ps__job job;
  assert_true(ps__job_parse("L3", &job));
  assert_true(job.local);
  assert_int_equal(job.a, 3);
  assert_true(ps__job_parse("P0.12", &job));
  assert_false(job.local);
  assert_int_equal(job.a, 0);
  assert_int_equal(job.b, 12);
  assert_false(ps__job_parse("P1.1", &job)); /* a pair needs two GPUs */
  assert_false(ps__job_parse("P1.", &job));
  assert_false(ps__job_parse("L", &job));
  assert_false(ps__job_parse("X1", &job));
  assert_false(ps__job_parse("L-1", &job));
}

static void test_result_parse(void **state) {
  (void)state;
  ps__job_result r;
  assert_true(ps__result_parse("corrupt",
                               "access=1 us=12.5 offset=4096 expected=171 seen=170 "
                               "reason=copy GPU1->GPU2: bytes differ",
                               &r));
  assert_int_equal(r.verdict, PS_VERDICT_CORRUPT);
  assert_int_equal(r.access, 1);
  assert_true(r.has_corrupt);
  assert_int_equal(r.offset, 4096);
  assert_int_equal(r.expected, 171);
  assert_int_equal(r.seen, 170);
  assert_string_equal(r.reason, "copy GPU1->GPU2: bytes differ");
  assert_true(ps__result_parse("error", "error=CUDA_ERROR_LAUNCH_FAILED reason=", &r));
  assert_int_equal(r.access, -1);
  assert_string_equal(r.error, "CUDA_ERROR_LAUNCH_FAILED");
  assert_true(ps__result_parse("ok", "future=field us=3", &r)); /* unknown fields skipped */
  assert_false(ps__result_parse("maybe", "", &r));
  assert_false(ps__result_parse("ok", "novalue", &r));
}

/* Options of an older, smaller layout: the fields it has are read, the rest are zero; an
 * unset size is refused; a NULL pointer is all defaults. */
static void test_opts_size(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_verify_opts given = PS_INIT(ps_verify_opts), got;
  given.timeout_ms = 7;
  given.copy_bytes = 99;
  given.fixture = "later field";
  given.size = offsetof(ps_verify_opts, copy_bytes); /* an "old" caller: up to timeout_ms */
  assert_int_equal(PS__OPTS_IN(ctx, &given, &got, "ps_verify_opts"), PS_OK);
  assert_int_equal(got.size, sizeof(got));
  assert_int_equal(got.timeout_ms, 7);
  assert_int_equal(got.copy_bytes, 0);
  assert_null(got.fixture);
  given.size = sizeof(given) + 64; /* a "newer" caller: what this library knows is read */
  assert_int_equal(PS__OPTS_IN(ctx, &given, &got, "ps_verify_opts"), PS_OK);
  assert_string_equal(got.fixture, "later field");
  assert_int_equal(PS__OPTS_IN(ctx, NULL, &got, "ps_verify_opts"), PS_OK);
  assert_int_equal(got.timeout_ms, 0);
  ps_probe_opts unset = {0};
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, &unset, &r), PS_ERR_INVALID_ARG);
  assert_non_null(strstr(ps_ctx_error(ctx), "ps_probe_opts: size is not set"));
  assert_null(r);
  ps_plan_input *in = NULL;
  assert_int_equal(ps_plan_input_new(ctx, &in), PS_OK);
  ps_plan_request req = {0}; /* filled only as far as its size says: unset is refused */
  assert_int_equal(ps_plan_input_request(ctx, in, NULL, &req), PS_ERR_INVALID_ARG);
  req.size = offsetof(ps_plan_request, tp);
  assert_int_equal(ps_plan_input_set(ctx, in, "tp", "2"), PS_OK);
  assert_int_equal(ps_plan_input_request(ctx, in, NULL, &req), PS_OK);
  assert_int_equal(req.tp, 0); /* beyond the size: untouched */
  ps_plan_input_free(in);
  ps_ctx_free(ctx);
}

static void test_bundled_paths(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  char path[4096];
  /* The test binary sits in build/bin, like the CLI: the lookup must find the build tree. */
  assert_int_equal(ps_bundled_path(ctx, PS_BUNDLED_WORKER, path, sizeof(path)), PS_OK);
  assert_non_null(strstr(path, "peerscope-worker"));
  assert_int_equal(ps_bundled_path(ctx, PS_BUNDLED_FAKE_DRIVERS, path, sizeof(path)), PS_OK);
  assert_int_equal(ps_bundled_path(ctx, PS_BUNDLED_FIXTURES, path, sizeof(path)), PS_OK);
  assert_int_equal(ps_bundled_path(ctx, (ps_bundled)42, path, sizeof(path)), PS_ERR_INVALID_ARG);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_names), cmocka_unit_test(test_busid),
      cmocka_unit_test(test_cpulist),      cmocka_unit_test(test_job_parse),
      cmocka_unit_test(test_result_parse), cmocka_unit_test(test_bundled_paths),
      cmocka_unit_test(test_opts_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
