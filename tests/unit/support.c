#include "support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

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
