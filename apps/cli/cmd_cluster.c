/* peerscope cluster: several machines over an existing Ray cluster. The work (Ray, the
 * gathering, planning across nodes, launching vLLM on Ray) lives in the Python package
 * (python/peerscope/cluster/, docs/cluster.md); this command answers --help itself
 * (cluster_usage.c), then finds a Python that has the package and execs
 * `python -c <bootstrap> ARGS`, passing the arguments through unchanged. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { EXIT_NOT_INSTALLED = 127 };

/* Imports the package (one clear line and 127 when it is missing or broken), then runs
 * peerscope.cluster.main on the arguments; Ray itself is checked there (also 127). */
static const char bootstrap[] =
    "import sys\n"
    "try:\n"
    "    import peerscope.cluster as c\n"
    "except Exception as e:\n"
    "    sys.stderr.write('peerscope cluster: the peerscope Python package (with its '\n"
    "        'cluster module) is not usable in %s: %s; install it there (pip install '\n"
    "        '\"peerscope[cluster]\") or point PEERSCOPE_PYTHON at a Python that has it\\n'\n"
    "        % (sys.executable, e))\n"
    "    sys.exit(127)\n"
    "sys.exit(c.main(sys.argv[1:]))\n";

static bool executable(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* The Python of the virtual environment or prefix this executable was installed into by
 * `pip install .` (PREFIX/lib/pythonX.Y/site-packages/peerscope/bin/peerscope). */
static bool own_python(char *out, size_t len) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return false;
  self[n] = '\0';
  char *site = strstr(self, "/site-packages/peerscope/bin/");
  if (!site) return false;
  *site = '\0';
  char *lib = strrchr(self, '/'); /* /pythonX.Y */
  if (!lib) return false;
  *lib = '\0';
  char *prefix_end = strrchr(self, '/'); /* /lib */
  if (!prefix_end) return false;
  *prefix_end = '\0';
  return snprintf(out, len, "%s/bin/python3", self) < (int)len && executable(out);
}

static bool in_path(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  if (!path || !*path) return false;
  while (*path) {
    size_t dir = strcspn(path, ":");
    if (dir > 0 && snprintf(out, len, "%.*s/%s", (int)dir, path, name) < (int)len &&
        executable(out))
      return true;
    path += dir;
    if (*path == ':') path++;
  }
  return false;
}

int cmd_cluster(int argc, char **argv) {
  int code = cli_cluster_usage(argc, argv);
  if (code >= 0) return code;
  char python[PATH_MAX];
  const char *env = getenv("PEERSCOPE_PYTHON");
  if (env && *env) {
    if (strchr(env, '/') ? !executable(env) : !in_path(env, python, sizeof(python)))
      return cli_fail("cluster", EXIT_NOT_INSTALLED,
                      "PEERSCOPE_PYTHON=%s is not an executable Python", env);
    if (strchr(env, '/')) snprintf(python, sizeof(python), "%s", env);
  } else if (!own_python(python, sizeof(python)) && !in_path("python3", python, sizeof(python))) {
    return cli_fail("cluster", EXIT_NOT_INSTALLED,
                    "needs Python 3 with the peerscope package and Ray (pip install "
                    "\"peerscope[cluster]\"); no python3 in PATH (or set PEERSCOPE_PYTHON)");
  }
  /* python -c BOOTSTRAP ARG...: argv[0] of the child is "-c", sys.argv[1:] our arguments. */
  char **args = calloc((size_t)argc + 3, sizeof(*args));
  if (!args) return cli_fail("cluster", EXIT_INTERNAL, "out of memory");
  args[0] = python;
  args[1] = "-c";
  args[2] = (char *)bootstrap;
  for (int i = 1; i < argc; i++)
    args[i + 2] = argv[i];
  args[argc + 2] = NULL;
  fflush(stdout);
  execv(python, args);
  int err = errno;
  free(args);
  return cli_fail("cluster", EXIT_NOT_INSTALLED, "cannot run %s: %s", python, strerror(err));
}
