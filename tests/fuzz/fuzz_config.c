/* libFuzzer target: the config.json parser (what any downloaded model directory holds).
 * It must never crash, leak or overflow; every failure is one located line; a config it
 * accepts has a consistent shape, and the KV formula stays defined on it for any TP,
 * length and sequence count. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ps_model *m) {
  if (m->num_layers < 1 || m->hidden_size < 1 || m->num_heads < 1 || m->num_kv_heads < 1 ||
      m->head_dim < 1 || m->num_heads % m->num_kv_heads != 0 || m->dtype_bytes != 2)
    abort();
  if (m->attention < PS_ATTENTION_FULL || m->attention > PS_ATTENTION_HYBRID) abort();
  if (m->attention_layers < 0 || m->attention_layers > m->num_layers) abort();
  if (m->sliding_layers < 0 || m->sliding_layers > m->attention_layers) abort();
  if ((m->sliding_layers > 0) != (m->sliding_window > 0)) abort();
  if (m->attention == PS_ATTENTION_MLA && m->kv_lora_rank < 1) abort();
  if (m->attention == PS_ATTENTION_SLIDING && m->sliding_layers == 0) abort();
  if (!memchr(m->estimate_note, '\0', sizeof(m->estimate_note)) || !m->estimate_note[0]) abort();
  /* Absurd figures are refused, never accepted to wrap later. */
  if (m->weight_bytes > PS_MAX_WEIGHT_BYTES || m->num_experts > PS_MODEL_MAX_EXPERTS) abort();
  static const uint64_t tokens[] = {1, 16, 4097, 1u << 20, UINT64_MAX};
  for (int tp = 1; tp <= 64; tp *= 2) {
    for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
      uint64_t one = ps_model_kv_bytes(m, tp, 0, tokens[t], 1);
      uint64_t many = ps_model_kv_bytes(m, tp, 1, tokens[t], INT_MAX);
      if (m->attention_layers > 0 && one == 0) abort();
      if (m->attention != PS_ATTENTION_MLA && tp > 1 &&
          one > ps_model_kv_bytes(m, 1, 0, tokens[t], 1))
        abort(); /* more GPUs never need more KV each */
      (void)many;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps_ctx *ctx = ps_ctx_new();
  ps_model m;
  if (!ctx) return 0;
  ps_status st = ps__model_parse_config(ctx, (const char *)data, size, "fuzz.json", &m);
  if (st != PS_OK) {
    const char *err = ps_ctx_error(ctx);
    if (st == PS_ERR_BAD_INPUT && (strncmp(err, "fuzz.json", 9) != 0 || strchr(err, '\n'))) abort();
    if (st != PS_ERR_BAD_INPUT && st != PS_ERR_NO_MEMORY) abort();
  } else {
    check(&m);
  }
  ps_ctx_free(ctx);
  return 0;
}
