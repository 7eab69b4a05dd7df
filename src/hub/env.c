/* Where things are and how to reach the Hub, read the way huggingface_hub reads them
 * (huggingface_hub/constants.py), so peerscope and vLLM share one cache and one token. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "hub/hub_internal.h"

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_RETRIES 2

static const char *env_str(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* huggingface_hub's _is_true: 1, ON, YES, TRUE in any case. */
static bool env_true(const char *name) {
  const char *v = env_str(name);
  if (!v) return false;
  return strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
         strcasecmp(v, "true") == 0;
}

/* HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
static void hf_home(char *out, size_t len) {
  const char *v;
  if ((v = env_str("HF_HOME")) != NULL)
    ps__hub_fmt(out, len, "%s", v);
  else if ((v = env_str("XDG_CACHE_HOME")) != NULL)
    ps__hub_fmt(out, len, "%s/huggingface", v);
  else
    ps__hub_fmt(out, len, "%s/.cache/huggingface", env_str("HOME") ? env_str("HOME") : "");
}

/* The token as huggingface_hub's get_token: HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN),
 * else the file at HF_TOKEN_PATH or HF_HOME/token, whitespace stripped. */
static void read_token(ps__hub_env *env, const char *home) {
  const char *v = env_str("HF_TOKEN");
  const char *from = "HF_TOKEN";
  if (!v) v = env_str("HUGGING_FACE_HUB_TOKEN"), from = "HUGGING_FACE_HUB_TOKEN";
  char path[PATH_MAX], buf[sizeof(env->token)] = "";
  if (!v) {
    if (env_str("HF_TOKEN_PATH"))
      ps__hub_fmt(path, sizeof(path), "%s", env_str("HF_TOKEN_PATH"));
    else
      ps__hub_fmt(path, sizeof(path), "%s/token", home);
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    v = buf;
    from = path;
  }
  while (isspace((unsigned char)*v))
    v++;
  ps__strlcpy(env->token, v, sizeof(env->token));
  for (size_t n = strlen(env->token); n && isspace((unsigned char)env->token[n - 1]); n--)
    env->token[n - 1] = '\0';
  /* A token goes into an HTTP header: refuse anything that could break out of it. */
  for (const char *p = env->token; *p; p++)
    if (!isgraph((unsigned char)*p)) env->token[0] = '\0';
  if (env->token[0]) ps__hub_fmt(env->token_from, sizeof(env->token_from), "%s", from);
}

static void peerscope_cache(const ps_model_resolve_opts *o, char *out, size_t len) {
  const char *v;
  out[0] = '\0';
  if (o && o->cache_dir && *o->cache_dir)
    ps__hub_fmt(out, len, "%s/hub", o->cache_dir);
  else if ((v = env_str("PEERSCOPE_CACHE_DIR")) != NULL)
    ps__hub_fmt(out, len, "%s/hub", v);
  else if ((v = env_str("XDG_CACHE_HOME")) != NULL)
    ps__hub_fmt(out, len, "%s/peerscope/hub", v);
  else if ((v = env_str("HOME")) != NULL)
    ps__hub_fmt(out, len, "%s/.cache/peerscope/hub", v);
}

static int timeout_ms(const ps_model_resolve_opts *o) {
  if (o && o->timeout_ms > 0) return o->timeout_ms;
  const char *v = env_str("HF_HUB_DOWNLOAD_TIMEOUT");
  if (v) {
    char *end = NULL;
    double s = strtod(v, &end);
    if (end && !*end && s > 0 && s < 3600) return (int)(s * 1000);
  }
  return DEFAULT_TIMEOUT_MS;
}

void ps__hub_env_read(ps_ctx *ctx, const ps_model_resolve_opts *o, ps__hub_env *env) {
  char home[PATH_MAX];
  const char *v;
  memset(env, 0, sizeof(*env));
  hf_home(home, sizeof(home));
  if (o && o->hub_cache && *o->hub_cache)
    ps__hub_fmt(env->cache, sizeof(env->cache), "%s", o->hub_cache);
  else if ((v = env_str("HF_HUB_CACHE")) || (v = env_str("HUGGINGFACE_HUB_CACHE")))
    ps__hub_fmt(env->cache, sizeof(env->cache), "%s", v);
  else
    ps__hub_fmt(env->cache, sizeof(env->cache), "%s/hub", home);
  v = o && o->endpoint && *o->endpoint ? o->endpoint : env_str("HF_ENDPOINT");
  ps__hub_fmt(env->endpoint, sizeof(env->endpoint), "%s", v ? v : DEFAULT_ENDPOINT);
  for (size_t n = strlen(env->endpoint); n && env->endpoint[n - 1] == '/'; n--)
    env->endpoint[n - 1] = '\0';
  if (o && o->token && *o->token) {
    ps__strlcpy(env->token, o->token, sizeof(env->token));
    ps__strlcpy(env->token_from, "the token given", sizeof(env->token_from));
  } else {
    read_token(env, home);
  }
  env->offline =
      (o && o->offline) || env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  env->timeout_ms = timeout_ms(o);
  env->retries = !o || o->retries == 0 ? DEFAULT_RETRIES : o->retries < 0 ? 0 : o->retries;
  peerscope_cache(o, env->sidecars, sizeof(env->sidecars));
  if (o && o->catalog && *o->catalog)
    ps__hub_fmt(env->catalog, sizeof(env->catalog), "%s", o->catalog);
  else if (!(o && o->no_catalog) &&
           ps_bundled_path(NULL, PS_BUNDLED_MODELS, env->catalog, sizeof(env->catalog)) != PS_OK)
    env->catalog[0] = '\0';
  if (o && o->no_catalog) env->catalog[0] = '\0';
  (void)ctx;
}
