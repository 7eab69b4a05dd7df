/* The fake drivers on their own: dlopen libnvidia-ml.so.1 / libcuda.so.1 from
 * $PEERSCOPE_FAKE_DIR (and the fake-legacy, fake-broken variants) with a fixture, and
 * check they play the machine and its faults back the way docs/fixture-format.md says. */
#include "support.h"

#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drv/cuda_abi.h"
#include "drv/nvml_abi.h"

#define MIB (1024ull * 1024ull)

typedef struct nvml {
  void *h;
  PFN_nvmlInit Init;
  PFN_nvmlShutdown Shutdown;
  PFN_nvmlErrorString ErrorString;
  PFN_nvmlSystemGetDriverVersion DriverVersion;
  PFN_nvmlSystemGetNVMLVersion NVMLVersion;
  PFN_nvmlSystemGetCudaDriverVersion CudaVersion;
  PFN_nvmlDeviceGetCount Count;
  PFN_nvmlDeviceGetHandleByIndex Handle;
  PFN_nvmlDeviceGetName Name;
  PFN_nvmlDeviceGetUUID UUID;
  PFN_nvmlDeviceGetPciInfo Pci;
  PFN_nvmlDeviceGetMemoryInfo Memory;
  PFN_nvmlDeviceGetBAR1MemoryInfo Bar1;
  PFN_nvmlDeviceGetCudaComputeCapability Cc;
  PFN_nvmlDeviceGetNumaNodeId Numa;
  PFN_nvmlDeviceGetMemoryAffinity MemAffinity;
  PFN_nvmlDeviceGetCpuAffinity CpuAffinity;
  PFN_nvmlDeviceGetUint CurrGen, MaxGen, CurrWidth, MaxWidth;
  PFN_nvmlDeviceGetTopologyCommonAncestor Ancestor;
  PFN_nvmlDeviceGetP2PStatus P2P;
  PFN_nvmlDeviceGetNvLinkState LinkState;
  PFN_nvmlDeviceGetNvLinkVersion LinkVersion;
  PFN_nvmlDeviceGetNvLinkRemotePciInfo RemotePci;
  PFN_nvmlDeviceGetNvLinkRemoteDeviceType RemoteType;
} nvml;

typedef struct cuda {
  void *h;
  PFN_cuInit Init;
  PFN_cuDriverGetVersion DriverGetVersion;
  PFN_cuGetErrorName GetErrorName;
  PFN_cuGetErrorString GetErrorString;
  PFN_cuDeviceGetCount DeviceGetCount;
  PFN_cuDeviceGet DeviceGet;
  PFN_cuDeviceGetName DeviceGetName;
  PFN_cuDeviceGetPCIBusId DeviceGetPCIBusId;
  PFN_cuDeviceGetAttribute DeviceGetAttribute;
  PFN_cuDeviceTotalMem_v2 DeviceTotalMem;
  PFN_cuDeviceCanAccessPeer DeviceCanAccessPeer;
  PFN_cuDevicePrimaryCtxRetain PrimaryCtxRetain;
  PFN_cuDevicePrimaryCtxRelease_v2 PrimaryCtxRelease;
  PFN_cuCtxSetCurrent CtxSetCurrent;
  PFN_cuCtxSynchronize CtxSynchronize;
  PFN_cuCtxEnablePeerAccess CtxEnablePeerAccess;
  PFN_cuMemAlloc_v2 MemAlloc;
  PFN_cuMemFree_v2 MemFree;
  PFN_cuMemGetInfo_v2 MemGetInfo;
  PFN_cuMemcpyHtoD_v2 MemcpyHtoD;
  PFN_cuMemcpyDtoH_v2 MemcpyDtoH;
  PFN_cuMemcpyDtoD_v2 MemcpyDtoD;
  PFN_cuMemcpyPeer MemcpyPeer;
} cuda;

static char *lib_path(const char *variant, const char *file) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/../%s/%s", ps_test_env("PEERSCOPE_FAKE_DIR"), variant, file);
  return path;
}

static void *open_lib(const char *variant, const char *file) {
  void *h = dlopen(lib_path(variant, file), RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen: %s", dlerror());
  return h;
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) fail_msg("fake driver lacks %s", name);
  return p;
}

#define LOAD(lib, field, name) ((lib)->field = (__typeof__((lib)->field))sym((lib)->h, name))

static void use_fixture(const char *name) {
  setenv("PEERSCOPE_FIXTURE", ps_test_fixture_path(name), 1);
}

/* Opens the variant's NVML; legacy lacks the _v2 names, so it gets the v1 ones. */
static void nvml_open(nvml *n, const char *variant) {
  bool legacy = strcmp(variant, "fake-legacy") == 0;
  memset(n, 0, sizeof(*n));
  n->h = open_lib(variant, "libnvidia-ml.so.1");
  LOAD(n, Init, legacy ? "nvmlInit" : "nvmlInit_v2");
  LOAD(n, Shutdown, "nvmlShutdown");
  LOAD(n, ErrorString, "nvmlErrorString");
  LOAD(n, DriverVersion, "nvmlSystemGetDriverVersion");
  LOAD(n, NVMLVersion, "nvmlSystemGetNVMLVersion");
  LOAD(n, CudaVersion,
       legacy ? "nvmlSystemGetCudaDriverVersion" : "nvmlSystemGetCudaDriverVersion_v2");
  LOAD(n, Count, legacy ? "nvmlDeviceGetCount" : "nvmlDeviceGetCount_v2");
  LOAD(n, Handle, legacy ? "nvmlDeviceGetHandleByIndex" : "nvmlDeviceGetHandleByIndex_v2");
  LOAD(n, Name, "nvmlDeviceGetName");
  LOAD(n, UUID, "nvmlDeviceGetUUID");
  if (!legacy) LOAD(n, Pci, "nvmlDeviceGetPciInfo_v3");
  LOAD(n, Memory, "nvmlDeviceGetMemoryInfo");
  LOAD(n, Bar1, "nvmlDeviceGetBAR1MemoryInfo");
  LOAD(n, Cc, "nvmlDeviceGetCudaComputeCapability");
  if (!legacy) LOAD(n, Numa, "nvmlDeviceGetNumaNodeId");
  LOAD(n, MemAffinity, "nvmlDeviceGetMemoryAffinity");
  LOAD(n, CpuAffinity, "nvmlDeviceGetCpuAffinity");
  LOAD(n, CurrGen, "nvmlDeviceGetCurrPcieLinkGeneration");
  LOAD(n, MaxGen, "nvmlDeviceGetMaxPcieLinkGeneration");
  LOAD(n, CurrWidth, "nvmlDeviceGetCurrPcieLinkWidth");
  LOAD(n, MaxWidth, "nvmlDeviceGetMaxPcieLinkWidth");
  LOAD(n, Ancestor, "nvmlDeviceGetTopologyCommonAncestor");
  LOAD(n, P2P, "nvmlDeviceGetP2PStatus");
  LOAD(n, LinkState, "nvmlDeviceGetNvLinkState");
  LOAD(n, LinkVersion, "nvmlDeviceGetNvLinkVersion");
  LOAD(n, RemotePci, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
  if (!legacy) LOAD(n, RemoteType, "nvmlDeviceGetNvLinkRemoteDeviceType");
}

static void nvml_close(nvml *n) {
  dlclose(n->h);
  n->h = NULL;
}

static nvmlDevice_t dev(nvml *n, unsigned i) {
  nvmlDevice_t d = NULL;
  assert_int_equal(n->Handle(i, &d), NVML_SUCCESS);
  return d;
}

static void cuda_open(cuda *c, const char *variant) {
  memset(c, 0, sizeof(*c));
  c->h = open_lib(variant, "libcuda.so.1");
  LOAD(c, Init, "cuInit");
  LOAD(c, DriverGetVersion, "cuDriverGetVersion");
  LOAD(c, GetErrorName, "cuGetErrorName");
  LOAD(c, GetErrorString, "cuGetErrorString");
  LOAD(c, DeviceGetCount, "cuDeviceGetCount");
  LOAD(c, DeviceGet, "cuDeviceGet");
  LOAD(c, DeviceGetName, "cuDeviceGetName");
  LOAD(c, DeviceGetPCIBusId, "cuDeviceGetPCIBusId");
  LOAD(c, DeviceGetAttribute, "cuDeviceGetAttribute");
  LOAD(c, DeviceTotalMem, "cuDeviceTotalMem_v2");
  LOAD(c, DeviceCanAccessPeer, "cuDeviceCanAccessPeer");
  LOAD(c, PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  LOAD(c, PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  LOAD(c, CtxSetCurrent, "cuCtxSetCurrent");
  LOAD(c, CtxSynchronize, "cuCtxSynchronize");
  LOAD(c, CtxEnablePeerAccess, "cuCtxEnablePeerAccess");
  LOAD(c, MemAlloc, "cuMemAlloc_v2");
  LOAD(c, MemFree, "cuMemFree_v2");
  LOAD(c, MemGetInfo, "cuMemGetInfo_v2");
  LOAD(c, MemcpyHtoD, "cuMemcpyHtoD_v2");
  LOAD(c, MemcpyDtoH, "cuMemcpyDtoH_v2");
  LOAD(c, MemcpyDtoD, "cuMemcpyDtoD_v2");
  LOAD(c, MemcpyPeer, "cuMemcpyPeer");
}

static void cuda_close(cuda *c) {
  dlclose(c->h);
  c->h = NULL;
}

/* Retains GPU g's primary context and allocates `bytes` on it. */
static CUcontext ctx_alloc(cuda *c, int g, size_t bytes, CUdeviceptr *ptr) {
  CUcontext ctx = NULL;
  assert_int_equal(c->PrimaryCtxRetain(&ctx, g), CUDA_SUCCESS);
  assert_int_equal(c->CtxSetCurrent(ctx), CUDA_SUCCESS);
  assert_int_equal(c->MemAlloc(ptr, bytes), CUDA_SUCCESS);
  return ctx;
}

/* Captures what a block writes on stderr into buf. */
typedef struct capture {
  int saved;
  FILE *tmp;
} capture;

static void capture_begin(capture *cap) {
  fflush(stderr);
  cap->tmp = tmpfile();
  assert_non_null(cap->tmp);
  cap->saved = dup(STDERR_FILENO);
  dup2(fileno(cap->tmp), STDERR_FILENO);
}

static void capture_end(capture *cap, char *buf, size_t len) {
  fflush(stderr);
  dup2(cap->saved, STDERR_FILENO);
  close(cap->saved);
  rewind(cap->tmp);
  size_t n = fread(buf, 1, len - 1, cap->tmp);
  buf[n] = '\0';
  fclose(cap->tmp);
}

/* ---- NVML -------------------------------------------------------------------------- */

static void test_nvml_facts(void **state) {
  (void)state;
  nvml n;
  use_fixture("example-4x-a100.topo");
  nvml_open(&n, "fake");
  unsigned count = 0;
  assert_int_equal(n.Count(&count), NVML_ERROR_UNINITIALIZED);
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(n.Count(&count), NVML_SUCCESS);
  assert_int_equal(count, 4);

  char buf[96];
  int v = 0;
  assert_int_equal(n.DriverVersion(buf, sizeof(buf)), NVML_SUCCESS);
  assert_string_equal(buf, "550.54.15");
  assert_int_equal(n.DriverVersion(buf, 9), NVML_ERROR_INSUFFICIENT_SIZE);
  assert_int_equal(n.NVMLVersion(buf, sizeof(buf)), NVML_SUCCESS);
  assert_string_equal(buf, "12.550.54.15");
  assert_int_equal(n.CudaVersion(&v), NVML_SUCCESS);
  assert_int_equal(v, 12040);

  nvmlDevice_t d = dev(&n, 1);
  assert_int_equal(n.Name(d, buf, sizeof(buf)), NVML_SUCCESS);
  assert_string_equal(buf, "NVIDIA A100-SXM4-40GB");
  assert_int_equal(n.Name(d, buf, 5), NVML_ERROR_INSUFFICIENT_SIZE);
  assert_int_equal(n.UUID(d, buf, sizeof(buf)), NVML_SUCCESS);
  assert_int_equal(strncmp(buf, "GPU-", 4), 0);
  assert_int_equal(strlen(buf), 40);

  nvmlPciInfo_t pci;
  assert_int_equal(n.Pci(d, &pci), NVML_SUCCESS);
  assert_string_equal(pci.busId, "00000000:41:00.0");
  assert_string_equal(pci.busIdLegacy, "0000:41:00.0");
  assert_int_equal(pci.bus, 0x41);
  assert_int_equal(pci.pciDeviceId, 0x20B010DE);

  nvmlMemory_t mem;
  assert_int_equal(n.Memory(d, &mem), NVML_SUCCESS);
  assert_int_equal(mem.total, 40960 * MIB);
  assert_int_equal(mem.free, (40960 - 512) * MIB);
  assert_int_equal(mem.used, 512 * MIB);
  nvmlBAR1Memory_t bar1;
  assert_int_equal(n.Bar1(d, &bar1), NVML_SUCCESS);
  assert_int_equal(bar1.bar1Total, 65536 * MIB);

  int major = 0, minor = 0;
  assert_int_equal(n.Cc(d, &major, &minor), NVML_SUCCESS);
  assert_int_equal(major, 8);
  assert_int_equal(minor, 0);
  unsigned u = 99;
  assert_int_equal(n.Numa(d, &u), NVML_SUCCESS);
  assert_int_equal(u, 0);
  unsigned long nodes[2] = {0, 0};
  assert_int_equal(n.MemAffinity(d, 2, nodes, NVML_AFFINITY_SCOPE_NODE), NVML_SUCCESS);
  assert_int_equal(nodes[0], 1);

  /* cpus=0-127: two full 64-bit words, nothing beyond. */
  unsigned long cpus[4] = {0, 0, 7, 7};
  assert_int_equal(n.CpuAffinity(d, 4, cpus), NVML_SUCCESS);
  assert_true(cpus[0] == ~0ul && cpus[1] == ~0ul && cpus[2] == 0 && cpus[3] == 0);
  assert_int_equal(n.CpuAffinity(d, 1, cpus), NVML_SUCCESS); /* truncated to the set size */
  assert_true(cpus[0] == ~0ul);

  assert_int_equal(n.CurrGen(d, &u), NVML_SUCCESS);
  assert_int_equal(u, 4);
  assert_int_equal(n.MaxWidth(d, &u), NVML_SUCCESS);
  assert_int_equal(u, 16);

  nvmlDevice_t bogus = (nvmlDevice_t)&u;
  assert_int_equal(n.Name(bogus, buf, sizeof(buf)), NVML_ERROR_INVALID_ARGUMENT);
  assert_int_equal(n.Handle(4, &d), NVML_ERROR_INVALID_ARGUMENT);
  assert_string_equal(n.ErrorString(NVML_ERROR_GPU_IS_LOST), "GPU is lost");
  assert_string_equal(n.ErrorString(12345), "Unknown Error");

  /* Init is counted: two inits need two shutdowns. */
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  assert_int_equal(n.Count(&count), NVML_SUCCESS);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  assert_int_equal(n.Count(&count), NVML_ERROR_UNINITIALIZED);
  assert_int_equal(n.Shutdown(), NVML_ERROR_UNINITIALIZED);

  const char *(*fixture)(void) = (const char *(*)(void))sym(n.h, "peerscope_fake_fixture");
  const char *(*machine)(void) = (const char *(*)(void))sym(n.h, "peerscope_fake_machine");
  assert_string_equal(fixture(), ps_test_fixture_path("example-4x-a100.topo"));
  assert_string_equal(machine(), "4x A100-SXM4-40GB (HGX A100 4-GPU)");
  nvml_close(&n);
}

static void test_nvml_unknown_fields(void **state) {
  (void)state;
  /* A GPU line without the optional fields: NVML says "not supported" for them. */
  char path[] = "/tmp/peerscope-fixture-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char text[] = "peerscope-fixture 1\nmachine \"bare\"\ndriver version=535.1 cuda=12.2\n"
                      "gpu 0 name=\"X\" uuid=GPU-00000000-0000-0000-0000-000000000000 "
                      "bus=0000:01:00.0 mem_mib=1024 cc=7.0\n";
  assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
  close(fd);
  setenv("PEERSCOPE_FIXTURE", path, 1);
  nvml n;
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  nvmlDevice_t d = dev(&n, 0);
  unsigned u;
  unsigned long set[1];
  nvmlBAR1Memory_t bar1;
  nvmlEnableState_t st;
  assert_int_equal(n.Numa(d, &u), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.MemAffinity(d, 1, set, 0), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.CpuAffinity(d, 1, set), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.CurrGen(d, &u), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.MaxWidth(d, &u), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.Bar1(d, &bar1), NVML_ERROR_NOT_SUPPORTED);
  assert_int_equal(n.LinkState(d, 0, &st), NVML_ERROR_NOT_SUPPORTED);
  nvmlMemory_t mem;
  assert_int_equal(n.Memory(d, &mem), NVML_SUCCESS);
  assert_int_equal(mem.free, 512 * MIB);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
  unlink(path);
}

static void test_nvml_dgx1(void **state) {
  (void)state;
  nvml n;
  use_fixture("dgx1-v100-8.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  nvmlGpuTopologyLevel_t level;
  assert_int_equal(n.Ancestor(dev(&n, 0), dev(&n, 0), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_INTERNAL);
  assert_int_equal(n.Ancestor(dev(&n, 0), dev(&n, 1), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_SINGLE);
  assert_int_equal(n.Ancestor(dev(&n, 1), dev(&n, 2), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_HOSTBRIDGE);
  assert_int_equal(n.Ancestor(dev(&n, 0), dev(&n, 4), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_SYSTEM);
  assert_int_equal(n.Ancestor(dev(&n, 7), dev(&n, 0), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_SYSTEM);

  nvmlGpuP2PStatus_t st;
  assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 3), NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_OK);
  assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 5), NVML_P2P_CAPS_INDEX_READ, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED);
  assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 5), NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 5), NVML_P2P_CAPS_INDEX_PCI, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED);
  assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 5), NVML_P2P_CAPS_INDEX_UNKNOWN, &st),
                   NVML_ERROR_INVALID_ARGUMENT);
  assert_int_equal(n.P2P(dev(&n, 2), dev(&n, 2), NVML_P2P_CAPS_INDEX_READ, &st),
                   NVML_ERROR_INVALID_ARGUMENT);

  /* GPU 0: NV1 to 1, NV1 to 2, NV2 to 3, NV2 to 4 -> links 0..5 in peer order. */
  static const char *const remote[6] = {"00000000:07:00.0", "00000000:0A:00.0", "00000000:0B:00.0",
                                        "00000000:0B:00.0", "00000000:85:00.0", "00000000:85:00.0"};
  for (unsigned l = 0; l < 6; l++) {
    nvmlEnableState_t on;
    unsigned version = 0;
    nvmlPciInfo_t pci;
    nvmlIntNvLinkDeviceType_t type;
    assert_int_equal(n.LinkState(dev(&n, 0), l, &on), NVML_SUCCESS);
    assert_int_equal(on, NVML_FEATURE_ENABLED);
    assert_int_equal(n.LinkVersion(dev(&n, 0), l, &version), NVML_SUCCESS);
    assert_int_equal(version, 2);
    assert_int_equal(n.RemotePci(dev(&n, 0), l, &pci), NVML_SUCCESS);
    assert_string_equal(pci.busId, remote[l]);
    assert_int_equal(n.RemoteType(dev(&n, 0), l, &type), NVML_SUCCESS);
    assert_int_equal(type, NVML_NVLINK_DEVICE_TYPE_GPU);
  }
  /* Every V100 has exactly six links. */
  for (unsigned g = 0; g < 8; g++) {
    nvmlEnableState_t on;
    assert_int_equal(n.LinkState(dev(&n, g), 5, &on), NVML_SUCCESS);
    assert_int_equal(n.LinkState(dev(&n, g), 6, &on), NVML_ERROR_INVALID_ARGUMENT);
  }
  /* The v1 remote-PCI entry point fills the old 16-byte busId layout. */
  struct {
    char busId[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId, reserved[4];
  } v1;
  PFN_nvmlDeviceGetNvLinkRemotePciInfo v1fn =
      (PFN_nvmlDeviceGetNvLinkRemotePciInfo)sym(n.h, "nvmlDeviceGetNvLinkRemotePciInfo");
  assert_int_equal(v1fn(dev(&n, 7), 0, (nvmlPciInfo_t *)(void *)&v1), NVML_SUCCESS);
  assert_string_equal(v1.busId, "0000:0B:00.0"); /* GPU 7's first link: NV1 to GPU 3 */
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
}

static void test_nvml_nvswitch(void **state) {
  (void)state;
  nvml n;
  use_fixture("hgx-h100-8.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  for (unsigned g = 0; g < 8; g++) {
    nvmlDevice_t d = dev(&n, g);
    unsigned links = 0, version = 0;
    nvmlEnableState_t on;
    while (n.LinkState(d, links, &on) == NVML_SUCCESS)
      links++;
    assert_int_equal(links, 18);
    assert_int_equal(n.LinkState(d, 18, &on), NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned l = 0; l < 18; l++) {
      nvmlIntNvLinkDeviceType_t type;
      nvmlPciInfo_t pci;
      assert_int_equal(n.RemoteType(d, l, &type), NVML_SUCCESS);
      assert_int_equal(type, NVML_NVLINK_DEVICE_TYPE_SWITCH);
      assert_int_equal(n.RemotePci(d, l, &pci), NVML_SUCCESS);
      assert_int_equal(strncmp(pci.busId, "0000FFFF:", 9), 0);
      assert_int_equal(n.LinkVersion(d, l, &version), NVML_SUCCESS);
      assert_int_equal(version, 6);
    }
    unsigned node = 9;
    assert_int_equal(n.Numa(d, &node), NVML_SUCCESS);
    assert_int_equal(node, g < 4 ? 0 : 1);
  }
  nvmlGpuTopologyLevel_t level;
  assert_int_equal(n.Ancestor(dev(&n, 1), dev(&n, 2), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_NODE);
  assert_int_equal(n.Ancestor(dev(&n, 1), dev(&n, 6), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_SYSTEM);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
}

static void test_nvml_pcie_only(void **state) {
  (void)state;
  nvml n;
  use_fixture("pcie-4-consumer-cns.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  nvmlEnableState_t on;
  assert_int_equal(n.LinkState(dev(&n, 0), 0, &on), NVML_ERROR_NOT_SUPPORTED);
  nvmlGpuP2PStatus_t st;
  for (int c = NVML_P2P_CAPS_INDEX_READ; c <= NVML_P2P_CAPS_INDEX_ATOMICS; c++) {
    assert_int_equal(n.P2P(dev(&n, 0), dev(&n, 1), c, &st), NVML_SUCCESS);
    assert_int_equal(st, c == NVML_P2P_CAPS_INDEX_NVLINK ? NVML_P2P_STATUS_NOT_SUPPORTED
                                                         : NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED);
  }
  nvmlGpuTopologyLevel_t level;
  assert_int_equal(n.Ancestor(dev(&n, 2), dev(&n, 3), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_HOSTBRIDGE);
  assert_int_equal(n.Ancestor(dev(&n, 0), dev(&n, 3), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_NODE);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);

  use_fixture("dual-socket-8-pcie.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(n.Ancestor(dev(&n, 4), dev(&n, 6), &level), NVML_SUCCESS);
  assert_int_equal(level, NVML_TOPOLOGY_MULTIPLE);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
}

/* ---- no fixture, init faults, variants --------------------------------------------- */

static void test_no_fixture(void **state) {
  (void)state;
  char out[1024];
  capture cap;
  nvml n;
  cuda c;

  unsetenv("PEERSCOPE_FIXTURE");
  capture_begin(&cap);
  nvml_open(&n, "fake");
  cuda_open(&c, "fake");
  nvmlReturn_t nr = n.Init();
  CUresult cr = c.Init(0);
  const char *(*fixture)(void) = (const char *(*)(void))sym(n.h, "peerscope_fake_fixture");
  const char *(*machine)(void) = (const char *(*)(void))sym(c.h, "peerscope_fake_machine");
  const char *fx = fixture(), *mc = machine();
  capture_end(&cap, out, sizeof(out));
  assert_int_equal(nr, NVML_ERROR_DRIVER_NOT_LOADED);
  assert_int_equal(cr, CUDA_ERROR_NO_DEVICE);
  assert_null(fx);
  assert_null(mc);
  /* One line per library, once. */
  assert_string_equal(out, "peerscope fake driver: PEERSCOPE_FIXTURE is not set\n"
                           "peerscope fake driver: PEERSCOPE_FIXTURE is not set\n");
  nvml_close(&n);
  cuda_close(&c);

  char bad[PATH_MAX + 64], want[PATH_MAX + 256];
  snprintf(bad, sizeof(bad), "%s/bad/link-class.topo", ps_test_env("PEERSCOPE_FIXTURES"));
  setenv("PEERSCOPE_FIXTURE", bad, 1);
  capture_begin(&cap);
  nvml_open(&n, "fake");
  nr = n.Init();
  nvmlReturn_t nr2 = n.Init();
  capture_end(&cap, out, sizeof(out));
  assert_int_equal(nr, NVML_ERROR_DRIVER_NOT_LOADED);
  assert_int_equal(nr2, NVML_ERROR_DRIVER_NOT_LOADED);
  snprintf(want, sizeof(want), "peerscope fake driver: %s:7:10: unknown link class 'NV0'\n", bad);
  assert_string_equal(out, want);
  nvml_close(&n);
}

static void test_init_faults(void **state) {
  (void)state;
  nvml n;
  cuda c;
  int count = -1;
  use_fixture("fault-nvml-init.topo");
  nvml_open(&n, "fake");
  cuda_open(&c, "fake");
  assert_int_equal(n.Init(), NVML_ERROR_DRIVER_NOT_LOADED);
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(c.DeviceGetCount(&count), CUDA_SUCCESS);
  assert_int_equal(count, 4);
  nvml_close(&n);
  cuda_close(&c);

  use_fixture("fault-cuda-init.topo");
  nvml_open(&n, "fake");
  cuda_open(&c, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(c.Init(0), CUDA_ERROR_NO_DEVICE);
  assert_int_equal(c.DeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
  cuda_close(&c);
}

static void test_variants(void **state) {
  (void)state;
  static const char *const legacy_nvml_missing[] = {
      "nvmlInit_v2",
      "nvmlDeviceGetCount_v2",
      "nvmlDeviceGetHandleByIndex_v2",
      "nvmlDeviceGetPciInfo_v2",
      "nvmlDeviceGetPciInfo_v3",
      "nvmlDeviceGetNumaNodeId",
      "nvmlDeviceGetNvLinkRemoteDeviceType",
      "nvmlSystemGetCudaDriverVersion_v2",
  };
  use_fixture("example-4x-a100.topo");
  void *h = open_lib("fake-legacy", "libnvidia-ml.so.1");
  for (size_t i = 0; i < sizeof(legacy_nvml_missing) / sizeof(legacy_nvml_missing[0]); i++)
    if (dlsym(h, legacy_nvml_missing[i]))
      fail_msg("fake-legacy exports %s", legacy_nvml_missing[i]);
  dlclose(h);
  h = open_lib("fake-legacy", "libcuda.so.1");
  assert_null(dlsym(h, "cuGetProcAddress"));
  assert_null(dlsym(h, "cuGetProcAddress_v2"));
  assert_non_null(dlsym(h, "cuMemAlloc_v2"));
  dlclose(h);
  h = open_lib("fake-broken", "libnvidia-ml.so.1");
  assert_null(dlsym(h, "nvmlDeviceGetHandleByIndex"));
  assert_null(dlsym(h, "nvmlDeviceGetHandleByIndex_v2"));
  assert_non_null(dlsym(h, "nvmlInit_v2"));
  dlclose(h);
  h = open_lib("fake-broken", "libcuda.so.1");
  assert_non_null(dlsym(h, "cuGetProcAddress_v2"));
  dlclose(h);
  /* The plain names are symlinks to the .so.1 files. */
  h = open_lib("fake", "libnvidia-ml.so");
  dlclose(h);

  /* An old NVML still plays the machine through the v1 entry points. */
  nvml n;
  nvml_open(&n, "fake-legacy");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  unsigned count = 0;
  assert_int_equal(n.Count(&count), NVML_SUCCESS);
  assert_int_equal(count, 4);
  struct {
    char busId[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId, reserved[4];
  } v1;
  PFN_nvmlDeviceGetPciInfo pci = (PFN_nvmlDeviceGetPciInfo)sym(n.h, "nvmlDeviceGetPciInfo");
  assert_int_equal(pci(dev(&n, 3), (nvmlPciInfo_t *)(void *)&v1), NVML_SUCCESS);
  assert_string_equal(v1.busId, "0000:C1:00.0");
  assert_int_equal(v1.bus, 0xC1);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
}

/* ---- CUDA -------------------------------------------------------------------------- */

static void test_cuda_proc_address(void **state) {
  (void)state;
  use_fixture("example-4x-a100.topo");
  void *h = open_lib("fake", "libcuda.so.1");
  PFN_cuGetProcAddress_v2 get2 = (PFN_cuGetProcAddress_v2)sym(h, "cuGetProcAddress_v2");
  PFN_cuGetProcAddress_v1 get1 = (PFN_cuGetProcAddress_v1)sym(h, "cuGetProcAddress");
  void *fn = NULL;
  CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  assert_int_equal(get2("cuMemAlloc", &fn, PS_CUDA_ABI_VERSION, 0, &st), CUDA_SUCCESS);
  assert_int_equal(st, CU_GET_PROC_ADDRESS_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuMemAlloc_v2"));
  assert_int_equal(get1("cuDeviceTotalMem", &fn, PS_CUDA_ABI_VERSION, 0), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuDeviceTotalMem_v2"));
  assert_int_equal(get1("cuDevicePrimaryCtxRelease", &fn, 11000, 0), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuDevicePrimaryCtxRelease_v2"));
  assert_int_equal(get1("cuMemcpyPeer", &fn, PS_CUDA_ABI_VERSION, 0), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuMemcpyPeer"));
  assert_int_equal(get2("cuGetProcAddress", &fn, 12000, 0, &st), CUDA_SUCCESS);
  assert_ptr_equal(fn, get2);
  assert_int_equal(get2("cuGetProcAddress", &fn, 11080, 0, &st), CUDA_SUCCESS);
  assert_ptr_equal(fn, get1);
  /* An ABI before 3.2 gets the legacy 32-bit entry point (never call it). */
  assert_int_equal(get1("cuMemAlloc", &fn, 3010, 0), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuMemAlloc"));
  assert_int_equal(get2("cuMemFree", &fn, 3010, 0, &st), CUDA_ERROR_NOT_FOUND);
  assert_int_equal(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  assert_int_equal(get2("cuNoSuchThing", &fn, 12000, 0, &st), CUDA_ERROR_NOT_FOUND);
  assert_int_equal(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  assert_null(fn);
  assert_int_equal(get2("cuInit", &fn, 12000, 1ull << 5, &st), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(get2("cuInit", NULL, 12000, 0, &st), CUDA_ERROR_INVALID_VALUE);
  dlclose(h);

  use_fixture("fault-missing-symbol.topo");
  h = open_lib("fake", "libcuda.so.1");
  get2 = (PFN_cuGetProcAddress_v2)sym(h, "cuGetProcAddress_v2");
  assert_int_equal(get2("cuCtxEnablePeerAccess", &fn, 12000, 0, &st), CUDA_ERROR_NOT_FOUND);
  assert_int_equal(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  assert_null(fn);
  assert_int_equal(get2("cuCtxSetCurrent", &fn, 12000, 0, &st), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(h, "cuCtxSetCurrent"));
  dlclose(h);
}

static void test_cuda_basics(void **state) {
  (void)state;
  cuda c;
  use_fixture("example-4x-a100.topo");
  unsetenv("CUDA_VISIBLE_DEVICES");
  cuda_open(&c, "fake");
  int count = 0, v = 0;
  CUdevice d = -1;
  assert_int_equal(c.DeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
  assert_int_equal(c.DriverGetVersion(&v), CUDA_SUCCESS);
  assert_int_equal(v, 12040);
  assert_int_equal(c.Init(1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(c.DeviceGetCount(&count), CUDA_SUCCESS);
  assert_int_equal(count, 4);
  assert_int_equal(c.DeviceGet(&d, 2), CUDA_SUCCESS);
  assert_int_equal(d, 2);
  assert_int_equal(c.DeviceGet(&d, 4), CUDA_ERROR_INVALID_DEVICE);

  char buf[64];
  assert_int_equal(c.DeviceGetName(buf, sizeof(buf), 2), CUDA_SUCCESS);
  assert_string_equal(buf, "NVIDIA A100-SXM4-40GB");
  assert_int_equal(c.DeviceGetPCIBusId(buf, sizeof(buf), 3), CUDA_SUCCESS);
  assert_string_equal(buf, "0000:C1:00.0");
  int a = 0;
  assert_int_equal(c.DeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 3), CUDA_SUCCESS);
  assert_int_equal(a, 0xC1);
  assert_int_equal(c.DeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0), 0);
  assert_int_equal(a, 8);
  assert_int_equal(c.DeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), 0);
  assert_int_equal(a, 108);
  assert_int_equal(c.DeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0), 0);
  assert_int_equal(a, 1);
  assert_int_equal(c.DeviceGetAttribute(&a, (CUdevice_attribute)9999, 0), CUDA_ERROR_INVALID_VALUE);
  size_t total = 0;
  assert_int_equal(c.DeviceTotalMem(&total, 1), CUDA_SUCCESS);
  assert_int_equal(total, 40960 * MIB);
  assert_int_equal(c.DeviceCanAccessPeer(&a, 0, 3), CUDA_SUCCESS);
  assert_int_equal(a, 1);
  assert_int_equal(c.DeviceCanAccessPeer(&a, 1, 1), CUDA_SUCCESS);
  assert_int_equal(a, 0);

  const char *s = NULL;
  assert_int_equal(c.GetErrorName(CUDA_ERROR_DEVICE_UNAVAILABLE, &s), CUDA_SUCCESS);
  assert_string_equal(s, "CUDA_ERROR_DEVICE_UNAVAILABLE");
  assert_int_equal(c.GetErrorString(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, &s), CUDA_SUCCESS);
  assert_string_equal(s, "peer access is not supported between these two devices");
  assert_int_equal(c.GetErrorName(4242, &s), CUDA_ERROR_INVALID_VALUE);
  assert_null(s);

  /* Memory round trip: host -> GPU 0 -> peer copy to GPU 3 -> DtoD on 3 -> host. */
  enum { N = 3 * 4096 + 7 };
  unsigned char in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = (unsigned char)(i * 7 + 3);
  CUdeviceptr p0 = 0, p3 = 0, q3 = 0;
  CUcontext c0 = ctx_alloc(&c, 0, N, &p0);
  CUcontext c3 = ctx_alloc(&c, 3, N, &q3);
  assert_int_equal(c.MemAlloc(&p3, N), CUDA_SUCCESS);
  size_t free_b = 0;
  assert_int_equal(c.MemGetInfo(&free_b, &total), CUDA_SUCCESS);
  assert_int_equal(free_b, (40960 - 512) * MIB - 2 * N);
  assert_int_equal(c.CtxSetCurrent(c0), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyHtoD(p0, in, N), CUDA_SUCCESS);
  assert_int_equal(c.CtxEnablePeerAccess(c3, 0), CUDA_SUCCESS);
  assert_int_equal(c.CtxEnablePeerAccess(c3, 0), CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
  assert_int_equal(c.CtxEnablePeerAccess(c0, 0), CUDA_ERROR_INVALID_DEVICE);
  assert_int_equal(c.MemcpyPeer(p3, c3, p0, c0, N), CUDA_SUCCESS);
  assert_int_equal(c.CtxSetCurrent(c3), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyDtoD(q3, p3, N), CUDA_SUCCESS);
  assert_int_equal(c.CtxSynchronize(), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyDtoH(out, q3, N), CUDA_SUCCESS);
  assert_memory_equal(in, out, N);

  /* Bad pointers and ranges. */
  assert_int_equal(c.MemcpyPeer(p3, c3, p0, c3, N), CUDA_ERROR_INVALID_VALUE); /* wrong ctx */
  assert_int_equal(c.MemcpyPeer(p3 + 1, c3, p0, c0, N), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemcpyDtoH(out, p0 + N, 1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemcpyHtoD((CUdeviceptr)(uintptr_t)in, in, 1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemcpyDtoH(out, p0 + 1, N - 1), CUDA_SUCCESS); /* inside is fine */
  assert_int_equal(c.MemFree(p0 + 1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemAlloc(&p0, 0), CUDA_ERROR_INVALID_VALUE);
  CUdeviceptr huge = 0;
  assert_int_equal(c.MemAlloc(&huge, (size_t)40960 * MIB), CUDA_ERROR_OUT_OF_MEMORY);

  assert_int_equal(c.MemFree(q3), CUDA_SUCCESS);
  assert_int_equal(c.MemFree(q3), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemFree(p3), CUDA_SUCCESS);
  assert_int_equal(c.PrimaryCtxRelease(3), CUDA_SUCCESS);
  assert_int_equal(c.PrimaryCtxRelease(3), CUDA_ERROR_INVALID_CONTEXT);
  assert_int_equal(c.CtxSetCurrent(c3), CUDA_ERROR_INVALID_CONTEXT);
  assert_int_equal(c.CtxSetCurrent(NULL), CUDA_SUCCESS);
  assert_int_equal(c.MemAlloc(&huge, 1), CUDA_ERROR_INVALID_CONTEXT);
  /* p0 is left allocated on purpose: the destructor frees it at dlclose. */
  cuda_close(&c);
}

static void test_cuda_visible_devices(void **state) {
  (void)state;
  cuda c;
  use_fixture("mixed-gpus.topo");
  setenv("CUDA_VISIBLE_DEVICES", "3,1,x,0", 1);
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  int count = 0;
  char name[64];
  assert_int_equal(c.DeviceGetCount(&count), CUDA_SUCCESS);
  assert_int_equal(count, 2); /* the list ends at the invalid entry */
  assert_int_equal(c.DeviceGetName(name, sizeof(name), 0), CUDA_SUCCESS);
  assert_string_equal(name, "NVIDIA RTX A4000");
  assert_int_equal(c.DeviceGetName(name, 8, 1), CUDA_SUCCESS); /* truncated like CUDA */
  assert_string_equal(name, "NVIDIA ");
  cuda_close(&c);

  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_ERROR_NO_DEVICE);
  cuda_close(&c);
  unsetenv("CUDA_VISIBLE_DEVICES");
}

/* Copies n bytes of a pattern from GPU a into GPU b with cuMemcpyPeer (or cuMemcpyDtoD
 * when a == b); returns the result and leaves what arrived in out. */
static CUresult copy_between(cuda *c, int a, int b, unsigned char *in, unsigned char *out,
                             size_t n) {
  CUdeviceptr src = 0, dst = 0;
  CUcontext ca = ctx_alloc(c, a, n, &src);
  assert_int_equal(c->MemcpyHtoD(src, in, n), CUDA_SUCCESS);
  CUcontext cb = ctx_alloc(c, b, n, &dst);
  CUresult r = a == b ? c->MemcpyDtoD(dst, src, n) : c->MemcpyPeer(dst, cb, src, ca, n);
  memset(out, 0, n);
  assert_int_equal(c->MemcpyDtoH(out, dst, n), CUDA_SUCCESS);
  assert_int_equal(c->MemFree(dst), CUDA_SUCCESS);
  assert_int_equal(c->MemFree(src), CUDA_SUCCESS);
  assert_int_equal(c->PrimaryCtxRelease(a), CUDA_SUCCESS);
  assert_int_equal(c->PrimaryCtxRelease(b), CUDA_SUCCESS);
  return r;
}

static int differing_bytes(const unsigned char *x, const unsigned char *y, size_t n,
                           size_t *where) {
  int diff = 0;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) diff++, *where = i;
  return diff;
}

static void test_corrupt(void **state) {
  (void)state;
  enum { N = 64 * 1024 };
  static unsigned char in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = (unsigned char)(i ^ (i >> 8));
  cuda c;
  size_t at = 0;
  use_fixture("fault-corrupt.topo");
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(copy_between(&c, 1, 2, in, out, N), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, N, &at), 1);
  assert_int_equal(at, 4096);
  assert_int_equal(out[4096], in[4096] ^ 0x01);
  /* Other directions, and copies too short to reach the offset, are clean. */
  assert_int_equal(copy_between(&c, 2, 1, in, out, N), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, N, &at), 0);
  assert_int_equal(copy_between(&c, 1, 2, in, out, 4096), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, 4096, &at), 0);
  assert_int_equal(copy_between(&c, 1, 1, in, out, N), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, N, &at), 0);
  cuda_close(&c);

  use_fixture("fault-local-corrupt.topo");
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(copy_between(&c, 1, 1, in, out, N), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, N, &at), 1);
  assert_int_equal(at, 4096);
  assert_int_equal(copy_between(&c, 0, 1, in, out, N), CUDA_SUCCESS);
  assert_int_equal(differing_bytes(in, out, N, &at), 0);
  cuda_close(&c);
}

static const char *temp_fixture(const char *faults);

static void test_copy_error(void **state) {
  (void)state;
  enum { N = 8192 };
  static unsigned char in[N], out[N];
  memset(in, 0x5a, N);
  cuda c;
  /* A code that does not poison the process (sticky=0 is the default for it): the process
   * carries on. The sticky default (fault-copy-error.topo's 719) is test_fake_hostile's. */
  const char *path = temp_fixture("fault copy_error 2 0 code=1");
  setenv("PEERSCOPE_FIXTURE", path, 1);
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(copy_between(&c, 2, 0, in, out, N), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(copy_between(&c, 0, 2, in, out, N), CUDA_SUCCESS);
  assert_memory_equal(in, out, N);
  cuda_close(&c);
  unlink(path);
}

static void test_unsupported_peer(void **state) {
  (void)state;
  nvml n;
  cuda c;
  use_fixture("fault-unsupported.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  nvmlGpuP2PStatus_t st;
  assert_int_equal(n.P2P(dev(&n, 2), dev(&n, 1), NVML_P2P_CAPS_INDEX_WRITE, &st), NVML_SUCCESS);
  assert_int_equal(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);

  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  int can = -1;
  assert_int_equal(c.DeviceCanAccessPeer(&can, 1, 2), CUDA_SUCCESS);
  assert_int_equal(can, 0);
  CUdeviceptr p1 = 0, p2 = 0;
  CUcontext c2 = ctx_alloc(&c, 2, 4096, &p2);
  CUcontext c1 = ctx_alloc(&c, 1, 4096, &p1);
  assert_int_equal(c.CtxEnablePeerAccess(c2, 0), CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  /* Like the real driver, cuMemcpyPeer still works (staged through the host). */
  assert_int_equal(c.MemcpyPeer(p2, c2, p1, c1, 4096), CUDA_SUCCESS);
  cuda_close(&c);
}

/* Writes a throwaway fixture; returns its path (static buffer). */
static const char *temp_fixture(const char *faults) {
  static char path[64];
  snprintf(path, sizeof(path), "/tmp/peerscope-fixture-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  assert_non_null(fp);
  fprintf(fp, "peerscope-fixture 1\nmachine \"tmp\"\ndriver version=550.54.15 cuda=12.4\n");
  for (int g = 0; g < 3; g++)
    fprintf(fp,
            "gpu %d name=\"G%d\" uuid=GPU-00000000-0000-0000-0000-00000000000%d "
            "bus=0000:0%d:00.0 mem_mib=1024 cc=8.0\n",
            g, g, g, g + 1);
  fprintf(fp, "link all all PIX\np2p all all read=OK cuda=1\n%s\n", faults);
  fclose(fp);
  return path;
}

static void test_gpu_lost(void **state) {
  (void)state;
  /* fault-gpu-lost: GPU 2, after 35 calls, CUDA only. */
  nvml n;
  cuda c;
  use_fixture("fault-gpu-lost.topo");
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  char name[96];
  for (int i = 0; i < 100; i++)
    assert_int_equal(n.Name(dev(&n, 2), name, sizeof(name)), 0);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);

  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS); /* call 1 */
  int count = 0;
  CUdevice d;
  for (int i = 2; i <= 35; i++)
    assert_int_equal(c.DeviceGet(&d, 2), CUDA_SUCCESS);
  assert_int_equal(c.DeviceGet(&d, 2), CUDA_ERROR_UNKNOWN); /* call 36 */
  assert_int_equal(c.DeviceGet(&d, 1), CUDA_SUCCESS);
  assert_int_equal(c.DeviceGetCount(&count), CUDA_SUCCESS);
  assert_int_equal(count, 4);
  int can = 0;
  assert_int_equal(c.DeviceCanAccessPeer(&can, 0, 2), CUDA_ERROR_UNKNOWN);
  CUcontext ctx;
  assert_int_equal(c.PrimaryCtxRetain(&ctx, 2), CUDA_ERROR_UNKNOWN);
  cuda_close(&c);

  /* driver=both (the default): NVML loses the GPU too, and its handle. */
  const char *path = temp_fixture("fault gpu_lost 1 after=5");
  setenv("PEERSCOPE_FIXTURE", path, 1);
  nvml_open(&n, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);                       /* 1 */
  nvmlDevice_t d0 = dev(&n, 0), d1 = dev(&n, 1);                  /* 2, 3 */
  assert_int_equal(n.Name(d1, name, sizeof(name)), NVML_SUCCESS); /* 4 */
  assert_int_equal(n.Name(d0, name, sizeof(name)), NVML_SUCCESS); /* 5 */
  assert_int_equal(n.Name(d1, name, sizeof(name)), NVML_ERROR_GPU_IS_LOST);
  assert_int_equal(n.Name(d0, name, sizeof(name)), NVML_SUCCESS);
  nvmlGpuTopologyLevel_t level;
  assert_int_equal(n.Ancestor(d0, d1, &level), NVML_ERROR_GPU_IS_LOST);
  assert_int_equal(n.Handle(1, &d1), NVML_ERROR_GPU_IS_LOST);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);

  unlink(path);
}

/* In CUDA, the lost GPU's contexts and memory fail; the rest works. */
static void test_gpu_lost_cuda_memory(void **state) {
  (void)state;
  /* code= replaces CUDA's default 999 (CUDA_ERROR_UNKNOWN). */
  const char *path = temp_fixture("fault gpu_lost 1 after=7 driver=cuda code=46");
  setenv("PEERSCOPE_FIXTURE", path, 1);
  cuda c;
  cuda_open(&c, "fake");
  assert_int_equal(c.Init(0), CUDA_SUCCESS); /* 1 */
  CUdeviceptr p0 = 0, p1 = 0;
  CUcontext c0 = ctx_alloc(&c, 0, 64, &p0); /* 2-4 */
  CUcontext c1 = ctx_alloc(&c, 1, 64, &p1); /* 5-7 */
  unsigned char buf[64] = {0};
  assert_int_equal(c.MemcpyPeer(p1, c1, p0, c0, 64), CUDA_ERROR_DEVICE_UNAVAILABLE);
  assert_int_equal(c.CtxSetCurrent(c1), CUDA_ERROR_DEVICE_UNAVAILABLE);
  assert_int_equal(c.CtxSetCurrent(c0), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyDtoH(buf, p1, 64), CUDA_ERROR_DEVICE_UNAVAILABLE);
  assert_int_equal(c.MemcpyHtoD(p0, buf, 64), CUDA_SUCCESS);
  assert_int_equal(c.MemFree(p1), CUDA_ERROR_DEVICE_UNAVAILABLE);
  assert_int_equal(c.MemFree(p0), CUDA_SUCCESS);
  cuda_close(&c); /* frees p1 */
  unlink(path);
}

/* The hang fault never returns: run it in a child that an alarm kills. */
static void test_hang(void **state) {
  (void)state;
  use_fixture("fault-hang.topo");
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cuda c;
    cuda_open(&c, "fake");
    CUdeviceptr p0 = 0, p3 = 0;
    if (c.Init(0) != CUDA_SUCCESS) _exit(10);
    CUcontext c0 = ctx_alloc(&c, 0, 4096, &p0);
    CUcontext c3 = ctx_alloc(&c, 3, 4096, &p3);
    if (c.MemcpyPeer(p0, c0, p3, c3, 4096) != CUDA_SUCCESS) _exit(11); /* 3 -> 0 is fine */
    alarm(1);
    c.MemcpyPeer(p3, c3, p0, c0, 4096);
    _exit(12);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status)) fail_msg("child exited with %d, expected to hang", WEXITSTATUS(status));
  assert_int_equal(WTERMSIG(status), SIGALRM);
}

/* The legacy 32-bit entry points abort with a message. */
static void test_legacy_entry_points_abort(void **state) {
  (void)state;
  static const char *const names[] = {"cuMemAlloc", "cuDeviceTotalMem"};
  use_fixture("example-4x-a100.topo");
  for (int i = 0; i < 2; i++) {
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      dup2(pipefd[1], STDERR_FILENO);
      void *h = open_lib("fake", "libcuda.so.1");
      CUresult (*legacy)(unsigned int *, unsigned int) =
          (CUresult(*)(unsigned int *, unsigned int))dlsym(h, names[i]);
      unsigned int x = 0;
      if (legacy) legacy(&x, 1);
      _exit(0);
    }
    close(pipefd[1]);
    char out[256] = {0}, want[128];
    ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
    close(pipefd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_true(n > 0);
    snprintf(want, sizeof(want), "peerscope fake driver: legacy entry point %s called\n", names[i]);
    assert_non_null(strstr(out, want));
  }
}

/* A library kept open reloads when PEERSCOPE_FIXTURE names another file at init. */
static void test_reload(void **state) {
  (void)state;
  nvml n;
  cuda c;
  unsigned count = 0;
  int cc = 0;
  use_fixture("rtx3090-2-nvlink.topo");
  nvml_open(&n, "fake");
  cuda_open(&c, "fake");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(n.Count(&count), NVML_SUCCESS);
  assert_int_equal(count, 2);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  use_fixture("hgx-h100-8.topo");
  assert_int_equal(n.Init(), NVML_SUCCESS);
  assert_int_equal(n.Count(&count), NVML_SUCCESS);
  assert_int_equal(count, 8);
  assert_int_equal(c.Init(0), CUDA_SUCCESS);
  assert_int_equal(c.DeviceGetCount(&cc), CUDA_SUCCESS);
  assert_int_equal(cc, 8);
  assert_int_equal(n.Shutdown(), NVML_SUCCESS);
  nvml_close(&n);
  cuda_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nvml_facts),
      cmocka_unit_test(test_nvml_unknown_fields),
      cmocka_unit_test(test_nvml_dgx1),
      cmocka_unit_test(test_nvml_nvswitch),
      cmocka_unit_test(test_nvml_pcie_only),
      cmocka_unit_test(test_no_fixture),
      cmocka_unit_test(test_init_faults),
      cmocka_unit_test(test_variants),
      cmocka_unit_test(test_cuda_proc_address),
      cmocka_unit_test(test_cuda_basics),
      cmocka_unit_test(test_cuda_visible_devices),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_copy_error),
      cmocka_unit_test(test_unsupported_peer),
      cmocka_unit_test(test_gpu_lost),
      cmocka_unit_test(test_gpu_lost_cuda_memory),
      cmocka_unit_test(test_hang),
      cmocka_unit_test(test_legacy_entry_points_abort),
      cmocka_unit_test(test_reload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
