/* Starting a child the safe way for a process that may own CUDA contexts or signal handlers:
 * posix_spawn (never fork), its own process group (a kill reaches everything it starts),
 * stdin from /dev/null, stdout and stderr on pipes, default signal dispositions and an empty
 * mask (a Python host ignores SIGPIPE; the CLI catches SIGINT/SIGTERM: the child must get
 * neither). Used for the verification worker and for vLLM. */
#ifndef PS_CORE_SPAWN_H
#define PS_CORE_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct ps__spawned {
  pid_t pid;  /* also the process group id */
  int out_fd; /* the child's stdout */
  int err_fd; /* the child's stderr */
  int in_fd;  /* the child's stdin (a socket, written with MSG_NOSIGNAL), or -1: /dev/null */
} ps__spawned;

/* Runs argv[0] (searched in PATH when search_path) with envp. Returns an errno value, 0 on
 * success; on failure child->pid is -1 and no descriptor is left open. */
int ps__spawn_grouped(char *const argv[], char *const envp[], bool search_path, ps__spawned *child);
/* The same; with stdin_socket the child's stdin is one end of a stream socket pair and
 * child->in_fd the other (non-blocking), for what the caller knows only after the spawn. */
int ps__spawn_grouped_in(char *const argv[], char *const envp[], bool search_path,
                         bool stdin_socket, ps__spawned *child);

#endif
