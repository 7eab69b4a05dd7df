/* The plan's figures of vLLM's own accounting (the terms its start-up log prints) and the
 * reasons that explain them. */
#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

static double gib(uint64_t b) { return (double)b / PS_GIB; }

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
  p->max_num_batched_tokens = c->mem.batched;
  p->block_size = c->block_size;
  p->kv_groups = c->kv_groups;
  p->kv_blocks = c->kv_blocks;
  p->kv_group_tokens = c->kv_blocks * (uint64_t)c->block_size;
  p->max_concurrency = c->max_concurrency;
  if (c->kv_known) ps__vllm_error_band(&in->vllm, p->error_band, sizeof(p->error_band));
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
}
