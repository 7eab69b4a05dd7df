/* `nvidia-smi topo -p2p <caps>` text -> the driver's claims on a report's pairs. Which claim
 * a matrix gives comes from the "-p2p <caps>" mention before it in the paste (newer
 * nvidia-smi does not print it); a matrix with none counts as read and write. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "import/import_internal.h"
#include "report/report_internal.h"

static ps_status fail_at(ps_ctx *ctx, const char *name, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static ps_status fail_at(ps_ctx *ctx, const char *name, int line, int col, const char *fmt, ...) {
  char msg[PS_ERRBUF_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", name, line, col, msg);
}

#define SHOW(tok, buf) ps__tok_show(tok, buf, sizeof(buf))

static bool parse_claim(const ps__tok *t, ps_claim *out) {
  static const struct {
    const char *word;
    ps_claim claim;
  } words[] = {{"OK", PS_CLAIM_OK},       {"CNS", PS_CLAIM_CNS},     {"GNS", PS_CLAIM_GNS},
               {"TNS", PS_CLAIM_TNS},     {"NS", PS_CLAIM_NS},       {"U", PS_CLAIM_U},
               {"DR", PS_CLAIM_DISABLED}, {"DIS", PS_CLAIM_DISABLED}};
  for (size_t i = 0; i < PS_ARRAY_LEN(words); i++)
    if (ps__tok_is(t, words[i].word)) {
      *out = words[i].claim;
      return true;
    }
  return false;
}

static void set_claim(ps_pair *pair, unsigned caps, ps_claim claim) {
  if (caps & PS__CAP_R) pair->claim_read = claim;
  if (caps & PS__CAP_W) pair->claim_write = claim;
  if (caps & PS__CAP_N) pair->claim_nvlink = claim;
  if (caps & PS__CAP_A) pair->claim_atomics = claim;
  /* The PCIe claim stands in for read and write only where those are not known. */
  if ((caps & PS__CAP_P) && pair->claim_read == PS_CLAIM_UNKNOWN) pair->claim_read = claim;
  if ((caps & PS__CAP_P) && pair->claim_write == PS_CLAIM_UNKNOWN) pair->claim_write = claim;
  pair->valid |= PS_PAIR_CLAIMS;
}

ps_status ps__p2p_apply(ps_ctx *ctx, const char *name, const ps__matrix *m, ps_report *report) {
  ps__lines it = m->at;
  ps__line line;
  ps__toks hdr = {0}, row = {0};
  char a[64];
  unsigned caps = m->caps ? m->caps : PS__CAP_R | PS__CAP_W;
  ps_status st = PS_OK;
  ps__lines_next(&it, &line);
  if ((st = ps__tokenize(ctx, &line, 0, &hdr)) != PS_OK) goto cleanup;
  for (int c = 0; c < hdr.count; c++)
    if (ps__tok_gpu_index(&hdr.v[c]) != c) {
      st = fail_at(ctx, name, line.number, hdr.v[c].col,
                   "expected GPU%d in the -p2p header, found '%s'", c, SHOW(&hdr.v[c], a));
      goto cleanup;
    }
  int n = hdr.count;
  if (n != report->gpu_count) {
    st = fail_at(ctx, name, line.number, hdr.v[0].col,
                 "the -p2p matrix has %d GPUs but the topology has %d", n, report->gpu_count);
    goto cleanup;
  }
  for (int r = 0; r < n; r++) {
    bool have = ps__lines_next(&it, &line);
    if (have && (st = ps__tokenize(ctx, &line, 0, &row)) != PS_OK) goto cleanup;
    if (!have || row.count == 0 || ps__tok_gpu_index(&row.v[0]) < 0) {
      st = fail_at(ctx, name, have ? line.number : it.number + 1, 1,
                   "missing row GPU%d of the -p2p matrix (it has %d GPUs)", r, n);
      goto cleanup;
    }
    if (ps__tok_gpu_index(&row.v[0]) != r) {
      st = fail_at(ctx, name, line.number, row.v[0].col,
                   "expected row GPU%d of the -p2p matrix, found '%s'", r, SHOW(&row.v[0], a));
      goto cleanup;
    }
    if (row.count != n + 1) {
      int col = row.count > n + 1 ? row.v[n + 1].col : (int)line.len + 1;
      st = fail_at(ctx, name, line.number, col,
                   "row GPU%d of the -p2p matrix has %d cells; expected %d", r, row.count - 1, n);
      goto cleanup;
    }
    for (int c = 0; c < n; c++) {
      const ps__tok *cell = &row.v[1 + c];
      ps_claim claim;
      if (c == r) {
        if (ps__tok_is(cell, "X")) continue;
        st = fail_at(ctx, name, line.number, cell->col, "GPU%d to itself must be X, found '%s'", r,
                     SHOW(cell, a));
        goto cleanup;
      }
      if (!parse_claim(cell, &claim)) {
        st = fail_at(ctx, name, line.number, cell->col,
                     "unknown P2P status '%s' (expected OK, CNS, GNS, TNS, NS, DR or U)",
                     SHOW(cell, a));
        goto cleanup;
      }
      const ps_pair *pair = ps_report_pair(report, r, c);
      if (pair) set_claim(&report->pairs[pair - report->pairs], caps, claim);
    }
  }
cleanup:
  ps__toks_free(&hdr);
  ps__toks_free(&row);
  return st;
}

ps_status ps__import_p2p_text(ps_ctx *ctx, ps_report *report, const char *text, size_t len,
                              const char *name) {
  ps_status st = PS_OK;
  size_t bytes = (size_t)report->pair_count * sizeof(ps_pair);
  /* All or nothing: the old pairs come back unless the whole text parsed. */
  ps_pair *saved = bytes ? ps__calloc(1, bytes) : NULL;
  if (bytes && !saved) return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", name);
  if (bytes) memcpy(saved, report->pairs, bytes);
  ps__scan scan;
  ps__matrix m;
  int found = 0;
  ps__scan_init(&scan, text, len, PS__MATRIX_P2P);
  while (ps__scan_next(&scan, &m)) {
    if (m.kind != PS__MATRIX_P2P) continue; /* a topology pasted alongside */
    if ((st = ps__p2p_apply(ctx, name, &m, report)) != PS_OK) goto cleanup;
    found++;
  }
  if (!found)
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s:1:1: no nvidia-smi topo -p2p matrix found (expected a header line starting "
                  "with GPU0, then rows like 'GPU0 X OK')",
                  name);
cleanup:
  if (st != PS_OK && saved) memcpy(report->pairs, saved, bytes);
  ps__free(saved);
  return st;
}

ps_status ps_import_p2p_claims(ps_ctx *ctx, ps_report *report, const char *path) {
  char *text = NULL;
  size_t len = 0;
  if (!report || !path)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_import_p2p_claims: NULL argument");
  ps_status st = ps__import_read(ctx, path, "an nvidia-smi -p2p matrix", &text, &len);
  if (st == PS_OK) st = ps__import_p2p_text(ctx, report, text, len, path);
  ps__free(text);
  return st;
}
