/* peerscope web: the local dashboard's server (docs/web.md, API in docs/web-api.yaml).
 *
 * Split so that everything but the socket is a pure function of a request: ps_web_handle
 * (router.c) takes a parsed request and fills a response; http.c is the only code that talks
 * to libmicrohttpd. Tests and the fuzzer call ps_web_handle directly. Not part of
 * libpeerscope (the library stays free of an HTTP server); linked into the CLI. */
#ifndef PS_WEB_H
#define PS_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

#define PS_WEB_MAX_BODY (1u << 20)    /* uploads: a topology paste, a report, a plan request */
#define PS_WEB_MAX_ANSWER (16u << 20) /* a larger answer is refused (an upload: 413) */
#define PS_WEB_MAX_PATH 2048          /* a longer path: 414 */
#define PS_WEB_MAX_HEADERS                                                                         \
  (16u << 10) /* more header bytes: 431 (libmicrohttpd's own 414 and                               \
                 431 come only past its 32 KiB buffer) */
#define PS_WEB_TOKEN_HEX 32
#define PS_WEB_UNIX_PATH 108 /* sizeof(sockaddr_un.sun_path) */

/* The server's limits (ps_web_config.limits; 0 = the default). */
typedef struct ps_web_limits {
  int connections; /* open connections in all (default 4096, within RLIMIT_NOFILE) */
  int per_client;  /* connections per client address (default 64; none on loopback and unix
                      sockets, where every local process shares one address) */
  int streams;     /* open event streams (default 64) */
  int idle_s;      /* a connection idle this long is closed (default 5 s) */
  int threads;     /* polling threads (default 4); POST handlers run on 2 more */
} ps_web_limits;

typedef struct ps_web_config {
  char listen[64]; /* the address bound: "127.0.0.1", "::1", "0.0.0.0", ... */
  int port;
  bool loopback;                    /* listen is a loopback address */
  char unix_path[PS_WEB_UNIX_PATH]; /* --listen unix:PATH: a socket of mode 0600 instead */
  char token[PS_WEB_TOKEN_HEX + 1]; /* every /api request needs it (a header) or the session
                                       cookie it is exchanged for (GET /?token=) */
  ps_web_limits limits;
  char vllm[512];        /* the only executable launch may start */
  bool jobs;             /* background jobs may start (false when fuzzing) */
  char notice[512];      /* "running on the bundled example..." or "" */
  char driver_dir[4096]; /* the drivers that verify, bench and doctor use: */
  char fixture[4096];    /* ps_*_opts.driver_dir / .fixture; "" = the default */
  bool all_gpus;         /* --all-gpus: fresh reports ignore the server's CUDA_VISIBLE_DEVICES */
} ps_web_config;

typedef struct ps_web ps_web;

typedef struct ps_web_request {
  const char *method, *path; /* "GET", "/api/v1/topology" (no query) */
  const char *query_format;  /* ?format= */
  const char *query_token;   /* ?token= on GET /: exchanged for the session cookie */
  const char *host, *origin, *sec_fetch_site;
  const char *token_header;  /* X-Peerscope-Token */
  const char *authorization; /* "Bearer <token>" */
  const char *session;       /* the value of this server's session cookie (ps_web_cookie_name) */
  const char *repeated;      /* a header that must be single but came twice ("Host"), or NULL */
  size_t header_bytes;       /* names and values of every header */
  const char *content_type;
  const char *body; /* not NUL-terminated */
  size_t body_len;
  bool body_too_large; /* the body passed PS_WEB_MAX_BODY (and was dropped) */
} ps_web_request;

typedef struct ps_web_response {
  int status;
  const char *content_type;
  char *body; /* malloc'd */
  size_t len;
  bool sse;             /* stream the launch log (http.c) instead of body */
  bool asset;           /* a static file: may be cached */
  char set_cookie[160]; /* a Set-Cookie header, or "" */
  const char *location; /* a Location header (a redirect), or NULL */
} ps_web_response;

/* Takes ownership of report (never NULL). NULL when out of memory. */
ps_web *ps_web_new(const ps_web_config *cfg, ps_report *report);
/* Stops vLLM and waits for background jobs, then frees. */
void ps_web_free(ps_web *w);
const ps_web_config *ps_web_config_of(const ps_web *w);

/* Every route (router.c). Never fails: errors are responses. ps_web_handle = ps_web_refuse,
 * then ps_web_route: http.c answers refusals at once and runs routes that may take long (every
 * POST) off its polling threads. */
void ps_web_handle(ps_web *w, const ps_web_request *req, ps_web_response *resp);
/* The checks every request passes (Host, route, method, session or token, Origin, size):
 * true with the refusal in resp, false (resp untouched) when the request may be routed. */
bool ps_web_refuse(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps_web_route(ps_web *w, const ps_web_request *req, ps_web_response *resp);
/* The session cookie's name: "peerscope-<port>" (cookies do not tell ports apart). */
void ps_web_cookie_name(const ps_web *w, char *out, size_t len);
void ps_web_response_free(ps_web_response *resp);

/* The launch log as server-sent events, from the first line. Fills buf with up to len bytes,
 * waiting up to wait_ms for something new (then a comment keeps the connection alive; with
 * wait_ms 0 it returns 0 at once); 0 and *end when vLLM has exited and everything was sent or
 * the server stops. ps_web_sse_pending: a read would return something now. */
typedef struct ps_web_sse {
  ps_web *w;
  size_t next_line;    /* absolute index of the next log line to send */
  unsigned status_seq; /* the last status change sent */
  int launch_id;       /* the launch this stream follows */
  char pending[8192];
  size_t pending_len, pending_off;
} ps_web_sse;
void ps_web_sse_init(ps_web_sse *s, ps_web *w);
size_t ps_web_sse_read(ps_web_sse *s, char *buf, size_t len, int wait_ms, bool *end);
bool ps_web_sse_pending(ps_web_sse *s);

/* Serves until *stop becomes non-zero (http.c: libmicrohttpd's epoll with a few threads,
 * event streams suspended while they have nothing to send); on_listening (may be NULL) runs
 * once the socket is bound, so an address announced there accepts connections. Returns 0, or
 * an errno value when the address cannot be bound (err says which). */
int ps_web_serve(ps_web *w, const volatile int *stop, void (*on_listening)(void *), void *user,
                 char *err, size_t err_len);

/* A fresh random token (getrandom). */
bool ps_web_make_token(char out[PS_WEB_TOKEN_HEX + 1]);

#endif
