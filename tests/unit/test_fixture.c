/* The fixture parser: every shipped fixture parses to the machine it describes, every
 * bad fixture fails with its exact "file:line:col: message", and no input crashes it. */
#include "support.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture/fixture.h"

static ps_fixture *load(const char *name) {
  char err[512];
  ps_fixture *f = ps__fixture_load(ps_test_fixture_path(name), err, sizeof(err));
  if (!f) fail_msg("%s", err);
  return f;
}

static const ps_fix_pair *pair(const ps_fixture *f, int a, int b) {
  return ps__fixture_pair(f, a, b);
}

/* A fixture file by its name: NAME.topo. */
static bool is_topo(const char *name) {
  size_t n = strlen(name);
  return n >= 5 && strcmp(name + n - 5, ".topo") == 0;
}

/* Reads a whole file into a malloc'ed buffer. */
static char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  char *buf = malloc(PS_FIX_MAX_FILE);
  assert_non_null(buf);
  *len = fread(buf, 1, PS_FIX_MAX_FILE, fp);
  fclose(fp);
  return buf;
}

/* ---- the shipped machines ---------------------------------------------------------- */

static void test_example_a100(void **state) {
  (void)state;
  ps_fixture *f = load("example-4x-a100.topo");
  assert_int_equal(f->gpu_count, 4);
  assert_string_equal(f->machine, "4x A100-SXM4-40GB (HGX A100 4-GPU)");
  assert_string_equal(f->driver_version, "550.54.15");
  assert_int_equal(f->cuda_version, 12040);
  assert_string_equal(f->nvml_version, "12.550.54.15");
  assert_int_equal(f->fault_count, 0);
  for (int g = 0; g < 4; g++) {
    assert_string_equal(f->gpus[g].name, "NVIDIA A100-SXM4-40GB");
    assert_int_equal(f->gpus[g].mem_total_mib, 40960);
    assert_int_equal(f->gpus[g].mem_free_mib, 40960 - 512);
    assert_int_equal(f->gpus[g].cc_major, 8);
    assert_int_equal(f->gpus[g].cc_minor, 0);
    assert_int_equal(f->gpus[g].pci_id, 0x20B010DE);
    assert_int_equal(strlen(f->gpus[g].uuid), 40);
    for (int h = 0; h < 4; h++) {
      if (g == h) continue;
      const ps_fix_pair *p = pair(f, g, h);
      assert_int_equal(p->link, PS_FIX_LINK_NV);
      assert_int_equal(p->nvlinks, 4);
      assert_int_equal(p->nvlink_version, 4);
      assert_false(p->nvswitch);
      assert_int_equal(p->pcie, PS_FIX_LINK_NODE);
      for (int c = 0; c < PS_FIX_CAPS; c++)
        assert_int_equal(p->claims[c], PS_FIX_CLAIM_OK);
      assert_true(p->cuda_peer);
    }
  }
  assert_string_equal(f->gpus[1].bus_id, "00000000:41:00.0");
  assert_int_equal(f->gpus[1].pci_bus, 0x41);
  ps__fixture_free(f);
}

static void test_hgx_h100(void **state) {
  (void)state;
  ps_fixture *f = load("hgx-h100-8.topo");
  assert_int_equal(f->gpu_count, 8);
  for (int g = 0; g < 8; g++) {
    const ps_fix_gpu *gpu = &f->gpus[g];
    assert_string_equal(gpu->name, "NVIDIA H100 80GB HBM3");
    assert_int_equal(gpu->mem_total_mib, 81559);
    assert_int_equal(gpu->numa_node, g < 4 ? 0 : 1);
    assert_int_equal(gpu->pcie_gen, 5);
    assert_int_equal(gpu->pcie_width, 16);
    assert_int_equal(gpu->pcie_gen_max, 5);
    assert_int_equal(gpu->bar1_mib, 131072);
    assert_int_equal(gpu->cc_major, 9);
    for (int h = 0; h < 8; h++) {
      if (g == h) continue;
      const ps_fix_pair *p = pair(f, g, h);
      assert_int_equal(p->link, PS_FIX_LINK_NV);
      assert_int_equal(p->nvlinks, 18);
      assert_true(p->nvswitch);
      assert_int_equal(p->nvlink_version, 6);
      assert_int_equal(p->pcie, (g < 4) == (h < 4) ? PS_FIX_LINK_NODE : PS_FIX_LINK_SYS);
    }
  }
  assert_string_equal(f->gpus[4].cpus, "48-95,144-191");
  ps__fixture_free(f);
}

static void test_dgx1_v100(void **state) {
  (void)state;
  /* nvidia-smi topo -m of DGX-1V; 0 = no NVLink (SYS). */
  static const int nv[8][8] = {{0, 1, 1, 2, 2, 0, 0, 0}, {1, 0, 2, 1, 0, 2, 0, 0},
                               {1, 2, 0, 2, 0, 0, 1, 0}, {2, 1, 2, 0, 0, 0, 0, 1},
                               {2, 0, 0, 0, 0, 1, 1, 2}, {0, 2, 0, 0, 1, 0, 2, 1},
                               {0, 0, 1, 0, 1, 2, 0, 2}, {0, 0, 0, 1, 2, 1, 2, 0}};
  ps_fixture *f = load("dgx1-v100-8.topo");
  assert_int_equal(f->gpu_count, 8);
  for (int g = 0; g < 8; g++) {
    int total = 0;
    assert_string_equal(f->gpus[g].name, "Tesla V100-SXM2-16GB");
    for (int h = 0; h < 8; h++) {
      if (g == h) continue;
      const ps_fix_pair *p = pair(f, g, h);
      bool same_socket = (g < 4) == (h < 4);
      if (nv[g][h]) {
        assert_int_equal(p->link, PS_FIX_LINK_NV);
        assert_int_equal(p->nvlinks, nv[g][h]);
        assert_int_equal(p->nvlink_version, 2);
        assert_int_equal(p->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_OK);
        assert_true(p->cuda_peer);
        total += nv[g][h];
      } else {
        assert_int_equal(p->link, PS_FIX_LINK_SYS);
        assert_false(same_socket);
        assert_int_equal(p->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_CNS);
        assert_int_equal(p->claims[PS_FIX_CAP_NVLINK], PS_FIX_CLAIM_NS);
        assert_false(p->cuda_peer);
      }
      ps_fix_link want = !same_socket     ? PS_FIX_LINK_SYS
                         : g / 2 == h / 2 ? PS_FIX_LINK_PIX
                                          : PS_FIX_LINK_PHB;
      assert_int_equal(p->pcie, want);
    }
    assert_int_equal(total, 6); /* six NVLinks per V100 */
  }
  ps__fixture_free(f);
}

static void test_small_machines(void **state) {
  (void)state;
  ps_fixture *f = load("rtx3090-2-nvlink.topo");
  assert_int_equal(f->gpu_count, 2);
  assert_int_equal(pair(f, 0, 1)->link, PS_FIX_LINK_NV);
  assert_int_equal(pair(f, 1, 0)->nvlinks, 4);
  assert_int_equal(pair(f, 1, 0)->pcie, PS_FIX_LINK_PHB);
  assert_int_equal(f->gpus[0].pcie_width, 8);
  assert_int_equal(f->gpus[0].pcie_width_max, 16);
  ps__fixture_free(f);

  f = load("pcie-4-consumer-cns.topo");
  assert_int_equal(f->gpu_count, 4);
  assert_int_equal(pair(f, 0, 1)->link, PS_FIX_LINK_PHB);
  assert_int_equal(pair(f, 3, 2)->link, PS_FIX_LINK_PHB);
  assert_int_equal(pair(f, 1, 2)->link, PS_FIX_LINK_NODE);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      if (a != b) {
        assert_int_equal(pair(f, a, b)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_CNS);
        assert_false(pair(f, a, b)->cuda_peer);
      }
  ps__fixture_free(f);

  f = load("dual-socket-8-pcie.topo");
  assert_int_equal(f->gpu_count, 8);
  assert_int_equal(pair(f, 0, 1)->link, PS_FIX_LINK_PIX);
  assert_int_equal(pair(f, 2, 1)->link, PS_FIX_LINK_PXB);
  assert_int_equal(pair(f, 0, 3)->link, PS_FIX_LINK_NODE);
  assert_int_equal(pair(f, 0, 4)->link, PS_FIX_LINK_SYS);
  assert_int_equal(pair(f, 5, 4)->link, PS_FIX_LINK_PIX);
  assert_int_equal(pair(f, 0, 3)->claims[PS_FIX_CAP_WRITE], PS_FIX_CLAIM_OK);
  assert_int_equal(pair(f, 0, 3)->claims[PS_FIX_CAP_ATOMICS], PS_FIX_CLAIM_NS);
  assert_true(pair(f, 0, 3)->cuda_peer);
  assert_int_equal(pair(f, 7, 0)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_CNS);
  assert_false(pair(f, 7, 0)->cuda_peer);
  ps__fixture_free(f);

  f = load("mixed-gpus.topo");
  assert_int_equal(f->gpu_count, 4);
  assert_string_equal(f->gpus[0].name, "NVIDIA RTX A6000");
  assert_string_equal(f->gpus[2].name, "NVIDIA RTX A5000");
  assert_string_equal(f->gpus[3].name, "NVIDIA RTX A4000");
  assert_int_equal(f->gpus[0].mem_total_mib, 49140);
  assert_int_equal(f->gpus[3].mem_total_mib, 16376);
  assert_int_equal(pair(f, 0, 1)->link, PS_FIX_LINK_NV);
  assert_int_equal(pair(f, 0, 1)->claims[PS_FIX_CAP_ATOMICS], PS_FIX_CLAIM_OK);
  assert_int_equal(pair(f, 0, 1)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_OK);
  assert_int_equal(pair(f, 0, 2)->claims[PS_FIX_CAP_ATOMICS], PS_FIX_CLAIM_NS);
  assert_int_equal(pair(f, 2, 3)->link, PS_FIX_LINK_NODE);
  ps__fixture_free(f);
}

static void test_fault_fixtures(void **state) {
  (void)state;
  static const struct {
    const char *file;
    ps_fix_fault_kind kind;
    int a, b;
  } cases[] = {
      {"fault-corrupt.topo", PS_FAULT_CORRUPT, 1, 2},
      {"fault-hang.topo", PS_FAULT_HANG, 0, 3},
      {"fault-copy-error.topo", PS_FAULT_COPY_ERROR, 2, 0},
      {"fault-nvml-init.topo", PS_FAULT_NVML_INIT_FAILS, -1, -1},
      {"fault-cuda-init.topo", PS_FAULT_CUDA_INIT_FAILS, -1, -1},
      {"fault-missing-symbol.topo", PS_FAULT_MISSING_SYMBOL, -1, -1},
      {"fault-gpu-lost.topo", PS_FAULT_GPU_LOST, 2, 2},
      {"fault-local-corrupt.topo", PS_FAULT_CORRUPT, 1, 1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ps_fixture *f = load(cases[i].file);
    assert_int_equal(f->fault_count, 1);
    const ps_fix_fault *ft = &f->faults[0];
    assert_int_equal(ft->kind, cases[i].kind);
    assert_int_equal(ft->gpu_a, cases[i].a);
    assert_int_equal(ft->gpu_b, cases[i].b);
    if (ft->kind == PS_FAULT_CORRUPT) {
      assert_int_equal(ft->offset, 4096);
      assert_int_equal(ft->xor_mask, 0x01);
    }
    if (ft->kind == PS_FAULT_COPY_ERROR) assert_int_equal(ft->code, 719);
    if (ft->kind == PS_FAULT_NVML_INIT_FAILS) assert_int_equal(ft->code, 9);
    if (ft->kind == PS_FAULT_CUDA_INIT_FAILS) assert_int_equal(ft->code, 100);
    if (ft->kind == PS_FAULT_MISSING_SYMBOL)
      assert_string_equal(ft->symbol, "cuCtxEnablePeerAccess");
    if (ft->kind == PS_FAULT_GPU_LOST) {
      assert_int_equal(ft->after_calls, 35);
      assert_int_equal(ft->drivers, PS_FIX_DRV_CUDA);
    }
    ps__fixture_free(f);
  }
  ps_fixture *f = load("fault-unsupported.topo");
  assert_int_equal(f->fault_count, 0);
  assert_int_equal(pair(f, 1, 2)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_NS);
  assert_false(pair(f, 2, 1)->cuda_peer);
  assert_true(pair(f, 0, 1)->cuda_peer);
  ps__fixture_free(f);
}

/* The verification modes' faults: their defaults, keys and the local pairs they name. */
static void test_mode_faults(void **state) {
  (void)state;
  ps_fixture *f = load("fault-sm-corrupt.topo");
  assert_int_equal(f->fault_count, 1);
  assert_int_equal(f->faults[0].kind, PS_FAULT_SM_CORRUPT);
  assert_int_equal(f->faults[0].gpu_a, 0);
  assert_int_equal(f->faults[0].gpu_b, 3);
  assert_int_equal(f->faults[0].offset, 1048575);
  assert_int_equal(f->faults[0].xor_mask, 0x80);
  ps__fixture_free(f);
  f = load("fault-ipc-fails.topo"); /* 12 pairs and 4 local controls */
  assert_int_equal(f->fault_count, 16);
  int local = 0;
  for (int i = 0; i < f->fault_count; i++) {
    assert_int_equal(f->faults[i].kind, PS_FAULT_IPC_FAILS);
    assert_int_equal(f->faults[i].code, 1);
    assert_int_equal(f->faults[i].handles, PS_FIX_IPC_BOTH);
    local += f->faults[i].gpu_a == f->faults[i].gpu_b;
  }
  assert_int_equal(local, 4);
  ps__fixture_free(f);
  char err[256];
  static const char text[] =
      "peerscope-fixture 1\nmachine \"m\"\ndriver version=1.2 cuda=12.4\n"
      "gpu 0 name=\"A\" uuid=GPU-00000000-0000-0000-0000-000000000000 bus=0000:01:00.0 "
      "mem_mib=1000 cc=8.0\n"
      "gpu 1 name=\"A\" uuid=GPU-00000000-0000-0000-0000-000000000001 bus=0000:02:00.0 "
      "mem_mib=1000 cc=8.0\n"
      "link 0 1 PIX\nfault ipc_fails 1 0 code=205 handle=cumem\nfault sm_corrupt 0 1\n";
  f = ps__fixture_parse(text, sizeof(text) - 1, "t", err, sizeof(err));
  assert_non_null(f);
  assert_int_equal(f->fault_count, 2);
  assert_int_equal(f->faults[0].gpu_a, 1);
  assert_int_equal(f->faults[0].code, 205);
  assert_int_equal(f->faults[0].handles, PS_FIX_IPC_CUMEM);
  assert_int_equal(f->faults[1].offset, 4096);
  assert_int_equal(f->faults[1].xor_mask, 0x01);
  ps__fixture_free(f);
}

/* Every .topo in the fixtures directory parses (new fixtures are covered for free). */
static void test_all_shipped_fixtures_parse(void **state) {
  (void)state;
  DIR *dir = opendir(ps_test_env("PEERSCOPE_FIXTURES"));
  assert_non_null(dir);
  int count = 0;
  for (struct dirent *e; (e = readdir(dir));) {
    if (!is_topo(e->d_name)) continue;
    ps_fixture *f = load(e->d_name);
    assert_true(f->machine[0] != '\0');
    assert_true(f->source[0] != '\0');
    ps__fixture_free(f);
    count++;
  }
  closedir(dir);
  assert_true(count >= 16);
}

/* ---- errors ------------------------------------------------------------------------ */

/* Each bad/<name>.topo starts with "# expect: LINE:COL: message". */
static void test_bad_fixtures(void **state) {
  (void)state;
  char dir_path[PATH_MAX];
  snprintf(dir_path, sizeof(dir_path), "%s/bad", ps_test_env("PEERSCOPE_FIXTURES"));
  DIR *dir = opendir(dir_path);
  assert_non_null(dir);
  int count = 0;
  for (struct dirent *e; (e = readdir(dir));) {
    if (!is_topo(e->d_name)) continue;
    char path[PATH_MAX + 256], err[512], want[PATH_MAX + 512];
    snprintf(path, sizeof(path), "%s/%s", dir_path, e->d_name);
    size_t len;
    char *text = slurp(path, &len);
    const char *tag = "# expect: ";
    if (strncmp(text, tag, strlen(tag)) != 0) fail_msg("%s: no '# expect:' first line", path);
    const char *nl = memchr(text, '\n', len);
    int exp_len = (int)((nl ? (size_t)(nl - text) : len) - strlen(tag));
    snprintf(want, sizeof(want), "%s:%.*s", path, exp_len, text + strlen(tag));
    free(text);
    ps_fixture *f = ps__fixture_load(path, err, sizeof(err));
    if (f) fail_msg("%s parsed, expected: %s", path, want);
    assert_string_equal(err, want);
    count++;
  }
  closedir(dir);
  assert_true(count >= 30);
}

static const char *const minimal =
    "peerscope-fixture 1\n"
    "machine \"m\"\n"
    "driver version=1.2 cuda=12.4\n"
    "gpu 0 name=\"A\" uuid=GPU-00000000-0000-0000-0000-000000000000 bus=0000:01:00.0 "
    "mem_mib=1000 cc=8.0\n"
    "gpu 1 name=\"B \\\"quoted\\\" \\\\\" uuid=GPU-00000000-0000-0000-0000-000000000001 "
    "bus=00000000:02:00.0 mem_mib=100 cc=7.5 numa=1 cpus=0-3,8 # comment \"with quote\n"
    "gpu 2 name=C uuid=GPU-00000000-0000-0000-0000-00000000000a bus=0001:ab:1f.7 "
    "mem_mib=2000 cc=9.0 free_mib=10\n";

/* `minimal` followed by tail, as t.topo: NULL with the message in err when it does not parse. */
static ps_fixture *parse_minimal(const char *tail, char *err, size_t err_len) {
  char text[4096];
  snprintf(text, sizeof(text), "%s%s", minimal, tail);
  return ps__fixture_parse(text, strlen(text), "t.topo", err, err_len);
}

/* `minimal` followed by tail, which must parse. */
static ps_fixture *parsed_minimal(const char *tail) {
  char err[512];
  ps_fixture *f = parse_minimal(tail, err, sizeof(err));
  if (!f) fail_msg("%s", err);
  return f;
}

static void test_defaults_and_overrides(void **state) {
  (void)state;
  ps_fixture *f = parsed_minimal("link all all SYS\n"
                                 "link 0 1,2 NV2 nvswitch=1\n"
                                 "link 0 2 PHB\t\t# later line wins\n"
                                 "p2p 0-2 0-2 read=OK\n"
                                 "p2p 1 0 write=DR cuda=1\r\n"
                                 "fault corrupt 0 0\n"
                                 "fault corrupt all 0 offset=1 xor=0x80\n"
                                 "fault corrupt 0 0 offset=2\n"
                                 "fault gpu_lost 1-2 after=5 driver=nvml\n"
                                 "fault missing_symbol cuInit\n"
                                 "fault missing_symbol cuInit\n");
  assert_string_equal(f->path, "t.topo");
  assert_string_equal(f->nvml_version, "12.1.2");
  assert_string_equal(f->gpus[1].name, "B \"quoted\" \\");
  assert_string_equal(f->gpus[0].bus_id, "00000000:01:00.0");
  assert_string_equal(f->gpus[2].bus_id, "00000001:AB:1F.7");
  assert_int_equal(f->gpus[2].pci_domain, 1);
  assert_int_equal(f->gpus[2].pci_device, 0x1f);
  assert_int_equal(f->gpus[2].pci_function, 7);
  assert_int_equal(f->gpus[0].numa_node, -1);
  assert_int_equal(f->gpus[1].numa_node, 1);
  assert_string_equal(f->gpus[1].cpus, "0-3,8");
  assert_string_equal(f->gpus[0].cpus, "");
  assert_int_equal(f->gpus[0].mem_free_mib, 488);
  assert_int_equal(f->gpus[1].mem_free_mib, 0);
  assert_int_equal(f->gpus[2].mem_free_mib, 10);
  assert_int_equal(f->gpus[0].bar1_mib, 0);
  assert_int_equal(f->gpus[0].pcie_gen, 0);

  assert_int_equal(pair(f, 0, 1)->link, PS_FIX_LINK_NV);
  assert_int_equal(pair(f, 1, 0)->nvlinks, 2);
  assert_true(pair(f, 1, 0)->nvswitch);
  assert_int_equal(pair(f, 1, 0)->pcie, PS_FIX_LINK_SYS);
  assert_int_equal(pair(f, 0, 2)->link, PS_FIX_LINK_PHB);
  assert_int_equal(pair(f, 2, 0)->pcie, PS_FIX_LINK_PHB);
  assert_int_equal(pair(f, 1, 2)->link, PS_FIX_LINK_SYS);
  /* p2p changes only the keys it names, in both directions. */
  assert_int_equal(pair(f, 2, 1)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_OK);
  assert_int_equal(pair(f, 2, 1)->claims[PS_FIX_CAP_WRITE], PS_FIX_CLAIM_NS);
  assert_int_equal(pair(f, 0, 1)->claims[PS_FIX_CAP_WRITE], PS_FIX_CLAIM_DISABLED);
  assert_int_equal(pair(f, 0, 1)->claims[PS_FIX_CAP_READ], PS_FIX_CLAIM_OK);
  assert_int_equal(pair(f, 0, 1)->claims[PS_FIX_CAP_ATOMICS], PS_FIX_CLAIM_NS);
  assert_true(pair(f, 0, 1)->cuda_peer);
  assert_false(pair(f, 0, 2)->cuda_peer);

  /* corrupt 0 0 (explicit diagonal); all x 0 skips the diagonal and adds 1 -> 0, 2 -> 0;
   * the second corrupt 0 0 replaces the first; gpu_lost expands per GPU; the repeated
   * missing_symbol replaces the first. */
  assert_int_equal(f->fault_count, 6);
  assert_int_equal(f->faults[0].kind, PS_FAULT_CORRUPT);
  assert_int_equal(f->faults[0].gpu_a, 0);
  assert_int_equal(f->faults[0].gpu_b, 0);
  assert_int_equal(f->faults[0].offset, 2);
  assert_int_equal(f->faults[0].xor_mask, 0x01);
  assert_int_equal(f->faults[1].gpu_a, 1);
  assert_int_equal(f->faults[1].gpu_b, 0);
  assert_int_equal(f->faults[1].offset, 1);
  assert_int_equal(f->faults[1].xor_mask, 0x80);
  assert_int_equal(f->faults[2].gpu_a, 2);
  assert_int_equal(f->faults[3].kind, PS_FAULT_GPU_LOST);
  assert_int_equal(f->faults[3].gpu_a, 1);
  assert_int_equal(f->faults[4].gpu_a, 2);
  assert_int_equal(f->faults[4].after_calls, 5);
  assert_int_equal(f->faults[4].drivers, PS_FIX_DRV_NVML);
  assert_int_equal(f->faults[5].kind, PS_FAULT_MISSING_SYMBOL);
  assert_int_equal(f->faults[5].line, 17);
  ps__fixture_free(f);
}

/* The lines that make the fakes as hostile as real drivers (fixture_faults_more.c and the
 * sticky, illegal_address and gpu_lost code keys). */
static void test_hostile_faults(void **state) {
  (void)state;
  ps_fixture *f = parsed_minimal("link all all PIX\n"
                                 "link 0 1 NV4\n"
                                 "fault copy_error 0 2\n"
                                 "fault copy_error 2 0 code=5\n"
                                 "fault copy_error 1 2 code=5 sticky=1\n"
                                 "fault illegal_address 2 1\n"
                                 "fault illegal_address 1 0 sticky=0\n"
                                 "fault gpu_lost 2 after=3\n"
                                 "fault nvlink_down 0 1 0\n"
                                 "fault nvlink_down 1 0 3\n"
                                 "fault peer_limit max=3\n"
                                 "fault nccl_hang 0-1 2\n"
                                 "fault nccl_corrupt 1 0 offset=6 xor=0x40\n");
  const ps_fix_fault *ft = f->faults;
  assert_int_equal(ft[0].code, 719); /* default: the driver's sticky rule decides */
  assert_int_equal(ft[0].sticky, -1);
  assert_int_equal(ft[1].code, 5);
  assert_int_equal(ft[2].sticky, 1);
  assert_int_equal(ft[3].kind, PS_FAULT_COPY_ERROR);
  assert_int_equal(ft[3].code, 700);
  assert_int_equal(ft[3].sticky, 1);
  assert_int_equal(ft[4].sticky, 0);
  assert_int_equal(ft[5].kind, PS_FAULT_GPU_LOST);
  assert_int_equal(ft[5].code, 999);
  /* Both ends of 0-1, links 0 and 3 merged. */
  assert_int_equal(ft[6].kind, PS_FAULT_NVLINK_DOWN);
  assert_int_equal(ft[6].gpu_a, 0);
  assert_int_equal(ft[6].gpu_b, 1);
  assert_int_equal(ft[6].links, 0x9);
  assert_int_equal(ft[7].gpu_a, 1);
  assert_int_equal(ft[7].links, 0x9);
  assert_int_equal(ft[8].kind, PS_FAULT_PEER_LIMIT);
  assert_int_equal(ft[8].max_peers, 3);
  assert_int_equal(ft[9].kind, PS_FAULT_NCCL_HANG);
  assert_int_equal(ft[10].gpu_a, 1);
  assert_int_equal(ft[10].gpu_b, 2);
  assert_int_equal(ft[11].kind, PS_FAULT_NCCL_CORRUPT);
  assert_int_equal(ft[11].offset, 6);
  assert_int_equal(ft[11].xor_mask, 0x40);
  assert_int_equal(f->fault_count, 12);
  ps__fixture_free(f);

  /* `all` is exactly the pair's links, whichever line declares them. */
  f = parsed_minimal("fault nvlink_down 0 1 all\nlink all all NV3\n");
  assert_int_equal(f->faults[0].links, 0x7);
  ps__fixture_free(f);
}

static void test_inline_errors(void **state) {
  (void)state;
  static const struct {
    const char *tail, *err;
  } cases[] = {
      {"link 0-2 0-2 PIX\nlink 0 1 NV4 pcie=NV2\n",
       "t.topo:8:19: unknown PCIe level 'NV2' (want PIX, PXB, PHB, NODE or SYS)"},
      {"link 0-2 0-2 PIX\np2p 0 1\n",
       "t.topo:8:1: p2p needs at least one of read=, write=, nvlink=, atomics=, cuda="},
      {"link 0-2 0-2 PIX\np2p 0 1 cuda=yes\n", "t.topo:8:14: bad boolean 'yes' (want 0 or 1)"},
      {"link 0-2 0-2 PIX\nfault corrupt 0 1 xor=0\n",
       "t.topo:8:23: '0' out of range for xor (1..255)"},
      {"link 0-2 0-2 PIX\nfault gpu_lost 1 after=1 driver=rocm\n",
       "t.topo:8:33: bad driver 'rocm' (want nvml, cuda or both)"},
      {"link 0-2 0-2 PIX\nfault missing_symbol 9cu\n", "t.topo:8:22: bad symbol name '9cu'"},
      {"link 0-2 0-2 PIX\nfault hang 0,,1 2\n", "t.topo:8:12: bad GPU set '0,,1'"},
      {"link 0-2 0-2 PIX\nfault hang 0, 2\n", "t.topo:8:12: bad GPU set '0,'"},
      {"link 0-2 0-2 PIX\nlink 0 1 PIX =x\n", "t.topo:8:14: empty key"},
      {"link 0-2 0-2 PIX\nlink 0 1 P\"IX\"\n", "t.topo:8:11: unexpected quote"},
      {"link 0-2 0-2 PIX\nlink 0 1 NV04\n", "t.topo:8:10: unknown link class 'NV04'"},
      {"link 0-2 0-2 PIX\nmachine \"a\" \"b\"\n", "t.topo:8:13: unexpected argument 'b'"},
      {"link 0-2 0-2 PIX\nmachine \"x\\", "t.topo:8:9: unterminated quote"},
      {"link 0-2 0-2 PIX\nfault nvml_init_fails code=-1\n", "t.topo:8:28: bad number '-1'"},
      {"link 0-2 0-2 PIX\nfault hang 0 1 code=1\n", "t.topo:8:16: unknown key 'code' for 'fault'"},
      {"link 0-2 0-2 PIX\nlink 0 1 NV2 nvlink_version=99999999999999999999\n",
       "t.topo:8:29: bad number '99999999999999999999'"},
      {"gpu 3 name=D uuid=GPU-00000000-0000-0000-0000-00000000000A bus=0000:09:00.0 mem_mib=1 "
       "cc=8.0\n",
       "t.topo:7:19: duplicate uuid 'GPU-00000000-0000-0000-0000-00000000000A' (also GPU 2)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512];
    ps_fixture *f = parse_minimal(cases[i].tail, err, sizeof(err));
    if (f) fail_msg("case %zu parsed", i);
    assert_string_equal(err, cases[i].err);
  }
}

static void test_nul_and_long_lines(void **state) {
  (void)state;
  char err[512];
  const char text[] = "peerscope-fixture 1\nmachine \"a\0b\"\n";
  assert_null(ps__fixture_parse(text, sizeof(text) - 1, "nul.topo", err, sizeof(err)));
  assert_string_equal(err, "nul.topo:2:11: NUL byte");

  /* Line 2 is exactly PS_FIX_MAX_LINE bytes (fine), line 3 one more. */
  size_t cap = 3 * PS_FIX_MAX_LINE;
  char *big = malloc(cap);
  assert_non_null(big);
  size_t n = (size_t)snprintf(big, cap, "peerscope-fixture 1\n#");
  memset(big + n, 'x', PS_FIX_MAX_LINE - 1);
  n += PS_FIX_MAX_LINE - 1;
  big[n++] = '\n';
  big[n++] = '#';
  memset(big + n, 'x', PS_FIX_MAX_LINE);
  n += PS_FIX_MAX_LINE;
  assert_null(ps__fixture_parse(big, n, "big.topo", err, sizeof(err)));
  assert_string_equal(err, "big.topo:3:4097: line longer than 4096 bytes");
  free(big);

  /* NULL text, tiny error buffer, NULL name. */
  assert_null(ps__fixture_parse(NULL, 0, NULL, err, sizeof(err)));
  assert_string_equal(err, "<fixture>:1:1: missing header 'peerscope-fixture 1'");
  char tiny[8];
  assert_null(ps__fixture_parse("x", 1, "abcdefgh.topo", tiny, sizeof(tiny)));
  assert_string_equal(tiny, "abcdefg");
  assert_null(ps__fixture_parse("x", 1, "n", NULL, 0));
}

static void test_load_errors(void **state) {
  (void)state;
  char err[512];
  assert_null(ps__fixture_load("/nonexistent/x.topo", err, sizeof(err)));
  assert_string_equal(err, "/nonexistent/x.topo: No such file or directory");
  assert_null(ps__fixture_load("/", err, sizeof(err)));
  assert_non_null(strstr(err, "/: "));
}

/* Every prefix of a real fixture: parses or fails cleanly with a located error. */
static void test_truncated(void **state) {
  (void)state;
  size_t len;
  char *text = slurp(ps_test_fixture_path("dgx1-v100-8.topo"), &len);
  int parsed = 0;
  for (size_t cut = 0; cut <= len; cut += (cut < 2048 ? 1 : 7)) {
    char err[512];
    ps_fixture *f = ps__fixture_parse(text, cut, "cut.topo", err, sizeof(err));
    if (f) {
      parsed++;
      ps__fixture_free(f);
    } else {
      assert_int_equal(strncmp(err, "cut.topo:", 9), 0);
    }
  }
  assert_true(parsed > 0); /* at least the whole file */
  free(text);
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random bytes and random mutations of a real fixture never crash (ASan checks memory). */
static void test_garbage(void **state) {
  (void)state;
  static const char alphabet[] = "peerscope-fixture 1\n\"\\#=,-0123456789 allgpulinkNVPIXfault\t";
  char buf[2048], err[256];
  for (int i = 0; i < 3000; i++) {
    size_t n = rng() % sizeof(buf);
    for (size_t k = 0; k < n; k++)
      buf[k] = (char)(i % 2 ? rng() : (uint64_t)alphabet[rng() % (sizeof(alphabet) - 1)]);
    ps__fixture_free(ps__fixture_parse(buf, n, "g", err, sizeof(err)));
  }
  size_t len;
  char *text = slurp(ps_test_fixture_path("mixed-gpus.topo"), &len);
  char *copy = malloc(len);
  assert_non_null(copy);
  for (int i = 0; i < 3000; i++) {
    memcpy(copy, text, len);
    for (int m = 0; m < 1 + (int)(rng() % 4); m++) {
      size_t at = rng() % len;
      copy[at] = (char)(rng() % 3 ? alphabet[rng() % (sizeof(alphabet) - 1)] : (char)rng());
    }
    ps__fixture_free(ps__fixture_parse(copy, len, "m", err, sizeof(err)));
  }
  free(copy);
  free(text);
  ps__fixture_free(NULL);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(ps__fixture_link_name(PS_FIX_LINK_NV), "NV");
  assert_string_equal(ps__fixture_link_name(PS_FIX_LINK_NODE), "NODE");
  assert_string_equal(ps__fixture_link_name((ps_fix_link)99), "UNSET");
  assert_string_equal(ps__fixture_claim_name(PS_FIX_CLAIM_CNS), "CNS");
  assert_string_equal(ps__fixture_claim_name(PS_FIX_CLAIM_DISABLED), "DISABLED");
  assert_string_equal(ps__fixture_claim_name((ps_fix_claim)-1), "U");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example_a100),   cmocka_unit_test(test_hgx_h100),
      cmocka_unit_test(test_dgx1_v100),      cmocka_unit_test(test_small_machines),
      cmocka_unit_test(test_fault_fixtures), cmocka_unit_test(test_all_shipped_fixtures_parse),
      cmocka_unit_test(test_bad_fixtures),   cmocka_unit_test(test_defaults_and_overrides),
      cmocka_unit_test(test_inline_errors),  cmocka_unit_test(test_nul_and_long_lines),
      cmocka_unit_test(test_hostile_faults), cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_truncated),      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_names),          cmocka_unit_test(test_mode_faults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
