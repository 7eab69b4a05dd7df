#include "verify/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"

extern char **environ;

static char **worker_environment(void) {
  size_t count = 0;
  while (environ[count])
    count++;
  char **envp = ps__calloc(count + 2, sizeof(*envp));
  if (!envp) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    if (strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21) == 0) continue;
    if (strncmp(environ[i], "CUDA_DEVICE_ORDER=", 18) == 0) continue;
    envp[n++] = environ[i];
  }
  envp[n++] = "CUDA_DEVICE_ORDER=PCI_BUS_ID";
  envp[n] = NULL;
  return envp;
}

int ps__child_spawn(ps__child *child, char *const argv[]) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  int rc = 0;
  char **envp = NULL;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool have_actions = false, have_attr = false;
  child->pid = -1;
  child->out_fd = child->err_fd = -1;

  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    rc = errno;
    goto fail;
  }
  envp = worker_environment();
  if (!envp) {
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
  /* Own process group: a kill reaches anything the driver may have started. Default signal
   * dispositions: a Python host ignores SIGPIPE, the worker must not inherit that. */
  sigset_t defaults, empty;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  rc = posix_spawn(&child->pid, argv[0], &actions, &attr, argv, envp);
  if (rc != 0) goto fail;
  close(out[1]);
  close(err[1]);
  child->out_fd = out[0];
  child->err_fd = err[0];
  rc = 0;
  goto done;
fail:
  child->pid = -1;
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

static void close_fds(ps__child *child) {
  if (child->out_fd >= 0) close(child->out_fd);
  if (child->err_fd >= 0) close(child->err_fd);
  child->out_fd = child->err_fd = -1;
}

void ps__child_kill(ps__child *child) {
  if (child->pid > 0) {
    kill(-child->pid, SIGKILL);
    kill(child->pid, SIGKILL);
    while (waitpid(child->pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  child->pid = -1;
  close_fds(child);
}

int ps__child_reap(ps__child *child) {
  int status = 0;
  if (child->pid > 0) {
    /* Anything left in its process group (nothing, normally) goes too; before the reap,
     * while the unreaped worker still holds its pid, so the group id cannot be reused. */
    kill(-child->pid, SIGKILL);
    while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  child->pid = -1;
  close_fds(child);
  return status;
}

void ps__wait_status_text(int status, char *out, size_t len) {
  if (WIFEXITED(status))
    snprintf(out, len, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(out, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(out, len, "status %d", status);
}
