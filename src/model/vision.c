/* config.json's vision_config (and the multimodal keys beside it) -> ps_model.vision: the facts
 * vLLM's encoder profile depends on (docs/vllm-memory.md, "The multimodal encoder profile";
 * the rules that use them are in src/plan/encoder.c). Keys are those of the Qwen2.5-VL /
 * Qwen3-VL configs (depth, hidden_size, ...) with the CLIP/SigLIP aliases (num_hidden_layers,
 * num_attention_heads); Qwen2-VL names the tower's width embed_dim and its MLP mlp_ratio, and
 * its hidden_size is the merger's output. A missing key stays 0 and the plan then says it did
 * not model the tower. */
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"

/* Qwen2-VL: embed_dim is the width, hidden_size the output, mlp_ratio x embed_dim the MLP
 * (Qwen2VisionTransformer.__init__, qwen2_vl.py@0.11.0:620-627, Qwen2VisionBlock:466). */
static ps_status qwen2_vl_widths(const ps__cfg *v, ps_vision *o) {
  bool found = false;
  int out = 0;
  ps_status st =
      ps__cfg_int(v, PS_CFG_KEYS("embed_dim"), false, 0, PS_MODEL_INT_MAX, &o->hidden_size, &found);
  if (st != PS_OK || !found) return st;
  if ((st = ps__cfg_int(v, PS_CFG_KEYS("hidden_size"), false, 0, PS_MODEL_INT_MAX, &out, NULL)) !=
      PS_OK)
    return st;
  if (o->out_hidden_size == 0) o->out_hidden_size = out;
  const json_t *ratio = json_object_get(v->top, "mlp_ratio");
  if (o->intermediate_size == 0 && json_is_number(ratio) && json_number_value(ratio) > 0 &&
      json_number_value(ratio) < 64)
    o->intermediate_size = (int)(o->hidden_size * json_number_value(ratio));
  return PS_OK;
}

/* The keys beside vision_config: Gemma-3's tokens per image, LLaVA's feature strategy and
 * LLaVA-NeXT's anyres grid (image_grid_pinpoints, [height, width] pairs). */
static ps_status multimodal_keys(const ps__cfg *c, ps_vision *o) {
  ps__cfg top = {c->ctx, c->name, c->top, c->top, ""};
  ps_status st = ps__cfg_int(&top, PS_CFG_KEYS("mm_tokens_per_image"), false, 0, PS_MODEL_INT_MAX,
                             &o->tokens_per_image, NULL);
  if (st != PS_OK) return st;
  const json_t *strategy = json_object_get(c->top, "vision_feature_select_strategy");
  o->full_features = json_is_string(strategy) && strcmp(json_string_value(strategy), "full") == 0;
  const json_t *pins = json_object_get(c->top, "image_grid_pinpoints");
  if (!json_is_array(pins)) return PS_OK;
  if (json_array_size(pins) > sizeof(o->pinpoints) / sizeof(o->pinpoints[0])) {
    o->num_pinpoints = -1;
    return PS_OK;
  }
  size_t i;
  const json_t *pair;
  json_array_foreach(pins, i, pair) {
    const json_t *h = json_array_get(pair, 0), *w = json_array_get(pair, 1);
    if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_integer(h) ||
        !json_is_integer(w) || json_integer_value(h) <= 0 || json_integer_value(w) <= 0 ||
        json_integer_value(h) > 1 << 20 || json_integer_value(w) > 1 << 20)
      return ps__cfg_fail(c, "image_grid_pinpoints", "expected [height, width] pairs of pixels");
    o->pinpoints[i][0] = (int)json_integer_value(h);
    o->pinpoints[i][1] = (int)json_integer_value(w);
  }
  o->num_pinpoints = (int)json_array_size(pins);
  return PS_OK;
}

ps_status ps__model_vision(const ps__cfg *c, ps_model *m) {
  const json_t *sub = json_object_get(c->top, "vision_config");
  if (!sub || json_is_null(sub)) return PS_OK;
  if (!json_is_object(sub)) return ps__cfg_fail(c, "vision_config", "expected an object");
  ps__cfg v = {c->ctx, c->name, sub, sub, "vision_config"};
  ps_vision *o = &m->vision;
  const int max = PS_MODEL_INT_MAX;
  ps_status st;
  o->present = true;
  if ((st = ps__cfg_int(&v, PS_CFG_KEYS("depth", "num_hidden_layers"), false, 0, max, &o->depth,
                        NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("intermediate_size"), false, 0, max, &o->intermediate_size,
                        NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("num_heads", "num_attention_heads"), false, 0, max,
                        &o->num_heads, NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("patch_size", "spatial_patch_size"), false, 0, max,
                        &o->patch_size, NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("spatial_merge_size"), false, 0, max,
                        &o->spatial_merge_size, NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("temporal_patch_size"), false, 0, max,
                        &o->temporal_patch_size, NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("in_chans", "in_channels", "num_channels"), false, 0, max,
                        &o->in_channels, NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("out_hidden_size"), false, 0, max, &o->out_hidden_size,
                        NULL)) != PS_OK ||
      (st = ps__cfg_int(&v, PS_CFG_KEYS("image_size"), false, 0, max, &o->image_size, NULL)) !=
          PS_OK)
    return st;
  const json_t *deepstack = json_object_get(sub, "deepstack_visual_indexes");
  if (json_is_array(deepstack)) o->deepstack_layers = (int)json_array_size(deepstack);
  if ((st = qwen2_vl_widths(&v, o)) != PS_OK) return st;
  if (o->hidden_size == 0 && (st = ps__cfg_int(&v, PS_CFG_KEYS("hidden_size"), false, 0, max,
                                               &o->hidden_size, NULL)) != PS_OK)
    return st;
  return multimodal_keys(c, o);
}
