/* The ipc mode's second process: `peerscope-worker --mode ipc-peer`, started by a verification
 * worker (worker_ipc.c) with a socket on stdin and stdout (ipc_wire.h). A mode of the
 * worker-main skeleton whose one job, `serve`, answers `open` commands until `quit`: it opens
 * the export on GPU a (cuIpcOpenMemHandle_v2 with lazy peer access; or
 * cuMemImportFromShareableHandle, cuMemAddressReserve, cuMemMap, cuMemSetAccess for GPU a),
 * copies the job's pattern into it from a buffer of its own, reads it back, compares, closes
 * everything and answers with a `result ipc` line. Runs in peerscope-worker only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "verify/ipc_wire.h"
#include "verify/worker.h"
#include "verify/worker_internal.h"

/* A mapped export: where it is, and how to undo it. */
typedef struct mapping {
  bool legacy;
  CUdeviceptr ptr; /* the mapping's base */
  CUmemGenericAllocationHandle mem;
  size_t size;   /* cumem: the mapping's size */
  size_t offset; /* where this job's slice starts */
} mapping;

static vw_worker *self(ps__worker *base) { return (vw_worker *)base; }

/* Opens the export named by the command on GPU a (current); out filled on failure. */
static void open_export(vw_worker *w, int a, const char *cmd, int fd, mapping *m, vw_outcome *out) {
  const ps__cuda *c = &w->base.cuda;
  char hex[2 * CU_IPC_HANDLE_SIZE + 2] = "";
  CUresult rc = CUDA_SUCCESS;
  const char *what = "";
  if (m->legacy) {
    CUipcMemHandle handle;
    memset(&handle, 0, sizeof(handle));
    bool good = sscanf(cmd, "open legacy %*d %*d %zu %129s", &m->offset, hex) == 2 &&
                strlen(hex) == 2 * CU_IPC_HANDLE_SIZE;
    for (int i = 0; good && i < CU_IPC_HANDLE_SIZE; i++) {
      unsigned byte;
      good = sscanf(hex + 2 * i, "%2x", &byte) == 1;
      handle.reserved[i] = (char)byte;
    }
    what = "cuIpcOpenMemHandle";
    rc = good ? c->IpcOpenMemHandle(&m->ptr, handle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS)
              : CUDA_ERROR_INVALID_VALUE;
  } else {
    CUmemAccessDesc access = {{CU_MEM_LOCATION_TYPE_DEVICE, w->base.gpus[a].ordinal},
                              CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    rc = fd >= 0 && sscanf(cmd, "open cumem %*d %*d %zu %zu", &m->offset, &m->size) == 2 &&
                 m->offset < m->size && w->bytes <= m->size - m->offset
             ? CUDA_SUCCESS
             : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS && (what = "cuMemImportFromShareableHandle", 1))
      rc = c->MemImportFromShareableHandle(&m->mem, (void *)(intptr_t)fd,
                                           CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (rc == CUDA_SUCCESS && (what = "cuMemAddressReserve", 1))
      rc = c->MemAddressReserve(&m->ptr, m->size, 0, 0, 0);
    if (rc == CUDA_SUCCESS && (what = "cuMemMap", 1)) rc = c->MemMap(m->ptr, m->size, 0, m->mem, 0);
    if (rc == CUDA_SUCCESS && (what = "cuMemSetAccess", 1))
      rc = c->MemSetAccess(m->ptr, m->size, &access, 1);
  }
  if (rc != CUDA_SUCCESS) ps__vw_error(out, c, rc, what);
}

static void close_export(vw_worker *w, mapping *m) {
  const ps__cuda *c = &w->base.cuda;
  if (m->legacy) {
    if (m->ptr) c->IpcCloseMemHandle(m->ptr);
    return;
  }
  if (m->ptr) {
    c->MemUnmap(m->ptr, m->size);
    c->MemAddressFree(m->ptr, m->size);
  }
  if (m->mem) c->MemRelease(m->mem);
}

/* One copy through the mapping and its check: src -> dst, then dst read to the host. */
static CUresult leg(vw_worker *w, CUdeviceptr dst, CUdeviceptr src, long long *bad) {
  CUresult rc = w->base.cuda.MemcpyDtoD(dst, src, w->bytes);
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.CtxSynchronize();
  if (rc == CUDA_SUCCESS) rc = w->base.cuda.MemcpyDtoH(w->seen, dst, w->bytes);
  if (rc == CUDA_SUCCESS) *bad = ps__vw_first_difference(w->pattern, w->seen, w->bytes);
  return rc;
}

/* Writes the pattern into the export and reads it back; out filled on failure. */
static void check_export(vw_worker *w, int a, int b, const mapping *m, vw_outcome *out) {
  vw_gpu *s = &w->gpus[a];
  char what[120];
  long long bad = -1;
  ps__vw_fill_pattern(w->pattern, w->bytes, w->nonce, PS_MODE_IPC, a, b);
  CUresult rc = w->base.cuda.MemcpyHtoD(s->src, w->pattern, w->bytes);
  snprintf(what, sizeof(what), "GPU%d's process writing into GPU%d's export", a, b);
  CUdeviceptr slice = m->ptr + m->offset;
  if (rc == CUDA_SUCCESS) rc = leg(w, slice, s->src, &bad);
  if (rc == CUDA_SUCCESS && bad < 0) {
    snprintf(what, sizeof(what), "GPU%d's process reading back from GPU%d's export", a, b);
    rc = leg(w, s->dst, slice, &bad);
  }
  if (rc != CUDA_SUCCESS)
    ps__vw_error(out, &w->base.cuda, rc, what);
  else if (bad >= 0)
    ps__vw_corrupt(out, w->pattern, w->seen, bad, what);
}

/* Answers one `open` command. */
static void serve_open(vw_worker *w, const char *cmd, int fd) {
  int a = -1, b = -1;
  char kind[16] = "";
  mapping m = {0};
  vw_outcome out = {.verdict = "ok"};
  double t0 = ps__now_ms();
  if (sscanf(cmd, "open %15s %d %d", kind, &a, &b) != 3 || a < 0 || b < 0 ||
      a >= w->base.gpu_count || b >= w->base.gpu_count ||
      (strcmp(kind, "legacy") != 0 && strcmp(kind, "cumem") != 0)) {
    out.verdict = "error";
    snprintf(out.reason, sizeof(out.reason), "the ipc peer got a bad command");
    return ps__vw_emit_result("ipc", a, b, &out, -1, -1);
  }
  m.legacy = kind[0] == 'l';
  if (!ps__vw_ensure_ctx(w, a)) {
    out.verdict = "error";
    ps__strlcpy(out.error, w->gpus[a].ctx_error, sizeof(out.error));
    snprintf(out.reason, sizeof(out.reason),
             "context creation on GPU %d in the ipc peer failed: %s", a, out.error);
    return ps__vw_emit_result("ipc", a, b, &out, -1, -1);
  }
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[a].ctx);
  if (rc != CUDA_SUCCESS) ps__vw_error(&out, &w->base.cuda, rc, "cuCtxSetCurrent");
  if (rc == CUDA_SUCCESS) open_export(w, a, cmd, fd, &m, &out);
  if (strcmp(out.verdict, "ok") == 0) check_export(w, a, b, &m, &out);
  close_export(w, &m);
  ps__vw_emit_result("ipc", a, b, &out, -1, (ps__now_ms() - t0) * 1e3);
}

static bool run(ps__worker *base, int index, const char *token) {
  (void)index;
  vw_worker *w = self(base);
  if (token[0] == 'C') { /* contexts to make ahead: all the C tokens at once, in parallel */
    char *end = NULL;
    long g = strtol(token + 1, &end, 10);
    if (!end || *end || g < 0 || g >= base->gpu_count) return false;
    if (!w->contexts_made) {
      w->contexts_made = true;
      bool *needed = calloc((size_t)base->gpu_count + 1, sizeof(*needed));
      for (int j = 0; needed && j < base->job_count; j++)
        if (base->jobs[j][0] == 'C' && (g = strtol(base->jobs[j] + 1, NULL, 10)) >= 0 &&
            g < base->gpu_count)
          needed[g] = true;
      if (needed) ps__vw_make_contexts_of(w, needed);
      free(needed);
    }
    return true;
  }
  if (strcmp(token, "serve") != 0) return false;
  char cmd[512];
  for (;;) {
    int fd = -1;
    ssize_t n = ps__ipc_recv(STDIN_FILENO, cmd, sizeof(cmd), &fd);
    if (n > 0 && strncmp(cmd, "open ", 5) == 0) serve_open(self(base), cmd, fd);
    if (fd >= 0) close(fd); /* cuMemImportFromShareableHandle does not take it */
    if (n <= 0 || strcmp(cmd, "quit") == 0) return true;
  }
}

static bool prepare(ps__worker *base) { return ps__vw_alloc_host(self(base)); }

static bool opened(ps__worker *base) {
  vw_worker *w = self(base);
  if (ps__cuda_open_ipc(&base->cuda, w->ipc_error, sizeof(w->ipc_error))) return true;
  ps__worker_emit("init fail DRIVER_UNAVAILABLE %s", w->ipc_error);
  return false;
}

static void release(ps__worker *base) {
  vw_worker *w = self(base);
  for (int g = 0; g < base->gpu_count; g++) {
    vw_gpu *s = &w->gpus[g];
    if (s->ctx_state <= 0) continue;
    base->cuda.CtxSetCurrent(s->ctx);
    if (s->src) base->cuda.MemFree(s->src);
    if (s->dst) base->cuda.MemFree(s->dst);
    base->cuda.DevicePrimaryCtxRelease(s->dev);
  }
}

static void free_host(ps__worker *base) {
  vw_worker *w = self(base);
  free(w->gpus);
  free(w->pattern);
  free(w->seen);
}

static const ps__worker_mode peer_mode = {
    .usage = "peerscope-worker: usage: --mode ipc-peer --gpus BUS,... --jobs [C0,C1,...,]serve "
             "[--bytes N] [--nonce HEX] [--driver-dir DIR]\n"
             "(started by a verification worker with a socket on stdin and stdout)\n",
    .job_word = "ipc peer job",
    .max_gpus = 1024,
    .max_jobs = 1025, /* a C<g> per GPU, then serve */
    .option = ps__vw_option,
    .valid = ps__vw_valid,
    .prepare = prepare,
    .opened = opened,
    .started = ps__vw_started,
    .run = run,
    .release = release,
    .free_host = free_host};

int ps__verify_ipc_peer_main(int argc, char **argv) { return ps__vw_main(&peer_mode, argc, argv); }
