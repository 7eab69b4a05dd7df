/* The fake drivers' benchmark support: streams with modelled clocks, asynchronous copies,
 * the emulated kernels, capture and graphs (tests/fake/fake_cuda_bench.c) and the fake NCCL
 * (tests/fake/fake_nccl.c), driven through dlopen like the bench worker drives them. */
#include "support.h"

#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../fake/fake_cuda_internal.h"
#include "worker/kernels/kernel_abi.h"
#include "drv/cuda_abi.h"
#include "drv/nccl_abi.h"

#define MIB (1024ull * 1024ull)

typedef struct cu {
  void *h;
  PFN_cuInit Init;
  PFN_cuDevicePrimaryCtxRetain CtxRetain;
  PFN_cuCtxSetCurrent CtxSetCurrent;
  PFN_cuCtxSynchronize CtxSynchronize;
  PFN_cuCtxEnablePeerAccess EnablePeer;
  PFN_cuMemAlloc_v2 MemAlloc;
  PFN_cuMemFree_v2 MemFree;
  PFN_cuMemcpyHtoD_v2 HtoD;
  PFN_cuMemcpyDtoH_v2 DtoH;
  PFN_cuCtxDisablePeerAccess DisablePeer;
  PFN_cuStreamCreate StreamCreate;
  PFN_cuStreamDestroy_v2 StreamDestroy;
  PFN_cuStreamSynchronize StreamSync;
  PFN_cuStreamWaitEvent StreamWaitEvent;
  PFN_cuEventCreate EventCreate;
  PFN_cuEventDestroy_v2 EventDestroy;
  PFN_cuEventRecord EventRecord;
  PFN_cuEventSynchronize EventSync;
  PFN_cuEventElapsedTime Elapsed;
  PFN_cuMemcpyAsync MemcpyAsync;
  PFN_cuMemcpyPeerAsync MemcpyPeerAsync;
  PFN_cuMemcpyHtoDAsync_v2 HtoDAsync;
  PFN_cuMemcpyDtoHAsync_v2 DtoHAsync;
  PFN_cuMemHostAlloc HostAlloc;
  PFN_cuMemFreeHost FreeHost;
  PFN_cuMemHostGetDevicePointer_v2 HostDevicePointer;
  PFN_cuMemsetD8_v2 MemsetD8;
  PFN_cuModuleLoadData ModuleLoad;
  PFN_cuModuleUnload ModuleUnload;
  PFN_cuModuleGetFunction ModuleGetFunction;
  PFN_cuLaunchKernel Launch;
  PFN_cuStreamBeginCapture_v2 BeginCapture;
  PFN_cuStreamEndCapture EndCapture;
  PFN_cuGraphInstantiateWithFlags Instantiate;
  PFN_cuGraphLaunch GraphLaunch;
  PFN_cuGraphExecDestroy ExecDestroy;
  PFN_cuGraphDestroy GraphDestroy;
} cu;

typedef struct nccl {
  void *h;
  PFN_ncclGetVersion GetVersion;
  PFN_ncclCommInitAll InitAll;
  PFN_ncclCommDestroy Destroy;
  PFN_ncclGroupStart GroupStart;
  PFN_ncclGroupEnd GroupEnd;
  PFN_ncclAllReduce AllReduce;
  PFN_ncclGetErrorString ErrorString;
} nccl;

/* Entry point, name for cuGetProcAddress, name without it (what src/drv/cuda.c uses). */
typedef struct entry {
  void **slot;
  const char *base, *versioned;
} entry;

#define E(field, base, versioned)                                                                  \
  { (void **)&c->field, base, versioned }

static size_t entries(cu *c, entry *t) {
  const entry table[] = {
      E(Init, "cuInit", "cuInit"),
      E(CtxRetain, "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain"),
      E(CtxSetCurrent, "cuCtxSetCurrent", "cuCtxSetCurrent"),
      E(CtxSynchronize, "cuCtxSynchronize", "cuCtxSynchronize"),
      E(EnablePeer, "cuCtxEnablePeerAccess", "cuCtxEnablePeerAccess"),
      E(MemAlloc, "cuMemAlloc", "cuMemAlloc_v2"),
      E(MemFree, "cuMemFree", "cuMemFree_v2"),
      E(HtoD, "cuMemcpyHtoD", "cuMemcpyHtoD_v2"),
      E(DtoH, "cuMemcpyDtoH", "cuMemcpyDtoH_v2"),
      E(DisablePeer, "cuCtxDisablePeerAccess", "cuCtxDisablePeerAccess"),
      E(StreamCreate, "cuStreamCreate", "cuStreamCreate"),
      E(StreamDestroy, "cuStreamDestroy", "cuStreamDestroy_v2"),
      E(StreamSync, "cuStreamSynchronize", "cuStreamSynchronize"),
      E(StreamWaitEvent, "cuStreamWaitEvent", "cuStreamWaitEvent"),
      E(EventCreate, "cuEventCreate", "cuEventCreate"),
      E(EventDestroy, "cuEventDestroy", "cuEventDestroy_v2"),
      E(EventRecord, "cuEventRecord", "cuEventRecord"),
      E(EventSync, "cuEventSynchronize", "cuEventSynchronize"),
      E(Elapsed, "cuEventElapsedTime", "cuEventElapsedTime"),
      E(MemcpyAsync, "cuMemcpyAsync", "cuMemcpyAsync"),
      E(MemcpyPeerAsync, "cuMemcpyPeerAsync", "cuMemcpyPeerAsync"),
      E(HtoDAsync, "cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync_v2"),
      E(DtoHAsync, "cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync_v2"),
      E(HostAlloc, "cuMemHostAlloc", "cuMemHostAlloc"),
      E(FreeHost, "cuMemFreeHost", "cuMemFreeHost"),
      E(HostDevicePointer, "cuMemHostGetDevicePointer", "cuMemHostGetDevicePointer_v2"),
      E(MemsetD8, "cuMemsetD8", "cuMemsetD8_v2"),
      E(ModuleLoad, "cuModuleLoadData", "cuModuleLoadData"),
      E(ModuleUnload, "cuModuleUnload", "cuModuleUnload"),
      E(ModuleGetFunction, "cuModuleGetFunction", "cuModuleGetFunction"),
      E(Launch, "cuLaunchKernel", "cuLaunchKernel"),
      E(BeginCapture, "cuStreamBeginCapture", "cuStreamBeginCapture_v2"),
      E(EndCapture, "cuStreamEndCapture", "cuStreamEndCapture"),
      E(Instantiate, "cuGraphInstantiateWithFlags", "cuGraphInstantiateWithFlags"),
      E(GraphLaunch, "cuGraphLaunch", "cuGraphLaunch"),
      E(ExecDestroy, "cuGraphExecDestroy", "cuGraphExecDestroy"),
      E(GraphDestroy, "cuGraphDestroy", "cuGraphDestroy"),
  };
  memcpy(t, table, sizeof(table));
  return sizeof(table) / sizeof(table[0]);
}

static const char *lib_path(const char *variant, const char *file) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/../%s/%s", ps_test_env("PEERSCOPE_FAKE_DIR"), variant, file);
  return path;
}

static void *open_lib(const char *variant, const char *file) {
  void *h = dlopen(lib_path(variant, file), RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen: %s", dlerror());
  return h;
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) fail_msg("fake driver lacks %s", name);
  return p;
}

/* Resolves every entry the way the loader does: cuGetProcAddress_v2 at ABI 12000. */
static void cu_open(cu *c, const char *fixture) {
  entry t[64];
  memset(c, 0, sizeof(*c));
  setenv("PEERSCOPE_FIXTURE", ps_test_fixture_path(fixture), 1);
  unsetenv("CUDA_VISIBLE_DEVICES");
  c->h = open_lib("fake", "libcuda.so.1");
  PFN_cuGetProcAddress_v2 get = (PFN_cuGetProcAddress_v2)sym(c->h, "cuGetProcAddress_v2");
  size_t n = entries(c, t);
  for (size_t i = 0; i < n; i++) {
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (get(t[i].base, t[i].slot, PS_CUDA_ABI_VERSION, 0, &st) != CUDA_SUCCESS)
      fail_msg("cuGetProcAddress(%s) failed", t[i].base);
    assert_ptr_equal(*t[i].slot, sym(c->h, t[i].versioned));
  }
  assert_int_equal(c->Init(0), CUDA_SUCCESS);
}

static void nccl_open(nccl *n) {
  n->h = open_lib("fake", "libnccl.so.2");
  n->GetVersion = (PFN_ncclGetVersion)sym(n->h, "ncclGetVersion");
  n->InitAll = (PFN_ncclCommInitAll)sym(n->h, "ncclCommInitAll");
  n->Destroy = (PFN_ncclCommDestroy)sym(n->h, "ncclCommDestroy");
  n->GroupStart = (PFN_ncclGroupStart)sym(n->h, "ncclGroupStart");
  n->GroupEnd = (PFN_ncclGroupEnd)sym(n->h, "ncclGroupEnd");
  n->AllReduce = (PFN_ncclAllReduce)sym(n->h, "ncclAllReduce");
  n->ErrorString = (PFN_ncclGetErrorString)sym(n->h, "ncclGetErrorString");
}

/* Retains GPU g's primary context and makes it current. */
static CUcontext ctx_on(cu *c, int g) {
  CUcontext ctx = NULL;
  assert_int_equal(c->CtxRetain(&ctx, g), CUDA_SUCCESS);
  assert_int_equal(c->CtxSetCurrent(ctx), CUDA_SUCCESS);
  return ctx;
}

static CUdeviceptr dalloc(cu *c, CUcontext ctx, size_t n) {
  CUdeviceptr p = 0;
  assert_int_equal(c->CtxSetCurrent(ctx), CUDA_SUCCESS);
  assert_int_equal(c->MemAlloc(&p, n), CUDA_SUCCESS);
  return p;
}

/* Two timing events on the current context. */
typedef struct timer {
  CUevent start, stop;
} timer;

static timer timer_new(cu *c) {
  timer t;
  assert_int_equal(c->EventCreate(&t.start, CU_EVENT_DEFAULT), CUDA_SUCCESS);
  assert_int_equal(c->EventCreate(&t.stop, CU_EVENT_DEFAULT), CUDA_SUCCESS);
  return t;
}

static void timer_start(cu *c, const timer *t, CUstream s) {
  assert_int_equal(c->EventRecord(t->start, s), CUDA_SUCCESS);
}

/* Modelled microseconds since timer_start. */
static double timer_us(cu *c, const timer *t, CUstream s) {
  float ms = 0;
  assert_int_equal(c->EventRecord(t->stop, s), CUDA_SUCCESS);
  assert_int_equal(c->EventSync(t->stop), CUDA_SUCCESS);
  assert_int_equal(c->Elapsed(&ms, t->start, t->stop), CUDA_SUCCESS);
  return ms * 1e3;
}

static double gbps(size_t bytes, double us) { return bytes / (us * 1e3); }

/* The model's latency + bytes / bandwidth, in microseconds. */
static double model_us(double latency_us, double bytes, double gbps) {
  return latency_us + bytes / (gbps * 1e3);
}

/* Within the +-1% jitter (and float rounding) of the model. */
static void assert_near(double us, double want) {
  if (us < want * 0.985 || us > want * 1.015) fail_msg("%.3f us, model says %.3f us", us, want);
}

/* Microseconds of one cuMemcpyPeerAsync of n bytes from (sc, src) into (dc, dst) on s. */
static double peer_us(cu *c, const timer *t, CUstream s, CUdeviceptr dst, CUcontext dc,
                      CUdeviceptr src, CUcontext sc, size_t n) {
  timer_start(c, t, s);
  assert_int_equal(c->MemcpyPeerAsync(dst, dc, src, sc, n, s), CUDA_SUCCESS);
  return timer_us(c, t, s);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(i * 31 + seed + (i >> 9));
}

static CUfunction kernel(cu *c, CUmodule m, const char *name) {
  CUfunction f = NULL;
  assert_int_equal(c->ModuleGetFunction(&f, m, name), CUDA_SUCCESS);
  return f;
}

static CUresult launch(cu *c, CUfunction f, unsigned grid_y, CUstream s, void **params) {
  return c->Launch(f, 1, grid_y, 1, 256, 1, 1, 0, s, params, NULL);
}

static CUresult launch_copy(cu *c, CUfunction f, CUstream s, CUdeviceptr src, CUdeviceptr dst,
                            size_t bytes) {
  unsigned long long count16 = bytes / 16;
  void *params[] = {&src, &dst, &count16};
  return launch(c, f, 1, s, params);
}

/* ---- entry points ----------------------------------------------------------------------- */

static void test_entry_points(void **state) {
  (void)state;
  cu c;
  entry t[64];
  cu_open(&c, "hgx-h100-8.topo"); /* checks every base name at 12000 */
  PFN_cuGetProcAddress_v2 get = (PFN_cuGetProcAddress_v2)sym(c.h, "cuGetProcAddress_v2");
  void *fn = NULL;
  CUdriverProcAddressQueryResult st;
  assert_int_equal(get("cuStreamBeginCapture", &fn, 10000, 0, &st), CUDA_ERROR_NOT_FOUND);
  assert_int_equal(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  assert_int_equal(get("cuStreamDestroy", &fn, 3000, 0, &st), CUDA_SUCCESS);
  assert_ptr_equal(fn, sym(c.h, "cuStreamDestroy_v2"));
  assert_int_equal(*(int *)sym(c.h, "ps_fake_simulated"), 1);
  dlclose(c.h);

  /* The legacy driver exports the versioned names the loader falls back to. */
  void *h = open_lib("fake-legacy", "libcuda.so.1");
  size_t n = entries(&c, t);
  for (size_t i = 0; i < n; i++)
    sym(h, t[i].versioned);
  assert_null(dlsym(h, "cuGetProcAddress_v2"));
  assert_int_equal(*(int *)sym(h, "ps_fake_simulated"), 1);
  dlclose(h);
  h = open_lib("fake-broken", "libcuda.so.1");
  sym(h, "cuLaunchKernel");
  dlclose(h);
}

/* ---- copies ----------------------------------------------------------------------------- */

static void test_copy_model_nvlink(void **state) {
  (void)state;
  enum { N = 4 * MIB };
  static unsigned char in[N], out[N];
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0), c1 = ctx_on(&c, 1);
  CUdeviceptr a = dalloc(&c, c0, N), b = dalloc(&c, c1, N);
  CUstream s = NULL;
  assert_int_equal(c.CtxSetCurrent(c0), CUDA_SUCCESS);
  assert_int_equal(c.StreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  timer t = timer_new(&c);
  fill(in, N, 1);
  assert_int_equal(c.HtoD(a, in, N), CUDA_SUCCESS);

  /* Staged through the host until peer access is on: H100 PCIe gen5 x16 / 2. */
  double staged = peer_us(&c, &t, s, b, c1, a, c0, N);
  assert_near(staged, model_us(15, N, 25));
  assert_int_equal(c.EnablePeer(c1, 0), CUDA_SUCCESS);
  double nvlink = peer_us(&c, &t, s, b, c1, a, c0, N); /* NV18, NVLink 4.0 */
  assert_near(nvlink, model_us(2.5, N, 18 * 25 * 0.85));
  assert_true(gbps(N, nvlink) > 10 * gbps(N, staged));
  assert_int_equal(c.DtoH(out, b, N), CUDA_SUCCESS);
  assert_memory_equal(in, out, N);

  /* cuMemcpyAsync between GPUs takes the same path; within a GPU the local one. */
  timer_start(&c, &t, s);
  assert_int_equal(c.MemcpyAsync(b, a, N, s), CUDA_SUCCESS);
  assert_near(timer_us(&c, &t, s), model_us(2.5, N, 382.5));
  timer_start(&c, &t, s);
  assert_int_equal(c.MemcpyAsync(a + N / 2, a, N / 2, s), CUDA_SUCCESS);
  assert_near(timer_us(&c, &t, s), model_us(2, N / 2, 1500));

  /* Disabling peer access goes back to staging; twice is an error. */
  assert_int_equal(c.DisablePeer(c1), CUDA_SUCCESS);
  assert_int_equal(c.DisablePeer(c1), CUDA_ERROR_PEER_ACCESS_NOT_ENABLED);
  assert_near(peer_us(&c, &t, s, b, c1, a, c0, N), model_us(15, N, 25));

  /* Small copies are latency: 2.5 us over NVLink. */
  assert_int_equal(c.EnablePeer(c1, 0), CUDA_SUCCESS);
  timer_start(&c, &t, s);
  assert_int_equal(c.MemcpyPeerAsync(b, c1, a, c0, 8, s), CUDA_SUCCESS);
  double us = timer_us(&c, &t, s);
  assert_true(us > 2.4 && us < 2.6);

  /* Wrong context for a pointer, and a bad stream. */
  assert_int_equal(c.MemcpyPeerAsync(b, c0, a, c0, N, s), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.MemcpyAsync(b, a, N, (CUstream)&t), CUDA_ERROR_INVALID_HANDLE);
  assert_int_equal(c.StreamDestroy(s), CUDA_SUCCESS);
  assert_int_equal(c.StreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
  dlclose(c.h); /* frees the buffers, events and contexts */
}

static void test_copy_model_pcie(void **state) {
  (void)state;
  enum { N = 4 * MIB };
  cu c;
  cu_open(&c, "dual-socket-8-pcie.topo"); /* L40S, PCIe gen4 x16 */
  CUcontext c0 = ctx_on(&c, 0), c1 = ctx_on(&c, 1), c4 = ctx_on(&c, 4);
  CUdeviceptr a = dalloc(&c, c0, N), b = dalloc(&c, c1, N), d = dalloc(&c, c4, N);
  assert_int_equal(c.CtxSetCurrent(c0), CUDA_SUCCESS);
  timer t = timer_new(&c);
  assert_int_equal(c.EnablePeer(c1, 0), CUDA_SUCCESS);
  assert_int_equal(c.EnablePeer(c4, 0), CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  double pcie = peer_us(&c, &t, NULL, b, c1, a, c0, N);   /* PIX */
  double staged = peer_us(&c, &t, NULL, d, c4, a, c0, N); /* SYS, no P2P */
  assert_near(pcie, model_us(10, N, 24));
  assert_near(staged, model_us(15, N, 12));
  assert_true(gbps(N, pcie) > 1.5 * gbps(N, staged));

  /* Host <-> device: pinned at the PCIe bandwidth, pageable at half. */
  void *pinned = NULL;
  CUdeviceptr mapped = 0;
  static unsigned char pageable[N];
  assert_int_equal(c.HostAlloc(&pinned, N, CU_MEMHOSTALLOC_DEVICEMAP), CUDA_SUCCESS);
  assert_int_equal(c.HostDevicePointer(&mapped, pinned, 0), CUDA_SUCCESS);
  assert_ptr_equal((void *)(uintptr_t)mapped, pinned);
  fill(pinned, N, 7);
  timer_start(&c, &t, NULL);
  assert_int_equal(c.HtoDAsync(a, pinned, N, NULL), CUDA_SUCCESS);
  assert_near(timer_us(&c, &t, NULL), model_us(5, N, 24));
  timer_start(&c, &t, NULL);
  assert_int_equal(c.DtoHAsync(pageable, a, N, NULL), CUDA_SUCCESS);
  assert_near(timer_us(&c, &t, NULL), model_us(5, N, 12));
  assert_memory_equal(pageable, pinned, N);
  /* Pinned memory through unified addressing, both ways. */
  assert_int_equal(c.MemcpyAsync(mapped, b, N, NULL), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyAsync(b, mapped, N, NULL), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyAsync((CUdeviceptr)(uintptr_t)pageable, a, N, NULL),
                   CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.HtoDAsync(a, (void *)(uintptr_t)b, N, NULL), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.FreeHost((char *)pinned + 1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.FreeHost(pinned), CUDA_SUCCESS);
  assert_int_equal(c.HostDevicePointer(&mapped, pinned, 0), CUDA_ERROR_INVALID_VALUE);
  dlclose(c.h);
}

/* Streams' clocks, events and the host clock. */
static void test_streams_and_events(void **state) {
  (void)state;
  enum { N = MIB };
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0);
  CUdeviceptr a = dalloc(&c, c0, N);
  CUstream s1 = NULL, s2 = NULL;
  CUevent e1 = NULL, e2 = NULL, e3 = NULL, untimed = NULL;
  assert_int_equal(c.StreamCreate(&s1, 0), CUDA_SUCCESS);
  assert_int_equal(c.StreamCreate(&s2, 0), CUDA_SUCCESS);
  assert_int_equal(c.StreamCreate(&s2, 4), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.EventCreate(&e1, 0), CUDA_SUCCESS);
  assert_int_equal(c.EventCreate(&e2, 0), CUDA_SUCCESS);
  assert_int_equal(c.EventCreate(&e3, 0), CUDA_SUCCESS);
  assert_int_equal(c.EventCreate(&untimed, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
  float ms = 0;
  assert_int_equal(c.Elapsed(&ms, e1, e2), CUDA_ERROR_INVALID_HANDLE); /* never recorded */

  /* s1: e1, 100 local copies of 512 KiB, e2; not complete until the host waits. */
  assert_int_equal(c.EventRecord(e1, s1), CUDA_SUCCESS);
  for (int i = 0; i < 100; i++)
    assert_int_equal(c.MemcpyAsync(a, a + N / 2, N / 2, s1), CUDA_SUCCESS);
  assert_int_equal(c.EventRecord(e2, s1), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, e1, e2), CUDA_ERROR_NOT_READY);
  /* s2 waits for e2, then records e3: at least as late. */
  assert_int_equal(c.StreamWaitEvent(s2, e2, 0), CUDA_SUCCESS);
  assert_int_equal(c.EventRecord(e3, s2), CUDA_SUCCESS);
  assert_int_equal(c.StreamSync(s2), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, e1, e2), CUDA_SUCCESS);
  /* 100 x (2 us + 512 KiB / 1500 GB/s) = 100 x 2.35 us, +-1% each. */
  assert_true(ms > 0.230 && ms < 0.240);
  float ms3 = 0;
  assert_int_equal(c.Elapsed(&ms3, e1, e3), CUDA_SUCCESS);
  assert_true(ms3 >= ms);
  assert_int_equal(c.EventRecord(untimed, s1), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, e1, untimed), CUDA_ERROR_INVALID_HANDLE);
  assert_int_equal(c.Elapsed(NULL, e1, e2), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.StreamWaitEvent(s2, e2, 1), CUDA_ERROR_INVALID_VALUE);

  /* Repeated runs have a spread (jitter), but stay within 1% of the model. */
  double lo = 1e9, hi = 0;
  timer t = {e1, e2};
  for (int i = 0; i < 20; i++) {
    timer_start(&c, &t, s1);
    assert_int_equal(c.MemcpyAsync(a, a + N / 2, N / 2, s1), CUDA_SUCCESS);
    double us = timer_us(&c, &t, s1);
    lo = us < lo ? us : lo;
    hi = us > hi ? us : hi;
  }
  assert_true(hi > lo && lo > 2.34 * 0.99 && hi < 2.36 * 1.01);

  /* memset on the default stream; a new stream starts at the host's time. */
  assert_int_equal(c.MemsetD8(a, 0xab, N), CUDA_SUCCESS);
  unsigned char buf[16];
  assert_int_equal(c.DtoH(buf, a + N - 16, 16), CUDA_SUCCESS);
  assert_int_equal(buf[15], 0xab);
  assert_int_equal(c.MemsetD8(a, 0, N + 1), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.CtxSynchronize(), CUDA_SUCCESS);
  assert_int_equal(c.EventDestroy(e3), CUDA_SUCCESS);
  assert_int_equal(c.EventDestroy(e3), CUDA_ERROR_INVALID_HANDLE);
  assert_int_equal(c.EventRecord(e3, s1), CUDA_ERROR_INVALID_HANDLE);
  dlclose(c.h); /* streams and events left over: freed at dlclose */
}

/* ---- kernels ---------------------------------------------------------------------------- */

static void test_kernels(void **state) {
  (void)state;
  enum { N = MIB, CHAIN = 1024, STEPS = 1000 };
  static unsigned char in[N], out[N];
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0), c1 = ctx_on(&c, 1);
  CUdeviceptr remote = dalloc(&c, c1, N), local = dalloc(&c, c0, N);
  CUmodule m = NULL;
  CUfunction f = NULL;
  assert_int_equal(c.ModuleLoad(&m, NULL), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  assert_int_equal(c.ModuleGetFunction(&f, m, "ps_nothing"), CUDA_ERROR_NOT_FOUND);
  CUfunction spin = kernel(&c, m, PS_KERNEL_SPIN), copy = kernel(&c, m, PS_KERNEL_COPY);
  CUfunction chase = kernel(&c, m, PS_KERNEL_CHASE);
  timer t = timer_new(&c);

  /* ps_spin returns at once on a flag already set (test_spin_latch: one that is not). */
  CUdeviceptr flag = local;
  unsigned long long timeout = 1000000000ull;
  void *spin_params[] = {&flag, &timeout};
  assert_int_equal(c.MemsetD8(local, 1, 4), CUDA_SUCCESS);
  assert_int_equal(launch(&c, spin, 1, NULL, spin_params), CUDA_SUCCESS);
  assert_int_equal(c.Launch(spin, 1, 1, 1, 2048, 1, 1, 0, NULL, spin_params, NULL),
                   CUDA_ERROR_INVALID_VALUE);

  /* ps_copy on GPU 0 reading GPU 1: an illegal address until peer access is on. */
  fill(in, N, 3);
  assert_int_equal(c.HtoD(remote, in, N), CUDA_SUCCESS);
  assert_int_equal(launch_copy(&c, copy, NULL, remote, local, N), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(c.EnablePeer(c1, 0), CUDA_SUCCESS);
  timer_start(&c, &t, NULL);
  assert_int_equal(launch_copy(&c, copy, NULL, remote, local, N), CUDA_SUCCESS);
  double kernel_gbps = gbps(N, timer_us(&c, &t, NULL));
  assert_int_equal(c.DtoH(out, local, N), CUDA_SUCCESS);
  assert_memory_equal(in, out, N);
  timer_start(&c, &t, NULL);
  assert_int_equal(c.MemcpyAsync(local, remote, N, NULL), CUDA_SUCCESS);
  double ce_gbps = gbps(N, timer_us(&c, &t, NULL));
  assert_true(kernel_gbps < ce_gbps * 0.99 && kernel_gbps > ce_gbps * 0.9);
  assert_int_equal(launch_copy(&c, copy, NULL, remote + 16, local, N), CUDA_ERROR_ILLEGAL_ADDRESS);

  /* ps_chase over a chain on GPU 1: the sink gets the last address; 0.8 us per load. */
  static unsigned long long chain[CHAIN];
  for (int i = 0; i < CHAIN; i++)
    chain[i] = remote + 8ull * ((i + 389) % CHAIN);
  assert_int_equal(c.HtoD(remote, chain, sizeof(chain)), CUDA_SUCCESS);
  CUdeviceptr start = remote, sink = local;
  unsigned steps = STEPS;
  void *chase_params[] = {&start, &steps, &sink};
  timer_start(&c, &t, NULL);
  assert_int_equal(launch(&c, chase, 1, NULL, chase_params), CUDA_SUCCESS);
  double per_load = (timer_us(&c, &t, NULL) - 2.0) / STEPS;
  unsigned long long got = 0;
  assert_int_equal(c.DtoH(&got, sink, 8), CUDA_SUCCESS);
  assert_int_equal(got, remote + 8ull * ((STEPS * 389ull) % CHAIN));
  assert_true(per_load > 0.78 && per_load < 0.82);
  /* The same chain on GPU 0: local loads. */
  for (int i = 0; i < CHAIN; i++)
    chain[i] = local + 8ull * ((i + 389) % CHAIN);
  assert_int_equal(c.HtoD(local, chain, sizeof(chain)), CUDA_SUCCESS);
  start = local;
  sink = local + N - 8;
  timer_start(&c, &t, NULL);
  assert_int_equal(launch(&c, chase, 1, NULL, chase_params), CUDA_SUCCESS);
  per_load = (timer_us(&c, &t, NULL) - 2.0) / STEPS;
  assert_true(per_load > 0.48 && per_load < 0.52);
  /* A chain that leaves the allocation faults. */
  chain[0] = 16;
  assert_int_equal(c.HtoD(local, chain, sizeof(chain)), CUDA_SUCCESS);
  assert_int_equal(launch(&c, chase, 1, NULL, chase_params), CUDA_ERROR_ILLEGAL_ADDRESS);

  /* A function of another context's module, extra parameters. */
  assert_int_equal(c.CtxSetCurrent(c1), CUDA_SUCCESS);
  assert_int_equal(launch(&c, spin, 1, NULL, spin_params), CUDA_ERROR_INVALID_HANDLE);
  void *extra[] = {NULL};
  assert_int_equal(c.Launch(spin, 1, 1, 1, 1, 1, 1, 0, NULL, spin_params, extra),
                   CUDA_ERROR_INVALID_HANDLE);
  assert_int_equal(c.CtxSetCurrent(c0), CUDA_SUCCESS);
  assert_int_equal(c.Launch(spin, 1, 1, 1, 1, 1, 1, 0, NULL, spin_params, extra),
                   CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.ModuleUnload(m), CUDA_SUCCESS);
  assert_int_equal(launch(&c, spin, 1, NULL, spin_params), CUDA_ERROR_INVALID_HANDLE);
  dlclose(c.h);
}

/* ps_spin holds its stream until the host sets the flag: the work queued behind it is not
 * complete before; once released it runs back to back from the release, and a host that
 * waits without releasing meets the spin's timeout. */
static void test_spin_latch(void **state) {
  (void)state;
  enum { N = MIB };
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0);
  CUdeviceptr a = dalloc(&c, c0, N), b = dalloc(&c, c0, N);
  CUmodule m = NULL;
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  CUfunction spin = kernel(&c, m, PS_KERNEL_SPIN);
  CUstream s = NULL;
  assert_int_equal(c.StreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  void *host = NULL;
  CUdeviceptr flag = 0;
  assert_int_equal(c.HostAlloc(&host, 64, 0x3), CUDA_SUCCESS);
  assert_int_equal(c.HostDevicePointer(&flag, host, 0), CUDA_SUCCESS);
  volatile int *word = host;
  unsigned long long timeout = 30000000000ull; /* 30 s, as the bench worker's */
  void *params[] = {&flag, &timeout};
  timer t = timer_new(&c);
  float ms = 0;

  /* Released by the host: events behind the spin complete, the copies are timed alone. */
  *word = 0;
  assert_int_equal(launch(&c, spin, 1, s, params), CUDA_SUCCESS);
  timer_start(&c, &t, s);
  for (int i = 0; i < 4; i++)
    assert_int_equal(c.MemcpyAsync(b, a, N, s), CUDA_SUCCESS);
  assert_int_equal(c.EventRecord(t.stop, s), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, t.start, t.stop), CUDA_ERROR_NOT_READY); /* still held */
  *word = 1;
  assert_int_equal(c.EventSync(t.stop), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, t.start, t.stop), CUDA_SUCCESS);
  assert_near(ms * 1e3 / 4, model_us(2.0, N, 1500));

  /* Never released, with the start event before the spin: the host's wait lasts the timeout
   * and the timing shows it. */
  *word = 0;
  timer_start(&c, &t, s);
  assert_int_equal(launch(&c, spin, 1, s, params), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyAsync(b, a, N, s), CUDA_SUCCESS);
  assert_int_equal(c.EventRecord(t.stop, s), CUDA_SUCCESS);
  assert_int_equal(c.StreamSync(s), CUDA_SUCCESS);
  assert_int_equal(c.Elapsed(&ms, t.start, t.stop), CUDA_SUCCESS);
  assert_true(ms >= 30000.0f && ms < 30001.0f);

  /* A flag that is not memory a kernel on GPU 0 may read faults at launch. */
  flag = 16;
  assert_int_equal(launch(&c, spin, 1, s, params), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(c.FreeHost(host), CUDA_SUCCESS);
  dlclose(c.h);
}

static uint16_t enc(float v, bool bf16) {
  return bf16 ? ps__fake_float_to_bf16(v) : ps__fake_float_to_half(v);
}

/* ps_oneshot_{f16,bf16}: 4 ranks, inputs on GPUs 0-3, all outputs on GPU 0 (one launch of
 * grid_y = 4 virtual ranks); elements 0 and 1 check round-to-nearest-even. */
static void oneshot_case(cu *c, CUfunction f, bool bf16, const CUdeviceptr *in,
                         const CUdeviceptr *out) {
  enum { COUNT = 4096 };
  static uint16_t host[COUNT], got[COUNT];
  const float big = bf16 ? 256 : 2048;
  for (int r = 0; r < 4; r++) {
    for (int i = 0; i < COUNT; i++)
      host[i] = enc((float)(i % 32 + r), bf16);
    host[0] = host[1] = enc(r == 0 ? big : 0, bf16);
    if (r == 1) host[0] = enc(3, bf16), host[1] = enc(1, bf16);
    assert_int_equal(c->HtoD(in[r], host, sizeof(host)), CUDA_SUCCESS);
  }
  ps_oneshot_args a;
  memset(&a, 0, sizeof(a));
  for (int r = 0; r < 4; r++)
    a.in[r] = in[r], a.out[r] = out[r];
  a.count = COUNT;
  a.ranks = 4;
  void *params[] = {&a};
  assert_int_equal(launch(c, f, 4, NULL, params), CUDA_SUCCESS);
  for (int q = 0; q < 4; q++) {
    assert_int_equal(c->DtoH(got, out[q], sizeof(got)), CUDA_SUCCESS);
    for (int i = 2; i < COUNT; i++)
      assert_int_equal(got[i], enc((float)(4 * (i % 32) + 6), bf16));
    /* big + 3 ties between big + 2 and big + 4: the even mantissa is big + 4. */
    assert_int_equal(got[0], enc(big + 4, bf16));
    assert_int_equal(got[1], enc(big, bf16)); /* big + 1: ties to big */
  }
  a.count = 12;
  assert_int_equal(launch(c, f, 4, NULL, params), CUDA_ERROR_INVALID_VALUE);
  a.count = COUNT;
  a.rank_base = 1;
  assert_int_equal(launch(c, f, 4, NULL, params), CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(launch(c, f, 3, NULL, params), CUDA_SUCCESS);
}

static void test_oneshot(void **state) {
  (void)state;
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext ctx[4];
  CUdeviceptr in[4], out[4];
  for (int r = 0; r < 4; r++)
    ctx[r] = ctx_on(&c, r), in[r] = dalloc(&c, ctx[r], 8192);
  assert_int_equal(c.CtxSetCurrent(ctx[0]), CUDA_SUCCESS);
  for (int r = 0; r < 4; r++)
    out[r] = dalloc(&c, ctx[0], 8192);
  for (int r = 1; r < 4; r++)
    assert_int_equal(c.EnablePeer(ctx[r], 0), CUDA_SUCCESS);
  CUmodule m = NULL;
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  oneshot_case(&c, kernel(&c, m, PS_KERNEL_ONESHOT_F16), false, in, out);
  oneshot_case(&c, kernel(&c, m, PS_KERNEL_ONESHOT_BF16), true, in, out);
  /* The two-shot kernels compute the same sums, rounded the same way. */
  oneshot_case(&c, kernel(&c, m, PS_KERNEL_TWOSHOT_F16), false, in, out);
  oneshot_case(&c, kernel(&c, m, PS_KERNEL_TWOSHOT_BF16), true, in, out);
  /* The encoders agree with NaN, infinity and subnormals. */
  assert_int_equal(ps__fake_float_to_half(65520.0f), 0x7c00);
  assert_int_equal(ps__fake_float_to_half(65504.0f), 0x7bff);
  assert_int_equal(ps__fake_float_to_half(0x1p-24f), 0x0001);
  assert_true(ps__fake_half_to_float(0x0001) == 0x1p-24f);
  assert_int_equal(ps__fake_float_to_half(-1.5f), 0xbe00);
  assert_int_equal(ps__fake_float_to_bf16(-1.5f), 0xbfc0);
  dlclose(c.h);
}

/* ---- capture and graphs ----------------------------------------------------------------- */

/* The barrier epoch is counted in the flags, not passed: 3 launches of 2 virtual ranks x 4
 * blocks captured once and the graph replayed twice leave every (rank, block) epoch at 6 and
 * 6 in each rank's slot of every phase on both ranks; blocks beyond the grid stay at 0. */
static void test_oneshot_epochs_in_graph(void **state) {
  (void)state;
  enum { COUNT = 4096, BLOCKS = 4 };
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0);
  CUstream s = NULL;
  CUmodule m = NULL;
  CUgraph g = NULL;
  CUgraphExec x = NULL;
  assert_int_equal(c.StreamCreate(&s, 0), CUDA_SUCCESS);
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  ps_oneshot_args a;
  memset(&a, 0, sizeof(a));
  a.ranks = 2;
  a.count = COUNT;
  for (int r = 0; r < 2; r++) {
    a.in[r] = dalloc(&c, c0, 2 * COUNT);
    a.out[r] = dalloc(&c, c0, 2 * COUNT);
    a.flags[r] = dalloc(&c, c0, 4096);
    assert_int_equal(c.MemsetD8(a.flags[r], 0, 4096), CUDA_SUCCESS);
  }
  void *params[] = {&a};
  CUfunction f = kernel(&c, m, PS_KERNEL_ONESHOT_F16);
  assert_int_equal(c.BeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  for (int i = 0; i < 3; i++)
    assert_int_equal(c.Launch(f, BLOCKS, 2, 1, 256, 1, 1, 0, s, params, NULL), CUDA_SUCCESS);
  assert_int_equal(c.EndCapture(s, &g), CUDA_SUCCESS);
  assert_int_equal(c.Instantiate(&x, g, 0), CUDA_SUCCESS);
  static uint32_t flags[PS_AR_FLAG_WORDS];
  assert_int_equal(c.DtoH(flags, a.flags[0], sizeof(flags)), CUDA_SUCCESS);
  assert_int_equal(flags[PS_AR_EPOCH_SLOT(0)], 0); /* captured, not run */
  for (int i = 0; i < 2; i++)
    assert_int_equal(c.GraphLaunch(x, s), CUDA_SUCCESS);
  assert_int_equal(c.StreamSync(s), CUDA_SUCCESS);
  for (int r = 0; r < 2; r++) {
    assert_int_equal(c.DtoH(flags, a.flags[r], sizeof(flags)), CUDA_SUCCESS);
    for (int b = 0; b < PS_ONESHOT_MAX_BLOCKS; b++) {
      assert_int_equal(flags[PS_AR_EPOCH_SLOT(b)], b < BLOCKS ? 6 : 0);
      for (int phase = 0; phase < PS_AR_PHASES; phase++)
        for (int q = 0; q < 2; q++)
          assert_int_equal(flags[PS_AR_SLOT(phase, q, b)], b < BLOCKS ? 6 : 0);
    }
  }
  /* More blocks than a rank has epochs for: refused. */
  assert_int_equal(c.Launch(f, PS_ONESHOT_MAX_BLOCKS + 1, 2, 1, 256, 1, 1, 0, s, params, NULL),
                   CUDA_ERROR_INVALID_VALUE);
  assert_int_equal(c.ExecDestroy(x), CUDA_SUCCESS);
  assert_int_equal(c.GraphDestroy(g), CUDA_SUCCESS);
  dlclose(c.h);
}

static void test_capture(void **state) {
  (void)state;
  enum { N = 256 * 1024, OPS = 8 };
  static unsigned char in[N], out[N];
  cu c;
  cu_open(&c, "hgx-h100-8.topo");
  CUcontext c0 = ctx_on(&c, 0);
  CUdeviceptr src = dalloc(&c, c0, N), dst = dalloc(&c, c0, N);
  CUstream s = NULL, side = NULL;
  CUgraph g = NULL;
  CUgraphExec x = NULL;
  CUmodule m = NULL;
  assert_int_equal(c.StreamCreate(&s, 0), CUDA_SUCCESS);
  assert_int_equal(c.StreamCreate(&side, 0), CUDA_SUCCESS);
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  CUfunction copy = kernel(&c, m, PS_KERNEL_COPY);
  timer t = timer_new(&c);
  fill(in, N, 5);
  assert_int_equal(c.HtoD(src, in, N), CUDA_SUCCESS);

  /* The ops on the stream, timed. */
  timer_start(&c, &t, s);
  for (int i = 0; i < OPS; i++)
    assert_int_equal(launch_copy(&c, copy, s, src, dst, N), CUDA_SUCCESS);
  double stream_us = timer_us(&c, &t, s);

  /* Recorded, not run: dst stays zero until the graph is launched. */
  assert_int_equal(c.MemsetD8(dst, 0, N), CUDA_SUCCESS);
  assert_int_equal(c.BeginCapture(NULL, CU_STREAM_CAPTURE_MODE_RELAXED),
                   PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  assert_int_equal(c.BeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  assert_int_equal(c.BeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED),
                   PS_FAKE_CUDA_ERROR_ILLEGAL_STATE);
  for (int i = 0; i < OPS; i++)
    assert_int_equal(launch_copy(&c, copy, s, src, dst, N), CUDA_SUCCESS);
  assert_int_equal(c.EndCapture(s, &g), CUDA_SUCCESS);
  assert_int_equal(c.DtoH(out, dst, N), CUDA_SUCCESS);
  assert_int_equal(out[N - 1], 0);
  assert_int_equal(c.Instantiate(&x, g, 0), CUDA_SUCCESS);
  assert_int_equal(c.GraphDestroy(g), CUDA_SUCCESS); /* the exec keeps its copy */
  timer_start(&c, &t, s);
  assert_int_equal(c.GraphLaunch(x, s), CUDA_SUCCESS);
  double graph_us = timer_us(&c, &t, s);
  assert_int_equal(c.DtoH(out, dst, N), CUDA_SUCCESS);
  assert_memory_equal(in, out, N);
  /* Each op 2 us shorter (at least a quarter of it), 2 us paid once. */
  double op_us = 1.05 * model_us(2, N, 1500);
  assert_near(stream_us, OPS * op_us);
  assert_near(graph_us, 2 + OPS * (op_us / 4 > op_us - 2 ? op_us / 4 : op_us - 2));
  assert_true(graph_us < stream_us / 2);
  assert_int_equal(c.GraphLaunch(x, s), CUDA_SUCCESS); /* replays again */

  /* A second stream joins through an event; synchronising invalidates the capture. */
  CUevent fork = NULL;
  assert_int_equal(c.EventCreate(&fork, 0), CUDA_SUCCESS);
  assert_int_equal(c.BeginCapture(s, 0), CUDA_SUCCESS);
  assert_int_equal(c.EventRecord(fork, s), CUDA_SUCCESS);
  assert_int_equal(c.StreamWaitEvent(side, fork, 0), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyAsync(dst, src, N, side), CUDA_SUCCESS);
  assert_int_equal(c.StreamSync(side), PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  assert_int_equal(c.EndCapture(s, &g), PS_FAKE_CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  assert_null(g);
  assert_int_equal(c.StreamSync(side), CUDA_SUCCESS); /* no longer capturing */
  assert_int_equal(c.EndCapture(s, &g), PS_FAKE_CUDA_ERROR_ILLEGAL_STATE);

  /* An invalid op during capture fails at once; a capture left open goes with its stream. */
  assert_int_equal(c.BeginCapture(s, 0), CUDA_SUCCESS);
  assert_int_equal(launch_copy(&c, copy, s, src + 1, dst, N), CUDA_ERROR_ILLEGAL_ADDRESS);
  assert_int_equal(c.StreamDestroy(s), CUDA_SUCCESS);
  assert_int_equal(c.GraphLaunch(x, side), CUDA_SUCCESS);
  assert_int_equal(c.ExecDestroy(x), CUDA_SUCCESS);
  assert_int_equal(c.ExecDestroy(x), CUDA_ERROR_INVALID_HANDLE);
  assert_int_equal(c.GraphDestroy(g), CUDA_ERROR_INVALID_HANDLE);
  dlclose(c.h);
}

/* ---- NCCL ------------------------------------------------------------------------------- */

typedef struct ranks {
  int n;
  CUcontext ctx[4];
  CUstream s[4];
  CUdeviceptr send[4], recv[4];
  ncclComm_t comm[4];
} ranks;

static void ranks_new(cu *c, nccl *n, ranks *r, int count, size_t bytes) {
  static const int devs[4] = {0, 1, 2, 3};
  r->n = count;
  for (int i = 0; i < count; i++) {
    r->ctx[i] = ctx_on(c, i);
    assert_int_equal(c->StreamCreate(&r->s[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    r->send[i] = dalloc(c, r->ctx[i], bytes);
    r->recv[i] = dalloc(c, r->ctx[i], bytes);
  }
  assert_int_equal(n->InitAll(r->comm, count, devs), ncclSuccess);
}

static void ranks_free(cu *c, nccl *n, ranks *r) {
  for (int i = 0; i < r->n; i++) {
    assert_int_equal(n->Destroy(r->comm[i]), ncclSuccess);
    assert_int_equal(c->StreamDestroy(r->s[i]), CUDA_SUCCESS);
  }
}

/* Fills rank i's send buffer with i + 1 + (e % 8) and returns the all-reduce's ncclResult. */
static ncclResult_t all_reduce(cu *c, nccl *n, ranks *r, size_t count, ncclDataType_t type,
                               bool in_place) {
  static unsigned char host[1 << 20];
  size_t size = type == ncclFloat32 ? 4 : 2;
  for (int i = 0; i < r->n; i++) {
    for (size_t e = 0; e < count; e++) {
      float v = (float)(i + 1 + (int)(e % 8));
      if (type == ncclFloat32)
        memcpy(host + 4 * e, &v, 4);
      else {
        uint16_t h = enc(v, type == ncclBfloat16);
        memcpy(host + 2 * e, &h, 2);
      }
    }
    assert_int_equal(c->HtoD(r->send[i], host, count * size), CUDA_SUCCESS);
    assert_int_equal(c->MemsetD8(r->recv[i], 0, count * size), CUDA_SUCCESS);
  }
  assert_int_equal(n->GroupStart(), ncclSuccess);
  ncclResult_t res = ncclSuccess;
  for (int i = 0; i < r->n; i++) {
    void *recv = (void *)(uintptr_t)(in_place ? r->send[i] : r->recv[i]);
    ncclResult_t ri = n->AllReduce((void *)(uintptr_t)r->send[i], recv, count, type, ncclSum,
                                   r->comm[i], r->s[i]);
    if (res == ncclSuccess) res = ri;
  }
  ncclResult_t end = n->GroupEnd();
  return res != ncclSuccess ? res : end;
}

/* Every rank's result holds sum over ranks of (i + 1 + e % 8). */
static void check_sum(cu *c, ranks *r, size_t count, ncclDataType_t type, bool in_place) {
  static unsigned char host[1 << 20];
  size_t size = type == ncclFloat32 ? 4 : 2;
  for (int i = 0; i < r->n; i++) {
    assert_int_equal(c->DtoH(host, in_place ? r->send[i] : r->recv[i], count * size), 0);
    for (size_t e = 0; e < count; e++) {
      float want = (float)(r->n * (r->n + 1) / 2 + r->n * (int)(e % 8)), got;
      uint16_t h;
      memcpy(&h, host + size * e, 2);
      if (type == ncclFloat32)
        memcpy(&got, host + 4 * e, 4);
      else
        got = type == ncclBfloat16 ? ps__fake_bf16_to_float(h) : ps__fake_half_to_float(h);
      if (got != want) fail_msg("rank %d element %zu: %g, want %g", i, e, got, want);
    }
  }
}

static void test_nccl_sums(void **state) {
  (void)state;
  enum { COUNT = 64 * 1024 };
  cu c;
  nccl n;
  cu_open(&c, "hgx-h100-8.topo");
  nccl_open(&n);
  int version = 0;
  assert_int_equal(n.GetVersion(&version), ncclSuccess);
  assert_int_equal(version, 22809);
  static const ncclDataType_t types[3] = {ncclFloat16, ncclBfloat16, ncclFloat32};
  for (int count = 2; count <= 4; count += 2) {
    ranks r;
    ranks_new(&c, &n, &r, count, COUNT * 4);
    for (int t = 0; t < 3; t++) {
      for (int in_place = 0; in_place < 2; in_place++) {
        assert_int_equal(all_reduce(&c, &n, &r, COUNT, types[t], in_place), ncclSuccess);
        check_sum(&c, &r, COUNT, types[t], in_place);
      }
    }
    /* Outside a group, several ranks from one thread would deadlock in NCCL. */
    assert_int_equal(n.AllReduce((void *)(uintptr_t)r.send[0], (void *)(uintptr_t)r.recv[0], COUNT,
                                 ncclFloat16, ncclSum, r.comm[0], r.s[0]),
                     ncclInvalidUsage);
    /* A group where one rank never posts. */
    assert_int_equal(n.GroupStart(), ncclSuccess);
    assert_int_equal(n.AllReduce((void *)(uintptr_t)r.send[0], (void *)(uintptr_t)r.recv[0], COUNT,
                                 ncclFloat16, ncclSum, r.comm[0], r.s[0]),
                     ncclSuccess);
    assert_int_equal(n.GroupEnd(), ncclInvalidUsage);
    /* Rank 1's stream given to rank 0. */
    CUstream s0 = r.s[0];
    r.s[0] = r.s[1];
    assert_int_equal(all_reduce(&c, &n, &r, COUNT, ncclFloat16, false), ncclInvalidArgument);
    r.s[0] = s0;
    ranks_free(&c, &n, &r);
  }

  /* One rank: a local copy, no group needed; bad arguments. */
  ncclComm_t one = NULL, two[2];
  int dev = 3, dup[2] = {1, 1}, bad[2] = {0, 8};
  assert_int_equal(n.InitAll(&one, 1, &dev), ncclSuccess);
  CUcontext c3 = ctx_on(&c, 3);
  CUdeviceptr buf = dalloc(&c, c3, 1024);
  assert_int_equal(n.AllReduce((void *)(uintptr_t)buf, (void *)(uintptr_t)buf, 256, ncclFloat32,
                               ncclSum, one, NULL),
                   ncclSuccess);
  assert_int_equal(
      n.AllReduce((void *)(uintptr_t)buf, (void *)(uintptr_t)buf, 256, 3, ncclSum, one, NULL),
      ncclInvalidArgument);
  assert_int_equal(n.AllReduce((void *)(uintptr_t)buf, (void *)(uintptr_t)buf, 512, ncclFloat32,
                               ncclSum, one, NULL),
                   ncclInvalidArgument); /* past the allocation */
  assert_int_equal(n.Destroy(one), ncclSuccess);
  assert_int_equal(n.Destroy(one), ncclInvalidArgument);
  assert_int_equal(n.Destroy(NULL), ncclSuccess);
  assert_int_equal(n.InitAll(two, 2, dup), ncclInvalidUsage);
  assert_int_equal(n.InitAll(two, 2, bad), ncclInvalidArgument);
  assert_int_equal(n.InitAll(two, 0, NULL), ncclInvalidArgument);
  assert_int_equal(n.GroupEnd(), ncclInvalidUsage);
  assert_string_equal(n.ErrorString(ncclInvalidUsage),
                      "invalid usage (run with NCCL_DEBUG=WARN for details)");
  assert_string_equal(n.ErrorString(99), "unknown result code");
  /* Communicators left alive are freed at dlclose. */
  assert_int_equal(n.InitAll(two, 2, NULL), ncclSuccess);
  dlclose(n.h);
  dlclose(c.h);
}

/* Modelled time of one fp16 all-reduce of `count` elements on rank 0's stream. */
static double nccl_us(cu *c, nccl *n, ranks *r, size_t count) {
  assert_int_equal(c->CtxSetCurrent(r->ctx[0]), CUDA_SUCCESS);
  timer t = timer_new(c);
  timer_start(c, &t, r->s[0]);
  assert_int_equal(all_reduce(c, n, r, count, ncclFloat16, false), ncclSuccess);
  double us = timer_us(c, &t, r->s[0]);
  assert_int_equal(c->EventDestroy(t.start), CUDA_SUCCESS);
  assert_int_equal(c->EventDestroy(t.stop), CUDA_SUCCESS);
  return us;
}

static void test_nccl_model(void **state) {
  (void)state;
  enum { COUNT = 512 * 1024 }; /* 1 MiB of fp16 */
  cu c;
  nccl n;
  ranks r;
  cu_open(&c, "hgx-h100-8.topo");
  nccl_open(&n);
  unsetenv("NCCL_P2P_DISABLE");
  ranks_new(&c, &n, &r, 2, COUNT * 2);
  /* 8 us + 2 (n - 1) / n x 1 MiB / 382.5 GB/s = 10.7 us */
  double nvlink = nccl_us(&c, &n, &r, COUNT);
  assert_true(nvlink > 10.5 && nvlink < 11.0);
  assert_int_equal(n.Destroy(r.comm[0]), ncclSuccess);
  assert_int_equal(n.Destroy(r.comm[1]), ncclSuccess);

  setenv("NCCL_P2P_DISABLE", "1", 1);
  static const int devs[2] = {0, 1};
  assert_int_equal(n.InitAll(r.comm, 2, devs), ncclSuccess);
  unsetenv("NCCL_P2P_DISABLE");
  /* 20 us + 1 MiB / 25 GB/s = 61.9 us */
  double staged = nccl_us(&c, &n, &r, COUNT);
  assert_true(staged > 60 && staged < 64);
  assert_true(staged > 4 * nvlink);
  check_sum(&c, &r, COUNT, ncclFloat16, false);

  /* Captured on rank 0's stream: nothing happens until the graph runs. */
  CUgraph g = NULL;
  CUgraphExec x = NULL;
  assert_int_equal(c.BeginCapture(r.s[0], CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  assert_int_equal(all_reduce(&c, &n, &r, COUNT, ncclBfloat16, true), ncclSuccess);
  assert_int_equal(c.EndCapture(r.s[0], &g), CUDA_SUCCESS);
  uint16_t first = 0;
  assert_int_equal(c.DtoH(&first, r.send[1], 2), CUDA_SUCCESS);
  assert_int_equal(first, enc(2, true)); /* rank 1's input, untouched */
  assert_int_equal(c.Instantiate(&x, g, 0), CUDA_SUCCESS);
  assert_int_equal(c.GraphLaunch(x, r.s[0]), CUDA_SUCCESS);
  assert_int_equal(c.StreamSync(r.s[0]), CUDA_SUCCESS);
  check_sum(&c, &r, COUNT, ncclBfloat16, true);
  assert_int_equal(c.ExecDestroy(x), CUDA_SUCCESS);
  assert_int_equal(c.GraphDestroy(g), CUDA_SUCCESS);
  ranks_free(&c, &n, &r);
  dlclose(n.h);
  dlclose(c.h);
}

/* ---- faults ----------------------------------------------------------------------------- */

/* fault-corrupt.topo: copies 1 -> 2 flip the byte at 4096 (xor 0x01). */
static void test_faults_async(void **state) {
  (void)state;
  enum { N = 64 * 1024 };
  static unsigned char in[N], out[N];
  cu c;
  cu_open(&c, "fault-corrupt.topo");
  CUcontext c1 = ctx_on(&c, 1), c2 = ctx_on(&c, 2);
  CUdeviceptr a = dalloc(&c, c1, N), b = dalloc(&c, c2, N);
  fill(in, N, 9);
  assert_int_equal(c.HtoD(a, in, N), CUDA_SUCCESS);
  assert_int_equal(c.CtxSetCurrent(c2), CUDA_SUCCESS);
  assert_int_equal(c.MemcpyPeerAsync(b, c2, a, c1, N, NULL), CUDA_SUCCESS);
  assert_int_equal(c.DtoH(out, b, N), CUDA_SUCCESS);
  assert_int_equal(out[4096], in[4096] ^ 0x01);
  out[4096] ^= 0x01;
  assert_memory_equal(in, out, N);
  assert_int_equal(c.MemcpyAsync(b, a, N, NULL), CUDA_SUCCESS);
  assert_int_equal(c.DtoH(out, b, N), CUDA_SUCCESS);
  assert_int_equal(out[4096], in[4096] ^ 0x01);
  assert_int_equal(c.MemcpyAsync(a, b, N, NULL), CUDA_SUCCESS); /* 2 -> 1 is clean */

  /* ps_copy on GPU 2 reading GPU 1, and a one-shot whose input lives on GPU 1. */
  CUmodule m = NULL;
  assert_int_equal(c.ModuleLoad(&m, "fatbin"), CUDA_SUCCESS);
  assert_int_equal(c.EnablePeer(c1, 0), CUDA_SUCCESS);
  assert_int_equal(c.HtoD(a, in, N), CUDA_SUCCESS);
  assert_int_equal(launch_copy(&c, kernel(&c, m, PS_KERNEL_COPY), NULL, a, b, N), CUDA_SUCCESS);
  assert_int_equal(c.DtoH(out, b, N), CUDA_SUCCESS);
  assert_int_equal(out[4096], in[4096] ^ 0x01);
  ps_oneshot_args args;
  memset(&args, 0, sizeof(args));
  args.in[0] = b;
  args.in[1] = a;
  args.out[0] = b;
  args.count = N / 2 / 2;
  args.ranks = 2;
  void *params[] = {&args};
  assert_int_equal(c.MemsetD8(a, 0, N), CUDA_SUCCESS);
  assert_int_equal(c.MemsetD8(b, 0, N), CUDA_SUCCESS);
  assert_int_equal(launch(&c, kernel(&c, m, PS_KERNEL_ONESHOT_F16), 1, NULL, params), CUDA_SUCCESS);
  uint16_t h[N / 4];
  assert_int_equal(c.DtoH(h, b, sizeof(h)), CUDA_SUCCESS);
  for (size_t i = 0; i < N / 4; i++)
    assert_int_equal(h[i], i == 4096 / 2 ? 0x0100 : 0);
  dlclose(c.h);

  /* fault-copy-error.topo: 2 -> 0 fails with CUDA_ERROR_LAUNCH_FAILED, sticky. */
  cu_open(&c, "fault-copy-error.topo");
  CUcontext c0 = ctx_on(&c, 0);
  c2 = ctx_on(&c, 2);
  a = dalloc(&c, c0, N);
  b = dalloc(&c, c2, N);
  assert_int_equal(c.MemcpyPeerAsync(a, c0, b, c2, N, NULL), CUDA_ERROR_LAUNCH_FAILED);
  /* 719 is sticky: the process is poisoned, every later call fails alike. */
  assert_int_equal(c.MemcpyPeerAsync(b, c2, a, c0, N, NULL), CUDA_ERROR_LAUNCH_FAILED);
  dlclose(c.h);
}

/* fault-hang.topo: an asynchronous copy 0 -> 3 never returns; a 200 ms alarm kills the child. */
static void test_hang_async(void **state) {
  (void)state;
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cu c;
    cu_open(&c, "fault-hang.topo");
    CUcontext c0 = ctx_on(&c, 0), c3 = ctx_on(&c, 3);
    CUdeviceptr a = dalloc(&c, c0, 4096), b = dalloc(&c, c3, 4096);
    if (c.MemcpyPeerAsync(a, c0, b, c3, 4096, NULL) != CUDA_SUCCESS) _exit(11);
    struct itimerval soon = {.it_value = {.tv_usec = 200000}};
    setitimer(ITIMER_REAL, &soon, NULL);
    c.MemcpyPeerAsync(b, c3, a, c0, 4096, NULL);
    _exit(12);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status)) fail_msg("child exited with %d, expected to hang", WEXITSTATUS(status));
  assert_int_equal(WTERMSIG(status), SIGALRM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entry_points),    cmocka_unit_test(test_copy_model_nvlink),
      cmocka_unit_test(test_copy_model_pcie), cmocka_unit_test(test_streams_and_events),
      cmocka_unit_test(test_kernels),         cmocka_unit_test(test_spin_latch),
      cmocka_unit_test(test_oneshot),         cmocka_unit_test(test_oneshot_epochs_in_graph),
      cmocka_unit_test(test_capture),         cmocka_unit_test(test_nccl_sums),
      cmocka_unit_test(test_nccl_model),      cmocka_unit_test(test_faults_async),
      cmocka_unit_test(test_hang_async),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
