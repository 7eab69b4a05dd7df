/* ps_test_resolve DIR_OR_ID [REPEAT]: ps_model_resolve once (or REPEAT times, the fastest
 * reported) and one JSON line with what came back, for tests/cli/test_hub_cli.py. Exit 0, 3
 * for bad input, 7 for network trouble, 5 otherwise, as the CLI maps them. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "peerscope/peerscope.h"

static int exit_for(ps_status st) {
  switch (st) {
  case PS_OK: return 0;
  case PS_ERR_BAD_INPUT:
  case PS_ERR_IO: return 3;
  case PS_ERR_NETWORK: return 7;
  default: return 5;
  }
}

static json_t *model_json(const ps_model *m, const ps_model_source *src) {
  uint64_t tokens = 16384;
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:i, s:i, s:i, s:i, s:i, s:I, s:s, s:s}",
                   "origin", ps_model_origin_name(src->origin), "where", src->where, "commit",
                   src->commit, "requests", (json_int_t)src->requests, "bytes",
                   (json_int_t)src->bytes, "exact", (m->valid & PS_MODEL_WEIGHTS_EXACT) != 0,
                   "weight_bytes", (json_int_t)m->weight_bytes, "layers", m->num_layers, "heads",
                   m->num_heads, "kv_heads", m->num_kv_heads, "head_dim", m->head_dim, "attention",
                   (int)m->attention, "kv_bytes_per_token",
                   (json_int_t)(ps_model_kv_bytes(m, 1, 0, tokens, 1) / tokens), "name", m->name,
                   "path", src->path);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: ps_test_resolve DIR_OR_ID [REPEAT]\n");
    return 2;
  }
  int repeat = argc > 2 ? atoi(argv[2]) : 1;
  ps_ctx *ctx = ps_ctx_new();
  ps_model *m = NULL;
  ps_model_source *src = NULL;
  ps_status st = PS_OK;
  double best = -1;
  for (int i = 0; i < (repeat > 0 ? repeat : 1); i++) {
    ps_model_source_free(src);
    ps_model_free(m);
    src = NULL;
    st = ps_model_resolve(ctx, argv[1], NULL, &m, &src);
    if (st != PS_OK) break;
    if (best < 0 || src->ms < best) best = src->ms;
  }
  json_t *out;
  if (st == PS_OK) {
    out = model_json(m, src);
    json_object_set_new(out, "ms", json_real(best));
  } else {
    out = json_pack("{s:s, s:s}", "status", ps_status_name(st), "error", ps_ctx_error(ctx));
  }
  char *text = json_dumps(out, JSON_COMPACT);
  printf("%s\n", text);
  free(text);
  json_decref(out);
  ps_model_source_free(src);
  ps_model_free(m);
  ps_ctx_free(ctx);
  return exit_for(st);
}
