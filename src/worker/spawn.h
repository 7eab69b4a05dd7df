/* Starting and stopping a peerscope-worker (the parent's side), on core/spawn.c's one spawn
 * primitive: posix_spawn (never fork: the caller may own a CUDA context), its own process
 * group, the default signal dispositions. */
#ifndef PS_WORKER_SPAWN_H
#define PS_WORKER_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/spawn.h"
#include "peerscope/peerscope.h"

/* The peerscope-worker to run: path (an option) or $PEERSCOPE_WORKER, which must be
 * executable, else the one installed next to libpeerscope. Fails with PS_ERR_WORKER. */
ps_status ps__worker_find(ps_ctx *ctx, const char *path, char *out, size_t len);

/* Spawns argv[0] with CUDA_VISIBLE_DEVICES removed and CUDA_DEVICE_ORDER=PCI_BUS_ID, so the
 * worker sees every GPU in nvidia-smi's order (it finds the GPUs it is given by PCI bus id
 * and touches no other), and with extra_env's NAME=value entries replacing the caller's (a
 * bench worker's NCCL configuration; NULL-terminated, may be NULL). With caller_devices, the
 * caller's two variables are kept instead: the worker sees CUDA as the caller does
 * (ps_report_apply_visible). With stdin_socket, child->in_fd writes to its stdin (a worker
 * started before its GPU and job lists are known reads them there). Returns an errno value,
 * 0 on success; on failure child->pid is -1. */
int ps__worker_spawn(ps__spawned *child, char *const argv[], const char *const *extra_env,
                     bool caller_devices, bool stdin_socket);

/* Kills the worker's whole process group and reaps it. */
void ps__worker_kill(ps__spawned *child);

/* Reaps a worker whose stdout closed (and whatever is left in its group); its wait status. */
int ps__worker_reap(ps__spawned *child);

/* Lets a worker that said `done` finish on its own: its fds are closed at once, and a detached
 * thread reaps it (and its group) when it exits. Its CUDA teardown (contexts, the ipc peer,
 * the driver's file release: about 100 ms on an H200) then overlaps the caller's work instead
 * of adding to it. */
void ps__worker_let_go(ps__spawned *child);

/* Reads what the worker wrote on stderr and keeps its last line in tail (for "the worker
 * died: ..." messages). */
void ps__worker_drain_stderr(const ps__spawned *child, char *tail, size_t len);

/* One-line description of a wait status ("exit 3", "signal 11 (Segmentation fault)"). */
void ps__wait_status_text(int status, char *out, size_t len);

#endif
