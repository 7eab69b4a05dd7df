/* ps_web_handle: the security checks every request passes (ps_web_refuse), then the route
 * table (ps_web_route). Pure with respect to the network: http.c fills the request, the fuzzer
 * makes them up. The session model is Jupyter's: the token, printed once in the start-up URL,
 * is exchanged at GET /?token= for an HttpOnly, SameSite=Strict cookie; every /api request
 * needs that cookie or the token in a header; no page ever carries either. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_internal.h"

char *ps__web_strlcpy(char *dst, const char *src, size_t dst_len) {
  if (dst_len == 0) return dst;
  size_t n = src ? strnlen(src, dst_len - 1) : 0;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
  return dst;
}

void ps__web_json(ps_web_response *resp, int status, json_t *doc) {
  char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(doc);
  if (!text) {
    ps__web_text(resp, 500, "application/json", "{\"error\":\"out of memory\",\"status\":500}");
    return;
  }
  ps__web_text(resp, status, "application/json", text);
  free(text);
}

void ps__web_text(ps_web_response *resp, int status, const char *type, const char *text) {
  ps_web_response_free(resp);
  resp->status = status;
  resp->content_type = type;
  resp->body = strdup(text);
  resp->len = resp->body ? strlen(resp->body) : 0;
}

void ps__web_error(ps_web_response *resp, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  /* Messages quote what the client sent (paths, hosts, field names), which need not be UTF-8
   * and may be cut inside a character: plain ASCII always makes a valid JSON string. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) *p = '?';
  json_t *doc = json_object();
  json_object_set_new(doc, "error", json_string(msg));
  json_object_set_new(doc, "status", json_integer(status));
  ps__web_json(resp, status, doc);
}

void ps_web_response_free(ps_web_response *resp) {
  free(resp->body);
  resp->body = NULL;
  resp->len = 0;
}

/* ---- body parsing --------------------------------------------------------------------- */

json_t *ps__web_body_object(const ps_web_request *req, const char *const *allowed,
                            ps_web_response *resp) {
  json_error_t err;
  json_t *doc = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err)
                              : json_object();
  if (!doc) {
    ps__web_error(resp, 400, "request body: %s at line %d column %d", err.text, err.line,
                  err.column);
    return NULL;
  }
  if (!json_is_object(doc)) {
    json_decref(doc);
    ps__web_error(resp, 400, "request body: expected a JSON object");
    return NULL;
  }
  const char *key;
  json_t *value;
  json_object_foreach(doc, key, value) {
    bool known = !allowed;
    for (size_t i = 0; allowed && allowed[i] && !known; i++)
      known = strcmp(allowed[i], key) == 0;
    if (!known) {
      ps__web_error(resp, 400, "request body: unknown field '%.64s'", key);
      json_decref(doc);
      return NULL;
    }
  }
  return doc;
}

bool ps__web_get_int(json_t *o, const char *key, int lo, int hi, int *out, ps_web_response *r) {
  json_t *v = json_object_get(o, key);
  if (!v) return true;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    ps__web_error(r, 400, "field '%s' must be an integer from %d to %d", key, lo, hi);
    return false;
  }
  *out = (int)json_integer_value(v);
  return true;
}

bool ps__web_get_bool(json_t *o, const char *key, bool *out, ps_web_response *r) {
  json_t *v = json_object_get(o, key);
  if (!v) return true;
  if (!json_is_boolean(v)) {
    ps__web_error(r, 400, "field '%s' must be true or false", key);
    return false;
  }
  *out = json_is_true(v);
  return true;
}

bool ps__web_get_gpus(json_t *o, const char *key, int *gpus, int *count, ps_web_response *r) {
  json_t *v = json_object_get(o, key);
  if (!v) return true;
  if (!json_is_array(v) || json_array_size(v) > PS_PLAN_MAX_GPUS) {
    ps__web_error(r, 400, "field '%s' must be a list of at most %d GPU indexes", key,
                  PS_PLAN_MAX_GPUS);
    return false;
  }
  *count = 0;
  size_t i;
  json_t *item;
  json_array_foreach(v, i, item) {
    if (!json_is_integer(item) || json_integer_value(item) < 0 ||
        json_integer_value(item) >= PS_PLAN_MAX_GPUS) {
      ps__web_error(r, 400, "field '%s': item %zu is not a GPU index", key, i);
      return false;
    }
    int g = (int)json_integer_value(item);
    for (int k = 0; k < *count; k++)
      if (gpus[k] == g) {
        ps__web_error(r, 400, "field '%s': GPU %d listed twice", key, g);
        return false;
      }
    gpus[(*count)++] = g;
  }
  return true;
}

/* ---- security --------------------------------------------------------------------------- */

/* Host must name this server: a page on evil.example that resolves to 127.0.0.1 (DNS
 * rebinding) sends Host: evil.example and is refused. */
static bool host_allowed(const ps_web_config *c, const char *host) {
  if (!host) return false;
  if (c->unix_path[0]) return true; /* no browser reaches a unix socket: nothing to rebind */
  char want[128];
  const char *loop[] = {"127.0.0.1", "localhost", "[::1]"};
  for (size_t i = 0; c->loopback && i < PS_ARRAY_LEN(loop); i++) {
    snprintf(want, sizeof(want), "%s:%d", loop[i], c->port);
    if (strcmp(host, want) == 0) return true;
  }
  bool v6 = strchr(c->listen, ':') != NULL;
  snprintf(want, sizeof(want), v6 ? "[%s]:%d" : "%s:%d", c->listen, c->port);
  if (strcmp(host, want) == 0) return true;
  /* Listening on every interface: any literal address (never a name, which DNS could rebind),
   * with our port. */
  if (strcmp(c->listen, "0.0.0.0") == 0 || strcmp(c->listen, "::") == 0) {
    char suffix[16], addr[64];
    snprintf(suffix, sizeof(suffix), ":%d", c->port);
    size_t hl = strlen(host), sl = strlen(suffix);
    if (hl <= sl || hl - sl >= sizeof(addr) || strcmp(host + hl - sl, suffix) != 0) return false;
    memcpy(addr, host, hl - sl);
    addr[hl - sl] = '\0';
    unsigned char buf[16];
    size_t al = strlen(addr);
    if (al > 2 && addr[0] == '[' && addr[al - 1] == ']') {
      addr[al - 1] = '\0';
      return inet_pton(AF_INET6, addr + 1, buf) == 1;
    }
    return inet_pton(AF_INET, addr, buf) == 1;
  }
  return false;
}

/* Constant time: the token must not leak through response timing. */
static bool token_equal(const char *given, const char *token) {
  if (!given) return false;
  size_t n = strlen(token), g = strlen(given);
  unsigned diff = (unsigned)(n ^ g);
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned)(token[i] ^ (i < g ? given[i] : 0));
  return diff == 0 && n > 0;
}

/* The token in a header (never in a query: URLs end up in logs and histories). */
static bool has_token(const ps_web *w, const ps_web_request *req) {
  const char *bearer = req->authorization;
  if (bearer && strncmp(bearer, "Bearer ", 7) == 0 && token_equal(bearer + 7, w->cfg.token))
    return true;
  return token_equal(req->token_header, w->cfg.token);
}

static bool authorized(const ps_web *w, const ps_web_request *req) {
  return has_token(w, req) || token_equal(req->session, w->session);
}

void ps_web_cookie_name(const ps_web *w, char *out, size_t len) {
  if (w->cfg.unix_path[0])
    snprintf(out, len, "peerscope-unix");
  else
    snprintf(out, len, "peerscope-%d", w->cfg.port);
}

/* The session cookie: script cannot read it (HttpOnly), no other site's request carries it
 * (SameSite=Strict), it ends with the browser session. */
static void set_session(const ps_web *w, ps_web_response *resp) {
  char name[32];
  ps_web_cookie_name(w, name, sizeof(name));
  snprintf(resp->set_cookie, sizeof(resp->set_cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict",
           name, w->session);
}

/* A change must come from our own page: a same-origin Origin, when the browser sends one. */
static bool origin_allowed(const ps_web_request *req) {
  if (req->sec_fetch_site && strcmp(req->sec_fetch_site, "cross-site") == 0) return false;
  if (!req->origin) return true; /* not a browser (curl, tests), and the token is checked */
  char want[160];
  snprintf(want, sizeof(want), "http://%s", req->host ? req->host : "");
  return strcmp(req->origin, want) == 0;
}

/* ---- routes ----------------------------------------------------------------------------- */

typedef struct route {
  const char *path;
  void (*get)(ps_web *, const ps_web_request *, ps_web_response *);
  void (*post)(ps_web *, const ps_web_request *, ps_web_response *);
} route;

static void topology_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_topology_get(w, r);
}
static void verify_post(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_verify_post(w, r);
}
static void job_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_job_get(w, r);
}
static void doctor_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_doctor_get(w, r);
}
static void launch_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_launch_get(w, r);
}
static void stop_post(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_stop_post(w, r);
}
static void plan_fields_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  ps__web_plan_fields_get(w, r);
}
/* POST /api/v1/session: the token (a header) for the cookie: the page's token box. */
static void session_post(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)q;
  json_t *doc = json_object();
  json_object_set_new(doc, "session", json_true());
  ps__web_json(r, 200, doc);
  set_session(w, r);
}
static void log_get(ps_web *w, const ps_web_request *q, ps_web_response *r) {
  (void)w, (void)q;
  ps_web_response_free(r);
  r->status = 200;
  r->content_type = "text/event-stream";
  r->sse = true;
}

static const route routes[] = {
    {"/api/v1/topology", topology_get, ps__web_topology_post},
    {"/api/v1/verify", NULL, verify_post},
    {"/api/v1/job", job_get, NULL},
    {"/api/v1/plan", NULL, ps__web_plan_post},
    {"/api/v1/plan/fields", plan_fields_get, NULL},
    {"/api/v1/bench", ps__web_bench_get, ps__web_bench_post},
    {"/api/v1/doctor", doctor_get, NULL},
    {"/api/v1/launch", launch_get, ps__web_launch_post},
    {"/api/v1/stop", NULL, stop_post},
    {"/api/v1/launch/log", log_get, NULL},
    {"/api/v1/session", NULL, session_post},
};

/* GET / and /index.html: the page (static: no token in it); with ?token=, the exchange for
 * the session cookie and a redirect that drops the token from the address bar. */
static void page(ps_web *w, const ps_web_request *req, const char *path, ps_web_response *resp) {
  bool index = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0;
  if (index && req->query_token) {
    if (!token_equal(req->query_token, w->cfg.token))
      return ps__web_error(resp, 401, "wrong token: open the URL peerscope web printed");
    json_t *doc = json_object();
    json_object_set_new(doc, "session", json_true());
    ps__web_json(resp, 303, doc);
    set_session(w, resp);
    resp->location = "/";
    return;
  }
  if (!ps__web_asset(w, path, resp)) ps__web_error(resp, 404, "no page %.200s", path);
}

static const route *find_route(const char *path) {
  for (size_t i = 0; i < PS_ARRAY_LEN(routes); i++)
    if (strcmp(routes[i].path, path) == 0) return &routes[i];
  return NULL;
}

bool ps_web_refuse(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  memset(resp, 0, sizeof(*resp));
  const ps_web_config *c = &w->cfg;
  const char *path = req->path ? req->path : "";
  const char *method = req->method ? req->method : "";
  if (req->header_bytes > PS_WEB_MAX_HEADERS) {
    ps__web_error(resp, 431, "request headers larger than %u bytes", PS_WEB_MAX_HEADERS);
  } else if (strlen(path) > PS_WEB_MAX_PATH) {
    ps__web_error(resp, 414, "path longer than %d bytes", PS_WEB_MAX_PATH);
  } else if (req->repeated) {
    ps__web_error(resp, 400, "header %.40s given more than once", req->repeated);
  } else if (!host_allowed(c, req->host)) {
    ps__web_error(resp, 403, "Host '%.100s' is not this server (expected %s:%d)",
                  req->host ? req->host : "", c->listen, c->port);
  } else if (strncmp(path, "/api/", 5) != 0) {
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
      ps__web_error(resp, 405, "%.16s not allowed on %.100s", method, path);
    return resp->status != 0; /* a page: routed */
  } else {
    const route *rt = find_route(path);
    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    if (!rt)
      ps__web_error(resp, 404, "no route %.200s", path);
    else if ((is_get && !rt->get) || (is_post && !rt->post) || (!is_get && !is_post))
      ps__web_error(resp, 405, "%.16s not allowed on %s (use %s)", method, rt->path,
                    rt->get ? "GET" : "POST");
    else if (!authorized(w, req))
      ps__web_error(resp, 401,
                    "not logged in: open the URL peerscope web printed, or send the token "
                    "(X-Peerscope-Token)");
    else if (is_post && !origin_allowed(req))
      ps__web_error(resp, 403, "cross-origin request refused (Origin '%.100s')",
                    req->origin ? req->origin : "");
  }
  if (!resp->status && req->body_too_large)
    ps__web_error(resp, 413, "request body larger than %u bytes", PS_WEB_MAX_BODY);
  return resp->status != 0;
}

void ps_web_route(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  memset(resp, 0, sizeof(*resp));
  const char *path = req->path ? req->path : "";
  const route *rt = find_route(path);
  if (!rt) return page(w, req, path, resp);
  bool is_get = strcmp(req->method ? req->method : "", "GET") == 0;
  (is_get ? rt->get : rt->post)(w, req, resp);
}

void ps_web_handle(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  if (!ps_web_refuse(w, req, resp)) ps_web_route(w, req, resp);
}
