/* The context: owns the last error's one-line detail. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

ps_ctx *ps_ctx_new(void) { return ps__calloc(1, sizeof(ps_ctx)); }

void ps_ctx_free(ps_ctx *ctx) {
  if (ctx && ctx->early && ctx->early_free) ctx->early_free(ctx->early);
  ps__free(ctx);
}

const char *ps_ctx_error(const ps_ctx *ctx) { return ctx ? ctx->error : ""; }

ps_status ps__fail(ps_ctx *ctx, ps_status st, const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
    /* One line, always: a driver string with a newline must not break the CLI's output. */
    for (char *p = ctx->error; *p; p++)
      if (*p == '\n' || *p == '\r') *p = ' ';
  }
  return st;
}
