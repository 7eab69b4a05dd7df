/* One line for each way the Hub can fail to answer, naming the id and the file, with what to
 * do about it. Not found is bad input (exit 3); everything that keeps a good id from being
 * answered (offline, network, rate limit, a gated model without a token) is PS_ERR_NETWORK. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "hub/hub_internal.h"

static void what(const char *repo, const char *revision, const char *file, char *out, size_t len) {
  ps__hub_fmt(out, len, "%s%s%s %s", repo, revision && *revision ? "@" : "",
              revision ? revision : "", file);
}

static ps_status denied(ps_ctx *ctx, const ps__hub_env *env, const char *w, const char *repo,
                        long status) {
  if (!env->token[0])
    return ps__fail(ctx, PS_ERR_NETWORK,
                    "%s: gated or private (HTTP %ld from %s): accept the model's license at "
                    "%s/%s and set HF_TOKEN (or run `huggingface-cli login`)",
                    w, status, env->endpoint, env->endpoint, repo);
  return ps__fail(ctx, PS_ERR_NETWORK,
                  "%s: the token from %s has no access (HTTP %ld from %s): accept the model's "
                  "license at %s/%s with that account, or use a token that can read it",
                  w, env->token_from, status, env->endpoint, env->endpoint, repo);
}

static ps_status not_found(ps_ctx *ctx, const ps__hub_env *env, const char *w, const char *repo,
                           const char *revision, const ps__http_reply *r) {
  if (strcmp(r->error_code, "RevisionNotFound") == 0)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: %s has no revision '%s' on %s (give a branch, tag or commit that exists)",
                    w, repo, revision && *revision ? revision : "main", env->endpoint);
  if (strcmp(r->error_code, "EntryNotFound") == 0)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: the repository has no such file on %s", w,
                    env->endpoint);
  if (strcmp(r->error_code, "RepoNotFound") == 0 || !r->error_code[0])
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: no repository %s%s on %s (HTTP %ld; check the id and revision%s)", w, repo,
                    r->error_code[0] ? "" : " or revision", env->endpoint, r->status,
                    env->token[0] ? "" : "; a private one needs HF_TOKEN");
  return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: not found on %s (HTTP %ld, %s)", w, env->endpoint,
                  r->status, r->error_code);
}

ps_status ps__hub_reply_error(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                              const char *revision, const char *file, const ps__http_reply *r) {
  char w[1024];
  int tries = env->retries + 1;
  what(repo, revision, file, w, sizeof(w));
  if (r->over_cap)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s: the answer from %s is larger than a %s can be; refused (is HF_ENDPOINT a "
                    "Hugging Face Hub?)",
                    w, env->endpoint, file);
  if (r->curl_error[0] && r->timed_out)
    return ps__fail(ctx, PS_ERR_NETWORK,
                    "%s: %s did not answer within %d s (%d tries): check the network or proxy, "
                    "raise HF_HUB_DOWNLOAD_TIMEOUT, or set HF_HUB_OFFLINE=1 to plan from the "
                    "cache and the catalog only",
                    w, env->endpoint, env->timeout_ms / 1000 ? env->timeout_ms / 1000 : 1, tries);
  if (r->curl_error[0])
    return ps__fail(ctx, PS_ERR_NETWORK,
                    "%s: cannot reach %s: %s (check the network or proxy, or HF_ENDPOINT for a "
                    "mirror; HF_HUB_OFFLINE=1 plans from the cache and the catalog only)",
                    w, env->endpoint, r->curl_error);
  if (strcmp(r->error_code, "GatedRepo") == 0 || r->status == 403 ||
      (r->status == 401 && strcmp(r->error_code, "RepoNotFound") != 0))
    return denied(ctx, env, w, repo, r->status);
  if (r->status == 404 || r->status == 401) return not_found(ctx, env, w, repo, revision, r);
  if (r->status == 429)
    return ps__fail(ctx, PS_ERR_NETWORK,
                    "%s: rate limited by %s (HTTP 429, %d tries): wait a minute and retry%s", w,
                    env->endpoint, tries,
                    env->token[0] ? "" : ", or set HF_TOKEN (signed-in requests get more)");
  if (r->status >= 500)
    return ps__fail(ctx, PS_ERR_NETWORK, "%s: %s answered HTTP %ld (%d tries): try again later", w,
                    env->endpoint, r->status, tries);
  return ps__fail(ctx, PS_ERR_NETWORK, "%s: unexpected HTTP %ld from %s", w, r->status,
                  env->endpoint);
}
