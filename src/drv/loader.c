#include "drv/loader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* Keeps the first failure's text: it names the versioned soname users need to have. */
static bool try_open(ps__lib *lib, const char *path, char *err, size_t err_len) {
  dlerror(); /* clear a stale message */
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    if (!err[0]) snprintf(err, err_len, "%s", why ? why : path);
    return false;
  }
  lib->handle = handle;
  ps__strlcpy(lib->path, path, sizeof(lib->path));
  return true;
}

static bool open_in_dir(ps__lib *lib, const char *dir, const char *const *sonames, char *err,
                        size_t err_len) {
  for (size_t i = 0; sonames[i]; i++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sonames[i]);
    if (try_open(lib, path, err, err_len)) return true;
  }
  return false;
}

bool ps__lib_open(ps__lib *lib, const char *const *sonames, const char *dir, char *err,
                  size_t err_len) {
  memset(lib, 0, sizeof(*lib));
  if (err_len) err[0] = '\0';
  /* An explicit directory is a promise: if it is set and the library is not there, say so
   * rather than silently picking up whatever the system has. */
  const char *env_dir = getenv("PEERSCOPE_DRIVER_DIR");
  if (env_dir && *env_dir) return open_in_dir(lib, env_dir, sonames, err, err_len);
  if (dir && *dir) return open_in_dir(lib, dir, sonames, err, err_len);
  for (size_t i = 0; sonames[i]; i++)
    if (try_open(lib, sonames[i], err, err_len)) return true;
  return false;
}

bool ps__lib_open_path(ps__lib *lib, const char *path, char *err, size_t err_len) {
  memset(lib, 0, sizeof(*lib));
  if (err_len) err[0] = '\0';
  return try_open(lib, path, err, err_len);
}

void *ps__lib_symbol(const ps__lib *lib, const char *name) {
  return lib->handle ? dlsym(lib->handle, name) : NULL;
}

void ps__lib_close(ps__lib *lib) {
  if (lib->handle) dlclose(lib->handle);
  lib->handle = NULL;
}

bool ps__lib_resolve(ps__lib *lib, ps__sym *table, size_t count, char *err, size_t err_len) {
  for (size_t i = 0; i < count; i++) {
    ps__sym *sym = &table[i];
    *sym->pfn = NULL;
    sym->resolved = NULL;
    for (size_t n = 0; n < PS_DRV_MAX_NAMES && sym->names[n]; n++) {
      void *fn = dlsym(lib->handle, sym->names[n]);
      if (fn) {
        *sym->pfn = fn;
        sym->resolved = sym->names[n];
        break;
      }
    }
    if (!sym->resolved && sym->required) {
      snprintf(err, err_len, "%s has no %s", lib->path, sym->names[0]);
      return false;
    }
  }
  return true;
}
