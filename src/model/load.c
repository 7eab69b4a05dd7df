/* ps_model_load: a downloaded Hugging Face model directory (or a snapshot in the HF cache)
 * into ps_model: config.json for the shape, then the weight files for the exact size. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "model/model_internal.h"

ps_status ps__model_read_text(ps_ctx *ctx, const char *path, char **text, size_t *len) {
  ps_status st = PS_OK;
  size_t cap = 0;
  *text = NULL;
  *len = 0;
  errno = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
  for (;;) {
    if (*len + 1 >= cap) {
      if (cap >= PS_MODEL_JSON_MAX_BYTES) {
        st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB; not a model's JSON file",
                      path, PS_MODEL_JSON_MAX_BYTES >> 20);
        goto cleanup;
      }
      size_t grown = cap ? cap * 2 : 16 * 1024;
      char *bigger = ps__realloc(*text, grown);
      if (!bigger) {
        st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory reading the file", path);
        goto cleanup;
      }
      *text = bigger;
      cap = grown;
    }
    size_t got = fread(*text + *len, 1, cap - 1 - *len, f);
    *len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno ? errno : EIO));
    goto cleanup;
  }
  (*text)[*len] = '\0';
cleanup:
  fclose(f);
  if (st != PS_OK) {
    ps__free(*text);
    *text = NULL;
    *len = 0;
  }
  return st;
}

/* The directory's name; for a Hugging Face cache snapshot
 * (.../models--org--name/snapshots/<hash>) the repository id "org/name". */
static void model_name(const char *dir, char *out, size_t len) {
  const char *end = dir + strlen(dir), *base = end;
  while (base > dir && base[-1] != '/')
    base--;
  ps__strlcpy(out, base, len);
  if (base - dir < 2) return;
  const char *parent_end = base - 1, *parent = parent_end;
  while (parent > dir && parent[-1] != '/')
    parent--;
  if ((size_t)(parent_end - parent) != 9 || strncmp(parent, "snapshots", 9) != 0 || parent == dir)
    return;
  const char *repo_end = parent - 1, *repo = repo_end;
  while (repo > dir && repo[-1] != '/')
    repo--;
  if (repo_end - repo <= 8 || strncmp(repo, "models--", 8) != 0) return;
  char id[256];
  snprintf(id, sizeof(id), "%.*s", (int)(repo_end - repo - 8), repo + 8);
  char *sep = strstr(id, "--");
  if (sep) {
    *sep = '/';
    memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
  }
  ps__strlcpy(out, id, len);
}

ps_status ps__model_load(ps_ctx *ctx, const char *dir, ps_model *out) {
  ps_status st = PS_OK;
  ps__model_dir listing;
  char root[PATH_MAX], path[PATH_MAX + 16];
  char *text = NULL;
  size_t len = 0;
  memset(&listing, 0, sizeof(listing));
  if (!out || !dir || !*dir)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_load: no directory");
  memset(out, 0, sizeof(*out));
  if (strlen(dir) >= sizeof(root))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_load: path too long");
  ps__strlcpy(root, dir, sizeof(root));
  for (size_t n = strlen(root); n > 1 && root[n - 1] == '/'; n--)
    root[n - 1] = '\0'; /* "llama/" -> "llama", so messages read "llama/config.json" */

  if ((st = ps__model_dir_scan(ctx, root, &listing)) != PS_OK) goto cleanup;
  if (!listing.has_config) {
    if (!listing.safetensors_count && !listing.has_index && (listing.has_gguf || listing.has_bin))
      st = ps__model_gguf_error(ctx, root);
    else
      st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: no config.json (not a Hugging Face model directory?)", root);
    goto cleanup;
  }
  snprintf(path, sizeof(path), "%s/config.json", root);
  if ((st = ps__model_read_text(ctx, path, &text, &len)) != PS_OK) goto cleanup;
  if ((st = ps__model_parse_config(ctx, text, len, path, out)) != PS_OK) goto cleanup;
  model_name(root, out->name, sizeof(out->name));
  st = ps__model_weights(ctx, root, &listing, out);
cleanup:
  ps__free(text);
  ps__model_dir_free(&listing);
  if (st != PS_OK && out) memset(out, 0, sizeof(*out));
  return st;
}
