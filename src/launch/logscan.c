/* Classifying vLLM's start-up log (pure). The texts matched are vLLM's own, from the v0.33.0
 * wheel unless noted: custom_all_reduce.py, v1/core/kv_cache_utils.py and
 * kv_cache_planning.py, v1/worker/gpu_worker.py and utils.py, config/model.py; NCCL's INFO
 * lines "Channel 00/0 : 0[0] -> 1[1] via P2P/IPC". See docs/launch.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "launch/launch_internal.h"

void ps__log_summary_init(ps_log_summary *s) {
  memset(s, 0, sizeof(*s));
  s->custom_all_reduce = -1;
  s->kv_cache_tokens = -1;
  s->max_concurrency = -1;
  s->concurrency_tokens = -1;
  s->kv_available_gib = -1;
  s->kv_needed_gib = -1;
  s->estimated_max_len = -1;
}

ps_log_summary *ps_log_summary_new(void) {
  ps_log_summary *s = ps__calloc(1, sizeof(*s));
  if (s) ps__log_summary_init(s);
  return s;
}

void ps_log_summary_free(ps_log_summary *summary) { ps__free(summary); }

/* Reads an integer written with thousands separators ("1,234,560"); -1 if none. */
static int64_t read_count(const char *p) {
  int64_t v = 0;
  bool any = false;
  for (; *p; p++) {
    if (*p >= '0' && *p <= '9') {
      v = v * 10 + (*p - '0');
      any = true;
    } else if (*p != ',' || !any) {
      break;
    }
  }
  return any ? v : -1;
}

static int64_t count_after(const char *line, const char *key) {
  const char *p = strstr(line, key);
  return p ? read_count(p + strlen(key)) : -1;
}

static double number_after(const char *line, const char *key) {
  const char *p = strstr(line, key);
  if (!p) return -1;
  char *end = NULL;
  double v = strtod(p + strlen(key), &end);
  return end == p + strlen(key) ? -1 : v;
}

/* The part of a log line after vLLM's prefix ("INFO 11-25 15:01:02 [file.py:12] "). */
static const char *message(const char *line) {
  const char *p = strstr(line, "] ");
  return p ? p + 2 : line;
}

static void fail(ps_log_summary *s, ps_log_failure f, const char *line) {
  if (s->failure != PS_LOG_FAIL_NONE) return; /* the first cause; later lines are fallout */
  s->failure = f;
  ps__strlcpy(s->failure_line, message(line), sizeof(s->failure_line));
}

static void custom_all_reduce(ps_log_summary *s, const char *line) {
  /* "Custom allreduce is disabled because <reason>. To silence ..." / "due to <reason>." */
  const char *p = strstr(line, "Custom allreduce is disabled");
  if (!p) p = strstr(line, "Custom collectives are disabled");
  if (!p) return;
  s->custom_all_reduce = 0;
  const char *why = strstr(p, "because ");
  if (why)
    why += 8;
  else if ((why = strstr(p, "due to ")))
    why += 7;
  else
    why = p;
  char *out = s->custom_all_reduce_reason;
  ps__strlcpy(out, why, sizeof(s->custom_all_reduce_reason));
  char *cut = strstr(out, " To silence");
  if (cut) *cut = '\0';
}

static void nccl(ps_log_summary *s, const char *line) {
  const char *via = strstr(line, " via ");
  if (!via || !strstr(line, "NCCL INFO")) return;
  via += 5;
  if (strncmp(via, "P2P", 3) == 0) s->nccl_transports |= PS_NCCL_P2P;
  if (strncmp(via, "SHM", 3) == 0) s->nccl_transports |= PS_NCCL_SHM;
  if (strncmp(via, "NET", 3) == 0) s->nccl_transports |= PS_NCCL_NET;
}

static void kv_numbers(ps_log_summary *s, const char *line) {
  int64_t v;
  /* "GPU KV cache size: 1,234 tokens" (older releases: its own line; v0.33: with the next) */
  if ((v = count_after(line, "KV cache size: ")) >= 0) s->kv_cache_tokens = v;
  /* "Maximum concurrency for 8,192 tokens per request: 3.21x" */
  const char *p = strstr(line, "Maximum concurrency for ");
  if (p) {
    int64_t tokens = read_count(p + 24);
    double x = number_after(p, "per request: ");
    if (tokens >= 0 && x >= 0) {
      s->concurrency_tokens = tokens;
      s->max_concurrency = x;
    }
  }
  double gib = number_after(line, "Available KV cache memory: ");
  if (gib >= 0) s->kv_available_gib = gib;
}

static void failures(ps_log_summary *s, const char *line) {
  const char *p;
  if ((p = strstr(line, "KV cache is needed, which is larger than the available KV cache"))) {
    /* "(... max seq len (L), (X GiB KV cache is needed, ... memory (Y GiB). Based on the
     * available memory, the estimated maximum model length is M." */
    const char *open = p;
    while (open > line && *open != '(')
      open--;
    s->kv_needed_gib = strtod(open + 1, NULL);
    double avail = number_after(p, "KV cache memory (");
    if (avail >= 0) s->kv_available_gib = avail;
    s->estimated_max_len = count_after(line, "estimated maximum model length is ");
    fail(s, PS_LOG_FAIL_KV_TOO_SMALL, line);
  } else if (strstr(line, "No available memory for the cache blocks")) {
    fail(s, PS_LOG_FAIL_NO_KV_MEMORY, line);
  } else if ((p = strstr(line, "Total number of attention heads ("))) {
    s->heads = (int)read_count(p + 33);
    s->heads_tp = (int)count_after(p, "tensor parallel size (");
    fail(s, PS_LOG_FAIL_HEADS, line);
  } else if (strstr(line, "is less than desired GPU memory utilization")) {
    fail(s, PS_LOG_FAIL_FREE_MEMORY, line);
  } else if (strstr(line, "CUDA out of memory") || strstr(line, "OutOfMemoryError")) {
    fail(s, PS_LOG_FAIL_OOM, line);
  } else if (strstr(line, "ddress already in use")) {
    fail(s, PS_LOG_FAIL_PORT_IN_USE, line);
  }
}

void ps_log_classify_line(ps_log_summary *s, const char *line) {
  if (!s || !line) return;
  custom_all_reduce(s, line);
  nccl(s, line);
  kv_numbers(s, line);
  failures(s, line);
  if (strstr(line, "Application startup complete")) s->ready = true;
}
