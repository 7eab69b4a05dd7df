/* Shared by the two halves of the fake libcuda.so.1: fake_cuda.c (devices, contexts, memory,
 * synchronous copies) and fake_cuda_bench.c (streams, events, asynchronous copies, pinned host
 * memory, the benchmark kernels, graphs). Also declares the fake-only hooks that the fake
 * libnccl.so.2 (fake_nccl.c) calls. Every ps__cuda_* helper expects the lock held. */
#ifndef PS_FAKE_CUDA_INTERNAL_H
#define PS_FAKE_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "drv/cuda_abi.h"
#include "fake_core.h"

/* Driver API codes cuda_abi.h does not need; only the fake returns them. */
#define PS_FAKE_CUDA_ERROR_ILLEGAL_STATE 401
#define PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED 900
#define PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_INVALIDATED 901

struct CUctx_st {
  int gpu;  /* fixture index */
  int refs; /* primary context retains; 0 = not alive */
  bool peer[PS_FIX_MAX_GPUS];
};

/* ---- fake_cuda.c, for fake_cuda_bench.c ------------------------------------------------ */

const ps_fixture *ps__cuda_fixture(void);
/* Counts the call; CUDA_ERROR_NOT_INITIALIZED before cuInit. */
CUresult ps__cuda_enter(void);
/* A live, not lost context. */
CUresult ps__cuda_check_ctx(const struct CUctx_st *ctx);
/* This thread's current context (may be NULL or dead). */
struct CUctx_st *ps__cuda_current(void);
struct CUctx_st *ps__cuda_context(int gpu);
/* CUDA ordinal -> fixture index; checks the device exists and is not lost. */
CUresult ps__cuda_device_gpu(CUdevice dev, int *gpu);
/* Device memory [ptr, ptr + n) on fixture GPU gpu (< 0: any); *owner = its GPU. */
CUresult ps__cuda_check_range(CUdeviceptr ptr, size_t n, int gpu, int *owner);
/* memmove with the fixture's faults of src_gpu -> dst_gpu; may never return (hang). */
CUresult ps__cuda_copy(CUdeviceptr dst, int dst_gpu, CUdeviceptr src, int src_gpu, size_t n);

/* ---- fake_cuda_faults.c: sticky errors, lost GPUs, the peer limit ------------------------ */

/* The sticky error poisoning this process, or CUDA_SUCCESS. */
CUresult ps__cuda_sticky(void);
void ps__cuda_sticky_reset(void);
/* A `copy_error` fault of src_gpu -> dst_gpu: its code (a sticky one poisons the process),
 * or CUDA_SUCCESS. */
CUresult ps__cuda_copy_fault(int src_gpu, int dst_gpu);
/* CUDA_SUCCESS, or the code a call touching lost fixture GPU gpu returns (999 by default). */
CUresult ps__cuda_lost(int gpu);
/* CUDA_ERROR_TOO_MANY_PEERS when ctx may enable no more peers. */
CUresult ps__cuda_peer_limit(const struct CUctx_st *ctx);

/* ---- fake_cuda_visible.c, for fake_cuda.c ---------------------------------------------- */

/* CUDA's devices at cuInit under $CUDA_DEVICE_ORDER and $CUDA_VISIBLE_DEVICES: gpus[ordinal] =
 * fixture index, mig[ordinal] = a MIG device of it; returns the count (PS_FIX_MAX_GPUS
 * entries each). */
int ps__fake_cuda_enumerate(const ps_fixture *f, int *gpus, bool *mig);
/* A primary context came alive on fixture GPU gpu: counted, and logged to
 * $PEERSCOPE_FAKE_CONTEXT_LOG when set. */
void ps__fake_cuda_context_made(const ps_fixture *f, int gpu);
void ps__fake_cuda_contexts_reset(void);
/* Fake-only export: primary contexts made on fixture GPU gpu in this process. */
PS_FAKE_EXPORT int ps_fake_contexts_made(int gpu);
/* The cuMemAlloc_v2 block at exactly base: its memfd (fake_cuda_ipc.c), size and GPU; -1 when
 * there is none. */
int ps__cuda_alloc_fd(CUdeviceptr base, size_t *size, int *gpu);
/* Registers a mapped range of GPU gpu's memory (cuMemMap, cuIpcOpenMemHandle_v2). */
CUresult ps__cuda_map_add(CUdeviceptr base, size_t size, int gpu, bool accessible);
/* Forgets the mapped ranges that start in [base, base + size) (size 0: at base); the count. */
int ps__cuda_map_remove(CUdeviceptr base, size_t size);
/* Makes the mapped ranges that start in [base, base + size) accessible; the count. */
int ps__cuda_map_grant(CUdeviceptr base, size_t size);

/* ---- fake_cuda_ipc.c, for fake_cuda.c ------------------------------------------------- */

/* Device memory backed by a memfd named after its GPU, mapped shared, so that another process
 * can open it (CUDA IPC handles, POSIX file descriptors). NULL when out of memory. */
void *ps__fake_backing_alloc(size_t bytes, int gpu, int *fd);
void ps__fake_backing_free(void *base, size_t bytes, int fd);
/* Drops every cuMem handle, reservation and opened IPC mapping (fixture reload). */
void ps__fake_ipc_reset(void);

/* ---- fake_cuda_bench.c, for fake_cuda.c ------------------------------------------------ */

/* Frees every stream, event, pinned block, module and graph (fixture reload, dlclose). */
void ps__fake_bench_reset(void);
/* GPU gpu's primary context was destroyed: its streams, events and modules go with it. */
void ps__fake_bench_context_gone(int gpu);
/* cuCtxSynchronize: the host waits for every stream of ctx. */
void ps__fake_bench_sync_context(const struct CUctx_st *ctx);

PS_FAKE_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *handle, CUdeviceptr dptr);
PS_FAKE_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *dptr, CUipcMemHandle handle,
                                              unsigned int flags);
PS_FAKE_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr);
PS_FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                      const CUmemAllocationProp *prop, int option);
PS_FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                    const CUmemAllocationProp *prop, unsigned long long flags);
PS_FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle);
PS_FAKE_EXPORT CUresult cuMemExportToShareableHandle(void *shareable,
                                                     CUmemGenericAllocationHandle handle,
                                                     int handle_type, unsigned long long flags);
PS_FAKE_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                       void *os_handle, int handle_type);
PS_FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                            CUdeviceptr addr, unsigned long long flags);
PS_FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size);
PS_FAKE_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                                 CUmemGenericAllocationHandle handle, unsigned long long flags);
PS_FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size);
PS_FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                       size_t count);

PS_FAKE_EXPORT CUresult cuCtxDisablePeerAccess(CUcontext peer);
PS_FAKE_EXPORT CUresult cuStreamCreate(CUstream *stream, unsigned int flags);
PS_FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream stream);
PS_FAKE_EXPORT CUresult cuStreamSynchronize(CUstream stream);
PS_FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags);
PS_FAKE_EXPORT CUresult cuEventCreate(CUevent *event, unsigned int flags);
PS_FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent event);
PS_FAKE_EXPORT CUresult cuEventRecord(CUevent event, CUstream stream);
PS_FAKE_EXPORT CUresult cuEventSynchronize(CUevent event);
PS_FAKE_EXPORT CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end);
PS_FAKE_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                                      CUstream stream);
PS_FAKE_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                                          CUcontext src_ctx, size_t bytes, CUstream stream);
PS_FAKE_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes,
                                             CUstream stream);
PS_FAKE_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes,
                                             CUstream stream);
PS_FAKE_EXPORT CUresult cuMemHostAlloc(void **ptr, size_t bytes, unsigned int flags);
PS_FAKE_EXPORT CUresult cuMemFreeHost(void *ptr);
PS_FAKE_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *dptr, void *ptr,
                                                     unsigned int flags);
PS_FAKE_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count);
PS_FAKE_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image);
PS_FAKE_EXPORT CUresult cuModuleUnload(CUmodule module);
PS_FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *fn, CUmodule module, const char *name);
PS_FAKE_EXPORT CUresult cuLaunchKernel(CUfunction fn, unsigned int grid_x, unsigned int grid_y,
                                       unsigned int grid_z, unsigned int block_x,
                                       unsigned int block_y, unsigned int block_z,
                                       unsigned int shared_bytes, CUstream stream, void **params,
                                       void **extra);
PS_FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream stream, int mode);
PS_FAKE_EXPORT CUresult cuStreamEndCapture(CUstream stream, CUgraph *graph);
PS_FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph,
                                                    unsigned long long flags);
PS_FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream);
PS_FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec);
PS_FAKE_EXPORT CUresult cuGraphDestroy(CUgraph graph);

/* ---- fake-only exports (fake libnccl.so.2, the bench worker, tests) ---------------------- */

/* 1 in every fake libcuda.so.1: the worker tells it runs on modelled timings. */
PS_FAKE_EXPORT extern int ps_fake_simulated;

/* Runs fn(arg) (fn may be NULL: a pure delay) in stream order and advances the stream's clock
 * by `us` modelled microseconds. NULL is the current context's default stream. While the
 * stream is capturing, the op is recorded instead and every launch of the graph runs fn(arg)
 * again: the caller keeps arg alive until the graph (and its execs) are destroyed. fn runs
 * under the fake driver's lock and must not call into libcuda. Counts as a driver call. */
PS_FAKE_EXPORT CUresult ps_fake_stream_host_op(CUstream stream, void (*fn)(void *), void *arg,
                                               double us);
/* The same on CUDA device dev: stream must belong to dev's primary context; NULL is that
 * context's default stream (the context must be retained). */
PS_FAKE_EXPORT CUresult ps_fake_device_stream_host_op(CUdevice dev, CUstream stream,
                                                      void (*fn)(void *), void *arg, double us);
/* Whether ps_fake_device_stream_host_op(dev, stream, ...) would accept the stream. */
PS_FAKE_EXPORT CUresult ps_fake_stream_check(CUdevice dev, CUstream stream);
/* Whether [ptr, ptr + bytes) is device memory of CUDA device dev. */
PS_FAKE_EXPORT CUresult ps_fake_buffer_check(CUdevice dev, CUdeviceptr ptr, size_t bytes);
/* The modelled path of a transfer from device a to device b (a == b: local): GB/s, latency,
 * and *p2p = 1 for the direct link (NVLink or PCIe P2P, taken when allow_p2p and the fixture
 * grants CUDA peer access), 0 for the copy staged through host memory. */
PS_FAKE_EXPORT CUresult ps_fake_link_model(CUdevice a, CUdevice b, int allow_p2p, double *gbps,
                                           double *latency_us, int *p2p);

/* Whether a `fault nccl_hang` (kind 0) or `nccl_corrupt` (kind 1) names CUDA devices a -> b;
 * the corrupt fault's offset and mask come back with it. */
PS_FAKE_EXPORT int ps_fake_nccl_fault(int kind, CUdevice a, CUdevice b, unsigned long long *offset,
                                      unsigned *xor_mask);
/* The path between CUDA devices a and b as NCCL_P2P_LEVEL ranks it: 0 LOC (a == b), 1 NVL (an
 * NVLink up), 2 PIX, 3 PXB, 4 PHB (NODE too), 5 SYS; -1 for a bad device. */
PS_FAKE_EXPORT int ps_fake_path_rank(CUdevice a, CUdevice b);

/* ---- fp16 / bf16, round to nearest even (the one-shot kernels and the fake NCCL) -------- */

static inline uint32_t ps__fake_float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}

static inline float ps__fake_bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

static inline float ps__fake_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) { /* zero or subnormal: man x 2^-24 */
    float f = (float)man * 0x1p-24f;
    return sign ? -f : f;
  }
  if (exp == 0x1f) return ps__fake_bits_float(sign | 0x7f800000u | (man << 13));
  return ps__fake_bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

/* After F. Giesen's float_to_half_fast3_rtne. */
static inline uint16_t ps__fake_float_to_half(float value) {
  const uint32_t f32_inf = 255u << 23, f16_max = (127u + 16) << 23;
  const uint32_t denorm_magic = ((127u - 15) + (23 - 10) + 1) << 23; /* 0.5f */
  uint32_t u = ps__fake_float_bits(value), sign = u & 0x80000000u, o;
  u ^= sign;
  if (u >= f16_max) {
    o = u > f32_inf ? 0x7e00 : 0x7c00; /* NaN, or too large: infinity */
  } else if (u < (113u << 23)) {       /* below 2^-14: the addition rounds the subnormal */
    o = ps__fake_float_bits(ps__fake_bits_float(u) + ps__fake_bits_float(denorm_magic)) -
        denorm_magic;
  } else {
    uint32_t odd = (u >> 13) & 1;
    u += (uint32_t)(15 - 127) * (1u << 23) + 0xfff + odd; /* rebias, round half to even */
    o = u >> 13;
  }
  return (uint16_t)(o | (sign >> 16));
}

static inline float ps__fake_bf16_to_float(uint16_t h) {
  return ps__fake_bits_float((uint32_t)h << 16);
}

static inline uint16_t ps__fake_float_to_bf16(float value) {
  uint32_t u = ps__fake_float_bits(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

#endif
