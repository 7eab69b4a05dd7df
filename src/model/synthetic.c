/* ps_model_synthetic: a model known only by its size (--model-params-b / --model-size-gb),
 * e.g. GGUF or .bin weights peerscope does not read. Bytes per parameter as NIM counts them:
 * bf16/fp16 2, fp8 1, int4 0.5. No shape: the planner says what it cannot check. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "model/model_internal.h"

static const struct {
  const char *name;
  double bytes;      /* per parameter */
  const char *dtype; /* of the activations (and default KV cache) */
  const char *quant; /* "" when the weights are in that dtype */
} kinds[] = {{"bf16", 2, "bfloat16", ""},
             {"fp16", 2, "float16", ""},
             {"fp8", 1, "bfloat16", "fp8"},
             {"int4", 0.5, "bfloat16", "int4"}};

ps_status ps__model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                              ps_model *out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_synthetic: out is NULL");
  memset(out, 0, sizeof(*out));
  if (!isfinite(params_b) || params_b < 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "model parameters: expected a positive number of billions (got %g)", params_b);
  if (!isfinite(size_gb) || size_gb < 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "model size: expected a positive number of GB (got %g)", size_gb);
  if (params_b > 0 && size_gb > 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "give the model's parameters or its size in GB, not both");
  if (params_b == 0 && size_gb == 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "model size: give the parameters in billions (with a dtype) or the size in GB");

  int kind = -1;
  if (dtype && *dtype) {
    for (size_t i = 0; i < PS_ARRAY_LEN(kinds) && kind < 0; i++)
      if (strcmp(dtype, kinds[i].name) == 0) kind = (int)i;
    if (kind < 0)
      return ps__fail(ctx, PS_ERR_INVALID_ARG,
                      "unknown dtype '%.40s' (expected bf16, fp16, fp8 or int4)", dtype);
  } else if (params_b > 0) {
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "model parameters: a dtype is needed (bf16, fp16, fp8 or int4)");
  }

  double bytes = params_b > 0 ? params_b * 1e9 * kinds[kind].bytes : size_gb * 1e9;
  if (bytes > (double)PS_MAX_WEIGHT_BYTES || params_b * 1e9 > (double)PS_MAX_PARAMS)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "model size: %g GB is beyond any model", bytes / 1e9);
  out->weight_bytes = (uint64_t)(bytes + 0.5); /* no libm: the library does not link it */
  if (params_b > 0) {
    out->param_count = (uint64_t)(params_b * 1e9 + 0.5);
    out->valid |= PS_MODEL_PARAMS;
    snprintf(out->name, sizeof(out->name), "%gB %s", params_b, kinds[kind].name);
  } else {
    snprintf(out->name, sizeof(out->name), "%g GB", size_gb);
  }
  int k = kind >= 0 ? kind : 0; /* a size alone: assume a 16-bit model for the KV dtype */
  ps__strlcpy(out->dtype, kinds[k].dtype, sizeof(out->dtype));
  ps__strlcpy(out->quantization, kinds[k].quant, sizeof(out->quantization));
  out->dtype_bytes = 2;
  snprintf(out->estimate_note, sizeof(out->estimate_note),
           "size only: no layers or heads known, so the KV cache and TP divisibility cannot be "
           "checked");
  return PS_OK;
}
