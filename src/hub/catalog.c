/* The catalog shipped with peerscope (share/peerscope/models, docs/models.md): for each of the
 * most used open models its real config.json and peerscope-catalog.json with the weight total
 * (the safetensors index's metadata.total_size, or the headers' sum) and where both came
 * from. Also the records of single-file models' header totals in peerscope's cache. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "hub/hub_internal.h"
#include "model/model.h"

#define ENTRY_FILE "peerscope-catalog.json"

ps_status ps__hub_model_from_config(ps_ctx *ctx, const char *config, const char *name,
                                    const ps__hub_total *total, ps_model *out) {
  char *text = NULL;
  size_t len = 0;
  ps_status st = ps__model_read_text(ctx, config, &text, &len);
  if (st == PS_OK) st = ps__model_parse_config(ctx, text, len, config, out);
  ps__free(text);
  if (st != PS_OK) return st;
  ps__strlcpy(out->name, name, sizeof(out->name));
  out->weight_bytes = total->bytes;
  out->valid |= PS_MODEL_WEIGHTS_EXACT;
  if (total->params && !out->quantization[0]) {
    out->param_count = total->params;
    out->valid |= PS_MODEL_PARAMS;
  }
  return PS_OK;
}

/* A positive integer member (json real that is integral accepted), 0 when absent. */
static uint64_t json_count(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v) && json_integer_value(v) > 0) return (uint64_t)json_integer_value(v);
  if (json_is_real(v) && json_real_value(v) >= 1 && json_real_value(v) < 9e18)
    return (uint64_t)json_real_value(v);
  return 0;
}

static ps_status read_entry(ps_ctx *ctx, const char *path, const char *repo, char *rev,
                            size_t rev_len, ps__hub_total *total) {
  json_error_t err;
  json_t *doc = json_load_file(path, 0, &err);
  if (!doc)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", path, err.line, err.column, err.text);
  ps_status st = PS_OK;
  const char *id = json_string_value(json_object_get(doc, "id"));
  const char *r = json_string_value(json_object_get(doc, "revision"));
  total->bytes = json_count(doc, "total_size");
  total->params = json_count(doc, "total_parameters");
  if (!id || strcmp(id, repo) != 0 || total->bytes == 0)
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: expected \"id\": \"%s\" and a positive total_size",
                  path, repo);
  else
    ps__strlcpy(rev, r ? r : "", rev_len);
  json_decref(doc);
  return st;
}

ps_status ps__hub_catalog_find(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                               const char *revision, char *dir, size_t dir_len, char *rev,
                               size_t rev_len, ps__hub_total *total) {
  char path[PATH_MAX + 300];
  const char *slash = strchr(repo, '/');
  if (!env->catalog[0] || !slash) return PS_ERR_NOT_FOUND;
  ps__hub_fmt(path, sizeof(path), "%s/%.*s--%s", env->catalog, (int)(slash - repo), repo,
              slash + 1);
  if (strlen(path) >= dir_len) return PS_ERR_NOT_FOUND;
  ps__strlcpy(dir, path, dir_len);
  ps__hub_fmt(path, sizeof(path), "%s/" ENTRY_FILE, dir);
  FILE *f = fopen(path, "r");
  if (!f) return PS_ERR_NOT_FOUND;
  fclose(f);
  ps_status st = read_entry(ctx, path, repo, rev, rev_len, total);
  if (st != PS_OK) return st;
  /* The catalog holds one revision: asked for another, the cache or the Hub must answer. */
  if (revision && *revision && strcmp(revision, rev) != 0) return PS_ERR_NOT_FOUND;
  return PS_OK;
}

static int by_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the id of every entry under `catalog` to *names (NUL-separated), counting them. */
static ps_status list_ids(ps_ctx *ctx, const char *catalog, char **names, size_t *bytes,
                          size_t *count) {
  DIR *d = opendir(catalog);
  if (!d) return ps__fail(ctx, PS_ERR_NOT_FOUND, "%s: %s", catalog, strerror(errno));
  struct dirent *e;
  ps_status st = PS_OK;
  while (st == PS_OK && (e = readdir(d)) != NULL) {
    char path[PATH_MAX + 300];
    if (e->d_name[0] == '.') continue;
    ps__hub_fmt(path, sizeof(path), "%s/%s/" ENTRY_FILE, catalog, e->d_name);
    json_t *doc = json_load_file(path, 0, NULL);
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *slash = id ? strchr(id, '/') : NULL;
    char want[PATH_MAX];
    /* Only entries that ps__hub_catalog_find would answer: org--name holding "org/name". */
    if (slash) ps__hub_fmt(want, sizeof(want), "%.*s--%s", (int)(slash - id), id, slash + 1);
    if (slash && strcmp(want, e->d_name) == 0) {
      size_t n = strlen(id) + 1;
      char *bigger = ps__realloc(*names, *bytes + n);
      if (!bigger)
        st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
      else {
        memcpy(bigger + *bytes, id, n);
        *names = bigger;
        *bytes += n;
        (*count)++;
      }
    }
    json_decref(doc);
  }
  closedir(d);
  return st;
}

ps_status ps_model_catalog_ids(ps_ctx *ctx, const char *catalog, char ***ids, size_t *count) {
  char dir[PATH_MAX], *names = NULL;
  size_t bytes = 0, n = 0;
  if (!ids || !count) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_catalog_ids: no out");
  *ids = NULL;
  *count = 0;
  if (catalog && *catalog)
    ps__strlcpy(dir, catalog, sizeof(dir));
  else if (ps_bundled_path(ctx, PS_BUNDLED_MODELS, dir, sizeof(dir)) != PS_OK)
    return PS_ERR_NOT_FOUND;
  ps_status st = list_ids(ctx, dir, &names, &bytes, &n);
  char **out = st == PS_OK ? ps__calloc(1, (n + 1) * sizeof(char *) + bytes + 1) : NULL;
  if (st == PS_OK && !out) st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  if (st == PS_OK) {
    char *text = (char *)(out + n + 1);
    if (bytes) memcpy(text, names, bytes);
    for (size_t i = 0; i < n; i++, text += strlen(text) + 1)
      out[i] = text;
    qsort(out, n, sizeof(char *), by_str);
    *ids = out;
    *count = n;
  }
  ps__free(names);
  return st;
}

static void sidecar_path(const ps__hub_env *env, const char *repo, const char *commit, char *out,
                         size_t len) {
  const char *slash = strchr(repo, '/');
  ps__hub_fmt(out, len, "%s/models--%.*s--%s/%s.json", env->sidecars,
              slash ? (int)(slash - repo) : 0, repo, slash ? slash + 1 : repo, commit);
}

ps_status ps__hub_sidecar_read(const ps__hub_env *env, const char *repo, const char *commit,
                               ps__hub_total *total) {
  char path[PATH_MAX + 400];
  if (!env->sidecars[0]) return PS_ERR_NOT_FOUND;
  sidecar_path(env, repo, commit, path, sizeof(path));
  json_t *doc = json_load_file(path, 0, NULL);
  total->bytes = json_count(doc, "total_size");
  total->params = json_count(doc, "total_parameters");
  const char *c = json_string_value(json_object_get(doc, "commit"));
  bool ok = total->bytes > 0 && c && strcmp(c, commit) == 0;
  json_decref(doc);
  return ok ? PS_OK : PS_ERR_NOT_FOUND;
}

ps_status ps__hub_sidecar_write(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                                const char *commit, const ps__hub_total *total) {
  char path[PATH_MAX + 400], text[1024];
  if (!env->sidecars[0]) return PS_OK;
  sidecar_path(env, repo, commit, path, sizeof(path));
  int n =
      snprintf(text, sizeof(text),
               "{\"schema\": \"peerscope.hub-header/1\", \"repo\": \"%s\", \"commit\": "
               "\"%s\", \"file\": \"model.safetensors\", \"total_size\": %llu, "
               "\"total_parameters\": %llu}\n",
               repo, commit, (unsigned long long)total->bytes, (unsigned long long)total->params);
  return ps__hub_write_atomic(ctx, path, text, (size_t)n);
}
