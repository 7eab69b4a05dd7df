/* nvidia-smi's own view of the topology, kept beside peerscope's for the bug report. Run
 * with posix_spawnp (never a shell); stdin and stderr go to /dev/null. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/capture_internal.h"

#define SMI_MAX (1u << 20)

extern char **environ;

char *ps__capture_run_smi(const char *const *args, size_t *len) {
  char *argv[8] = {"nvidia-smi"};
  int argc = 1;
  for (; args[argc - 1] && argc < 7; argc++)
    argv[argc] = (char *)args[argc - 1];
  argv[argc] = NULL;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "nvidia-smi", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return NULL;
  }
  size_t cap = 4096, used = 0;
  char *out = ps__calloc(1, cap + 1);
  while (out) {
    ssize_t n = read(fds[0], out + used, cap - used);
    if (n <= 0) break;
    used += (size_t)n;
    if (used == cap) {
      if (cap >= SMI_MAX) break;
      char *grown = ps__realloc(out, cap * 2 + 1);
      if (!grown) {
        ps__free(out);
        out = NULL;
        break;
      }
      out = grown;
      cap *= 2;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!out || used == 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ps__free(out);
    return NULL;
  }
  out[used] = '\0';
  *len = used;
  return out;
}
