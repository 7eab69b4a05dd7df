/* The plan's figures of vLLM's own accounting (the terms its start-up log prints) and the
 * reasons that explain them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "plan/calibration.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

static double gib(uint64_t b) { return (double)b / PS_GIB; }

/* The KV figure's error band (percent): the model's, measured by tests/cli/test_vllm_corpus.py
 * on the published logs (the worst case but the GGUF one, whose dequantization the model
 * does not know); with measured figures, what two start-ups of one setup differ by. */
#define KV_BAND_MODEL_PCT 2.0
#define KV_BAND_MEASURED_PCT 1.0

ps_status ps__plan_vllm_version(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                                ps__plan_input *in) {
  const char *version = req->vllm_version && *req->vllm_version ? req->vllm_version : NULL;
  if (req->vllm_log) {
    ps_status st = ps_vllm_calibration_make(ctx, report, req, "log", &in->log_cal);
    if (st != PS_OK) return st;
    version = in->log_cal->vllm_version;
  }
  in->cals = req->calibrations;
  in->cal_count = req->calibration_count > 0 ? req->calibration_count : 0;
  ps_status st = ps__vllm_resolve(ctx, version, &in->vllm);
  if (st != PS_OK) return st;
  size_t used = strlen(in->vllm.note);
  if (in->log_cal && req->vllm_log->version_line)
    snprintf(in->vllm.note + used, sizeof(in->vllm.note) - used, ", the version of %.80s",
             req->vllm_log->name);
  else if (version && req->vllm_version_note)
    snprintf(in->vllm.note + used, sizeof(in->vllm.note) - used, ", %.100s",
             req->vllm_version_note);
  return PS_OK;
}

/* Is the requested (or chosen) length, at the requested sequences, inside the band of the
 * KV pool? Then the largest length and sequences that stay outside it. */
static void safe_values(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  p->kv_band_pct = c->cal ? KV_BAND_MEASURED_PCT : KV_BAND_MODEL_PCT;
  /* 0.9-0.11 without FlashInfer sort in the profile: the band covers that install too */
  if (!c->cal && c->mem.without_flashinfer > 0 && c->kv_room[0] > 0)
    p->kv_band_pct += 100.0 * (double)c->mem.without_flashinfer / (double)c->kv_room[0];
  ps__kv_layout l;
  if (!c->feasible || !c->kv_known || c->max_model_len <= 0 ||
      !ps__kv_layout_make(in->model, &in->vllm, c->tp, in->kv_dtype_bytes, in->block_size,
                          c->mem.batched, c->layers[0], &l))
    return;
  uint64_t usable = (uint64_t)((double)c->kv_blocks * (1.0 - p->kv_band_pct / 100.0));
  uint64_t seqs = (uint64_t)in->seqs,
           per = ps__kv_blocks_per_request(&l, (uint64_t)c->max_model_len);
  if (per * seqs <= usable) return;
  uint64_t lo = 0, hi = (uint64_t)c->max_model_len; /* the longest that stays outside */
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (ps__kv_blocks_per_request(&l, mid) * seqs <= usable)
      lo = mid;
    else
      hi = mid - 1;
  }
  p->safe_max_model_len = (int)(lo >= 256 ? lo / 256 * 256 : lo / 16 * 16);
  if (seqs > 1) p->safe_max_num_seqs = (int)(usable / per);
}

static void add_reason(ps_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(ps_plan *p, const char *fmt, ...) {
  if (p->reason_count >= PS_PLAN_MAX_ITEMS) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->reasons[p->reason_count++], sizeof(p->reasons[0]), fmt, ap);
  va_end(ap);
}

void ps__plan_vllm_fill(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  ps__strlcpy(p->vllm_version, in->vllm.version, sizeof(p->vllm_version));
  ps__strlcpy(p->vllm_version_note, in->vllm.note, sizeof(p->vllm_version_note));
  p->visible_bytes = c->visible != UINT64_MAX ? c->visible : 0;
  p->activation_bytes = c->mem.activation;
  p->non_torch_bytes = c->mem.non_torch;
  p->graphs_bytes = c->mem.graphs;
  static const char *const encoder_kinds[] = {"", "modelled", "estimated", "unmodelled"};
  p->encoder_profile_bytes = c->mem.encoder_bytes;
  ps__strlcpy(p->encoder_profile, encoder_kinds[c->mem.encoder.kind], sizeof(p->encoder_profile));
  p->max_num_batched_tokens = c->mem.batched;
  p->block_size = c->block_size;
  p->kv_groups = c->kv_groups;
  p->kv_blocks = c->kv_blocks;
  p->kv_group_tokens = c->kv_blocks * (uint64_t)c->block_size;
  p->max_concurrency = c->max_concurrency;
  if (c->kv_known) ps__vllm_error_band(&in->vllm, p->error_band, sizeof(p->error_band));
  ps_vllm_calibration_describe(c->cal, p->calibration, sizeof(p->calibration));
  safe_values(in, c, p);
}

/* Multimodal models: vLLM profiles the vision encoder before the text forward
 * (docs/vllm-memory.md, "The multimodal encoder profile"). */
static void encoder_reason(const ps__candidate *c, ps_plan *p) {
  const ps__encoder_profile *e = &c->mem.encoder;
  const char *avoid = "text-only serving skips it with --limit-mm-per-prompt "
                      "'{\"image\":0,\"video\":0}'; peerscope plan --vllm-log FILE measures it";
  if (e->kind == PS__ENCODER_UNMODELLED)
    add_reason(p,
               "multimodal: vLLM profiles the vision encoder first and this tower is not "
               "modelled, so the KV figure may be high; %s",
               avoid);
  else if (e->kind != PS__ENCODER_NONE)
    add_reason(p,
               "multimodal: the encoder profile (%d %s%s of %d tokens: run %.2f GiB, outputs "
               "held %.2f GiB) adds %.2f GiB to the activation peak%s; %s",
               e->items, e->video ? "video" : "image", e->items == 1 ? "" : "s", e->tokens_per_item,
               gib(e->run), gib(e->held), gib(c->mem.encoder_bytes),
               e->kind == PS__ENCODER_ESTIMATED
                   ? " (at this max-model-len vLLM may profile a longer video instead: higher)"
                   : "",
               avoid);
}

void ps__plan_vllm_reasons(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  add_reason(p, "%s", in->vllm.note);
  const char *graphs = !in->vllm.rules->graphs_first ? "captured after the KV cache is sized"
                       : in->eager                   ? "none (--enforce-eager)"
                                                     : "estimated and subtracted first";
  add_reason(p,
             "overhead per GPU %.2f GiB = activation peak %.2f (profile run of %d tokens) + "
             "non-torch %.2f + CUDA graphs %.2f (%s); budget from the CUDA-visible %.2f GiB",
             gib(c->overhead), gib(c->mem.activation), c->mem.batched, gib(c->mem.non_torch),
             gib(c->mem.graphs), graphs, gib(p->visible_bytes));
  if (c->mem.without_flashinfer > 0 && !c->cal)
    add_reason(p,
               "profile's sampler: FlashInfer assumed (vLLM's Docker image); a pip install of "
               "vLLM %s without flashinfer sorts: activation +%.2f GiB, ~%.0f%% fewer KV tokens "
               "(--vllm-log measures it)",
               in->vllm.version, gib(c->mem.without_flashinfer),
               c->kv_room[0] > 0 ? 100.0 * (double)c->mem.without_flashinfer / (double)c->kv_room[0]
                                 : 0.0);
  encoder_reason(c, p);
  if (c->cal)
    add_reason(p,
               "weights, overhead%s %s; the model's difference between those settings and "
               "this plan's is added",
               c->cal->visible ? " and the CUDA-visible total" : "", p->calibration);
  if (p->safe_max_model_len > 0 || p->safe_max_num_seqs > 0) {
    char seqs[64] = "";
    if (p->safe_max_num_seqs > 0)
      snprintf(seqs, sizeof(seqs), ", or %d sequences at this length", p->safe_max_num_seqs);
    add_reason(p,
               "max-model-len %d x %d sequence%s is within %.0f%% of the KV pool: vLLM may "
               "refuse; %d is safe%s",
               c->max_model_len, in->seqs, in->seqs == 1 ? "" : "s", p->kv_band_pct,
               p->safe_max_model_len, seqs);
  }
}
