/* A plan on measured figures (docs/vllm-memory.md, "Calibration"): the record of the same
 * model, GPU type, TP and vLLM version replaces the model's weights, visible total and
 * overhead. Where the plan's settings differ from the record's (another max_model_len,
 * max_num_batched_tokens, eager or not), the model's own difference between the two is
 * added, so only what the model cannot know is taken from the log. */
#include <string.h>

#include "core/internal.h"
#include "plan/calibration.h"
#include "plan/candidates.h"

static bool same_version(const char *a, const char *b) {
  if (*a == 'v' || *a == 'V') a++;
  if (*b == 'v' || *b == 'V') b++;
  return strcmp(a, b) == 0;
}

static bool matches(const ps__plan_input *in, const ps_vllm_calibration *c, int tp,
                    const char *gpu_name) {
  return c && c->tp == tp && strcmp(c->gpu_name, gpu_name) == 0 &&
         strcmp(c->model, in->model->name) == 0 && same_version(c->vllm_version, in->vllm.version);
}

const ps_vllm_calibration *ps__calibration_find(const ps__plan_input *in, int tp, int pp,
                                                const char *gpu_name) {
  if (pp != 1 || in->nodes != 1 || !gpu_name) return NULL; /* measured on one node, one stage */
  if (matches(in, in->log_cal, tp, gpu_name)) return in->log_cal;
  const ps_vllm_calibration *best = NULL;
  for (int i = 0; i < in->cal_count; i++) {
    const ps_vllm_calibration *c = in->cals[i];
    if (matches(in, c, tp, gpu_name) && (!best || strcmp(c->date, best->date) >= 0)) best = c;
  }
  return best;
}

static uint64_t moved(uint64_t measured, uint64_t plan, uint64_t then) {
  int64_t v = (int64_t)measured + (int64_t)plan - (int64_t)then;
  return v > 0 ? (uint64_t)v : 0;
}

void ps__calibration_apply(const ps__plan_input *in, const ps_vllm_calibration *cal,
                           ps__candidate *c) {
  const char *gpu = in->reports[c->node[0]]->gpus[c->gpus[0]].name;
  if (cal->visible) {
    c->visible = cal->visible;
    if (!c->free_limited) {
      double b = (double)cal->visible * in->util - in->reserve_bytes;
      c->budget[0] = b > 0 ? (uint64_t)b : 0;
    }
  }
  /* the model at the record's settings, against the model at the plan's (c->mem) */
  ps__vllm_setup then = {&in->vllm, c->tp, cal->max_model_len, cal->batched, cal->eager, c->visible,
                         gpu,       0 /* the record keeps no max_num_seqs */};
  ps__vllm_memory m0;
  ps__vllm_memory_make(in->model, &then, &m0);
  int64_t delta = (int64_t)(c->mem.activation + c->mem.non_torch + c->mem.graphs) -
                  (int64_t)(m0.activation + m0.non_torch + m0.graphs);
  int64_t overhead = cal->overhead + delta;
  if (overhead < 0) overhead = 0;
  if (cal->parts) {
    c->mem.activation = moved(cal->activation, c->mem.activation, m0.activation);
    c->mem.non_torch = moved(cal->non_torch, c->mem.non_torch, m0.non_torch);
    c->mem.graphs = moved(cal->graphs, c->mem.graphs, m0.graphs);
  }
  /* what the printed parts leave over (their rounding, or the parts not printed) is put on
   * the activation peak, the term the model knows least */
  uint64_t total = (uint64_t)overhead, rest = c->mem.non_torch + c->mem.graphs;
  if (total >= rest) {
    c->mem.activation = total - rest;
  } else { /* measured below the model's non-torch and graphs: those shrink instead */
    c->mem.activation = 0;
    if (c->mem.graphs > total) c->mem.graphs = total;
    c->mem.non_torch = total - c->mem.graphs;
  }
  c->overhead = total;
  c->cal = cal;
}
