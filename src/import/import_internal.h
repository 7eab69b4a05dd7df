/* Shared by the parsers of pasted nvidia-smi output (src/import): lines, tokens, sections.
 * The inputs come from bug reports, so nothing here trusts them: every token keeps its line
 * and column for the one-line "file:line:col: message" errors. */
#ifndef PS_IMPORT_INTERNAL_H
#define PS_IMPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

/* Anything larger is not a pasted nvidia-smi output. */
#define PS_IMPORT_MAX_BYTES (16u << 20)

/* ---- lines ------------------------------------------------------------------------- */

typedef struct ps__line {
  const char *text; /* not NUL-terminated; may hold NUL bytes */
  size_t len;       /* without the line break (LF, CRLF) */
  int number;       /* 1-based */
} ps__line;

/* A cursor over the lines of a text; copy it to look ahead. */
typedef struct ps__lines {
  const char *text;
  size_t len, pos;
  int number; /* of the line last returned; 0 before the first */
} ps__lines;

void ps__lines_init(ps__lines *it, const char *text, size_t len);
bool ps__lines_next(ps__lines *it, ps__line *out);

/* ---- tokens ------------------------------------------------------------------------ */

typedef struct ps__tok {
  const char *text;
  size_t len;
  int col; /* 1-based byte column in its line */
} ps__tok;

typedef struct ps__toks {
  ps__tok *v;
  int count, cap;
} ps__toks;

/* Splits a line at blanks (space, tab, CR, VT, FF, UTF-8 no-break space) and at ANSI escape
 * sequences (nvidia-smi underlines its header on a terminal). At most `max` tokens are kept
 * (0 = all); PS_ERR_NO_MEMORY is the only failure. */
ps_status ps__tokenize(ps_ctx *ctx, const ps__line *line, int max, ps__toks *out);
void ps__toks_free(ps__toks *toks);

bool ps__tok_is(const ps__tok *tok, const char *word);
/* n for "GPU<n>" (decimal, no sign, no leading zero), else -1. */
int ps__tok_gpu_index(const ps__tok *tok);
/* The token quoted for a message: non-printable bytes as \xNN, long tokens cut with "...". */
const char *ps__tok_show(const ps__tok *tok, char *buf, size_t len);
/* Parses a decimal int in [0, max]; false on anything else. */
bool ps__tok_uint(const ps__tok *tok, int max, int *out);

/* ---- files ------------------------------------------------------------------------- */

/* Reads a whole file of at most PS_IMPORT_MAX_BYTES; *text is NUL-terminated, free with
 * ps__free. `what` names the expected content in the size error. */
ps_status ps__import_read(ps_ctx *ctx, const char *path, const char *what, char **text,
                          size_t *len);

/* ---- matrices in a paste ------------------------------------------------------------- */

typedef enum ps__matrix_kind { PS__MATRIX_TOPO = 0, PS__MATRIX_P2P = 1 } ps__matrix_kind;

/* Capabilities a `nvidia-smi topo -p2p <caps>` section claims. */
enum { PS__CAP_R = 1, PS__CAP_W = 2, PS__CAP_N = 4, PS__CAP_A = 8, PS__CAP_P = 16 };

typedef struct ps__matrix {
  ps__matrix_kind kind;
  unsigned caps; /* P2P: from the last "-p2p <caps>" before it; 0 = not said */
  ps__lines at;  /* ps__lines_next(&at) returns the header line */
} ps__matrix;

typedef struct ps__scan {
  ps__lines it;
  unsigned pending_caps;  /* from a "-p2p <caps>" line since the last matrix */
  ps__matrix_kind prefer; /* kind of a matrix whose cells do not tell */
} ps__scan;

void ps__scan_init(ps__scan *scan, const char *text, size_t len, ps__matrix_kind prefer);
/* Finds the next matrix: a header line whose first token is GPU0 (and whose second is not
 * X), directly followed by a line starting with a GPU<n> label. Leaves scan->it after the
 * header line. False at the end of the text. */
bool ps__scan_next(ps__scan *scan, ps__matrix *out);

/* ---- the parsers ------------------------------------------------------------------- */

/* Parses the topology matrix at `m` into a new report; on success *end is the cursor after
 * the matrix's last row. */
ps_status ps__topo_parse(ps_ctx *ctx, const char *name, const ps__matrix *m, ps_report **out,
                         ps__lines *end);
/* Parses the -p2p matrix at `m` and sets the claims it makes on `report`'s pairs. */
ps_status ps__p2p_apply(ps_ctx *ctx, const char *name, const ps__matrix *m, ps_report *report);

/* The text behind ps_import_p2p_claims and ps_import_gpu_info (`name` for messages); the
 * report is left unchanged on failure. */
ps_status ps__import_p2p_text(ps_ctx *ctx, ps_report *report, const char *text, size_t len,
                              const char *name);
ps_status ps__import_gpu_info_text(ps_ctx *ctx, ps_report *report, const char *text, size_t len,
                                   const char *name);

#endif
