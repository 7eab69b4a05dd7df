#include "core/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

int ps__spawn_grouped(char *const argv[], char *const envp[], bool search_path,
                      ps__spawned *child) {
  return ps__spawn_grouped_in(argv, envp, search_path, false, child);
}

int ps__spawn_grouped_in(char *const argv[], char *const envp[], bool search_path,
                         bool stdin_socket, ps__spawned *child) {
  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  int rc = 0;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool have_actions = false, have_attr = false;
  child->pid = -1;
  child->out_fd = child->err_fd = child->in_fd = -1;
  if (!argv || !argv[0]) return EINVAL;

  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      (stdin_socket && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)) {
    rc = errno;
    goto fail;
  }
  if ((rc = posix_spawn_file_actions_init(&actions)) != 0) goto fail;
  have_actions = true;
  if (stdin_socket)
    posix_spawn_file_actions_adddup2(&actions, in[1], STDIN_FILENO);
  else
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  if ((rc = posix_spawnattr_init(&attr)) != 0) goto fail;
  have_attr = true;
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
  rc = search_path ? posix_spawnp(&child->pid, argv[0], &actions, &attr, argv, envp)
                   : posix_spawn(&child->pid, argv[0], &actions, &attr, argv, envp);
  if (rc != 0) goto fail;
  close(out[1]);
  close(err[1]);
  child->out_fd = out[0];
  child->err_fd = err[0];
  if (stdin_socket) {
    close(in[1]);
    fcntl(in[0], F_SETFL, fcntl(in[0], F_GETFL) | O_NONBLOCK);
    child->in_fd = in[0];
  }
  goto done;
fail:
  child->pid = -1;
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
    if (in[i] >= 0) close(in[i]);
  }
done:
  if (have_actions) posix_spawn_file_actions_destroy(&actions);
  if (have_attr) posix_spawnattr_destroy(&attr);
  return rc;
}
