/* libFuzzer target: the web dashboard's router (ps_web_handle), which takes whatever a browser,
 * a script or an attacker on the machine sends. An input is one request, its fields on lines:
 *
 *   method \n path \n ?format= \n ?token= \n Host \n Origin \n Sec-Fetch-Site \n
 *   X-Peerscope-Token \n Authorization \n Content-Type \n flags \n body...
 *
 * An empty line is an absent field, a line starting with '=' is the rest of it as is ("=" is
 * the empty string). "$T" stands for the server's token, "$H" for 127.0.0.1:8321 and, in the
 * body, "$M" for the bundled model directories (tests/fixtures/models). Flags: 'N' asks the
 * server that listens on 0.0.0.0 (token for every /api request) instead of the loopback one,
 * 'L' marks the body as over the 1 MiB limit (dropped, as http.c does).
 *
 * Invariants: a status from 200 to 599; every 4xx/5xx is a JSON object {"error": "...",
 * "status": <the status>}; a JSON response parses; no /api request succeeds without the token
 * in a header (the fuzzer has no session cookie), none at all with a foreign Host; a session
 * cookie is set only for the right token; no page carries the token; only GET
 * /api/v1/launch/log streams. Background jobs are off (no thread, no worker, no
 * vLLM), and an upload's new report is put back after the input, so inputs stay
 * independent. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "0123456789abcdef0123456789abcdef"
#define PORT 8321
#define FIELDS 11

static ps_web *servers[2]; /* loopback, 0.0.0.0 */
static char *report_text;
static size_t report_len;

static ps_report *fresh_report(void) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (!ctx || ps_report_parse_json(ctx, report_text, report_len, "fuzz-web.json", &r) != PS_OK)
    abort();
  ps_ctx_free(ctx);
  return r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  FILE *f = fopen(PS_FUZZ_WEB_REPORT, "rb");
  if (!f) abort();
  report_text = malloc(1 << 20);
  if (!report_text) abort();
  report_len = fread(report_text, 1, 1 << 20, f);
  fclose(f);
  for (int i = 0; i < 2; i++) {
    ps_web_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.listen, sizeof(cfg.listen), "%s", i == 0 ? "127.0.0.1" : "0.0.0.0");
    cfg.port = PORT;
    cfg.loopback = i == 0;
    snprintf(cfg.token, sizeof(cfg.token), "%s", TOKEN);
    snprintf(cfg.vllm, sizeof(cfg.vllm), "/nonexistent/vllm");
    cfg.jobs = false;
    servers[i] = ps_web_new(&cfg, fresh_report());
    if (!servers[i]) abort();
  }
  return 0;
}

/* A copy of text with "$T", "$H" (and "$M" when models) replaced; NULL for an absent field. */
static char *expand(const char *text, size_t len, bool models, size_t *out_len) {
  static const char *const model_dir = PS_FUZZ_WEB_MODELS;
  size_t cap = len * (strlen(model_dir) + 2) + 1, n = 0;
  char *out = malloc(cap);
  if (!out) abort();
  for (size_t i = 0; i < len; i++) {
    const char *sub = NULL;
    if (text[i] == '$' && i + 1 < len) {
      char c = text[i + 1];
      sub = c == 'T' ? TOKEN : c == 'H' ? "127.0.0.1:8321" : c == 'M' && models ? model_dir : NULL;
    }
    if (sub) {
      memcpy(out + n, sub, strlen(sub));
      n += strlen(sub);
      i++;
    } else {
      out[n++] = text[i];
    }
  }
  out[n] = '\0';
  if (out_len) *out_len = n;
  return out;
}

static bool starts_with(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void check_error_body(const ps_web_response *resp) {
  if (!resp->body || !resp->content_type || strcmp(resp->content_type, "application/json") != 0)
    abort();
  json_error_t err;
  json_t *doc = json_loadb(resp->body, resp->len, 0, &err);
  if (!json_is_object(doc)) abort();
  json_t *error = json_object_get(doc, "error"), *status = json_object_get(doc, "status");
  if (!json_is_string(error) || json_string_length(error) == 0) abort();
  if (!json_is_integer(status) || json_integer_value(status) != resp->status) abort();
  if (strchr(json_string_value(error), '\n')) abort(); /* one line */
  json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *field[FIELDS] = {0};
  size_t pos = 0;
  for (int i = 0; i < FIELDS; i++) {
    const uint8_t *nl = pos < size ? memchr(data + pos, '\n', size - pos) : NULL;
    size_t end = nl ? (size_t)(nl - data) : size;
    const char *line = (const char *)data + pos;
    size_t len = end - (pos < size ? pos : size);
    if (pos < size && len > 0) {
      if (memchr(line, '\0', len)) len = (size_t)((const char *)memchr(line, '\0', len) - line);
      field[i] = line[0] == '=' ? expand(line + 1, len ? len - 1 : 0, false, NULL)
                                : expand(line, len, false, NULL);
    }
    pos = nl ? end + 1 : size;
  }
  const char *flags = field[10] ? field[10] : "";
  bool open_server = strchr(flags, 'N') != NULL, too_large = strchr(flags, 'L') != NULL;
  ps_web *w = servers[open_server];
  size_t body_len = 0;
  char *body_text = expand((const char *)data + pos, size - pos, true, &body_len);
  /* The body exactly as long as it is (no NUL after it): the router must use body_len. */
  char *body = body_len ? malloc(body_len) : NULL;
  if (body_len && !body) abort();
  if (body) memcpy(body, body_text, body_len);
  free(body_text);

  ps_web_request req = {.method = field[0],
                        .path = field[1],
                        .query_format = field[2],
                        .query_token = field[3],
                        .host = field[4],
                        .origin = field[5],
                        .sec_fetch_site = field[6],
                        .token_header = field[7],
                        .authorization = field[8],
                        .content_type = field[9],
                        .body = too_large ? NULL : body,
                        .body_len = too_large ? 0 : body_len,
                        .body_too_large = too_large};
  web_snapshot *before = w->snap;
  ps_web_response resp;
  ps_web_handle(w, &req, &resp);

  /* ---- invariants ---- */
  if (resp.status < 200 || resp.status > 599) abort();
  if (resp.len && !resp.body) abort();
  if (resp.body && resp.len != strlen(resp.body)) abort();
  if (resp.status >= 400) check_error_body(&resp);
  bool ok = resp.status >= 200 && resp.status < 300;
  const char *method = req.method ? req.method : "", *path = req.path ? req.path : "";
  bool header_token = same(req.token_header, TOKEN) || (starts_with(req.authorization, "Bearer ") &&
                                                        strcmp(req.authorization + 7, TOKEN) == 0);
  bool sse_path = strcmp(path, "/api/v1/launch/log") == 0;
  if (ok && strcmp(method, "POST") == 0 && !header_token) abort();
  if (ok && starts_with(path, "/api/") && !header_token) abort();
  if (resp.set_cookie[0] && !header_token && !same(req.query_token, TOKEN)) abort();
  if (ok && !starts_with(path, "/api/") && resp.body && strstr(resp.body, TOKEN)) abort();
  char want_host[32];
  snprintf(want_host, sizeof(want_host), "127.0.0.1:%d", PORT);
  if (ok && !req.host) abort();
  if (ok && !open_server && strcmp(req.host, want_host) != 0 &&
      strcmp(req.host, "localhost:8321") != 0 && strcmp(req.host, "[::1]:8321") != 0)
    abort();
  if (ok && strcmp(method, "POST") == 0 && req.origin &&
      !(starts_with(req.origin, "http://") && strcmp(req.origin + 7, req.host) == 0))
    abort();
  if (ok && same(req.sec_fetch_site, "cross-site") && strcmp(method, "POST") == 0) abort();
  if (resp.sse && (!sse_path || strcmp(method, "GET") != 0 || resp.status != 200)) abort();
  if (too_large && ok && strcmp(method, "POST") == 0) abort();
  if (ok && resp.content_type && strcmp(resp.content_type, "application/json") == 0) {
    json_t *doc = json_loadb(resp.body, resp.len, 0, NULL);
    if (!doc) abort();
    json_decref(doc);
  }
  if (resp.sse) { /* nothing runs: the stream says the status (or keeps alive), never blocks */
    ps_web_sse sse;
    char buf[512];
    bool end = false;
    ps_web_sse_init(&sse, w);
    size_t n = ps_web_sse_read(&sse, buf, sizeof(buf), 0, &end);
    if (n == 0 && !end) abort();
  }
  ps_web_response_free(&resp);
  if (resp.body || resp.len) abort();

  /* An upload replaced the report: put the original back, so inputs stay independent. */
  if (w->snap != before) {
    if (resp.status != 200) abort();
    bool over = false;
    ps_ctx *ctx = ps_ctx_new();
    web_snapshot *fresh = ctx ? ps__web_snapshot_new(ctx, fresh_report(), &over) : NULL;
    if (!fresh) abort();
    ps_ctx_free(ctx);
    ps__web_snapshot_put(ps__web_snapshot_swap(w, fresh));
  }
  free(body);
  for (int i = 0; i < FIELDS; i++)
    free(field[i]);
  return 0;
}
