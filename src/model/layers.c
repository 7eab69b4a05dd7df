/* Which layers hold a KV cache, and for how many tokens.
 *
 * In order of precedence (the first that a config has decides):
 * 1. layer_types, one name per layer (transformers >= 4.53 writes it for Gemma-2/3, Qwen3,
 *    Qwen3-Next/3.5, Granite-4 hybrids, ...): "*sliding*"/"*chunk*" windowed, "*linear*",
 *    "*mamba*", "*conv*" state layers (no KV), other "*attention*" full.
 * 2. Hybrid patterns: hybrid_override_pattern (Nemotron-H, '*' = attention, 'M' = Mamba),
 *    attn_layer_period/offset (Jamba), full_attention_interval (Qwen3-Next),
 *    attn_type_list (MiniMax, 1 = softmax attention).
 * 3. A sliding window (sliding_window > 0, unless use_sliding_window is false): Gemma-2
 *    alternates (even layers windowed), sliding_window_pattern P (Gemma-3: default 6,
 *    Cohere2) makes every P-th layer global, Qwen2's max_window_layers keeps the first
 *    layers global, and otherwise (Mistral v0.1, Phi-3) every layer is windowed.
 * transformers' rules, so that the counts match vLLM's per-layer KV specs. */
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"

#define CHECK(expr)                                                                                \
  do {                                                                                             \
    st = (expr);                                                                                   \
    if (st != PS_OK) return st;                                                                    \
  } while (0)

enum { LAYER_FULL, LAYER_SLIDING, LAYER_STATE, LAYER_UNKNOWN };

static int classify(const char *s) {
  static const char *const state[] = {"linear", "mamba", "conv", "ssm", "recurrent", "rwkv"};
  static const char *const sliding[] = {"sliding", "chunk", "local"};
  for (size_t i = 0; i < PS_ARRAY_LEN(state); i++)
    if (strstr(s, state[i])) return LAYER_STATE;
  for (size_t i = 0; i < PS_ARRAY_LEN(sliding); i++)
    if (strstr(s, sliding[i])) return LAYER_SLIDING;
  if (strstr(s, "attention") || strstr(s, "full") || strstr(s, "global")) return LAYER_FULL;
  return LAYER_UNKNOWN;
}

/* sliding_window: a token count; null, false or 0 for none. */
static ps_status read_window(const ps__cfg *c, int *window) {
  char path[128];
  const json_t *v = ps__cfg_find(c, PS_CFG_KEYS("sliding_window"), path, sizeof(path));
  *window = 0;
  if (!v || json_is_false(v)) return PS_OK;
  return ps__cfg_int(c, PS_CFG_KEYS("sliding_window"), false, 0, PS_MODEL_INT_MAX, window, NULL);
}

static ps_status from_layer_types(const ps__cfg *c, const json_t *list, const char *path,
                                  int counts[3]) {
  if (!json_is_array(list))
    return ps__cfg_fail(c, path, "expected a list of layer names, one per layer");
  size_t n = json_array_size(list);
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(list, i);
    if (!json_is_string(v))
      return ps__cfg_fail(c, path, "entry %zu: expected a layer name such as \"full_attention\"",
                          i);
    int kind = classify(json_string_value(v));
    if (kind == LAYER_UNKNOWN)
      return ps__cfg_fail(c, path, "entry %zu: unknown layer type '%.40s'", i,
                          json_string_value(v));
    counts[kind]++;
  }
  return PS_OK;
}

/* The hybrid patterns; *matched false when the config has none. */
static ps_status from_hybrid_pattern(const ps__cfg *c, int layers, int counts[3], bool *matched) {
  ps_status st;
  char path[128];
  bool found;
  int period = 0, offset = 0, interval = 0;
  *matched = true;
  const json_t *v = ps__cfg_find(c, PS_CFG_KEYS("hybrid_override_pattern"), path, sizeof(path));
  if (v) {
    if (!json_is_string(v) || json_string_length(v) != (size_t)layers)
      return ps__cfg_fail(c, path, "expected a string of %d layer letters", layers);
    for (const char *p = json_string_value(v); *p; p++) {
      if (*p == '*') counts[LAYER_FULL]++;
      if (*p == 'M') counts[LAYER_STATE]++;
    }
    return PS_OK;
  }
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("attn_layer_period"), false, 1, PS_MODEL_INT_MAX, &period,
                    &found));
  if (found) {
    CHECK(ps__cfg_int(c, PS_CFG_KEYS("attn_layer_offset"), false, 0, period - 1, &offset, NULL));
    counts[LAYER_FULL] = offset < layers ? (layers - offset + period - 1) / period : 0;
    counts[LAYER_STATE] = layers - counts[LAYER_FULL];
    return PS_OK;
  }
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("full_attention_interval"), false, 1, PS_MODEL_INT_MAX,
                    &interval, &found));
  if (found) {
    counts[LAYER_FULL] = layers / interval;
    counts[LAYER_STATE] = layers - counts[LAYER_FULL];
    return PS_OK;
  }
  v = ps__cfg_find(c, PS_CFG_KEYS("attn_type_list"), path, sizeof(path));
  if (v) {
    if (!json_is_array(v) || json_array_size(v) != (size_t)layers)
      return ps__cfg_fail(c, path, "expected a list of %d entries (1 = attention, 0 = linear)",
                          layers);
    for (size_t i = 0; i < (size_t)layers; i++) {
      const json_t *e = json_array_get(v, i);
      if (!json_is_integer(e) || (json_integer_value(e) != 0 && json_integer_value(e) != 1))
        return ps__cfg_fail(c, path, "entry %zu: expected 0 (linear) or 1 (attention)", i);
      counts[json_integer_value(e) ? LAYER_FULL : LAYER_STATE]++;
    }
    return PS_OK;
  }
  *matched = false;
  return PS_OK;
}

/* Windowed layers of a model whose every layer attends. */
static ps_status sliding_count(const ps__cfg *c, int layers, int *sliding) {
  ps_status st;
  char type[64];
  bool found, use = false;
  int pattern = 0, global = 0;
  CHECK(ps__cfg_str(c, "model_type", type, sizeof(type)));
  if (strcmp(type, "gemma2") == 0) {
    *sliding = (layers + 1) / 2; /* layer i windowed when (i + 1) % 2 != 0 */
    return PS_OK;
  }
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("sliding_window_pattern"), false, 1, PS_MODEL_INT_MAX, &pattern,
                    &found));
  if (!found && (strcmp(type, "gemma3_text") == 0 || strcmp(type, "gemma3") == 0)) {
    pattern = 6; /* Gemma3TextConfig's default */
    found = true;
  }
  if (found) {
    *sliding = layers - layers / pattern; /* layer i global when (i + 1) % P == 0 */
    return PS_OK;
  }
  CHECK(ps__cfg_bool(c, "use_sliding_window", &use, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("max_window_layers"), false, 0, PS_MODEL_INT_MAX, &global,
                    &found));
  if (use && found) {
    *sliding = global < layers ? layers - global : 0; /* Qwen2: layers >= max_window_layers */
    return PS_OK;
  }
  *sliding = layers;
  return PS_OK;
}

ps_status ps__model_layers(const ps__cfg *c, ps_model *m, ps__model_extra *x) {
  ps_status st;
  char path[128];
  int counts[3] = {0, 0, 0};
  int window = 0, chunk = 0;
  bool use = true, matched;
  CHECK(read_window(c, &window));
  CHECK(ps__cfg_bool(c, "use_sliding_window", &use, NULL));
  if (!use) window = 0;
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("attention_chunk_size"), false, 0, PS_MODEL_INT_MAX, &chunk,
                    NULL));

  const json_t *types = ps__cfg_find(c, PS_CFG_KEYS("layer_types"), path, sizeof(path));
  if (types) {
    CHECK(from_layer_types(c, types, path, counts));
    int listed = counts[LAYER_FULL] + counts[LAYER_SLIDING] + counts[LAYER_STATE];
    if (listed != m->num_layers)
      return ps__cfg_fail(c, path, "%d entries for %d layers (num_hidden_layers)", listed,
                          m->num_layers);
    if (counts[LAYER_SLIDING] && !window) window = chunk; /* Llama-4's chunked layers */
    if (counts[LAYER_SLIDING] && !window) {               /* no window given: they hold all */
      counts[LAYER_FULL] += counts[LAYER_SLIDING];
      counts[LAYER_SLIDING] = 0;
    }
  } else {
    CHECK(from_hybrid_pattern(c, m->num_layers, counts, &matched));
    if (!matched) {
      counts[LAYER_FULL] = m->num_layers;
      if (window > 0) {
        CHECK(sliding_count(c, m->num_layers, &counts[LAYER_SLIDING]));
        counts[LAYER_FULL] -= counts[LAYER_SLIDING];
      }
    }
  }
  m->attention_layers = counts[LAYER_FULL] + counts[LAYER_SLIDING];
  m->sliding_layers = counts[LAYER_SLIDING];
  m->sliding_window = m->sliding_layers ? window : 0;
  x->state_layers = counts[LAYER_STATE];
  return PS_OK;
}
