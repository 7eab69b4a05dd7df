/* libFuzzer target: the importers of pasted nvidia-smi text (topo -m, topo -p2p, --query-gpu
 * CSV) take whatever a bug report holds. They must never crash or leak, must fail with one
 * line naming the input, leave a report they reject unchanged, and anything they accept must
 * be a consistent report that writes to JSON and reads back. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import/import_internal.h"
#include "peerscope/peerscope.h"
#include "report/report_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(ps_status st, const ps_ctx *ctx) {
  const char *err = ps_ctx_error(ctx);
  if (st != PS_ERR_BAD_INPUT || strncmp(err, "fuzz.txt:", 9) != 0 || strchr(err, '\n')) abort();
}

static void check_report(ps_ctx *ctx, const ps_report *r, bool from_text) {
  if (r->gpu_count > 64) abort(); /* one node: PS_REPORT_MAX_GPUS */
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i], *back = ps_report_pair(r, p->to, p->from);
    if (!back || p->verdict != PS_VERDICT_NOT_RUN) abort();
    if (from_text && (back->link != p->link || p->link == PS_LINK_SELF)) abort();
  }
  char *text = NULL;
  ps_report *again = NULL;
  if (ps_report_to_json(ctx, r, &text) != PS_OK) abort();
  if (ps_report_parse_json(ctx, text, strlen(text), "again.json", &again) != PS_OK) abort();
  if (again->gpu_count != r->gpu_count || again->pair_count != r->pair_count) abort();
  ps_report_free(again);
  ps_free(text);
}

/* Claims and GPU facts from the same bytes, on `r`: all or nothing. */
static void apply_others(ps_ctx *ctx, ps_report *r, const char *text, size_t size, bool from_text) {
  size_t pairs = (size_t)r->pair_count * sizeof(ps_pair),
         gpus = (size_t)r->gpu_count * sizeof(ps_gpu);
  ps_pair *saved_pairs = malloc(pairs + 1);
  ps_gpu *saved_gpus = malloc(gpus + 1);
  if (!saved_pairs || !saved_gpus) abort();
  if (pairs) memcpy(saved_pairs, r->pairs, pairs);
  if (gpus) memcpy(saved_gpus, r->gpus, gpus);
  ps_status st = ps__import_p2p_text(ctx, r, text, size, "fuzz.txt");
  if (st != PS_OK) {
    check_error(st, ctx);
    if (pairs && memcmp(saved_pairs, r->pairs, pairs) != 0) abort();
  }
  st = ps__import_gpu_info_text(ctx, r, text, size, "fuzz.txt");
  if (st != PS_OK) {
    check_error(st, ctx);
    if (gpus && memcmp(saved_gpus, r->gpus, gpus) != 0) abort();
  }
  check_report(ctx, r, from_text);
  free(saved_pairs);
  free(saved_gpus);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (!ctx) return 0;
  const char *text = (const char *)data;
  size_t i = 0;
  while (i < size && strchr(" \t\r\n", text[i]) && text[i])
    i++;
  bool from_text =
      !(i < size && text[i] == '{') && !(size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0);
  ps_status st = ps_import_topology_text(ctx, text, size, "fuzz.txt", &r);
  if (st != PS_OK) {
    check_error(st, ctx);
    if (r) abort();
    r = ps__report_new(2); /* claims and CSV still get parsed, against two GPUs */
    if (!r) abort();
  }
  check_report(ctx, r, from_text);
  apply_others(ctx, r, text, size, from_text);
  ps_report_free(r);
  ps_ctx_free(ctx);
  return 0;
}
