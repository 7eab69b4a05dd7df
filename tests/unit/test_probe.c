/* The probe against the fake NVML: device facts, link classes, NVLink through NVSwitch and
 * direct, claims, invalid fields, and the driver-loading failures. */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "support.h"

static ps_report *probe(const char *variant, const char *fixture, ps_status expect) {
  ps_test_use_fixture(variant, fixture);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  ps_status st = ps_probe(ctx, NULL, &r);
  if (st != expect) fail_msg("probe %s: %s (%s)", fixture, ps_status_name(st), ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

static void test_hgx_h100(void **state) {
  (void)state;
  ps_report *r = probe("fake", "hgx-h100-8.topo", PS_OK);
  assert_int_equal(r->gpu_count, 8);
  assert_int_equal(r->pair_count, 56);
  assert_int_equal(r->source, PS_SOURCE_FIXTURE);
  const ps_gpu *g = &r->gpus[0];
  assert_string_equal(g->name, "NVIDIA H100 80GB HBM3");
  assert_true(g->valid & PS_GPU_MEMORY_TOTAL);
  assert_int_equal(g->memory_total_bytes, 81559ull << 20);
  assert_int_equal(g->cc_major, 9);
  assert_int_equal(r->gpus[5].numa_node, 1);
  assert_true(r->gpus[0].valid & PS_GPU_PCIE_MAX);
  assert_int_equal(r->gpus[0].pcie_gen_max, 5);
  const ps_pair *p = ps_report_pair(r, 0, 7);
  assert_int_equal(p->link, PS_LINK_NVLINK);
  assert_int_equal(p->nvlink_count, 18);
  assert_true(p->nvswitch);
  assert_int_equal(p->nvlink_version, 6);
  assert_int_equal(p->claim_read, PS_CLAIM_OK);
  assert_int_equal(p->claim_nvlink, PS_CLAIM_OK);
  assert_int_equal(p->verdict, PS_VERDICT_NOT_RUN);
  ps_report_free(r);
}

static void test_dgx1_mesh(void **state) {
  (void)state;
  ps_report *r = probe("fake", "dgx1-v100-8.topo", PS_OK);
  /* DGX-1V hybrid cube mesh: 0-3 NV2, 0-1 NV1, 0-5 no NVLink */
  assert_int_equal(ps_report_pair(r, 0, 3)->nvlink_count, 2);
  assert_int_equal(ps_report_pair(r, 0, 1)->nvlink_count, 1);
  assert_int_equal(ps_report_pair(r, 3, 0)->nvlink_count, 2);
  const ps_pair *p = ps_report_pair(r, 0, 5);
  assert_int_equal(p->nvlink_count, 0);
  assert_int_equal(p->link, PS_LINK_SYS);
  assert_false(p->nvswitch);
  char name[16];
  assert_string_equal(ps_link_name(ps_report_pair(r, 0, 3)->link, 2, name, sizeof(name)), "NV2");
  ps_report_free(r);
}

static void test_pcie_levels(void **state) {
  (void)state;
  ps_report *r = probe("fake", "dual-socket-8-pcie.topo", PS_OK);
  int seen[16] = {0};
  for (int i = 0; i < r->pair_count; i++) {
    assert_true(r->pairs[i].valid & PS_PAIR_LINK);
    seen[r->pairs[i].link]++;
  }
  assert_true(seen[PS_LINK_PIX] > 0);
  assert_true(seen[PS_LINK_SYS] > 0);
  assert_int_equal(seen[PS_LINK_NVLINK], 0);
  assert_true(r->gpus[0].valid & PS_GPU_CPU_AFFINITY);
  ps_report_free(r);
}

static void test_legacy_names(void **state) {
  (void)state;
  /* Old NVML: no _v2/_v3 names, no NUMA id, no remote device type. Facts still read. */
  ps_report *r = probe("fake-legacy", "hgx-h100-8.topo", PS_OK);
  assert_int_equal(r->gpu_count, 8);
  assert_true(r->gpus[0].valid & PS_GPU_PCI_BUS_ID);
  assert_true(r->gpus[0].valid & PS_GPU_NUMA_NODE); /* from nvmlDeviceGetMemoryAffinity */
  assert_int_equal(ps_report_pair(r, 0, 1)->link, PS_LINK_NVLINK);
  ps_report_free(r);
  /* direct NVLinks matched by the legacy remote bus id */
  r = probe("fake-legacy", "dgx1-v100-8.topo", PS_OK);
  assert_int_equal(ps_report_pair(r, 0, 3)->nvlink_count, 2);
  assert_int_equal(ps_report_pair(r, 0, 5)->nvlink_count, 0);
  ps_report_free(r);
}

/* A GPU the driver tells little about: every unknown field is marked invalid, not 0. */
static void test_unknown_fields(void **state) {
  (void)state;
  char path[] = "/tmp/peerscope-probe-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char text[] =
      "peerscope-fixture 1\nmachine \"one T4, little known\"\ndriver version=535.1 cuda=12.2\n"
      "gpu 0 name=\"NVIDIA T4\" uuid=GPU-0000aaaa-0000-0000-0000-000000000000 "
      "bus=00000000:3b:00.0 mem_mib=15360 cc=7.5\n";
  assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
  close(fd);
  setenv("PEERSCOPE_DRIVER_DIR", ps_test_env("PEERSCOPE_FAKE_DIR"), 1);
  setenv("PEERSCOPE_FIXTURE", path, 1);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_OK);
  const ps_gpu *g = &r->gpus[0];
  assert_true(g->valid & PS_GPU_NAME);
  assert_string_equal(g->pci_bus_id, "00000000:3B:00.0");
  assert_false(g->valid & PS_GPU_NUMA_NODE);
  assert_false(g->valid & PS_GPU_CPU_AFFINITY);
  assert_false(g->valid & PS_GPU_PCIE_CURRENT);
  assert_false(g->valid & PS_GPU_BAR1);
  assert_int_equal(r->pair_count, 0);
  ps_report_free(r);
  ps_ctx_free(ctx);
  unlink(path);
}

static void test_driver_failures(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  setenv("PEERSCOPE_DRIVER_DIR", "/nonexistent/dir", 1);
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_ERR_NO_DRIVER);
  assert_null(r);
  assert_non_null(strstr(ps_ctx_error(ctx), "libnvidia-ml.so.1"));

  ps_test_use_fixture("fake-broken", "example-4x-a100.topo");
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_ERR_DRIVER_UNAVAILABLE);
  assert_non_null(strstr(ps_ctx_error(ctx), "nvmlDeviceGetHandleByIndex"));

  ps_test_use_fixture("fake", "fault-nvml-init.topo");
  assert_int_equal(ps_probe(ctx, NULL, &r), PS_ERR_DRIVER_UNAVAILABLE);
  assert_non_null(strstr(ps_ctx_error(ctx), "nvmlInit"));
  assert_null(strchr(ps_ctx_error(ctx), '\n'));
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hgx_h100),       cmocka_unit_test(test_dgx1_mesh),
      cmocka_unit_test(test_pcie_levels),    cmocka_unit_test(test_legacy_names),
      cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_driver_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
