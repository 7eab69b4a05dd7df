/* The multimodal encoder's part of vLLM V1's profile run (docs/vllm-memory.md, "The
 * multimodal encoder profile"). profile_run first runs the vision encoder on dummy items of
 * the modality with the most tokens per item, as many as the encoder budget
 * max(max_num_batched_tokens, tokens per item) holds, and keeps their outputs in the encoder
 * cache while the text forward and the sampler run (gpu_model_runner.py@0.9.2:2204-2270,
 * @0.11.0:3325-3402; MultiModalBudget, v1/worker/utils.py@0.11.0:24-127). So
 *   peak = max(encoder run, encoder outputs + text peak).
 * Derived for Qwen2.5-VL only (qwen2_5_vl.py@0.9.2); other vision towers are flagged. */
#include <stdio.h>
#include <string.h>

#include "plan/vllm.h"

/* Qwen2VLImageProcessor's default max_pixels, 28 x 28 x 16384 (Qwen2.5-VL's
 * preprocessor_config.json; vLLM sizes the dummy image from it: get_image_size_with_most_
 * features, qwen2_vl.py@0.9.2:880-900): 16384 tokens after the 2x2 merge, the log's budget. */
#define QWEN_VL_MAX_PIXELS 12845056.0

static int version_minor(const ps__vllm *v) {
  int major = 0, minor = 0;
  if (sscanf(v->version, "%d.%d", &major, &minor) != 2 || major != 0) return 99;
  return minor;
}

/* Bytes per patch at the vision tower's peak, per TP rank (d = activation bytes):
 *  - the dummy pixel values, fp32 from the HF processor, held through the tower
 *    (x.to(dtype) in Qwen2_5_VisionTransformer.forward, qwen2_5_vl.py@0.9.2:660);
 *  - per block: the residual and norm1/norm2's output (2 vh), then the larger of
 *    attention: qkv (3 vh/tp), the contiguous q, k, v (3 vh/tp), the rotated q and k
 *    (2 vh/tp), the context (vh/tp), and with tp > 1 the all-gathered qkv (3 vh,
 *    split_qkv, qwen2_5_vl.py@0.9.2:259-281); flash/xformers attention, no S^2 scores;
 *    MLP: act(gate), up, their product (3 vi/tp) and down_proj's output (vh)
 *    (Qwen2_5_VisionMLP.forward, qwen2_5_vl.py@0.9.2:191-196). */
static double qwen25_bytes_per_patch(const ps_vision *v, int tp, double d) {
  double vh = v->hidden_size, vi = v->intermediate_size;
  double pixels = 4.0 * v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
  double attn = 9.0 * vh / tp + (tp > 1 ? 3.0 * vh : 0);
  double mlp = 3.0 * vi / tp + vh;
  return pixels + d * (2.0 * vh + (attn > mlp ? attn : mlp));
}

static bool qwen25_known(const ps_model *m) {
  const ps_vision *v = &m->vision;
  return strcmp(m->model_type, "qwen2_5_vl") == 0 && v->hidden_size > 0 &&
         v->intermediate_size > 0 && v->patch_size > 0 && v->spatial_merge_size > 0 &&
         v->temporal_patch_size > 0 && v->in_channels > 0;
}

void ps__vllm_encoder(const ps_model *m, const ps__vllm_setup *s, int batched,
                      ps__encoder_profile *out) {
  memset(out, 0, sizeof(*out));
  if (!m->vision.present || s->vllm->rules->engine != PS__ENGINE_V1) return;
  if (!qwen25_known(m)) {
    out->kind = PS__ENCODER_UNMODELLED;
    return;
  }
  const ps_vision *v = &m->vision;
  double d = m->dtype_bytes > 0 ? m->dtype_bytes : 2;
  double unit = (double)v->patch_size * v->spatial_merge_size;
  double tokens = (double)(long long)(QWEN_VL_MAX_PIXELS / (unit * unit)); /* per image */
  double budget = batched > tokens ? batched : tokens;
  /* items: cdiv(budget, tokens) in 0.9 (gpu_model_runner.py@0.9.2:2221), budget // tokens
   * from 0.10 (MultiModalBudget.get_max_items, v1/worker/utils.py@0.10.1.1:98); the decoder's
   * cap (max_num_seqs x items per prompt) is never the smaller for these sizes */
  double items = version_minor(s->vllm) <= 9 ? (double)(long long)((budget + tokens - 1) / tokens)
                                             : (double)(long long)(budget / tokens);
  double patches = items * tokens * v->spatial_merge_size * v->spatial_merge_size;
  out->run = (uint64_t)(patches * qwen25_bytes_per_patch(v, s->tp, d));
  /* the outputs [tokens, out_hidden]; 0.11 widens each to the whole budget (new_zeros,
   * gpu_model_runner.py@0.11.0:3374-3384) */
  double width = version_minor(s->vllm) == 11 ? budget : tokens;
  double out_hidden = v->out_hidden_size > 0 ? v->out_hidden_size : m->hidden_size;
  out->held = (uint64_t)(items * width * out_hidden * d);
  out->items = (int)items;
  out->tokens_per_item = (int)tokens;
  /* the dummy video: as many max-size frames as max_model_len less one image holds, two
   * frames per token grid (get_num_frames_with_most_features, qwen2_vl.py@0.9.2:947-961);
   * from 3 images' worth it outranks the image, and its run is not modelled */
  out->kind = s->max_model_len >= 3 * tokens ? PS__ENCODER_ESTIMATED : PS__ENCODER_MODELLED;
}
