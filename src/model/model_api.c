/* The public model functions: each result is library memory, released with ps_model_free. */
#include "core/internal.h"
#include "model/model.h"

static ps_status take(ps_status st, ps_model *m, ps_model **out) {
  if (st != PS_OK) {
    ps__free(m);
    return st;
  }
  *out = m;
  return PS_OK;
}

ps_status ps_model_load(ps_ctx *ctx, const char *dir, ps_model **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_load: out is NULL");
  *out = NULL;
  ps_model *m = ps__calloc(1, sizeof(*m));
  if (!m) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  return take(ps__model_load(ctx, dir, m), m, out);
}

ps_status ps_model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                             ps_model **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_synthetic: out is NULL");
  *out = NULL;
  ps_model *m = ps__calloc(1, sizeof(*m));
  if (!m) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  return take(ps__model_synthetic(ctx, params_b, dtype, size_gb, m), m, out);
}

void ps_model_free(ps_model *model) { ps__free(model); }
