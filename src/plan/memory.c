/* The memory model, per GPU (see docs/plan.md for where each term comes from):
 *   weights  = the stage's share of the weights / TP, embeddings on the first stage and the
 *              LM head on the last, plus KV projections replicated when TP > KV heads;
 *   overhead = CUDA context and other non-torch memory + NCCL and custom all-reduce buffers
 *              + the activation peak of vLLM's profiling run + CUDA graphs;
 *   KV       = total x gpu_memory_utilization - reserve - weights - overhead. */
#include <stdio.h>

#include "core/internal.h"
#include "plan/plan_internal.h"

#define MIB (1024ull * 1024ull)
/* vLLM profiles one batch of max_num_batched_tokens (8192 by default for the OpenAI server). */
#define PROFILE_TOKENS 8192ull
#define SAMPLED_SEQS 256ull /* logits of max_num_seqs (default 256) in fp32 */

static uint64_t embedding_bytes(const ps_model *m) {
  if (m->vocab_size <= 0 || m->hidden_size <= 0 || m->dtype_bytes <= 0) return 0;
  return (uint64_t)m->vocab_size * (uint64_t)m->hidden_size * (uint64_t)m->dtype_bytes;
}

uint64_t ps__stage_weights(const ps_model *m, int tp, int stage, int pp, int layers) {
  uint64_t embed = embedding_bytes(m);
  uint64_t head = m->tied_embeddings ? 0 : embed;
  uint64_t total = m->weight_bytes;
  if (embed + head >= total) embed = head = 0; /* shape unknown or inconsistent: share evenly */
  uint64_t body = total - embed - head;
  uint64_t w =
      m->num_layers > 0 ? body / (uint64_t)m->num_layers * (uint64_t)layers : body / (uint64_t)pp;
  if (stage == 0) w += embed;
  if (stage == pp - 1) w += head;
  w /= (uint64_t)tp;
  /* K and V projections: with tp > kv heads each GPU holds a whole head (replicated). */
  int kv = m->num_kv_heads > 0 ? m->num_kv_heads : m->num_heads;
  if (kv > 0 && tp > kv && m->hidden_size > 0 && m->head_dim > 0 && m->dtype_bytes > 0) {
    uint64_t per_layer_head =
        2ull * (uint64_t)m->hidden_size * (uint64_t)m->head_dim * (uint64_t)m->dtype_bytes;
    /* each GPU holds 1 head where an even split would give kv/tp of one */
    w += (uint64_t)layers * per_layer_head * (uint64_t)(tp - kv) / (uint64_t)tp;
  }
  return w;
}

uint64_t ps__overhead(const ps_model *m, int tp, int world, char *why, size_t why_len) {
  uint64_t context = 512 * MIB; /* CUDA context, cuBLAS workspaces, allocator slack */
  uint64_t comm = world > 1 ? 256 * MIB : 0;
  uint64_t graphs = 512 * MIB;
  uint64_t act = 0;
  if (m->hidden_size > 0 && m->dtype_bytes > 0) {
    uint64_t inter =
        m->intermediate_size > 0 ? (uint64_t)m->intermediate_size : 4ull * (uint64_t)m->hidden_size;
    act = PROFILE_TOKENS * (4ull * (uint64_t)m->hidden_size + 2ull * inter / (uint64_t)tp) *
          (uint64_t)m->dtype_bytes;
    if (m->vocab_size > 0) act += SAMPLED_SEQS * (uint64_t)m->vocab_size * 4ull;
  } else {
    act = 1024 * MIB; /* shape unknown: vLLM's peak is 1-3 GiB for common models */
  }
  uint64_t total = context + comm + graphs + act;
  snprintf(why, why_len,
           "%.2f GiB = CUDA context %.2f + NCCL/all-reduce buffers %.2f + activation peak "
           "%.2f (profiling %llu tokens) + CUDA graphs %.2f",
           total / PS_GIB, context / PS_GIB, comm / PS_GIB, act / PS_GIB,
           (unsigned long long)PROFILE_TOKENS, graphs / PS_GIB);
  return total;
}

void ps__pp_default_partition(int layers, int pp, int *out) {
  for (int s = 0; s < pp; s++)
    out[s] = layers / pp;
  int rest = layers % pp;
  for (int i = 2; i < rest + 2; i++)
    out[pp - i]++;
}
