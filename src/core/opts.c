/* Option and request structs of any layout a caller was built with: they start with
 * `size_t size` (PS_INIT), and only the fields that fit in it are read or written. */
#include <string.h>

#include "core/internal.h"

ps_status ps__opts_in(ps_ctx *ctx, const void *opts, void *local, size_t local_size,
                      const char *what) {
  memset(local, 0, local_size);
  memcpy(local, &local_size, sizeof(size_t));
  if (!opts) return PS_OK;
  size_t size;
  memcpy(&size, opts, sizeof(size));
  if (size < sizeof(size_t))
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "%s: size is not set (declare it with PS_INIT, which sets size = sizeof)",
                    what);
  memcpy((char *)local + sizeof(size_t), (const char *)opts + sizeof(size_t),
         (size < local_size ? size : local_size) - sizeof(size_t));
  return PS_OK;
}

ps_status ps__opts_out(ps_ctx *ctx, void *out, const void *full, size_t full_size,
                       const char *what) {
  size_t size;
  memcpy(&size, out, sizeof(size));
  if (size < sizeof(size_t))
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "%s: size is not set (declare it with PS_INIT, which sets size = sizeof)",
                    what);
  memcpy((char *)out + sizeof(size_t), (const char *)full + sizeof(size_t),
         (size < full_size ? size : full_size) - sizeof(size_t));
  return PS_OK;
}
