/* Fake libnvidia-ml.so.1: plays the fixture back through the NVML entry points peerscope
 * uses. Variants (compile definitions): PS_FAKE_LEGACY drops the _v2/_v3 entry points an
 * old driver lacks; PS_FAKE_BROKEN drops nvmlDeviceGetHandleByIndex(_v2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv/nvml_abi.h"
#include "fake_core.h"

#define MIB (1024ull * 1024ull)

/* nvmlPciInfo_t before NVML's v2 (a 16-byte busId), still filled by the v1 entry points. */
typedef struct nvmlPciInfoV1_st {
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  unsigned int reserved0, reserved1, reserved2, reserved3;
} nvmlPciInfoV1_t;

struct nvmlDevice_st {
  int index;
};

static struct nvmlDevice_st devices[PS_FIX_MAX_GPUS];
static int init_count; /* nvmlInit minus nvmlShutdown */

void ps__fake_reset_hook(void) { init_count = 0; }

/* Counts the call and checks that NVML is initialized. */
static nvmlReturn_t enter(void) {
  ps__fake_count_call();
  return init_count > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

static nvmlReturn_t device_of(nvmlDevice_t dev, int *gpu) {
  const ps_fixture *f = ps__fake_fixture(false);
  if (!f || dev < devices || dev >= devices + PS_FIX_MAX_GPUS || dev->index >= f->gpu_count)
    return NVML_ERROR_INVALID_ARGUMENT;
  if (ps__fake_gpu_lost(dev->index)) return NVML_ERROR_GPU_IS_LOST;
  *gpu = dev->index;
  return NVML_SUCCESS;
}

/* Counts the call, checks init and the handle; *g is the GPU's fixture entry. */
static nvmlReturn_t enter_device(nvmlDevice_t dev, const ps_fix_gpu **g) {
  nvmlReturn_t r = enter();
  int gpu = 0;
  if (r == NVML_SUCCESS) r = device_of(dev, &gpu);
  if (r == NVML_SUCCESS) *g = &ps__fake_fixture(false)->gpus[gpu];
  return r;
}

static nvmlReturn_t put_str(char *dst, unsigned int len, const char *src) {
  if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
  size_t n = strlen(src);
  if (len < n + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, n + 1);
  return NVML_SUCCESS;
}

/* ---- init, system ------------------------------------------------------------------ */

static nvmlReturn_t init(void) {
  ps__fake_latency("nvmlInit");
  ps__fake_lock();
  nvmlReturn_t r = NVML_SUCCESS;
  /* Load first: a reload restarts the call counter, and this call counts. */
  const ps_fixture *f = ps__fake_fixture(init_count == 0);
  ps__fake_count_call();
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_NVML_INIT_FAILS, -1, -1);
  if (!f)
    r = NVML_ERROR_DRIVER_NOT_LOADED;
  else if (ft)
    r = ft->code;
  else
    init_count++;
  for (int i = 0; i < PS_FIX_MAX_GPUS; i++)
    devices[i].index = i;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlInit(void) { return init(); }
#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void) { return init(); }
#endif

PS_FAKE_EXPORT nvmlReturn_t nvmlShutdown(void) {
  ps__fake_lock();
  nvmlReturn_t r = enter();
  if (r == NVML_SUCCESS) init_count--;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
  case NVML_ERROR_NOT_FOUND: return "Not Found";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_TIMEOUT: return "Timeout";
  case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
  case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
  default: return "Unknown Error";
  }
}

static nvmlReturn_t system_str(char *dst, unsigned int len, bool nvml) {
  ps__fake_lock();
  nvmlReturn_t r = enter();
  if (r == NVML_SUCCESS) {
    const ps_fixture *f = ps__fake_fixture(false);
    r = put_str(dst, len, nvml ? f->nvml_version : f->driver_version);
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  return system_str(version, length, false);
}

PS_FAKE_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
  return system_str(version, length, true);
}

static nvmlReturn_t cuda_version(int *version) {
  ps__fake_lock();
  nvmlReturn_t r = enter();
  if (r == NVML_SUCCESS && !version) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) *version = ps__fake_fixture(false)->cuda_version;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
  return cuda_version(version);
}
#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
  return cuda_version(version);
}
#endif

/* ---- devices ----------------------------------------------------------------------- */

static nvmlReturn_t count(unsigned int *n) {
  ps__fake_lock();
  nvmlReturn_t r = enter();
  if (r == NVML_SUCCESS && !n) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) *n = (unsigned int)ps__fake_fixture(false)->gpu_count;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count_out) { return count(count_out); }
#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count_out) {
  return count(count_out);
}
#endif

#ifndef PS_FAKE_BROKEN
static nvmlReturn_t handle_by_index(unsigned int index, nvmlDevice_t *dev) {
  ps__fake_lock();
  nvmlReturn_t r = enter();
  if (r == NVML_SUCCESS && (!dev || index >= (unsigned int)ps__fake_fixture(false)->gpu_count))
    r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && ps__fake_gpu_lost((int)index)) r = NVML_ERROR_GPU_IS_LOST;
  if (r == NVML_SUCCESS) *dev = &devices[index];
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *dev) {
  return handle_by_index(index, dev);
}
#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev) {
  return handle_by_index(index, dev);
}
#endif
#endif

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS) r = put_str(name, length, g->name);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS) r = put_str(uuid, length, g->uuid);
  ps__fake_unlock();
  return r;
}

static void legacy_bus_id(const ps_fix_gpu *g, char *dst, size_t len) {
  snprintf(dst, len, "%04X:%02X:%02X.%X", g->pci_domain & 0xffff, g->pci_bus, g->pci_device,
           g->pci_function);
}

static void fill_pci(const ps_fix_gpu *g, nvmlPciInfo_t *pci) {
  memset(pci, 0, sizeof(*pci));
  legacy_bus_id(g, pci->busIdLegacy, sizeof(pci->busIdLegacy));
  snprintf(pci->busId, sizeof(pci->busId), "%s", g->bus_id);
  pci->domain = g->pci_domain;
  pci->bus = g->pci_bus;
  pci->device = g->pci_device;
  pci->pciDeviceId = g->pci_id;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t dev, nvmlPciInfoV1_t *pci) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !pci) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    memset(pci, 0, sizeof(*pci));
    legacy_bus_id(g, pci->busId, sizeof(pci->busId));
    pci->domain = g->pci_domain;
    pci->bus = g->pci_bus;
    pci->device = g->pci_device;
    pci->pciDeviceId = g->pci_id;
  }
  ps__fake_unlock();
  return r;
}

#ifndef PS_FAKE_LEGACY
static nvmlReturn_t pci_info(nvmlDevice_t dev, nvmlPciInfo_t *pci) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !pci) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) fill_pci(g, pci);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t dev, nvmlPciInfo_t *pci) {
  return pci_info(dev, pci);
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci) {
  return pci_info(dev, pci);
}
#endif

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *memory) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !memory) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    memory->total = g->mem_total_mib * MIB;
    memory->free = g->mem_free_mib * MIB;
    memory->used = memory->total - memory->free;
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t dev, nvmlBAR1Memory_t *bar1) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !bar1) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && !g->bar1_mib) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) {
    bar1->bar1Total = g->bar1_mib * MIB;
    bar1->bar1Used = 0;
    bar1->bar1Free = bar1->bar1Total;
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t dev, int *major,
                                                               int *minor) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && (!major || !minor)) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) *major = g->cc_major, *minor = g->cc_minor;
  ps__fake_unlock();
  return r;
}

#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t dev, unsigned int *node) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !node) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && g->numa_node < 0) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) *node = (unsigned int)g->numa_node;
  ps__fake_unlock();
  return r;
}
#endif

/* Doctor's optional queries: the gpu's mig=, persistence=, display= (unset: not supported). */
static nvmlReturn_t gpu_flag(nvmlDevice_t dev, int which, int *value) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS) {
    int v = which == 0 ? g->mig : which == 1 ? g->persistence : g->display;
    if (v < 0)
      r = NVML_ERROR_NOT_SUPPORTED;
    else
      *value = v;
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current,
                                                 unsigned int *pending) {
  if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
  int v = 0;
  nvmlReturn_t r = gpu_flag(dev, 0, &v);
  if (r == NVML_SUCCESS) *current = *pending = (unsigned int)v;
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t dev,
                                                         nvmlEnableState_t *mode) {
  if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
  int v = 0;
  nvmlReturn_t r = gpu_flag(dev, 1, &v);
  if (r == NVML_SUCCESS) *mode = v ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t dev,
                                                       nvmlEnableState_t *active) {
  if (!active) return NVML_ERROR_INVALID_ARGUMENT;
  int v = 0;
  nvmlReturn_t r = gpu_flag(dev, 2, &v);
  if (r == NVML_SUCCESS) *active = v ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return r;
}

/* Sets the bits of a Linux cpulist (already validated by the parser) in set. */
static void set_bits(const char *list, unsigned int words, unsigned long *set) {
  const unsigned bits = (unsigned)sizeof(unsigned long) * 8;
  memset(set, 0, words * sizeof(*set));
  const char *s = list;
  while (*s) {
    char *end;
    unsigned long lo = strtoul(s, &end, 10), hi = lo;
    if (*end == '-') hi = strtoul(end + 1, &end, 10);
    for (unsigned long c = lo; c <= hi && c < (unsigned long)words * bits; c++)
      set[c / bits] |= 1ul << (c % bits);
    s = *end == ',' ? end + 1 : end;
  }
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t dev, unsigned int cpu_set_size,
                                                     unsigned long *cpu_set) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && (!cpu_set || cpu_set_size == 0)) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && !g->cpus[0]) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) set_bits(g->cpus, cpu_set_size, cpu_set);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t dev,
                                                        unsigned int node_set_size,
                                                        unsigned long *node_set,
                                                        nvmlAffinityScope_t scope) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && (!node_set || node_set_size == 0 || scope > NVML_AFFINITY_SCOPE_SOCKET))
    r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && g->numa_node < 0) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) {
    char node[16];
    snprintf(node, sizeof(node), "%d", g->numa_node);
    set_bits(node, node_set_size, node_set);
  }
  ps__fake_unlock();
  return r;
}

/* PCIe generation/width getters; which: 0 curr gen, 1 max gen, 2 curr width, 3 max width. */
static nvmlReturn_t pcie(nvmlDevice_t dev, unsigned int *value, int which) {
  ps__fake_lock();
  const ps_fix_gpu *g = NULL;
  nvmlReturn_t r = enter_device(dev, &g);
  if (r == NVML_SUCCESS && !value) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    int values[4] = {g->pcie_gen, g->pcie_gen_max, g->pcie_width, g->pcie_width_max};
    if (!values[which])
      r = NVML_ERROR_NOT_SUPPORTED;
    else
      *value = (unsigned int)values[which];
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t dev, unsigned int *v) {
  return pcie(dev, v, 0);
}
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t dev, unsigned int *v) {
  return pcie(dev, v, 1);
}
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t dev, unsigned int *v) {
  return pcie(dev, v, 2);
}
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t dev, unsigned int *v) {
  return pcie(dev, v, 3);
}

/* ---- pairs ------------------------------------------------------------------------- */

static nvmlReturn_t enter_pair(nvmlDevice_t a, nvmlDevice_t b, const ps_fix_pair **pair,
                               bool *same) {
  nvmlReturn_t r = enter();
  int ga = 0, gb = 0;
  if (r == NVML_SUCCESS) r = device_of(a, &ga);
  if (r == NVML_SUCCESS) r = device_of(b, &gb);
  if (r != NVML_SUCCESS) return r;
  *same = ga == gb;
  if (!*same) *pair = ps__fixture_pair(ps__fake_fixture(false), ga, gb);
  return NVML_SUCCESS;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b,
                                                                nvmlGpuTopologyLevel_t *level) {
  ps__fake_lock();
  const ps_fix_pair *p = NULL;
  bool same = false;
  nvmlReturn_t r = enter_pair(a, b, &p, &same);
  if (r == NVML_SUCCESS && !level) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && same)
    *level = NVML_TOPOLOGY_INTERNAL;
  else if (r == NVML_SUCCESS) {
    switch (p->pcie) {
    case PS_FIX_LINK_PIX: *level = NVML_TOPOLOGY_SINGLE; break;
    case PS_FIX_LINK_PXB: *level = NVML_TOPOLOGY_MULTIPLE; break;
    case PS_FIX_LINK_PHB: *level = NVML_TOPOLOGY_HOSTBRIDGE; break;
    case PS_FIX_LINK_NODE: *level = NVML_TOPOLOGY_NODE; break;
    default: *level = NVML_TOPOLOGY_SYSTEM; break;
    }
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b,
                                                   nvmlGpuP2PCapsIndex_t caps,
                                                   nvmlGpuP2PStatus_t *status) {
  ps__fake_lock();
  const ps_fix_pair *p = NULL;
  bool same = false;
  nvmlReturn_t r = enter_pair(a, b, &p, &same);
  if (r == NVML_SUCCESS && (!status || same || (int)caps < 0 || caps > NVML_P2P_CAPS_INDEX_PCI))
    r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    /* The deprecated PCI index reports the read claim. */
    int cap = caps == NVML_P2P_CAPS_INDEX_PCI ? PS_FIX_CAP_READ : (int)caps;
    *status = (nvmlGpuP2PStatus_t)p->claims[cap];
    /* Every direct NVLink down: no NVLink path, whatever the fixture claimed. */
    if (cap == PS_FIX_CAP_NVLINK && p->link == PS_FIX_LINK_NV && !p->nvswitch &&
        ps__fake_nvlinks_up(ps__fake_fixture(false), a->index, b->index) == 0)
      *status = NVML_P2P_STATUS_NOT_SUPPORTED;
  }
  ps__fake_unlock();
  return r;
}

/* ---- NVLink ------------------------------------------------------------------------ */

/* Counts the call, checks the device and link; *link is a copy of that link. */
static nvmlReturn_t enter_link(nvmlDevice_t dev, unsigned int index, ps_fake_nvlink *link) {
  nvmlReturn_t r = enter();
  int gpu = 0;
  if (r == NVML_SUCCESS) r = device_of(dev, &gpu);
  if (r != NVML_SUCCESS) return r;
  ps_fake_nvlink links[PS_FIX_MAX_NVLINKS];
  int n = ps__fake_nvlinks(ps__fake_fixture(false), gpu, links);
  if (n == 0) return NVML_ERROR_NOT_SUPPORTED;
  if (index >= (unsigned int)n) return NVML_ERROR_INVALID_ARGUMENT;
  *link = links[index];
  return NVML_SUCCESS;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t dev, unsigned int link,
                                                     nvmlEnableState_t *active) {
  ps__fake_lock();
  ps_fake_nvlink l;
  nvmlReturn_t r = enter_link(dev, link, &l);
  if (r == NVML_SUCCESS && !active) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) *active = l.down ? NVML_FEATURE_DISABLED : NVML_FEATURE_ENABLED;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t dev, unsigned int link,
                                                       unsigned int *version) {
  ps__fake_lock();
  ps_fake_nvlink l;
  nvmlReturn_t r = enter_link(dev, link, &l);
  if (r == NVML_SUCCESS && !version) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && !l.version) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) *version = (unsigned int)l.version;
  ps__fake_unlock();
  return r;
}

/* The remote end: the peer GPU's PCI info, or a made-up NVSwitch at 0000FFFF:<n>:00.0. */
static void remote_gpu(const ps_fake_nvlink *l, ps_fix_gpu *out) {
  if (l->peer >= 0) {
    *out = ps__fake_fixture(false)->gpus[l->peer];
    return;
  }
  memset(out, 0, sizeof(*out));
  out->pci_domain = 0xffff;
  out->pci_bus = (unsigned)l->switch_id;
  snprintf(out->bus_id, sizeof(out->bus_id), "0000FFFF:%02X:00.0", (unsigned)l->switch_id);
  out->pci_id = 0x22a310de; /* NVSwitch (GH100 generation) */
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t dev, unsigned int link,
                                                             nvmlPciInfoV1_t *pci) {
  ps__fake_lock();
  ps_fake_nvlink l;
  nvmlReturn_t r = enter_link(dev, link, &l);
  if (r == NVML_SUCCESS && !pci) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    ps_fix_gpu g;
    remote_gpu(&l, &g);
    memset(pci, 0, sizeof(*pci));
    legacy_bus_id(&g, pci->busId, sizeof(pci->busId));
    pci->domain = g.pci_domain;
    pci->bus = g.pci_bus;
    pci->device = g.pci_device;
    pci->pciDeviceId = g.pci_id;
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t dev, unsigned int link,
                                                                nvmlPciInfo_t *pci) {
  ps__fake_lock();
  ps_fake_nvlink l;
  nvmlReturn_t r = enter_link(dev, link, &l);
  if (r == NVML_SUCCESS && !pci) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) {
    ps_fix_gpu g;
    remote_gpu(&l, &g);
    fill_pci(&g, pci);
  }
  ps__fake_unlock();
  return r;
}

#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t dev, unsigned int link,
                                                                nvmlIntNvLinkDeviceType_t *type) {
  ps__fake_lock();
  ps_fake_nvlink l;
  nvmlReturn_t r = enter_link(dev, link, &l);
  if (r == NVML_SUCCESS && !type) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS)
    *type = l.peer >= 0 ? NVML_NVLINK_DEVICE_TYPE_GPU : NVML_NVLINK_DEVICE_TYPE_SWITCH;
  ps__fake_unlock();
  return r;
}
#endif
