/* What the plan request borrows beyond the fields (docs/vllm-memory.md, "Calibration"): the
 * start-up log the vllm_log field names, the records of earlier start-ups from the cache, and,
 * when no vllm_version is given, the version of the vLLM that launch would run. */
#include <string.h>

#include "core/internal.h"
#include "plan/request_internal.h"

ps_status ps__input_measured(ps_ctx *ctx, ps_plan_input *in, ps_plan_request *req) {
  if (!in->measured_loaded) {
    int f = ps__field_index("vllm_log");
    if (in->given[f] && !in->log) {
      ps_status st = ps_vllm_log_load(ctx, in->str[f], &in->log);
      if (st != PS_OK) return st;
    }
    ps_vllm_calibration_load(NULL, NULL, &in->cals, &in->cal_count); /* none on any error */
    if (!in->given[ps__field_index("vllm_version")])
      ps_vllm_installed_version(NULL, in->installed, sizeof(in->installed), in->installed_why,
                                sizeof(in->installed_why));
    in->measured_loaded = true;
  }
  req->vllm_log = in->log;
  req->calibrations = (const ps_vllm_calibration *const *)in->cals;
  req->calibration_count = in->cal_count;
  if (!req->vllm_version && in->installed[0]) {
    req->vllm_version = in->installed;
    req->vllm_version_note = in->installed_why;
  }
  return PS_OK;
}

void ps__input_measured_free(ps_plan_input *in) {
  ps_vllm_log_free(in->log);
  ps_vllm_calibrations_free(in->cals, in->cal_count);
  in->log = NULL;
  in->cals = NULL;
  in->cal_count = 0;
  in->measured_loaded = false;
}
