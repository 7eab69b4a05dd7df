/* peerscope/model.h: model facts from a directory, a Hugging Face id or a size.
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_MODEL_H
#define PEERSCOPE_MODEL_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model facts (pure parsers of a Hugging Face directory) ---------------------------- */

typedef enum ps_attention {
  PS_ATTENTION_FULL = 0,    /* MHA / GQA / MQA: 2 x kv_heads x head_dim per token and layer */
  PS_ATTENTION_MLA = 1,     /* DeepSeek multi-head latent attention: kv_lora_rank + rope dim */
  PS_ATTENTION_SLIDING = 2, /* some or all layers attend within a window */
  PS_ATTENTION_HYBRID = 3   /* attention mixed with linear/state-space layers */
} ps_attention;

enum {
  PS_MODEL_WEIGHTS_EXACT = 1u << 0, /* weight_bytes summed from safetensors headers / index */
  PS_MODEL_PARAMS = 1u << 1,        /* param_count known */
  PS_MODEL_MAX_POSITIONS = 1u << 2
};

/* The vision tower of a multimodal model (config.json's vision_config); all 0 without one. */
typedef struct ps_vision {
  bool present; /* a vision_config: vLLM profiles its encoder before the text forward */
  int depth, hidden_size, intermediate_size, num_heads;
  int patch_size, spatial_merge_size, temporal_patch_size, in_channels;
  int out_hidden_size;  /* the merger's output: the language model's hidden size */
  int image_size;       /* CLIP/SigLIP: the side of the square crop, pixels */
  int deepstack_layers; /* Qwen3-VL: len(deepstack_visual_indexes), outputs kept beside the last */
  int tokens_per_image; /* Gemma-3: config.json's mm_tokens_per_image (after pooling) */
  bool full_features;   /* LLaVA: vision_feature_select_strategy "full" (keeps the CLS token) */
  int num_pinpoints;    /* LLaVA-NeXT image_grid_pinpoints held below; -1 = more than fit */
  int pinpoints[32][2]; /* [height, width] in pixels */
} ps_vision;

typedef struct ps_model {
  uint32_t valid;        /* PS_MODEL_* bits */
  char name[128];        /* directory name ("org/name" for an HF cache snapshot), or
                            "70B bf16" / "140 GB" for synthetic models */
  char architecture[64]; /* config "architectures"[0], "" if none */
  char model_type[64];
  int num_layers; /* num_hidden_layers */
  int hidden_size;
  int num_heads;    /* num_attention_heads */
  int num_kv_heads; /* num_key_value_heads, default num_heads */
  int head_dim;     /* config head_dim, else hidden_size / num_heads */
  int vocab_size;
  int intermediate_size;
  int max_position_embeddings;
  bool tied_embeddings;
  int num_experts; /* routed experts, 0 for dense */
  int experts_per_token;
  char dtype[16];        /* torch_dtype: "bfloat16", "float16", "float32", ... */
  int dtype_bytes;       /* of the activations / default KV cache: 2 for bf16/fp16 */
  char quantization[32]; /* quantization_config.quant_method ("fp8", "awq", ...), "" if none */
  uint64_t weight_bytes; /* all weights, experts included */
  uint64_t param_count;
  ps_attention attention;
  int kv_lora_rank, qk_rope_head_dim; /* MLA */
  int sliding_window;                 /* tokens, 0 if none */
  int sliding_layers;                 /* layers that use the window (the rest attend fully) */
  char estimate_note[256];            /* which KV estimate applies, in one sentence */
  int attention_layers; /* layers holding a KV cache: num_layers less a hybrid's linear-attention
                           and state-space layers */
  ps_vision vision;
} ps_model;

/* Reads `dir`: config.json (required) plus safetensors headers (8-byte length + JSON; never
 * the weights) or model.safetensors.index.json's metadata.total_size. A directory holding only
 * config.json and the index plans too. A directory of GGUF or .bin weights without
 * safetensors gets PS_ERR_BAD_INPUT saying to use --model-size-gb. Errors name the file and
 * the line (JSON) or byte offset (safetensors). *out: ps_model_free. */
PS_API ps_status ps_model_load(ps_ctx *ctx, const char *dir, ps_model **out);
/* A model known only by size: weights from `params_b` billions x the dtype's bytes
 * ("bf16", "fp16", "fp8", "int4"), or `size_gb` directly (params_b 0). Layers and heads stay
 * 0: the planner then says that it cannot check TP divisibility or KV size. *out:
 * ps_model_free. */
PS_API ps_status ps_model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                                    ps_model **out);
PS_API void ps_model_free(ps_model *model);
/* KV cache bytes that one GPU needs for all the model's layers at tensor-parallel size tp,
 * for `seqs` sequences of `tokens` tokens each, counted in vLLM's blocks (16 tokens; 64 for
 * MLA): full-attention layers hold every token, sliding-window layers at most the window;
 * KV heads per GPU = kv_heads / tp, at least 1 (replicated when tp > kv_heads). KV elements
 * of kv_dtype_bytes (0 = the model's dtype). 0 when the model's shape is unknown. A pipeline
 * stage holding L of the layers needs L / num_layers of it. */
PS_API uint64_t ps_model_kv_bytes(const ps_model *model, int tp, int kv_dtype_bytes,
                                  uint64_t tokens, int seqs);

/* ---- model ids: a Hugging Face id from the cache, the catalog or the Hub (docs/models.md) -- */

/* "org/name[@revision]", checked as the Hub checks it: org and name of letters, digits, '-',
 * '_' and '.', each starting and ending with a letter, digit or '_', no "--" or "..", the name
 * at most 96 characters and not ending in ".git"; a revision is a branch, tag or commit
 * ("main", "v1.0", "refs/pr/3", 40 hex digits) as git allows ref names. */
typedef struct ps_model_id {
  size_t size;        /* sizeof(ps_model_id) */
  char repo[200];     /* "org/name" */
  char revision[256]; /* "" when none was given (the default branch, "main") */
} ps_model_id;

/* PS_ERR_BAD_INPUT with one line naming the text and the rule it breaks. */
PS_API ps_status ps_model_id_parse(ps_ctx *ctx, const char *text, ps_model_id **out);
PS_API void ps_model_id_free(ps_model_id *id);

/* Where a model's facts came from, in the order they are looked for. */
typedef enum ps_model_origin {
  PS_MODEL_FROM_DIRECTORY = 0, /* a local directory */
  PS_MODEL_FROM_HF_CACHE = 1,  /* a snapshot in the Hugging Face cache */
  PS_MODEL_FROM_CATALOG = 2,   /* the catalog shipped with peerscope */
  PS_MODEL_FROM_HUB = 3        /* config and index (or safetensors header) from the Hub */
} ps_model_origin;

typedef struct ps_model_resolve_opts {
  size_t size;           /* sizeof(ps_model_resolve_opts); 0 fields mean the default */
  bool offline;          /* no network, as HF_HUB_OFFLINE=1 */
  bool no_catalog;       /* skip the bundled catalog */
  const char *hub_cache; /* NULL = HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub */
  const char *endpoint;  /* NULL = HF_ENDPOINT, else https://huggingface.co */
  const char *token;     /* NULL = HF_TOKEN, else the file HF_TOKEN_PATH or HF_HOME/token */
  const char *catalog;   /* NULL = the bundled catalog (PS_BUNDLED_MODELS) */
  const char *cache_dir; /* peerscope's cache (header totals); NULL as ps_verify_opts */
  int timeout_ms;        /* per request; 0 = HF_HUB_DOWNLOAD_TIMEOUT seconds, else 10 s */
  int retries;           /* on 429, 5xx and timeouts; 0 = 2, -1 = none */
} ps_model_resolve_opts;

typedef struct ps_model_source {
  size_t size; /* sizeof(ps_model_source) */
  ps_model_origin origin;
  char given[512];    /* the text as given: what `vllm serve` is told */
  char repo[200];     /* "org/name"; "" for a directory */
  char revision[256]; /* as given; "" = the default branch */
  char commit[48];    /* the snapshot's 40-hex commit; "" when not known */
  char path[4096];    /* the directory read: the local one, the snapshot or the catalog entry */
  char where[4608];   /* for people: "Hugging Face cache /root/.cache/huggingface/hub
                         (revision 0e9e...)", "peerscope catalog (source revision ...)", ... */
  int requests;       /* HTTP requests made (retries included) */
  uint64_t bytes;     /* bytes received over HTTP */
  double ms;          /* wall time of the resolution */
} ps_model_source;

/* Reads a model given as a directory or as a Hugging Face id, in this order: a local
 * directory; the Hugging Face cache (models--org--name/refs/<revision> -> snapshots/<sha>/);
 * the catalog; the Hub over HTTPS (config.json, then model.safetensors.index.json or the
 * safetensors header through two Range requests: at most 3 requests, never weights), whose
 * files are then written into the Hugging Face cache for the next plan and vLLM. Text that is
 * not an existing directory and not shaped like an id is read as a directory (ps_model_load's
 * errors). `source` (may be NULL) says where the facts came from; free it with
 * ps_model_source_free. PS_ERR_BAD_INPUT for a malformed id, a repository, revision or file
 * the Hub does not have, or files that are not what they claim; PS_ERR_NETWORK when the Hub
 * cannot answer (offline, timeout, DNS, TLS, rate limited, a gated model without a token). */
PS_API ps_status ps_model_resolve(ps_ctx *ctx, const char *dir_or_id,
                                  const ps_model_resolve_opts *opts, ps_model **out,
                                  ps_model_source **source);
PS_API void ps_model_source_free(ps_model_source *source);
/* "local directory", "Hugging Face cache", "peerscope catalog", "Hugging Face Hub". */
PS_API const char *ps_model_origin_name(ps_model_origin origin);

/* The catalog's ids, sorted; *ids is one allocation (free with ps_free) of *count pointers
 * followed by the strings. `catalog` NULL = the bundled one. */
PS_API ps_status ps_model_catalog_ids(ps_ctx *ctx, const char *catalog, char ***ids, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
