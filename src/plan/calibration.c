/* The record a start-up log gives (docs/vllm-memory.md, "Calibration"): the log's figures
 * checked against the model and the request, and what vLLM subtracted besides the weights,
 * taken from the exact KV block count where the log prints tokens or blocks:
 *   overhead = visible total x utilization - weights - KV bytes,
 * with the KV bytes in the middle of the block the printed count allows. A plan with the
 * same settings then gives vLLM's own block count. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "plan/calibration.h"
#include "plan/plan_internal.h"
#include "plan/vllm.h"

#define GIB_F (1024.0 * 1024.0 * 1024.0)
/* The log's weights against the model's files: within 30% or 0.5 GiB (quantized layers,
 * vision towers and replicated KV heads make the two differ by up to ~20% in the corpus). */
#define WEIGHTS_TOLERANCE 0.30
#define WEIGHTS_SLACK_GIB 0.5
/* The log's visible total against the planned GPU's, and its tokens against its KV GiB. */
#define VISIBLE_TOLERANCE 0.05
#define TOKENS_TOLERANCE 0.15

static double absd(double x) { return x < 0 ? -x : x; }

/* A logged GiB as bytes; a negative figure (a log's short KV cache) counts as none. */
static uint64_t bytes_of(double gib) { return gib > 0 ? (uint64_t)(gib * GIB_F) : 0; }
static double maxd(double a, double b) { return a > b ? a : b; }

static int kv_dtype_bytes(const char *kv) { return kv && strncmp(kv, "fp8", 3) == 0 ? 1 : 0; }

static const char *bare(const char *version) {
  return version[0] == 'v' || version[0] == 'V' ? version + 1 : version;
}

/* The version of the record: the log's, else the request's (given or installed), else the
 * newest modelled; an explicit --vllm-version that differs from the log's is a conflict. */
static ps_status pick_version(ps_ctx *ctx, const ps_vllm_log *g, const ps_plan_request *req,
                              ps__vllm *v) {
  const char *asked = req->vllm_version && *req->vllm_version ? req->vllm_version : NULL;
  if (g->version_line) {
    if (asked && !req->vllm_version_note && strcmp(bare(asked), bare(g->version)) != 0)
      return ps__fail(ctx, PS_ERR_BAD_INPUT,
                      "%s:%d: the log is from vLLM %s, --vllm-version says %s", g->name,
                      g->version_line, g->version, asked);
    asked = g->version;
  }
  if (asked && !ps__vllm_modelled(asked))
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:1: the log does not say its version and vLLM %s is not modelled (0.6.4 "
                    "to 0.25.x): give --vllm-version",
                    g->name, asked);
  ps_status st = ps__vllm_resolve(ctx, asked, v);
  if (st == PS_OK && asked) ps__strlcpy(v->version, bare(asked), sizeof(v->version));
  return st == PS_OK ? PS_OK : PS_ERR_BAD_INPUT;
}

/* The KV bytes behind the printed count: the middle of the blocks it allows. */
static bool kv_from_count(const ps_vllm_log *g, const ps__kv_layout *l, int len, double *kv) {
  double block_bytes = (double)l->page * (double)l->pool_layers;
  if (g->blocks >= 0) { /* V0 prints the blocks themselves */
    *kv = ((double)g->blocks + 0.5) * block_bytes;
    return true;
  }
  if (g->kv_tokens <= 0 || !l->page) return false;
  uint64_t t = (uint64_t)g->kv_tokens, guess = t / (uint64_t)l->block;
  if (l->print == PS__PRINT_PER_GROUP) guess *= (uint64_t)ps__kv_groups(l);
  if (l->print == PS__PRINT_CONCURRENCY && len > 0)
    guess = (uint64_t)((double)t * (double)ps__kv_blocks_per_request(l, (uint64_t)len) / len);
  uint64_t lo = UINT64_MAX, hi = 0; /* every block count that prints t */
  uint64_t from = guess > 64 ? guess - 64 : 0;
  for (uint64_t b = from; b <= guess + 64; b++)
    if (ps__kv_printed_tokens(l, b, (uint64_t)len) == t) {
      if (b < lo) lo = b;
      hi = b;
    }
  if (lo == UINT64_MAX) lo = hi = guess;
  *kv = ((double)lo + (double)hi + 1.0) / 2.0 * block_bytes;
  return true;
}

/* The log's figures against the model, the GPU and the request. */
static ps_status contradictions(ps_ctx *ctx, const ps_vllm_log *g, const ps_model *m, int tp,
                                double weights_model, double visible_model) {
  double w = g->weights.gib * GIB_F;
  if (g->weights.line && weights_model > 0 &&
      absd(w - weights_model) > maxd(WEIGHTS_TOLERANCE * weights_model, WEIGHTS_SLACK_GIB * GIB_F))
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: the log's weights, %.2f GiB per GPU, are not %s's at TP=%d (%.2f "
                    "GiB per GPU from its files; tolerance 30%% or 0.5 GiB): a log of another "
                    "model, or of another TP (--tp)?",
                    g->name, g->weights.line, g->weights.gib, m->name, tp, weights_model / GIB_F);
  if (g->visible.line &&
      absd(g->visible.gib * GIB_F - visible_model) > VISIBLE_TOLERANCE * visible_model)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: the log's GPU shows %.2f GiB to CUDA, the planned GPU %.2f GiB: a log "
                    "of another GPU type?",
                    g->name, g->visible.line, g->visible.gib, visible_model / GIB_F);
  if (g->weights.line && g->visible.line && g->weights.gib >= g->visible.gib)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d: weights of %.2f GiB on a GPU of %.2f GiB",
                    g->name, g->weights.line, g->weights.gib, g->visible.gib);
  return PS_OK;
}

/* Tokens against the KV GiB, both printed: the model's page size must join them. */
static ps_status kv_shape(ps_ctx *ctx, const ps_vllm_log *g, const ps_model *m,
                          const ps__kv_layout *l, int len) {
  if (!g->kv_gib.line || g->kv_tokens <= 0 || g->kv_gib.gib < 0.5 || !l->page) return PS_OK;
  uint64_t blocks = ps__kv_blocks(l, bytes_of(g->kv_gib.gib));
  double expect = (double)ps__kv_printed_tokens(l, blocks, (uint64_t)len);
  if (expect > 0 && absd((double)g->kv_tokens - expect) > TOKENS_TOLERANCE * expect)
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: the log's KV cache of %.2f GiB holds %lld tokens; %s's layout gives "
                    "%.0f tokens in %.2f GiB: a log of another model (or --kv-cache-dtype)?",
                    g->name, g->kv_tokens_line, g->kv_gib.gib, (long long)g->kv_tokens, m->name,
                    expect, g->kv_gib.gib);
  return PS_OK;
}

static void today(char *out, size_t len) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(out, len, "%Y-%m-%d", &tm);
}

/* The parts vLLM printed (activation, non-torch, graphs), where it printed them. */
static void parts(const ps_vllm_log *g, const ps__vllm *v, bool eager, ps_vllm_calibration *c) {
  double act = g->activation.line                      ? g->activation.gib
               : g->peak_torch.line && g->weights.line ? g->peak_torch.gib - g->weights.gib
                                                       : -1;
  if (act < 0 || !g->non_torch.line) return;
  c->parts = true;
  c->activation = bytes_of(act);
  c->non_torch = bytes_of(g->non_torch.gib);
  c->graphs = v->rules->graphs_first && !eager && g->graphs.line ? bytes_of(g->graphs.gib) : 0;
}

static ps_status fill(ps_ctx *ctx, const ps_report *r, const ps_plan_request *req,
                      const ps_vllm_log *g, ps_vllm_calibration *c) {
  const ps_model *m = req->model;
  ps__vllm v;
  ps_status st = pick_version(ctx, g, req, &v);
  if (st != PS_OK) return st;
  if (g->tp && req->tp > 0 && g->tp != req->tp)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d: the log ran TP=%d, --tp says %d", g->name,
                    g->tp_line, g->tp, req->tp);
  int tp = g->tp ? g->tp : req->tp > 0 ? req->tp : 1;
  int gi = req->gpus && req->gpu_count > 0 ? req->gpus[0] : 0;
  if (gi < 0 || gi >= r->gpu_count || !(r->gpus[gi].valid & PS_GPU_MEMORY_TOTAL))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "calibration needs the planned GPU's memory");
  const ps_gpu *gpu = &r->gpus[gi];
  double visible_model = (double)ps__visible_total(gpu);
  double weights_model =
      (double)ps__stage_weights(m, tp, 0, 1, m->num_layers > 0 ? m->num_layers : 1);
  if ((st = contradictions(ctx, g, m, tp, weights_model, visible_model)) != PS_OK) return st;

  c->tp = tp;
  ps__strlcpy(c->model, m->name, sizeof(c->model));
  ps__strlcpy(c->gpu_name, gpu->name, sizeof(c->gpu_name));
  ps__strlcpy(c->vllm_version, v.version, sizeof(c->vllm_version));
  c->util = g->util > 0                       ? g->util
            : req->gpu_memory_utilization > 0 ? req->gpu_memory_utilization
                                              : v.rules->default_util;
  int max_len = m->max_position_embeddings > 0 ? m->max_position_embeddings : 131072;
  c->max_model_len = g->max_model_len         ? g->max_model_len
                     : g->concurrency_len > 0 ? (int)g->concurrency_len
                     : req->max_model_len > 0 ? req->max_model_len
                                              : max_len;
  c->eager = g->eager >= 0 ? g->eager == 1 : req->enforce_eager;
  c->visible = g->visible.line ? bytes_of(g->visible.gib) : 0;
  double visible = c->visible ? (double)c->visible : visible_model;
  ps__vllm_setup setup = {&v,
                          tp,
                          c->max_model_len,
                          g->batched ? g->batched : req->max_num_batched_tokens,
                          c->eager,
                          (uint64_t)visible,
                          gpu->name,
                          req->max_num_seqs > 0 ? req->max_num_seqs : 0};
  ps__vllm_memory mem;
  ps__vllm_memory_make(m, &setup, &mem);
  c->batched = mem.batched;
  c->weights = g->weights.line ? bytes_of(g->weights.gib) : (uint64_t)weights_model;

  ps__kv_layout l;
  bool shaped = ps__kv_layout_make(m, &v, tp, kv_dtype_bytes(req->kv_cache_dtype), req->block_size,
                                   mem.batched, m->num_layers, &l);
  if (shaped && (st = kv_shape(ctx, g, m, &l, c->max_model_len)) != PS_OK) return st;
  double kv;
  if (!(shaped && kv_from_count(g, &l, c->max_model_len, &kv))) {
    if (!g->kv_gib.line)
      return ps__fail(ctx, PS_ERR_BAD_INPUT,
                      "%s:%d: the log gives KV tokens but not their size, and %s's KV layout is "
                      "unknown",
                      g->name, g->kv_tokens_line, m->name);
    kv = g->kv_gib.gib * GIB_F;
  }
  if (g->kv_tokens == 0 && g->blocks <= 0 && g->kv_gib.line) kv = g->kv_gib.gib * GIB_F;
  if ((double)c->weights + kv > visible * (1.0 + VISIBLE_TOLERANCE))
    return ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d: the log's weights and KV cache (%.2f + %.2f GiB) do not fit the "
                    "planned GPU's %.2f GiB: a log of another GPU type?",
                    g->name, g->kv_tokens_line ? g->kv_tokens_line : g->kv_gib.line,
                    (double)c->weights / GIB_F, kv / GIB_F, visible / GIB_F);
  c->kv_bytes = (int64_t)kv;
  c->kv_tokens = g->kv_tokens > 0 ? (uint64_t)g->kv_tokens : 0;
  c->overhead = (int64_t)(visible * c->util - (double)c->weights - kv);
  parts(g, &v, c->eager, c);
  return PS_OK;
}

ps_status ps_vllm_calibration_make(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                                   const char *source, ps_vllm_calibration **out) {
  if (!out || !report || !req || !req->model || !req->vllm_log)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "ps_vllm_calibration_make: a report, a model and a log are needed");
  *out = NULL;
  ps_vllm_calibration *c = ps__calloc(1, sizeof(*c));
  if (!c) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = fill(ctx, report, req, req->vllm_log, c);
  if (st != PS_OK) {
    ps__free(c);
    return st;
  }
  today(c->date, sizeof(c->date));
  const char *src = source && *source ? source : "log";
  if (strcmp(src, "launch") == 0)
    ps__strlcpy(c->source, src, sizeof(c->source));
  else
    snprintf(c->source, sizeof(c->source), "%s %s", src, req->vllm_log->name);
  *out = c;
  return PS_OK;
}

void ps_vllm_calibration_free(ps_vllm_calibration *cal) { ps__free(cal); }

void ps_vllm_calibration_describe(const ps_vllm_calibration *c, char *out, size_t len) {
  if (!out || !len) return;
  if (!c) {
    out[0] = '\0';
    return;
  }
  bool launch = strcmp(c->source, "launch") == 0;
  snprintf(out, len, "measured %s%s on %s (vLLM %s, TP=%d, %s)", launch ? "at launch" : "in ",
           launch ? "" : c->source + (strncmp(c->source, "log ", 4) == 0 ? 4 : 0), c->date,
           c->vllm_version, c->tp, c->gpu_name);
}
