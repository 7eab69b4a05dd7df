/* The finding for memory that one process cannot open from another: every transfer within one
 * process passes (the ce mode, and sm where it ran), but the ipc mode fails, so vLLM's workers
 * (one process per GPU) cannot share buffers. The link is fine; the cause is where the
 * processes run: a container without the host's IPC (and PID) namespace, a device cgroup that
 * hides a GPU's device node, or a driver that cannot export. One finding for the machine, not
 * one per pair: the cause is the same for all of them. */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"

#define DOC_NCCL_DOCKER                                                                            \
  "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html#docker"

/* The first failing pair or local control, for the evidence. */
static void first_failure(const ps_report *r, char *out, size_t len) {
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    if (ps__doctor_ipc_only(p)) {
      ps__dset(out, len, "GPU %d -> GPU %d: %s", p->from, p->to, p->ipc.reason);
      return;
    }
  }
  for (int g = 0; g < r->gpu_count; g++)
    if (ps_verdict_failed(r->gpus[g].local_ipc.verdict)) {
      ps__dset(out, len, "GPU %d to itself: %s", g, r->gpus[g].local_ipc.reason);
      return;
    }
}

void ps__check_ipc(ps__doctor *d) {
  const ps_report *r = d->report;
  if (!r->verified || !(r->modes & PS_MODE_BIT(PS_MODE_IPC))) {
    ps__doctor_check(d, "ipc", PS_CHECK_NOT_CHECKED,
                     "memory shared between processes was not tested (ipc mode not run)");
    return;
  }
  int pairs = 0, locals = 0, tested = 0;
  for (int i = 0; i < r->pair_count; i++) {
    pairs += ps__doctor_ipc_only(&r->pairs[i]);
    tested += r->pairs[i].ipc.verdict != PS_VERDICT_NOT_RUN;
  }
  for (int g = 0; g < r->gpu_count; g++)
    locals += r->gpus[g].local_verdict == PS_VERDICT_OK &&
              ps_verdict_failed(r->gpus[g].local_ipc.verdict);
  if (!pairs && !locals) {
    ps__doctor_check(d, "ipc", PS_CHECK_OK,
                     "no pair fails only across processes (%d pair%s tested in the ipc mode)",
                     tested, tested == 1 ? "" : "s");
    return;
  }
  ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "p2p-ipc-failed");
  if (!f) return;
  char first[200] = "";
  first_failure(r, first, sizeof(first));
  PS_DSET(f->title, "GPUs exchange data within one process, but one process cannot open another's "
                    "GPU memory");
  PS_DSET(f->evidence,
          "%d pair%s and %d local control%s pass the copy-engine test (ce) but fail across "
          "processes (ipc: a CUDA IPC handle and a cuMem POSIX file descriptor opened by a second "
          "worker process); first: %s",
          pairs, pairs == 1 ? "" : "s", locals, locals == 1 ? "" : "s", first);
  PS_DSET(f->breaks, "vLLM with tensor parallelism (one worker process per GPU): its custom "
                     "all-reduce cannot open the other workers' buffers and NCCL's P2P transport "
                     "(CUDA IPC or cuMem handles) fails at init or falls back to slow paths");
  PS_DSET(f->fix,
          "run the container in the host's IPC and PID namespaces (docker run --ipc=host "
          "--pid=host; Kubernetes hostIPC: true, hostPID: true), or at least give /dev/shm room "
          "for NCCL's shared-memory path (docker --shm-size=16g; check with df -h /dev/shm); "
          "let the container's device cgroup allow every GPU's /dev/nvidia* node (--gpus all, "
          "not a device list that hides the peers); then peerscope check --refresh. Meanwhile "
          "run vLLM with NCCL_P2P_DISABLE=1 and --disable-custom-all-reduce");
  PS_DSET(f->link, "%s", DOC_NCCL_DOCKER);
  ps__doctor_check(d, "ipc", PS_CHECK_FINDING, "%d pair%s fail only across processes", pairs,
                   pairs == 1 ? "" : "s");
}
