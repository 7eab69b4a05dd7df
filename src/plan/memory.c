/* The memory model, per GPU, as vLLM accounts it (docs/vllm-memory.md):
 *   weights  = the stage's share of the weights / TP, embeddings on the first stage and the
 *              LM head on the last, plus KV projections replicated when TP > KV heads;
 *   overhead = the profile run's activation peak + non-torch growth (NCCL, all-reduce
 *              buffers) + CUDA graphs where the version subtracts them first;
 *   KV       = CUDA-visible total x gpu_memory_utilization - reserve - weights - overhead. */
#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "plan/plan_internal.h"
#include "plan/vllm.h"

#define MIB (1024ull * 1024ull)

static uint64_t embedding_bytes(const ps_model *m) {
  if (m->vocab_size <= 0 || m->hidden_size <= 0 || m->dtype_bytes <= 0) return 0;
  return ps__mul_u64_sat(ps__mul_u64_sat((uint64_t)m->vocab_size, (uint64_t)m->hidden_size),
                         (uint64_t)m->dtype_bytes);
}

uint64_t ps__stage_weights(const ps_model *m, int tp, int stage, int pp, int layers) {
  uint64_t embed = embedding_bytes(m);
  uint64_t head = m->tied_embeddings ? 0 : embed;
  uint64_t total = m->weight_bytes;
  if (ps__add_u64_sat(embed, head) >= total) /* shape unknown or inconsistent: share evenly */
    embed = head = 0;
  uint64_t body = total - embed - head;
  uint64_t w = m->num_layers > 0 ? ps__mul_u64_sat(body / (uint64_t)m->num_layers, (uint64_t)layers)
                                 : body / (uint64_t)pp;
  if (stage == 0) w = ps__add_u64_sat(w, embed);
  if (stage == pp - 1) w = ps__add_u64_sat(w, head);
  w /= (uint64_t)tp;
  /* K and V projections: with tp > kv heads each GPU holds a whole head (replicated). */
  int kv = m->num_kv_heads > 0 ? m->num_kv_heads : m->num_heads;
  if (kv > 0 && tp > kv && m->hidden_size > 0 && m->head_dim > 0 && m->dtype_bytes > 0) {
    uint64_t per_layer_head =
        ps__mul_u64_sat(ps__mul_u64_sat(2ull * (uint64_t)m->hidden_size, (uint64_t)m->head_dim),
                        (uint64_t)m->dtype_bytes);
    /* each GPU holds 1 head where an even split would give kv/tp of one */
    uint64_t extra =
        ps__mul_u64_sat(ps__mul_u64_sat((uint64_t)layers, per_layer_head), (uint64_t)(tp - kv));
    w = ps__add_u64_sat(w, extra == UINT64_MAX ? extra : extra / (uint64_t)tp);
  }
  return w;
}

/* Fitted on the corpus (tests/fixtures/vllm-logs/regression.json says which case fitted which
 * constant): the profile run's forward peaks in the MLP, ~7.66 bytes per token and unit of
 * intermediate size per rank (the RTX 3090 Llama-3.1-8B runs at 20000 and 29000 tokens); the
 * dummy sampler holds ~28.7 bytes per row and vocabulary entry whatever the TP (logits in fp32,
 * sorted values, int64 indices, probabilities; the 16 GB Qwen2.5-7B AWQ run, 2048 tokens). */
#define MLP_BYTES_PER_TOKEN_UNIT 7.66
#define SAMPLER_BYTES_PER_ENTRY 28.7
#define ACTIVATION_UNKNOWN (1536 * MIB) /* shape unknown: the corpus' peaks are 0.2-2.5 GiB */

static int default_batched(const ps__vllm_setup *s, int *seqs) {
  const ps__vllm_rules *r = s->vllm->rules;
  *seqs = 256;
  if (r->engine == PS__ENGINE_V0) /* chunked prefill on only past 32768 tokens */
    return s->max_model_len > 32768 ? 2048 : s->max_model_len > 2048 ? s->max_model_len : 2048;
  bool large = (double)s->visible >= 70.0 * 1024 * MIB;
  if (r->a100_small && s->gpu_name && strstr(s->gpu_name, "A100")) large = false;
  if (large) *seqs = 1024;
  return large ? 8192 : 2048; /* vllm serve's defaults */
}

static uint64_t activation(const ps_model *m, const ps__vllm_setup *s, int batched, int seqs) {
  if (m->hidden_size <= 0 || m->vocab_size <= 0) return ACTIVATION_UNKNOWN;
  double inter = m->intermediate_size > 0 ? m->intermediate_size : 4.0 * m->hidden_size;
  if (m->num_experts > 0 && m->experts_per_token > 0) inter *= m->experts_per_token;
  double fwd = (double)batched * MLP_BYTES_PER_TOKEN_UNIT * inter / s->tp;
  double sampler = (double)seqs * (double)m->vocab_size * SAMPLER_BYTES_PER_ENTRY;
  return (uint64_t)(fwd > sampler ? fwd : sampler);
}

/* Non-torch memory. Where a version counts its growth since start-up: 0.02-0.10 GiB at TP=1 in
 * the V0 0.7 and V1 logs, 0.21-0.34 GiB at TP=2-4 (NCCL, all-reduce buffers). Where it counts
 * all of it, the CUDA context included (0.6.4, V1 0.8): 0.35 GiB (the RTX 3090 logs). */
static uint64_t non_torch(const ps__vllm_setup *s) {
  uint64_t base = s->vllm->rules->non_torch_all ? 358 * MIB : 61 * MIB;
  return base + (s->tp > 1 ? 200 * MIB : 0);
}

/* CUDA graphs (0.21 on, not eager): the corpus' 0.48 GiB for 28 dense layers, 3.45 GiB for
 * 94 MoE layers at TP=4. */
static uint64_t graphs(const ps_model *m, const ps__vllm_setup *s) {
  if (!s->vllm->rules->graphs_first || s->eager) return 0;
  if (m->num_layers <= 0) return 512 * MIB;
  return (uint64_t)m->num_layers * (m->num_experts > 0 ? 36 : 17) * MIB;
}

void ps__vllm_memory_make(const ps_model *m, const ps__vllm_setup *s, ps__vllm_memory *out) {
  int seqs;
  int batched = default_batched(s, &seqs);
  if (s->batched > 0) batched = s->batched;
  /* the dummy sampler runs min(max_num_batched_tokens, max_num_seqs) rows (gpu_model_runner.py
   * _dummy_run: num_reqs = min(num_tokens, max_num_reqs)); a requested max_num_seqs counts */
  if (s->seqs > 0) seqs = s->seqs;
  if (seqs > batched) seqs = batched;
  out->batched = batched;
  out->profile_seqs = seqs;
  out->activation = activation(m, s, batched, seqs);
  out->non_torch = non_torch(s);
  out->graphs = graphs(m, s);
}

void ps__pp_default_partition(int layers, int pp, int *out) {
  for (int s = 0; s < pp; s++)
    out[s] = layers / pp;
  int rest = layers % pp;
  for (int i = 2; i < rest + 2; i++)
    out[pp - i]++;
}
