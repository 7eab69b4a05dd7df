/* Weight bytes from config.json alone, for a directory without safetensors or an index:
 * embeddings (and the LM head unless tied), per layer the attention projections (MLA's
 * low-rank ones for DeepSeek), the gated MLP or every routed and shared expert plus the
 * router, and the norms. Quantized methods shrink the linear weights only; embeddings, head,
 * norms and routers stay at the model's dtype. Biases are left out. Dense Llama-style
 * configs come out exact; for the rest it is an estimate (estimate_note says so). State
 * layers of hybrids are counted as if they were attention layers. */
#include <stdint.h>

#include "model/model_internal.h"

static double attention_weights(const ps_model *m, const ps__model_extra *x) {
  double h = m->hidden_size, heads = m->num_heads;
  if (m->attention == PS_ATTENTION_MLA) {
    double rope = m->qk_rope_head_dim, nope = x->qk_nope_head_dim, v = x->v_head_dim;
    double rank = m->kv_lora_rank, qr = x->q_lora_rank;
    double q = qr > 0 ? h * qr + qr * heads * (nope + rope) : h * heads * (nope + rope);
    double kv = h * (rank + rope) + rank * heads * (nope + v);
    return q + kv + heads * v * h;
  }
  double hd = m->head_dim;
  return 2 * h * heads * hd + 2 * h * m->num_kv_heads * hd; /* q and o, k and v */
}

uint64_t ps__model_estimate_weights(const ps_model *m, const ps__model_extra *x) {
  double h = m->hidden_size, layers = m->num_layers;
  double dtype = m->dtype_bytes > 0 ? m->dtype_bytes : 2;
  double linear_bytes = x->weight_bits > 0 ? x->weight_bits / 8 : dtype;
  double plain = (double)m->vocab_size * h * (m->tied_embeddings ? 1 : 2);
  plain += h + 2 * h * layers; /* final norm, two norms per layer */
  if (m->attention == PS_ATTENTION_MLA) plain += layers * (x->q_lora_rank + m->kv_lora_rank);

  double linear = attention_weights(m, x) * layers;
  double dense_mlp = 3 * h * m->intermediate_size; /* gate, up, down */
  if (m->num_experts > 0) {
    double expert =
        3 * h * (x->moe_intermediate_size ? x->moe_intermediate_size : m->intermediate_size);
    double moe = m->num_experts * expert + x->shared_experts * expert;
    if (x->shared_intermediate_size > 0) moe += 3 * h * x->shared_intermediate_size;
    double dense_layers = x->first_dense_layers < m->num_layers ? x->first_dense_layers : layers;
    linear += dense_layers * dense_mlp + (layers - dense_layers) * moe;
    plain += (layers - dense_layers) * h * m->num_experts; /* router */
  } else {
    linear += layers * dense_mlp;
  }
  double bytes = plain * dtype + linear * linear_bytes;
  return bytes >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)bytes;
}
