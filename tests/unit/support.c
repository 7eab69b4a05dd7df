#include "support.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ps_test_env(const char *name) {
  const char *value = getenv(name);
  if (!value || !*value) fail_msg("environment variable %s is not set (run through ctest)", name);
  return value;
}

const char *ps_test_fixture_path(const char *name) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/%s", ps_test_env("PEERSCOPE_FIXTURES"), name);
  return path;
}

const char *ps_test_use_fixture(const char *variant, const char *fixture) {
  static char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/../%s", ps_test_env("PEERSCOPE_FAKE_DIR"), variant);
  setenv("PEERSCOPE_DRIVER_DIR", dir, 1);
  const char *path = ps_test_fixture_path(fixture);
  setenv("PEERSCOPE_FIXTURE", path, 1);
  return path;
}

static ps_status take_model(ps_status st, ps_model **got, ps_model *m) {
  memset(m, 0, sizeof(*m));
  if (*got) *m = **got;
  ps_model_free(*got);
  return st;
}

ps_status ps_test_model_load(ps_ctx *ctx, const char *dir, ps_model *m) {
  ps_model *got = NULL;
  ps_status st = ps_model_load(ctx, dir, &got);
  return take_model(st, &got, m);
}

ps_status ps_test_model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                                  ps_model *m) {
  ps_model *got = NULL;
  ps_status st = ps_model_synthetic(ctx, params_b, dtype, size_gb, &got);
  return take_model(st, &got, m);
}

ps_status ps_test_model_resolve(ps_ctx *ctx, const char *dir_or_id,
                                const ps_model_resolve_opts *opts, ps_model *m,
                                ps_model_source **source) {
  ps_model *got = NULL;
  ps_status st = ps_model_resolve(ctx, dir_or_id, opts, &got, source);
  return take_model(st, &got, m);
}

ps_report *ps_test_verified_machine(const char *fixture) {
  ps_test_use_fixture("fake", fixture);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_probe(ctx, NULL, &r) != PS_OK) fail_msg("probe %s: %s", fixture, ps_ctx_error(ctx));
  ps_verify_opts vo = {.size = sizeof(vo), .refresh = true, .cache_dir = "/nonexistent-cache"};
  if (ps_verify(ctx, r, &vo) != PS_OK) fail_msg("verify %s: %s", fixture, ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

bool ps_test_scratch_dir(const char *tag, char *root) {
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if (snprintf(root, PATH_MAX, "%s/ps-%s-XXXXXX", tmp, tag) >= PATH_MAX) return false;
  return mkdtemp(root) != NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int ps_test_remove_tree(const char *root) {
  return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

ps_model ps_test_llama8b(void) {
  ps_model m = {0};
  snprintf(m.name, sizeof(m.name), "Llama-3.1-8B-Instruct");
  m.valid = PS_MODEL_WEIGHTS_EXACT | PS_MODEL_MAX_POSITIONS;
  m.num_layers = 32, m.hidden_size = 4096, m.num_heads = 32, m.num_kv_heads = 8;
  m.head_dim = 128, m.vocab_size = 128256, m.intermediate_size = 14336;
  m.max_position_embeddings = 131072, m.dtype_bytes = 2;
  snprintf(m.dtype, sizeof(m.dtype), "bfloat16");
  m.weight_bytes = 16060522496ull;
  return m;
}

ps_model ps_test_llama70b(void) {
  ps_model m = ps_test_llama8b();
  snprintf(m.name, sizeof(m.name), "Llama-3.1-70B-Instruct");
  m.num_layers = 80, m.hidden_size = 8192, m.num_heads = 64, m.intermediate_size = 28672;
  m.weight_bytes = 141107412992ull;
  return m;
}

const ps_plan_item *ps_test_plan_item(const ps_plan_item *items, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(items[i].name, name) == 0) return &items[i];
  return NULL;
}
