/* vLLM's own memory accounting, per version (docs/vllm-memory.md): which rules a version
 * follows, the CUDA-visible total, the non-KV terms its profile run measures, and how it turns
 * the bytes left into KV blocks, "GPU KV cache size" and "Maximum concurrency". */
#ifndef PS_PLAN_VLLM_H
#define PS_PLAN_VLLM_H

#include <stdbool.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

typedef enum ps__engine {
  PS__ENGINE_V0,    /* worker.py memory_profiling (0.6-0.7; V0 up to 0.10) */
  PS__ENGINE_V1_08, /* V1 of 0.8.x: torch peak + all non-torch memory */
  PS__ENGINE_V1     /* V1 from 0.9: weights + activation peak + non-torch increase */
} ps__engine;

typedef enum ps__kv_print {
  PS__PRINT_BLOCKS,     /* num_blocks x block_size */
  PS__PRINT_PER_GROUP,  /* num_blocks // groups x block_size (0.9-0.19; hybrids differ) */
  PS__PRINT_CONCURRENCY /* int(max_concurrency x max_model_len) (0.21 on) */
} ps__kv_print;

/* The top-k/top-p implementation the dummy sampler run takes by default (docs/vllm-memory.md,
 * "The profile run's peak, from the code"); it sets the sampler's bytes per row x vocab entry. */
typedef enum ps__sampler {
  PS__SAMPLER_SORT,       /* PyTorch sort + scatter (V0; V1 when FlashInfer is off or absent) */
  PS__SAMPLER_FLASHINFER, /* flashinfer top_k_mask_logits + softmax + top-p sampling */
  PS__SAMPLER_TRITON,     /* in-place Triton top-k/top-p kernel (0.17 on, >= 8 rows) */
  PS__SAMPLER_V0_FITTED   /* V0 and V1 0.8: not read, the corpus' figure */
} ps__sampler;

typedef struct ps__vllm_rules {
  const char *modelled; /* the release these rules were read from */
  int from;             /* first version covered: major * 10000 + minor * 100 + patch */
  ps__engine engine;
  bool graphs_first; /* CUDA graphs estimated and subtracted before sizing (0.21 on) */
  bool a100_small;   /* A100s get the small max_num_batched_tokens even at 80 GB (0.9.2 on) */
  bool kv_groups;    /* mixed sliding/full layers are grouped (hybrid KV manager, 0.9 on) */
  double default_util;
  ps__kv_print print;
  bool non_torch_all;       /* non-torch counted whole, the CUDA context included (0.6.4, V1 0.8) */
  ps__sampler sampler;      /* the dummy sampler's default top-k/top-p path */
  bool flashinfer_optional; /* FlashInfer sampler assumed, but a pip install may lack it */
} ps__vllm_rules;

typedef struct ps__vllm {
  const ps__vllm_rules *rules;
  char version[32]; /* as given, or the modelled one */
  char note[192];   /* how the version was chosen */
} ps__vllm;

/* The rules for `given` (NULL or "": the newest modelled). Unparseable: PS_ERR_INVALID_ARG. */
ps_status ps__vllm_resolve(ps_ctx *ctx, const char *given, ps__vllm *out);

/* What cudaMemGetInfo reports as total for a GPU whose NVML memory.total is given. */
uint64_t ps__visible_total(const ps_gpu *gpu);

/* The error band of the KV figure against the published logs, one line. */
void ps__vllm_error_band(const ps__vllm *v, char *out, size_t len);

/* The multimodal encoder's share of the profile run (encoder.c). */
typedef enum ps__encoder_kind {
  PS__ENCODER_NONE,      /* text-only model (or V0) */
  PS__ENCODER_MODELLED,  /* derived from vLLM's code for this tower */
  PS__ENCODER_ESTIMATED, /* derived for the image; a larger video item may be profiled */
  PS__ENCODER_UNMODELLED /* a vision tower the plan cannot size: the KV figure may be high */
} ps__encoder_kind;

typedef struct ps__encoder_profile {
  ps__encoder_kind kind;
  uint64_t run;               /* the encoder run's own peak */
  uint64_t held;              /* its outputs, kept in the encoder cache through the text forward */
  int items, tokens_per_item; /* tokens in the encoder budget per item */
  bool video;                 /* the dummy items are videos (else images) */
} ps__encoder_profile;

/* The non-KV terms vLLM subtracts from total x utilization, besides the weights. */
typedef struct ps__vllm_memory {
  uint64_t activation, non_torch, graphs;
  ps__encoder_profile encoder;
  uint64_t encoder_bytes;      /* what the encoder adds to activation (0 where not modelled) */
  int batched;                 /* max_num_batched_tokens of the profile run */
  int profile_seqs;            /* rows the dummy sampler runs (max_num_seqs' default) */
  uint64_t without_flashinfer; /* more activation if the sampler sorts (flashinfer_optional) */
} ps__vllm_memory;

typedef struct ps__vllm_setup {
  const ps__vllm *vllm;
  int tp;
  int max_model_len; /* requested, else the model's maximum */
  int batched;       /* requested max_num_batched_tokens, 0 = the default */
  bool eager;
  uint64_t visible; /* smallest CUDA-visible total of the GPUs used */
  const char *gpu_name;
  int seqs; /* requested max_num_seqs, 0 = the default (the dummy sampler runs that many rows) */
} ps__vllm_setup;

void ps__vllm_memory_make(const ps_model *m, const ps__vllm_setup *s, ps__vllm_memory *out);
void ps__vllm_encoder(const ps_model *m, const ps__vllm_setup *s, int batched,
                      ps__encoder_profile *out);

/* KV blocks as vLLM lays them out on one GPU of a stage. */
typedef struct ps__kv_layout {
  uint64_t page;      /* bytes of one block of one layer */
  int block;          /* tokens per block */
  int pool_layers;    /* layers sharing the bytes per block id */
  int full_groups;    /* groups of full-attention layers */
  int sliding_groups; /* groups of sliding-window layers */
  int window;         /* tokens */
  int batched;        /* max_num_batched_tokens (what a sliding layer keeps beyond w) */
  ps__kv_print print;
} ps__kv_layout;

/* false when the model's KV shape is unknown. `layers` of the model are on this stage. */
bool ps__kv_layout_make(const ps_model *m, const ps__vllm *v, int tp, int kv_dtype_bytes,
                        int block_size, int batched, int layers, ps__kv_layout *out);
uint64_t ps__kv_blocks(const ps__kv_layout *l, uint64_t bytes);
uint64_t ps__kv_blocks_per_request(const ps__kv_layout *l, uint64_t len);
/* "GPU KV cache size: N tokens" as this version prints it. */
uint64_t ps__kv_printed_tokens(const ps__kv_layout *l, uint64_t blocks, uint64_t len);
int ps__kv_groups(const ps__kv_layout *l);

#endif
