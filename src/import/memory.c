/* ps_report_set_gpu_memory: total memory in GiB for GPUs an import left unknown. */
#include <math.h>
#include <stdint.h>

#include "core/internal.h"

ps_status ps_report_set_gpu_memory(ps_ctx *ctx, ps_report *report, const double *gib, int count) {
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_set_gpu_memory: no report");
  if (count != 1 && count != report->gpu_count)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "%d memory sizes for %d GPUs: give one for all GPUs, or one per GPU", count,
                    report->gpu_count);
  if (count > 0 && !gib)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_set_gpu_memory: no sizes");
  /* Checked before any is set, so a bad list changes nothing. */
  for (int i = 0; i < count; i++)
    if (!isfinite(gib[i]) || gib[i] <= 0 || gib[i] * 1073741824.0 >= 9.2e18)
      return ps__fail(ctx, PS_ERR_INVALID_ARG,
                      "GPU memory size %g GiB%s is not a size (expected a number > 0)", gib[i],
                      count > 1 ? " (one of the per-GPU sizes)" : "");
  for (int g = 0; g < report->gpu_count; g++) {
    double value = gib[count == 1 ? 0 : g];
    report->gpus[g].memory_total_bytes = (uint64_t)(value * 1073741824.0 + 0.5); /* no libm */
    report->gpus[g].valid |= PS_GPU_MEMORY_TOTAL;
  }
  return PS_OK;
}
