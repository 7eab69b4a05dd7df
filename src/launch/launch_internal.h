/* Pieces of ps_launch_run: the child process and the health check. */
#ifndef PS_LAUNCH_INTERNAL_H
#define PS_LAUNCH_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "peerscope/peerscope.h"

/* logscan.c: a summary with nothing seen yet (every number "not seen"). */
void ps__log_summary_init(ps_log_summary *s);

typedef struct ps__vllm_proc {
  pid_t pid; /* also its process group id */
  int out_fd, err_fd;
} ps__vllm_proc;

/* posix_spawnp of cmd->argv (PATH lookup, never a shell) in a new process group, with the
 * caller's environment plus cmd->env (same names replaced), stdin /dev/null, stdout and
 * stderr on pipes. Returns an errno value (ENOENT: not installed), 0 on success. */
int ps__vllm_spawn(const ps_launch_cmd *cmd, ps__vllm_proc *proc);

/* Sends sig to the whole process group. */
void ps__vllm_signal(const ps__vllm_proc *proc, int sig);

/* Non-blocking reap: true and *status when the leader has exited. */
bool ps__vllm_reaped(ps__vllm_proc *proc, int *status);

/* Kills what is left of the group (workers the leader did not take with it) and closes the
 * pipes. Call after the leader is reaped. */
void ps__vllm_cleanup(ps__vllm_proc *proc);

/* GET http://host:port/health with short timeouts: 1 answered 200, 0 not (yet), -1 error
 * setting up libcurl. */
int ps__health_get(const char *host, int port, int timeout_ms);
void ps__health_global_init(void);
/* False in a build without libcurl (PS_WITH_CURL=OFF, for bare GPU machines). */
bool ps__health_available(void);

#endif
