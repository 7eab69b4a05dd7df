#include "worker/spawn.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"

extern char **environ;

ps_status ps__worker_find(ps_ctx *ctx, const char *path, char *out, size_t len) {
  if (!path || !*path) path = getenv("PEERSCOPE_WORKER");
  if (path && *path) {
    ps__strlcpy(out, path, len);
    if (access(out, X_OK) != 0)
      return ps__fail(ctx, PS_ERR_WORKER, "worker %s: %s", out, strerror(errno));
    return PS_OK;
  }
  if (ps_bundled_path(ctx, PS_BUNDLED_WORKER, out, len) == PS_OK) return PS_OK;
  return ps__fail(ctx, PS_ERR_WORKER,
                  "peerscope-worker not found next to libpeerscope (set PEERSCOPE_WORKER)");
}

/* Whether `entry` (NAME=value) sets the same variable as one of extra's. */
static bool overridden(const char *entry, const char *const *extra) {
  for (size_t i = 0; extra && extra[i]; i++) {
    size_t name = strcspn(extra[i], "=");
    if (strncmp(entry, extra[i], name + 1) == 0) return true;
  }
  return false;
}

static char **worker_environment(const char *const *extra, bool caller_devices) {
  size_t count = 0, extra_count = 0;
  while (environ[count])
    count++;
  while (extra && extra[extra_count])
    extra_count++;
  char **envp = ps__calloc(count + extra_count + 2, sizeof(*envp));
  if (!envp) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    bool cuda_devices = strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21) == 0 ||
                        strncmp(environ[i], "CUDA_DEVICE_ORDER=", 18) == 0;
    if ((cuda_devices && !caller_devices) || overridden(environ[i], extra)) continue;
    envp[n++] = environ[i];
  }
  if (!caller_devices) envp[n++] = "CUDA_DEVICE_ORDER=PCI_BUS_ID";
  for (size_t i = 0; i < extra_count; i++)
    envp[n++] = (char *)extra[i];
  envp[n] = NULL;
  return envp;
}

int ps__worker_spawn(ps__spawned *child, char *const argv[], const char *const *extra_env,
                     bool caller_devices, bool stdin_socket) {
  child->pid = -1;
  child->out_fd = child->err_fd = child->in_fd = -1;
  char **envp = worker_environment(extra_env, caller_devices);
  if (!envp) return ENOMEM;
  int rc = ps__spawn_grouped_in(argv, envp, false, stdin_socket, child);
  ps__free(envp);
  return rc;
}

static void close_fds(ps__spawned *child) {
  if (child->out_fd >= 0) close(child->out_fd);
  if (child->err_fd >= 0) close(child->err_fd);
  if (child->in_fd >= 0) close(child->in_fd);
  child->out_fd = child->err_fd = child->in_fd = -1;
}

void ps__worker_kill(ps__spawned *child) {
  if (child->pid > 0) {
    kill(-child->pid, SIGKILL);
    kill(child->pid, SIGKILL);
    while (waitpid(child->pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  child->pid = -1;
  close_fds(child);
}

int ps__worker_reap(ps__spawned *child) {
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

/* The reaper of a worker let go: waits for its exit (not reaping yet, so that its pid and
 * group id stay taken), ends what is left in its group, then reaps it. */
static void *reap_later(void *arg) {
  pid_t pid = (pid_t)(intptr_t)arg;
  siginfo_t info;
  while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  return NULL;
}

void ps__worker_let_go(ps__spawned *child) {
  close_fds(child);
  if (child->pid <= 0) return;
  pthread_t thread;
  pthread_attr_t attr;
  bool detached = pthread_attr_init(&attr) == 0;
  if (detached) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    detached = pthread_create(&thread, &attr, reap_later, (void *)(intptr_t)child->pid) == 0;
    pthread_attr_destroy(&attr);
  }
  if (!detached) reap_later((void *)(intptr_t)child->pid); /* no thread: wait here */
  child->pid = -1;
}

void ps__wait_status_text(int status, char *out, size_t len) {
  if (WIFEXITED(status))
    snprintf(out, len, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(out, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(out, len, "status %d", status);
}

void ps__worker_drain_stderr(const ps__spawned *child, char *tail, size_t len) {
  char buf[512];
  ssize_t got = read(child->err_fd, buf, sizeof(buf) - 1);
  if (got <= 0) return;
  buf[got] = '\0';
  /* keep the last line-ish tail for "worker died" messages */
  char *last = buf;
  for (char *p = buf; *p; p++)
    if (*p == '\n' && p[1]) last = p + 1;
  last[strcspn(last, "\n")] = '\0';
  if (*last) ps__strlcpy(tail, last, len);
}
