#include "verify/spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/spawn.h"

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
  child->pid = -1;
  child->out_fd = child->err_fd = -1;
  char **envp = worker_environment();
  if (!envp) return ENOMEM;
  ps__spawned spawned;
  int rc = ps__spawn_grouped(argv, envp, false, &spawned);
  ps__free(envp);
  child->pid = spawned.pid;
  child->out_fd = spawned.out_fd;
  child->err_fd = spawned.err_fd;
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
