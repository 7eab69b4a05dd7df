/* ps_model_resolve: a model given as a directory or a Hugging Face id, looked for in this
 * order: the directory; the Hugging Face cache; the catalog; the Hub. Each answer records
 * where it came from, for the plan to say. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/internal.h"
#include "hub/hub_internal.h"
#include "model/model.h"

const char *ps_model_origin_name(ps_model_origin origin) {
  switch (origin) {
  case PS_MODEL_FROM_DIRECTORY: return "local directory";
  case PS_MODEL_FROM_HF_CACHE: return "Hugging Face cache";
  case PS_MODEL_FROM_CATALOG: return "peerscope catalog";
  case PS_MODEL_FROM_HUB: return "Hugging Face Hub";
  }
  return "unknown";
}

void ps_model_source_free(ps_model_source *source) { ps__free(source); }

static bool is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static ps_status from_directory(ps_ctx *ctx, const char *dir, ps_model *out, ps_model_source *src) {
  ps_status st = ps__model_load(ctx, dir, out);
  src->origin = PS_MODEL_FROM_DIRECTORY;
  ps__strlcpy(src->path, dir, sizeof(src->path));
  ps__hub_fmt(src->where, sizeof(src->where), "local directory");
  return st;
}

/* A snapshot answers when it holds config.json and the weights' size: the index, the
 * safetensors files, or (a single-file model fetched by peerscope) the header total. */
static ps_status from_cache(ps_ctx *ctx, const ps__hub_env *env, const ps_model_id *id,
                            ps_model *out, ps_model_source *src) {
  ps__model_dir listing;
  ps__hub_total total = {0, 0};
  char config[sizeof(src->path) + 16];
  if (ps__hub_cache_snapshot(env, id->repo, id->revision, src->commit, sizeof(src->commit),
                             src->path, sizeof(src->path)) != PS_OK)
    return PS_ERR_NOT_FOUND;
  if (ps__model_dir_scan(NULL, src->path, &listing) != PS_OK) return PS_ERR_NOT_FOUND;
  bool config_here = listing.has_config;
  bool sized = listing.has_index || listing.safetensors_count > 0;
  ps__model_dir_free(&listing);
  if (config_here && !sized && ps__hub_sidecar_read(env, id->repo, src->commit, &total) == PS_OK)
    sized = true;
  if (!config_here || !sized) return PS_ERR_NOT_FOUND;
  src->origin = PS_MODEL_FROM_HF_CACHE;
  ps__hub_fmt(src->where, sizeof(src->where), "Hugging Face cache %s (revision %s)", env->cache,
              src->commit);
  if (!total.bytes) return ps__model_load(ctx, src->path, out);
  ps__hub_fmt(config, sizeof(config), "%s/config.json", src->path);
  return ps__hub_model_from_config(ctx, config, id->repo, &total, out);
}

static ps_status from_catalog(ps_ctx *ctx, const ps__hub_env *env, const ps_model_id *id,
                              ps_model *out, ps_model_source *src) {
  ps__hub_total total;
  char rev[64], config[sizeof(src->path) + 16];
  ps_status st = ps__hub_catalog_find(ctx, env, id->repo, id->revision, src->path,
                                      sizeof(src->path), rev, sizeof(rev), &total);
  if (st != PS_OK) return st;
  src->origin = PS_MODEL_FROM_CATALOG;
  ps__strlcpy(src->commit, ps__hub_is_commit(rev) ? rev : "", sizeof(src->commit));
  ps__hub_fmt(src->where, sizeof(src->where), "peerscope catalog (source revision %s)",
              rev[0] ? rev : "not recorded");
  ps__hub_fmt(config, sizeof(config), "%s/config.json", src->path);
  return ps__hub_model_from_config(ctx, config, id->repo, &total, out);
}

static ps_status from_hub(ps_ctx *ctx, const ps__hub_env *env, const ps_model_id *id, ps_model *out,
                          ps_model_source *src) {
  ps__hub_total total;
  ps__http_stats stats = {0, 0};
  char config[sizeof(src->path) + 16];
  if (env->offline)
    return ps__fail(ctx, PS_ERR_NETWORK,
                    "%s: not in the Hugging Face cache %s nor in the peerscope catalog, and "
                    "HF_HUB_OFFLINE is set: unset it, or fetch the model's config with "
                    "`huggingface-cli download %s%s%s config.json model.safetensors.index.json`",
                    src->given, env->cache, id->repo, id->revision[0] ? " --revision " : "",
                    id->revision);
  ps_status st = ps__hub_fetch(ctx, env, id->repo, id->revision, &stats, src->commit,
                               sizeof(src->commit), src->path, sizeof(src->path), &total);
  src->requests = stats.requests;
  src->bytes = stats.bytes;
  if (st != PS_OK) return st;
  src->origin = PS_MODEL_FROM_HUB;
  ps__hub_fmt(src->where, sizeof(src->where), "Hugging Face Hub %s (revision %s)", env->endpoint,
              src->commit);
  if (!total.bytes) return ps__model_load(ctx, src->path, out);
  ps__hub_fmt(config, sizeof(config), "%s/config.json", src->path);
  return ps__hub_model_from_config(ctx, config, id->repo, &total, out);
}

static ps_status resolve_id(ps_ctx *ctx, const char *text, const ps_model_resolve_opts *opts,
                            ps_model *out, ps_model_source *src) {
  ps_model_id *id = NULL;
  ps__hub_env env;
  ps_status st = ps_model_id_parse(ctx, text, &id);
  if (st != PS_OK) return st;
  ps__hub_env_read(ctx, opts, &env);
  ps__strlcpy(src->repo, id->repo, sizeof(src->repo));
  ps__strlcpy(src->revision, id->revision, sizeof(src->revision));
  st = from_cache(ctx, &env, id, out, src);
  if (st == PS_ERR_NOT_FOUND) st = from_catalog(ctx, &env, id, out, src);
  if (st == PS_ERR_NOT_FOUND) st = from_hub(ctx, &env, id, out, src);
  ps_model_id_free(id);
  return st;
}

static ps_status resolve_into(ps_ctx *ctx, const char *dir_or_id, const ps_model_resolve_opts *opts,
                              ps_model *out, ps_model_source **source) {
  ps_model_resolve_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_model_resolve_opts");
  if (ost != PS_OK) return ost;
  memset(out, 0, sizeof(*out));
  ps_model_source *src = ps__calloc(1, sizeof(*src));
  if (!src) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  double t0 = ps__now_ms();
  src->size = sizeof(*src);
  ps__strlcpy(src->given, dir_or_id, sizeof(src->given));
  ps_status st;
  if (is_dir(dir_or_id) || !ps__hub_id_shaped(dir_or_id))
    st = from_directory(ctx, dir_or_id, out, src);
  else
    st = resolve_id(ctx, dir_or_id, &o, out, src);
  src->ms = ps__now_ms() - t0;
  if (st != PS_OK) memset(out, 0, sizeof(*out));
  if (st == PS_OK && source)
    *source = src;
  else
    ps__free(src);
  return st;
}

ps_status ps_model_resolve(ps_ctx *ctx, const char *dir_or_id, const ps_model_resolve_opts *opts,
                           ps_model **out, ps_model_source **source) {
  if (source) *source = NULL;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_resolve: out is NULL");
  *out = NULL;
  if (!dir_or_id || !*dir_or_id)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_model_resolve: no model");
  ps_model *m = ps__calloc(1, sizeof(*m));
  if (!m) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = resolve_into(ctx, dir_or_id, opts, m, source);
  if (st == PS_OK)
    *out = m;
  else
    ps__free(m);
  return st;
}
