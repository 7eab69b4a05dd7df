/* Lines and tokens of pasted text, and reading such a file with a size cap. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "import/import_internal.h"

void ps__lines_init(ps__lines *it, const char *text, size_t len) {
  it->text = text ? text : "";
  it->len = text ? len : 0;
  it->pos = 0;
  it->number = 0;
}

bool ps__lines_next(ps__lines *it, ps__line *out) {
  if (it->pos >= it->len) return false;
  const char *start = it->text + it->pos;
  size_t rest = it->len - it->pos;
  const char *nl = memchr(start, '\n', rest);
  size_t len = nl ? (size_t)(nl - start) : rest;
  it->pos += nl ? len + 1 : len;
  if (len > 0 && start[len - 1] == '\r') len--; /* pasted from Windows */
  it->number++;
  out->text = start;
  out->len = len;
  out->number = it->number;
  return true;
}

/* Length of the separator at p (0 if none): blanks, UTF-8 NBSP, ANSI escapes. */
static inline size_t separator_len(const char *p, size_t rest) {
  unsigned char c = (unsigned char)p[0];
  if (c > ' ' && c != 0xC2 && c != 0x1B) return 0; /* the common case: part of a word */
  if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') return 1;
  if (c == 0xC2 && rest > 1 && (unsigned char)p[1] == 0xA0) return 2; /* copied from HTML */
  if (c != 0x1B) return 0;
  if (rest < 2) return 1;
  if (p[1] != '[') return 2; /* a two-byte escape */
  size_t i = 2;
  /* CSI: parameter and intermediate bytes, then one final byte. */
  while (i < rest && (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] <= 0x3F)
    i++;
  if (i < rest && (unsigned char)p[i] >= 0x40 && (unsigned char)p[i] <= 0x7E) i++;
  return i;
}

ps_status ps__tokenize(ps_ctx *ctx, const ps__line *line, int max, ps__toks *out) {
  out->count = 0;
  size_t i = 0;
  while (i < line->len) {
    size_t sep = separator_len(line->text + i, line->len - i);
    if (sep) {
      i += sep;
      continue;
    }
    size_t start = i;
    while (i < line->len && !separator_len(line->text + i, line->len - i))
      i++;
    if (out->count == out->cap) {
      int cap = out->cap ? out->cap * 2 : 64;
      ps__tok *bigger = ps__realloc(out->v, (size_t)cap * sizeof(*bigger));
      if (!bigger) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory splitting a line");
      out->v = bigger;
      out->cap = cap;
    }
    out->v[out->count++] = (ps__tok){line->text + start, i - start, (int)start + 1};
    if (max > 0 && out->count == max) break;
  }
  return PS_OK;
}

void ps__toks_free(ps__toks *toks) {
  ps__free(toks->v);
  toks->v = NULL;
  toks->count = toks->cap = 0;
}

bool ps__tok_is(const ps__tok *tok, const char *word) {
  size_t i = 0;
  for (; i < tok->len; i++)
    if (tok->text[i] != word[i] || !word[i]) return false;
  return word[i] == '\0';
}

int ps__tok_gpu_index(const ps__tok *tok) {
  if (tok->len < 4 || memcmp(tok->text, "GPU", 3) != 0) return -1;
  ps__tok digits = {tok->text + 3, tok->len - 3, tok->col + 3};
  int n;
  return ps__tok_uint(&digits, 1 << 20, &n) ? n : -1;
}

bool ps__tok_uint(const ps__tok *tok, int max, int *out) {
  if (tok->len == 0 || tok->len > 9) return false;
  if (tok->len > 1 && tok->text[0] == '0') return false;
  int value = 0;
  for (size_t i = 0; i < tok->len; i++) {
    char c = tok->text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

const char *ps__tok_show(const ps__tok *tok, char *buf, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < tok->len; i++) {
    unsigned char c = (unsigned char)tok->text[i];
    char piece[8];
    if (c >= 0x20 && c < 0x7F && c != '\\')
      snprintf(piece, sizeof(piece), "%c", c);
    else
      snprintf(piece, sizeof(piece), "\\x%02X", c);
    size_t n = strlen(piece);
    if (o + n + 4 > len) { /* keep room for "..." and the NUL */
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(buf + o, piece, n);
    o += n;
  }
  buf[o] = '\0';
  return buf;
}

ps_status ps__import_read(ps_ctx *ctx, const char *path, const char *what, char **text,
                          size_t *len) {
  ps_status st = PS_OK;
  char *buf = NULL;
  size_t used = 0, cap = 0;
  *text = NULL;
  *len = 0;
  errno = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno ? errno : ENOENT));
  for (;;) {
    if (used == cap) {
      if (cap > PS_IMPORT_MAX_BYTES) {
        st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB; not %s", path,
                      PS_IMPORT_MAX_BYTES >> 20, what);
        goto cleanup;
      }
      size_t grown = cap ? cap * 2 : 64 * 1024;
      char *bigger = ps__realloc(buf, grown + 1);
      if (!bigger) {
        st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory reading the file", path);
        goto cleanup;
      }
      buf = bigger;
      cap = grown;
    }
    size_t got = fread(buf + used, 1, cap - used, f);
    used += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno ? errno : EIO));
    goto cleanup;
  }
  if (used > PS_IMPORT_MAX_BYTES) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB; not %s", path,
                  PS_IMPORT_MAX_BYTES >> 20, what);
    goto cleanup;
  }
  buf[used] = '\0';
  *text = buf;
  *len = used;
  buf = NULL;
cleanup:
  fclose(f);
  ps__free(buf);
  return st;
}
