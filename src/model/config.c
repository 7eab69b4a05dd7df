/* config.json -> ps_model: the shape (layers, heads, head size), experts, dtype, MLA, and via
 * layers.c / quant.c the attention kind and quantization. Multimodal configs keep the
 * language model under text_config (Gemma-3, Llama-4, Qwen3.5), llm_config (InternVL) or
 * language_config (DeepSeek-VL2); fields found only at the top level are read there. */
#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "model/model_internal.h"

#define CHECK(expr)                                                                                \
  do {                                                                                             \
    st = (expr);                                                                                   \
    if (st != PS_OK) return st;                                                                    \
  } while (0)

static const char *const text_keys[] = {"text_config", "llm_config", "language_config"};

/* Defaults a config may leave to its transformers class (only those that change the
 * estimates: Gemma-3's text_config omits the vocabulary and the window pattern). */
static void class_defaults(const char *text_type, ps_model *m) {
  if (strcmp(text_type, "gemma3_text") == 0 || strcmp(text_type, "gemma3") == 0) {
    if (!m->vocab_size) m->vocab_size = 262208;
    if (!m->max_position_embeddings) m->max_position_embeddings = 131072;
  }
}

/* torch_dtype (or "dtype", transformers >= 4.56) -> the bytes vLLM's dtype=auto serves it in:
 * float32 checkpoints run in 16 bits (ModelConfig's auto dtype), so 2 there too. */
static ps_status read_dtype(const ps__cfg *c, ps_model *m) {
  static const struct {
    const char *name;
    int bytes;
  } known[] = {{"bfloat16", 2}, {"float16", 2}, {"float32", 2}, {"half", 2},
               {"float", 2},    {"bf16", 2},    {"fp16", 2},    {"fp32", 2}};
  char path[128];
  const json_t *v = ps__cfg_find(c, PS_CFG_KEYS("torch_dtype", "dtype"), path, sizeof(path));
  m->dtype_bytes = 2; /* no dtype: transformers' float32 default, served in 16 bits */
  if (!v) return PS_OK;
  if (!json_is_string(v)) return ps__cfg_fail(c, path, "expected a string such as \"bfloat16\"");
  const char *s = json_string_value(v);
  for (size_t i = 0; i < PS_ARRAY_LEN(known); i++) {
    if (strcmp(s, known[i].name) == 0) {
      ps__strlcpy(m->dtype, s, sizeof(m->dtype));
      m->dtype_bytes = known[i].bytes;
      return PS_OK;
    }
  }
  return ps__cfg_fail(c, path, "unknown dtype '%.40s' (expected bfloat16, float16 or float32)", s);
}

static ps_status read_architecture(const ps__cfg *c, ps_model *m) {
  const json_t *v = json_object_get(c->top, "architectures");
  if (!v || json_is_null(v)) return PS_OK;
  if (!json_is_array(v)) return ps__cfg_fail(c, "architectures", "expected a list of strings");
  if (json_array_size(v) == 0) return PS_OK;
  const json_t *first = json_array_get(v, 0);
  if (!json_is_string(first)) return ps__cfg_fail(c, "architectures[0]", "expected a string");
  ps__strlcpy(m->architecture, json_string_value(first), sizeof(m->architecture));
  return PS_OK;
}

/* Heads and head size; for MLA the projections that replace the KV heads. */
static ps_status read_attention(const ps__cfg *c, ps_model *m, ps__model_extra *x) {
  ps_status st;
  bool found;
  int max = PS_MODEL_INT_MAX;
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("num_attention_heads", "n_head", "n_heads", "num_heads"), true,
                    1, max, &m->num_heads, NULL));
  m->num_kv_heads = m->num_heads;
  CHECK(ps__cfg_int(
      c, PS_CFG_KEYS("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"),
      false, 1, max, &m->num_kv_heads, &found));
  if (m->num_kv_heads > m->num_heads || m->num_heads % m->num_kv_heads != 0) {
    char path[128];
    ps__cfg_find(c, PS_CFG_KEYS("num_key_value_heads"), path, sizeof(path));
    return ps__cfg_fail(c, path, "%d KV heads do not divide the %d attention heads",
                        m->num_kv_heads, m->num_heads);
  }

  CHECK(ps__cfg_int(c, PS_CFG_KEYS("kv_lora_rank"), false, 1, max, &m->kv_lora_rank, &found));
  if (found) {
    m->attention = PS_ATTENTION_MLA;
    CHECK(
        ps__cfg_int(c, PS_CFG_KEYS("qk_rope_head_dim"), true, 1, max, &m->qk_rope_head_dim, NULL));
    CHECK(
        ps__cfg_int(c, PS_CFG_KEYS("qk_nope_head_dim"), false, 0, max, &x->qk_nope_head_dim, NULL));
    CHECK(ps__cfg_int(c, PS_CFG_KEYS("q_lora_rank"), false, 0, max, &x->q_lora_rank, NULL));
    x->v_head_dim = x->qk_nope_head_dim;
    CHECK(ps__cfg_int(c, PS_CFG_KEYS("v_head_dim"), false, 1, max, &x->v_head_dim, NULL));
    /* The query/key head size: hidden_size / heads means nothing for MLA. */
    m->head_dim = x->qk_nope_head_dim + m->qk_rope_head_dim;
    return PS_OK;
  }

  CHECK(ps__cfg_int(c, PS_CFG_KEYS("head_dim", "head_size"), false, 1, max, &m->head_dim, &found));
  if (!found) {
    if (m->hidden_size % m->num_heads != 0) {
      char path[128];
      ps__cfg_find(c, PS_CFG_KEYS("head_dim"), path, sizeof(path));
      return ps__cfg_fail(c, path,
                          "not given, and hidden_size %d is not a multiple of the %d "
                          "attention heads",
                          m->hidden_size, m->num_heads);
    }
    m->head_dim = m->hidden_size / m->num_heads;
  }
  return PS_OK;
}

static ps_status read_experts(const ps__cfg *c, ps_model *m, ps__model_extra *x) {
  ps_status st;
  int max = PS_MODEL_INT_MAX;
  CHECK(ps__cfg_int(
      c, PS_CFG_KEYS("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts"),
      false, 0, PS_MODEL_MAX_EXPERTS, &m->num_experts, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("num_experts_per_tok", "moe_topk"), false, 0,
                    PS_MODEL_MAX_EXPERTS, &m->experts_per_token, NULL));
  if (m->num_experts == 0) {
    m->experts_per_token = 0;
    return PS_OK;
  }
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("moe_intermediate_size"), false, 0, max,
                    &x->moe_intermediate_size, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("n_shared_experts"), false, 0, max, &x->shared_experts, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("shared_expert_intermediate_size"), false, 0, max,
                    &x->shared_intermediate_size, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("first_k_dense_replace"), false, 0, max, &x->first_dense_layers,
                    NULL));
  return PS_OK;
}

static ps_status read_config(const ps__cfg *c, ps_model *m, ps__model_extra *x) {
  ps_status st;
  int max = PS_MODEL_INT_MAX;
  char text_type[64];
  CHECK(read_architecture(c, m));
  /* model_type names the whole model ("gemma3"); the text config's ("gemma3_text") picks
   * the class defaults. */
  const json_t *type = json_object_get(c->top, "model_type");
  if (type && !json_is_null(type)) {
    if (!json_is_string(type)) return ps__cfg_fail(c, "model_type", "expected a string");
    ps__strlcpy(m->model_type, json_string_value(type), sizeof(m->model_type));
  }
  CHECK(ps__cfg_str(c, "model_type", text_type, sizeof(text_type)));

  CHECK(ps__cfg_int(c, PS_CFG_KEYS("num_hidden_layers", "n_layer", "num_layers", "n_layers"), true,
                    1, max, &m->num_layers, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("hidden_size", "n_embd", "d_model"), true, 1, max,
                    &m->hidden_size, NULL));
  CHECK(read_attention(c, m, x));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("vocab_size", "padded_vocab_size"), false, 1, max,
                    &m->vocab_size, NULL));
  CHECK(ps__cfg_int(c, PS_CFG_KEYS("intermediate_size", "ffn_hidden_size", "n_inner"), false, 0,
                    max, &m->intermediate_size, NULL));
  bool found;
  CHECK(ps__cfg_int(
      c, PS_CFG_KEYS("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"),
      false, 1, max, &m->max_position_embeddings, &found));
  class_defaults(text_type, m);
  if (m->max_position_embeddings > 0) m->valid |= PS_MODEL_MAX_POSITIONS;
  /* transformers' Gemma classes tie by default; most others (Llama, Qwen2, Mistral) not. */
  m->tied_embeddings = strncmp(text_type, "gemma", 5) == 0;
  CHECK(ps__cfg_bool(c, "tie_word_embeddings", &m->tied_embeddings, NULL));
  CHECK(read_dtype(c, m));
  CHECK(read_experts(c, m, x));
  CHECK(ps__model_quant(c, m, x));
  CHECK(ps__model_layers(c, m, x));
  CHECK(ps__model_vision(c, m));
  if (m->attention != PS_ATTENTION_MLA) {
    if (x->state_layers > 0)
      m->attention = PS_ATTENTION_HYBRID;
    else if (m->sliding_layers > 0)
      m->attention = PS_ATTENTION_SLIDING;
  }
  return PS_OK;
}

ps_status ps__model_json_load(ps_ctx *ctx, const char *text, size_t len, const char *name,
                              json_t **out) {
  json_error_t err;
  *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  if (*out) return PS_OK;
  if (json_error_code(&err) == json_error_out_of_memory)
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory parsing JSON", name);
  if (json_error_code(&err) == json_error_null_character) /* jansson's text names its flag */
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: \\u0000 is not allowed in strings", name,
                    err.line, err.column);
  return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", name, err.line, err.column, err.text);
}

ps_status ps__model_parse_config(ps_ctx *ctx, const char *text, size_t len, const char *name,
                                 ps_model *out) {
  ps_status st = PS_OK;
  json_t *doc = NULL;
  ps__model_extra extra;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps__model_parse_config: out is NULL");
  memset(out, 0, sizeof(*out));
  memset(&extra, 0, sizeof(extra));
  if (!name) name = "config.json";
  if (!text && len) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps__model_parse_config: no text");
  st = ps__model_json_load(ctx, text ? text : "", len, name, &doc);
  if (st != PS_OK) goto cleanup;
  if (!json_is_object(doc)) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: expected a JSON object", name);
    goto cleanup;
  }
  ps__cfg c = {ctx, name, doc, doc, ""};
  for (size_t i = 0; i < PS_ARRAY_LEN(text_keys); i++) {
    const json_t *sub = json_object_get(doc, text_keys[i]);
    if (!sub || json_is_null(sub)) continue;
    if (!json_is_object(sub)) {
      st = ps__cfg_fail(&c, text_keys[i], "expected an object");
      goto cleanup;
    }
    c.text = sub;
    c.text_key = text_keys[i];
    break;
  }
  st = read_config(&c, out, &extra);
  if (st != PS_OK) goto cleanup;
  out->weight_bytes = ps__model_estimate_weights(out, &extra);
  /* Each figure may be in range and their product still absurd (2^20 layers of 2^20 experts):
   * no model has a petabyte of weights, so such a config is bad input, never a plan. */
  if (out->weight_bytes > PS_MAX_WEIGHT_BYTES) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s: the shapes describe %.3g bytes of weights; no model is that large (at "
                  "most %llu)",
                  name, (double)out->weight_bytes, (unsigned long long)PS_MAX_WEIGHT_BYTES);
    goto cleanup;
  }
  ps__model_kv_note(out, out->estimate_note, sizeof(out->estimate_note));
cleanup:
  json_decref(doc);
  if (st != PS_OK) memset(out, 0, sizeof(*out));
  return st;
}
