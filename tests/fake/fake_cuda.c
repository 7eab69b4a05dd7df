/* Fake libcuda.so.1: plays the fixture back through the CUDA driver entry points peerscope
 * uses. Device memory is host memory; copies between GPUs are memcpy with the fixture's
 * faults applied. PS_FAKE_LEGACY builds an old driver without cuGetProcAddress. The
 * benchmarks' entry points (streams, events, kernels, graphs) are in fake_cuda_bench.c, memory
 * shared between processes (CUDA IPC, cuMem) in fake_cuda_ipc.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_cuda_internal.h"

#define MIB (1024ull * 1024ull)

/* Device memory: a cuMemAlloc_v2 block (owned, in a memfd that another process can open:
 * fake_cuda_ipc.c) or a range mapped by cuMemMap / cuIpcOpenMemHandle_v2 (mapped: its calls
 * remove it; accessible once cuMemSetAccess granted it). */
typedef struct alloc {
  uintptr_t base;
  size_t size;
  int gpu;
  int fd;
  bool mapped, accessible;
  struct alloc *next;
} alloc;

static void alloc_release(alloc *a) {
  if (!a->mapped) ps__fake_backing_free((void *)a->base, a->size, a->fd);
  free(a);
}

static bool initialized;
static int visible[PS_FIX_MAX_GPUS]; /* CUDA ordinal -> fixture index */
static int visible_count;
static bool mig_gpu[PS_FIX_MAX_GPUS]; /* fixture GPU seen as a MIG device: no peer access */
static struct CUctx_st contexts[PS_FIX_MAX_GPUS];
static alloc *allocs;
static uint64_t used[PS_FIX_MAX_GPUS];
static _Thread_local struct CUctx_st *current;

void ps__fake_reset_hook(void) {
  ps__fake_bench_reset();
  while (allocs) {
    alloc *next = allocs->next;
    alloc_release(allocs);
    allocs = next;
  }
  ps__fake_ipc_reset();
  memset(used, 0, sizeof(used));
  memset(contexts, 0, sizeof(contexts));
  ps__cuda_sticky_reset();
  ps__fake_cuda_contexts_reset();
  initialized = false;
  visible_count = 0;
}

/* ---- helpers (lock held) ----------------------------------------------------------- */

static const ps_fixture *fix(void) { return ps__fake_fixture(false); }

/* Counts the call and checks cuInit succeeded and no sticky error poisoned the process. */
static CUresult enter(void) {
  ps__fake_count_call();
  return initialized ? ps__cuda_sticky() : CUDA_ERROR_NOT_INITIALIZED;
}

/* Ordinal -> fixture index; checks the device is not lost. */
static CUresult device_gpu(CUdevice dev, int *gpu) {
  if (dev < 0 || dev >= visible_count) return CUDA_ERROR_INVALID_DEVICE;
  CUresult r = ps__cuda_lost(visible[dev]);
  if (r == CUDA_SUCCESS) *gpu = visible[dev];
  return r;
}

static CUresult enter_device(CUdevice dev, int *gpu) {
  CUresult r = enter();
  return r == CUDA_SUCCESS ? device_gpu(dev, gpu) : r;
}

static CUresult check_ctx(const struct CUctx_st *ctx) {
  if (!ctx || ctx < contexts || ctx >= contexts + PS_FIX_MAX_GPUS || ctx->refs == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  return ps__cuda_lost(ctx->gpu);
}

/* Counts the call; needs a live current context. */
static CUresult enter_current(void) {
  CUresult r = enter();
  return r == CUDA_SUCCESS ? check_ctx(current) : r;
}

/* The allocation holding [ptr, ptr + n), or NULL. */
static alloc *find(CUdeviceptr ptr, size_t n) {
  for (alloc *a = allocs; a; a = a->next)
    if (ptr >= a->base && ptr - a->base <= a->size && n <= a->size - (ptr - a->base)) return a;
  return NULL;
}

/* Checks a device range; gpu < 0 accepts any owner. */
static CUresult check_range(CUdeviceptr ptr, size_t n, int gpu, const alloc **out) {
  const alloc *a = find(ptr, n);
  if (!a || (gpu >= 0 && a->gpu != gpu)) return CUDA_ERROR_INVALID_VALUE;
  if (a->mapped && !a->accessible) return CUDA_ERROR_ILLEGAL_ADDRESS; /* no cuMemSetAccess */
  CUresult r = ps__cuda_lost(a->gpu);
  if (r == CUDA_SUCCESS) *out = a;
  return r;
}

/* A device-to-device copy from GPU src_gpu into dst_gpu with the fixture's faults. May
 * drop the lock and never return (fault hang). */
static CUresult copy(CUdeviceptr dst, int dst_gpu, CUdeviceptr src, int src_gpu, size_t n) {
  if (ps__fake_fault(PS_FAULT_HANG, src_gpu, dst_gpu)) {
    ps__fake_unlock();
    for (;;)
      pause(); /* the parent kills us */
  }
  CUresult r = ps__cuda_copy_fault(src_gpu, dst_gpu);
  if (r != CUDA_SUCCESS) return r;
  if (n) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_CORRUPT, src_gpu, dst_gpu);
  if (ft && ft->offset < n) ((unsigned char *)(uintptr_t)dst)[ft->offset] ^= ft->xor_mask;
  return CUDA_SUCCESS;
}

/* CUDA's devices, as cuInit finds them (fake_cuda_visible.c). */
static void parse_visible(const ps_fixture *f) {
  bool mig[PS_FIX_MAX_GPUS];
  visible_count = ps__fake_cuda_enumerate(f, visible, mig);
  memset(mig_gpu, 0, sizeof(mig_gpu));
  for (int i = 0; i < visible_count; i++)
    mig_gpu[visible[i]] = mig[i];
}

/* ---- init, version, errors --------------------------------------------------------- */

PS_FAKE_EXPORT CUresult cuInit(unsigned int flags) {
  ps__fake_latency("cuInit");
  ps__fake_lock();
  const ps_fixture *f = ps__fake_fixture(true); /* before counting: a reload resets */
  ps__fake_count_call();
  CUresult r = CUDA_SUCCESS;
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_CUDA_INIT_FAILS, -1, -1);
  if (flags != 0)
    r = CUDA_ERROR_INVALID_VALUE;
  else if (!f)
    r = CUDA_ERROR_NO_DEVICE;
  else if (ft)
    r = ft->code;
  else if (!initialized) {
    parse_visible(f);
    if (visible_count == 0)
      r = CUDA_ERROR_NO_DEVICE;
    else
      initialized = true;
  } else {
    r = ps__cuda_sticky();
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDriverGetVersion(int *version) {
  ps__fake_lock();
  ps__fake_count_call();
  CUresult r = CUDA_SUCCESS;
  if (!version)
    r = CUDA_ERROR_INVALID_VALUE;
  else if (!fix())
    r = CUDA_ERROR_NO_DEVICE;
  else if (ps__cuda_sticky() != CUDA_SUCCESS)
    r = ps__cuda_sticky();
  else
    *version = fix()->cuda_version;
  ps__fake_unlock();
  return r;
}

static const struct {
  CUresult code;
  const char *name, *text;
} errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE",
     "CUDA-capable device(s) is/are busy or unavailable"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
     "peer access is not supported between these two devices"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_MAP_FAILED, "CUDA_ERROR_MAP_FAILED", "mapping of buffer object failed"},
    {CUDA_ERROR_TOO_MANY_PEERS, "CUDA_ERROR_TOO_MANY_PEERS", "peer mapping resources exhausted"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {PS_FAKE_CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE",
     "the operation cannot be performed in the present state"},
    {PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
     "operation failed due to a previous error during capture"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
     "peer access is already enabled"},
    {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
     "peer access has not been enabled"},
    {CUDA_ERROR_TOO_MANY_PEERS, "CUDA_ERROR_TOO_MANY_PEERS", "peer mapping resources exhausted"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     "system has unsupported display driver / cuda driver combination"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static CUresult error_text(CUresult error, const char **out, bool name) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
    if (errors[i].code == error) {
      *out = name ? errors[i].name : errors[i].text;
      return CUDA_SUCCESS;
    }
  }
  *out = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}

PS_FAKE_EXPORT CUresult cuGetErrorName(CUresult error, const char **name) {
  return error_text(error, name, true);
}

PS_FAKE_EXPORT CUresult cuGetErrorString(CUresult error, const char **str) {
  return error_text(error, str, false);
}

/* ---- devices ----------------------------------------------------------------------- */

PS_FAKE_EXPORT CUresult cuDeviceGetCount(int *count) {
  ps__fake_lock();
  CUresult r = enter();
  if (r == CUDA_SUCCESS && !count) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) *count = visible_count;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(ordinal, &gpu);
  if (r == CUDA_SUCCESS && !device) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) *device = ordinal;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && (!name || len <= 0)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) snprintf(name, (size_t)len, "%s", fix()->gpus[gpu].name);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceGetPCIBusId(char *bus_id, int len, CUdevice dev) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && (!bus_id || len <= 0)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    const ps_fix_gpu *g = &fix()->gpus[gpu];
    /* CUDA's short form: 4-digit domain, upper-case hex. */
    snprintf(bus_id, (size_t)len, "%04X:%02X:%02X.%X", g->pci_domain & 0xffff, g->pci_bus,
             g->pci_device, g->pci_function);
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && !value) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    const ps_fix_gpu *g = &fix()->gpus[gpu];
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = g->sm_count ? g->sm_count : 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = (int)g->pci_bus; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *value = (int)g->pci_device; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = (int)g->pci_domain; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = g->cc_major; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = g->cc_minor; break;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED: *value = 1; break;
    default: r = CUDA_ERROR_INVALID_VALUE; break;
    }
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && !bytes) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) *bytes = (size_t)(fix()->gpus[gpu].mem_total_mib * MIB);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuDeviceCanAccessPeer(int *can_access, CUdevice dev, CUdevice peer) {
  ps__fake_lock();
  int a = 0, b = 0;
  CUresult r = enter_device(dev, &a);
  if (r == CUDA_SUCCESS) r = device_gpu(peer, &b);
  if (r == CUDA_SUCCESS && !can_access) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS)
    *can_access = a != b && !mig_gpu[a] && !mig_gpu[b] && ps__fixture_pair(fix(), a, b)->cuda_peer;
  ps__fake_unlock();
  return r;
}

/* ---- contexts ---------------------------------------------------------------------- */

PS_FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev) {
  ps__fake_latency("ctx");
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && !ctx) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    contexts[gpu].gpu = gpu;
    if (contexts[gpu].refs++ == 0) ps__fake_cuda_context_made(fix(), gpu);
    *ctx = &contexts[gpu];
  }
  ps__fake_unlock();
  return r;
}

/* The last release destroys the primary context: its memory and peer mappings go. */
static void destroy_context(int gpu) {
  for (alloc **p = &allocs; *p;) {
    alloc *a = *p;
    if (a->gpu != gpu || a->mapped) {
      p = &a->next;
      continue;
    }
    *p = a->next;
    used[gpu] -= a->size;
    alloc_release(a);
  }
  ps__fake_bench_context_gone(gpu);
  memset(contexts[gpu].peer, 0, sizeof(contexts[gpu].peer));
  for (int i = 0; i < PS_FIX_MAX_GPUS; i++)
    contexts[i].peer[gpu] = false;
  if (current == &contexts[gpu]) current = NULL;
}

PS_FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  ps__fake_lock();
  int gpu = 0;
  CUresult r = enter_device(dev, &gpu);
  if (r == CUDA_SUCCESS && contexts[gpu].refs == 0) r = CUDA_ERROR_INVALID_CONTEXT;
  if (r == CUDA_SUCCESS && --contexts[gpu].refs == 0) destroy_context(gpu);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
  ps__fake_lock();
  CUresult r = enter();
  if (r == CUDA_SUCCESS && ctx) r = check_ctx(ctx);
  if (r == CUDA_SUCCESS) current = ctx;
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuCtxSynchronize(void) {
  ps__fake_lock();
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS) ps__fake_bench_sync_context(current);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags) {
  ps__fake_lock();
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS) r = check_ctx(peer);
  if (r == CUDA_SUCCESS && flags != 0) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && peer->gpu == current->gpu) r = CUDA_ERROR_INVALID_DEVICE;
  if (r == CUDA_SUCCESS && (mig_gpu[current->gpu] || mig_gpu[peer->gpu] ||
                            !ps__fixture_pair(fix(), current->gpu, peer->gpu)->cuda_peer))
    r = CUDA_ERROR_PEER_ACCESS_UNSUPPORTED;
  if (r == CUDA_SUCCESS && current->peer[peer->gpu]) r = CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  if (r == CUDA_SUCCESS) r = ps__cuda_peer_limit(current);
  if (r == CUDA_SUCCESS) current->peer[peer->gpu] = true;
  ps__fake_unlock();
  return r;
}

/* ---- memory ------------------------------------------------------------------------ */

PS_FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes) {
  ps__fake_lock();
  CUresult r = enter_current();
  alloc *a = NULL;
  void *mem = NULL;
  if (r == CUDA_SUCCESS && (!dptr || bytes == 0)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    int gpu = current->gpu;
    uint64_t limit = fix()->gpus[gpu].mem_free_mib * MIB;
    if (bytes > limit - used[gpu]) r = CUDA_ERROR_OUT_OF_MEMORY;
    int fd = -1;
    if (r == CUDA_SUCCESS &&
        (!(a = calloc(1, sizeof(*a))) || !(mem = ps__fake_backing_alloc(bytes, gpu, &fd))))
      r = CUDA_ERROR_OUT_OF_MEMORY;
    if (r == CUDA_SUCCESS) {
      *a = (alloc){.base = (uintptr_t)mem, .size = bytes, .gpu = gpu, .fd = fd, .next = allocs};
      allocs = a;
      used[gpu] += bytes;
      *dptr = (CUdeviceptr)(uintptr_t)mem;
      a = NULL;
      mem = NULL;
    }
  }
  free(a);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  ps__fake_lock();
  CUresult r = enter_current();
  alloc **p = &allocs;
  while (r == CUDA_SUCCESS && *p && ((*p)->base != dptr || (*p)->mapped))
    p = &(*p)->next;
  if (r == CUDA_SUCCESS && !*p) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = ps__cuda_lost((*p)->gpu);
  if (r == CUDA_SUCCESS) {
    alloc *a = *p;
    *p = a->next;
    used[a->gpu] -= a->size;
    alloc_release(a);
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  ps__fake_lock();
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS && (!free_bytes || !total_bytes)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) {
    const ps_fix_gpu *g = &fix()->gpus[current->gpu];
    *free_bytes = (size_t)(g->mem_free_mib * MIB - used[current->gpu]);
    *total_bytes = (size_t)(g->mem_total_mib * MIB);
  }
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) {
  ps__fake_lock();
  const alloc *a = NULL;
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS && !src && bytes) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = check_range(dst, bytes, -1, &a);
  if (r == CUDA_SUCCESS && bytes) memmove((void *)(uintptr_t)dst, src, bytes);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
  ps__fake_lock();
  const alloc *a = NULL;
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS && !dst && bytes) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = check_range(src, bytes, -1, &a);
  if (r == CUDA_SUCCESS && bytes) memmove(dst, (const void *)(uintptr_t)src, bytes);
  ps__fake_unlock();
  return r;
}

PS_FAKE_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
  ps__fake_lock();
  const alloc *d = NULL, *s = NULL;
  CUresult r = enter_current();
  if (r == CUDA_SUCCESS) r = check_range(src, bytes, -1, &s);
  if (r == CUDA_SUCCESS) r = check_range(dst, bytes, -1, &d);
  if (r == CUDA_SUCCESS) r = copy(dst, d->gpu, src, s->gpu, bytes);
  ps__fake_unlock();
  return r;
}

/* Works without peer access, staged through the host like the real driver. */
PS_FAKE_EXPORT CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                                     CUcontext src_ctx, size_t bytes) {
  ps__fake_lock();
  const alloc *d = NULL, *s = NULL;
  CUresult r = enter();
  if (r == CUDA_SUCCESS) r = check_ctx(dst_ctx);
  if (r == CUDA_SUCCESS) r = check_ctx(src_ctx);
  if (r == CUDA_SUCCESS) r = check_range(src, bytes, src_ctx->gpu, &s);
  if (r == CUDA_SUCCESS) r = check_range(dst, bytes, dst_ctx->gpu, &d);
  if (r == CUDA_SUCCESS) r = copy(dst, d->gpu, src, s->gpu, bytes);
  ps__fake_unlock();
  return r;
}

/* ---- shared with fake_cuda_bench.c (fake_cuda_internal.h) -------------------------------- */

const ps_fixture *ps__cuda_fixture(void) { return fix(); }
CUresult ps__cuda_enter(void) { return enter(); }
CUresult ps__cuda_check_ctx(const struct CUctx_st *ctx) { return check_ctx(ctx); }
struct CUctx_st *ps__cuda_current(void) {
  return current;
}
struct CUctx_st *ps__cuda_context(int gpu) {
  return &contexts[gpu];
}
CUresult ps__cuda_device_gpu(CUdevice dev, int *gpu) { return device_gpu(dev, gpu); }

CUresult ps__cuda_check_range(CUdeviceptr ptr, size_t n, int gpu, int *owner) {
  const alloc *a = NULL;
  CUresult r = check_range(ptr, n, gpu, &a);
  if (r == CUDA_SUCCESS) *owner = a->gpu;
  return r;
}

CUresult ps__cuda_copy(CUdeviceptr dst, int dst_gpu, CUdeviceptr src, int src_gpu, size_t n) {
  return copy(dst, dst_gpu, src, src_gpu, n);
}

int ps__cuda_alloc_fd(CUdeviceptr base, size_t *size, int *gpu) {
  for (const alloc *a = allocs; a; a = a->next)
    if (a->base == base && !a->mapped) {
      *size = a->size;
      *gpu = a->gpu;
      return a->fd;
    }
  return -1;
}

CUresult ps__cuda_map_add(CUdeviceptr base, size_t size, int gpu, bool accessible) {
  alloc *a = calloc(1, sizeof(*a));
  if (!a) return CUDA_ERROR_OUT_OF_MEMORY;
  *a = (alloc){.base = (uintptr_t)base,
               .size = size,
               .gpu = gpu,
               .fd = -1,
               .mapped = true,
               .accessible = accessible,
               .next = allocs};
  allocs = a;
  return CUDA_SUCCESS;
}

/* The mapped range starting at base; every one of [base, base + size) when size > 0. */
static bool mapped_in(const alloc *a, CUdeviceptr base, size_t size) {
  if (!a->mapped) return false;
  return size ? a->base >= base && a->base - base < size : a->base == base;
}

int ps__cuda_map_remove(CUdeviceptr base, size_t size) {
  int n = 0;
  for (alloc **p = &allocs; *p;) {
    alloc *a = *p;
    if (!mapped_in(a, base, size)) {
      p = &a->next;
      continue;
    }
    *p = a->next;
    free(a);
    n++;
  }
  return n;
}

int ps__cuda_map_grant(CUdeviceptr base, size_t size) {
  int n = 0;
  for (alloc *a = allocs; a; a = a->next)
    if (mapped_in(a, base, size)) a->accessible = true, n++;
  return n;
}

/* ---- legacy 32-bit entry points: reaching them is a bug in the caller ---------------- */

static void legacy(const char *name) {
  fprintf(stderr, "peerscope fake driver: legacy entry point %s called\n", name);
  abort();
}

PS_FAKE_EXPORT CUresult cuMemAlloc(unsigned int *dptr, unsigned int bytes) {
  (void)dptr;
  (void)bytes;
  legacy("cuMemAlloc");
  return CUDA_ERROR_UNKNOWN;
}

PS_FAKE_EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev) {
  (void)bytes;
  (void)dev;
  legacy("cuDeviceTotalMem");
  return CUDA_ERROR_UNKNOWN;
}

/* ---- cuGetProcAddress -------------------------------------------------------------- */

#ifndef PS_FAKE_LEGACY
PS_FAKE_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cuda_version,
                                         cuuint64_t flags);
PS_FAKE_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version,
                                            cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *status);

#define FN(f) ((void *)(f))

/* Base name -> entry point; `v2` from CUDA version `since` (`v1` before, NULL = none). */
static const struct {
  const char *name;
  void *v1;
  void *v2;
  int since;
} procs[] = {
    {"cuInit", FN(cuInit), NULL, 0},
    {"cuDriverGetVersion", FN(cuDriverGetVersion), NULL, 0},
    {"cuGetErrorName", FN(cuGetErrorName), NULL, 0},
    {"cuGetErrorString", FN(cuGetErrorString), NULL, 0},
    {"cuGetProcAddress", FN(cuGetProcAddress), FN(cuGetProcAddress_v2), 12000},
    {"cuDeviceGetCount", FN(cuDeviceGetCount), NULL, 0},
    {"cuDeviceGet", FN(cuDeviceGet), NULL, 0},
    {"cuDeviceGetName", FN(cuDeviceGetName), NULL, 0},
    {"cuDeviceGetPCIBusId", FN(cuDeviceGetPCIBusId), NULL, 0},
    {"cuDeviceGetAttribute", FN(cuDeviceGetAttribute), NULL, 0},
    {"cuDeviceTotalMem", FN(cuDeviceTotalMem), FN(cuDeviceTotalMem_v2), 3020},
    {"cuDeviceCanAccessPeer", FN(cuDeviceCanAccessPeer), NULL, 0},
    {"cuDevicePrimaryCtxRetain", FN(cuDevicePrimaryCtxRetain), NULL, 0},
    /* Same ABI before and after 11.0: the old name maps to the same body. */
    {"cuDevicePrimaryCtxRelease", FN(cuDevicePrimaryCtxRelease_v2),
     FN(cuDevicePrimaryCtxRelease_v2), 11000},
    {"cuCtxSetCurrent", FN(cuCtxSetCurrent), NULL, 0},
    {"cuCtxSynchronize", FN(cuCtxSynchronize), NULL, 0},
    {"cuCtxEnablePeerAccess", FN(cuCtxEnablePeerAccess), NULL, 0},
    {"cuMemAlloc", FN(cuMemAlloc), FN(cuMemAlloc_v2), 3020},
    {"cuMemFree", NULL, FN(cuMemFree_v2), 3020},
    {"cuMemGetInfo", NULL, FN(cuMemGetInfo_v2), 3020},
    {"cuMemcpyHtoD", NULL, FN(cuMemcpyHtoD_v2), 3020},
    {"cuMemcpyDtoH", NULL, FN(cuMemcpyDtoH_v2), 3020},
    {"cuMemcpyDtoD", NULL, FN(cuMemcpyDtoD_v2), 3020},
    {"cuMemcpyPeer", FN(cuMemcpyPeer), NULL, 0},
    /* Benchmarks (fake_cuda_bench.c). The _v2 functions keep the old ABI where only the
     * name changed (destroy), and have no v1 where v1 took 32-bit sizes or no mode. */
    {"cuCtxDisablePeerAccess", FN(cuCtxDisablePeerAccess), NULL, 0},
    {"cuStreamCreate", FN(cuStreamCreate), NULL, 0},
    {"cuStreamDestroy", FN(cuStreamDestroy_v2), FN(cuStreamDestroy_v2), 4000},
    {"cuStreamSynchronize", FN(cuStreamSynchronize), NULL, 0},
    {"cuStreamWaitEvent", FN(cuStreamWaitEvent), NULL, 0},
    {"cuEventCreate", FN(cuEventCreate), NULL, 0},
    {"cuEventDestroy", FN(cuEventDestroy_v2), FN(cuEventDestroy_v2), 4000},
    {"cuEventRecord", FN(cuEventRecord), NULL, 0},
    {"cuEventSynchronize", FN(cuEventSynchronize), NULL, 0},
    {"cuEventElapsedTime", FN(cuEventElapsedTime), NULL, 0},
    {"cuMemcpyAsync", FN(cuMemcpyAsync), NULL, 0},
    {"cuMemcpyPeerAsync", FN(cuMemcpyPeerAsync), NULL, 0},
    {"cuMemcpyHtoDAsync", NULL, FN(cuMemcpyHtoDAsync_v2), 3020},
    {"cuMemcpyDtoHAsync", NULL, FN(cuMemcpyDtoHAsync_v2), 3020},
    {"cuMemHostAlloc", FN(cuMemHostAlloc), NULL, 0},
    {"cuMemFreeHost", FN(cuMemFreeHost), NULL, 0},
    {"cuMemHostGetDevicePointer", NULL, FN(cuMemHostGetDevicePointer_v2), 3020},
    {"cuMemsetD8", NULL, FN(cuMemsetD8_v2), 3020},
    {"cuModuleLoadData", FN(cuModuleLoadData), NULL, 0},
    {"cuModuleUnload", FN(cuModuleUnload), NULL, 0},
    {"cuModuleGetFunction", FN(cuModuleGetFunction), NULL, 0},
    {"cuLaunchKernel", FN(cuLaunchKernel), NULL, 0},
    {"cuStreamBeginCapture", NULL, FN(cuStreamBeginCapture_v2), 10010},
    {"cuStreamEndCapture", FN(cuStreamEndCapture), NULL, 0},
    {"cuGraphInstantiateWithFlags", FN(cuGraphInstantiateWithFlags), NULL, 0},
    {"cuGraphLaunch", FN(cuGraphLaunch), NULL, 0},
    {"cuGraphExecDestroy", FN(cuGraphExecDestroy), NULL, 0},
    {"cuGraphDestroy", FN(cuGraphDestroy), NULL, 0},
    /* Memory shared between processes (fake_cuda_ipc.c); cuMem* since 10.2. */
    {"cuIpcGetMemHandle", FN(cuIpcGetMemHandle), NULL, 0},
    {"cuIpcOpenMemHandle", FN(cuIpcOpenMemHandle_v2), FN(cuIpcOpenMemHandle_v2), 11000},
    {"cuIpcCloseMemHandle", FN(cuIpcCloseMemHandle), NULL, 0},
    {"cuMemGetAllocationGranularity", NULL, FN(cuMemGetAllocationGranularity), 10020},
    {"cuMemCreate", NULL, FN(cuMemCreate), 10020},
    {"cuMemRelease", NULL, FN(cuMemRelease), 10020},
    {"cuMemExportToShareableHandle", NULL, FN(cuMemExportToShareableHandle), 10020},
    {"cuMemImportFromShareableHandle", NULL, FN(cuMemImportFromShareableHandle), 10020},
    {"cuMemAddressReserve", NULL, FN(cuMemAddressReserve), 10020},
    {"cuMemAddressFree", NULL, FN(cuMemAddressFree), 10020},
    {"cuMemMap", NULL, FN(cuMemMap), 10020},
    {"cuMemUnmap", NULL, FN(cuMemUnmap), 10020},
    {"cuMemSetAccess", NULL, FN(cuMemSetAccess), 10020},
};

static CUresult get_proc(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags,
                         CUdriverProcAddressQueryResult *status) {
  CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = CUDA_ERROR_NOT_FOUND;
  const cuuint64_t known =
      CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if (!symbol || !pfn || (flags & ~known)) {
    r = CUDA_ERROR_INVALID_VALUE;
    goto done;
  }
  *pfn = NULL;
  ps__fake_lock();
  bool missing = false;
  const ps_fixture *f = fix();
  for (int i = 0; f && i < f->fault_count; i++)
    missing = missing || (f->faults[i].kind == PS_FAULT_MISSING_SYMBOL &&
                          !strcmp(f->faults[i].symbol, symbol));
  ps__fake_unlock();
  if (missing) goto done;
  for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
    if (strcmp(procs[i].name, symbol) != 0) continue;
    void *fn = procs[i].v2 && cuda_version >= procs[i].since ? procs[i].v2 : procs[i].v1;
    if (!fn) {
      st = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
      break;
    }
    *pfn = fn;
    st = CU_GET_PROC_ADDRESS_SUCCESS;
    r = CUDA_SUCCESS;
    break;
  }

done:
  if (status) *status = st;
  return r;
}

PS_FAKE_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cuda_version,
                                         cuuint64_t flags) {
  return get_proc(symbol, pfn, cuda_version, flags, NULL);
}

PS_FAKE_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version,
                                            cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *status) {
  return get_proc(symbol, pfn, cuda_version, flags, status);
}
#endif
