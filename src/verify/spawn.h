/* Starting and stopping the worker process. */
#ifndef PS_VERIFY_SPAWN_H
#define PS_VERIFY_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ps__child {
  pid_t pid;
  int out_fd; /* the worker's stdout */
  int err_fd; /* the worker's stderr */
} ps__child;

/* Spawns argv[0] (posix_spawn, never fork: the caller may own a CUDA context) in its own
 * process group, with CUDA_VISIBLE_DEVICES removed and CUDA_DEVICE_ORDER=PCI_BUS_ID, so the
 * worker sees every GPU in nvidia-smi's order. Returns an errno value, 0 on success. */
int ps__child_spawn(ps__child *child, char *const argv[]);
/* The same with extra NAME=value entries that replace the caller's (the NCCL configuration of
 * a bench worker); extra_env ends with NULL and may be NULL. */
int ps__child_spawn_env(ps__child *child, char *const argv[], const char *const *extra_env);

/* Kills the worker's whole process group and reaps it. */
void ps__child_kill(ps__child *child);

/* Reads what the worker wrote on stderr and keeps its last line in tail (for "the worker
 * died: ..." messages). */
void ps__child_drain_stderr(const ps__child *child, char *tail, size_t len);

/* Reaps an exited worker; returns its wait status. */
int ps__child_reap(ps__child *child);

/* One-line description of a wait status ("exit 3", "signal 11 (Segmentation fault)"). */
void ps__wait_status_text(int status, char *out, size_t len);

#endif
