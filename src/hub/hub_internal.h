/* Internals of src/hub: a model given by its Hugging Face id, resolved from the HF cache, the
 * bundled catalog or the Hub (docs/models.md). Sits beside src/model and uses its parsers. */
#ifndef PS_HUB_INTERNAL_H
#define PS_HUB_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

/* Caps on what one answer may hold: a config is a few KiB, DeepSeek-V3's index about 9 MB,
 * and the safetensors library refuses headers over 100 MB. */
#define PS_HUB_CONFIG_MAX (8u << 20)
#define PS_HUB_INDEX_MAX (64u << 20)
#define PS_HUB_HEADER_MAX (100u << 20)
#define PS_HUB_MAX_REQUESTS 3

/* snprintf that says whether everything fitted (paths and messages built here may be long;
 * a vsnprintf underneath keeps GCC's truncation warnings for real fixed-size formats). */
bool ps__hub_fmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- ids (id.c) ------------------------------------------------------------------------ */

/* Whether `text` is shaped like an id rather than a path: one '/', not at either end, no
 * leading '.', '~' or '/'. Shaped ids that break a rule are malformed ids, not directories. */
bool ps__hub_id_shaped(const char *text);
/* Checks a revision (a git ref name or a commit); NULL when fine, else why not. */
const char *ps__hub_revision_error(const char *rev);
/* 40 lowercase hex digits, as huggingface_hub's REGEX_COMMIT_HASH. */
bool ps__hub_is_commit(const char *text);

/* ---- settings from the environment (env.c) -------------------------------------------- */

typedef struct ps__hub_env {
  char cache[PATH_MAX];           /* the HF hub cache */
  char endpoint[512];             /* no trailing '/' */
  char token[512];                /* "" when none */
  char token_from[PATH_MAX + 16]; /* "HF_TOKEN" or the token file, for messages */
  char catalog[PATH_MAX];         /* "" when the catalog is missing or skipped */
  char sidecars[PATH_MAX];        /* peerscope's cache of header totals, "" when none */
  bool offline;
  int timeout_ms;
  int retries;
} ps__hub_env;

/* Fills env from opts (may be NULL) and the process environment, as huggingface_hub reads
 * HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HF_ENDPOINT, HF_TOKEN, HF_TOKEN_PATH, HF_HUB_OFFLINE
 * and HF_HUB_DOWNLOAD_TIMEOUT. */
void ps__hub_env_read(ps_ctx *ctx, const ps_model_resolve_opts *opts, ps__hub_env *env);

/* ---- the HF cache (cache.c) ------------------------------------------------------------- */

/* <cache>/models--org--name */
void ps__hub_repo_dir(const ps__hub_env *env, const char *repo, char *out, size_t len);

/* The snapshot of `revision` ("" = main): refs/<revision> names the commit, a commit is used
 * as is. PS_ERR_NOT_FOUND when the cache does not hold it (no message set). */
ps_status ps__hub_cache_snapshot(const ps__hub_env *env, const char *repo, const char *revision,
                                 char *commit, size_t commit_len, char *dir, size_t dir_len);

/* Writes `data` as snapshots/<commit>/<file> the way huggingface_hub does: the bytes in
 * blobs/<etag> (a temporary file renamed into place) and a relative symlink to it; without a
 * usable etag, a plain file (renamed into place). Nothing partial is ever visible. */
ps_status ps__hub_cache_put(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                            const char *commit, const char *file, const char *etag,
                            const void *data, size_t len);
/* refs/<revision> = commit (skipped when the revision is the commit itself). */
ps_status ps__hub_cache_ref(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                            const char *revision, const char *commit);

/* Writes `len` bytes to `path` through a temporary file in the same directory, renamed. */
ps_status ps__hub_write_atomic(ps_ctx *ctx, const char *path, const void *data, size_t len);
/* mkdir -p; false with errno set on failure. */
bool ps__hub_mkdirs(const char *path);

/* ---- weight totals known without the weights ------------------------------------------ */

typedef struct ps__hub_total {
  uint64_t bytes;  /* tensor data bytes (index metadata.total_size or the header's sum) */
  uint64_t params; /* 0 when unknown */
} ps__hub_total;

/* Loads config.json at `config` and sets the exact weight total; name = the model's name. */
ps_status ps__hub_model_from_config(ps_ctx *ctx, const char *config, const char *name,
                                    const ps__hub_total *total, ps_model *out);

/* peerscope's record of a single-file model's header total, by repo and commit
 * (<sidecars>/models--org--name/<commit>.json). Reading: PS_ERR_NOT_FOUND when absent. */
ps_status ps__hub_sidecar_read(const ps__hub_env *env, const char *repo, const char *commit,
                               ps__hub_total *total);
ps_status ps__hub_sidecar_write(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                                const char *commit, const ps__hub_total *total);

/* ---- the catalog (catalog.c) ------------------------------------------------------------ */

/* The entry of `repo` when the catalog has it for `revision` ("" or its source revision):
 * its directory, source revision ("" when not recorded) and total. PS_ERR_NOT_FOUND (no
 * message) when it does not; PS_ERR_BAD_INPUT for a broken entry. */
ps_status ps__hub_catalog_find(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                               const char *revision, char *dir, size_t dir_len, char *rev,
                               size_t rev_len, ps__hub_total *total);

/* ---- HTTP (http.c) ------------------------------------------------------------------------ */

typedef struct ps__http_reply {
  long status; /* final HTTP status, 0 when no answer */
  char *body;  /* NUL-terminated, library memory */
  size_t len;
  char commit[48];     /* X-Repo-Commit of any answer in the redirect chain */
  char etag[80];       /* X-Linked-Etag, else the final ETag, quotes and W/ removed */
  char error_code[48]; /* X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo */
  char error_message[256]; /* X-Error-Message */
  uint64_t range_total;    /* Content-Range's total, 0 when absent */
  bool over_cap;           /* the answer was larger than the cap and was cut off */
  uint64_t received;       /* body bytes that arrived, kept or not */
  char curl_error[256];    /* transport failure, "" when an answer came */
  bool timed_out;
} ps__http_reply;

typedef struct ps__http_stats {
  int requests;
  uint64_t bytes;
} ps__http_stats;

/* GET url (with Range bytes=first-last when last >= first), following redirects, the token
 * as a Bearer header, retrying 429/5xx/timeouts with backoff; at most `cap` bytes kept.
 * PS_OK whenever an answer or a transport failure is recorded in *reply; errors only for
 * builds without libcurl and out-of-memory. */
ps_status ps__http_get(ps_ctx *ctx, const ps__hub_env *env, const char *url, uint64_t first,
                       uint64_t last, size_t cap, ps__http_stats *stats, ps__http_reply *reply);
void ps__http_reply_free(ps__http_reply *reply);

/* ---- the Hub (fetch.c, fetch_errors.c) --------------------------------------------------- */

/* Fetches `repo` at `revision` from the Hub into the HF cache; `commit` gets its commit and
 * `dir` the snapshot; `total` the header total for a single-file model (bytes 0 otherwise). */
ps_status ps__hub_fetch(ps_ctx *ctx, const ps__hub_env *env, const char *repo, const char *revision,
                        ps__http_stats *stats, char *commit, size_t commit_len, char *dir,
                        size_t dir_len, ps__hub_total *total);

/* One line for a failed answer: what happened to which file of which id, and what to do.
 * Returns the status (PS_ERR_BAD_INPUT for not found, PS_ERR_NETWORK otherwise). */
ps_status ps__hub_reply_error(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                              const char *revision, const char *file, const ps__http_reply *reply);

#endif
