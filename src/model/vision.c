/* config.json's vision_config -> ps_model.vision: the facts vLLM's encoder profile depends on
 * (docs/vllm-memory.md, "The multimodal encoder profile"). Keys are those of the Qwen2.5-VL /
 * Qwen3-VL configs (depth, hidden_size, ...) with the CLIP/SigLIP aliases (num_hidden_layers,
 * num_attention_heads); a missing key stays 0 and the plan then says it did not model it. */
#include "core/internal.h"
#include "model/model_internal.h"

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
      (st = ps__cfg_int(&v, PS_CFG_KEYS("hidden_size", "embed_dim"), false, 0, max, &o->hidden_size,
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
                        NULL)) != PS_OK)
    return st;
  return PS_OK;
}
