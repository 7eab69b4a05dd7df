/* quantization_config -> the method ("fp8", "awq", ...) and, for the config-only weight
 * estimate, the bits one quantized linear weight takes with its scales. Rough on purpose:
 * exact sizes come from the safetensors headers whenever the files are there. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"

/* An integer member, or `fallback` when absent or of another type (estimates only). */
static int member_int(const json_t *obj, const char *key, int fallback) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) return fallback;
  json_int_t i = json_integer_value(v);
  return i < -1 || i > 64 * 1024 ? fallback : (int)i;
}

static bool member_true(const json_t *obj, const char *key) {
  return json_is_true(json_object_get(obj, key));
}

/* Integer weights packed `bits` to a weight, with a 16-bit scale and a packed zero point per
 * group of `group` weights (GPTQ, AWQ: group 128 by default; -1 = one per output row). */
static double grouped_bits(int bits, int group) {
  if (bits <= 0 || bits > 16) bits = 4;
  if (group == 0) group = 128;
  return bits + (group > 0 ? (16.0 + bits) / group : 0.0);
}

/* compressed-tensors (llm-compressor): config_groups.<first>.weights.{num_bits,group_size}. */
static double compressed_tensors_bits(const json_t *q) {
  const json_t *groups = json_object_get(q, "config_groups");
  const char *key;
  const json_t *group;
  json_object_foreach((json_t *)groups, key, group) {
    const json_t *w = json_object_get(group, "weights");
    int bits = member_int(w, "num_bits", 8);
    int size = member_int(w, "group_size", -1);
    if (bits >= 8) return bits;
    return bits + (size > 0 ? 16.0 / size : 0.0);
  }
  return 8;
}

static double method_bits(const char *method, const json_t *q) {
  if (strstr(method, "fp8")) return 8; /* fp8, fbgemm_fp8, ptpc_fp8: block scales ~0 */
  if (strcmp(method, "awq") == 0 || strcmp(method, "gptq") == 0 ||
      strcmp(method, "auto-round") == 0 || strstr(method, "marlin"))
    return grouped_bits(member_int(q, "bits", member_int(q, "w_bit", 4)),
                        member_int(q, "group_size", member_int(q, "q_group_size", 128)));
  if (strcmp(method, "bitsandbytes") == 0)
    return member_true(q, "load_in_4bit") || member_true(q, "_load_in_4bit") ? 4.5 : 8;
  if (strcmp(method, "compressed-tensors") == 0) return compressed_tensors_bits(q);
  if (strcmp(method, "mxfp4") == 0) return 4.25; /* 8-bit scale per 32 */
  if (strcmp(method, "modelopt") == 0 || strcmp(method, "modelopt_fp4") == 0) {
    const json_t *algo = json_object_get(q, "quant_algo");
    const char *a = json_is_string(algo) ? json_string_value(algo) : "";
    return strstr(a, "FP4") || strstr(method, "fp4") ? 4.5 : 8; /* NVFP4: 8-bit scale per 16 */
  }
  return 0; /* unknown: count the weights at the model's dtype */
}

ps_status ps__model_quant(const ps__cfg *c, ps_model *m, ps__model_extra *x) {
  const char *where = "quantization_config";
  const json_t *q = json_object_get(c->top, where);
  if ((!q || json_is_null(q)) && c->text != c->top) {
    q = json_object_get(c->text, where);
    if (q && !json_is_null(q)) where = "text_config.quantization_config";
  }
  if (!q || json_is_null(q)) return PS_OK;
  if (!json_is_object(q)) return ps__cfg_fail(c, where, "expected an object");
  const json_t *method = json_object_get(q, "quant_method");
  if (method && !json_is_string(method)) {
    char path[64];
    snprintf(path, sizeof(path), "%s.quant_method", where);
    return ps__cfg_fail(c, path, "expected a string");
  }
  ps__strlcpy(m->quantization, method ? json_string_value(method) : "unknown",
              sizeof(m->quantization));
  if (!m->quantization[0]) ps__strlcpy(m->quantization, "unknown", sizeof(m->quantization));
  x->weight_bits = method_bits(m->quantization, q);
  return PS_OK;
}
