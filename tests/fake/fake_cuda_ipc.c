/* Fake libcuda.so.1, memory shared between processes: CUDA IPC handles (cuIpcGetMemHandle,
 * cuIpcOpenMemHandle_v2, cuIpcCloseMemHandle) and the cuMem API with POSIX file descriptors
 * (cuMemCreate, cuMemExportToShareableHandle, cuMemImportFromShareableHandle, cuMemMap,
 * cuMemSetAccess, ...), for the verification's ipc mode.
 *
 * Device memory lives in memfds named "peerscope-fake-gpu<N>" (ps__fake_backing_alloc), mapped
 * shared: a second process sees the same bytes. An IPC handle carries the exporter's pid, the
 * memfd's descriptor number, the size and the GPU; the opener maps /proc/<pid>/fd/<fd>. A
 * cuMem export is a dup of the memfd (the caller passes it over a unix socket); the importer
 * reads the GPU from the memfd's name. Faults: `ipc_fails A B` (docs/fixture-format.md). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda_internal.h"

#define GRANULARITY ((size_t)2 << 20) /* what real GPUs report */
#define MEMFD_PREFIX "peerscope-fake-gpu"
static const char handle_magic[12] = "psfake-ipc1";

/* What a CUipcMemHandle carries (64 bytes at most). */
typedef struct ipc_payload {
  char magic[12];
  int32_t pid, fd, gpu;
  uint64_t size;
} ipc_payload;

/* A cuMemCreate / cuMemImportFromShareableHandle handle. */
typedef struct mem_handle {
  int fd;
  size_t size;
  int gpu;
  bool exportable;
  struct mem_handle *next;
} mem_handle;

/* A cuMemAddressReserve range, or a cuIpcOpenMemHandle_v2 mapping (opened). */
typedef struct region {
  uintptr_t base;
  size_t size;
  bool opened;
  struct region *next;
} region;

static mem_handle *handles;
static region *regions;

/* ---- backing memory (fake_cuda.c's cuMemAlloc_v2) ----------------------------------------- */

static int backing_fd(size_t bytes, int gpu) {
  char name[48];
  snprintf(name, sizeof(name), MEMFD_PREFIX "%d", gpu);
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd >= 0 && ftruncate(fd, (off_t)bytes) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

void *ps__fake_backing_alloc(size_t bytes, int gpu, int *fd) {
  *fd = backing_fd(bytes, gpu);
  if (*fd < 0) return NULL;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (p != MAP_FAILED) return p;
  close(*fd);
  *fd = -1;
  return NULL;
}

void ps__fake_backing_free(void *base, size_t bytes, int fd) {
  munmap(base, bytes);
  if (fd >= 0) close(fd);
}

void ps__fake_ipc_reset(void) {
  while (handles) {
    mem_handle *next = handles->next;
    close(handles->fd);
    free(handles);
    handles = next;
  }
  while (regions) {
    region *next = regions->next;
    munmap((void *)regions->base, regions->size);
    free(regions);
    regions = next;
  }
}

/* ---- helpers (lock held) ----------------------------------------------------------------- */

static CUresult enter_current(struct CUctx_st **ctx) {
  CUresult r = ps__cuda_enter();
  *ctx = ps__cuda_current();
  return r == CUDA_SUCCESS ? ps__cuda_check_ctx(*ctx) : r;
}

/* Whether a process on GPU `at` may reach memory of GPU `owner`: the fixture's peer access,
 * then its ipc_fails fault for this kind of export. */
static CUresult may_open(int at, int owner, int kind) {
  CUresult lost = ps__cuda_lost(owner);
  if (lost != CUDA_SUCCESS) return lost;
  if (at != owner && !ps__fixture_pair(ps__cuda_fixture(), at, owner)->cuda_peer)
    return CUDA_ERROR_PEER_ACCESS_UNSUPPORTED;
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_IPC_FAILS, at, owner);
  return ft && (ft->handles & kind) ? ft->code : CUDA_SUCCESS;
}

static region *region_find(uintptr_t p, size_t n, bool opened) {
  for (region *g = regions; g; g = g->next)
    if (g->opened == opened && p >= g->base && p - g->base <= g->size &&
        n <= g->size - (p - g->base))
      return g;
  return NULL;
}

static void region_drop(region *g) {
  for (region **pp = &regions; *pp; pp = &(*pp)->next)
    if (*pp == g) {
      *pp = g->next;
      break;
    }
  free(g);
}

static mem_handle *handle_find(CUmemGenericAllocationHandle h) {
  for (mem_handle *m = handles; m; m = m->next)
    if ((CUmemGenericAllocationHandle)(uintptr_t)m == h) return m;
  return NULL;
}

static CUresult handle_new(int fd, size_t size, int gpu, bool exportable,
                           CUmemGenericAllocationHandle *out) {
  mem_handle *m = calloc(1, sizeof(*m));
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  *m = (mem_handle){fd, size, gpu, exportable, handles};
  handles = m;
  *out = (CUmemGenericAllocationHandle)(uintptr_t)m;
  return CUDA_SUCCESS;
}

/* ---- CUDA IPC handles ---------------------------------------------------------------------- */

static CUresult ipc_get(CUipcMemHandle *handle, CUdeviceptr dptr) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  size_t size = 0;
  int gpu = 0, fd = r == CUDA_SUCCESS ? ps__cuda_alloc_fd(dptr, &size, &gpu) : -1;
  if (r == CUDA_SUCCESS && (!handle || fd < 0)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = ps__cuda_lost(gpu);
  if (r != CUDA_SUCCESS) return r;
  ipc_payload p = {.pid = (int32_t)getpid(), .fd = fd, .gpu = gpu, .size = size};
  memcpy(p.magic, handle_magic, sizeof(p.magic));
  memset(handle, 0, sizeof(*handle));
  memcpy(handle->reserved, &p, sizeof(p));
  return CUDA_SUCCESS;
}

static CUresult ipc_open(CUdeviceptr *dptr, const CUipcMemHandle *handle, unsigned flags) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  ipc_payload p;
  memcpy(&p, handle->reserved, sizeof(p));
  const ps_fixture *f = ps__cuda_fixture();
  if (r == CUDA_SUCCESS && (!dptr || (flags & ~CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) ||
                            memcmp(p.magic, handle_magic, sizeof(p.magic)) != 0 || p.gpu < 0 ||
                            p.gpu >= f->gpu_count || p.size == 0))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && p.pid == (int32_t)getpid()) r = CUDA_ERROR_INVALID_CONTEXT;
  if (r == CUDA_SUCCESS) r = may_open(ctx->gpu, p.gpu, PS_FIX_IPC_LEGACY);
  if (r != CUDA_SUCCESS) return r;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)p.pid, (int)p.fd);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return CUDA_ERROR_INVALID_HANDLE; /* the exporter is gone */
  void *base = mmap(NULL, p.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  region *g = base == MAP_FAILED ? NULL : calloc(1, sizeof(*g));
  if (!g || ps__cuda_map_add((CUdeviceptr)(uintptr_t)base, p.size, p.gpu, true) != CUDA_SUCCESS) {
    if (base != MAP_FAILED) munmap(base, p.size);
    free(g);
    return CUDA_ERROR_MAP_FAILED;
  }
  *g = (region){(uintptr_t)base, p.size, true, regions};
  regions = g;
  /* The lazy flag enables peer access as cuCtxEnablePeerAccess would (kernels may then
   * reach the memory); copies work either way. */
  if ((flags & CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) && p.gpu != ctx->gpu) ctx->peer[p.gpu] = true;
  *dptr = (CUdeviceptr)(uintptr_t)base;
  return CUDA_SUCCESS;
}

static CUresult ipc_close(CUdeviceptr dptr) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  region *g = r == CUDA_SUCCESS ? region_find((uintptr_t)dptr, 0, true) : NULL;
  if (r == CUDA_SUCCESS && (!g || g->base != dptr)) r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  ps__cuda_map_remove(dptr, 0);
  munmap((void *)g->base, g->size);
  region_drop(g);
  return CUDA_SUCCESS;
}

/* ---- cuMem: physical handles --------------------------------------------------------------- */

/* A pinned allocation on a device the fake knows; its fixture GPU in *gpu. */
static CUresult check_prop(const CUmemAllocationProp *prop, int *gpu) {
  if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      (prop->requestedHandleTypes & ~CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return CUDA_ERROR_INVALID_VALUE;
  return ps__cuda_device_gpu(prop->location.id, gpu);
}

static CUresult granularity(size_t *out, const CUmemAllocationProp *prop, int option) {
  int gpu = 0;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) r = check_prop(prop, &gpu);
  if (r == CUDA_SUCCESS && (!out || option < 0 || option > 1)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) *out = GRANULARITY;
  return r;
}

static CUresult mem_create(CUmemGenericAllocationHandle *out, size_t size,
                           const CUmemAllocationProp *prop, unsigned long long flags) {
  int gpu = 0;
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS) r = check_prop(prop, &gpu);
  if (r == CUDA_SUCCESS && (!out || flags || size == 0 || size % GRANULARITY))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && size > ps__cuda_fixture()->gpus[gpu].mem_free_mib << 20)
    r = CUDA_ERROR_OUT_OF_MEMORY;
  int fd = r == CUDA_SUCCESS ? backing_fd(size, gpu) : -1;
  if (r == CUDA_SUCCESS && fd < 0) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) return r;
  bool exportable = prop->requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  r = handle_new(fd, size, gpu, exportable, out);
  if (r != CUDA_SUCCESS) close(fd);
  return r;
}

static CUresult mem_release(CUmemGenericAllocationHandle h) {
  CUresult r = ps__cuda_enter();
  mem_handle *m = r == CUDA_SUCCESS ? handle_find(h) : NULL;
  if (r == CUDA_SUCCESS && !m) r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  for (mem_handle **pp = &handles; *pp; pp = &(*pp)->next)
    if (*pp == m) {
      *pp = m->next;
      break;
    }
  close(m->fd); /* what is mapped stays mapped, as on the real driver */
  free(m);
  return CUDA_SUCCESS;
}

static CUresult mem_export(void *out, CUmemGenericAllocationHandle h, int type,
                           unsigned long long flags) {
  CUresult r = ps__cuda_enter();
  mem_handle *m = r == CUDA_SUCCESS ? handle_find(h) : NULL;
  if (r == CUDA_SUCCESS &&
      (!m || !out || flags || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && !m->exportable) r = CUDA_ERROR_NOT_SUPPORTED;
  int fd = r == CUDA_SUCCESS ? fcntl(m->fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (r == CUDA_SUCCESS && fd < 0) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r == CUDA_SUCCESS) memcpy(out, &fd, sizeof(fd));
  return r;
}

/* The GPU a fake memfd belongs to, from its name; -1 for any other descriptor. */
static int memfd_gpu(int fd) {
  char path[64], target[128];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n <= 0) return -1;
  target[n] = '\0';
  const char *at = strstr(target, MEMFD_PREFIX);
  int gpu = -1;
  if (!at || sscanf(at + strlen(MEMFD_PREFIX), "%d", &gpu) != 1) return -1;
  return gpu >= 0 && gpu < ps__cuda_fixture()->gpu_count ? gpu : -1;
}

static CUresult mem_import(CUmemGenericAllocationHandle *out, void *os_handle, int type) {
  struct CUctx_st *ctx = NULL;
  CUresult r = enter_current(&ctx);
  int fd = (int)(intptr_t)os_handle, gpu = -1;
  struct stat st;
  if (r == CUDA_SUCCESS && (!out || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR ||
                            fstat(fd, &st) != 0 || (gpu = memfd_gpu(fd)) < 0))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = may_open(ctx->gpu, gpu, PS_FIX_IPC_CUMEM);
  int own = r == CUDA_SUCCESS ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (r == CUDA_SUCCESS && own < 0) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r == CUDA_SUCCESS) r = handle_new(own, (size_t)st.st_size, gpu, true, out);
  if (r != CUDA_SUCCESS && own >= 0) close(own);
  return r;
}

/* ---- cuMem: virtual addresses ------------------------------------------------------------- */

static CUresult address_reserve(CUdeviceptr *out, size_t size, size_t alignment, CUdeviceptr addr,
                                unsigned long long flags) {
  CUresult r = ps__cuda_enter();
  (void)addr; /* a hint only */
  if (r == CUDA_SUCCESS &&
      (!out || !size || size % GRANULARITY || flags || (alignment & (alignment - 1))))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  void *base = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  region *g = base == MAP_FAILED ? NULL : calloc(1, sizeof(*g));
  if (!g) {
    if (base != MAP_FAILED) munmap(base, size);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *g = (region){(uintptr_t)base, size, false, regions};
  regions = g;
  *out = (CUdeviceptr)(uintptr_t)base;
  return CUDA_SUCCESS;
}

static CUresult address_free(CUdeviceptr ptr, size_t size) {
  CUresult r = ps__cuda_enter();
  region *g = r == CUDA_SUCCESS ? region_find((uintptr_t)ptr, size, false) : NULL;
  if (r == CUDA_SUCCESS && (!g || g->base != ptr || g->size != size)) r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  ps__cuda_map_remove(ptr, size);
  munmap((void *)g->base, g->size);
  region_drop(g);
  return CUDA_SUCCESS;
}

static CUresult mem_map(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h,
                        unsigned long long flags) {
  CUresult r = ps__cuda_enter();
  mem_handle *m = r == CUDA_SUCCESS ? handle_find(h) : NULL;
  if (r == CUDA_SUCCESS && (!m || flags || !size || offset > m->size || size > m->size - offset ||
                            !region_find((uintptr_t)ptr, size, false)))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  void *at = mmap((void *)(uintptr_t)ptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                  m->fd, (off_t)offset);
  if (at == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  return ps__cuda_map_add(ptr, size, m->gpu, false);
}

static CUresult mem_unmap(CUdeviceptr ptr, size_t size) {
  CUresult r = ps__cuda_enter();
  if (r == CUDA_SUCCESS && !region_find((uintptr_t)ptr, size, false)) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && ps__cuda_map_remove(ptr, size) == 0) r = CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return CUDA_SUCCESS;
}

/* Grants each device in desc access; a device without peer access to the memory's GPU gets
 * CUDA_ERROR_PEER_ACCESS_UNSUPPORTED. Kernels on it may then reach the memory. */
static CUresult set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                           size_t count) {
  CUresult r = ps__cuda_enter();
  int owner = -1;
  if (r == CUDA_SUCCESS && (!desc || !count || !region_find((uintptr_t)ptr, size, false)))
    r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS && ps__cuda_map_grant(ptr, size) == 0) r = CUDA_ERROR_INVALID_VALUE;
  if (r == CUDA_SUCCESS) r = ps__cuda_check_range(ptr, size, -1, &owner);
  for (size_t i = 0; r == CUDA_SUCCESS && i < count; i++) {
    int gpu = 0;
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) r = ps__cuda_device_gpu(desc[i].location.id, &gpu);
    if (r == CUDA_SUCCESS && gpu != owner &&
        !ps__fixture_pair(ps__cuda_fixture(), gpu, owner)->cuda_peer)
      r = CUDA_ERROR_PEER_ACCESS_UNSUPPORTED;
    if (r == CUDA_SUCCESS && gpu != owner) ps__cuda_context(gpu)->peer[owner] = true;
  }
  return r;
}

/* ---- entry points -------------------------------------------------------------------------- */

#define LOCKED(call)                                                                               \
  do {                                                                                             \
    ps__fake_lock();                                                                               \
    CUresult r_ = (call);                                                                          \
    ps__fake_unlock();                                                                             \
    return r_;                                                                                     \
  } while (0)

PS_FAKE_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *handle, CUdeviceptr dptr) {
  LOCKED(ipc_get(handle, dptr));
}
PS_FAKE_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *dptr, CUipcMemHandle handle,
                                              unsigned int flags) {
  LOCKED(ipc_open(dptr, &handle, flags));
}
PS_FAKE_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) { LOCKED(ipc_close(dptr)); }
PS_FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity_out,
                                                      const CUmemAllocationProp *prop, int option) {
  LOCKED(granularity(granularity_out, prop, option));
}
PS_FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                    const CUmemAllocationProp *prop, unsigned long long flags) {
  LOCKED(mem_create(handle, size, prop, flags));
}
PS_FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  LOCKED(mem_release(handle));
}
PS_FAKE_EXPORT CUresult cuMemExportToShareableHandle(void *shareable,
                                                     CUmemGenericAllocationHandle handle,
                                                     int handle_type, unsigned long long flags) {
  LOCKED(mem_export(shareable, handle, handle_type, flags));
}
PS_FAKE_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                       void *os_handle, int handle_type) {
  LOCKED(mem_import(handle, os_handle, handle_type));
}
PS_FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                            CUdeviceptr addr, unsigned long long flags) {
  LOCKED(address_reserve(ptr, size, alignment, addr, flags));
}
PS_FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  LOCKED(address_free(ptr, size));
}
PS_FAKE_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                                 CUmemGenericAllocationHandle handle, unsigned long long flags) {
  LOCKED(mem_map(ptr, size, offset, handle, flags));
}
PS_FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) { LOCKED(mem_unmap(ptr, size)); }
PS_FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                       size_t count) {
  LOCKED(set_access(ptr, size, desc, count));
}
