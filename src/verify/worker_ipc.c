/* The verification's ipc mode, job I<a>.<b>: the way vLLM runs, one process per GPU. This
 * worker exports GPU b's memory twice, as vLLM's custom all-reduce and NCCL share buffers: a
 * cuMemAlloc_v2 block as a CUDA IPC handle, and a cuMemCreate allocation as a POSIX file
 * descriptor (NCCL's P2P/CUMEM), passed over a unix socket with SCM_RIGHTS. A second worker
 * process, its ipc peer (ipc_peer.c, same process group: the parent's watchdog kills both),
 * opens each on GPU a, writes the job's pattern into it and reads it back with copies (so a
 * failure here is the sharing, not the SM path: that is the sm mode's), and this worker then
 * checks that the bytes landed in its own buffer. a == b is the local control (two processes,
 * one GPU). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "verify/ipc_wire.h"
#include "verify/protocol.h"
#include "verify/worker_internal.h"

extern char **environ;

#define PEER_STOP_MS 2000

/* ---- the peer process ------------------------------------------------------------------- */

static void peer_fail(vw_peer *p, const char *what) {
  if (p->state >= 0) ps__strlcpy(p->error, what, sizeof(p->error));
  p->state = -1;
}

/* --gpus for the peer: the same bus ids, so GPU numbers mean the same in both processes. */
static char *gpu_list(const vw_worker *w) {
  size_t len = 1;
  for (int g = 0; g < w->base.gpu_count; g++)
    len += strlen(w->base.gpus[g].bus_id) + 1;
  char *list = calloc(1, len);
  for (int g = 0; list && g < w->base.gpu_count; g++) {
    if (g) strcat(list, ",");
    strcat(list, w->base.gpus[g].bus_id);
  }
  return list;
}

/* --jobs for the peer: `C<a>` for each GPU a it will open exports on (the ipc jobs' a), so it
 * makes those contexts while this worker runs its ce and sm jobs, then `serve`. */
static char *peer_jobs(const vw_worker *w) {
  char *list = calloc((size_t)w->base.gpu_count + 1, 8);
  bool *on = calloc((size_t)w->base.gpu_count + 1, sizeof(*on));
  for (int j = 0; list && on && j < w->base.job_count; j++) {
    ps__job job;
    if (ps__job_parse(w->base.jobs[j], &job) && job.mode == PS_MODE_IPC && job.a >= 0 &&
        job.a < w->base.gpu_count && !on[job.a]) {
      on[job.a] = true;
      sprintf(list + strlen(list), "C%d,", job.a);
    }
  }
  if (list) strcat(list, "serve");
  free(on);
  return list;
}

void ps__vw_start_peer(vw_worker *w) {
  vw_peer *p = &w->peer;
  int sv[2];
  /* Before the lists are known (ipc_early): `-`, and ps__vw_peer_lists sends them. */
  char bytes[32], nonce[32], *gpus = w->base.gpus ? gpu_list(w) : strdup("-");
  char *jobs = w->base.gpus ? peer_jobs(w) : strdup("-");
  snprintf(bytes, sizeof(bytes), "%zu", w->bytes);
  snprintf(nonce, sizeof(nonce), "%llx", (unsigned long long)w->nonce);
  /* This very executable, by its own name: a leftover peer shows up as peerscope-worker. */
  char self[1024] = "/proc/self/exe";
  ssize_t got = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (got > 0) self[got] = '\0';
  char *argv[] = {self,
                  "--mode",
                  "ipc-peer",
                  "--protocol",
                  "1",
                  "--bytes",
                  bytes,
                  "--nonce",
                  nonce,
                  "--gpus",
                  gpus,
                  "--jobs",
                  jobs,
                  w->base.driver_dir ? "--driver-dir" : NULL,
                  (char *)w->base.driver_dir,
                  NULL};
  if (!gpus || !jobs || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    free(gpus);
    free(jobs);
    return peer_fail(p, "the ipc peer process could not be started (no socket)");
  }
  /* Its stdin and stdout are the socket; stderr stays ours (the parent keeps its tail). Same
   * process group: a watchdog kill takes it too. */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, sv[1], STDOUT_FILENO);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  free(gpus);
  free(jobs);
  if (rc != 0) {
    close(sv[0]);
    char why[160];
    snprintf(why, sizeof(why), "the ipc peer process could not be started: %s", strerror(rc));
    return peer_fail(p, why);
  }
  p->pid = pid;
  p->sock = sv[0];
  p->state = 1;
}

void ps__vw_peer_lists(vw_worker *w) {
  vw_peer *p = &w->peer;
  char *gpus = gpu_list(w), *jobs = peer_jobs(w);
  char *line = gpus && jobs ? malloc(strlen(gpus) + strlen(jobs) + 2) : NULL;
  /* One record per line: the peer reads each with one read() through stdio (ps__worker_run). */
  bool sent = line && p->sock >= 0;
  if (sent) sent = sprintf(line, "%s\n", gpus) > 0 && ps__ipc_send(p->sock, line, -1);
  if (sent) sent = sprintf(line, "%s\n", jobs) > 0 && ps__ipc_send(p->sock, line, -1);
  free(gpus);
  free(jobs);
  free(line);
  if (!sent && p->state > 0) peer_fail(p, "the ipc peer process could not be given its GPUs");
}

/* Reaps the peer, killing it when it does not end by itself within PEER_STOP_MS; its wait
 * status in words. */
static void reap_peer(vw_peer *p, char *how, size_t len) {
  int status = 0;
  double deadline = ps__now_ms() + PEER_STOP_MS;
  pid_t got = 0;
  while ((got = waitpid(p->pid, &status, WNOHANG)) == 0 && ps__now_ms() < deadline)
    usleep(1000);
  if (got == 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
  }
  if (WIFSIGNALED(status))
    snprintf(how, len, "signal %d", WTERMSIG(status));
  else
    snprintf(how, len, "exit %d", WEXITSTATUS(status));
  p->pid = 0;
}

/* The peer's stream ended or failed: it is gone. */
static void peer_lost(vw_peer *p) {
  char how[48], why[160];
  close(p->sock);
  p->sock = -1;
  reap_peer(p, how, sizeof(how));
  snprintf(why, sizeof(why), "the ipc peer process ended (%s)", how);
  peer_fail(p, why);
}

/* Its next protocol line; false when it is gone. */
static bool peer_line(vw_peer *p, char *line, size_t cap) {
  int fd = -1;
  ssize_t n = ps__ipc_recv(p->sock, line, cap, &fd);
  if (fd >= 0) close(fd);
  if (n > 0) return true;
  peer_lost(p);
  return false;
}

/* Waits for the peer's `init ok` (its CUDA is up); false with the reason in p->error. */
static bool peer_ready(vw_peer *p) {
  char line[1024];
  while (p->state > 0 && !p->ready && peer_line(p, line, sizeof(line))) {
    if (strncmp(line, "init ok", 7) == 0) p->ready = true;
    if (strncmp(line, "init fail ", 10) == 0) {
      char why[160];
      snprintf(why, sizeof(why), "the ipc peer process could not start CUDA: %.100s", line + 10);
      peer_fail(p, why);
    }
  }
  return p->state > 0 && p->ready;
}

void ps__vw_stop_peer(vw_worker *w) {
  vw_peer *p = &w->peer;
  if (p->sock < 0) return;
  char line[256], how[48];
  if (ps__ipc_send(p->sock, "quit", -1))
    while (p->ready) { /* until `done` or the end, at most PEER_STOP_MS */
      struct pollfd pfd = {p->sock, POLLIN, 0};
      int fd = -1;
      if (poll(&pfd, 1, PEER_STOP_MS) <= 0 || ps__ipc_recv(p->sock, line, sizeof(line), &fd) <= 0 ||
          strcmp(line, "done") == 0)
        break;
      if (fd >= 0) close(fd);
    }
  close(p->sock);
  p->sock = -1;
  reap_peer(p, how, sizeof(how));
  p->state = 0;
}

/* ---- GPU b's exports -------------------------------------------------------------------- */

static CUresult make_exports(vw_worker *w, int b, const char **what) {
  vw_export *x = &w->gpus[b].exp;
  const ps__cuda *c = &w->base.cuda;
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  prop.location = (CUmemLocation){CU_MEM_LOCATION_TYPE_DEVICE, w->base.gpus[b].ordinal};
  CUmemAccessDesc access = {prop.location, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  size_t granularity = 0;
  x->legacy_size = w->bytes * (size_t)w->base.gpu_count;
  CUresult rc = c->CtxSetCurrent(w->gpus[b].ctx);
  if (rc == CUDA_SUCCESS && (*what = "cuMemAlloc", 1)) rc = c->MemAlloc(&x->legacy, x->legacy_size);
  if (rc == CUDA_SUCCESS && (*what = "cuIpcGetMemHandle", 1))
    rc = c->IpcGetMemHandle(&x->handle, x->legacy);
  if (rc == CUDA_SUCCESS && (*what = "cuMemGetAllocationGranularity", 1))
    rc = c->MemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (rc == CUDA_SUCCESS && granularity == 0) rc = CUDA_ERROR_INVALID_VALUE;
  if (rc == CUDA_SUCCESS)
    x->mem_size = (x->legacy_size + granularity - 1) / granularity * granularity;
  if (rc == CUDA_SUCCESS && (*what = "cuMemCreate", 1))
    rc = c->MemCreate(&x->mem, x->mem_size, &prop, 0);
  if (rc == CUDA_SUCCESS && (*what = "cuMemAddressReserve", 1))
    rc = c->MemAddressReserve(&x->va, x->mem_size, granularity, 0, 0);
  if (rc == CUDA_SUCCESS && (*what = "cuMemMap", 1))
    rc = c->MemMap(x->va, x->mem_size, 0, x->mem, 0);
  if (rc == CUDA_SUCCESS && (*what = "cuMemSetAccess", 1))
    rc = c->MemSetAccess(x->va, x->mem_size, &access, 1);
  if (rc == CUDA_SUCCESS && (*what = "cuMemExportToShareableHandle", 1))
    rc = c->MemExportToShareableHandle(&x->fd, x->mem, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
  return rc;
}

/* GPU b's exports, made once; false with exp.error set. */
static bool exports_ready(vw_worker *w, int b) {
  vw_export *x = &w->gpus[b].exp;
  if (x->state) return x->state > 0;
  const char *what = "";
  CUresult rc = make_exports(w, b, &what);
  x->state = rc == CUDA_SUCCESS ? 1 : -1;
  if (rc != CUDA_SUCCESS)
    snprintf(x->error, sizeof(x->error), "exporting GPU %d's memory: %s failed: %s", b, what,
             ps__cuda_error_name(&w->base.cuda, rc));
  return x->state > 0;
}

void ps__vw_release_ipc(vw_worker *w, int g) {
  vw_export *x = &w->gpus[g].exp;
  const ps__cuda *c = &w->base.cuda;
  if (x->fd >= 0) close(x->fd);
  if (x->va && x->mem_size) c->MemUnmap(x->va, x->mem_size);
  if (x->va) c->MemAddressFree(x->va, x->mem_size);
  if (x->mem) c->MemRelease(x->mem);
  if (x->legacy) c->MemFree(x->legacy);
  memset(x, 0, sizeof(*x));
  x->fd = -1;
}

/* ---- the jobs, pipelined ------------------------------------------------------------------ */

/* Why job I<a>.<b> cannot run here, or NULL; *verdict = "unavailable", "unsupported" or
 * "error"; *access = cuDeviceCanAccessPeer where asked. */
static const char *blocked(vw_worker *w, int a, int b, const char **verdict, int *access, char *why,
                           size_t len) {
  *verdict = "unavailable";
  if (!w->ipc_api) return snprintf(why, len, "not available (%.140s)", w->ipc_error), why;
  *verdict = "error";
  bool ready = ps__vw_ensure_ctx(w, a);
  if (!(ps__vw_ensure_ctx(w, b) && ready)) {
    int g = w->gpus[a].ctx_state < 0 ? a : b;
    return snprintf(why, len, "context creation on GPU %d failed: %s", g, w->gpus[g].ctx_error),
           why;
  }
  if (!peer_ready(&w->peer)) return w->peer.error;
  if (!exports_ready(w, b)) return w->gpus[b].exp.error;
  CUresult rc = a == b ? CUDA_SUCCESS
                       : w->base.cuda.DeviceCanAccessPeer(access, w->gpus[a].dev, w->gpus[b].dev);
  if (rc != CUDA_SUCCESS)
    return snprintf(why, len, "cuDeviceCanAccessPeer failed: %s",
                    ps__cuda_error_name(&w->base.cuda, rc)),
           why;
  if (a != b && !*access) {
    *verdict = "unsupported";
    return snprintf(why, len,
                    "no peer access from GPU %d to GPU %d: another process cannot map its memory",
                    a, b),
           why;
  }
  return NULL;
}

/* Sends job I<a>.<b>'s two `open` commands (the slice of GPU a in GPU b's exports). */
static bool send_opens(vw_worker *w, int a, int b) {
  vw_export *x = &w->gpus[b].exp;
  size_t offset = (size_t)a * w->bytes;
  char cmd[256];
  int n = snprintf(cmd, sizeof(cmd), "open legacy %d %d %zu ", a, b, offset);
  for (int i = 0; i < CU_IPC_HANDLE_SIZE; i++)
    n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%02x", (unsigned char)x->handle.reserved[i]);
  bool ok = ps__ipc_send(w->peer.sock, cmd, -1);
  snprintf(cmd, sizeof(cmd), "open cumem %d %d %zu %zu", a, b, offset, x->mem_size);
  ok = ok && ps__ipc_send(w->peer.sock, cmd, x->fd);
  if (!ok) peer_lost(&w->peer);
  return ok;
}

/* The ipc jobs from index on, up to IPC_WINDOW of them, get their commands now: the peer works
 * through them while this process checks what it finished. The window keeps both sockets'
 * buffers from filling (each side would wait for the other). */
#define IPC_WINDOW 16
static void send_ahead(vw_worker *w, int index) {
  int sent = 0;
  for (int j = index; j < w->base.job_count && j < w->ipc_ahead; j++)
    sent += w->ipc_sent[j];
  for (int j = w->ipc_ahead > index ? w->ipc_ahead : index;
       j < w->base.job_count && sent < IPC_WINDOW && w->peer.state > 0; j++) {
    ps__job job;
    const char *verdict;
    char why[160];
    int access = -1;
    w->ipc_ahead = j + 1;
    if (!ps__job_parse(w->base.jobs[j], &job) || job.mode != PS_MODE_IPC ||
        job.a >= w->base.gpu_count || job.b >= w->base.gpu_count)
      continue;
    if (blocked(w, job.a, job.b, &verdict, &access, why, sizeof(why))) continue;
    w->ipc_sent[j] = send_opens(w, job.a, job.b);
    sent += w->ipc_sent[j];
  }
}

/* The code of a documented sticky error by its name, CUDA_SUCCESS for any other: an error
 * that poisoned the peer poisons this job too, so that the parent starts a fresh worker (and
 * with it a fresh peer) for the jobs left. */
static CUresult sticky_by_name(const vw_worker *w, const char *name) {
  for (CUresult rc = CUDA_ERROR_ILLEGAL_ADDRESS; rc <= CUDA_ERROR_LAUNCH_FAILED; rc++)
    if (ps__cuda_error_sticky(rc) && strcmp(ps__cuda_error_name(&w->base.cuda, rc), name) == 0)
      return rc;
  return CUDA_SUCCESS;
}

/* The peer's answer to one open command of job (a, b); out filled on failure. */
static void peer_answer(vw_worker *w, int a, int b, const char *kind, vw_outcome *out) {
  char line[1024], verdict[32];
  int pa = -1, pb = -1, at = 0;
  while (w->peer.state > 0 && peer_line(&w->peer, line, sizeof(line)) &&
         sscanf(line, "result ipc %d %d %31s %n", &pa, &pb, verdict, &at) != 3)
    ; /* its ctx lines are not for us */
  ps__job_result r;
  if (w->peer.state <= 0 || pa != a || pb != b || !ps__result_parse(verdict, line + at, &r)) {
    *out = (vw_outcome){.verdict = "error"};
    snprintf(out->reason, sizeof(out->reason), "%s: %s", kind,
             w->peer.state <= 0 ? w->peer.error : "the ipc peer's answer was garbled");
  } else if (r.verdict != PS_VERDICT_OK && strcmp(out->verdict, "ok") == 0) {
    *out = (vw_outcome){.verdict = ps_verdict_name(r.verdict),
                        .offset = (long long)r.offset,
                        .expected = r.expected,
                        .seen = r.seen};
    ps__strlcpy(out->error, r.error, sizeof(out->error));
    out->rc = sticky_by_name(w, r.error);
    snprintf(out->reason, sizeof(out->reason), "%s: %s", kind, r.reason);
  }
}

/* The exporter's own look at its slice for GPU a after the peer wrote it. */
static void exporter_check(vw_worker *w, int a, int b, bool legacy, vw_outcome *out) {
  vw_export *x = &w->gpus[b].exp;
  const char *kind = legacy ? "CUDA IPC handle" : "cuMem POSIX fd";
  size_t offset = (size_t)a * w->bytes;
  CUresult rc = w->base.cuda.CtxSetCurrent(w->gpus[b].ctx);
  if (rc == CUDA_SUCCESS)
    rc = w->base.cuda.MemcpyDtoH(w->seen, (legacy ? x->legacy : x->va) + offset, w->bytes);
  long long bad = rc == CUDA_SUCCESS ? ps__vw_first_difference(w->pattern, w->seen, w->bytes) : -1;
  char leg[120];
  snprintf(leg, sizeof(leg), "%s: the exporter on GPU%d reading what GPU%d's process wrote", kind,
           b, a);
  if (rc != CUDA_SUCCESS) ps__vw_error(out, &w->base.cuda, rc, leg);
  if (bad >= 0) ps__vw_corrupt(out, w->pattern, w->seen, bad, leg);
}

void ps__vw_run_ipc(vw_worker *w, int index, int a, int b) {
  send_ahead(w, index);
  vw_emit("step ipc %d %d", a, b);
  vw_outcome out = {.verdict = "ok"};
  int access = -1;
  char why[160];
  double t0 = ps__now_ms();
  const char *reason = blocked(w, a, b, &out.verdict, &access, why, sizeof(why));
  if (reason) {
    ps__strlcpy(out.reason, reason, sizeof(out.reason));
  } else if (!w->ipc_sent[index]) {
    out.verdict = "error";
    ps__strlcpy(out.reason, w->peer.error, sizeof(out.reason));
  } else {
    out.verdict = "ok";
    peer_answer(w, a, b, "CUDA IPC handle", &out);
    peer_answer(w, a, b, "cuMem POSIX fd", &out);
    ps__vw_fill_pattern(w->pattern, w->bytes, w->nonce, PS_MODE_IPC, a, b);
    if (strcmp(out.verdict, "ok") == 0) exporter_check(w, a, b, true, &out);
    if (strcmp(out.verdict, "ok") == 0) exporter_check(w, a, b, false, &out);
  }
  bool ok = strcmp(out.verdict, "ok") == 0;
  ps__vw_emit_result("ipc", a, b, &out, access, ok ? (ps__now_ms() - t0) * 1e3 : -1);
}
