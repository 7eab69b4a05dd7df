/* Capture's library parts: the fixture written from a report plays back the same machine
 * (probe the fixture, write it, probe the copy: same report), a capture written and opened
 * again gives the report back, and a file that is not a capture is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#include "capture/capture.h"
#include "fixture/fixture.h"

static ps_report *probe(ps_ctx *ctx) {
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_OK);
  return r;
}

static void same_machine(const ps_report *a, const ps_report *b) {
  assert_int_equal(a->gpu_count, b->gpu_count);
  assert_string_equal(a->driver_version, b->driver_version);
  assert_int_equal(a->cuda_driver_version, b->cuda_driver_version);
  for (int g = 0; g < a->gpu_count; g++) {
    assert_string_equal(a->gpus[g].name, b->gpus[g].name);
    assert_string_equal(a->gpus[g].uuid, b->gpus[g].uuid);
    assert_string_equal(a->gpus[g].pci_bus_id, b->gpus[g].pci_bus_id);
    assert_int_equal(a->gpus[g].memory_total_bytes, b->gpus[g].memory_total_bytes);
    assert_int_equal(a->gpus[g].valid, b->gpus[g].valid);
  }
  for (int i = 0; i < a->pair_count; i++) {
    assert_int_equal(a->pairs[i].link, b->pairs[i].link);
    assert_int_equal(a->pairs[i].nvlink_count, b->pairs[i].nvlink_count);
    assert_int_equal(a->pairs[i].claim_read, b->pairs[i].claim_read);
    assert_int_equal(a->pairs[i].claim_write, b->pairs[i].claim_write);
    assert_int_equal(a->pairs[i].cuda_can_access, b->pairs[i].cuda_can_access);
  }
}

static void fixture_round_trip(const char *name) {
  ps_test_use_fixture("fake", name);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *a = probe(ctx);
  char *text = NULL;
  assert_int_equal(ps__capture_fixture(ctx, a, NULL, &text), PS_OK);
  char err[512] = "";
  ps_fixture *f = ps__fixture_parse(text, strlen(text), name, err, sizeof(err));
  if (!f) fail_msg("%s: %s\n%s", name, err, text);
  ps__fixture_free(f);
  char path[] = "/tmp/peerscope-capture-unit-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  setenv("PEERSCOPE_FIXTURE", path, 1);
  ps_report *b = probe(ctx);
  same_machine(a, b);
  unlink(path);
  ps_report_free(a);
  ps_report_free(b);
  ps_free(text);
  ps_ctx_free(ctx);
}

static void test_fixture_from_report(void **state) {
  (void)state;
  static const char *const names[] = {"example-4x-a100.topo",     "dgx1-v100-8.topo",
                                      "hgx-h100-8.topo",          "mixed-gpus.topo",
                                      "pcie-4-consumer-cns.topo", "rtx3090-2-nvlink.topo"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    fixture_round_trip(names[i]);
}

static void test_write_and_open(void **state) {
  (void)state;
  ps_test_use_fixture("fake", "example-4x-a100.topo");
  ps_ctx *ctx = ps_ctx_new();
  ps_report *a = probe(ctx);
  char dir[] = "/tmp/peerscope-capture-unit-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char out[256];
  snprintf(out, sizeof(out), "%s/c.tar.gz", dir);
  const char *const env[] = {"NCCL_P2P_DISABLE=1", "HOME=/root", NULL};
  ps_capture_opts opts = {.size = sizeof(opts), .env = env};
  assert_int_equal(ps_capture_write(ctx, a, &opts, out), PS_OK);
  assert_true(ps_capture_is_archive(out));
  ps_capture *cap = NULL;
  assert_int_equal(ps_capture_open(ctx, out, NULL, &cap), PS_OK);
  ps_report *b = NULL;
  assert_int_equal(ps_capture_report(ctx, cap, &b), PS_OK);
  assert_int_equal(b->source, PS_SOURCE_FILE);
  assert_string_equal(b->origin, out);
  same_machine(a, b);
  /* Only the doctor's variables travel. */
  assert_non_null(cap->env[0]);
  assert_string_equal(cap->env[0], "NCCL_P2P_DISABLE=1");
  assert_null(cap->env[1]);
  char extracted[600];
  snprintf(extracted, sizeof(extracted), "%s", cap->dir);
  ps_capture_free(cap);
  struct stat st;
  assert_int_not_equal(stat(extracted, &st), 0);
  /* Opened twice: a fresh directory each time, under the directory given. */
  assert_int_equal(ps_capture_open(ctx, out, dir, &cap), PS_OK);
  assert_string_not_equal(cap->dir, extracted);
  assert_memory_equal(cap->dir, dir, strlen(dir));
  ps_capture_free(cap);
  /* A report is not a capture. */
  FILE *f = fopen(out, "w");
  fputs("{}", f);
  fclose(f);
  assert_false(ps_capture_is_archive(out));
  cap = NULL;
  assert_int_equal(ps_capture_open(ctx, out, NULL, &cap), PS_ERR_BAD_INPUT);
  assert_null(cap);
  assert_non_null(strstr(ps_ctx_error(ctx), out));
  unlink(out);
  rmdir(dir);
  ps_report_free(a);
  ps_report_free(b);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixture_from_report),
      cmocka_unit_test(test_write_and_open),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
