/* The fake libcuda.so.1's enumeration (docs/fixture-format.md, "CUDA devices"):
 * CUDA_DEVICE_ORDER (fastest-first by default, PCI_BUS_ID on request) and every form of
 * CUDA_VISIBLE_DEVICES real CUDA accepts: indexes, GPU-<uuid> and unique prefixes, MIG-<uuid>
 * and MIG-GPU-<uuid>/<gi>/<ci>, the list ending at the first invalid or repeated entry. Also
 * the per-GPU context record. Fixture: mixed-8-mig.topo (A100s on buses 17..65, faster H100s
 * on 98..E3, GPU 7 in MIG mode). */
#include "support.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drv/cuda_abi.h"

typedef struct cuda {
  void *h;
  PFN_cuInit Init;
  PFN_cuDeviceGetCount DeviceGetCount;
  PFN_cuDeviceGetPCIBusId DeviceGetPCIBusId;
  PFN_cuDeviceCanAccessPeer DeviceCanAccessPeer;
  PFN_cuDevicePrimaryCtxRetain PrimaryCtxRetain;
  PFN_cuDevicePrimaryCtxRelease_v2 PrimaryCtxRelease;
  int (*ContextsMade)(int gpu);
} cuda;

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  assert_non_null(p);
  return p;
}

/* Opens a fresh fake libcuda (state starts over) and runs cuInit under the given order and
 * visible list (NULL = unset); returns cuInit's result. */
static CUresult cuda_start(cuda *c, const char *order, const char *visible) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/libcuda.so.1", ps_test_env("PEERSCOPE_FAKE_DIR"));
  setenv("PEERSCOPE_FIXTURE", ps_test_fixture_path("mixed-8-mig.topo"), 1);
  if (order)
    setenv("CUDA_DEVICE_ORDER", order, 1);
  else
    unsetenv("CUDA_DEVICE_ORDER");
  if (visible)
    setenv("CUDA_VISIBLE_DEVICES", visible, 1);
  else
    unsetenv("CUDA_VISIBLE_DEVICES");
  memset(c, 0, sizeof(*c));
  c->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(c->h);
  c->Init = (PFN_cuInit)sym(c->h, "cuInit");
  c->DeviceGetCount = (PFN_cuDeviceGetCount)sym(c->h, "cuDeviceGetCount");
  c->DeviceGetPCIBusId = (PFN_cuDeviceGetPCIBusId)sym(c->h, "cuDeviceGetPCIBusId");
  c->DeviceCanAccessPeer = (PFN_cuDeviceCanAccessPeer)sym(c->h, "cuDeviceCanAccessPeer");
  c->PrimaryCtxRetain = (PFN_cuDevicePrimaryCtxRetain)sym(c->h, "cuDevicePrimaryCtxRetain");
  c->PrimaryCtxRelease =
      (PFN_cuDevicePrimaryCtxRelease_v2)sym(c->h, "cuDevicePrimaryCtxRelease_v2");
  c->ContextsMade = (int (*)(int))sym(c->h, "ps_fake_contexts_made");
  return c->Init(0);
}

static void cuda_stop(cuda *c) {
  dlclose(c->h);
  unsetenv("CUDA_VISIBLE_DEVICES");
  unsetenv("CUDA_DEVICE_ORDER");
}

/* The PCI buses (the 2 hex digits) of CUDA's devices in ordinal order, "17,31,..." */
static void buses(cuda *c, char *out, size_t len) {
  int count = 0;
  size_t used = 0;
  out[0] = '\0';
  assert_int_equal(c->DeviceGetCount(&count), CUDA_SUCCESS);
  for (int d = 0; d < count; d++) {
    char bus[32];
    assert_int_equal(c->DeviceGetPCIBusId(bus, sizeof(bus), d), CUDA_SUCCESS);
    used += (size_t)snprintf(out + used, len - used, "%s%.2s", d ? "," : "", bus + 5);
  }
}

/* The devices CUDA shows under order and visible, as buses; "none" when cuInit finds none. */
static const char *shown(const char *order, const char *visible) {
  static char out[128];
  cuda c;
  CUresult rc = cuda_start(&c, order, visible);
  if (rc == CUDA_ERROR_NO_DEVICE)
    snprintf(out, sizeof(out), "none");
  else {
    assert_int_equal(rc, CUDA_SUCCESS);
    buses(&c, out, sizeof(out));
  }
  cuda_stop(&c);
  return out;
}

static void test_order(void **state) {
  (void)state;
  /* Fastest first: the H100s (cc 9.0) before the A100s, each kind in PCI order. */
  assert_string_equal(shown(NULL, NULL), "98,B1,CA,E3,17,31,4B,65");
  assert_string_equal(shown("FASTEST_FIRST", NULL), "98,B1,CA,E3,17,31,4B,65");
  assert_string_equal(shown("PCI_BUS_ID", NULL), "17,31,4B,65,98,B1,CA,E3");
}

static void test_indexes(void **state) {
  (void)state;
  /* Indexes count in the enumeration order, and ordinals follow the list. */
  assert_string_equal(shown("PCI_BUS_ID", "4,5,6,7"), "98,B1,CA,E3");
  assert_string_equal(shown(NULL, "4,5,6,7"), "17,31,4B,65");
  assert_string_equal(shown("PCI_BUS_ID", "6,4"), "CA,98");
  assert_string_equal(shown("PCI_BUS_ID", " 1 , 2"), "31,4B");
  /* The list ends at the first invalid, out-of-range or repeated entry. */
  assert_string_equal(shown("PCI_BUS_ID", "5,9,4"), "B1");
  assert_string_equal(shown("PCI_BUS_ID", "5,x,4"), "B1");
  assert_string_equal(shown("PCI_BUS_ID", "5,5,4"), "B1");
  assert_string_equal(shown("PCI_BUS_ID", "5,,4"), "B1");
  assert_string_equal(shown("PCI_BUS_ID", "-1,4"), "none");
  assert_string_equal(shown("PCI_BUS_ID", ""), "none");
}

static void test_uuids(void **state) {
  (void)state;
  assert_string_equal(shown(NULL, "GPU-5e6f7a8b-0000-4000-8000-00000000b105,"
                                  "GPU-1a2b3c4d-0000-4000-8000-00000000a100"),
                      "B1,17");
  assert_string_equal(shown(NULL, "gpu-5E6F7A8B-0000-4000-8000-00000000B106"), "CA");
  /* A unique prefix names its GPU; an ambiguous or unknown one ends the list. */
  assert_string_equal(shown(NULL, "GPU-5e6f7a8b-0000-4000-8000-00000000b104,GPU-1a2b"), "98");
  assert_string_equal(shown(NULL, "GPU-1a2b3c4d-0000-4000-8000-00000000a10"), "none");
  assert_string_equal(shown(NULL, "GPU-ffffffff"), "none");
  assert_string_equal(shown(NULL, "3,GPU-5e6f7a8b-0000-4000-8000-00000000b107,GPU-0"), "E3");
}

static void test_mig(void **state) {
  (void)state;
  cuda c;
  /* MIG-<uuid> (and a unique prefix), the old MIG-GPU-<uuid>/<gi>/<ci>: the MIG device reports
   * its parent's bus id and has no peer access. */
  assert_int_equal(cuda_start(&c, "PCI_BUS_ID", "MIG-9c0d1e2f-0000-4000-8000-0000000c7002,5"),
                   CUDA_SUCCESS);
  char out[64];
  buses(&c, out, sizeof(out));
  assert_string_equal(out, "E3,B1");
  int can = -1;
  assert_int_equal(c.DeviceCanAccessPeer(&can, 0, 1), CUDA_SUCCESS);
  assert_int_equal(can, 0);
  cuda_stop(&c);
  assert_string_equal(shown(NULL, "MIG-GPU-5e6f7a8b-0000-4000-8000-00000000b107/1/0"), "E3");
  /* One MIG device per process: the second is left out, the list goes on. */
  assert_string_equal(shown("PCI_BUS_ID", "MIG-9c0d1e2f-0000-4000-8000-0000000c7001,"
                                          "MIG-9c0d1e2f-0000-4000-8000-0000000c7002,0"),
                      "E3,17");
  /* Unknown MIG devices, a GPU instance the GPU lacks, a GPU not in MIG mode: invalid. */
  assert_string_equal(shown(NULL, "MIG-00000000"), "none");
  assert_string_equal(shown(NULL, "MIG-GPU-5e6f7a8b-0000-4000-8000-00000000b107/2/0"), "none");
  assert_string_equal(shown(NULL, "MIG-GPU-5e6f7a8b-0000-4000-8000-00000000b104/0/0"), "none");
  assert_string_equal(shown(NULL, "MIG-GPU-5e6f7a8b-0000-4000-8000-00000000b107/0"), "none");
}

static void test_context_record(void **state) {
  (void)state;
  char root[PATH_MAX], log[PATH_MAX + 32];
  assert_true(ps_test_scratch_dir("fake-visible", root));
  snprintf(log, sizeof(log), "%s/contexts.log", root);
  setenv("PEERSCOPE_FAKE_CONTEXT_LOG", log, 1);
  cuda c;
  assert_int_equal(cuda_start(&c, NULL, "5,6"), CUDA_SUCCESS); /* fastest-first: A100s 1, 2 */
  CUcontext ctx = NULL;
  assert_int_equal(c.PrimaryCtxRetain(&ctx, 1), CUDA_SUCCESS);
  assert_int_equal(c.PrimaryCtxRetain(&ctx, 1), CUDA_SUCCESS); /* same context: one record */
  for (int g = 0; g < 8; g++)
    assert_int_equal(c.ContextsMade(g), g == 2 ? 1 : 0);
  assert_int_equal(c.PrimaryCtxRelease(1), CUDA_SUCCESS);
  assert_int_equal(c.PrimaryCtxRelease(1), CUDA_SUCCESS);
  cuda_stop(&c);
  unsetenv("PEERSCOPE_FAKE_CONTEXT_LOG");
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  char line[256] = "";
  assert_non_null(fgets(line, sizeof(line), f));
  assert_string_equal(line, "ctx 2 00000000:4B:00.0 GPU-1a2b3c4d-0000-4000-8000-00000000a102\n");
  assert_null(fgets(line, sizeof(line), f));
  fclose(f);
  ps_test_remove_tree(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_order), cmocka_unit_test(test_indexes),
                                     cmocka_unit_test(test_uuids), cmocka_unit_test(test_mig),
                                     cmocka_unit_test(test_context_record)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
