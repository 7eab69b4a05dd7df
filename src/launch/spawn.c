/* Starting vllm serve: posix_spawnp (argv array, never a shell) in its own process group,
 * so that stopping it reaches every worker it started (multiprocessing children share the
 * group). Same approach as src/verify/spawn.c, with the caller's PATH and environment. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
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
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  int rc = 0;
  char **envp = NULL;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool have_actions = false, have_attr = false;
  proc->pid = -1;
  proc->out_fd = proc->err_fd = -1;
  if (cmd->argc < 1 || !cmd->argv[0]) return EINVAL;

  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    rc = errno;
    goto fail;
  }
  if (!(envp = environment(cmd))) {
    rc = ENOMEM;
    goto fail;
  }
  if ((rc = posix_spawn_file_actions_init(&actions)) != 0) goto fail;
  have_actions = true;
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  if ((rc = posix_spawnattr_init(&attr)) != 0) goto fail;
  have_attr = true;
  /* Default dispositions and an empty mask: the CLI catches SIGINT/SIGTERM and a Python
   * host ignores SIGPIPE; vLLM must get neither. Own group: Ctrl-C at the terminal reaches
   * only peerscope, which then stops the group in order (SIGTERM, grace, SIGKILL). */
  sigset_t defaults, empty;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  rc = posix_spawnp(&proc->pid, cmd->argv[0], &actions, &attr, cmd->argv, envp);
  if (rc != 0) goto fail;
  close(out[1]);
  close(err[1]);
  proc->out_fd = out[0];
  proc->err_fd = err[0];
  rc = 0;
  goto done;
fail:
  proc->pid = -1;
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
done:
  if (have_actions) posix_spawn_file_actions_destroy(&actions);
  if (have_attr) posix_spawnattr_destroy(&attr);
  ps__free(envp);
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
