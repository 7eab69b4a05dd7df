/* The fake drivers as hostile as the real ones (docs/fixture-format.md): a sticky error
 * poisons every later CUDA call of the process, a lost GPU answers 999, a context meets the
 * peer limit, NVLinks go down one by one. Each fake library is dlopen'ed on its own, as in
 * test_fake_drivers.c. */
#include "support.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv/cuda_abi.h"
#include "drv/nvml_abi.h"

static void *open_fake(const char *file, const char *fixture) {
  char path[PATH_MAX];
  setenv("PEERSCOPE_FIXTURE", ps_test_fixture_path(fixture), 1);
  snprintf(path, sizeof(path), "%s/%s", ps_test_env("PEERSCOPE_FAKE_DIR"), file);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen: %s", dlerror());
  return h;
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) fail_msg("fake driver lacks %s", name);
  return p;
}

#define FN(h, type, name) ((type)sym(h, name))

/* Retains GPU g's context, makes it current and allocates n bytes on it. */
static CUcontext ctx_on(void *h, int g, size_t n, CUdeviceptr *p) {
  CUcontext ctx = NULL;
  assert_int_equal(FN(h, PFN_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")(&ctx, g),
                   CUDA_SUCCESS);
  assert_int_equal(FN(h, PFN_cuCtxSetCurrent, "cuCtxSetCurrent")(ctx), CUDA_SUCCESS);
  if (p) assert_int_equal(FN(h, PFN_cuMemAlloc_v2, "cuMemAlloc_v2")(p, n), CUDA_SUCCESS);
  return ctx;
}

/* fault-sticky-8: an illegal address on 3 -> 5, and every later call fails with it. */
static void test_sticky(void **state) {
  (void)state;
  void *h = open_fake("libcuda.so.1", "fault-sticky-8.topo");
  assert_int_equal(FN(h, PFN_cuInit, "cuInit")(0), CUDA_SUCCESS);
  CUdeviceptr p3 = 0, p5 = 0, p0 = 0;
  CUcontext c3 = ctx_on(h, 3, 4096, &p3), c5 = ctx_on(h, 5, 4096, &p5);
  ctx_on(h, 0, 4096, &p0);
  PFN_cuMemcpyPeer peer = FN(h, PFN_cuMemcpyPeer, "cuMemcpyPeer");
  assert_int_equal(peer(p3, c3, p5, c5, 4096), CUDA_SUCCESS); /* 5 -> 3 is fine */
  assert_int_equal(peer(p5, c5, p3, c3, 4096), CUDA_ERROR_ILLEGAL_ADDRESS);
  /* Poisoned: unrelated GPUs, queries, even cuInit answer the same. */
  int count = 0, version = 0;
  assert_int_equal(FN(h, PFN_cuDeviceGetCount, "cuDeviceGetCount")(&count),
                   CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(FN(h, PFN_cuCtxSynchronize, "cuCtxSynchronize")(), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(FN(h, PFN_cuMemFree_v2, "cuMemFree_v2")(p0), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(FN(h, PFN_cuInit, "cuInit")(0), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(FN(h, PFN_cuDriverGetVersion, "cuDriverGetVersion")(&version),
                   CUDA_ERROR_ILLEGAL_ADDRESS);
  /* The error's name still works, as in CUDA. */
  const char *name = NULL;
  assert_int_equal(FN(h, PFN_cuGetErrorName, "cuGetErrorName")(CUDA_ERROR_TOO_MANY_PEERS, &name),
                   CUDA_SUCCESS);
  assert_string_equal(name, "CUDA_ERROR_TOO_MANY_PEERS");
  dlclose(h); /* a new process (a reload) starts clean */
  h = open_fake("libcuda.so.1", "hgx-h100-8.topo");
  assert_int_equal(FN(h, PFN_cuInit, "cuInit")(0), CUDA_SUCCESS);
  assert_int_equal(FN(h, PFN_cuDeviceGetCount, "cuDeviceGetCount")(&count), CUDA_SUCCESS);
  dlclose(h);
}

/* The default limit of 8 peers per context, and fault-peer-limit's 2. */
static void test_peer_limit(void **state) {
  (void)state;
  void *h = open_fake("libcuda.so.1", "fault-peer-limit.topo");
  PFN_cuCtxEnablePeerAccess enable = FN(h, PFN_cuCtxEnablePeerAccess, "cuCtxEnablePeerAccess");
  PFN_cuCtxDisablePeerAccess disable = FN(h, PFN_cuCtxDisablePeerAccess, "cuCtxDisablePeerAccess");
  assert_int_equal(FN(h, PFN_cuInit, "cuInit")(0), CUDA_SUCCESS);
  CUcontext c[4];
  for (int g = 3; g >= 0; g--)
    c[g] = ctx_on(h, g, 0, NULL);
  assert_int_equal(enable(c[1], 0), CUDA_SUCCESS);
  assert_int_equal(enable(c[2], 0), CUDA_SUCCESS);
  assert_int_equal(enable(c[3], 0), CUDA_ERROR_TOO_MANY_PEERS);
  assert_int_equal(disable(c[1]), CUDA_SUCCESS);
  assert_int_equal(enable(c[3], 0), CUDA_SUCCESS);
  /* Not a sticky error: the process carries on. */
  int count = 0;
  assert_int_equal(FN(h, PFN_cuDeviceGetCount, "cuDeviceGetCount")(&count), CUDA_SUCCESS);
  dlclose(h);

  h = open_fake("libcuda.so.1", "hgx-h100-8.topo"); /* 7 peers each: under the default 8 */
  enable = FN(h, PFN_cuCtxEnablePeerAccess, "cuCtxEnablePeerAccess");
  assert_int_equal(FN(h, PFN_cuInit, "cuInit")(0), CUDA_SUCCESS);
  CUcontext all[8];
  for (int g = 7; g >= 0; g--)
    all[g] = ctx_on(h, g, 0, NULL);
  for (int g = 1; g < 8; g++)
    assert_int_equal(enable(all[g], 0), CUDA_SUCCESS);
  dlclose(h);
}

/* fault-nvlink-down: NVML sees links 1-2 of 0-1 and all of 2-3 inactive. */
static void test_nvlink_down(void **state) {
  (void)state;
  void *h = open_fake("libnvidia-ml.so.1", "fault-nvlink-down.topo");
  assert_int_equal(FN(h, PFN_nvmlInit, "nvmlInit_v2")(), NVML_SUCCESS);
  PFN_nvmlDeviceGetHandleByIndex handle =
      FN(h, PFN_nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2");
  PFN_nvmlDeviceGetNvLinkState state_of =
      FN(h, PFN_nvmlDeviceGetNvLinkState, "nvmlDeviceGetNvLinkState");
  PFN_nvmlDeviceGetP2PStatus p2p = FN(h, PFN_nvmlDeviceGetP2PStatus, "nvmlDeviceGetP2PStatus");
  nvmlDevice_t d[4];
  for (unsigned g = 0; g < 4; g++)
    assert_int_equal(handle(g, &d[g]), NVML_SUCCESS);
  /* GPU 0's links: 0-3 to GPU 1, 4-7 to GPU 2, 8-11 to GPU 3. */
  const int want0[12] = {1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  for (unsigned l = 0; l < 12; l++) {
    nvmlEnableState_t on;
    assert_int_equal(state_of(d[0], l, &on), NVML_SUCCESS);
    assert_int_equal(on, want0[l] ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED);
  }
  /* GPU 2's links 8-11 go to GPU 3: all down; its NVLink P2P claim goes with them. */
  for (unsigned l = 8; l < 12; l++) {
    nvmlEnableState_t on;
    assert_int_equal(state_of(d[2], l, &on), NVML_SUCCESS);
    assert_int_equal(on, NVML_FEATURE_DISABLED);
  }
  nvmlGpuP2PStatus_t st;
  assert_int_equal(p2p(d[2], d[3], NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  assert_int_equal(p2p(d[0], d[1], NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_OK);
  assert_int_equal(FN(h, PFN_nvmlShutdown, "nvmlShutdown")(), NVML_SUCCESS);
  dlclose(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sticky),
      cmocka_unit_test(test_peer_limit),
      cmocka_unit_test(test_nvlink_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
