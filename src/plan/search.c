/* The search over nodes: (TP, PP) candidates on 1, 2, ... nodes until one count holds the
 * model (vLLM's advice: several nodes only for a model one node cannot hold). */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

static ps__candidate *cand_add(ps__cand_list *l) {
  if (l->count == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    ps__candidate *grown = ps__realloc(l->c, (size_t)cap * sizeof(*grown));
    if (!grown) return NULL;
    l->c = grown;
    l->cap = cap;
  }
  return &l->c[l->count++];
}

/* Candidates over the first `span` nodes of in->order; false when out of memory. Over several
 * nodes a free choice takes whole nodes, TP x stages = the GPUs each gives (vLLM's advice);
 * a requested TP or PP may leave GPUs idle. A plan's ranks stay within PS_PLAN_MAX_GPUS. */
static bool add_span(const ps__plan_input *in, const ps_plan_request *req, int span,
                     ps__cand_list *l) {
  int n = in->span_gpus[span];
  if (n > PS_PLAN_MAX_GPUS / span) n = PS_PLAN_MAX_GPUS / span;
  bool free_choice = req->tp <= 0 && req->pp <= 0;
  for (int tp = 1; tp <= n; tp++)
    for (int stages = 1; tp * stages <= n; stages++) { /* stages per node */
      int pp = stages * span;
      if (span > 1 && free_choice && tp * stages != n) continue;
      if ((req->tp > 0 && tp != req->tp) || (req->pp > 0 && pp != req->pp)) continue;
      ps__candidate *c = cand_add(l);
      if (!c) return false;
      ps__candidate_build(in, in->order, span, tp, pp, c);
      c->objective = in->objective;
    }
  return true;
}

/* Whether a candidate from `from` on is feasible (and, with full, holds the whole context). */
static bool any_fits(const ps__cand_list *l, int from, bool full) {
  for (int i = from; i < l->count; i++)
    if (l->c[i].feasible && (!full || l->c[i].full_context)) return true;
  return false;
}

/* 1, 2, ... nodes until one count holds the model; one more when that one cuts the context
 * short (to say what more nodes would give). */
bool ps__plan_search(const ps__plan_input *in, const ps_plan_request *req, ps__cand_list *l) {
  int found = 0;
  for (int span = 1; span <= in->nodes && span <= PS_PLAN_MAX_GPUS; span++) {
    if (in->span_gpus[span] == 0) break; /* the nodes left have no usable GPU */
    int from = l->count;
    if (!add_span(in, req, span, l)) return false;
    if (found) break;
    if (any_fits(l, from, false)) {
      found = span;
      if (any_fits(l, from, true)) break;
    }
  }
  return true;
}

/* The chosen plan cuts the context short where more nodes would hold all of it: say so. */
void ps__plan_note_more_nodes(const ps__cand_list *l, const ps__candidate *best, ps_plan *p) {
  if (!best->feasible || best->full_context) return;
  for (int i = 1; i < l->count; i++) {
    const ps__candidate *c = &l->c[i];
    if (c->feasible && c->full_context && c->span > best->span) {
      ps__plan_reason(p,
                      "%d nodes would hold the whole context of %d tokens (TP=%d PP=%d over "
                      "Ray); give --max-model-len %d to plan that",
                      c->span, c->max_model_len, c->tp, c->pp, c->max_model_len);
      return;
    }
  }
}
