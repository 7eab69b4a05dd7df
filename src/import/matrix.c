/* Finding the matrices in a paste: `nvidia-smi topo -m` (or -mp) and `topo -p2p <caps>`.
 * A paste may hold prompts, legends, markdown and both kinds of matrix; a matrix is a header
 * line starting with GPU0 directly followed by a row labelled GPU<n>. */
#include <string.h>

#include "import/import_internal.h"
#include "report/report_internal.h"

void ps__scan_init(ps__scan *scan, const char *text, size_t len, ps__matrix_kind prefer) {
  ps__lines_init(&scan->it, text, len);
  scan->pending_caps = 0;
  scan->prefer = prefer;
}

/* Up to `want` leading tokens of a line, without allocating. */
static int first_tokens(const ps__line *line, ps__tok *out, int want) {
  ps__tok buf[4];
  ps__toks toks = {buf, 0, want < 4 ? want : 4};
  ps__tokenize(NULL, line, toks.cap, &toks); /* cannot fail: never grows */
  memcpy(out, buf, (size_t)toks.count * sizeof(*buf));
  return toks.count;
}

/* Capabilities named by "-p2p <caps>" or "--p2pstatus <caps>" in a line, 0 if none. The last
 * mention with valid letters wins ("-p2p -p" or '"-p2p" is missing its value' name none). */
static unsigned p2p_caps(const ps__line *line) {
  unsigned caps = 0;
  for (size_t i = 0; i + 4 <= line->len; i++) {
    size_t at;
    if (memcmp(line->text + i, "-p2p", 4) == 0)
      at = i + 4;
    else
      continue;
    if (at + 6 <= line->len && memcmp(line->text + at, "status", 6) == 0) at += 6;
    size_t j = at;
    while (j < line->len && (line->text[j] == ' ' || line->text[j] == '\t'))
      j++;
    if (j == at) continue; /* "-p2p" glued to something else */
    unsigned found = 0;
    size_t k = j;
    for (; k < line->len; k++) {
      char c = line->text[k];
      unsigned bit = c == 'r'   ? PS__CAP_R
                     : c == 'w' ? PS__CAP_W
                     : c == 'n' ? PS__CAP_N
                     : c == 'a' ? PS__CAP_A
                     : c == 'p' ? PS__CAP_P
                                : 0;
      if (!bit) break;
      found |= bit;
    }
    /* The word must end there: "-p2p ok" or "-p2p rx" are not modes. */
    if (found && (k == line->len || !((line->text[k] >= 'a' && line->text[k] <= 'z') ||
                                      (line->text[k] >= 'A' && line->text[k] <= 'Z') ||
                                      (line->text[k] >= '0' && line->text[k] <= '9'))))
      caps = found;
  }
  return caps;
}

static bool is_link_word(const ps__tok *t) {
  static const char *const words[] = {"PIX", "PXB", "PHB", "NODE", "SYS", "SOC", "INT"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (ps__tok_is(t, words[i])) return true;
  return t->len > 2 && memcmp(t->text, "NV", 2) == 0 && t->text[2] >= '1' && t->text[2] <= '9';
}

static bool is_claim_word(const ps__tok *t) {
  static const char *const words[] = {"OK", "CNS", "GNS", "TNS", "NS", "U", "DR", "DIS"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (ps__tok_is(t, words[i])) return true;
  return false;
}

/* What the first row's first cell other than X says; `fallback` when it says nothing. */
static ps__matrix_kind classify(const ps__line *row, ps__matrix_kind fallback) {
  ps__tok t[4];
  int n = first_tokens(row, t, 3);
  for (int i = 1; i < n; i++) {
    if (ps__tok_is(&t[i], "X")) continue;
    if (is_claim_word(&t[i])) return PS__MATRIX_P2P;
    if (is_link_word(&t[i])) return PS__MATRIX_TOPO;
    break;
  }
  return fallback;
}

bool ps__scan_next(ps__scan *scan, ps__matrix *out) {
  ps__line line;
  for (;;) {
    ps__lines before = scan->it;
    if (!ps__lines_next(&scan->it, &line)) return false;
    unsigned caps = p2p_caps(&line);
    if (caps) scan->pending_caps = caps;
    ps__tok t[2];
    int n = first_tokens(&line, t, 2);
    if (n == 0 || !ps__tok_is(&t[0], "GPU0") || (n == 2 && ps__tok_is(&t[1], "X"))) continue;
    ps__lines peek = scan->it;
    ps__line row;
    ps__tok label;
    if (!ps__lines_next(&peek, &row) || first_tokens(&row, &label, 1) != 1 ||
        ps__tok_gpu_index(&label) < 0)
      continue;
    /* A -p2p mention before it decides an unclear matrix; the cells decide a clear one. */
    ps__matrix_kind fallback = scan->pending_caps ? PS__MATRIX_P2P : scan->prefer;
    out->kind = classify(&row, fallback);
    out->caps = out->kind == PS__MATRIX_P2P ? scan->pending_caps : 0;
    out->at = before;
    scan->pending_caps = 0;
    return true;
  }
}
