/* The code that talks to libmicrohttpd: reads a request (headers, a body up to
 * PS_WEB_MAX_BODY), refuses it at once when it must be (ps_web_refuse), answers GETs on the
 * polling thread and hands POSTs to the handler threads (http_pool.c), streams the launch log
 * (http_stream.c), and writes every answer with the security headers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/http_internal.h"

/* 'self' only: no inline script, no other origin, no framing. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' blob: data:; connect-src 'self'; frame-ancestors "
                          "'none'; base-uri 'none'; form-action 'self'";

static void add_headers(struct MHD_Response *r, const ps_web_response *resp, bool close) {
  MHD_add_response_header(r, "Content-Type",
                          resp->content_type ? resp->content_type : "application/octet-stream");
  MHD_add_response_header(r, "Content-Security-Policy", csp);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Cache-Control", resp->asset ? "no-cache" : "no-store");
  if (resp->set_cookie[0]) MHD_add_response_header(r, "Set-Cookie", resp->set_cookie);
  if (resp->location) MHD_add_response_header(r, "Location", resp->location);
  if (close) MHD_add_response_header(r, "Connection", "close");
}

/* Sends resp (freed); close: the connection ends after it (a body left unread, a refusal
 * that the client may repeat at once). */
static enum MHD_Result send_response(struct MHD_Connection *c, ps_web_response *resp, bool close) {
  if (resp->len > PS_WEB_MAX_ANSWER)
    ps__web_error(resp, 500, "the answer (%zu bytes) is over the server's limit of %u bytes",
                  resp->len, PS_WEB_MAX_ANSWER);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_COPY);
  if (!r) {
    ps_web_response_free(resp);
    return MHD_NO;
  }
  add_headers(r, resp, close);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
  MHD_destroy_response(r);
  ps_web_response_free(resp);
  return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg) {
  ps_web_response resp;
  memset(&resp, 0, sizeof(resp));
  ps__web_error(&resp, status, "%s", msg);
  return send_response(c, &resp, true);
}

static bool append_body(http_conn *b, const char *data, size_t len) {
  if (b->too_large) return true;
  if (b->len + len > PS_WEB_MAX_BODY) {
    b->too_large = true; /* keep reading (and dropping) so the client gets its 413 */
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return true;
  }
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len)
      cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) return false;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return true;
}

/* Headers that decide who may do what: twice is an attack (the first of two Host headers
 * would pass the check that the second was meant to fail), refused with 400. */
static const char *const single_headers[] = {
    "Host",   "Origin",       "Sec-Fetch-Site", "X-Peerscope-Token", "Authorization",
    "Cookie", "Content-Type", "Content-Length", "Transfer-Encoding"};
#define SINGLE_COUNT (sizeof(single_headers) / sizeof(single_headers[0]))

typedef struct header_counts {
  int seen[SINGLE_COUNT];
  const char *repeated;
  size_t bytes;
} header_counts;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
  (void)kind;
  header_counts *hc = cls;
  hc->bytes += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4; /* ": ", CRLF */
  for (size_t i = 0; key && i < SINGLE_COUNT; i++)
    if (strcasecmp(key, single_headers[i]) == 0 && ++hc->seen[i] == 2 && !hc->repeated)
      hc->repeated = single_headers[i];
  return MHD_YES;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void read_request(web_http *h, http_conn *hc, const char *url, const char *method) {
  struct MHD_Connection *c = hc->c;
  header_counts counts;
  memset(&counts, 0, sizeof(counts));
  MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &counts);
  hc->req = (ps_web_request){
      .method = method,
      .path = url,
      .query_format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format"),
      .query_token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"),
      .host = header(c, "Host"),
      .origin = header(c, "Origin"),
      .sec_fetch_site = header(c, "Sec-Fetch-Site"),
      .token_header = header(c, "X-Peerscope-Token"),
      .authorization = header(c, "Authorization"),
      .session = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, h->cookie),
      .repeated = counts.repeated,
      .header_bytes = counts.bytes,
      .content_type = header(c, "Content-Type"),
      .body = hc->data,
      .body_len = hc->len,
      .body_too_large = hc->too_large};
}

/* The first call (headers only): a body announced as far too large (PS_HTTP_REFUSE_UNREAD) is
 * refused before it is read, and the connection closed after the answer. One just over the
 * limit is read and dropped: a client that sends its body before it reads (a browser) would
 * otherwise see the connection reset instead of the 413. */
static enum MHD_Result on_headers(web_http *h, http_conn *hc, const char *url, const char *method) {
  const char *length = header(hc->c, "Content-Length");
  char *end = NULL;
  errno = 0;
  unsigned long long n = length ? strtoull(length, &end, 10) : 0;
  if (!length || (errno == 0 && end && *end == '\0' && n <= PS_HTTP_REFUSE_UNREAD)) return MHD_YES;
  hc->too_large = true;
  read_request(h, hc, url, method);
  ps_web_response resp;
  if (!ps_web_refuse(h->w, &hc->req, &resp))
    ps__web_error(&resp, 413, "request body larger than %u bytes", PS_WEB_MAX_BODY);
  return send_response(hc->c, &resp, true);
}

static enum MHD_Result answer(web_http *h, http_conn *hc) {
  ps_web_response resp;
  if (ps_web_refuse(h->w, &hc->req, &resp)) return send_response(hc->c, &resp, hc->too_large);
  if (strcmp(hc->req.method, "POST") == 0) {
    if (ps__http_pool_submit(h, hc)) return MHD_YES; /* answered when a handler is done */
    return send_error(hc->c, 503, "the server is busy (too many requests waiting); try again");
  }
  ps_web_route(h->w, &hc->req, &resp);
  if (!resp.sse) return send_response(hc->c, &resp, false);
  bool capped = false;
  struct MHD_Response *r = ps__http_stream_response(h, hc->c, &capped);
  if (!r)
    return capped ? send_error(hc->c, 503, "too many event streams are open; try again later")
                  : MHD_NO;
  add_headers(r, &resp, false);
  enum MHD_Result ret = MHD_queue_response(hc->c, (unsigned)resp.status, r);
  MHD_destroy_response(r);
  ps_web_response_free(&resp);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state) {
  (void)version;
  web_http *h = cls;
  http_conn *hc = *state;
  if (!hc) {
    hc = calloc(1, sizeof(*hc));
    if (!hc) return MHD_NO;
    hc->c = c;
    *state = hc;
    return on_headers(h, hc, url, method);
  }
  if (hc->phase == CONN_DONE) return send_response(c, &hc->resp, false);
  if (*upload_size) {
    bool ok = append_body(hc, upload_data, *upload_size);
    *upload_size = 0;
    return ok ? MHD_YES : MHD_NO;
  }
  read_request(h, hc, url, method);
  return answer(h, hc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  http_conn *hc = *state;
  if (hc) {
    free(hc->data);
    ps_web_response_free(&hc->resp);
  }
  free(hc);
  *state = NULL;
}

/* Until *stop: wakes the event streams on every change (and every 100 ms for the keep-alive
 * comments and the stop flag). */
static void serve_loop(web_http *h, const volatile int *stop) {
  ps_web *w = h->w;
  while (!*stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&w->lock);
    pthread_cond_timedwait(&w->changed, &w->lock, &until);
    pthread_mutex_unlock(&w->lock);
    ps__http_streams_wake(h);
  }
}

int ps_web_serve(ps_web *w, const volatile int *stop, void (*on_listening)(void *), void *user,
                 char *err, size_t err_len) {
  web_http h;
  memset(&h, 0, sizeof(h));
  h.w = w;
  ps_web_cookie_name(w, h.cookie, sizeof(h.cookie));
  pthread_mutex_init(&h.lock, NULL);
  pthread_cond_init(&h.work, NULL);
  int code = 0;
  if (!ps__http_pool_start(&h)) {
    code = EAGAIN;
    snprintf(err, err_len, "cannot start the handler threads");
  } else if (ps__http_start(&h, on_request, on_completed, &code, err, err_len)) {
    if (on_listening) on_listening(user); /* only now is the announced address true */
    serve_loop(&h, stop);
  }
  /* Stopping: event streams end, queued POSTs are answered, then the daemon goes (it must
   * have no suspended connection left). */
  __atomic_store_n(&w->closing, 1, __ATOMIC_SEQ_CST);
  ps__http_pool_stop(&h);
  if (h.d) {
    ps__http_streams_wake(&h);
    for (int i = 0; i < 100; i++) {
      pthread_mutex_lock(&h.lock);
      int left = h.stream_count;
      pthread_mutex_unlock(&h.lock);
      if (!left) break;
      struct timespec tick = {0, 10 * 1000000L};
      nanosleep(&tick, NULL);
      ps__http_streams_wake(&h);
    }
    ps__http_stop(&h);
  }
  pthread_cond_destroy(&h.work);
  pthread_mutex_destroy(&h.lock);
  return code;
}
