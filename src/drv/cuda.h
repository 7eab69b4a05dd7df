/* CUDA driver binding, used only inside the worker process (see docs/internals.md: a
 * process that initialised CUDA cannot fork, and a hung P2P copy hangs its process). */
#ifndef PS_DRV_CUDA_H
#define PS_DRV_CUDA_H

#include <stdbool.h>
#include <stddef.h>

#include "drv/cuda_abi.h"
#include "drv/loader.h"

typedef struct ps__cuda {
  ps__lib lib;
  bool via_proc_address; /* entry points came from cuGetProcAddress */
  PFN_cuGetErrorName GetErrorName;
  PFN_cuInit Init;
  PFN_cuDriverGetVersion DriverGetVersion;
  PFN_cuDeviceGetCount DeviceGetCount;
  PFN_cuDeviceGet DeviceGet;
  PFN_cuDeviceGetName DeviceGetName;
  PFN_cuDeviceGetPCIBusId DeviceGetPCIBusId;
  PFN_cuDeviceGetAttribute DeviceGetAttribute;
  PFN_cuDeviceTotalMem_v2 DeviceTotalMem;
  PFN_cuDeviceCanAccessPeer DeviceCanAccessPeer;
  PFN_cuDevicePrimaryCtxRetain DevicePrimaryCtxRetain;
  PFN_cuDevicePrimaryCtxRelease_v2 DevicePrimaryCtxRelease;
  PFN_cuCtxSetCurrent CtxSetCurrent;
  PFN_cuCtxSynchronize CtxSynchronize;
  PFN_cuCtxEnablePeerAccess CtxEnablePeerAccess;
  PFN_cuMemAlloc_v2 MemAlloc;
  PFN_cuMemFree_v2 MemFree;
  PFN_cuMemcpyHtoD_v2 MemcpyHtoD;
  PFN_cuMemcpyDtoH_v2 MemcpyDtoH;
  PFN_cuMemcpyDtoD_v2 MemcpyDtoD;
  PFN_cuMemcpyPeer MemcpyPeer;
} ps__cuda;

/* Loads libcuda and resolves every entry point at PS_CUDA_ABI_VERSION. Returns false with
 * a one-line reason in err (library missing, or which required entry point is absent). */
bool ps__cuda_open(ps__cuda *cuda, const char *dir, char *err, size_t err_len);
void ps__cuda_close(ps__cuda *cuda);

/* "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", or "CUDA error 217" when the driver cannot say. */
const char *ps__cuda_error_name(const ps__cuda *cuda, CUresult rc);

#endif
