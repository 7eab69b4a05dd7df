/* The public planner: the caller's request read as far as its size reaches, the plan
 * allocated here (about 50 KB) and released with ps_plan_free. */
#include "core/internal.h"
#include "plan/plan_internal.h"

ps_status ps_plan_make_cluster(ps_ctx *ctx, const ps_report *const *reports, int nodes,
                               const ps_plan_request *req, ps_plan **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_make: out is NULL");
  *out = NULL;
  ps_plan_request r;
  ps_status st = PS__OPTS_IN(ctx, req, &r, "ps_plan_request");
  if (st != PS_OK) return st;
  ps_plan *plan = ps__calloc(1, sizeof(*plan));
  if (!plan) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  if ((st = ps__plan_fill(ctx, reports, nodes, &r, plan)) != PS_OK) {
    ps__free(plan);
    return st;
  }
  *out = plan;
  return PS_OK;
}

ps_status ps_plan_make(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                       ps_plan **out) {
  return ps_plan_make_cluster(ctx, &report, 1, req, out);
}

void ps_plan_free(ps_plan *plan) { ps__free(plan); }
