/* The libmicrohttpd side of the server (http*.c), shared by its files only. The daemon polls
 * with epoll on a few threads; nothing there waits: an event stream with nothing to send is
 * suspended (http_stream.c) and a POST, which may take long (a 1 MB upload, a plan), runs on
 * the handler threads with its connection suspended meanwhile (http_pool.c). */
#ifndef PS_WEB_HTTP_INTERNAL_H
#define PS_WEB_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <time.h>

#include "web/web_internal.h"

#define PS_HTTP_HANDLERS 2     /* threads that run POST handlers */
#define PS_HTTP_QUEUE_MAX 64   /* POSTs waiting for one: more get 503 */
#define PS_HTTP_KEEPALIVE_S 15 /* a quiet event stream gets a comment this often */
#define PS_HTTP_REFUSE_UNREAD (16ull * PS_WEB_MAX_BODY) /* a larger body: 413 before reading */

typedef enum http_phase { CONN_READING, CONN_QUEUED, CONN_DONE } http_phase;

/* One request on a connection (libmicrohttpd's *con_cls). */
typedef struct http_conn {
  struct MHD_Connection *c;
  char *data; /* the body, up to PS_WEB_MAX_BODY */
  size_t len, cap;
  bool too_large;
  http_phase phase;
  ps_web_request req;     /* its strings are the connection's, valid until it completes */
  ps_web_response resp;   /* a handler thread's answer (CONN_DONE) */
  struct http_conn *next; /* in the handlers' queue */
} http_conn;

typedef struct web_http web_http;

/* A live event stream: a reader of the launch log on one connection. */
typedef struct http_stream {
  ps_web_sse sse;
  web_http *h;
  struct MHD_Connection *c;
  bool suspended; /* by its reader, waiting for news (h->lock) */
  bool keepalive; /* resumed to send a comment */
  struct timespec since;
  struct http_stream *prev, *next;
} http_stream;

struct web_http {
  ps_web *w;
  ps_web_limits limits; /* with the defaults filled in */
  struct MHD_Daemon *d;
  pthread_mutex_t lock; /* the streams and the queue below; before w->lock when both */
  pthread_cond_t work;
  bool stopping;
  http_stream *streams;
  int stream_count;
  http_conn *head, *tail;
  int queued;
  pthread_t handlers[PS_HTTP_HANDLERS];
  int handler_count;
  char cookie[32]; /* the session cookie's name */
};

/* http_stream.c: the response for GET /api/v1/launch/log; NULL when PS limits.streams are
 * open already (*capped) or out of memory. _wake resumes the suspended streams that have
 * news or owe a keep-alive (every one when h->stopping). */
struct MHD_Response *ps__http_stream_response(web_http *h, struct MHD_Connection *c, bool *capped);
void ps__http_streams_wake(web_http *h);

/* http_pool.c: _start the handler threads; _submit runs ps_web_route for hc on one of them
 * (false: the queue is full or the server stops; the caller answers 503); call only from the
 * access handler, which returns MHD_YES: the connection stays suspended until the answer is
 * in hc->resp. _stop runs what is queued and joins the threads. */
bool ps__http_pool_start(web_http *h);
bool ps__http_pool_submit(web_http *h, http_conn *hc);
void ps__http_pool_stop(web_http *h);

/* http_listen.c: the listening socket (TCP on cfg.listen:port, or a unix socket of mode 0600)
 * and the daemon on it, with the limits; NULL with err (and *code, an errno value). */
struct MHD_Daemon *ps__http_start(web_http *h, MHD_AccessHandlerCallback on_request,
                                  MHD_RequestCompletedCallback on_completed, int *code, char *err,
                                  size_t err_len);
void ps__http_stop(web_http *h);

#endif
