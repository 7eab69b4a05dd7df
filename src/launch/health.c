/* GET /health with libcurl: vLLM answers 200 once the engine is up (and 503 or nothing
 * before). Short timeouts; the caller loops until its own deadline. A build without libcurl
 * (PS_WITH_CURL=OFF: a bare GPU machine that only runs check, plan and doctor) has no launch. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "launch/launch_internal.h"

#if !PS_HAVE_CURL
bool ps__health_available(void) { return false; }
void ps__health_global_init(void) {}
int ps__health_get(const char *host, int port, int timeout_ms) {
  (void)host, (void)port, (void)timeout_ms;
  return -1;
}
#else
#include <curl/curl.h>

bool ps__health_available(void) { return true; }

static size_t discard(char *ptr, size_t size, size_t n, void *user) {
  (void)ptr;
  (void)user;
  return size * n;
}

void ps__health_global_init(void) {
  static bool done = false;
  if (!done) curl_global_init(CURL_GLOBAL_DEFAULT);
  done = true;
}

int ps__health_get(const char *host, int port, int timeout_ms) {
  char url[256];
  /* 0.0.0.0 and :: listen everywhere; ask on the loopback. */
  const char *h = host && host[0] && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0
                      ? host
                      : "127.0.0.1";
  snprintf(url, sizeof(url), "http://%s:%d/health", h, port);
  CURL *curl = curl_easy_init();
  if (!curl) return -1;
  long code = 0;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*"); /* a proxy must not answer for localhost */
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  int ok = 0;
  if (curl_easy_perform(curl) == CURLE_OK &&
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
    ok = 1;
  curl_easy_cleanup(curl);
  return ok;
}
#endif
