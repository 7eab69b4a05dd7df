#include "worker/watchdog.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "worker/spawn.h"

/* Reads what is available on stdout and hands over every complete line; false at end of
 * file. A line longer than the buffer is cut, not split. */
static bool read_lines(ps__watch *w, const ps__watch_ops *ops, void *user) {
  char buf[4096];
  ssize_t got = read(w->child.out_fd, buf, sizeof(buf));
  if (got < 0) return errno == EINTR || errno == EAGAIN;
  if (got == 0) return false;
  for (ssize_t i = 0; i < got; i++) {
    if (buf[i] == '\n') {
      w->line[w->line_len] = '\0';
      if (strcmp(w->line, "done") == 0)
        w->finished = true;
      else
        ops->line(user, w, w->line);
      w->line_len = 0;
    } else if (w->line_len + 1 < sizeof(w->line)) {
      w->line[w->line_len++] = buf[i];
    }
  }
  return true;
}

static bool quitting(ps__watch *w, const ps__watch_ops *ops, void *user) {
  if (!ops->quit || !ops->quit(user, w)) return false;
  ps__worker_kill(&w->child);
  return true;
}

static void watch(ps__watch *w, const ps__watch_ops *ops, void *user) {
  for (;;) {
    struct pollfd fds[2] = {{w->child.out_fd, POLLIN, 0}, {w->child.err_fd, POLLIN, 0}};
    double left = w->deadline_ms - ps__now_ms();
    int wait_ms = left > 0 ? (int)left + 1 : 0;
    if (ops->quit_poll_ms > 0 && wait_ms > ops->quit_poll_ms) wait_ms = ops->quit_poll_ms;
    int ready = wait_ms > 0 ? poll(fds, 2, wait_ms) : 0;
    if (quitting(w, ops, user)) return;
    if (ready == 0 && ps__now_ms() < w->deadline_ms) continue; /* a short wait for quit */
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      ops->deadline(user, w);
      ps__worker_kill(&w->child);
      return;
    }
    if (fds[1].revents) ps__worker_drain_stderr(&w->child, w->err_tail, sizeof(w->err_tail));
    bool open = !fds[0].revents || read_lines(w, ops, user);
    if (open && w->finished) { /* every answer is in: its teardown is not waited for */
      ps__worker_let_go(&w->child);
      return;
    }
    if (!open) {
      ps__worker_drain_stderr(&w->child, w->err_tail, sizeof(w->err_tail));
      int status = ps__worker_reap(&w->child);
      if (!w->finished) ops->exited(user, w, status);
      return;
    }
    if (quitting(w, ops, user)) return;
  }
}

#define MAX_OPTIONS 16
#define MAX_ENV 8

int ps__watch_start(ps__watch *w, const ps__worker_cmd *cmd) {
  memset(w, 0, sizeof(*w));
  w->child.pid = -1;
  w->child.out_fd = w->child.err_fd = w->child.in_fd = -1;
  bool later = !cmd->gpus || !cmd->jobs;
  char *argv[MAX_OPTIONS + 8];
  int argc = 0;
  argv[argc++] = (char *)cmd->path;
  for (int i = 0; cmd->options && cmd->options[i] && i < MAX_OPTIONS; i++)
    argv[argc++] = (char *)cmd->options[i];
  if (cmd->driver_dir) {
    argv[argc++] = "--driver-dir";
    argv[argc++] = (char *)cmd->driver_dir;
  }
  argv[argc++] = "--gpus";
  argv[argc++] = later ? "-" : (char *)cmd->gpus;
  argv[argc++] = "--jobs";
  argv[argc++] = later ? "-" : (char *)cmd->jobs;
  argv[argc] = NULL;
  /* The worker's extra environment: the fixture it plays, then the caller's entries. */
  char fixture_env[PATH_MAX + 32];
  const char *env[MAX_ENV + 2];
  int envc = 0;
  if (cmd->fixture && *cmd->fixture) {
    snprintf(fixture_env, sizeof(fixture_env), "PEERSCOPE_FIXTURE=%s", cmd->fixture);
    env[envc++] = fixture_env;
  }
  for (int i = 0; cmd->env && cmd->env[i] && i < MAX_ENV; i++)
    env[envc++] = cmd->env[i];
  env[envc] = NULL;
  w->spawn_ms = ps__now_ms();
  return ps__worker_spawn(&w->child, argv, env, cmd->caller_devices, later);
}

/* Writes all of text or nothing useful: the socket is non-blocking and the worker reads only
 * after cuInit, so what does not fit in its buffer now is a failure, never a wait. */
static bool send_all(int fd, const char *text, size_t len) {
  while (len > 0) {
    ssize_t got = send(fd, text, len, MSG_NOSIGNAL);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    text += got;
    len -= (size_t)got;
  }
  return true;
}

bool ps__watch_send_lists(ps__watch *w, const char *gpus, const char *jobs) {
  if (w->child.in_fd < 0) return false;
  size_t need = strlen(gpus) + strlen(jobs) + 2;
  int size = need > (1u << 20) ? 1 << 20 : (int)need + 4096;
  setsockopt(w->child.in_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  bool ok = send_all(w->child.in_fd, gpus, strlen(gpus)) && send_all(w->child.in_fd, "\n", 1) &&
            send_all(w->child.in_fd, jobs, strlen(jobs)) && send_all(w->child.in_fd, "\n", 1);
  close(w->child.in_fd);
  w->child.in_fd = -1;
  return ok;
}

void ps__watch_abandon(ps__watch *w) {
  if (w->child.pid > 0) ps__worker_kill(&w->child);
}

void ps__watch_loop(ps__watch *w, int setup_ms, const ps__watch_ops *ops, void *user) {
  w->deadline_ms = w->spawn_ms + setup_ms;
  watch(w, ops, user);
}

int ps__watch_run(ps__watch *w, const ps__worker_cmd *cmd, int setup_ms, const ps__watch_ops *ops,
                  void *user) {
  int rc = ps__watch_start(w, cmd);
  if (rc != 0) return rc;
  ps__watch_loop(w, setup_ms, ops, user);
  return 0;
}
