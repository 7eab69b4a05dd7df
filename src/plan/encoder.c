/* The multimodal encoder's part of vLLM V1's profile run (docs/vllm-memory.md, "The
 * multimodal encoder profile"). profile_run first runs the vision encoder on dummy items of
 * the modality with the most tokens per item, as many as the encoder budget
 * max(max_num_batched_tokens, tokens per item) holds, and keeps their outputs in the encoder
 * cache while the text forward and the sampler run (gpu_model_runner.py@0.9.2:2204-2270,
 * @0.11.0:3325-3402; MultiModalBudget, v1/worker/utils.py@0.11.0:24-127). So
 *   peak = max(encoder run, encoder outputs + text peak).
 * Each tower's rule is one row of `towers` below: its dummy item (tokens in the budget, tokens
 * through the tower, output tokens) and its bytes per tower token; the rest is shared. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan/vllm.h"

/* Qwen2VLImageProcessor's default max_pixels, 28 x 28 x 16384 (Qwen2-VL's and Qwen2.5-VL's
 * preprocessor_config.json; vLLM sizes the dummy image from it: get_image_size_with_most_
 * features, qwen2_vl.py@0.9.2:880-900): 16384 tokens after the 2x2 merge, the logs' budget. */
#define QWEN_VL_MAX_PIXELS 12845056.0
/* Qwen3-VL's preprocessor_config.json (size.longest_edge, image 4096 x 4096) and
 * video_preprocessor_config.json (24576 x 32 x 32, "official recommended max pixels",
 * qwen3_vl.py@0.11.0:90); image_smart_resize / video_smart_resize read them
 * (_get_vision_info, qwen3_vl.py@0.11.0:586-640) */
#define QWEN3_IMAGE_MAX_PIXELS 16777216.0
#define QWEN3_VIDEO_MAX_PIXELS 25165824.0
#define QWEN3_MAX_FRAMES 24576 /* _MAX_FRAMES_PER_VIDEO, qwen3_vl.py@0.11.0:91, @0.14.1:132 */

static int version_minor(const ps__vllm *v) {
  int major = 0, minor = 0;
  if (sscanf(v->version, "%d.%d", &major, &minor) != 2 || major != 0) return 99;
  return minor;
}

/* One dummy item as the profile runs it. */
typedef struct tower_item {
  double tokens;       /* in the encoder budget (get_mm_max_contiguous_tokens) */
  double out_tokens;   /* embeddings the encoder returns */
  double tower_tokens; /* positions through the tower's blocks (patches, CLS included) */
  double pixel_bytes;  /* the processor's fp32 pixel values, held through the tower */
  double token_bytes;  /* per tower token at the tower's peak, per TP rank */
  double out_width;    /* hidden size of one output embedding */
  bool estimated;      /* a larger item of another modality may be profiled instead */
  bool video;          /* the dummy item is a video */
} tower_item;

static double act_bytes(const ps_model *m) { return m->dtype_bytes > 0 ? m->dtype_bytes : 2; }

/* Qwen2/2.5/3-VL blocks, per patch: the residual and norm's output (2 vh), then the larger of
 * attention (qkv 3vh/tp, contiguous q, k, v 3vh/tp, rotated q, k 2vh/tp, context vh/tp, and
 * with tp > 1 the all-gathered qkv 3vh, split_qkv, qwen2_5_vl.py@0.9.2:259-281; Qwen2-VL's and
 * Qwen3-VL's attention is the same, qwen2_vl.py@0.9.2, qwen3_vl.py@0.11.0:172; flash-attn or
 * xformers varlen, no scores matrix) and the MLP: Qwen2.5-VL's gated act(gate), up, product
 * 3vi/tp (Qwen2_5_VisionMLP.forward, qwen2_5_vl.py@0.9.2:191-196), Qwen2-VL's and Qwen3-VL's
 * fc1, act 2vi/tp (qwen2_vl.py@0.11.0:232-236, qwen3_vl.py@0.11.0:150-152), and the output vh. */
static double qwen_block_bytes(const ps_vision *v, int tp, double d, bool gated) {
  double vh = v->hidden_size, vi = v->intermediate_size;
  double attn = 9.0 * vh / tp + (tp > 1 ? 3.0 * vh : 0);
  double mlp = (gated ? 3.0 : 2.0) * vi / tp + vh;
  return d * (2.0 * vh + (attn > mlp ? attn : mlp));
}

static bool qwen_known(const ps_vision *v) {
  return v->hidden_size > 0 && v->intermediate_size > 0 && v->patch_size > 0 &&
         v->spatial_merge_size > 0 && v->temporal_patch_size > 0 && v->in_channels > 0;
}

static double qwen_out_width(const ps_model *m) {
  return m->vision.out_hidden_size > 0 ? m->vision.out_hidden_size : m->hidden_size;
}

/* Qwen2-VL, Qwen2.5-VL: one max_pixels image (x.to(dtype) keeps the fp32 pixels, qwen2_5_vl.py
 * @0.9.2:660). The dummy video (max-size frames, as many as max_model_len less one image holds,
 * get_num_frames_with_most_features, qwen2_vl.py@0.9.2:947-961) outranks the image from 3
 * images' worth of max_model_len; its run is not modelled (estimated). */
static bool qwen2_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  const ps_vision *v = &m->vision;
  if (!qwen_known(v)) return false;
  double unit = (double)v->patch_size * v->spatial_merge_size;
  it->tokens = it->out_tokens = floor(QWEN_VL_MAX_PIXELS / (unit * unit));
  it->tower_tokens = it->tokens * v->spatial_merge_size * v->spatial_merge_size;
  it->pixel_bytes = it->tower_tokens * 4.0 * v->in_channels * v->temporal_patch_size *
                    v->patch_size * v->patch_size;
  it->token_bytes =
      qwen_block_bytes(v, s->tp, act_bytes(m), strcmp(m->model_type, "qwen2_5_vl") == 0);
  it->out_width = qwen_out_width(m);
  it->estimated = s->max_model_len >= 3 * it->tokens;
  return true;
}

/* transformers' Qwen3-VL video smart_resize (what _get_vision_info calls with the video
 * processor, qwen3_vl.py@0.11.0:609-626): the side of a square frame of `side` pixels when
 * `frames` of them must hold at most max_pixels in all; then the tokens of that video
 * (frames padded to the temporal patch, qwen3_vl.py@0.11.0:633-640). */
static double qwen3_video_tokens(const ps_vision *v, int frames, double side) {
  double factor = (double)v->patch_size * v->spatial_merge_size;
  double t = v->temporal_patch_size;
  double h = round(side / factor) * factor;
  double t_bar = nearbyint(frames / t) * t; /* Python's round: half to even */
  if (t_bar * h * h > QWEN3_VIDEO_MAX_PIXELS) {
    double beta = sqrt(frames * side * side / QWEN3_VIDEO_MAX_PIXELS);
    h = floor(side / beta / factor) * factor;
    if (h < factor) h = factor;
  }
  double grid_t = floor((frames + frames % v->temporal_patch_size) / t);
  if (grid_t < 1) grid_t = 1;
  double grid = floor(h / v->patch_size);
  return floor(grid_t * grid * grid / (v->spatial_merge_size * v->spatial_merge_size));
}

/* Qwen3-VL (qwen3_vl, qwen3_vl_moe; from 0.11). The largest image is 4096 x 4096, 16384
 * tokens. The dummy video has as many 4096-pixel frames as max_model_len holds tokens, at most
 * 24576 (_get_max_video_frames, qwen2_vl.py@0.11.0:974-1009), each shrunk so that the video
 * holds 25,165,824 pixels: 12288 tokens at 24576 frames of 32 x 32. 0.11 and 0.12 count a video
 * token as 12.5 (timestamps, get_max_video_tokens, qwen3_vl.py@0.11.0:658-675, @0.12.0:693-709):
 * the video wins, 1 item of int(12.5 x tokens) in the budget; from 0.14 it counts its tokens
 * (@0.14.1) and the image wins. Per patch the tower also keeps the deepstack mergers' outputs
 * (out_hidden each per merged token, qwen3_vl.py@0.11.0:515-531). */
static bool qwen3_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  const ps_vision *v = &m->vision;
  int minor = version_minor(s->vllm);
  if (!qwen_known(v) || minor < 11) return false; /* no Qwen3-VL before 0.11 */
  double factor = (double)v->patch_size * v->spatial_merge_size;
  double side = floor(sqrt(QWEN3_IMAGE_MAX_PIXELS) / factor) * factor;
  double merge2 = (double)v->spatial_merge_size * v->spatial_merge_size, d = act_bytes(m);
  if (minor <= 12) {
    int frames = 2;
    while (frames < QWEN3_MAX_FRAMES && qwen3_video_tokens(v, frames + 1, side) <= s->max_model_len)
      frames++;
    it->out_tokens = qwen3_video_tokens(v, frames, side);
    it->tokens = floor(it->out_tokens * 12.5);
    it->video = true;
  } else {
    it->out_tokens = it->tokens =
        floor(side / v->patch_size) * floor(side / v->patch_size) / merge2;
  }
  it->tower_tokens = it->out_tokens * merge2;
  it->pixel_bytes = it->tower_tokens * 4.0 * v->in_channels * v->temporal_patch_size *
                    v->patch_size * v->patch_size;
  it->token_bytes =
      qwen_block_bytes(v, s->tp, d, false) + d * v->deepstack_layers * qwen_out_width(m) / merge2;
  it->out_width = qwen_out_width(m) * (1 + v->deepstack_layers);
  return true;
}

/* CLIP (clip.py@0.11.0:132-209) and SigLIP (siglip.py@0.11.0:184-280) blocks, per token: the
 * residual and norm (2 vh), then the larger of attention (qkv 3vh/tp, MultiHeadAttention's
 * contiguous q, k, v 3vh/tp, its output vh/tp, out_proj vh; SDPA/xformers, no scores at these
 * lengths) and the MLP (fc1, act 2vi/tp, fc2 vh). */
static double vit_block_bytes(const ps_vision *v, int tp, double d) {
  double vh = v->hidden_size, vi = v->intermediate_size;
  double attn = 7.0 * vh / tp + vh, mlp = 2.0 * vi / tp + vh;
  return d * (2.0 * vh + (attn > mlp ? attn : mlp));
}

/* A square-crop ViT (CLIP, SigLIP): `crops` crops of image_size^2 fp32 pixels, grid^2 patches
 * each (+ CLS for CLIP). */
static bool vit_item(const ps_model *m, const ps__vllm_setup *s, double crops, bool cls,
                     tower_item *it) {
  const ps_vision *v = &m->vision;
  if (v->hidden_size <= 0 || v->intermediate_size <= 0 || v->patch_size <= 0 ||
      v->image_size < v->patch_size)
    return false;
  double grid = floor((double)v->image_size / v->patch_size);
  double channels = v->in_channels > 0 ? v->in_channels : 3;
  it->tower_tokens = crops * (grid * grid + (cls ? 1 : 0));
  it->pixel_bytes = crops * 4.0 * channels * v->image_size * v->image_size;
  it->token_bytes = vit_block_bytes(v, s->tp, act_bytes(m));
  it->out_width = m->hidden_size;
  return true;
}

/* LLaVA-1.5 (llava): one 336 x 336 CLIP crop; tokens = grid^2 ("default" drops CLS, +1 with
 * "full"; get_num_image_tokens, llava.py@0.11.0, _apply_feature_select_strategy). */
static bool llava_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  if (!vit_item(m, s, 1, true, it)) return false;
  double grid = floor((double)m->vision.image_size / m->vision.patch_size);
  it->tokens = it->out_tokens = grid * grid + (m->vision.full_features ? 1 : 0);
  return true;
}

/* LLaVA-NeXT (llava_next): the pinpoint with the most features (get_image_size_with_most_
 * features, llava_next.py@0.11.0), an image of exactly that size: base + unpadded grid +
 * one newline per row, base + (g*gh)(g*gw) + g*gh tokens; the tower runs 1 + gh*gw crops. */
static bool llava_next_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  const ps_vision *v = &m->vision;
  if (v->num_pinpoints <= 0 || v->image_size <= 0 || v->patch_size <= 0) return false;
  double g = floor((double)v->image_size / v->patch_size);
  double base = g * g + (v->full_features ? 1 : 0), best = 0, best_tiles = 0;
  for (int i = 0; i < v->num_pinpoints; i++) {
    double gh = floor((double)v->pinpoints[i][0] / v->image_size);
    double gw = floor((double)v->pinpoints[i][1] / v->image_size);
    double tokens = base + g * gh * g * gw + g * gh;
    if (tokens > best) best = tokens, best_tiles = gh * gw;
  }
  if (!vit_item(m, s, 1 + best_tiles, true, it)) return false;
  it->tokens = it->out_tokens = best;
  return true;
}

/* Gemma-3 (gemma3): one 896 x 896 SigLIP crop (pan-and-scan off by default, gemma3_mm.py
 * @0.11.0:124), mm_tokens_per_image after pooling; the budget counts the whole placeholder,
 * "\n\n<start_of_image>" + tokens + "<end_of_image>\n\n" (get_mm_max_contiguous_tokens,
 * multimodal/profiling.py@0.11.0:266-281; Gemma3Processor.full_image_sequence), 4 more. */
static bool gemma3_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  if (m->vision.tokens_per_image <= 0 || !vit_item(m, s, 1, false, it)) return false;
  it->out_tokens = m->vision.tokens_per_image;
  it->tokens = it->out_tokens + 4;
  return true;
}

/* PaliGemma (paligemma): one SigLIP crop, every patch a token (paligemma.py@0.11.0). */
static bool paligemma_item(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  if (!vit_item(m, s, 1, false, it)) return false;
  it->tokens = it->out_tokens = it->tower_tokens;
  return true;
}

static const struct tower_rule {
  const char *model_type;
  bool (*item)(const ps_model *m, const ps__vllm_setup *s, tower_item *it);
} towers[] = {
    {"qwen2_vl", qwen2_item},     {"qwen2_5_vl", qwen2_item},    {"qwen3_vl", qwen3_item},
    {"qwen3_vl_moe", qwen3_item}, {"llava", llava_item},         {"llava_next", llava_next_item},
    {"gemma3", gemma3_item},      {"paligemma", paligemma_item},
};

static bool tower_item_for(const ps_model *m, const ps__vllm_setup *s, tower_item *it) {
  for (size_t i = 0; i < sizeof(towers) / sizeof(towers[0]); i++)
    if (strcmp(m->model_type, towers[i].model_type) == 0) return towers[i].item(m, s, it);
  return false;
}

/* What stays alive through the text forward and the sampler: the dummy batch on the device
 * (profile_run's local batched_dummy_mm_inputs, gpu_model_runner.py@0.9.2:2252-2258,
 * @0.11.0:3354) and the outputs, [tokens, width] per item; 0.11 widens each to the encoder
 * budget (new_zeros, @0.11.0:3374-3384), 0.12 to the item's budget tokens (@0.12.0:4336-4351),
 * and the loop variable `output` keeps the encoder's own output (one tensor, split per item)
 * alive beside them. */
static double held_bytes(const tower_item *it, double items, double budget, int minor, double d) {
  double widened = minor == 11 ? budget : minor == 12 ? it->tokens : 0;
  double own = items * (it->pixel_bytes + it->out_tokens * it->out_width * d);
  if (widened <= it->out_tokens) return own;
  return items * widened * it->out_width * d + own;
}

void ps__vllm_encoder(const ps_model *m, const ps__vllm_setup *s, int batched,
                      ps__encoder_profile *out) {
  memset(out, 0, sizeof(*out));
  if (!m->vision.present || s->vllm->rules->engine != PS__ENGINE_V1) return;
  tower_item it = {0};
  if (!tower_item_for(m, s, &it) || it.tokens < 1) {
    out->kind = PS__ENCODER_UNMODELLED;
    return;
  }
  int minor = version_minor(s->vllm);
  double budget = batched > it.tokens ? batched : it.tokens;
  /* items: cdiv(budget, tokens) in 0.9 (gpu_model_runner.py@0.9.2:2221), budget // tokens
   * from 0.10 (MultiModalBudget.get_max_items, v1/worker/utils.py@0.10.1.1:98); the decoder's
   * cap (max_num_seqs x items per prompt) is never the smaller for these sizes */
  double items = minor <= 9 ? ceil(budget / it.tokens) : floor(budget / it.tokens);
  out->run = (uint64_t)(items * (it.pixel_bytes + it.tower_tokens * it.token_bytes));
  out->held = (uint64_t)held_bytes(&it, items, budget, minor, act_bytes(m));
  out->items = (int)items;
  out->tokens_per_item = (int)it.tokens;
  out->video = it.video;
  out->kind = it.estimated ? PS__ENCODER_ESTIMATED : PS__ENCODER_MODELLED;
}
