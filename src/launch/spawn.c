/* Starting vllm serve: posix_spawnp (argv array, never a shell) in its own process group,
 * so that stopping it reaches every worker it started (multiprocessing children share the
 * group), through core/spawn.c as the worker is, with the caller's PATH and environment. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/spawn.h"
#include "launch/launch_internal.h"

extern char **environ;

static bool overridden(const ps_launch_cmd *cmd, const char *entry) {
  size_t n = strcspn(entry, "=");
  for (int i = 0; i < cmd->envc; i++)
    if (strncmp(cmd->env[i], entry, n) == 0 && cmd->env[i][n] == '=') return true;
  return false;
}

static char **environment(const ps_launch_cmd *cmd) {
  size_t count = 0;
  while (environ[count])
    count++;
  char **envp = ps__calloc(count + (size_t)cmd->envc + 1, sizeof(*envp));
  if (!envp) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < count; i++)
    if (!overridden(cmd, environ[i])) envp[n++] = environ[i];
  for (int i = 0; i < cmd->envc; i++)
    envp[n++] = cmd->env[i];
  envp[n] = NULL;
  return envp;
}

int ps__vllm_spawn(const ps_launch_cmd *cmd, ps__vllm_proc *proc) {
  proc->pid = -1;
  proc->out_fd = proc->err_fd = -1;
  if (cmd->argc < 1 || !cmd->argv[0]) return EINVAL;
  char **envp = environment(cmd);
  if (!envp) return ENOMEM;
  ps__spawned spawned;
  int rc = ps__spawn_grouped(cmd->argv, envp, true, &spawned);
  ps__free(envp);
  proc->pid = spawned.pid;
  proc->out_fd = spawned.out_fd;
  proc->err_fd = spawned.err_fd;
  return rc;
}

void ps__vllm_signal(const ps__vllm_proc *proc, int sig) {
  if (proc->pid > 0) kill(-proc->pid, sig);
}

bool ps__vllm_reaped(ps__vllm_proc *proc, int *status) {
  if (proc->pid <= 0) return true;
  pid_t r = waitpid(proc->pid, status, WNOHANG);
  return r == proc->pid || (r < 0 && errno == ECHILD);
}

void ps__vllm_cleanup(ps__vllm_proc *proc) {
  /* Workers outlive a crashed leader; the group id stays theirs until the last one exits. */
  if (proc->pid > 0) kill(-proc->pid, SIGKILL);
  proc->pid = -1;
  if (proc->out_fd >= 0) close(proc->out_fd);
  if (proc->err_fd >= 0) close(proc->err_fd);
  proc->out_fd = proc->err_fd = -1;
}
