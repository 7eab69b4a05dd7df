/* vLLM's KV-cache arithmetic (v1/kv_cache_interface.py, v1/core/kv_cache_utils.py; V0's
 * cache_engine.py is the uniform case with one block spanning every layer):
 *   page = (MLA ? 1 : 2) x block x KV heads per rank x head size x bytes, per layer;
 *   uniform specs: num_blocks = bytes // page // layers;
 *   mixed sliding/full (0.9 on): layers grouped by type in groups of min(count per type), the
 *   last padded; group_size pools, num_blocks = bytes // page // group_size, and every block
 *   id costs one page in each group;
 *   per request: full cdiv(len, block) blocks, sliding cdiv(min(window - 1 + batched, len),
 *   block) + 1. */
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "plan/vllm.h"

static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static int kv_layers(const ps_model *m) {
  if (m->attention_layers > 0)
    return m->attention_layers < m->num_layers ? m->attention_layers : m->num_layers;
  return m->attention == PS_ATTENTION_HYBRID ? 0 : m->num_layers;
}

static bool page_size(const ps_model *m, int tp, int bytes, ps__kv_layout *l) {
  if (m->attention == PS_ATTENTION_MLA) {
    if (m->kv_lora_rank <= 0 || m->qk_rope_head_dim < 0) return false;
    l->page =
        ps__mul_u64_sat(ps__mul_u64_sat((uint64_t)l->block,
                                        (uint64_t)m->kv_lora_rank + (uint64_t)m->qk_rope_head_dim),
                        (uint64_t)bytes);
    return true;
  }
  int kv = m->num_kv_heads > 0 ? m->num_kv_heads : m->num_heads;
  if (kv <= 0 || m->head_dim <= 0) return false;
  int heads = kv / tp > 0 ? kv / tp : 1; /* replicated when tp > kv heads */
  l->page = ps__mul_u64_sat(
      ps__mul_u64_sat(2ull * (uint64_t)l->block * (uint64_t)heads, (uint64_t)m->head_dim),
      (uint64_t)bytes);
  return true;
}

bool ps__kv_layout_make(const ps_model *m, const ps__vllm *v, int tp, int kv_dtype_bytes,
                        int block_size, int batched, int layers, ps__kv_layout *l) {
  memset(l, 0, sizeof(*l));
  int bytes = kv_dtype_bytes > 0 ? kv_dtype_bytes : m->dtype_bytes;
  if (m->num_layers <= 0 || bytes <= 0 || tp <= 0) return false;
  l->block = block_size > 0 ? block_size : m->attention == PS_ATTENTION_MLA ? 64 : 16;
  l->batched = batched;
  l->print = v->rules->print;
  if (!page_size(m, tp, bytes, l)) return false;
  /* this stage's share of the KV layers, and of the windowed ones */
  int all = kv_layers(m);
  int on_stage = (int)((int64_t)all * layers / m->num_layers);
  if (on_stage < 1) on_stage = 1;
  int sliding = 0;
  if (m->sliding_window > 0 && m->sliding_layers > 0 && v->rules->engine != PS__ENGINE_V0) {
    sliding = (int)((int64_t)(m->sliding_layers < all ? m->sliding_layers : all) * on_stage / all);
    l->window = m->sliding_window;
  }
  int full = on_stage - sliding;
  if (full > 0 && sliding > 0 && !v->rules->kv_groups) { /* no grouping: all as full */
    full = on_stage;
    sliding = 0;
  }
  if (full > 0 && sliding > 0) {
    int gs = full < sliding ? full : sliding;
    l->pool_layers = gs;
    l->full_groups = (int)cdiv((uint64_t)full, (uint64_t)gs);
    l->sliding_groups = (int)cdiv((uint64_t)sliding, (uint64_t)gs);
  } else {
    l->pool_layers = on_stage;
    l->full_groups = full > 0;
    l->sliding_groups = sliding > 0;
  }
  return true;
}

uint64_t ps__kv_blocks(const ps__kv_layout *l, uint64_t bytes) {
  return l->page ? bytes / l->page / (uint64_t)l->pool_layers : 0;
}

uint64_t ps__kv_blocks_per_request(const ps__kv_layout *l, uint64_t len) {
  uint64_t b = (uint64_t)l->block, full = cdiv(len, b), sliding = 0;
  if (l->sliding_groups) {
    uint64_t keep = (uint64_t)l->window - 1 + (uint64_t)l->batched;
    sliding = cdiv(keep < len ? keep : len, b) + 1;
  }
  return ps__add_u64_sat(ps__mul_u64_sat((uint64_t)l->full_groups, full),
                         ps__mul_u64_sat((uint64_t)l->sliding_groups, sliding));
}

int ps__kv_groups(const ps__kv_layout *l) { return l->full_groups + l->sliding_groups; }

uint64_t ps__kv_printed_tokens(const ps__kv_layout *l, uint64_t blocks, uint64_t len) {
  switch (l->print) {
  case PS__PRINT_CONCURRENCY:
    if (len > 0) {
      double conc = (double)blocks / (double)ps__kv_blocks_per_request(l, len);
      return (uint64_t)(conc * (double)len);
    }
    return blocks * (uint64_t)l->block;
  case PS__PRINT_PER_GROUP: return blocks / (uint64_t)ps__kv_groups(l) * (uint64_t)l->block;
  case PS__PRINT_BLOCKS:
  default: return blocks * (uint64_t)l->block;
  }
}
