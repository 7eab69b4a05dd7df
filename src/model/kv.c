/* KV cache size per GPU, as vLLM's per-layer KV specs count it (vllm/v1/kv_cache_interface.py):
 * - full attention (FullAttentionSpec): 2 (K and V) x KV heads per GPU x head size x bytes
 *   per token and layer, tokens rounded up to whole blocks of 16 per sequence. KV heads per
 *   GPU = kv_heads / tp, at least 1: QKVParallelLinear replicates the KV heads when
 *   tp > kv_heads, so the per-GPU cache stops shrinking there. A TP that does not divide the
 *   KV heads fails in vLLM; here it rounds up (the planner rejects it separately).
 * - sliding-window layers (SlidingWindowSpec): at most the window, rounded to blocks.
 * - MLA (MLAAttentionSpec): one latent of kv_lora_rank + qk_rope_head_dim per token and
 *   layer, no factor 2, blocks of 64, and not divided by TP: every rank holds the whole
 *   latent.
 * - hybrids: only the attention layers; the fixed-size state of linear-attention and
 *   Mamba layers (MambaSpec) is not counted. */
#include <stdio.h>

#include "core/internal.h"
#include "model/model_internal.h"

static uint64_t mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t blocks_of(uint64_t tokens, uint64_t block) {
  return mul(tokens / block + (tokens % block != 0), block);
}

/* Layers that hold a KV cache; structs built by hand may leave attention_layers 0. */
static int kv_layers(const ps_model *m) {
  if (m->attention_layers > 0)
    return m->attention_layers < m->num_layers ? m->attention_layers : m->num_layers;
  return m->attention == PS_ATTENTION_HYBRID ? 0 : m->num_layers;
}

uint64_t ps_model_kv_bytes(const ps_model *model, int tp, int kv_dtype_bytes, uint64_t tokens,
                           int seqs) {
  const ps_model *m = model;
  if (!m || m->num_layers <= 0 || tp <= 0 || seqs <= 0 || kv_dtype_bytes < 0 || tokens == 0)
    return 0;
  uint64_t bytes = (uint64_t)(kv_dtype_bytes > 0 ? kv_dtype_bytes : m->dtype_bytes);
  if (m->dtype_bytes < 0 || bytes == 0) return 0;

  if (m->attention == PS_ATTENTION_MLA) {
    if (m->kv_lora_rank <= 0 || m->qk_rope_head_dim < 0) return 0;
    uint64_t latent = mul((uint64_t)m->kv_lora_rank + (uint64_t)m->qk_rope_head_dim, bytes);
    uint64_t per_seq = mul(mul(latent, (uint64_t)m->num_layers), blocks_of(tokens, 64));
    return mul(per_seq, (uint64_t)seqs);
  }

  int kv = m->num_kv_heads > 0 ? m->num_kv_heads : m->num_heads;
  if (kv <= 0 || m->head_dim <= 0) return 0;
  uint64_t heads = ((uint64_t)kv + (uint64_t)tp - 1) / (uint64_t)tp; /* at least 1 */
  uint64_t per_token_layer = mul(mul(2 * heads, (uint64_t)m->head_dim), bytes);
  int layers = kv_layers(m);
  int sliding = m->sliding_window > 0 && m->sliding_layers > 0 ? m->sliding_layers : 0;
  if (sliding > layers) sliding = layers;
  uint64_t window = (uint64_t)(m->sliding_window > 0 ? m->sliding_window : 0);
  uint64_t per_seq = add(mul((uint64_t)(layers - sliding), blocks_of(tokens, 16)),
                         mul((uint64_t)sliding, blocks_of(tokens < window ? tokens : window, 16)));
  return mul(mul(per_seq, per_token_layer), (uint64_t)seqs);
}

void ps__model_kv_note(const ps_model *m, char *out, size_t len) {
  int bytes = m->dtype_bytes, layers = kv_layers(m);
  switch (m->attention) {
  case PS_ATTENTION_MLA:
    snprintf(out, len,
             "MLA: (%d latent + %d rope) x %d layers x %d bytes per token, the same on every TP "
             "rank (vLLM keeps the whole latent on each)",
             m->kv_lora_rank, m->qk_rope_head_dim, m->num_layers, bytes);
    return;
  case PS_ATTENTION_HYBRID: {
    int n = snprintf(out, len,
                     "hybrid: only the %d attention layers of %d hold KV (2 x %d KV heads x %d x "
                     "%d bytes per token and layer",
                     layers, m->num_layers, m->num_kv_heads, m->head_dim, bytes);
    if (n > 0 && (size_t)n < len && m->sliding_layers > 0)
      n += snprintf(out + n, len - (size_t)n, ", %d of them windowed to %d tokens",
                    m->sliding_layers, m->sliding_window);
    if (n > 0 && (size_t)n < len)
      snprintf(out + n, len - (size_t)n,
               "); the fixed-size state of the other %d layers is not counted",
               m->num_layers - layers);
    return;
  }
  case PS_ATTENTION_SLIDING:
    if (m->sliding_layers >= layers)
      snprintf(out, len,
               "sliding window: all %d layers keep at most %d tokens; 2 x %d KV heads x %d x %d "
               "bytes per token and layer",
               layers, m->sliding_window, m->num_kv_heads, m->head_dim, bytes);
    else
      snprintf(out, len,
               "sliding window: %d of %d layers keep at most %d tokens, the other %d every "
               "token; 2 x %d KV heads x %d x %d bytes per token and layer",
               m->sliding_layers, layers, m->sliding_window, layers - m->sliding_layers,
               m->num_kv_heads, m->head_dim, bytes);
    return;
  case PS_ATTENTION_FULL:
  default:
    snprintf(out, len, "full attention: 2 x %d layers x %d KV heads x %d x %d bytes per token",
             layers, m->num_kv_heads, m->head_dim, bytes);
    return;
  }
}
