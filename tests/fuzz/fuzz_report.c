/* libFuzzer target: the topology-report reader takes files from other machines and bug
 * reports. It must never crash or leak, must fail with one located line, and anything it
 * accepts must write back to JSON that it reads again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerscope/peerscope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (!ctx) return 0;
  ps_status st = ps_report_parse_json(ctx, (const char *)data, size, "fuzz.json", &r);
  if (st != PS_OK) {
    const char *err = ps_ctx_error(ctx);
    if (st != PS_ERR_BAD_INPUT || strncmp(err, "fuzz.json", 9) != 0 || strchr(err, '\n')) abort();
  } else {
    char *text = NULL;
    ps_report *again = NULL;
    if (ps_report_to_json(ctx, r, &text) != PS_OK) abort();
    if (ps_report_parse_json(ctx, text, strlen(text), "again.json", &again) != PS_OK) abort();
    if (again->gpu_count != r->gpu_count || again->pair_count != r->pair_count) abort();
    ps_report_free(again);
    ps_free(text);
  }
  ps_report_free(r);
  ps_ctx_free(ctx);
  return 0;
}
