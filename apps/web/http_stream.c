/* Event streams (GET /api/v1/launch/log) without a thread each: the content reader sends what
 * is new and, when nothing is, suspends its connection; the serve loop (http.c) wakes the
 * suspended ones that have news, owe a keep-alive comment, or must end because the server
 * stops. A cap on open streams: one client cannot hold every connection. */
#include <stdio.h>
#include <string.h>

#include "web/http_internal.h"

static const char keepalive[] = ": keep-alive\n\n";

static double seconds_since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  http_stream *s = cls;
  web_http *h = s->h;
  bool end = false;
  size_t n = ps_web_sse_read(&s->sse, buf, max, 0, &end);
  if (end) return MHD_CONTENT_READER_END_OF_STREAM;
  if (n) return (ssize_t)n;
  pthread_mutex_lock(&h->lock);
  if (h->stopping) {
    pthread_mutex_unlock(&h->lock);
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  if (s->keepalive && max >= sizeof(keepalive) - 1) {
    s->keepalive = false;
    pthread_mutex_unlock(&h->lock);
    memcpy(buf, keepalive, sizeof(keepalive) - 1);
    return (ssize_t)(sizeof(keepalive) - 1);
  }
  /* Nothing new: off the polling threads until _wake finds news (it looks again under this
   * lock, so a line that came meanwhile is not lost). */
  s->suspended = true;
  clock_gettime(CLOCK_MONOTONIC, &s->since);
  MHD_suspend_connection(s->c);
  pthread_mutex_unlock(&h->lock);
  return 0;
}

static void stream_free(void *cls) {
  http_stream *s = cls;
  web_http *h = s->h;
  pthread_mutex_lock(&h->lock);
  if (s->prev)
    s->prev->next = s->next;
  else
    h->streams = s->next;
  if (s->next) s->next->prev = s->prev;
  h->stream_count--;
  pthread_mutex_unlock(&h->lock);
  free(s);
}

struct MHD_Response *ps__http_stream_response(web_http *h, struct MHD_Connection *c, bool *capped) {
  *capped = false;
  http_stream *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  ps_web_sse_init(&s->sse, h->w);
  s->h = h;
  s->c = c;
  pthread_mutex_lock(&h->lock);
  *capped = h->stream_count >= h->limits.streams || h->stopping;
  if (!*capped) {
    s->next = h->streams;
    if (h->streams) h->streams->prev = s;
    h->streams = s;
    h->stream_count++;
  }
  pthread_mutex_unlock(&h->lock);
  if (*capped) {
    free(s);
    return NULL;
  }
  /* From here on stream_free owns s, also when the response cannot be made. */
  return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
}

void ps__http_streams_wake(web_http *h) {
  pthread_mutex_lock(&h->lock);
  for (http_stream *s = h->streams; s; s = s->next) {
    if (!s->suspended) continue;
    bool due = seconds_since(&s->since) >= PS_HTTP_KEEPALIVE_S;
    if (!h->stopping && !due && !ps_web_sse_pending(&s->sse)) continue;
    s->keepalive = due;
    s->suspended = false;
    MHD_resume_connection(s->c);
  }
  pthread_mutex_unlock(&h->lock);
}
