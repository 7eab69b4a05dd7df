#include "support.h"

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
