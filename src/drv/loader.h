/* Finding and opening driver libraries, and resolving their symbols through one table walk.
 * The only code (with nvml.c and cuda.c) that calls dlopen/dlsym. */
#ifndef PS_DRV_LOADER_H
#define PS_DRV_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#define PS_DRV_MAX_NAMES 4

/* One entry point: the names to try in order (newest ABI first), whether the library is
 * useless without it, and which name resolved (for `doctor` and error messages). */
typedef struct ps__sym {
  void **pfn;
  const char *names[PS_DRV_MAX_NAMES];
  bool required;
  const char *resolved; /* points into names[], NULL if none resolved */
} ps__sym;

typedef struct ps__lib {
  void *handle;
  char path[512]; /* what was opened: a full path or the bare soname */
} ps__lib;

/* Opens the first of `sonames` found, searching $PEERSCOPE_DRIVER_DIR, then `dir` (may be
 * NULL), then the system's default search path. On failure returns false and writes the
 * loader's own text (copied, dlerror() is not kept) to err. */
bool ps__lib_open(ps__lib *lib, const char *const *sonames, const char *dir, char *err,
                  size_t err_len);
/* Opens exactly `path` (a file the user named): no directory search, no fallback. */
bool ps__lib_open_path(ps__lib *lib, const char *path, char *err, size_t err_len);
void ps__lib_close(ps__lib *lib);
/* One symbol of an open library, or NULL (a marker such as the fake driver's). */
void *ps__lib_symbol(const ps__lib *lib, const char *name);

/* Resolves every entry of table with dlsym. Returns false, naming the first missing
 * required symbol in err, when one is missing; optional ones stay NULL. */
bool ps__lib_resolve(ps__lib *lib, ps__sym *table, size_t count, char *err, size_t err_len);

#endif
