/* Model facts: real Hugging Face configs (tests/fixtures/models) to exact shapes, the KV
 * formula against hand-computed figures, safetensors headers written here byte by byte,
 * weight sources (index, headers, config alone), synthetic models, and every message. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#include "model/model_internal.h"

/* Room for a path and a message around it. */
#define MSG_LEN (PATH_MAX * 3)

static ps_ctx *ctx;
static char root[PATH_MAX]; /* this run's scratch directory */

static int setup(void **state) {
  (void)state;
  ctx = ps_ctx_new();
  return ctx && ps_test_scratch_dir("model", root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ps_ctx_free(ctx);
  return ps_test_remove_tree(root);
}

/* ---- helpers ------------------------------------------------------------------------ */

static const char *fixture_model(const char *name) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s", ps_test_fixture_path("models"));
  size_t n = strlen(path);
  snprintf(path + n, sizeof(path) - n, "/%s", name);
  return path;
}

static ps_model load_ok(const char *dir) {
  ps_model m;
  ps_status st = ps_test_model_load(ctx, dir, &m);
  if (st != PS_OK) fail_msg("%s: %s", dir, ps_ctx_error(ctx));
  return m;
}

static ps_model parse_ok(const char *json) {
  ps_model m;
  ps_status st = ps__model_parse_config(ctx, json, strlen(json), "cfg.json", &m);
  if (st != PS_OK) fail_msg("%s", ps_ctx_error(ctx));
  return m;
}

static void expect_error(ps_status st, ps_status want, const char *message) {
  if (st != want)
    fail_msg("status %s, expected %s (%s)", ps_status_name(st), ps_status_name(want),
             ps_ctx_error(ctx));
  assert_string_equal(ps_ctx_error(ctx), message);
}

static void parse_fails(const char *json, const char *message) {
  ps_model m;
  expect_error(ps__model_parse_config(ctx, json, strlen(json), "cfg.json", &m), PS_ERR_BAD_INPUT,
               message);
}

/* A fresh directory under the scratch root. */
static const char *new_dir(const char *name) {
  static char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", root, name);
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0'; /* each parent first */
    mkdir(path, 0755);
    *p = '/';
  }
  if (mkdir(path, 0755) != 0 && errno != EEXIST) fail_msg("mkdir %s: %s", path, strerror(errno));
  return path;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[PATH_MAX + 256];
  int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
  /* A cut path would write some other file and the test would check the wrong thing. */
  if (n < 0 || (size_t)n >= sizeof(path)) fail_msg("path too long: %s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text) {
  write_file(dir, name, text, strlen(text));
}

/* A safetensors file: 8-byte little-endian length, the header, then data_len bytes. */
static void write_st_len(const char *dir, const char *name, uint64_t length, const char *header,
                         size_t data_len) {
  size_t h = strlen(header);
  unsigned char *buf = calloc(1, 8 + h + data_len);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)(length >> (8 * i));
  memcpy(buf + 8, header, h);
  write_file(dir, name, buf, 8 + h + data_len);
  free(buf);
}

static void write_st(const char *dir, const char *name, const char *header, size_t data_len) {
  write_st_len(dir, name, strlen(header), header, data_len);
}

static const char *tiny_config =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
    "\"num_hidden_layers\": 2, \"hidden_size\": 8, \"num_attention_heads\": 2, "
    "\"vocab_size\": 10, \"intermediate_size\": 16, \"torch_dtype\": \"bfloat16\"}";

/* Two tensors: 6 BF16 elements (12 bytes) and 4 F32 (16 bytes). */
static const char *two_tensors =
    "{\"__metadata__\": {\"format\": \"pt\"}, "
    "\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 12]}, "
    "\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [12, 28]}}";

/* ---- real configs ------------------------------------------------------------------- */

static void test_llama31_8b(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("Llama-3.1-8B-Instruct"));
  assert_string_equal(m.name, "Llama-3.1-8B-Instruct");
  assert_string_equal(m.architecture, "LlamaForCausalLM");
  assert_string_equal(m.model_type, "llama");
  assert_int_equal(m.num_layers, 32);
  assert_int_equal(m.hidden_size, 4096);
  assert_int_equal(m.num_heads, 32);
  assert_int_equal(m.num_kv_heads, 8);
  assert_int_equal(m.head_dim, 128);
  assert_int_equal(m.vocab_size, 128256);
  assert_int_equal(m.intermediate_size, 14336);
  assert_int_equal(m.max_position_embeddings, 131072);
  assert_true(m.valid & PS_MODEL_MAX_POSITIONS);
  assert_false(m.tied_embeddings);
  assert_int_equal(m.num_experts, 0);
  assert_string_equal(m.dtype, "bfloat16");
  assert_int_equal(m.dtype_bytes, 2);
  assert_string_equal(m.quantization, "");
  assert_int_equal(m.attention, PS_ATTENTION_FULL);
  assert_int_equal(m.attention_layers, 32);
  assert_int_equal(m.sliding_layers, 0);
  /* Config only: the estimate of a dense Llama is exact (8,030,261,248 parameters). */
  assert_false(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_false(m.valid & PS_MODEL_PARAMS);
  assert_int_equal(m.weight_bytes, 16060522496ull);
  assert_string_equal(m.estimate_note,
                      "full attention: 2 x 32 layers x 8 KV heads x 128 x 2 bytes per token; "
                      "weights estimated from config.json (no safetensors or index)");

  /* 2 x 32 x 8 x 128 x 2 = 131,072 bytes per token at TP=1. */
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 1), 16ull * 131072);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 1, 1), 16ull * 131072);  /* one block */
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 17, 1), 32ull * 131072); /* two blocks */
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 131072, 4), 4ull * 131072 * 131072);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 1, 16, 1), 16ull * 65536); /* fp8 KV */
  assert_int_equal(ps_model_kv_bytes(&m, 2, 0, 16, 1), 16ull * 65536);
  /* TP=8: one KV head per GPU; beyond that vLLM replicates and it stops shrinking. */
  assert_int_equal(ps_model_kv_bytes(&m, 8, 0, 16, 1), 16ull * 2 * 32 * 1 * 128 * 2);
  assert_int_equal(ps_model_kv_bytes(&m, 16, 0, 16, 1), ps_model_kv_bytes(&m, 8, 0, 16, 1));
}

static void test_llama31_70b_index(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("Llama-3.1-70B-Instruct"));
  assert_int_equal(m.num_layers, 80);
  assert_int_equal(m.hidden_size, 8192);
  assert_int_equal(m.num_heads, 64);
  assert_int_equal(m.num_kv_heads, 8);
  assert_int_equal(m.head_dim, 128);
  assert_int_equal(m.intermediate_size, 28672);
  /* Only the index is here (no shards): its total_size is exact. */
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_false(m.valid & PS_MODEL_PARAMS);
  assert_int_equal(m.weight_bytes, 141107412992ull);
  assert_string_equal(m.estimate_note,
                      "full attention: 2 x 80 layers x 8 KV heads x 128 x 2 bytes per token");
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 1), 16ull * 2 * 80 * 8 * 128 * 2);
  assert_int_equal(ps_model_kv_bytes(&m, 4, 0, 16, 1), 16ull * 2 * 80 * 2 * 128 * 2);
}

static void test_qwen25_7b(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("Qwen2.5-7B-Instruct"));
  assert_string_equal(m.architecture, "Qwen2ForCausalLM");
  assert_int_equal(m.num_layers, 28);
  assert_int_equal(m.num_heads, 28);
  assert_int_equal(m.num_kv_heads, 4);
  assert_int_equal(m.head_dim, 128);
  assert_int_equal(m.vocab_size, 152064);
  /* sliding_window 131072 but use_sliding_window false: full attention. */
  assert_int_equal(m.attention, PS_ATTENTION_FULL);
  assert_int_equal(m.sliding_window, 0);
  assert_int_equal(m.sliding_layers, 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 1), 16ull * 2 * 28 * 4 * 128 * 2);
  assert_int_equal(ps_model_kv_bytes(&m, 2, 0, 16, 1), 16ull * 2 * 28 * 2 * 128 * 2);
  /* TP=4: one KV head each. */
  assert_int_equal(ps_model_kv_bytes(&m, 4, 0, 16, 1), 16ull * 2 * 28 * 1 * 128 * 2);
}

static void test_mixtral(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("Mixtral-8x7B-Instruct-v0.1"));
  assert_int_equal(m.num_experts, 8);
  assert_int_equal(m.experts_per_token, 2);
  assert_int_equal(m.num_kv_heads, 8);
  assert_int_equal(m.attention, PS_ATTENTION_FULL); /* sliding_window: null */
  /* 46.7B parameters: embeddings and head 2 x 32000 x 4096, per layer attention
   * 2 x 4096^2 + 2 x 4096 x 1024, 8 experts x 3 x 4096 x 14336, router 4096 x 8, norms. */
  uint64_t params = 2ull * 32000 * 4096 + 4096 +
                    32ull * (2 * 4096 + 2ull * 4096 * 4096 + 2ull * 4096 * 1024 +
                             8ull * 3 * 4096 * 14336 + 4096 * 8);
  assert_int_equal(m.weight_bytes, 2 * params);
}

static void test_deepseek_v3_mla(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("DeepSeek-V3"));
  assert_int_equal(m.attention, PS_ATTENTION_MLA);
  assert_int_equal(m.kv_lora_rank, 512);
  assert_int_equal(m.qk_rope_head_dim, 64);
  assert_int_equal(m.num_layers, 61);
  assert_int_equal(m.num_heads, 128);
  assert_int_equal(m.num_kv_heads, 128);
  assert_int_equal(m.head_dim, 192); /* qk_nope_head_dim + qk_rope_head_dim */
  assert_int_equal(m.num_experts, 256);
  assert_int_equal(m.experts_per_token, 8);
  assert_string_equal(m.quantization, "fp8");
  assert_string_equal(m.dtype, "bfloat16");
  assert_int_equal(m.dtype_bytes, 2);
  /* fp8 weights: about 671B x 1 byte plus bf16 embeddings. */
  assert_true(m.weight_bytes > 640000000000ull && m.weight_bytes < 700000000000ull);
  assert_string_equal(m.estimate_note,
                      "MLA: (512 latent + 64 rope) x 61 layers x 2 bytes per token, the same on "
                      "every TP rank (vLLM keeps the whole latent on each); weights estimated "
                      "from config.json (no safetensors or index)");
  /* (512 + 64) x 2 bytes x 61 layers per token, blocks of 64, not divided by TP. */
  uint64_t per_token = (512 + 64) * 2 * 61;
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 1, 1), 64 * per_token);
  assert_int_equal(ps_model_kv_bytes(&m, 8, 0, 64, 1), 64 * per_token);
  assert_int_equal(ps_model_kv_bytes(&m, 8, 0, 65, 2), 2 * 128 * per_token);
  assert_int_equal(ps_model_kv_bytes(&m, 8, 1, 64, 1), 64 * per_token / 2);
}

static void test_gemma2_alternating(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("gemma-2-9b-it"));
  assert_int_equal(m.num_layers, 42);
  assert_int_equal(m.num_heads, 16);
  assert_int_equal(m.num_kv_heads, 8);
  assert_int_equal(m.head_dim, 256); /* explicit, not 3584 / 16 */
  assert_true(m.tied_embeddings);    /* Gemma's default */
  assert_int_equal(m.attention, PS_ATTENTION_SLIDING);
  assert_int_equal(m.sliding_window, 4096);
  assert_int_equal(m.sliding_layers, 21);
  assert_int_equal(m.attention_layers, 42);
  uint64_t per_token_layer = 2 * 8 * 256 * 2;
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 100, 1), 42 * 112 * per_token_layer);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 8192, 1),
                   (21ull * 8192 + 21ull * 4096) * per_token_layer);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 8000, 1),
                   (21ull * 8000 + 21ull * 4096) * per_token_layer);
}

static void test_gemma3_text_config(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("gemma-3-27b-it"));
  assert_string_equal(m.architecture, "Gemma3ForConditionalGeneration");
  assert_string_equal(m.model_type, "gemma3");
  assert_int_equal(m.num_layers, 62);
  assert_int_equal(m.hidden_size, 5376);
  assert_int_equal(m.num_heads, 32);
  assert_int_equal(m.num_kv_heads, 16);
  assert_int_equal(m.head_dim, 128);
  assert_int_equal(m.vocab_size, 262208);   /* Gemma3TextConfig's default */
  assert_string_equal(m.dtype, "bfloat16"); /* from the top level */
  /* Default pattern 6: layers 5, 11, ..., 59 global, the other 52 windowed. */
  assert_int_equal(m.attention, PS_ATTENTION_SLIDING);
  assert_int_equal(m.sliding_window, 1024);
  assert_int_equal(m.sliding_layers, 52);
  uint64_t per_token_layer = 2 * 16 * 128 * 2;
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 32768, 1),
                   (10ull * 32768 + 52ull * 1024) * per_token_layer);
  /* SigLIP's vision_config through the CLIP-style aliases; no merge or temporal patch */
  assert_true(m.vision.present);
  assert_int_equal(m.vision.depth, 27);
  assert_int_equal(m.vision.hidden_size, 1152);
  assert_int_equal(m.vision.intermediate_size, 4304);
  assert_int_equal(m.vision.num_heads, 16);
  assert_int_equal(m.vision.patch_size, 14);
  assert_int_equal(m.vision.spatial_merge_size, 0);
}

/* Qwen2.5-VL's vision_config: every fact the encoder profile needs (src/plan/encoder.c). */
static void test_vision_config(void **state) {
  (void)state;
  ps_model m = parse_ok("{\"model_type\": \"qwen2_5_vl\", \"num_hidden_layers\": 2, "
                        "\"hidden_size\": 64, \"num_attention_heads\": 4, \"vision_config\": "
                        "{\"depth\": 32, \"hidden_size\": 1280, \"intermediate_size\": 3420, "
                        "\"num_heads\": 16, \"in_chans\": 3, \"out_hidden_size\": 3584, "
                        "\"patch_size\": 14, \"spatial_merge_size\": 2, "
                        "\"temporal_patch_size\": 2}}");
  assert_true(m.vision.present);
  assert_int_equal(m.vision.depth, 32);
  assert_int_equal(m.vision.in_channels, 3);
  assert_int_equal(m.vision.out_hidden_size, 3584);
  assert_int_equal(m.vision.spatial_merge_size, 2);
  assert_int_equal(m.vision.temporal_patch_size, 2);
  /* Qwen2-VL: embed_dim is the tower's width, hidden_size its output, mlp_ratio the MLP */
  ps_model q2 = parse_ok("{\"model_type\": \"qwen2_vl\", \"num_hidden_layers\": 2, "
                         "\"hidden_size\": 64, \"num_attention_heads\": 4, \"vision_config\": "
                         "{\"embed_dim\": 1280, \"hidden_size\": 3584, \"mlp_ratio\": 4}}");
  assert_int_equal(q2.vision.hidden_size, 1280);
  assert_int_equal(q2.vision.out_hidden_size, 3584);
  assert_int_equal(q2.vision.intermediate_size, 5120);
  /* Qwen3-VL's deepstack, LLaVA-NeXT's pinpoints and strategy, Gemma-3's tokens per image */
  ps_model mm = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, "
                         "\"num_attention_heads\": 4, \"mm_tokens_per_image\": 256, "
                         "\"vision_feature_select_strategy\": \"full\", "
                         "\"image_grid_pinpoints\": [[336, 672], [672, 672]], \"vision_config\": "
                         "{\"image_size\": 336, \"deepstack_visual_indexes\": [8, 16, 24]}}");
  assert_int_equal(mm.vision.image_size, 336);
  assert_int_equal(mm.vision.deepstack_layers, 3);
  assert_int_equal(mm.vision.tokens_per_image, 256);
  assert_true(mm.vision.full_features);
  assert_int_equal(mm.vision.num_pinpoints, 2);
  assert_int_equal(mm.vision.pinpoints[1][0], 672);
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
              "\"image_grid_pinpoints\": [[336]], \"vision_config\": {}}",
              "cfg.json: image_grid_pinpoints: expected [height, width] pairs of pixels");
  ps_model t = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, "
                        "\"num_attention_heads\": 4}");
  assert_false(t.vision.present);
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
              "\"vision_config\": []}",
              "cfg.json: vision_config: expected an object");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
              "\"vision_config\": {\"depth\": -1}}",
              "cfg.json: vision_config.depth: expected a non-negative integer");
}

static void test_qwen35_hybrid(void **state) {
  (void)state;
  ps_model m = load_ok(fixture_model("Qwen3.5-9B"));
  assert_string_equal(m.architecture, "Qwen3_5ForConditionalGeneration");
  assert_int_equal(m.num_layers, 32);
  assert_int_equal(m.num_heads, 16);
  assert_int_equal(m.num_kv_heads, 4);
  assert_int_equal(m.head_dim, 256);
  assert_string_equal(m.dtype, "bfloat16"); /* text_config.dtype */
  assert_false(m.tied_embeddings);          /* top-level tie_word_embeddings */
  assert_int_equal(m.attention, PS_ATTENTION_HYBRID);
  assert_int_equal(m.attention_layers, 8);
  assert_string_equal(m.estimate_note,
                      "hybrid: only the 8 attention layers of 32 hold KV (2 x 4 KV heads x 256 x "
                      "2 bytes per token and layer); the fixed-size state of the other 24 layers "
                      "is not counted; weights estimated from config.json (no safetensors or "
                      "index)");
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 1), 16ull * 8 * 2 * 4 * 256 * 2);
  assert_int_equal(ps_model_kv_bytes(&m, 4, 0, 16, 1), 16ull * 8 * 2 * 1 * 256 * 2);
}

static void test_all_fixture_notes_fit(void **state) {
  (void)state;
  static const char *names[] = {"Llama-3.1-8B-Instruct", "Llama-3.1-70B-Instruct",
                                "Qwen2.5-7B-Instruct",   "Mixtral-8x7B-Instruct-v0.1",
                                "DeepSeek-V3",           "gemma-2-9b-it",
                                "gemma-3-27b-it",        "Qwen3.5-9B"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    ps_model m = load_ok(fixture_model(names[i]));
    assert_true(strlen(m.estimate_note) < sizeof(m.estimate_note) - 1); /* not truncated */
    assert_true(m.weight_bytes > 0);
  }
}

/* ---- layer patterns and shapes (configs written here) --------------------------------- */

static void test_hybrid_patterns(void **state) {
  (void)state;
  /* Jamba: attention at layers 4, 12, 20, 28. */
  ps_model m =
      parse_ok("{\"num_hidden_layers\": 32, \"hidden_size\": 4096, "
               "\"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
               "\"attn_layer_period\": 8, \"attn_layer_offset\": 4, "
               "\"num_experts\": 16, \"num_experts_per_tok\": 2, \"sliding_window\": null}");
  assert_int_equal(m.attention, PS_ATTENTION_HYBRID);
  assert_int_equal(m.attention_layers, 4);
  assert_int_equal(m.num_experts, 16);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 1), 16ull * 4 * 2 * 8 * 128 * 2);
  /* Nemotron-H: '*' attention, 'M' Mamba, '-' MLP only. */
  m = parse_ok("{\"num_hidden_layers\": 8, \"hidden_size\": 64, \"num_attention_heads\": 4, "
               "\"hybrid_override_pattern\": \"M-M*M-M*\"}");
  assert_int_equal(m.attention, PS_ATTENTION_HYBRID);
  assert_int_equal(m.attention_layers, 2);
  /* Qwen3-Next: every 4th layer full attention. */
  m = parse_ok("{\"num_hidden_layers\": 48, \"hidden_size\": 2048, \"num_attention_heads\": 16, "
               "\"num_key_value_heads\": 2, \"head_dim\": 256, \"full_attention_interval\": 4, "
               "\"num_experts\": 512, \"num_experts_per_tok\": 10}");
  assert_int_equal(m.attention, PS_ATTENTION_HYBRID);
  assert_int_equal(m.attention_layers, 12);
  assert_int_equal(m.num_experts, 512);
  /* MiniMax: 1 = softmax attention. */
  m = parse_ok("{\"num_hidden_layers\": 4, \"hidden_size\": 64, \"num_attention_heads\": 4, "
               "\"attn_type_list\": [0, 0, 0, 1]}");
  assert_int_equal(m.attention_layers, 1);
  /* Granite-4 style layer_types. */
  m = parse_ok("{\"num_hidden_layers\": 4, \"hidden_size\": 64, \"num_attention_heads\": 4, "
               "\"layer_types\": [\"mamba\", \"attention\", \"mamba\", \"mamba\"]}");
  assert_int_equal(m.attention, PS_ATTENTION_HYBRID);
  assert_int_equal(m.attention_layers, 1);
}

static void test_sliding_patterns(void **state) {
  (void)state;
  /* Mistral v0.1: every layer windowed. */
  ps_model m = parse_ok("{\"num_hidden_layers\": 32, \"hidden_size\": 4096, "
                        "\"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
                        "\"sliding_window\": 4096}");
  assert_int_equal(m.attention, PS_ATTENTION_SLIDING);
  assert_int_equal(m.sliding_layers, 32);
  assert_string_equal(m.estimate_note, "sliding window: all 32 layers keep at most 4096 tokens; "
                                       "2 x 8 KV heads x 128 x 2 bytes per token and layer");
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 100000, 1), 32ull * 4096 * 2 * 8 * 128 * 2);
  /* Mistral v0.3 / Mixtral: null window. */
  m = parse_ok("{\"num_hidden_layers\": 32, \"hidden_size\": 4096, \"num_attention_heads\": 32, "
               "\"sliding_window\": null}");
  assert_int_equal(m.attention, PS_ATTENTION_FULL);
  /* Cohere2: every 4th layer global. */
  m = parse_ok("{\"num_hidden_layers\": 40, \"hidden_size\": 8192, \"num_attention_heads\": 64, "
               "\"sliding_window\": 4096, \"sliding_window_pattern\": 4}");
  assert_int_equal(m.sliding_layers, 30);
  /* Qwen2 with use_sliding_window: layers from max_window_layers on are windowed. */
  m = parse_ok("{\"num_hidden_layers\": 28, \"hidden_size\": 3584, \"num_attention_heads\": 28, "
               "\"sliding_window\": 4096, \"use_sliding_window\": true, "
               "\"max_window_layers\": 20}");
  assert_int_equal(m.sliding_layers, 8);
  /* Gemma-3 with layer_types (newer transformers), one global. */
  m = parse_ok("{\"model_type\": \"gemma3_text\", \"num_hidden_layers\": 3, \"hidden_size\": 64, "
               "\"num_attention_heads\": 4, \"sliding_window\": 512, \"layer_types\": "
               "[\"sliding_attention\", \"sliding_attention\", \"full_attention\"]}");
  assert_int_equal(m.attention, PS_ATTENTION_SLIDING);
  assert_int_equal(m.sliding_layers, 2);
  assert_int_equal(m.sliding_window, 512);
  /* Windowed layer names without a window: they hold every token. */
  m = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
               "\"layer_types\": [\"sliding_attention\", \"full_attention\"]}");
  assert_int_equal(m.attention, PS_ATTENTION_FULL);
  assert_int_equal(m.sliding_layers, 0);
}

static void test_shapes_and_aliases(void **state) {
  (void)state;
  /* GPT-2 names; no torch_dtype: served in 16 bits. */
  ps_model m = parse_ok("{\"n_layer\": 12, \"n_embd\": 768, \"n_head\": 12, \"vocab_size\": "
                        "50257, \"n_positions\": 1024}");
  assert_int_equal(m.num_layers, 12);
  assert_int_equal(m.hidden_size, 768);
  assert_int_equal(m.num_heads, 12);
  assert_int_equal(m.num_kv_heads, 12);
  assert_int_equal(m.head_dim, 64);
  assert_int_equal(m.max_position_embeddings, 1024);
  assert_string_equal(m.dtype, "");
  assert_int_equal(m.dtype_bytes, 2);
  /* MQA: one KV head, replicated on every GPU. */
  m = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
               "\"num_key_value_heads\": 1, \"torch_dtype\": \"float32\", "
               "\"max_position_embeddings\": 4096.0}");
  assert_int_equal(m.num_kv_heads, 1);
  assert_int_equal(m.dtype_bytes, 2); /* vLLM serves float32 checkpoints in 16 bits */
  assert_int_equal(m.max_position_embeddings, 4096);
  assert_int_equal(ps_model_kv_bytes(&m, 4, 0, 16, 1), ps_model_kv_bytes(&m, 1, 0, 16, 1));
  /* null means default. */
  m = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
               "\"num_key_value_heads\": null, \"head_dim\": null, \"tie_word_embeddings\": "
               "true}");
  assert_int_equal(m.num_kv_heads, 8);
  assert_int_equal(m.head_dim, 8);
  assert_true(m.tied_embeddings);
  /* DeepSeek-V2-Lite: MLA without q_lora_rank. */
  m = parse_ok("{\"num_hidden_layers\": 27, \"hidden_size\": 2048, \"num_attention_heads\": 16, "
               "\"num_key_value_heads\": 16, \"kv_lora_rank\": 512, \"q_lora_rank\": null, "
               "\"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64, \"v_head_dim\": 128, "
               "\"n_routed_experts\": 64, \"num_experts_per_tok\": 6}");
  assert_int_equal(m.attention, PS_ATTENTION_MLA);
  assert_int_equal(ps_model_kv_bytes(&m, 2, 0, 64, 1), 64ull * 576 * 2 * 27);
}

static void test_quantization(void **state) {
  (void)state;
  const char *awq = "{\"num_hidden_layers\": 32, \"hidden_size\": 4096, "
                    "\"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
                    "\"vocab_size\": 128256, \"intermediate_size\": 14336, "
                    "\"torch_dtype\": \"float16\", \"quantization_config\": "
                    "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128}}";
  ps_model q = parse_ok(awq);
  assert_string_equal(q.quantization, "awq");
  assert_string_equal(q.dtype, "float16");
  ps_model d = parse_ok("{\"num_hidden_layers\": 32, \"hidden_size\": 4096, "
                        "\"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
                        "\"vocab_size\": 128256, \"intermediate_size\": 14336}");
  /* 4 bits and a 16-bit scale and 4-bit zero per 128 for the linear weights, 16-bit
   * embeddings and head: about 5.7 GB for Llama-3.1-8B's shape. */
  assert_int_equal(d.weight_bytes, 16060522496ull);
  assert_true(q.weight_bytes > 5700000000ull && q.weight_bytes < 5760000000ull);
  ps_model f = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, "
                        "\"num_attention_heads\": 4, \"quantization_config\": "
                        "{\"quant_method\": \"compressed-tensors\", \"config_groups\": "
                        "{\"group_0\": {\"weights\": {\"num_bits\": 8}}}}}");
  assert_string_equal(f.quantization, "compressed-tensors");
  f = parse_ok("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
               "\"quantization_config\": {\"load_in_4bit\": true}}");
  assert_string_equal(f.quantization, "unknown");
}

/* ---- config errors ------------------------------------------------------------------ */

static void test_config_errors(void **state) {
  (void)state;
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64}",
              "cfg.json: num_attention_heads: expected a positive integer");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": \"8\"}",
              "cfg.json: num_attention_heads: expected a positive integer");
  parse_fails("{\"num_hidden_layers\": 0, \"hidden_size\": 64, \"num_attention_heads\": 8}",
              "cfg.json: num_hidden_layers: expected a positive integer");
  parse_fails("{\"num_hidden_layers\": 2.5, \"hidden_size\": 64, \"num_attention_heads\": 8}",
              "cfg.json: num_hidden_layers: expected a positive integer");
  parse_fails("{\"num_hidden_layers\": 1099511627776, \"hidden_size\": 64, "
              "\"num_attention_heads\": 8}",
              "cfg.json: num_hidden_layers: too large (at most 1073741824)");
  parse_fails("{\"hidden_size\": 64, \"num_attention_heads\": 8}",
              "cfg.json: num_hidden_layers: expected a positive integer");
  parse_fails("{\"text_config\": {\"num_hidden_layers\": 2, \"hidden_size\": 64}}",
              "cfg.json: text_config.num_attention_heads: expected a positive integer");
  parse_fails("{\"text_config\": 3}", "cfg.json: text_config: expected an object");
  parse_fails("[1, 2]", "cfg.json: expected a JSON object");
  parse_fails("", "cfg.json:1:0: '[' or '{' expected near end of file");
  parse_fails("{\n  \"num_hidden_layers\": 32,\n  oops\n}",
              "cfg.json:3:6: string or '}' expected near 'oops'");
  parse_fails("{\"a\": 1, \"a\": 2}", "cfg.json:1:12: duplicate object key near '\"a\"'");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 32, "
              "\"num_key_value_heads\": 5}",
              "cfg.json: num_key_value_heads: 5 KV heads do not divide the 32 attention heads");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 100, \"num_attention_heads\": 3}",
              "cfg.json: head_dim: not given, and hidden_size 100 is not a multiple of the 3 "
              "attention heads");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"torch_dtype\": \"int3\"}",
              "cfg.json: torch_dtype: unknown dtype 'int3' (expected bfloat16, float16 or "
              "float32)");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"torch_dtype\": 16}",
              "cfg.json: torch_dtype: expected a string such as \"bfloat16\"");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"tie_word_embeddings\": 1}",
              "cfg.json: tie_word_embeddings: expected true or false");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"architectures\": \"LlamaForCausalLM\"}",
              "cfg.json: architectures: expected a list of strings");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"quantization_config\": \"fp8\"}",
              "cfg.json: quantization_config: expected an object");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"kv_lora_rank\": 512}",
              "cfg.json: qk_rope_head_dim: expected a positive integer");
  parse_fails("{\"num_hidden_layers\": 4, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\"]}",
              "cfg.json: layer_types: 3 entries for 4 layers (num_hidden_layers)");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"layer_types\": [\"full_attention\", \"banana\"]}",
              "cfg.json: layer_types: entry 1: unknown layer type 'banana'");
  parse_fails("{\"num_hidden_layers\": 4, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"hybrid_override_pattern\": \"M*\"}",
              "cfg.json: hybrid_override_pattern: expected a string of 4 layer letters");
  parse_fails("{\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
              "\"sliding_window\": \"4096\"}",
              "cfg.json: sliding_window: expected a non-negative integer");
}

/* ---- directories -------------------------------------------------------------------- */

static void test_missing_and_broken_config(void **state) {
  (void)state;
  ps_model m;
  char want[MSG_LEN];
  const char *dir = new_dir("empty");
  snprintf(want, sizeof(want), "%s: no config.json (not a Hugging Face model directory?)", dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  dir = new_dir("broken");
  write_text(dir, "config.json", "{\n  \"num_hidden_layers\": 32,\n  oops\n}");
  snprintf(want, sizeof(want), "%s/config.json:3:6: string or '}' expected near 'oops'", dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  dir = new_dir("noheads");
  write_text(dir, "config.json", "{\"num_hidden_layers\": 2, \"hidden_size\": 64}");
  snprintf(want, sizeof(want), "%s/config.json: num_attention_heads: expected a positive integer",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/absent", root);
  snprintf(want, sizeof(want),
           "%s: no such directory (peerscope reads a downloaded model directory; give "
           "--model-size-gb for one that is not here)",
           path);
  expect_error(ps_test_model_load(ctx, path, &m), PS_ERR_NOT_FOUND, want);

  dir = new_dir("file");
  write_text(dir, "plain.txt", "x");
  snprintf(path, sizeof(path), "%s/plain.txt", dir);
  snprintf(want, sizeof(want),
           "%s: not a directory (give the model's directory, the one with config.json)", path);
  expect_error(ps_test_model_load(ctx, path, &m), PS_ERR_BAD_INPUT, want);

  expect_error(ps_test_model_load(ctx, NULL, &m), PS_ERR_INVALID_ARG,
               "ps_model_load: no directory");
}

static void test_gguf_and_bin_only(void **state) {
  (void)state;
  ps_model m;
  char want[MSG_LEN];
  const char *dir = new_dir("gguf");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model-Q4_K_M.gguf", "GGUF");
  snprintf(want, sizeof(want),
           "%s: only GGUF/.bin weights found; peerscope reads safetensors headers; give "
           "--model-size-gb instead",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  dir = new_dir("gguf-no-config"); /* the usual GGUF repository: no config.json at all */
  write_text(dir, "model.gguf", "GGUF");
  snprintf(want, sizeof(want),
           "%s: only GGUF/.bin weights found; peerscope reads safetensors headers; give "
           "--model-size-gb instead",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  dir = new_dir("bin");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "pytorch_model-00001-of-00002.bin", "PK");
  snprintf(want, sizeof(want),
           "%s: only GGUF/.bin weights found; peerscope reads safetensors headers; give "
           "--model-size-gb instead",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  /* safetensors beside a GGUF file: the safetensors count. */
  dir = new_dir("both");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.gguf", "GGUF");
  write_st(dir, "model.safetensors", two_tensors, 28);
  m = load_ok(dir);
  assert_int_equal(m.weight_bytes, 28);
}

static void test_safetensors_headers(void **state) {
  (void)state;
  const char *dir = new_dir("st");
  write_text(dir, "config.json", tiny_config);
  write_st(dir, "model.safetensors", two_tensors, 28);
  ps_model m = load_ok(dir);
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_true(m.valid & PS_MODEL_PARAMS);
  assert_int_equal(m.weight_bytes, 28);
  assert_int_equal(m.param_count, 10);
  assert_string_equal(m.estimate_note,
                      "full attention: 2 x 2 layers x 2 KV heads x 4 x 2 bytes per token");

  /* The data is never read, but its size must be what the header describes: a download cut
   * inside the data is refused, as the safetensors library refuses it. */
  dir = new_dir("st-no-data");
  write_text(dir, "config.json", tiny_config);
  write_st(dir, "model.safetensors", two_tensors, 0);
  char want[MSG_LEN];
  snprintf(want, sizeof(want),
           "%s/model.safetensors: offset 171: the tensors need 28 bytes of data, but the file has "
           "0 after the header (cut short: an interrupted download?)",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  /* Shards are summed; a second copy in consolidated.safetensors is not. */
  dir = new_dir("st-shards");
  write_text(dir, "config.json", tiny_config);
  write_st(dir, "model-00001-of-00002.safetensors", two_tensors, 28);
  write_st(dir, "model-00002-of-00002.safetensors",
           "{\"lm_head.weight\": {\"dtype\": \"F8_E4M3\", \"shape\": [10, 8], "
           "\"data_offsets\": [0, 80]}, \"e\": {\"dtype\": \"F4\", \"shape\": [3, 2], "
           "\"data_offsets\": [80, 83]}, \"empty\": {\"dtype\": \"BF16\", \"shape\": [0], "
           "\"data_offsets\": [83, 83]}}   ",
           83);
  write_st(dir, "consolidated.safetensors", two_tensors, 28);
  m = load_ok(dir);
  assert_int_equal(m.weight_bytes, 28 + 83);
  assert_int_equal(m.param_count, 10 + 80 + 6);

  /* Quantized: packed integer tensors hold several weights per element, so no param count. */
  dir = new_dir("st-awq");
  write_text(dir, "config.json",
             "{\"num_hidden_layers\": 2, \"hidden_size\": 8, \"num_attention_heads\": 2, "
             "\"quantization_config\": {\"quant_method\": \"awq\"}}");
  write_st(dir, "model.safetensors", two_tensors, 28);
  m = load_ok(dir);
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_false(m.valid & PS_MODEL_PARAMS);
  assert_int_equal(m.weight_bytes, 28);
}

/* Each bad header (length 0: the header's own) names the file and the byte offset. */
static void header_fails(const char *name, uint64_t length, const char *header, size_t data,
                         const char *message) {
  char dir[PATH_MAX * 2], want[MSG_LEN];
  snprintf(dir, sizeof(dir), "%s", new_dir(name));
  write_text(dir, "config.json", tiny_config);
  write_st_len(dir, "model.safetensors", length ? length : strlen(header), header, data);
  snprintf(want, sizeof(want), "%s/model.safetensors: %s", dir, message);
  ps_model m;
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);
}

static void test_safetensors_errors(void **state) {
  (void)state;
  header_fails("h-trunc", 500, "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2]", 0,
               "offset 0: header length 500 runs past the end of the file (44 bytes; "
               "truncated?)");
  header_fails("h-absurd", UINT64_MAX, "{}", 0,
               "offset 0: the header length is absurd (over 100 MiB; not a safetensors file?)");
  header_fails("h-array", 5, "[1,2]", 0, "offset 8: the header does not start with '{'");
  header_fails("h-json", 7, "{\"a\": }", 0, "offset 15: header JSON: unexpected token near '}'");
  header_fails("h-notensor", 8, "{\"a\": 1}", 0,
               "offset 9: tensor 'a': expected an object with dtype, shape and data_offsets");
  header_fails("h-dtype", 0,
               "{\"w\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 1]}}", 0,
               "offset 9: tensor 'w': unknown dtype 'Q4'");
  header_fails("h-size", 0,
               "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 10]}}", 10,
               "offset 9: tensor 'w': data_offsets [0, 10] hold 10 bytes, but 6 elements of BF16 "
               "need 12");
  header_fails("h-offsets", 0,
               "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [4, 0]}}", 0,
               "offset 9: tensor 'w': data_offsets: expected [begin, end], 0 <= begin <= end");
  header_fails("h-shape", 0,
               "{\"w\": {\"dtype\": \"BF16\", \"shape\": [-2], \"data_offsets\": [0, 4]}}", 0,
               "offset 9: tensor 'w': shape: expected non-negative integers");
  header_fails("h-gap", 0,
               "{\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}, "
               "\"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [8, 12]}}",
               12,
               "offset 71: tensor 'b': data starts at byte 8, expected 4 (tensors must tile the "
               "data with no gap or overlap)");
  header_fails("h-f4", 0, "{\"w\": {\"dtype\": \"F4\", \"shape\": [3], \"data_offsets\": [0, 2]}}",
               2, "offset 9: tensor 'w': 3 elements of F4 are not a whole number of bytes");
  header_fails("h-meta", 0, "{\"__metadata__\": [1]}", 0,
               "offset 9: __metadata__: expected an object");

  /* Shorter than the 8-byte length itself. */
  const char *dir = new_dir("h-short");
  char want[MSG_LEN];
  write_text(dir, "config.json", tiny_config);
  write_file(dir, "model.safetensors", "abc", 3);
  snprintf(want, sizeof(want),
           "%s/model.safetensors: offset 0: 3 bytes is too short for a safetensors file (an "
           "8-byte header length comes first)",
           dir);
  ps_model m;
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);
}

static void test_parse_header_buffer(void **state) {
  (void)state;
  /* A control character in a tensor name stays out of the one-line message. */
  const char hdr[] = "{\"a\\nb\": 3}";
  unsigned char buf[64] = {sizeof(hdr) - 1};
  memcpy(buf + 8, hdr, sizeof(hdr) - 1);
  ps__st_sum sum;
  expect_error(ps__safetensors_parse_header(ctx, buf, 8 + sizeof(hdr) - 1, "x.st", &sum),
               PS_ERR_BAD_INPUT,
               "x.st: offset 8: tensor 'a?b': expected an object with dtype, shape and "
               "data_offsets");
  assert_int_equal(sum.data_bytes, 0);
}

static void test_index_sources(void **state) {
  (void)state;
  /* Index with total_size and the shards: bytes from the index, parameters from headers. */
  const char *dir = new_dir("idx-full");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json",
             "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {\"w\": "
             "\"model-00001-of-00001.safetensors\", \"b\": \"model-00001-of-00001.safetensors\"}}");
  write_st(dir, "model-00001-of-00001.safetensors", two_tensors, 28);
  ps_model m = load_ok(dir);
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_true(m.valid & PS_MODEL_PARAMS);
  assert_int_equal(m.weight_bytes, 28);
  assert_int_equal(m.param_count, 10);

  /* Newer indexes also give total_parameters; a real number is accepted. */
  dir = new_dir("idx-params");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json",
             "{\"metadata\": {\"total_size\": 1.6e10, \"total_parameters\": 8000000000}, "
             "\"weight_map\": {}}");
  m = load_ok(dir);
  assert_int_equal(m.weight_bytes, 16000000000ull);
  assert_int_equal(m.param_count, 8000000000ull);

  /* No total_size: the listed shards' headers, when all are here. */
  dir = new_dir("idx-nosize");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json",
             "{\"metadata\": {}, \"weight_map\": {\"w\": \"a.safetensors\"}}");
  write_st(dir, "a.safetensors", two_tensors, 28);
  write_st(dir, "unlisted.safetensors", two_tensors, 28);
  m = load_ok(dir);
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_int_equal(m.weight_bytes, 28);

  /* No total_size and shards missing: the config estimate, said so. */
  dir = new_dir("idx-missing");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"w\": \"a.safetensors\"}}");
  m = load_ok(dir);
  assert_false(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_non_null(strstr(m.estimate_note, "; weights estimated from config.json (the index has "
                                          "no total_size and shards are missing)"));

  char want[MSG_LEN];
  dir = new_dir("idx-bad");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json", "{\"metadata\": {\"total_size\": \"big\"}}");
  snprintf(want, sizeof(want),
           "%s/model.safetensors.index.json: metadata.total_size: expected a positive integer",
           dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);

  dir = new_dir("idx-json");
  write_text(dir, "config.json", tiny_config);
  write_text(dir, "model.safetensors.index.json", "{\"metadata\": ");
  snprintf(want, sizeof(want),
           "%s/model.safetensors.index.json:1:13: unexpected token near end of file", dir);
  expect_error(ps_test_model_load(ctx, dir, &m), PS_ERR_BAD_INPUT, want);
}

static void test_names_and_paths(void **state) {
  (void)state;
  const char *dir = new_dir("hub/models--meta-llama--Llama-3.1-8B/snapshots/0e9e39f2");
  write_text(dir, "config.json", tiny_config);
  ps_model m = load_ok(dir);
  assert_string_equal(m.name, "meta-llama/Llama-3.1-8B");

  char slashed[PATH_MAX];
  dir = new_dir("plain-name");
  write_text(dir, "config.json", tiny_config);
  snprintf(slashed, sizeof(slashed), "%s//", dir);
  m = load_ok(slashed);
  assert_string_equal(m.name, "plain-name");
}

/* ---- synthetic models ---------------------------------------------------------------- */

static void test_synthetic(void **state) {
  (void)state;
  ps_model m;
  assert_int_equal(ps_test_model_synthetic(ctx, 70, "bf16", 0, &m), PS_OK);
  assert_string_equal(m.name, "70B bf16");
  assert_int_equal(m.weight_bytes, 140000000000ull);
  assert_int_equal(m.param_count, 70000000000ull);
  assert_true(m.valid & PS_MODEL_PARAMS);
  assert_false(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_int_equal(m.num_layers, 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 4096, 1), 0);
  assert_string_equal(m.estimate_note, "size only: no layers or heads known, so the KV cache and "
                                       "TP divisibility cannot be checked");
  assert_int_equal(ps_test_model_synthetic(ctx, 8.03, "fp16", 0, &m), PS_OK);
  assert_string_equal(m.name, "8.03B fp16");
  assert_string_equal(m.dtype, "float16");
  assert_int_equal(m.weight_bytes, 16060000000ull);
  assert_int_equal(ps_test_model_synthetic(ctx, 405, "fp8", 0, &m), PS_OK);
  assert_int_equal(m.weight_bytes, 405000000000ull);
  assert_string_equal(m.quantization, "fp8");
  assert_int_equal(ps_test_model_synthetic(ctx, 70, "int4", 0, &m), PS_OK);
  assert_int_equal(m.weight_bytes, 35000000000ull);
  assert_int_equal(ps_test_model_synthetic(ctx, 0, NULL, 140, &m), PS_OK);
  assert_string_equal(m.name, "140 GB");
  assert_int_equal(m.weight_bytes, 140000000000ull);
  assert_false(m.valid & PS_MODEL_PARAMS);

  expect_error(ps_test_model_synthetic(ctx, 70, "fp4", 0, &m), PS_ERR_INVALID_ARG,
               "unknown dtype 'fp4' (expected bf16, fp16, fp8 or int4)");
  expect_error(ps_test_model_synthetic(ctx, 70, NULL, 0, &m), PS_ERR_INVALID_ARG,
               "model parameters: a dtype is needed (bf16, fp16, fp8 or int4)");
  expect_error(ps_test_model_synthetic(ctx, -1, "bf16", 0, &m), PS_ERR_INVALID_ARG,
               "model parameters: expected a positive number of billions (got -1)");
  expect_error(ps_test_model_synthetic(ctx, 0, NULL, -5, &m), PS_ERR_INVALID_ARG,
               "model size: expected a positive number of GB (got -5)");
  expect_error(ps_test_model_synthetic(ctx, 0, NULL, 0, &m), PS_ERR_INVALID_ARG,
               "model size: give the parameters in billions (with a dtype) or the size in GB");
  expect_error(ps_test_model_synthetic(ctx, 7, "bf16", 14, &m), PS_ERR_INVALID_ARG,
               "give the model's parameters or its size in GB, not both");
  expect_error(ps_test_model_synthetic(ctx, 1e12, "bf16", 0, &m), PS_ERR_INVALID_ARG,
               "model size: 2e+12 GB is beyond any model");
}

static void test_kv_edges(void **state) {
  (void)state;
  ps_model m = parse_ok(tiny_config);
  assert_int_equal(ps_model_kv_bytes(NULL, 1, 0, 16, 1), 0);
  assert_int_equal(ps_model_kv_bytes(&m, 0, 0, 16, 1), 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 16, 0), 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, 0, 1), 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, -1, 16, 1), 0);
  assert_int_equal(ps_model_kv_bytes(&m, 1, 0, UINT64_MAX, 1 << 30), UINT64_MAX); /* saturates */
  /* A struct filled by hand (no attention_layers): every layer counts. */
  ps_model hand;
  memset(&hand, 0, sizeof(hand));
  hand.num_layers = 32, hand.num_heads = 32, hand.num_kv_heads = 8, hand.head_dim = 128;
  hand.dtype_bytes = 2;
  assert_int_equal(ps_model_kv_bytes(&hand, 1, 0, 16, 1), 16ull * 131072);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama31_8b),         cmocka_unit_test(test_llama31_70b_index),
      cmocka_unit_test(test_qwen25_7b),          cmocka_unit_test(test_mixtral),
      cmocka_unit_test(test_deepseek_v3_mla),    cmocka_unit_test(test_gemma2_alternating),
      cmocka_unit_test(test_gemma3_text_config), cmocka_unit_test(test_vision_config),
      cmocka_unit_test(test_qwen35_hybrid),      cmocka_unit_test(test_all_fixture_notes_fit),
      cmocka_unit_test(test_hybrid_patterns),    cmocka_unit_test(test_sliding_patterns),
      cmocka_unit_test(test_shapes_and_aliases), cmocka_unit_test(test_quantization),
      cmocka_unit_test(test_config_errors),      cmocka_unit_test(test_missing_and_broken_config),
      cmocka_unit_test(test_gguf_and_bin_only),  cmocka_unit_test(test_safetensors_headers),
      cmocka_unit_test(test_safetensors_errors), cmocka_unit_test(test_parse_header_buffer),
      cmocka_unit_test(test_index_sources),      cmocka_unit_test(test_names_and_paths),
      cmocka_unit_test(test_synthetic),          cmocka_unit_test(test_kv_edges),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
