#include "drv/cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

/* base: the name cuGetProcAddress takes; versioned: the explicit ABI name to dlsym when the
 * driver predates cuGetProcAddress (CUDA < 11.3). Never the bare legacy names of the _v2
 * functions: those are the 32-bit-size entry points. */
typedef struct cuda_entry {
  void **pfn;
  const char *base;
  const char *versioned;
} cuda_entry;

#define E(field, base, versioned)                                                                  \
  { (void **)&c->field, base, versioned }

static size_t build_table(ps__cuda *c, cuda_entry *t) {
  cuda_entry table[] = {
      E(GetErrorName, "cuGetErrorName", "cuGetErrorName"),
      E(Init, "cuInit", "cuInit"),
      E(DriverGetVersion, "cuDriverGetVersion", "cuDriverGetVersion"),
      E(DeviceGetCount, "cuDeviceGetCount", "cuDeviceGetCount"),
      E(DeviceGet, "cuDeviceGet", "cuDeviceGet"),
      E(DeviceGetName, "cuDeviceGetName", "cuDeviceGetName"),
      E(DeviceGetPCIBusId, "cuDeviceGetPCIBusId", "cuDeviceGetPCIBusId"),
      E(DeviceGetAttribute, "cuDeviceGetAttribute", "cuDeviceGetAttribute"),
      E(DeviceTotalMem, "cuDeviceTotalMem", "cuDeviceTotalMem_v2"),
      E(DeviceCanAccessPeer, "cuDeviceCanAccessPeer", "cuDeviceCanAccessPeer"),
      E(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain"),
      E(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2"),
      E(CtxSetCurrent, "cuCtxSetCurrent", "cuCtxSetCurrent"),
      E(CtxSynchronize, "cuCtxSynchronize", "cuCtxSynchronize"),
      E(CtxEnablePeerAccess, "cuCtxEnablePeerAccess", "cuCtxEnablePeerAccess"),
      E(MemAlloc, "cuMemAlloc", "cuMemAlloc_v2"),
      E(MemFree, "cuMemFree", "cuMemFree_v2"),
      E(MemcpyHtoD, "cuMemcpyHtoD", "cuMemcpyHtoD_v2"),
      E(MemcpyDtoH, "cuMemcpyDtoH", "cuMemcpyDtoH_v2"),
      E(MemcpyDtoD, "cuMemcpyDtoD", "cuMemcpyDtoD_v2"),
      E(MemcpyPeer, "cuMemcpyPeer", "cuMemcpyPeer"),
  };
  memcpy(t, table, sizeof(table));
  return PS_ARRAY_LEN(table);
}

/* The benchmarks' entry points (ps__cuda_open_bench): optional for verification. */
static size_t build_bench_table(ps__cuda *c, cuda_entry *t) {
  cuda_entry table[] = {
      E(CtxDisablePeerAccess, "cuCtxDisablePeerAccess", "cuCtxDisablePeerAccess"),
      E(StreamCreate, "cuStreamCreate", "cuStreamCreate"),
      E(StreamDestroy, "cuStreamDestroy", "cuStreamDestroy_v2"),
      E(StreamSynchronize, "cuStreamSynchronize", "cuStreamSynchronize"),
      E(StreamWaitEvent, "cuStreamWaitEvent", "cuStreamWaitEvent"),
      E(EventCreate, "cuEventCreate", "cuEventCreate"),
      E(EventDestroy, "cuEventDestroy", "cuEventDestroy_v2"),
      E(EventRecord, "cuEventRecord", "cuEventRecord"),
      E(EventSynchronize, "cuEventSynchronize", "cuEventSynchronize"),
      E(EventElapsedTime, "cuEventElapsedTime", "cuEventElapsedTime"),
      E(MemcpyAsync, "cuMemcpyAsync", "cuMemcpyAsync"),
      E(MemcpyPeerAsync, "cuMemcpyPeerAsync", "cuMemcpyPeerAsync"),
      E(MemcpyHtoDAsync, "cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync_v2"),
      E(MemcpyDtoHAsync, "cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync_v2"),
      E(MemHostAlloc, "cuMemHostAlloc", "cuMemHostAlloc"),
      E(MemFreeHost, "cuMemFreeHost", "cuMemFreeHost"),
      E(MemHostGetDevicePointer, "cuMemHostGetDevicePointer", "cuMemHostGetDevicePointer_v2"),
      E(MemsetD8, "cuMemsetD8", "cuMemsetD8_v2"),
      E(ModuleLoadData, "cuModuleLoadData", "cuModuleLoadData"),
      E(ModuleUnload, "cuModuleUnload", "cuModuleUnload"),
      E(ModuleGetFunction, "cuModuleGetFunction", "cuModuleGetFunction"),
      E(LaunchKernel, "cuLaunchKernel", "cuLaunchKernel"),
      E(StreamBeginCapture, "cuStreamBeginCapture", "cuStreamBeginCapture_v2"),
      E(StreamEndCapture, "cuStreamEndCapture", "cuStreamEndCapture"),
      E(GraphInstantiate, "cuGraphInstantiateWithFlags", "cuGraphInstantiateWithFlags"),
      E(GraphLaunch, "cuGraphLaunch", "cuGraphLaunch"),
      E(GraphExecDestroy, "cuGraphExecDestroy", "cuGraphExecDestroy"),
      E(GraphDestroy, "cuGraphDestroy", "cuGraphDestroy"),
  };
  memcpy(t, table, sizeof(table));
  return PS_ARRAY_LEN(table);
}

/* Memory shared between processes (ps__cuda_open_ipc): optional for the other modes. */
static size_t build_ipc_table(ps__cuda *c, cuda_entry *t) {
  cuda_entry table[] = {
      E(IpcGetMemHandle, "cuIpcGetMemHandle", "cuIpcGetMemHandle"),
      E(IpcOpenMemHandle, "cuIpcOpenMemHandle", "cuIpcOpenMemHandle_v2"),
      E(IpcCloseMemHandle, "cuIpcCloseMemHandle", "cuIpcCloseMemHandle"),
      E(MemGetAllocationGranularity, "cuMemGetAllocationGranularity",
        "cuMemGetAllocationGranularity"),
      E(MemCreate, "cuMemCreate", "cuMemCreate"),
      E(MemRelease, "cuMemRelease", "cuMemRelease"),
      E(MemAddressReserve, "cuMemAddressReserve", "cuMemAddressReserve"),
      E(MemAddressFree, "cuMemAddressFree", "cuMemAddressFree"),
      E(MemMap, "cuMemMap", "cuMemMap"),
      E(MemUnmap, "cuMemUnmap", "cuMemUnmap"),
      E(MemSetAccess, "cuMemSetAccess", "cuMemSetAccess"),
      E(MemExportToShareableHandle, "cuMemExportToShareableHandle", "cuMemExportToShareableHandle"),
      E(MemImportFromShareableHandle, "cuMemImportFromShareableHandle",
        "cuMemImportFromShareableHandle"),
  };
  memcpy(t, table, sizeof(table));
  return PS_ARRAY_LEN(table);
}

/* Resolves every entry of table at PS_CUDA_ABI_VERSION; false names the first missing one. */
static bool resolve_table(ps__cuda *cuda, const cuda_entry *table, size_t count, char *err,
                          size_t err_len) {
  PFN_cuGetProcAddress_v2 proc_v2 = (PFN_cuGetProcAddress_v2)cuda->proc_v2;
  PFN_cuGetProcAddress_v1 proc_v1 = (PFN_cuGetProcAddress_v1)cuda->proc_v1;
  for (size_t i = 0; i < count; i++) {
    void *fn = NULL;
    CUresult rc = CUDA_ERROR_NOT_FOUND;
    if (proc_v2) {
      CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
      rc = proc_v2(table[i].base, &fn, PS_CUDA_ABI_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &found);
      if (found != CU_GET_PROC_ADDRESS_SUCCESS) rc = CUDA_ERROR_NOT_FOUND;
    } else if (proc_v1) {
      rc = proc_v1(table[i].base, &fn, PS_CUDA_ABI_VERSION, CU_GET_PROC_ADDRESS_DEFAULT);
    } else {
      fn = dlsym(cuda->lib.handle, table[i].versioned);
      rc = fn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
    }
    if (rc != CUDA_SUCCESS || !fn) {
      snprintf(err, err_len, "%.300s has no %.100s (at CUDA ABI %d)", cuda->lib.path, table[i].base,
               PS_CUDA_ABI_VERSION);
      return false;
    }
    *table[i].pfn = fn;
  }
  return true;
}

bool ps__cuda_open(ps__cuda *cuda, const char *dir, char *err, size_t err_len) {
  static const char *const sonames[] = {"libcuda.so.1", "libcuda.so", NULL};
  memset(cuda, 0, sizeof(*cuda));
  char why[PS_ERRBUF_LEN];
  if (!ps__lib_open(&cuda->lib, sonames, dir, why, sizeof(why))) {
    snprintf(err, err_len, "no CUDA driver: %s", why);
    return false;
  }

  cuda->proc_v2 = dlsym(cuda->lib.handle, "cuGetProcAddress_v2");
  cuda->proc_v1 = dlsym(cuda->lib.handle, "cuGetProcAddress");
  cuda->via_proc_address = cuda->proc_v2 || cuda->proc_v1;

  cuda_entry table[32];
  size_t count = build_table(cuda, table);
  if (!resolve_table(cuda, table, count, err, err_len)) {
    ps__lib_close(&cuda->lib);
    return false;
  }
  return true;
}

bool ps__cuda_open_bench(ps__cuda *cuda, char *err, size_t err_len) {
  cuda_entry table[40];
  size_t count = build_bench_table(cuda, table);
  return resolve_table(cuda, table, count, err, err_len);
}

bool ps__cuda_open_peer_disable(ps__cuda *cuda) {
  ps__cuda *c = cuda; /* for E() */
  cuda_entry one[] = {E(CtxDisablePeerAccess, "cuCtxDisablePeerAccess", "cuCtxDisablePeerAccess")};
  char err[PS_ERRBUF_LEN];
  if (resolve_table(cuda, one, 1, err, sizeof(err))) return true;
  cuda->CtxDisablePeerAccess = NULL;
  return false;
}

bool ps__cuda_open_ipc(ps__cuda *cuda, char *err, size_t err_len) {
  cuda_entry table[16];
  size_t count = build_ipc_table(cuda, table);
  return resolve_table(cuda, table, count, err, err_len);
}

void ps__cuda_close(ps__cuda *cuda) { ps__lib_close(&cuda->lib); }

const char *ps__cuda_error_name(const ps__cuda *cuda, CUresult rc) {
  static __thread char buf[32];
  const char *name = NULL;
  if (cuda->GetErrorName && cuda->GetErrorName(rc, &name) == CUDA_SUCCESS && name) return name;
  snprintf(buf, sizeof(buf), "CUDA error %d", rc);
  return buf;
}
