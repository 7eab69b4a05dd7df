/* The directory's weight files: exact bytes from model.safetensors.index.json's
 * metadata.total_size (all a directory has before its shards are downloaded), else from the
 * safetensors headers; GGUF or .bin weights alone are refused; config.json alone keeps the
 * estimate from the shapes. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checked.h"
#include "core/internal.h"
#include "core/strset.h"
#include "model/model_internal.h"

#define INDEX_NAME "model.safetensors.index.json"
/* More shards than any real model has; bounds the listing. */

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

ps_status ps__model_gguf_error(ps_ctx *ctx, const char *dir) {
  return ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s: only GGUF/.bin weights found; peerscope reads safetensors headers; give "
                  "--model-size-gb instead",
                  dir);
}

void ps__model_dir_free(ps__model_dir *d) {
  for (size_t i = 0; i < d->safetensors_count; i++)
    ps__free(d->safetensors[i]);
  ps__free(d->safetensors);
  memset(d, 0, sizeof(*d));
}

ps_status ps__model_dir_scan(ps_ctx *ctx, const char *dir, ps__model_dir *out) {
  ps_status st = PS_OK;
  struct stat sb;
  size_t cap = 0;
  memset(out, 0, sizeof(*out));
  if (stat(dir, &sb) != 0) {
    if (errno == ENOENT)
      return ps__fail(ctx, PS_ERR_NOT_FOUND,
                      "%s: no such directory (peerscope reads a downloaded model directory; give "
                      "--model-size-gb for one that is not here)",
                      dir);
    return ps__fail(ctx, PS_ERR_IO, "%s: %s", dir, strerror(errno));
  }
  if (!S_ISDIR(sb.st_mode)) {
    if (ends_with(dir, ".gguf") || ends_with(dir, ".bin")) return ps__model_gguf_error(ctx, dir);
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: not a directory (give the model's directory, the one with config.json)",
                    dir);
  }
  DIR *d = opendir(dir);
  if (!d) return ps__fail(ctx, PS_ERR_IO, "%s: %s", dir, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (n[0] == '.') continue;
    if (strcmp(n, "config.json") == 0) out->has_config = true;
    if (strcmp(n, INDEX_NAME) == 0) out->has_index = true;
    if (ends_with(n, ".gguf")) out->has_gguf = true;
    if (strncmp(n, "pytorch_model", 13) == 0 && ends_with(n, ".bin")) out->has_bin = true;
    if (!ends_with(n, ".safetensors")) continue;
    if (out->safetensors_count == PS_MODEL_MAX_SHARDS) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: more than %d safetensors files", dir,
                    PS_MODEL_MAX_SHARDS);
      goto cleanup;
    }
    if (out->safetensors_count == cap) {
      size_t grown = cap ? cap * 2 : 16;
      char **bigger = ps__realloc(out->safetensors, grown * sizeof(*bigger));
      if (!bigger) goto oom;
      out->safetensors = bigger;
      cap = grown;
    }
    if (!(out->safetensors[out->safetensors_count] = ps__strdup(n))) goto oom;
    out->safetensors_count++;
  }
  if (out->safetensors_count)
    qsort(out->safetensors, out->safetensors_count, sizeof(char *), by_name);
  goto cleanup;
oom:
  st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory listing the directory", dir);
cleanup:
  closedir(d);
  if (st != PS_OK) ps__model_dir_free(out);
  return st;
}

static void join(char *path, size_t len, const char *dir, const char *file) {
  snprintf(path, len, "%s/%s", dir, file);
}

/* Sums the headers of `files` into m (exact bytes; parameters unless quantized: packed
 * int4 tensors hold several weights per element). */
static ps_status sum_headers(ps_ctx *ctx, const char *dir, char *const *files, size_t count,
                             ps_model *m, bool bytes_too) {
  char path[PATH_MAX];
  ps__st_sum sum = {0, 0, 0};
  for (size_t i = 0; i < count; i++) {
    join(path, sizeof(path), dir, files[i]);
    ps_status st = ps__safetensors_read(ctx, path, &sum);
    if (st != PS_OK) return st;
    if (sum.data_bytes > PS_MAX_WEIGHT_BYTES || sum.params > PS_MAX_PARAMS)
      return ps__fail(ctx, PS_ERR_BAD_INPUT,
                      "%s: the shards up to this one hold more than %llu bytes or parameters; "
                      "no model is that large",
                      path, (unsigned long long)PS_MAX_WEIGHT_BYTES);
  }
  if (bytes_too) {
    m->weight_bytes = sum.data_bytes;
    m->valid |= PS_MODEL_WEIGHTS_EXACT;
  }
  if (!m->quantization[0]) {
    m->param_count = sum.params;
    m->valid |= PS_MODEL_PARAMS;
  }
  return PS_OK;
}

/* metadata.<key>: a positive integer up to max (some writers emit 1.6e10 as a real); 0 when
 * absent. */
static ps_status index_size(ps_ctx *ctx, const char *name, const json_t *meta, const char *key,
                            uint64_t max, uint64_t *out) {
  const json_t *v = json_object_get(meta, key);
  *out = 0;
  if (!v || json_is_null(v)) return PS_OK;
  if (json_is_integer(v) && json_integer_value(v) > 0) {
    *out = (uint64_t)json_integer_value(v);
  } else if (json_is_real(v) && json_real_value(v) >= 1 && json_real_value(v) < 9e18 &&
             (double)(long long)json_real_value(v) == json_real_value(v)) {
    *out = (uint64_t)json_real_value(v);
  } else {
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: metadata.%s: expected a positive integer", name,
                    key);
  }
  if (*out > max)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: metadata.%s: %llu is absurd (more than %llu; no model is that large)",
                    name, key, (unsigned long long)*out, (unsigned long long)max);
  return PS_OK;
}

/* A weight_map entry names a file inside the model directory: relative, no "." or ".."
 * component, no empty one. (Shards in the Hugging Face cache are symlinks into its blobs/;
 * those stay allowed: the name is what is confined, see shard_dir_inside.) */
static bool shard_name_ok(const char *s) {
  if (!*s || *s == '/') return false;
  for (const char *c = s; *c;) {
    size_t n = strcspn(c, "/");
    if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return false;
    c += n;
    if (*c == '/') c++;
    if (!*c && c[-1] == '/') return false; /* a trailing slash names a directory */
  }
  return true;
}

/* A shard in a subdirectory: the subdirectory, symlinks resolved, is still inside `dir`. */
static bool shard_dir_inside(const char *dir, const char *shard) {
  const char *slash = strrchr(shard, '/');
  if (!slash) return true;
  char sub[PATH_MAX], real_dir[PATH_MAX], real_sub[PATH_MAX];
  snprintf(sub, sizeof(sub), "%s/%.*s", dir, (int)(slash - shard), shard);
  if (!realpath(dir, real_dir) || !realpath(sub, real_sub)) return true; /* missing: not read */
  size_t n = strlen(real_dir);
  return strncmp(real_sub, real_dir, n) == 0 && (real_sub[n] == '/' || real_sub[n] == '\0');
}

/* The shard names the index's weight_map lists, each once, in the order first listed. */
static ps_status index_files(ps_ctx *ctx, const char *dir, const char *name, const json_t *map,
                             char ***files, size_t *count) {
  const char *key;
  const json_t *v;
  ps__strset seen = {0};
  size_t cap = 0;
  ps_status st = PS_OK;
  char shown[80];
  *files = NULL;
  *count = 0;
  if (!map || json_is_null(map)) return PS_OK;
  if (!json_is_object(map))
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: weight_map: expected an object", name);
  json_object_foreach((json_t *)map, key, v) {
    const char *file = json_string_value(v);
    bool added;
    if (!file) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: weight_map: expected file names as values", name);
      break;
    }
    if (!shard_name_ok(file) || !shard_dir_inside(dir, file)) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: weight_map: '%s' is not a file inside the model directory", name,
                    ps__printable(file, shown, sizeof(shown)));
      break;
    }
    if (!ps__strset_add(&seen, file, &added)) goto oom;
    if (!added) continue;
    if (*count == PS_MODEL_MAX_SHARDS) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: weight_map: more than %d shard files", name,
                    PS_MODEL_MAX_SHARDS);
      break;
    }
    if (*count == cap) {
      cap = cap ? cap * 2 : 16;
      char **bigger = ps__realloc(*files, cap * sizeof(char *));
      if (!bigger) goto oom;
      *files = bigger;
    }
    (*files)[(*count)++] = (char *)file; /* borrowed from the document */
  }
  ps__strset_free(&seen);
  return st;
oom:
  ps__strset_free(&seen);
  return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", name);
}

static void note_estimate(ps_model *m, const char *why) {
  size_t n = strlen(m->estimate_note);
  snprintf(m->estimate_note + n, sizeof(m->estimate_note) - n, "; weights estimated from %s", why);
}

static ps_status from_index(ps_ctx *ctx, const char *dir, ps_model *m) {
  ps_status st;
  char path[PATH_MAX];
  char *text = NULL, **files = NULL;
  size_t len = 0, count = 0;
  json_t *doc = NULL;
  uint64_t total = 0, params = 0;
  join(path, sizeof(path), dir, INDEX_NAME);
  if ((st = ps__model_read_text(ctx, path, &text, &len)) != PS_OK) goto cleanup;
  if ((st = ps__model_json_load(ctx, text, len, path, &doc)) != PS_OK) goto cleanup;
  const json_t *meta = json_object_get(doc, "metadata");
  if (!json_is_object(doc) || (meta && !json_is_null(meta) && !json_is_object(meta))) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: expected an object with metadata and weight_map",
                  path);
    goto cleanup;
  }
  if ((st = index_size(ctx, path, meta, "total_size", PS_MAX_WEIGHT_BYTES, &total)) != PS_OK)
    goto cleanup;
  if ((st = index_size(ctx, path, meta, "total_parameters", PS_MAX_PARAMS, &params)) != PS_OK)
    goto cleanup;
  if ((st = index_files(ctx, dir, path, json_object_get(doc, "weight_map"), &files, &count)) !=
      PS_OK)
    goto cleanup;
  bool all_here = count > 0;
  for (size_t i = 0; i < count && all_here; i++) {
    char shard[PATH_MAX];
    struct stat sb;
    join(shard, sizeof(shard), dir, files[i]);
    all_here = stat(shard, &sb) == 0 && S_ISREG(sb.st_mode);
  }
  if (total > 0) {
    m->weight_bytes = total;
    m->valid |= PS_MODEL_WEIGHTS_EXACT;
    if (params > 0 && !m->quantization[0]) {
      m->param_count = params;
      m->valid |= PS_MODEL_PARAMS;
    } else if (all_here) {
      st = sum_headers(ctx, dir, files, count, m, false);
    }
  } else if (all_here) {
    st = sum_headers(ctx, dir, files, count, m, true);
  } else {
    note_estimate(m, "config.json (the index has no total_size and shards are missing)");
  }
cleanup:
  ps__free(files);
  json_decref(doc);
  ps__free(text);
  return st;
}

ps_status ps__model_weights(ps_ctx *ctx, const char *dir, const ps__model_dir *d, ps_model *m) {
  if (d->has_index) return from_index(ctx, dir, m);
  if (d->safetensors_count == 0) {
    if (d->has_gguf || d->has_bin) return ps__model_gguf_error(ctx, dir);
    note_estimate(m, "config.json (no safetensors or index)");
    return PS_OK;
  }
  /* Mistral repositories ship consolidated.safetensors (mistral format) beside the HF
   * shards: the same weights twice. */
  char **files = ps__calloc(d->safetensors_count, sizeof(char *));
  size_t count = 0;
  if (!files) return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", dir);
  for (size_t i = 0; i < d->safetensors_count; i++)
    if (strncmp(d->safetensors[i], "consolidated", 12) != 0) files[count++] = d->safetensors[i];
  if (count == 0)
    for (size_t i = 0; i < d->safetensors_count; i++)
      files[count++] = d->safetensors[i];
  ps_status st = sum_headers(ctx, dir, files, count, m, true);
  ps__free(files);
  return st;
}
