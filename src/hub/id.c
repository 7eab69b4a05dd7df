/* Hugging Face model ids, "org/name[@revision]", checked as strictly as the Hub checks them
 * (huggingface_hub's validate_repo_id, ASCII only) and revisions as git checks ref names, so a
 * typo is one line here instead of a 404 or a path outside the cache later. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "hub/hub_internal.h"

#define PART_MAX 96

static bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool id_char(char c) { return word_char(c) || c == '-' || c == '.'; }

bool ps__hub_is_commit(const char *text) {
  size_t n = 0;
  for (; text[n]; n++)
    if (!((text[n] >= '0' && text[n] <= '9') || (text[n] >= 'a' && text[n] <= 'f'))) return false;
  return n == 40;
}

bool ps__hub_id_shaped(const char *text) {
  const char *slash = strchr(text, '/');
  if (!slash || slash == text || text[0] == '.' || text[0] == '~') return false;
  const char *at = strchr(text, '@');
  const char *end = at ? at : text + strlen(text);
  if (slash >= end || slash + 1 == end) return false;
  return memchr(slash + 1, '/', (size_t)(end - slash - 1)) == NULL;
}

/* One side of "org/name": NULL when fine, else why not. */
static const char *part_error(const char *s, size_t n) {
  if (n == 0) return "is empty";
  if (n > PART_MAX) return "is longer than 96 characters";
  for (size_t i = 0; i < n; i++)
    if (!id_char(s[i])) return "may hold only letters, digits, '-', '_' and '.'";
  if (!word_char(s[0]) || !word_char(s[n - 1]))
    return "must start and end with a letter, digit or '_'";
  return NULL;
}

bool ps__hub_fmt(char *out, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, len, fmt, ap);
  va_end(ap);
  return n >= 0 && (size_t)n < len;
}

const char *ps__hub_revision_error(const char *rev) {
  size_t n = strlen(rev);
  if (n == 0) return "is empty";
  if (n > 255) return "is longer than 255 characters";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)rev[i];
    if (c <= ' ' || c >= 127 || strchr("~^:?*[\\", c))
      return "may not hold spaces, control characters or any of ~^:?*[\\";
  }
  if (strstr(rev, "..") || strstr(rev, "@{") || strcmp(rev, "@") == 0)
    return "may not hold '..' or '@{'";
  if (rev[0] == '/' || rev[n - 1] == '/' || strstr(rev, "//"))
    return "may not start or end with '/' or hold '//'";
  if (rev[n - 1] == '.') return "may not end with '.'";
  for (const char *p = rev; p; p = strchr(p, '/')) {
    if (*p == '/') p++;
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (p[0] == '.') return "may not have a part starting with '.'";
    if (len >= 5 && strncmp(p + len - 5, ".lock", 5) == 0)
      return "may not have a part ending with '.lock'";
  }
  return NULL;
}

static ps_status bad(ps_ctx *ctx, const char *text, const char *what, const char *why) {
  return ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "'%.300s': not a Hugging Face model id (org/name[@revision]): %s %s", text, what,
                  why);
}

static ps_status check(ps_ctx *ctx, const char *text, ps_model_id *id) {
  const char *at = strchr(text, '@');
  size_t repo_len = at ? (size_t)(at - text) : strlen(text);
  const char *slash = memchr(text, '/', repo_len);
  if (!slash) return bad(ctx, text, "it", "has no '/' between the organisation and the name");
  if (memchr(slash + 1, '/', repo_len - (size_t)(slash + 1 - text)))
    return bad(ctx, text, "it", "has more than one '/' before the revision");
  const char *why;
  if ((why = part_error(text, (size_t)(slash - text))) != NULL)
    return bad(ctx, text, "the organisation", why);
  size_t name_len = repo_len - (size_t)(slash + 1 - text);
  if ((why = part_error(slash + 1, name_len)) != NULL) return bad(ctx, text, "the name", why);
  char repo[sizeof(id->repo)];
  snprintf(repo, sizeof(repo), "%.*s", (int)repo_len, text);
  if (strstr(repo, "--") || strstr(repo, ".."))
    return bad(ctx, text, "it", "may not hold '--' or '..'");
  if (repo_len >= 4 && strcmp(repo + repo_len - 4, ".git") == 0)
    return bad(ctx, text, "the name", "may not end with '.git'");
  if (at && (why = ps__hub_revision_error(at + 1)) != NULL)
    return bad(ctx, text, "the revision", why);
  ps__strlcpy(id->repo, repo, sizeof(id->repo));
  ps__strlcpy(id->revision, at ? at + 1 : "", sizeof(id->revision));
  return PS_OK;
}

ps_status ps_model_id_parse(ps_ctx *ctx, const char *text, ps_model_id **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_id_parse: no out");
  *out = NULL;
  if (!text) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_id_parse: no text");
  ps_model_id *id = ps__calloc(1, sizeof(*id));
  if (!id) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  id->size = sizeof(*id);
  ps_status st = check(ctx, text, id);
  if (st != PS_OK) {
    ps__free(id);
    return st;
  }
  *out = id;
  return PS_OK;
}

void ps_model_id_free(ps_model_id *id) { ps__free(id); }
