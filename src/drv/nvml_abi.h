/* Minimal declarations of the NVML API that peerscope uses.
 *
 * Written from nvml.h's documented ABI (NVML_API_VERSION 13; enum values checked against
 * github.com/NVIDIA/go-nvml gen/nvml/nvml.h) so that the build needs no CUDA toolkit.
 * Shared by the real binding (src/drv/nvml.c) and the fake libnvidia-ml.so.1. */
#ifndef PS_DRV_NVML_ABI_H
#define PS_DRV_NVML_ABI_H

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef int nvmlReturn_t;

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_UNKNOWN = 999
};

#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
/* Upper bound of link indexes across NVML versions (18 before Blackwell, 36 since). */
#define NVML_NVLINK_MAX_LINKS 36

/* nvmlPciInfo_t as filled by nvmlDeviceGetPciInfo_v3 and nvmlDeviceGetNvLinkRemotePciInfo_v2. */
typedef struct nvmlPciInfo_st {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlBAR1Memory_st {
  unsigned long long bar1Total;
  unsigned long long bar1Free;
  unsigned long long bar1Used;
} nvmlBAR1Memory_t;

typedef enum {
  NVML_TOPOLOGY_INTERNAL = 0,
  NVML_TOPOLOGY_SINGLE = 10,
  NVML_TOPOLOGY_MULTIPLE = 20,
  NVML_TOPOLOGY_HOSTBRIDGE = 30,
  NVML_TOPOLOGY_NODE = 40,
  NVML_TOPOLOGY_SYSTEM = 50
} nvmlGpuTopologyLevel_t;

typedef enum {
  NVML_P2P_CAPS_INDEX_READ = 0,
  NVML_P2P_CAPS_INDEX_WRITE = 1,
  NVML_P2P_CAPS_INDEX_NVLINK = 2,
  NVML_P2P_CAPS_INDEX_ATOMICS = 3,
  NVML_P2P_CAPS_INDEX_PCI = 4,
  NVML_P2P_CAPS_INDEX_UNKNOWN = 5
} nvmlGpuP2PCapsIndex_t;

typedef enum {
  NVML_P2P_STATUS_OK = 0,
  NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED = 1, /* sic, as in nvml.h */
  NVML_P2P_STATUS_GPU_NOT_SUPPORTED = 2,
  NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED = 3,
  NVML_P2P_STATUS_DISABLED_BY_REGKEY = 4,
  NVML_P2P_STATUS_NOT_SUPPORTED = 5,
  NVML_P2P_STATUS_UNKNOWN = 6
} nvmlGpuP2PStatus_t;

typedef enum { NVML_FEATURE_DISABLED = 0, NVML_FEATURE_ENABLED = 1 } nvmlEnableState_t;

typedef enum {
  NVML_NVLINK_DEVICE_TYPE_GPU = 0x00,
  NVML_NVLINK_DEVICE_TYPE_IBMNPU = 0x01,
  NVML_NVLINK_DEVICE_TYPE_SWITCH = 0x02,
  NVML_NVLINK_DEVICE_TYPE_UNKNOWN = 0xFF
} nvmlIntNvLinkDeviceType_t;

typedef nvmlReturn_t (*PFN_nvmlInit)(void);
typedef nvmlReturn_t (*PFN_nvmlShutdown)(void);
typedef const char *(*PFN_nvmlErrorString)(nvmlReturn_t result);
typedef nvmlReturn_t (*PFN_nvmlSystemGetDriverVersion)(char *version, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlSystemGetNVMLVersion)(char *version, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlSystemGetCudaDriverVersion)(int *version);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetCount)(unsigned int *count);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetHandleByIndex)(unsigned int index, nvmlDevice_t *dev);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetName)(nvmlDevice_t dev, char *name, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetUUID)(nvmlDevice_t dev, char *uuid, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetPciInfo)(nvmlDevice_t dev, nvmlPciInfo_t *pci);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetMemoryInfo)(nvmlDevice_t dev, nvmlMemory_t *memory);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetBAR1MemoryInfo)(nvmlDevice_t dev, nvmlBAR1Memory_t *bar1);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetCudaComputeCapability)(nvmlDevice_t dev, int *major,
                                                               int *minor);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetNumaNodeId)(nvmlDevice_t dev, unsigned int *node);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetCpuAffinity)(nvmlDevice_t dev, unsigned int cpu_set_size,
                                                     unsigned long *cpu_set);
/* NUMA node(s) closest to the GPU's memory (nvmlDeviceGetMemoryAffinity, NVML >= 11). */
typedef unsigned int nvmlAffinityScope_t;
#define NVML_AFFINITY_SCOPE_NODE 0
#define NVML_AFFINITY_SCOPE_SOCKET 1
typedef nvmlReturn_t (*PFN_nvmlDeviceGetMemoryAffinity)(nvmlDevice_t dev,
                                                        unsigned int node_set_size,
                                                        unsigned long *node_set,
                                                        nvmlAffinityScope_t scope);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetUint)(nvmlDevice_t dev, unsigned int *value);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetTopologyCommonAncestor)(nvmlDevice_t a, nvmlDevice_t b,
                                                                nvmlGpuTopologyLevel_t *level);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetP2PStatus)(nvmlDevice_t a, nvmlDevice_t b,
                                                   nvmlGpuP2PCapsIndex_t caps,
                                                   nvmlGpuP2PStatus_t *status);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetNvLinkState)(nvmlDevice_t dev, unsigned int link,
                                                     nvmlEnableState_t *active);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetNvLinkVersion)(nvmlDevice_t dev, unsigned int link,
                                                       unsigned int *version);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetNvLinkRemotePciInfo)(nvmlDevice_t dev, unsigned int link,
                                                             nvmlPciInfo_t *pci);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetNvLinkRemoteDeviceType)(nvmlDevice_t dev, unsigned int link,
                                                                nvmlIntNvLinkDeviceType_t *type);

/* Optional, read by peerscope doctor: MIG mode (current and pending, 1 = enabled),
 * persistence mode, and whether a display is being driven (nvidia-smi "Display Active"). */
typedef nvmlReturn_t (*PFN_nvmlDeviceGetMigMode)(nvmlDevice_t dev, unsigned int *current,
                                                 unsigned int *pending);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetEnableState)(nvmlDevice_t dev, nvmlEnableState_t *state);

#endif
