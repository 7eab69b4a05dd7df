/* GET over HTTP(S) with libcurl for the Hub: a cap on every answer (a Range answer may not be
 * longer than asked, so a server that ignores Range never hands over weights), timeouts,
 * retries with backoff on 429, 5xx and timeouts (Retry-After honoured up to a bound), the
 * token as a Bearer header (curl drops it on a redirect to another host, such as the CDN),
 * and the headers huggingface_hub reads: X-Repo-Commit, X-Linked-Etag, ETag, X-Error-Code. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/internal.h"
#include "hub/hub_internal.h"

#define MAX_WAIT_MS 5000

void ps__http_reply_free(ps__http_reply *reply) {
  ps__free(reply->body);
  memset(reply, 0, sizeof(*reply));
}

#if !PS_HAVE_CURL
ps_status ps__http_get(ps_ctx *ctx, const ps__hub_env *env, const char *url, uint64_t first,
                       uint64_t last, size_t cap, ps__http_stats *stats, ps__http_reply *reply) {
  (void)env, (void)first, (void)last, (void)cap, (void)stats;
  memset(reply, 0, sizeof(*reply));
  return ps__fail(ctx, PS_ERR_NETWORK,
                  "%s: this peerscope was built without libcurl (PS_WITH_CURL=OFF); give a "
                  "model directory or an id in the Hugging Face cache",
                  url);
}
#else
#include <curl/curl.h>

typedef struct transfer {
  ps__http_reply *reply;
  size_t cap, alloc;
  uint64_t received;
  int retry_after_ms; /* -1 when not sent */
} transfer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_body(char *data, size_t size, size_t n, void *user) {
  transfer *t = user;
  ps__http_reply *r = t->reply;
  size_t len = size * n;
  t->received += len;
  r->received += len;
  if (r->len + len > t->cap) {
    r->over_cap = true;
    return 0; /* curl stops the transfer */
  }
  if (r->len + len + 1 > t->alloc) {
    size_t grown = t->alloc ? t->alloc : 16 * 1024;
    while (grown < r->len + len + 1)
      grown *= 2;
    char *bigger = ps__realloc(r->body, grown);
    if (!bigger) return 0;
    r->body = bigger;
    t->alloc = grown;
  }
  memcpy(r->body + r->len, data, len);
  r->len += len;
  r->body[r->len] = '\0';
  return len;
}

/* Copies a header's value (trimmed, quotes and a weak W/ prefix removed for etags). */
static void header_value(const char *v, size_t n, char *out, size_t len, bool etag) {
  while (n && isspace((unsigned char)*v))
    v++, n--;
  while (n && isspace((unsigned char)v[n - 1]))
    n--;
  if (etag && n >= 2 && v[0] == 'W' && v[1] == '/') v += 2, n -= 2;
  if (etag && n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
  snprintf(out, len, "%.*s", (int)n, v);
}

static size_t on_header(char *line, size_t size, size_t n, void *user) {
  transfer *t = user;
  ps__http_reply *r = t->reply;
  size_t len = size * n;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer in the redirect chain */
    r->error_code[0] = r->error_message[0] = '\0';
    r->range_total = 0;
    t->retry_after_ms = -1;
    return len;
  }
  const char *colon = memchr(line, ':', len);
  if (!colon) return len;
  size_t name_len = (size_t)(colon - line), vlen = len - name_len - 1;
  const char *v = colon + 1;
  char buf[128];
#define IS(name) (name_len == strlen(name) && strncasecmp(line, name, name_len) == 0)
  if (IS("X-Repo-Commit") && !r->commit[0]) header_value(v, vlen, r->commit, sizeof(r->commit), 0);
  if (IS("X-Linked-Etag")) header_value(v, vlen, r->etag, sizeof(r->etag), true);
  if (IS("ETag") && !r->etag[0]) header_value(v, vlen, r->etag, sizeof(r->etag), true);
  if (IS("X-Error-Code")) header_value(v, vlen, r->error_code, sizeof(r->error_code), false);
  if (IS("X-Error-Message"))
    header_value(v, vlen, r->error_message, sizeof(r->error_message), false);
  if (IS("Retry-After")) {
    header_value(v, vlen, buf, sizeof(buf), false);
    char *end = NULL;
    double s = strtod(buf, &end);
    if (end != buf && s >= 0)
      t->retry_after_ms = s * 1000 > MAX_WAIT_MS ? MAX_WAIT_MS : (int)(s * 1000);
  }
  if (IS("Content-Range")) {
    header_value(v, vlen, buf, sizeof(buf), false);
    const char *slash = strrchr(buf, '/');
    if (slash) r->range_total = strtoull(slash + 1, NULL, 10);
  }
#undef IS
  return len;
}

static void setup(CURL *c, const ps__hub_env *env, const char *url, const char *range,
                  struct curl_slist *headers, transfer *t) {
  long secs = env->timeout_ms / 1000 > 0 ? env->timeout_ms / 1000 : 1;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)env->timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled answer is a timeout */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, secs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)env->timeout_ms * 12);
  curl_easy_setopt(c, CURLOPT_USERAGENT,
                   "peerscope/"
                   "0.1.0");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->cap);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
  if (range) curl_easy_setopt(c, CURLOPT_RANGE, range);
}

static bool transient(CURLcode rc, long status) {
  if (rc == CURLE_OK)
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
  return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
         rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* One attempt; fills reply. */
static CURLcode attempt(CURL *c, transfer *t, ps__http_stats *stats) {
  char errbuf[CURL_ERROR_SIZE] = "";
  ps__http_reply *r = t->reply;
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  stats->requests++;
  stats->bytes += t->received;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  if (rc == CURLE_FILESIZE_EXCEEDED) r->over_cap = true;
  if (rc != CURLE_OK && !r->over_cap) {
    snprintf(r->curl_error, sizeof(r->curl_error), "%s",
             errbuf[0] ? errbuf : curl_easy_strerror(rc));
    r->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
  }
  return rc;
}

ps_status ps__http_get(ps_ctx *ctx, const ps__hub_env *env, const char *url, uint64_t first,
                       uint64_t last, size_t cap, ps__http_stats *stats, ps__http_reply *reply) {
  char range[64], auth[sizeof(env->token) + 32];
  bool ranged = last >= first && last != UINT64_MAX;
  memset(reply, 0, sizeof(*reply));
  if (ranged) {
    snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)first,
             (unsigned long long)last);
    if (last - first + 1 < cap) cap = (size_t)(last - first + 1);
  }
  pthread_once(&curl_once, curl_init);
  struct curl_slist *headers = NULL;
  if (env->token[0]) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", env->token);
    headers = curl_slist_append(headers, auth);
  }
  CURL *c = curl_easy_init();
  if (!c) {
    curl_slist_free_all(headers);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: cannot start libcurl", url);
  }
  for (int try = 0;; try++) {
    ps__http_reply_free(reply);
    transfer t = {reply, cap, 0, 0, -1};
    setup(c, env, url, ranged ? range : NULL, headers, &t);
    CURLcode rc = attempt(c, &t, stats);
    if (try >= env->retries || !transient(rc, reply->status)) break;
    int wait = t.retry_after_ms >= 0 ? t.retry_after_ms : 500 << try;
    sleep_ms(wait > MAX_WAIT_MS ? MAX_WAIT_MS : wait);
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  return PS_OK;
}
#endif
