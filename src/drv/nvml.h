/* NVML binding: the function table, loaded per use and serialised by one lock (NVML has had
 * thread-safety bugs; NCCL's nvmlwrap.cc serialises for the same reason). */
#ifndef PS_DRV_NVML_H
#define PS_DRV_NVML_H

#include <stdbool.h>

#include "core/internal.h"
#include "drv/loader.h"
#include "drv/nvml_abi.h"

typedef struct ps__nvml {
  ps__lib lib;
  bool initialised;
  const char *fake_fixture; /* set when the library is peerscope's fake driver */
  const char *fake_machine;
  PFN_nvmlInit Init;
  PFN_nvmlShutdown Shutdown;
  PFN_nvmlErrorString ErrorString;
  PFN_nvmlSystemGetDriverVersion SystemGetDriverVersion;
  PFN_nvmlSystemGetNVMLVersion SystemGetNVMLVersion;
  PFN_nvmlSystemGetCudaDriverVersion SystemGetCudaDriverVersion;
  PFN_nvmlDeviceGetCount DeviceGetCount;
  PFN_nvmlDeviceGetHandleByIndex DeviceGetHandleByIndex;
  PFN_nvmlDeviceGetName DeviceGetName;
  PFN_nvmlDeviceGetUUID DeviceGetUUID;
  PFN_nvmlDeviceGetPciInfo DeviceGetPciInfo;
  PFN_nvmlDeviceGetMemoryInfo DeviceGetMemoryInfo;
  PFN_nvmlDeviceGetBAR1MemoryInfo DeviceGetBAR1MemoryInfo;
  PFN_nvmlDeviceGetCudaComputeCapability DeviceGetCudaComputeCapability;
  PFN_nvmlDeviceGetNumaNodeId DeviceGetNumaNodeId;
  PFN_nvmlDeviceGetMemoryAffinity DeviceGetMemoryAffinity;
  PFN_nvmlDeviceGetCpuAffinity DeviceGetCpuAffinity;
  PFN_nvmlDeviceGetUint DeviceGetCurrPcieLinkGeneration;
  PFN_nvmlDeviceGetUint DeviceGetMaxPcieLinkGeneration;
  PFN_nvmlDeviceGetUint DeviceGetCurrPcieLinkWidth;
  PFN_nvmlDeviceGetUint DeviceGetMaxPcieLinkWidth;
  PFN_nvmlDeviceGetTopologyCommonAncestor DeviceGetTopologyCommonAncestor;
  PFN_nvmlDeviceGetP2PStatus DeviceGetP2PStatus;
  PFN_nvmlDeviceGetNvLinkState DeviceGetNvLinkState;
  PFN_nvmlDeviceGetNvLinkVersion DeviceGetNvLinkVersion;
  PFN_nvmlDeviceGetNvLinkRemotePciInfo DeviceGetNvLinkRemotePciInfo;
  PFN_nvmlDeviceGetNvLinkRemoteDeviceType DeviceGetNvLinkRemoteDeviceType;
  /* Optional, for peerscope doctor. */
  PFN_nvmlDeviceGetMigMode DeviceGetMigMode;
  PFN_nvmlDeviceGetEnableState DeviceGetPersistenceMode;
  PFN_nvmlDeviceGetEnableState DeviceGetDisplayActive;
} ps__nvml;

/* Loads libnvidia-ml and calls nvmlInit. PS_ERR_DRIVER_UNAVAILABLE when the library is
 * missing, lacks a required symbol or init fails; the context says which. `fixture` (may be
 * NULL: $PEERSCOPE_FIXTURE) is handed to peerscope's fake driver; PS_ERR_INVALID_ARG when one
 * is given and the library found is not the fake. */
ps_status ps__nvml_open(ps_ctx *ctx, ps__nvml *nvml, const char *dir, const char *fixture);
void ps__nvml_close(ps__nvml *nvml);

/* Serialise NVML calls. */
void ps__nvml_lock(void);
void ps__nvml_unlock(void);

/* nvmlErrorString when available, else the number. */
const char *ps__nvml_error(const ps__nvml *nvml, nvmlReturn_t rc);

#endif
