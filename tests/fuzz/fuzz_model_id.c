/* libFuzzer target: the model id parser (what a user types after --model). It must never
 * crash or read past the text; an id it accepts is "org/name" with a revision that is a safe
 * relative path under refs/ (no "..", no leading '/'), and the failure is one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const ps_model_id *id) {
  const char *slash = strchr(id->repo, '/');
  if (!slash || strchr(slash + 1, '/') || strstr(id->repo, "..") || strstr(id->repo, "--")) abort();
  if (id->revision[0] && (id->revision[0] == '/' || strstr(id->revision, "..") ||
                          strstr(id->revision, "//") || strchr(id->revision, '\n')))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ps_ctx *ctx = ps_ctx_new();
  ps_model_id *id = NULL;
  if (ps_model_id_parse(ctx, text, &id) == PS_OK) {
    check(id);
    if (!ps__hub_id_shaped(text)) abort(); /* every id is also shaped like one */
  } else if (id || strchr(ps_ctx_error(ctx), '\n')) {
    abort();
  }
  ps_model_id_free(id);
  ps_ctx_free(ctx);
  free(text);
  return 0;
}
