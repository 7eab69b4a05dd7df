/* Internals of src/model: a local Hugging Face model directory into struct ps_model. */
#ifndef PS_MODEL_INTERNAL_H
#define PS_MODEL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "peerscope/peerscope.h"

/* config.json and the index are a few KiB; anything this large is not one. */
#define PS_MODEL_JSON_MAX_BYTES (64u << 20)
/* The safetensors library itself refuses headers over 100 MB. */
#define PS_SAFETENSORS_HEADER_MAX (100u << 20)
/* Shard files of one model, listed by its index or found in its directory: the largest
 * models have a few hundred. */
#define PS_MODEL_MAX_SHARDS 100000
/* Experts per MoE layer: today's largest have 384 (Kimi K2) and 512 (Qwen3-Next). */
#define PS_MODEL_MAX_EXPERTS 65536
/* Bounds for config integers: above any real model, below int overflow in products. */
#define PS_MODEL_INT_MAX (1 << 30)

/* ---- typed access to config.json (cfg_get.c) ------------------------------------------ */

/* A parsed config. Language-model fields live in `text` (text_config of a multimodal
 * config, else the top level); a key missing there is looked up at the top level too. */
typedef struct ps__cfg {
  ps_ctx *ctx;
  const char *name; /* "<dir>/config.json", for messages */
  const json_t *top;
  const json_t *text;
  const char *text_key; /* "text_config", ... or "" when text is the top level */
} ps__cfg;

/* Records "name: path: message" (PS_ERR_BAD_INPUT) and returns that status. */
ps_status ps__cfg_fail(const ps__cfg *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The first of `keys` (aliases, canonical name first) present and not null, or NULL.
 * path gets its JSON path for messages ("text_config.head_dim"); when none is present,
 * the canonical key's path in the text config. */
const json_t *ps__cfg_find(const ps__cfg *c, const char *const *keys, size_t key_count, char *path,
                           size_t path_len);

/* An integer in [min, max] under one of `keys`. Missing or null: an error when required,
 * else *out untouched and *found (may be NULL) false. Integral reals (4096.0) are accepted. */
ps_status ps__cfg_int(const ps__cfg *c, const char *const *keys, size_t key_count, bool required,
                      int min, int max, int *out, bool *found);
/* A boolean; missing or null leaves *out untouched. */
ps_status ps__cfg_bool(const ps__cfg *c, const char *key, bool *out, bool *found);
/* A string, truncated to cap; missing or null gives "". */
ps_status ps__cfg_str(const ps__cfg *c, const char *key, char *out, size_t cap);

#define PS_CFG_KEYS(...)                                                                           \
  ((const char *const[]){__VA_ARGS__}),                                                            \
      (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* ---- what config.json says beyond struct ps_model ------------------------------------- */

typedef struct ps__model_extra {
  int moe_intermediate_size;                     /* per routed expert; 0 = intermediate_size */
  int shared_experts;                            /* n_shared_experts (DeepSeek) */
  int shared_intermediate_size;                  /* shared_expert_intermediate_size (Qwen MoE) */
  int first_dense_layers;                        /* first_k_dense_replace (DeepSeek) */
  int q_lora_rank, qk_nope_head_dim, v_head_dim; /* MLA projections */
  int state_layers;                              /* hybrid: linear-attention / state-space layers */
  double weight_bits; /* quantized linear weights incl. scales; 0 = dtype */
} ps__model_extra;

/* layers.c: attention_layers, sliding_window, sliding_layers and extra->state_layers from
 * layer_types, the hybrid patterns (Jamba, Nemotron-H, Qwen3-Next, MiniMax) and the
 * sliding-window patterns (Gemma-2/3, Cohere2, Qwen2, Mistral). */
ps_status ps__model_layers(const ps__cfg *c, ps_model *m, ps__model_extra *extra);

/* quant.c: quantization_config -> m->quantization and extra->weight_bits. */
ps_status ps__model_quant(const ps__cfg *c, ps_model *m, ps__model_extra *extra);
/* vision_config -> m->vision (vision.c); absent leaves it zero. */
ps_status ps__model_vision(const ps__cfg *c, ps_model *m);

/* estimate.c: weight bytes from the shapes alone (no files), experts included. */
uint64_t ps__model_estimate_weights(const ps_model *m, const ps__model_extra *extra);

/* kv.c: the one-sentence note on which KV estimate applies. */
void ps__model_kv_note(const ps_model *m, char *out, size_t len);

/* ---- safetensors (safetensors.c) ------------------------------------------------------ */

/* Reads only the header of the file at `path` and adds it to *sum. */
ps_status ps__safetensors_read(ps_ctx *ctx, const char *path, ps__st_sum *sum);

/* ---- the directory (weights.c, load.c) ------------------------------------------------- */

/* "<dir>: only GGUF/.bin weights found; ..." */
ps_status ps__model_gguf_error(ps_ctx *ctx, const char *dir);

/* Replaces the config estimate in m with exact figures from the index or the headers when
 * the directory has them; leaves the estimate (and says so in estimate_note) otherwise. */
ps_status ps__model_weights(ps_ctx *ctx, const char *dir, const ps__model_dir *d, ps_model *m);

#endif
