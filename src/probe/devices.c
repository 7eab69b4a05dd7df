/* Per-GPU facts from NVML. Each query that fails leaves its field marked invalid: a GPU that
 * is lost half way still gets a report, with n/a where NVML could not answer. */
#include <stdio.h>
#include <string.h>

#include "core/busid.h"
#include "core/internal.h"
#include "probe/probe_internal.h"

#define CPUSET_WORDS 64 /* 4096 CPUs */
#define NUMA_WORDS 16   /* 1024 NUMA nodes */

void ps__cpulist_format(const unsigned long *mask, unsigned words, char *out, size_t out_len) {
  size_t used = 0;
  unsigned bits = words * 8 * sizeof(unsigned long);
  out[0] = '\0';
  for (unsigned cpu = 0; cpu < bits; cpu++) {
    if (!(mask[cpu / (8 * sizeof(unsigned long))] >> (cpu % (8 * sizeof(unsigned long))) & 1))
      continue;
    unsigned last = cpu;
    while (last + 1 < bits && (mask[(last + 1) / (8 * sizeof(unsigned long))] >>
                                   ((last + 1) % (8 * sizeof(unsigned long))) &
                               1))
      last++;
    int n = last == cpu
                ? snprintf(out + used, out_len - used, "%s%u", used ? "," : "", cpu)
                : snprintf(out + used, out_len - used, "%s%u-%u", used ? "," : "", cpu, last);
    if (n < 0 || (size_t)n >= out_len - used) return; /* truncated: keep what fits */
    used += (size_t)n;
    cpu = last;
  }
}

static void read_memory(const ps__nvml *nvml, nvmlDevice_t dev, ps_gpu *gpu) {
  nvmlMemory_t mem;
  if (nvml->DeviceGetMemoryInfo && nvml->DeviceGetMemoryInfo(dev, &mem) == NVML_SUCCESS) {
    gpu->memory_total_bytes = mem.total;
    gpu->memory_free_bytes = mem.free;
    gpu->valid |= PS_GPU_MEMORY_TOTAL | PS_GPU_MEMORY_FREE;
  }
  nvmlBAR1Memory_t bar1;
  if (nvml->DeviceGetBAR1MemoryInfo && nvml->DeviceGetBAR1MemoryInfo(dev, &bar1) == NVML_SUCCESS) {
    gpu->bar1_total_bytes = bar1.bar1Total;
    gpu->valid |= PS_GPU_BAR1;
  }
}

/* The NUMA node nearest the GPU's memory: nvidia-smi topo -m's "NUMA Affinity". The GPU's own
 * NUMA id (nvmlDeviceGetNumaNodeId) exists only where the GPU memory is a node itself
 * (Grace Hopper); elsewhere it is "not supported", so it is the fallback. */
static bool read_numa_node(const ps__nvml *nvml, nvmlDevice_t dev, int *node) {
  unsigned long nodes[NUMA_WORDS] = {0};
  if (nvml->DeviceGetMemoryAffinity &&
      nvml->DeviceGetMemoryAffinity(dev, NUMA_WORDS, nodes, NVML_AFFINITY_SCOPE_NODE) ==
          NVML_SUCCESS) {
    for (unsigned bit = 0; bit < NUMA_WORDS * 8 * sizeof(unsigned long); bit++)
      if (nodes[bit / (8 * sizeof(unsigned long))] >> (bit % (8 * sizeof(unsigned long))) & 1) {
        *node = (int)bit;
        return true;
      }
  }
  unsigned id;
  if (nvml->DeviceGetNumaNodeId && nvml->DeviceGetNumaNodeId(dev, &id) == NVML_SUCCESS) {
    *node = (int)id;
    return true;
  }
  return false;
}

static void read_locality(const ps__nvml *nvml, nvmlDevice_t dev, ps_gpu *gpu) {
  if (read_numa_node(nvml, dev, &gpu->numa_node)) gpu->valid |= PS_GPU_NUMA_NODE;
  unsigned long mask[CPUSET_WORDS] = {0};
  if (nvml->DeviceGetCpuAffinity &&
      nvml->DeviceGetCpuAffinity(dev, CPUSET_WORDS, mask) == NVML_SUCCESS) {
    ps__cpulist_format(mask, CPUSET_WORDS, gpu->cpu_affinity, sizeof(gpu->cpu_affinity));
    if (gpu->cpu_affinity[0]) gpu->valid |= PS_GPU_CPU_AFFINITY;
  }
}

static bool read_uint_pair(PFN_nvmlDeviceGetUint a, PFN_nvmlDeviceGetUint b, nvmlDevice_t dev,
                           int *va, int *vb) {
  unsigned x, y;
  if (!a || !b || a(dev, &x) != NVML_SUCCESS || b(dev, &y) != NVML_SUCCESS) return false;
  *va = (int)x;
  *vb = (int)y;
  return true;
}

static void read_pcie(const ps__nvml *nvml, nvmlDevice_t dev, ps_gpu *gpu) {
  if (read_uint_pair(nvml->DeviceGetCurrPcieLinkGeneration, nvml->DeviceGetCurrPcieLinkWidth, dev,
                     &gpu->pcie_gen_current, &gpu->pcie_width_current))
    gpu->valid |= PS_GPU_PCIE_CURRENT;
  if (read_uint_pair(nvml->DeviceGetMaxPcieLinkGeneration, nvml->DeviceGetMaxPcieLinkWidth, dev,
                     &gpu->pcie_gen_max, &gpu->pcie_width_max))
    gpu->valid |= PS_GPU_PCIE_MAX;
}

/* The v3 call fills busId; the legacy one only the first 16 bytes (busIdLegacy here). */
static bool read_bus_id(const ps__nvml *nvml, nvmlDevice_t dev, char *out, size_t len) {
  nvmlPciInfo_t pci;
  memset(&pci, 0, sizeof(pci));
  if (nvml->DeviceGetPciInfo(dev, &pci) != NVML_SUCCESS) return false;
  pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
  pci.busId[sizeof(pci.busId) - 1] = '\0';
  return ps__busid_canonical(pci.busId, out, len) || ps__busid_canonical(pci.busIdLegacy, out, len);
}

void ps__probe_gpu(const ps__nvml *nvml, int index, ps_gpu *gpu, nvmlDevice_t *handle) {
  nvmlDevice_t dev = NULL;
  *handle = NULL;
  gpu->index = index;
  if (nvml->DeviceGetHandleByIndex((unsigned)index, &dev) != NVML_SUCCESS) return;
  *handle = dev;

  if (nvml->DeviceGetName(dev, gpu->name, sizeof(gpu->name)) == NVML_SUCCESS)
    gpu->valid |= PS_GPU_NAME;
  if (nvml->DeviceGetUUID(dev, gpu->uuid, sizeof(gpu->uuid)) == NVML_SUCCESS)
    gpu->valid |= PS_GPU_UUID;
  if (read_bus_id(nvml, dev, gpu->pci_bus_id, sizeof(gpu->pci_bus_id)))
    gpu->valid |= PS_GPU_PCI_BUS_ID;
  int major, minor;
  if (nvml->DeviceGetCudaComputeCapability &&
      nvml->DeviceGetCudaComputeCapability(dev, &major, &minor) == NVML_SUCCESS) {
    gpu->cc_major = major;
    gpu->cc_minor = minor;
    gpu->valid |= PS_GPU_COMPUTE_CAP;
  }
  read_memory(nvml, dev, gpu);
  read_locality(nvml, dev, gpu);
  read_pcie(nvml, dev, gpu);
}
