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
  bool via_proc_address;   /* entry points came from cuGetProcAddress */
  void *proc_v2, *proc_v1; /* cuGetProcAddress_v2 / cuGetProcAddress, NULL if absent */
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
  /* ps__cuda_open_bench */
  PFN_cuCtxDisablePeerAccess CtxDisablePeerAccess;
  PFN_cuStreamCreate StreamCreate;
  PFN_cuStreamDestroy_v2 StreamDestroy;
  PFN_cuStreamSynchronize StreamSynchronize;
  PFN_cuStreamWaitEvent StreamWaitEvent;
  PFN_cuEventCreate EventCreate;
  PFN_cuEventDestroy_v2 EventDestroy;
  PFN_cuEventRecord EventRecord;
  PFN_cuEventSynchronize EventSynchronize;
  PFN_cuEventElapsedTime EventElapsedTime;
  PFN_cuMemcpyAsync MemcpyAsync;
  PFN_cuMemcpyPeerAsync MemcpyPeerAsync;
  PFN_cuMemcpyHtoDAsync_v2 MemcpyHtoDAsync;
  PFN_cuMemcpyDtoHAsync_v2 MemcpyDtoHAsync;
  PFN_cuMemHostAlloc MemHostAlloc;
  PFN_cuMemFreeHost MemFreeHost;
  PFN_cuMemHostGetDevicePointer_v2 MemHostGetDevicePointer;
  PFN_cuMemsetD8_v2 MemsetD8;
  PFN_cuModuleLoadData ModuleLoadData;
  PFN_cuModuleUnload ModuleUnload;
  PFN_cuModuleGetFunction ModuleGetFunction;
  PFN_cuLaunchKernel LaunchKernel;
  PFN_cuStreamBeginCapture_v2 StreamBeginCapture;
  PFN_cuStreamEndCapture StreamEndCapture;
  PFN_cuGraphInstantiateWithFlags GraphInstantiate;
  PFN_cuGraphLaunch GraphLaunch;
  PFN_cuGraphExecDestroy GraphExecDestroy;
  PFN_cuGraphDestroy GraphDestroy;
  /* ps__cuda_open_ipc */
  PFN_cuIpcGetMemHandle IpcGetMemHandle;
  PFN_cuIpcOpenMemHandle_v2 IpcOpenMemHandle;
  PFN_cuIpcCloseMemHandle IpcCloseMemHandle;
  PFN_cuMemGetAllocationGranularity MemGetAllocationGranularity;
  PFN_cuMemCreate MemCreate;
  PFN_cuMemRelease MemRelease;
  PFN_cuMemAddressReserve MemAddressReserve;
  PFN_cuMemAddressFree MemAddressFree;
  PFN_cuMemMap MemMap;
  PFN_cuMemUnmap MemUnmap;
  PFN_cuMemSetAccess MemSetAccess;
  PFN_cuMemExportToShareableHandle MemExportToShareableHandle;
  PFN_cuMemImportFromShareableHandle MemImportFromShareableHandle;
} ps__cuda;

/* Loads libcuda and resolves every entry point at PS_CUDA_ABI_VERSION. Returns false with
 * a one-line reason in err (library missing, or which required entry point is absent). */
bool ps__cuda_open(ps__cuda *cuda, const char *dir, char *err, size_t err_len);
void ps__cuda_close(ps__cuda *cuda);
/* Resolves the benchmarks' entry points (streams, events, modules, graphs) of an open
 * driver. False with the first missing one in err: the benchmarks then cannot run. */
bool ps__cuda_open_bench(ps__cuda *cuda, char *err, size_t err_len);

/* Resolves cuCtxDisablePeerAccess alone (the verification's way out of the peer limit);
 * false, the entry point left NULL, when the driver lacks it. */
bool ps__cuda_open_peer_disable(ps__cuda *cuda);

/* Resolves the entry points of memory shared between processes (CUDA IPC, cuMem with POSIX
 * file descriptors) of an open driver. False with the first missing one in err: the
 * verification's ipc mode is then not available. */
bool ps__cuda_open_ipc(ps__cuda *cuda, char *err, size_t err_len);

/* "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", or "CUDA error 217" when the driver cannot say. */
const char *ps__cuda_error_name(const ps__cuda *cuda, CUresult rc);

#endif
