/* The verification's sm mode, job S<a>.<b>: the way vLLM's custom all-reduce and NCCL's kernels
 * move data. With peer access on, the ps_copy kernel (src/worker/kernels/copy.cu) runs on GPU a
 * and stores a's pattern into b's buffer through the peer mapping (checked on b), then loads
 * it back from b into a (checked on a): every byte compared, each leg named. a == b is the
 * local control: one kernel copy within the GPU. Without kernels (no nvcc at build time) the
 * verdict is `unavailable`, never a pass. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "verify/worker_internal.h"
#include "worker/kernels.h"
#include "worker/kernels/kernel_abi.h"

#define MAX_BLOCKS 1024

/* Loads the copy kernel into GPU g's context once; false with kernel_error set. */
static bool kernel_ready(vw_worker *w, int g) {
  vw_gpu *s = &w->gpus[g];
  if (s->kernel_state) return s->kernel_state > 0;
  s->kernel_state = -1;
  size_t count = 0;
  const ps__kernel_image *images = ps__kernel_images(&count);
  const ps__kernel_image *copy = NULL;
  for (size_t i = 0; i < count; i++)
    if (strcmp(images[i].name, "copy") == 0) copy = &images[i];
  if (!copy) {
    ps__strlcpy(s->kernel_error, "not available (built without CUDA kernels: no nvcc)",
                sizeof(s->kernel_error));
    return false;
  }
  if (!w->bench_api) {
    snprintf(s->kernel_error, sizeof(s->kernel_error), "not available (%.100s)", w->bench_error);
    return false;
  }
  CUresult rc = w->base.cuda.CtxSetCurrent(s->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.ModuleLoadData(&s->module, copy->data);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.ModuleGetFunction(&s->copy, s->module, PS_KERNEL_COPY);
  if (rc != CUDA_SUCCESS) {
    snprintf(s->kernel_error, sizeof(s->kernel_error), "loading the copy kernel failed: %s",
             ps__cuda_error_name(&w->base.cuda, rc));
    return false;
  }
  s->kernel_state = 1;
  return true;
}

/* ps_copy on GPU k from src to dst (w->bytes), waited for, then dst read back through check's
 * context and compared with the pattern. */
static CUresult kernel_leg(vw_worker *w, int k, CUdeviceptr src, CUdeviceptr dst, int check,
                           long long *bad) {
  vw_gpu *s = &w->gpus[k];
  unsigned long long count16 = w->bytes / 16;
  unsigned blocks = (unsigned)((count16 + PS_COPY_THREADS - 1) / PS_COPY_THREADS);
  if (blocks > MAX_BLOCKS) blocks = MAX_BLOCKS;
  void *params[] = {&src, &dst, &count16};
  CUresult rc = w->base.cuda.CtxSetCurrent(s->ctx);
  if (rc == CUDA_SUCCESS)
    rc = w->base.cuda.LaunchKernel(s->copy, blocks, 1, 1, PS_COPY_THREADS, 1, 1, 0, NULL, params,
                                   NULL);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSetCurrent(w->gpus[check].ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyDtoH(w->seen, dst, w->bytes);
  if (rc == CUDA_SUCCESS) *bad = ps__vw_first_difference(w->pattern, w->seen, w->bytes);
  return rc;
}

/* The legs of S<a>.<b>; out filled on failure. */
static void sm_legs(vw_worker *w, int a, int b, vw_outcome *out, double *us) {
  vw_gpu *sa = &w->gpus[a], *sb = &w->gpus[b];
  char leg[96];
  long long bad = -1;
  ps__vw_fill_pattern(w->pattern, w->bytes, w->nonce, PS_MODE_SM, a, b);
  CUresult rc = w->base.cuda.CtxSetCurrent(sa->ctx);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyHtoD(sa->src, w->pattern, w->bytes);
  if (rc != CUDA_SUCCESS) return ps__vw_error(out, &w->base.cuda, rc, "upload");
  double t0 = ps__now_ms();
  if (a == b)
    snprintf(leg, sizeof(leg), "kernel copy within GPU%d", a);
  else
    snprintf(leg, sizeof(leg), "kernel on GPU%d storing into GPU%d", a, b);
  rc = kernel_leg(w, a, sa->src, sb->dst, b, &bad);
  if (rc == CUDA_SUCCESS && bad < 0 && a != b) {
    snprintf(leg, sizeof(leg), "kernel on GPU%d loading back from GPU%d", a, b);
    rc = kernel_leg(w, a, sb->dst, sa->dst, a, &bad);
  }
  *us = (ps__now_ms() - t0) * 1e3;
  if (rc != CUDA_SUCCESS)
    ps__vw_error(out, &w->base.cuda, rc, leg);
  else if (bad >= 0)
    ps__vw_corrupt(out, w->pattern, w->seen, bad, leg);
}

void ps__vw_run_sm(vw_worker *w, int a, int b) {
  bool ready = ps__vw_ensure_ctx(w, a);
  ready = ps__vw_ensure_ctx(w, b) && ready;
  vw_emit("step sm %d %d", a, b);
  vw_outcome out = {.verdict = "ok"};
  int access = -1;
  double us = -1;
  if (!ready) {
    int bad_gpu = w->gpus[a].ctx_state < 0 ? a : b;
    out.verdict = "error";
    ps__strlcpy(out.error, w->gpus[bad_gpu].ctx_error, sizeof(out.error));
    snprintf(out.reason, sizeof(out.reason), "context creation on GPU %d failed: %s", bad_gpu,
             out.error);
  } else if (!kernel_ready(w, a)) {
    out.verdict = "unavailable";
    ps__strlcpy(out.reason, w->gpus[a].kernel_error, sizeof(out.reason));
  } else if (w->bytes % 16) {
    out.verdict = "unavailable";
    snprintf(out.reason, sizeof(out.reason),
             "not available (the kernel copies 16 bytes at a time; %zu is not a multiple of 16)",
             w->bytes);
  } else if (a == b || ps__vw_peer_on(w, a, b, &access, &out)) {
    sm_legs(w, a, b, &out, &us);
  }
  ps__vw_emit_result("sm", a, b, &out, access, strcmp(out.verdict, "ok") == 0 ? us : -1);
}

void ps__vw_release_sm(vw_worker *w, int g) {
  vw_gpu *s = &w->gpus[g];
  if (s->kernel_state > 0 && s->module) w->base.cuda.ModuleUnload(s->module);
  s->module = NULL;
  s->kernel_state = 0;
}
