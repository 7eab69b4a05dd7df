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

/* The profile run's torch peak (docs/vllm-memory.md, "The profile run's peak, from the code"):
 * profile_run holds the dummy forward's output while the dummy sampler runs
 * (gpu_model_runner.py@0.10.1.1:2621-2631), so the peak is the larger of the forward's own peak
 * and the sampler's plus that output. Bytes per row x vocabulary entry of the sampler, counting
 * the bf16 logits the caller holds (2) and Sampler.forward's fp32 copy (4, sampler.py@0.10.1.1:
 * logits.to(torch.float32)):
 *  - sort: sort values 4 + int64 indices 8, while torch sorts 256+ rows with cub's segmented
 *    radix sort: int64 reverse indices 8 + cub's alternate key 4 and value 8 buffers
 *    (topk_topp_sampler.py@0.10.1.1:188, torch SortStable.cu segmented_sort_pairs) = 38;
 *  - FlashInfer: top_k_mask_logits' output 4 + softmax 4 (flashinfer sampling.py 0.2.11 and
 *    0.6.11: top_k_top_p_sampling_from_logits, "top_k_first") = 14;
 *  - Triton: masks in place (topk_topp_triton.py@0.19.1:965-1051), then softmax 4 and
 *    random_sample's exponential noise 4 (topk_topp_sampler.py@0.19.1:93-110, 323) = 14.
 * V0 and V1 0.8 were not read: 28.7, FITTED on v0-24g-qwen25-7b-8k's 1.09 GiB (0.7.3, whose
 * forward the per-token terms below give as 1.03 GiB) and the AWQ case that first set it. */
static const double sampler_bytes_per_entry[] = {[PS__SAMPLER_SORT] = 38.0,
                                                 [PS__SAMPLER_FLASHINFER] = 14.0,
                                                 [PS__SAMPLER_TRITON] = 14.0,
                                                 [PS__SAMPLER_V0_FITTED] = 28.7};
#define TRITON_MIN_ROWS 8 /* fewer rows take the sort (topk_topp_sampler.py@0.19.1:251) */
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

/* Bytes per token of one decoder layer at its peak, per TP rank, in the activation dtype. The
 * layer's input is normalised in place (fused_add_rms_norm, layernorm.py) and stays alive next
 * to the residual; then either attention (qkv, attention output, o_proj output) or the MLP
 * (gate_up, SiluAndMul's output, down_proj's output; llama.py/qwen2.py LlamaMLP.forward keeps
 * gate_up referenced until it returns). MoE: fused_experts_impl's cache13 (top_k x max(2I, H)),
 * cache2 (top_k x I) and the output (H) per token of a chunk of VLLM_FUSED_MOE_CHUNK_SIZE
 * (32768) tokens (fused_moe.py@0.10.1.1:1509-1560), plus the router's logits and top-k ids. */
static double layer_bytes_per_token(const ps_model *m, int tp) {
  double h = m->hidden_size, d = m->dtype_bytes > 0 ? m->dtype_bytes : 2;
  double inter = (m->intermediate_size > 0 ? m->intermediate_size : 4.0 * h) / tp;
  int heads = m->num_heads > 0 ? m->num_heads : 1;
  int kv = m->num_kv_heads > 0 ? m->num_kv_heads : heads;
  double hd = m->head_dim > 0 ? m->head_dim : h / heads;
  double attn = ((heads + 2.0 * kv) * hd + heads * hd) / tp + h;
  double mlp;
  if (m->num_experts > 0 && m->experts_per_token > 0) {
    double k = m->experts_per_token;
    mlp = k * ((2 * inter > h ? 2 * inter : h) + inter) + h + m->num_experts + 4.0 * k / d;
  } else {
    mlp = 3 * inter + h;
  }
  return d * (2 * h + (attn > mlp ? attn : mlp));
}

/* FlashInfer's sampler needs compute capability 7.5-12.1 (FlashInferBackend.
 * supports_compute_capability, v1/attention/backends/flashinfer.py@0.22.1:408-411); older GPUs
 * fall back to the sort path. */
static bool before_turing(const char *gpu) {
  static const char *const old[] = {"V100", "P100", "P40", "P4 ", "GTX 10", "TITAN V", "TITAN Xp"};
  for (size_t i = 0; i < PS_ARRAY_LEN(old); i++)
    if (strstr(gpu, old[i])) return true;
  return false;
}

static uint64_t activation(const ps_model *m, const ps__vllm_setup *s, int batched, int seqs,
                           ps__sampler path) {
  if (m->hidden_size <= 0 || m->vocab_size <= 0) return ACTIVATION_UNKNOWN;
  double d = m->dtype_bytes > 0 ? m->dtype_bytes : 2;
  double chunk = m->num_experts > 0 && batched > 32768 ? 32768 : batched;
  double fwd = chunk * layer_bytes_per_token(m, s->tp);
  if (m->num_experts > 0 && batched > chunk) /* the other layers' tensors at full length */
    fwd += (batched - chunk) * d * 3.0 * m->hidden_size;
  if (path == PS__SAMPLER_FLASHINFER && s->gpu_name && before_turing(s->gpu_name))
    path = PS__SAMPLER_SORT;
  if (path == PS__SAMPLER_TRITON && seqs < TRITON_MIN_ROWS) path = PS__SAMPLER_SORT;
  /* the forward's output [batched, hidden] and the sampled rows' hidden states and their
   * torch.rand_like copy stay alive (gpu_model_runner.py@0.10.1.1:2427-2435, 2423-2424) */
  double held = d * m->hidden_size * ((double)batched + 2.0 * seqs);
  double sampler = (double)seqs * (double)m->vocab_size * sampler_bytes_per_entry[path] + held;
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

/* The profile peak with a multimodal encoder run first: max(encoder run, its held outputs +
 * the text peak) (src/plan/encoder.c). */
static uint64_t with_encoder(uint64_t text, const ps__encoder_profile *e) {
  uint64_t held = ps__add_u64_sat(text, e->held);
  return e->run > held ? e->run : held;
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
  uint64_t text = activation(m, s, batched, seqs, s->vllm->rules->sampler);
  ps__vllm_encoder(m, s, batched, &out->encoder);
  out->activation = with_encoder(text, &out->encoder);
  out->encoder_bytes = out->activation - text;
  /* where FlashInfer is optional (0.9-0.11: the Docker image ships it, a pip install may not),
   * the peak if vLLM sorts instead */
  uint64_t sorted =
      s->vllm->rules->flashinfer_optional
          ? with_encoder(activation(m, s, batched, seqs, PS__SAMPLER_SORT), &out->encoder)
          : out->activation;
  out->without_flashinfer = sorted > out->activation ? sorted - out->activation : 0;
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
