/* Where the files shipped with peerscope are: looked up relative to the binary that holds
 * this code (libpeerscope.so, or the executable that linked it statically), so the build
 * tree and any install prefix work without configuration. */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

#ifndef PS_INSTALL_LIBDIR
#define PS_INSTALL_LIBDIR "lib"
#endif

static bool self_dir(char *out, size_t len) {
  Dl_info info;
  if (!dladdr((void *)&ps_bundled_path, &info) || !info.dli_fname) return false;
  char resolved[PATH_MAX];
  if (!realpath(info.dli_fname, resolved)) return false;
  char *slash = strrchr(resolved, '/');
  if (!slash) return false;
  *slash = '\0';
  ps__strlcpy(out, resolved, len);
  return true;
}

ps_status ps_bundled_path(ps_ctx *ctx, ps_bundled what, char *out, size_t len) {
  static const char *const rel[] = {
      [PS_BUNDLED_WORKER] = "peerscope/peerscope-worker",
      [PS_BUNDLED_FAKE_DRIVERS] = "peerscope/fake",
      [PS_BUNDLED_FIXTURES] = "peerscope/fixtures",
      [PS_BUNDLED_MODELS] = "peerscope/models",
  };
  if ((unsigned)what >= PS_ARRAY_LEN(rel))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "unknown bundled item %d", (int)what);
  char dir[PATH_MAX];
  if (!self_dir(dir, sizeof(dir)))
    return ps__fail(ctx, PS_ERR_NOT_FOUND, "cannot tell where libpeerscope is installed");
  /* The library's directory (lib/), or the executable's (bin/) with lib/ and share/ beside. */
  bool data = what == PS_BUNDLED_FIXTURES || what == PS_BUNDLED_MODELS;
  const char *bases[] = {data ? "%s/../share/%s" : "%s/%s",
                         data ? "%s/../../share/%s" : "%s/../lib/%s",
                         data ? "%s/../../../share/%s" : "%s/../" PS_INSTALL_LIBDIR "/%s"};
  for (size_t i = 0; i < PS_ARRAY_LEN(bases); i++) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), bases[i], dir, rel[what]);
    if (access(path, what == PS_BUNDLED_WORKER ? X_OK : R_OK) == 0) {
      char resolved[PATH_MAX];
      ps__strlcpy(out, realpath(path, resolved) ? resolved : path, len);
      return PS_OK;
    }
  }
  return ps__fail(ctx, PS_ERR_NOT_FOUND, "%s not found near %s", rel[what], dir);
}

/* peerscope's cache: `given`, else $PEERSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/peerscope, else
 * ~/.cache/peerscope. */
bool ps__cache_dir(const char *given, char *out, size_t len) {
  const char *dir = given;
  if (dir && *dir) return snprintf(out, len, "%s", dir) < (int)len;
  dir = getenv("PEERSCOPE_CACHE_DIR");
  if (dir && *dir) return snprintf(out, len, "%s", dir) < (int)len;
  dir = getenv("XDG_CACHE_HOME");
  if (dir && *dir) return snprintf(out, len, "%s/peerscope", dir) < (int)len;
  dir = getenv("HOME");
  if (dir && *dir) return snprintf(out, len, "%s/.cache/peerscope", dir) < (int)len;
  return false;
}

void ps__make_dirs(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(path, 0700);
    *p = '/';
  }
  mkdir(path, 0700);
}
