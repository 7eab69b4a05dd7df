/* Reading vLLM's start-up log for its memory figures (untrusted text: pasted by a user, or
 * what `launch` saw). The wordings are vLLM's own, per version (docs/vllm-memory.md,
 * sections 2 and 4): V0 0.6.4's one-line "Memory profiling results", V0's "the current vLLM
 * instance can use ..." lines, V1's "Model loading took", "Available KV cache memory", "GPU
 * KV cache size", "Maximum concurrency", 0.10.2's "Free memory on device ... Actual usage",
 * 0.21's "Estimated CUDA graph memory"; the settings from the engine's config line, the
 * "non-default args" line or a pasted command line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/calibration.h"

#define LINE_CAP 4096
#define FILE_CAP (64u << 20)

/* The number after `key` (spaces, '(', '=', ':' skipped); false if none. */
static bool num_after(const char *line, const char *key, double *out) {
  const char *p = strstr(line, key);
  if (!p) return false;
  p += strlen(key);
  while (*p == ' ' || *p == '\t' || *p == '(' || *p == '=' || *p == ':')
    p++;
  if (!(isdigit((unsigned char)*p) || (*p == '-' && isdigit((unsigned char)p[1])))) return false;
  char *end;
  *out = strtod(p, &end);
  return end != p;
}

/* The number just before "<n> GiB<key>" ("27.72 GiB for weight"); false if none. */
static bool gib_before(const char *line, const char *key, double *out) {
  const char *p = strstr(line, key);
  if (!p || p - line < 5) return false;
  const char *q = p;
  while (q > line && q[-1] == ' ')
    q--;
  if (q - line >= 3 && strncmp(q - 3, "GiB", 3) == 0)
    q -= 3;
  else if (q - line >= 2 && strncmp(q - 2, "GB", 2) == 0)
    q -= 2;
  else
    return false;
  while (q > line && q[-1] == ' ')
    q--;
  const char *start = q;
  while (start > line && (isdigit((unsigned char)start[-1]) || start[-1] == '.'))
    start--;
  if (start == q) return false;
  char *end;
  *out = strtod(start, &end);
  return end == q;
}

/* An integer written with thousands separators ("1,234,560"), with vLLM's k/K/m/M suffixes
 * ("32K" = 32768, "32k" = 32000); -1 if none. */
static int64_t count_at(const char *p) {
  int64_t v = 0;
  bool any = false;
  for (; *p; p++) {
    if (*p >= '0' && *p <= '9') {
      if (v > INT64_MAX / 10 - 10) return -1;
      v = v * 10 + (*p - '0');
      any = true;
    } else if (*p != ',' || !any) {
      break;
    }
  }
  if (!any) return -1;
  if (*p == 'K' || *p == 'M') v *= *p == 'K' ? 1024 : 1024 * 1024;
  if (*p == 'k' || *p == 'm') v *= *p == 'k' ? 1000 : 1000 * 1000;
  return v;
}

static int64_t count_after(const char *line, const char *key) {
  const char *p = strstr(line, key);
  if (!p) return -1;
  p += strlen(key);
  while (*p == ' ' || *p == '=' || *p == ':' || *p == '(' || *p == '\'' || *p == '"')
    p++;
  return count_at(p);
}

static void set(ps__logged *f, double gib, int line) {
  f->gib = gib;
  f->line = line;
}

/* Settings, from whichever form states them: the engine's config line (max_seq_len=,
 * tensor_parallel_size=, enforce_eager=), the "non-default args" dict, or a command line. */
static void settings(ps_vllm_log *g, const char *l, int n) {
  static const char *const tp_keys[] = {"tensor_parallel_size=",
                                        "'tensor_parallel_size':",
                                        "--tensor-parallel-size",
                                        "--tensor_parallel_size",
                                        " -tp ",
                                        NULL};
  for (int i = 0; tp_keys[i]; i++) {
    int64_t v = count_after(l, tp_keys[i]);
    if (v > 0 && v <= 1024) {
      g->tp = (int)v;
      g->tp_line = n;
    }
  }
  static const char *const len_keys[] = {"max_seq_len=", "'max_model_len':", "--max-model-len",
                                         "--max_model_len", NULL};
  for (int i = 0; len_keys[i]; i++) {
    int64_t v = count_after(l, len_keys[i]);
    if (v > 0 && v < (1 << 30)) g->max_model_len = (int)v;
  }
  static const char *const batch_keys[] = {"'max_num_batched_tokens':", "--max-num-batched-tokens",
                                           "max_num_batched_tokens=", NULL};
  for (int i = 0; batch_keys[i]; i++) {
    int64_t v = count_after(l, batch_keys[i]);
    if (v > 0 && v < (1 << 30)) g->batched = (int)v;
  }
  double u;
  if ((num_after(l, "'gpu_memory_utilization':", &u) ||
       num_after(l, "--gpu-memory-utilization", &u) ||
       num_after(l, "--gpu_memory_utilization", &u) || num_after(l, "gpu_memory_utilization", &u) ||
       num_after(l, "Desired GPU memory utilization is", &u)) &&
      u > 0 && u <= 1)
    g->util = u;
  if (strstr(l, "enforce_eager=True") || strstr(l, "'enforce_eager': True") ||
      strstr(l, "--enforce-eager") || strstr(l, "Cudagraph is disabled under eager mode"))
    g->eager = 1;
  else if (strstr(l, "enforce_eager=False") && g->eager < 0)
    g->eager = 0;
}

static void version(ps_vllm_log *g, const char *l, int n) {
  static const char *const keys[] = {"vLLM API server version ", "LLM engine (v",
                                     "\xe2\x96\x88  version ", NULL};
  for (int i = 0; keys[i]; i++) {
    const char *p = strstr(l, keys[i]);
    if (!p) continue;
    p += strlen(keys[i]);
    size_t k = 0;
    while (p[k] && p[k] != ' ' && p[k] != ')' && p[k] != ',' && k + 1 < sizeof(g->version))
      k++;
    if (k == 0) continue;
    memcpy(g->version, p, k);
    g->version[k] = '\0';
    g->version_line = n;
  }
}

/* Weights, activation, non-torch, graphs and the visible total, in every wording. */
static bool memory_terms(ps_vllm_log *g, const char *l, int n) {
  double v;
  bool seen = false;
  if (num_after(l, "Loading model weights took", &v) || num_after(l, "Model loading took", &v) ||
      num_after(l, "model weights take", &v) || gib_before(l, " for weight", &v)) {
    set(&g->weights, v, n);
    seen = true;
  }
  if (num_after(l, "activation peak memory takes", &v) ||
      num_after(l, "PyTorch activation peak memory", &v) ||
      gib_before(l, " for peak activation", &v)) {
    set(&g->activation, v, n);
    seen = true;
  }
  if (num_after(l, "peak_torch_memory", &v)) { /* 0.6.4: the weights included */
    set(&g->peak_torch, v, n);
    seen = true;
  }
  if (num_after(l, "non_torch_memory takes", &v) || num_after(l, "non_torch_memory", &v) ||
      gib_before(l, " for non-torch memory", &v)) {
    set(&g->non_torch, v, n);
    seen = true;
  }
  if (gib_before(l, " for CUDAGraph memory", &v) ||
      num_after(l, "Estimated CUDA graph memory:", &v)) {
    set(&g->graphs, v, n);
    seen = true;
  }
  const char *cap = strstr(l, "Graph capturing finished");
  if (cap && num_after(cap, ", took", &v)) {
    set(&g->graphs_captured, v, n);
    seen = true;
  }
  const char *free_line = strstr(l, "Free memory on device (");
  if (free_line) {
    const char *slash = strchr(free_line, '/');
    if (slash && num_after(slash, "/", &v)) set(&g->visible, v, n);
    seen = true;
  } else if (num_after(l, "total_gpu_memory", &v)) {
    set(&g->visible, v, n);
    seen = true;
  }
  return seen;
}

/* The KV cache as sized: GiB, tokens, blocks, concurrency (the smallest over ranks). */
static bool kv_terms(ps_vllm_log *g, const char *l, int n) {
  double v;
  bool seen = false;
  if (num_after(l, "Available KV cache memory:", &v) || num_after(l, "KV Cache is", &v) ||
      num_after(l, "kv_cache_size", &v) || num_after(l, "available KV cache memory (", &v)) {
    if (!g->kv_gib.line || v < g->kv_gib.gib) set(&g->kv_gib, v, n);
    seen = true;
  }
  int64_t t = count_after(l, "KV cache size:");
  if (t < 0) t = count_after(l, "can be stored in KV cache (");
  if (t >= 0) {
    if (g->kv_tokens < 0 || t < g->kv_tokens) {
      g->kv_tokens = t;
      g->kv_tokens_line = n;
    }
    seen = true;
  }
  int64_t b = count_after(l, "GPU blocks:");
  if (b < 0) b = count_after(l, "cuda blocks:");
  if (b >= 0) {
    g->blocks = b;
    g->blocks_line = n;
    seen = true;
  }
  const char *p = strstr(l, "Maximum concurrency for ");
  if (p) {
    int64_t len = count_at(p + 24);
    double x;
    if (len > 0 && num_after(p, "per request:", &x) && (g->concurrency < 0 || x < g->concurrency)) {
      g->concurrency = x;
      g->concurrency_len = len;
    }
    seen = true;
  }
  return seen;
}

static void read_line(ps_vllm_log *g, const char *l, int n) {
  /* "# ..." is a comment around a pasted log (the corpus' headers), except V0's
   * "# GPU blocks: N" */
  if (l[0] == '#' && !strstr(l, "blocks:")) return;
  version(g, l, n);
  settings(g, l, n);
  bool figures = memory_terms(g, l, n);
  figures = kv_terms(g, l, n) || figures;
  if (figures || g->version_line == n) g->vllm_lines++;
}

/* The log's own problems: not vLLM's, cut short, from a version that is not modelled. */
static ps_status check(ps_ctx *ctx, const ps_vllm_log *g) {
  if (g->vllm_lines == 0)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:1: not a vLLM start-up log (none of vLLM's memory lines: 'Model loading "
                    "took', 'Available KV cache memory', 'GPU KV cache size', '# GPU blocks')",
                    g->name);
  if (g->kv_tokens < 0 && g->blocks < 0 && !g->kv_gib.line)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: the log ends before vLLM sized its KV cache (no 'GPU KV cache size', "
                    "'# GPU blocks' or 'Available KV cache memory' line): truncated?",
                    g->name, g->lines > 0 ? g->lines : 1);
  if (g->version_line && !ps__vllm_modelled(g->version))
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: vLLM %s: its memory accounting is not modelled (0.6.4 to 0.25.x), "
                    "so its figures cannot calibrate a plan",
                    g->name, g->version_line, g->version);
  return PS_OK;
}

ps_status ps_vllm_log_read(ps_ctx *ctx, const char *text, size_t len, const char *name,
                           ps_vllm_log **out) {
  if (!out || (!text && len)) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_vllm_log_read: NULL");
  *out = NULL;
  ps_vllm_log *g = ps__calloc(1, sizeof(*g));
  char *line = ps__calloc(1, LINE_CAP);
  if (!g || !line) {
    ps__free(g);
    ps__free(line);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  }
  ps__strlcpy(g->name, name && *name ? name : "log", sizeof(g->name));
  g->eager = -1;
  g->kv_tokens = g->blocks = g->concurrency_len = -1;
  g->concurrency = -1;
  size_t i = 0;
  while (i < len) {
    size_t k = 0;
    while (i < len && text[i] != '\n' && text[i] != '\r') {
      char c = text[i++];
      if (k + 1 < LINE_CAP) line[k++] = c ? c : ' '; /* a NUL ends nothing: it is a space */
    }
    if (i < len && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') i++;
    i++;
    line[k] = '\0';
    if (g->lines < INT32_MAX) g->lines++;
    read_line(g, line, g->lines);
  }
  ps__free(line);
  ps_status st = check(ctx, g);
  if (st != PS_OK) {
    ps__free(g);
    return st;
  }
  *out = g;
  return PS_OK;
}

ps_status ps_vllm_log_load(ps_ctx *ctx, const char *path, ps_vllm_log **out) {
  if (!path || !out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_vllm_log_load: NULL");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *buf = ps__calloc(1, cap);
  ps_status st = buf ? PS_OK : ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  while (st == PS_OK) {
    if (n == cap) {
      char *more = cap < FILE_CAP ? ps__realloc(buf, cap * 2) : NULL;
      if (!more) {
        st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB: not a start-up log", path,
                      FILE_CAP >> 20);
        break;
      }
      buf = more;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st == PS_OK) st = ps_vllm_log_read(ctx, buf, n, path, out);
  ps__free(buf);
  return st;
}

void ps_vllm_log_free(ps_vllm_log *log) { ps__free(log); }
