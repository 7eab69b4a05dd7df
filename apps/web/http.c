/* The only code that talks to libmicrohttpd: reads a request (headers, a body up to
 * PS_WEB_MAX_BODY), hands it to ps_web_handle, writes the response with the security headers,
 * and streams the launch log. A thread per connection: an event stream may wait, the other
 * requests do not. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web/web_internal.h"

/* 'self' only: no inline script, no other origin, no framing. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' blob: data:; connect-src 'self'; frame-ancestors "
                          "'none'; base-uri 'none'; form-action 'self'";

typedef struct conn_body {
  char *data;
  size_t len, cap;
  bool too_large;
} conn_body;

static void add_headers(struct MHD_Response *r, const ps_web_response *resp) {
  MHD_add_response_header(r, "Content-Type",
                          resp->content_type ? resp->content_type : "application/octet-stream");
  MHD_add_response_header(r, "Content-Security-Policy", csp);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Cache-Control", resp->asset ? "no-cache" : "no-store");
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  bool end = false;
  size_t n = ps_web_sse_read(cls, buf, max, 1000, &end);
  return end ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static bool append_body(conn_body *b, const char *data, size_t len) {
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

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state) {
  (void)version;
  ps_web *w = cls;
  conn_body *body = *state;
  if (!body) { /* the headers: nothing to answer yet */
    body = calloc(1, sizeof(*body));
    if (!body) return MHD_NO;
    *state = body;
    return MHD_YES;
  }
  if (*upload_size) {
    bool ok = append_body(body, upload_data, *upload_size);
    *upload_size = 0;
    return ok ? MHD_YES : MHD_NO;
  }
  ps_web_request req = {
      .method = method,
      .path = url,
      .query_format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format"),
      .query_token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"),
      .host = header(c, "Host"),
      .origin = header(c, "Origin"),
      .sec_fetch_site = header(c, "Sec-Fetch-Site"),
      .token_header = header(c, "X-Peerscope-Token"),
      .authorization = header(c, "Authorization"),
      .content_type = header(c, "Content-Type"),
      .body = body->data,
      .body_len = body->len,
      .body_too_large = body->too_large};
  ps_web_response resp;
  ps_web_handle(w, &req, &resp);
  struct MHD_Response *r;
  ps_web_sse *sse = NULL;
  if (resp.sse && (sse = calloc(1, sizeof(*sse)))) {
    ps_web_sse_init(sse, w);
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, sse_reader, sse, free);
  } else {
    r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_COPY);
  }
  if (!r) {
    free(sse);
    ps_web_response_free(&resp);
    return MHD_NO;
  }
  add_headers(r, &resp);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp.status, r);
  MHD_destroy_response(r);
  ps_web_response_free(&resp);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  conn_body *body = *state;
  if (body) free(body->data);
  free(body);
  *state = NULL;
}

int ps_web_serve(ps_web *w, const volatile int *stop, void (*on_listening)(void *), void *user,
                 char *err, size_t err_len) {
  const ps_web_config *cfg = ps_web_config_of(w);
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)cfg->port)};
  /* No MHD_USE_ERROR_LOG: a failure to bind is reported once, by the caller, in one line. */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
  const struct sockaddr *addr = (const struct sockaddr *)&v4;
  if (inet_pton(AF_INET6, cfg->listen, &v6.sin6_addr) == 1) {
    flags |= MHD_USE_IPv6;
    addr = (const struct sockaddr *)&v6;
  } else if (inet_pton(AF_INET, cfg->listen, &v4.sin_addr) != 1) {
    snprintf(err, err_len, "--listen %s: not an IPv4 or IPv6 address", cfg->listen);
    return EINVAL;
  }
  errno = 0;
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, (uint16_t)cfg->port, NULL, NULL, on_request, w, MHD_OPTION_SOCK_ADDR, addr,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
  if (!d) {
    int e = errno ? errno : EADDRINUSE;
    snprintf(err, err_len, "cannot listen on %s port %d: %s", cfg->listen, cfg->port, strerror(e));
    return e;
  }
  if (on_listening) on_listening(user); /* only now is the announced address true */
  struct timespec tick = {0, 100 * 1000000L};
  while (!*stop)
    nanosleep(&tick, NULL);
  __atomic_store_n(&w->closing, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&w->lock); /* wake the event streams now, not at their next second */
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  MHD_stop_daemon(d);
  return 0;
}
