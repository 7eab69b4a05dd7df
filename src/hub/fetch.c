/* A model from the Hub without its weights, in at most three requests:
 *   1. config.json (its X-Repo-Commit names the commit every later request asks for);
 *   2. the first 8 bytes of model.safetensors (Range): a single-file model's header length,
 *      or 404 for a sharded one;
 *   3. the header itself (Range), or model.safetensors.index.json.
 * What came is checked, then written into the Hugging Face cache (config and index as
 * huggingface_hub would, the header's total in peerscope's cache), the ref last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "hub/fetch_internal.h"
#include "hub/hub_internal.h"
#include "model/model.h"

#define CONFIG "config.json"
#define SINGLE "model.safetensors"
#define INDEX "model.safetensors.index.json"

typedef struct job {
  ps_ctx *ctx;
  const ps__hub_env *env;
  const char *repo, *revision; /* revision as given, "" = main */
  ps__http_stats *stats;
  char commit[48];
  uint64_t estimate; /* the config's weight estimate */
} job;

/* huggingface_hub quotes the revision with quote(revision, safe=""). */
static void quote(const char *s, char *out, size_t len) {
  size_t o = 0;
  for (; *s && o + 4 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~", c))
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
  }
  out[o] = '\0';
}

static void url_of(const job *j, const char *rev, const char *file, char *out, size_t len) {
  char q[800];
  quote(rev && *rev ? rev : "main", q, sizeof(q));
  ps__hub_fmt(out, len, "%s/%s/resolve/%s/%s", j->env->endpoint, j->repo, q, file);
}

static ps_status get(job *j, const char *file, uint64_t first, uint64_t last, size_t cap,
                     ps__http_reply *r, char *url, size_t url_len) {
  url_of(j, j->commit[0] ? j->commit : j->revision, file, url, url_len);
  return ps__http_get(j->ctx, j->env, url, first, last, cap, j->stats, r);
}

static ps_status fail_reply(job *j, const char *file, const ps__http_reply *r) {
  return ps__hub_reply_error(j->ctx, j->env, j->repo, j->revision, file, r);
}

/* Request 1: the config, checked, and the commit it belongs to. */
static ps_status get_config(job *j, ps__http_reply *r) {
  char url[1400];
  ps_model m;
  ps_status st = get(j, CONFIG, 1, 0, PS_HUB_CONFIG_MAX, r, url, sizeof(url));
  if (st != PS_OK) return st;
  if (r->status != 200 || r->curl_error[0] || r->over_cap) return fail_reply(j, CONFIG, r);
  if (!ps__hub_is_commit(r->commit))
    return ps__fail(j->ctx, PS_ERR_NETWORK,
                    "%s: %s sent no commit (X-Repo-Commit header): is HF_ENDPOINT a Hugging Face "
                    "Hub or a mirror of one?",
                    url, j->env->endpoint);
  ps__strlcpy(j->commit, r->commit, sizeof(j->commit));
  st = ps__model_parse_config(j->ctx, r->body ? r->body : "", r->len, url, &m);
  j->estimate = m.weight_bytes;
  return st;
}

static uint64_t le64(const char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | (uint8_t)p[i];
  return v;
}

/* A Range answer must be 206 with exactly the bytes asked for. */
static ps_status range_ok(job *j, const char *file, const char *url, const ps__http_reply *r,
                          uint64_t want) {
  if (r->curl_error[0] || (r->status != 200 && r->status != 206)) return fail_reply(j, file, r);
  if (r->status == 200 && (r->over_cap || r->len != want || r->range_total == 0))
    return ps__fail(j->ctx, PS_ERR_BAD_INPUT,
                    "%s: the server ignored the Range request (HTTP 200, the whole file); "
                    "refused: peerscope never downloads weights",
                    url);
  if (r->over_cap || r->len != want)
    return ps__fail(j->ctx, PS_ERR_BAD_INPUT,
                    "%s: the Range answer has the wrong length (%s%llu bytes for %llu asked)", url,
                    r->over_cap ? "at least " : "", (unsigned long long)r->received,
                    (unsigned long long)want);
  return PS_OK;
}

/* Request 3 for a single-file model: the header, whose length the first 8 bytes gave. */
static ps_status get_header(job *j, const char *first8, uint64_t file_size, ps__hub_total *t) {
  char url[1400];
  uint64_t n = le64(first8);
  ps__http_reply r;
  url_of(j, j->commit, SINGLE, url, sizeof(url));
  if (n < 2 || n > PS_HUB_HEADER_MAX || (file_size && n + 8 > file_size))
    return ps__fail(j->ctx, PS_ERR_BAD_INPUT,
                    "%s: offset 0: a header length of %llu bytes is not a safetensors file's", url,
                    (unsigned long long)n);
  ps_status st = get(j, SINGLE, 8, 8 + n - 1, (size_t)n, &r, url, sizeof(url));
  if (st == PS_OK) st = range_ok(j, SINGLE, url, &r, n);
  uint8_t *buf = st == PS_OK ? ps__calloc(1, 8 + (size_t)n) : NULL;
  if (st == PS_OK && !buf) st = ps__fail(j->ctx, PS_ERR_NO_MEMORY, "%s: out of memory", url);
  if (st == PS_OK) {
    memcpy(buf, first8, 8);
    memcpy(buf + 8, r.body, (size_t)n);
    st = ps__hub_check_header(j->ctx, url, buf, 8 + (size_t)n, file_size, t);
  }
  ps__free(buf);
  ps__http_reply_free(&r);
  return st;
}

/* Requests 2 and 3: the header of model.safetensors, or else the index. `index` gets the
 * index's text when there is one (the caller frees it). */
static ps_status get_weights(job *j, ps__hub_total *t, ps__http_reply *index) {
  char url[1400];
  ps__http_reply r;
  ps_status st = get(j, SINGLE, 0, 7, 8, &r, url, sizeof(url));
  if (st == PS_OK && r.status != 404) {
    st = range_ok(j, SINGLE, url, &r, 8);
    if (st == PS_OK) st = get_header(j, r.body, r.range_total, t);
    ps__http_reply_free(&r);
    return st;
  }
  ps__http_reply_free(&r);
  if (st != PS_OK) return st;
  st = get(j, INDEX, 1, 0, PS_HUB_INDEX_MAX, index, url, sizeof(url));
  if (st != PS_OK || index->status == 404) return st; /* neither: the config's estimate */
  if (index->status != 200 || index->curl_error[0] || index->over_cap)
    return fail_reply(j, INDEX, index);
  return ps__hub_check_index(j->ctx, url, index->body ? index->body : "", index->len, j->estimate,
                             t);
}

ps_status ps__hub_fetch(ps_ctx *ctx, const ps__hub_env *env, const char *repo, const char *revision,
                        ps__http_stats *stats, char *commit, size_t commit_len, char *dir,
                        size_t dir_len, ps__hub_total *total) {
  job j = {ctx, env, repo, revision ? revision : "", stats, "", 0};
  ps__http_reply config, index;
  memset(&index, 0, sizeof(index));
  memset(total, 0, sizeof(*total));
  ps_status st = get_config(&j, &config);
  if (st == PS_OK) st = get_weights(&j, total, &index);
  /* Everything checked: into the cache, the ref last so it never names a partial snapshot. */
  if (st == PS_OK)
    st = ps__hub_cache_put(ctx, env, repo, j.commit, CONFIG, config.etag, config.body, config.len);
  if (st == PS_OK && index.status == 200)
    st = ps__hub_cache_put(ctx, env, repo, j.commit, INDEX, index.etag, index.body, index.len);
  if (st == PS_OK && index.status != 200 && total->bytes)
    st = ps__hub_sidecar_write(ctx, env, repo, j.commit, total);
  if (st == PS_OK) st = ps__hub_cache_ref(ctx, env, repo, j.revision, j.commit);
  if (st == PS_OK) {
    char base[PATH_MAX];
    ps__hub_repo_dir(env, repo, base, sizeof(base));
    ps__hub_fmt(dir, dir_len, "%s/snapshots/%s", base, j.commit);
    ps__strlcpy(commit, j.commit, commit_len);
  }
  ps__http_reply_free(&config);
  ps__http_reply_free(&index);
  return st;
}
