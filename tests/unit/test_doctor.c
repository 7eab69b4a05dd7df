/* The doctor's parts on hand-built inputs: the ACS capability walk on malformed config
 * images (short, loops, wild pointers), environment and GPU checks on synthetic reports,
 * and a whole run over a sysfs tree full of broken files (no crash, "not checked"). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#include "doctor/doctor_internal.h"
#include "report/report_internal.h"

static void put32(uint8_t *b, unsigned off, uint32_t v) {
  b[off] = (uint8_t)v, b[off + 1] = (uint8_t)(v >> 8), b[off + 2] = (uint8_t)(v >> 16),
  b[off + 3] = (uint8_t)(v >> 24);
}

static uint32_t ecap(unsigned id, unsigned next) { return id | 1u << 16 | next << 20; }

static void test_acs_found(void **state) {
  (void)state;
  uint8_t cfg[4096] = {0};
  put32(cfg, 0x100, ecap(0x0001, 0x148));
  put32(cfg, 0x148, ecap(0x000D, 0));
  cfg[0x14E] = 0x1d;
  unsigned cap = 0;
  uint16_t ctl = 0;
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_FOUND);
  assert_int_equal(cap, 0x148);
  assert_int_equal(ctl, 0x1d);
  char text[160];
  ps__acs_format(ctl, text, sizeof(text));
  assert_string_equal(text, "SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ "
                            "EgressCtrl- DirectTrans-");
  /* The file ends inside the capability: malformed, not a read past the end. */
  assert_int_equal(ps__acs_find(cfg, 0x14C, &cap, &ctl), PS_ACS_MALFORMED);
  /* Longer than config space: only 4096 bytes count. */
  assert_int_equal(ps__acs_find(cfg, 1 << 20, &cap, &ctl), PS_ACS_FOUND);
}

static void test_acs_bad_lists(void **state) {
  (void)state;
  uint8_t cfg[4096] = {0};
  unsigned cap = 0;
  uint16_t ctl = 0;
  assert_int_equal(ps__acs_find(cfg, 0, &cap, &ctl), PS_ACS_SHORT);
  assert_int_equal(ps__acs_find(cfg, 64, &cap, &ctl), PS_ACS_SHORT);
  assert_int_equal(ps__acs_find(cfg, 0x103, &cap, &ctl), PS_ACS_SHORT);
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_ABSENT); /* empty */
  memset(cfg + 0x100, 0xff, 4);
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_ABSENT); /* no device */
  put32(cfg, 0x100, ecap(0x0001, 0x100));                                      /* loop on itself */
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_MALFORMED);
  put32(cfg, 0x100, ecap(0x0001, 0x200)); /* two-step loop */
  put32(cfg, 0x200, ecap(0x0002, 0x100));
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_MALFORMED);
  put32(cfg, 0x100, ecap(0x0001, 0x040)); /* into the standard header */
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_MALFORMED);
  put32(cfg, 0x100, ecap(0x0001, 0xFFC)); /* past a short file */
  assert_int_equal(ps__acs_find(cfg, 512, &cap, &ctl), PS_ACS_MALFORMED);
  put32(cfg, 0xFFC, ecap(0x0003, 0)); /* last dword of config space, chain ends */
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_ABSENT);
  /* The longest legal chain: every dword a capability, ACS last. */
  for (unsigned off = 0x100; off < 0xFFC; off += 4)
    put32(cfg, off, ecap(0x0001, off + 4));
  put32(cfg, 0xFFC, ecap(0x000D, 0));
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_MALFORMED); /* cut */
  put32(cfg, 0xFF8, ecap(0x000D, 0));
  assert_int_equal(ps__acs_find(cfg, sizeof(cfg), &cap, &ctl), PS_ACS_FOUND);
  assert_int_equal(cap, 0xFF8);
  /* Random images: whatever the answer, no crash and a valid status. */
  srand(7);
  for (int round = 0; round < 2000; round++) {
    for (size_t i = 0x100; i < sizeof(cfg); i++)
      cfg[i] = (uint8_t)rand();
    ps__acs_status st = ps__acs_find(cfg, (size_t)(rand() % 5000), &cap, &ctl);
    assert_true(st >= PS_ACS_FOUND && st <= PS_ACS_MALFORMED);
  }
}

static ps_report *two_gpus(const char *name0, const char *name1, uint64_t mem0, uint64_t mem1) {
  ps_report *r = ps__report_new(2);
  assert_non_null(r);
  r->source = PS_SOURCE_FILE; /* no sysfs, no NVML unless a root is given */
  r->verified = true;
  const char *names[2] = {name0, name1};
  uint64_t mem[2] = {mem0, mem1};
  for (int g = 0; g < 2; g++) {
    ps_gpu *gpu = &r->gpus[g];
    gpu->valid |= PS_GPU_NAME | PS_GPU_MEMORY_TOTAL | PS_GPU_PCI_BUS_ID | PS_GPU_UUID;
    snprintf(gpu->name, sizeof(gpu->name), "%s", names[g]);
    snprintf(gpu->uuid, sizeof(gpu->uuid), "GPU-0000000%d-0000-0000-0000-000000000000", g);
    snprintf(gpu->pci_bus_id, sizeof(gpu->pci_bus_id), "00000000:0%d:00.0", g + 1);
    gpu->memory_total_bytes = mem[g];
    gpu->local_verdict = PS_VERDICT_OK;
  }
  for (int i = 0; i < r->pair_count; i++) {
    ps_pair *p = &r->pairs[i];
    p->valid |= PS_PAIR_LINK | PS_PAIR_CLAIMS;
    p->link = PS_LINK_PIX;
    p->claim_read = p->claim_write = PS_CLAIM_OK;
    p->verdict = PS_VERDICT_OK;
  }
  return r;
}

static const ps_finding *find(const ps_doctor_result *res, const char *code) {
  for (int i = 0; i < res->count; i++)
    if (strcmp(res->findings[i].code, code) == 0) return &res->findings[i];
  return NULL;
}

static ps_doctor_result *run(const ps_report *r, const char *const *env, const char *root) {
  ps_ctx *ctx = ps_ctx_new();
  ps_doctor_opts opts = PS_INIT(ps_doctor_opts);
  opts.env = env;
  opts.sysfs_root = root;
  opts.skip_nvml = true;
  ps_doctor_result *res = NULL;
  assert_int_equal(ps_doctor_run(ctx, r, &opts, &res), PS_OK);
  ps_ctx_free(ctx);
  assert_non_null(res);
  for (int i = 1; i < res->count; i++) /* most serious first */
    assert_true(res->findings[i - 1].severity >= res->findings[i].severity);
  for (int i = 0; i < res->count; i++) {
    assert_true(res->findings[i].title[0] && res->findings[i].evidence[0]);
    assert_true(res->findings[i].breaks[0] && res->findings[i].fix[0]);
    assert_true(strncmp(res->findings[i].link, "https://", 8) == 0);
  }
  return res;
}

static void test_clean_report(void **state) {
  (void)state;
  ps_report *r = two_gpus("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 80ull << 30, 80ull << 30);
  const char *env[] = {"PATH=/usr/bin", NULL};
  r->gpus[1].memory_total_bytes -= 1ull << 30; /* ECC on one card: 79 vs 80 GiB, same kind */
  ps_doctor_result *res = run(r, env, NULL);
  assert_int_equal(res->count, 0);
  assert_int_equal(res->errors, 0);
  assert_true(res->check_count >= 8);
  assert_string_equal(res->checks[2].name, "acs");
  assert_int_equal(res->checks[2].state, PS_CHECK_NOT_CHECKED); /* a file's GPUs */
  ps_doctor_result_free(res);
  ps_report_free(r);
}

static void test_mixed_and_env(void **state) {
  (void)state;
  ps_report *r = two_gpus("NVIDIA RTX A6000", "NVIDIA RTX A4000", 48ull << 30, 16ull << 30);
  const char *env[] = {"CUDA_VISIBLE_DEVICES=GPU-00000001,7", "NCCL_P2P_LEVEL=LOC",
                       "NCCL_P2P_DISABLE=1", NULL};
  ps_doctor_result *res = run(r, env, NULL);
  assert_non_null(find(res, "mixed-gpus"));
  assert_non_null(find(res, "cuda-device-order"));
  const ps_finding *cvd = find(res, "cuda-visible-devices");
  assert_non_null(cvd);
  assert_int_equal(cvd->severity, PS_SEVERITY_ERROR);
  assert_non_null(strstr(cvd->evidence, "no GPU '7'"));
  assert_null(strstr(cvd->evidence, "'GPU-00000001'")); /* a UUID prefix is valid */
  assert_non_null(find(res, "nccl-p2p-level"));
  assert_non_null(find(res, "nccl-p2p-disabled"));
  assert_int_equal(res->findings[0].severity, PS_SEVERITY_ERROR);
  assert_int_equal(res->errors, 1);
  ps_doctor_result_free(res);

  const char *ok_env[] = {"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=1,0",
                          "NCCL_P2P_LEVEL=PIX", NULL};
  res = run(r, ok_env, NULL);
  assert_null(find(res, "cuda-device-order"));
  assert_null(find(res, "cuda-visible-devices"));
  assert_null(find(res, "nccl-p2p-level"));
  ps_doctor_result_free(res);

  /* NVLink as the level on GPUs behind a PCIe switch (PIX): NCCL would skip P2P. */
  const char *nvl_env[] = {"NCCL_P2P_LEVEL=NVL", NULL};
  res = run(r, nvl_env, NULL);
  const ps_finding *level = find(res, "nccl-p2p-level");
  assert_non_null(level);
  assert_non_null(strstr(level->title, "below the verified links (PIX)"));
  ps_doctor_result_free(res);

  const char *empty_env[] = {"CUDA_VISIBLE_DEVICES=", NULL};
  res = run(r, empty_env, NULL);
  assert_non_null(find(res, "cuda-visible-devices"));
  ps_doctor_result_free(res);
  ps_report_free(r);
}

static void test_failed_pair(void **state) {
  (void)state;
  ps_report *r = two_gpus("NVIDIA L4", "NVIDIA L4", 22ull << 30, 22ull << 30);
  ps_pair *p = &r->pairs[ps__pair_slot(2, 0, 1)];
  p->verdict = PS_VERDICT_CORRUPT;
  p->valid |= PS_PAIR_CORRUPT_DETAIL;
  p->corrupt_offset = 4096;
  p->corrupt_expected = 0x10;
  p->corrupt_seen = 0x11;
  const char *env[] = {"VLLM_SKIP_P2P_CHECK=1", "NCCL_P2P_DISABLE=1", NULL};
  ps_doctor_result *res = run(r, env, NULL);
  const ps_finding *f = find(res, "p2p-verify-failed");
  assert_non_null(f);
  assert_int_equal(f->gpu_a, 0);
  assert_int_equal(f->gpu_b, 1);
  assert_non_null(strstr(f->evidence, "offset 4096 arrived as 0x11, expected 0x10"));
  assert_non_null(find(res, "vllm-skip-p2p-check"));
  assert_null(find(res, "nccl-p2p-disabled")); /* disabling is right here */
  assert_string_equal(res->findings[0].code, "p2p-verify-failed");
  ps_doctor_result_free(res);
  ps_report_free(r);
}

/* ---- a sysfs tree of broken files -------------------------------------------------- */

static char tree[PATH_MAX];

static void mk(const char *rel) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", tree, rel);
  for (char *s = path + strlen(tree) + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      mkdir(path, 0755);
      *s = '/';
    }
  mkdir(path, 0755);
}

static void write_file(const char *rel, const void *data, size_t len) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", tree, rel);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (len) assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void link_to(const char *target, const char *rel) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", tree, rel);
  assert_int_equal(symlink(target, path), 0);
}

static void test_broken_tree(void **state) {
  (void)state;
  snprintf(tree, sizeof(tree), "%s/peerscope-doctor-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(tree));
  mk("sys/bus/pci/devices");
  mk("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0");
  mk("sys/devices/pci0000:00/0000:00:02.0");
  mk("sys/class/iommu/dmar0");
  mk("proc/driver/nvidia");
  /* GPU 0: below an empty bridge config; its link files hold garbage. */
  write_file("sys/devices/pci0000:00/0000:00:01.0/config", "", 0);
  write_file("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/current_link_speed", "fast\n", 5);
  write_file("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/max_link_speed", "", 0);
  link_to("../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0",
          "sys/bus/pci/devices/0000:01:00.0");
  /* GPU 1: a link loop. */
  link_to("0000:02:00.0", "sys/bus/pci/devices/0000:02:00.0");
  /* A proc version line without a version, a cmdline without a newline. */
  write_file("proc/driver/nvidia/version", "NVRM version: garbage\n", 22);
  write_file("proc/cmdline", "quiet", 5);

  ps_report *r = two_gpus("NVIDIA L4", "NVIDIA L4", 22ull << 30, 22ull << 30);
  snprintf(r->gpus[1].pci_bus_id, sizeof(r->gpus[1].pci_bus_id), "00000000:02:00.0");
  ps_doctor_result *res = run(r, NULL, tree);
  assert_string_equal(res->sysfs_root, tree);
  assert_string_equal(res->checks[2].name, "acs");
  assert_int_equal(res->checks[2].state, PS_CHECK_NOT_CHECKED);
  assert_non_null(find(res, "iommu-translated")); /* dmar0 and no iommu=pt */
  ps_doctor_result_free(res);

  /* GPU 1 escapes the tree through an absolute link: refused, not followed outside. */
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:02:00.0", tree);
  unlink(path);
  link_to("/sys/devices", "sys/bus/pci/devices/0000:02:00.0");
  res = run(r, NULL, tree);
  assert_int_equal(res->checks[2].state, PS_CHECK_NOT_CHECKED);
  ps_doctor_result_free(res);
  ps_report_free(r);
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
  assert_int_equal(system(cmd), 0);
}

/* ---- ACSCtl values and IOMMU domain types on a copy of a recorded tree ------------------- */

#define PORT_CONFIG "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:08.0/config"
#define ACS_CTL_AT 0x14E /* the ACS capability sits at 0x148 in make_trees.py's images */

/* The recorded two-GPU switch machine with ACS off (tests/fixtures/sysfs/acs-off), copied. */
static void copy_acs_off_tree(void) {
  assert_true(ps_test_scratch_dir("doctor-acs", tree));
  char cmd[PATH_MAX * 3];
  snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s'", ps_test_fixture_path("sysfs/acs-off"), tree);
  assert_int_equal(system(cmd), 0);
}

static void patch_file(const char *rel, long at, const void *bytes, size_t len) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", tree, rel);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  assert_int_equal(fwrite(bytes, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static ps_report *switch_gpus(void) {
  ps_report *r =
      two_gpus("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe", 80ull << 30, 80ull << 30);
  for (int g = 0; g < 2; g++)
    snprintf(r->gpus[g].pci_bus_id, sizeof(r->gpus[g].pci_bus_id), "00000000:0%d:00.0", g + 3);
  return r;
}

/* Each bit that redirects or blocks P2P (ReqRedir, CmpltRedir, EgressCtrl) is a finding on its
 * own; SrcValid, TransBlk, UpstreamFwd and DirectTrans alone, and all off, are not. */
static void test_acs_values(void **state) {
  (void)state;
  static const struct {
    uint16_t ctl;
    bool redirects;
  } cases[] = {{0x0000, false}, {0x0001, false}, {0x0002, false}, {0x0004, true},
               {0x0008, true},  {0x0010, false}, {0x0020, true},  {0x0040, false},
               {0x0053, false}, {0x001D, true},  {0x007F, true}};
  copy_acs_off_tree();
  ps_report *r = switch_gpus();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t le[2] = {(uint8_t)cases[i].ctl, (uint8_t)(cases[i].ctl >> 8)};
    patch_file(PORT_CONFIG, ACS_CTL_AT, le, sizeof(le));
    ps_doctor_result *res = run(r, NULL, tree);
    const ps_finding *f = find(res, "acs-redirect");
    assert_string_equal(res->checks[2].name, "acs");
    if (!cases[i].redirects) {
      if (f) fail_msg("ACSCtl 0x%04x: unexpected finding: %s", cases[i].ctl, f->evidence);
      assert_int_equal(res->checks[2].state, PS_CHECK_OK);
    } else {
      if (!f) fail_msg("ACSCtl 0x%04x: no acs-redirect finding", cases[i].ctl);
      char want[80];
      snprintf(want, sizeof(want), "ACS capability at 0x148, ACSCtl = 0x%04x", cases[i].ctl);
      assert_non_null(strstr(f->evidence, want));
      assert_non_null(strstr(f->title, "0000:02:08.0"));
      assert_int_equal(res->checks[2].state, PS_CHECK_FINDING);
    }
    ps_doctor_result_free(res);
  }
  ps_report_free(r);
  assert_int_equal(ps_test_remove_tree(tree), 0);
}

/* The GPU's iommu_group/type: identity is passthrough; DMA and DMA-FQ translate. */
static void test_iommu_types(void **state) {
  (void)state;
  static const struct {
    const char *type;
    bool translated;
  } cases[] = {{"identity\n", false}, {"DMA\n", true}, {"DMA-FQ\n", true}};
  copy_acs_off_tree();
  ps_report *r = switch_gpus();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    write_file("sys/bus/pci/devices/0000:04:00.0/iommu_group/type", cases[i].type,
               strlen(cases[i].type));
    ps_doctor_result *res = run(r, NULL, tree);
    const ps_finding *f = find(res, "iommu-translated");
    if (cases[i].translated != (f != NULL))
      fail_msg("iommu_group/type %s: finding %s", cases[i].type, f ? "present" : "missing");
    if (f) assert_non_null(strstr(f->evidence, "0000:04:00.0/iommu_group/type = DMA"));
    ps_doctor_result_free(res);
  }
  ps_report_free(r);
  assert_int_equal(ps_test_remove_tree(tree), 0);
}

static void test_bad_args(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_doctor_result *res = (ps_doctor_result *)1;
  assert_int_equal(ps_doctor_run(ctx, NULL, NULL, &res), PS_ERR_INVALID_ARG);
  assert_null(res);
  ps_report *r = two_gpus("a", "a", 1, 1);
  assert_int_equal(ps_doctor_run(ctx, r, NULL, NULL), PS_ERR_INVALID_ARG);
  char longroot[700];
  memset(longroot, 'x', sizeof(longroot) - 1);
  longroot[sizeof(longroot) - 1] = '\0';
  ps_doctor_opts opts = {.size = sizeof(opts), .sysfs_root = longroot, .skip_nvml = true};
  assert_int_equal(ps_doctor_run(ctx, r, &opts, &res), PS_ERR_INVALID_ARG);
  ps_doctor_result_free(NULL);
  assert_string_equal(ps_severity_name(PS_SEVERITY_WARNING), "warning");
  assert_string_equal(ps_check_state_name(PS_CHECK_NOT_CHECKED), "not checked");
  ps_report_free(r);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acs_found),    cmocka_unit_test(test_acs_bad_lists),
      cmocka_unit_test(test_clean_report), cmocka_unit_test(test_mixed_and_env),
      cmocka_unit_test(test_failed_pair),  cmocka_unit_test(test_broken_tree),
      cmocka_unit_test(test_acs_values),   cmocka_unit_test(test_iommu_types),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
