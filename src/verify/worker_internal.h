/* The verification worker's state, shared by its files: worker.c (the mode in the worker-main
 * skeleton, contexts, the ce mode), worker_sm.c (kernels through the peer mapping),
 * worker_ipc.c (exports checked by a second process) and ipc_peer.c (that process). Runs in
 * peerscope-worker only, never linked into libpeerscope. */
#ifndef PS_VERIFY_WORKER_INTERNAL_H
#define PS_VERIFY_WORKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv/cuda.h"
#include "worker/main.h"

/* What a GPU's exports for the ipc mode are (worker_ipc.c). */
typedef struct vw_export {
  int state; /* 0 not tried, 1 ready, -1 failed */
  char error[120];
  /* One slice of the verification size per importing GPU, so that the peer can run ahead
   * without overwriting what this process has yet to check. */
  CUdeviceptr legacy; /* cuMemAlloc_v2 block behind the CUDA IPC handle */
  size_t legacy_size;
  CUipcMemHandle handle;
  CUmemGenericAllocationHandle mem; /* cuMemCreate, POSIX fd exportable */
  CUdeviceptr va;                   /* mem mapped here for this process's own check */
  size_t mem_size;
  int fd; /* the exported descriptor, -1 */
} vw_export;

typedef struct vw_gpu {
  int ctx_state; /* 0 not tried, 1 ready, -1 failed */
  char ctx_error[48];
  CUresult ctx_rc; /* a failure not yet seen by a job (contexts made ahead, in parallel) */
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr src, dst;
  int kernel_state; /* sm mode: 0 not tried, 1 loaded, -1 failed (kernel_error) */
  char kernel_error[120];
  CUmodule module;
  CUfunction copy;
  vw_export exp;
} vw_gpu;

/* The second process of the ipc mode, seen from the worker (worker_ipc.c). */
typedef struct vw_peer {
  int state; /* 0 not started, 1 running, -1 failed (error) */
  char error[160];
  int pid;
  int sock;   /* SOCK_SEQPACKET: one record per line, descriptors with SCM_RIGHTS */
  bool ready; /* its `init ok` arrived */
} vw_peer;

typedef struct vw_worker {
  ps__worker base; /* first: the skeleton's state */
  size_t bytes;
  uint64_t nonce;
  vw_gpu *gpus;
  uint8_t *pattern, *seen;
  bool bench_api, ipc_api; /* ps__cuda_open_bench / ps__cuda_open_ipc resolved */
  char bench_error[160], ipc_error[160];
  bool wants_ipc; /* an I job is on the list: the peer starts early */
  vw_peer peer;
  unsigned char *ipc_sent; /* per job index: its `open` commands went to the peer */
  int ipc_ahead;           /* jobs before this index have been looked at for sending */
  bool contexts_made;      /* the jobs' contexts were created, in parallel, before the first */
  bool ipc_early;          /* --ipc-early 1: with lists to come, start the peer before cuInit */
  bool peer_early;         /* it was: it waits for its GPU list (ps__vw_peer_lists) */
} vw_worker;

#define vw_emit ps__worker_emit

/* The outcome of one leg or job, before it becomes a `result` line. */
typedef struct vw_outcome {
  const char *verdict; /* "ok", "corrupt", "error", "unsupported", "unavailable" */
  long long offset;    /* corrupt: first bad byte */
  unsigned expected, seen;
  char error[48];
  char reason[512]; /* the report keeps 160 bytes: the words that matter come first */
  CUresult rc;      /* the driver error behind "error", CUDA_SUCCESS otherwise */
} vw_outcome;

/* The run's pattern for one job: neither zeros nor a constant, so a copy that did nothing, or
 * copied another job's buffer, cannot pass. mode separates the modes' patterns. */
void ps__vw_fill_pattern(uint8_t *buf, size_t len, uint64_t nonce, int mode, int a, int b);
/* The first differing offset, or -1 when equal. */
long long ps__vw_first_difference(const uint8_t *a, const uint8_t *b, size_t len);
/* Fills out as corrupt at offset (expected from pattern, seen from seen). */
void ps__vw_corrupt(vw_outcome *out, const uint8_t *pattern, const uint8_t *seen, long long offset,
                    const char *leg);
/* Fills out as error: "<what> failed: <CUDA error name>". */
void ps__vw_error(vw_outcome *out, const ps__cuda *cuda, CUresult rc, const char *what);
/* Writes `result <word> a b <verdict> [fields] reason=...`. */
void ps__vw_emit_result(const char *word, int a, int b, const vw_outcome *out, int access,
                        double us);

/* Context and buffers of GPU g, once (worker.c); false after `ctx <g> fail`. */
bool ps__vw_ensure_ctx(vw_worker *w, int g);
/* Creates it, writing `ctx g ok|fail` but no `step` (the caller's); the driver error. */
CUresult ps__vw_create_ctx(vw_worker *w, int g);
/* The contexts of every GPU the jobs use, one thread per GPU (worker_ctx.c); each says
 * `step ctx g` first and `ctx g ok|fail` when done, so a GPU whose context hangs does not hold
 * back the others' lines. Fewer than two GPUs: nothing (ps__vw_ensure_ctx makes it). */
void ps__vw_make_contexts(vw_worker *w);
/* The same for the GPUs needed[] names (the ipc peer's `C<g>` jobs), even one. */
void ps__vw_make_contexts_of(vw_worker *w, const bool *needed);
/* Enables peer access from a's context to b's (already on is fine); false with out filled
 * (unsupported or error). *access = cuDeviceCanAccessPeer. */
bool ps__vw_peer_on(vw_worker *w, int a, int b, int *access, vw_outcome *out);

/* The hooks both modes (the verification's and its ipc peer's) share: --bytes N and
 * --nonce HEX (false for any other name); whether --bytes is in 1..1 GiB; the host buffers
 * (w->gpus, pattern, seen), false after `init fail OUT_OF_MEMORY`; the `init ok` fields. */
bool ps__vw_option(ps__worker *base, const char *name, const char *value);
bool ps__vw_valid(ps__worker *base);
bool ps__vw_alloc_host(vw_worker *w);
void ps__vw_started(ps__worker *base, double init_ms, char *fields, size_t len);

/* Runs a worker of `mode` (the verification's, or its ipc peer's) over fresh default state;
 * the exit code. */
int ps__vw_main(const ps__worker_mode *mode, int argc, char **argv);

/* The sm mode (worker_sm.c): job S<a>.<b>. */
void ps__vw_run_sm(vw_worker *w, int a, int b);
void ps__vw_release_sm(vw_worker *w, int g);

/* The ipc mode (worker_ipc.c): job I<a>.<b>; the peer starts at prepare when wanted. */
void ps__vw_start_peer(vw_worker *w);
/* The GPU list for a peer started before the worker had it (--ipc-early). */
void ps__vw_peer_lists(vw_worker *w);
void ps__vw_run_ipc(vw_worker *w, int index, int a, int b);
void ps__vw_release_ipc(vw_worker *w, int g);
void ps__vw_stop_peer(vw_worker *w);

#endif
