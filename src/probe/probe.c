/* ps_probe: everything NVML can tell without touching CUDA. Safe in any process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "probe/probe_internal.h"
#include "report/report_internal.h"

/* A GPU count beyond this is a driver bug or a fake gone wrong, not a machine. */
#define PS_PROBE_MAX_GPUS PS_REPORT_MAX_GPUS

static void read_first_line(const char *path, char *out, size_t out_len) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(out, (int)out_len, f)) out[strcspn(out, "\r\n")] = '\0';
  fclose(f);
}

static void read_host(const ps__nvml *nvml, ps_report *report) {
  if (gethostname(report->hostname, sizeof(report->hostname)) != 0) report->hostname[0] = '\0';
  report->hostname[sizeof(report->hostname) - 1] = '\0';
  read_first_line("/proc/sys/kernel/random/boot_id", report->boot_id, sizeof(report->boot_id));
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  ps__strlcpy(report->cuda_visible_devices, visible ? visible : "",
              sizeof(report->cuda_visible_devices));

  if (nvml->SystemGetDriverVersion &&
      nvml->SystemGetDriverVersion(report->driver_version, sizeof(report->driver_version)) !=
          NVML_SUCCESS)
    report->driver_version[0] = '\0';
  if (nvml->SystemGetNVMLVersion &&
      nvml->SystemGetNVMLVersion(report->nvml_version, sizeof(report->nvml_version)) !=
          NVML_SUCCESS)
    report->nvml_version[0] = '\0';
  int cuda_version = 0;
  if (nvml->SystemGetCudaDriverVersion &&
      nvml->SystemGetCudaDriverVersion(&cuda_version) == NVML_SUCCESS)
    report->cuda_driver_version = cuda_version;

  if (nvml->fake_fixture) {
    report->source = PS_SOURCE_FIXTURE;
    ps__strlcpy(report->origin, nvml->fake_fixture, sizeof(report->origin));
    ps__strlcpy(report->machine, nvml->fake_machine ? nvml->fake_machine : "",
                sizeof(report->machine));
  } else {
    report->source = PS_SOURCE_LIVE;
    ps__strlcpy(report->machine, report->hostname, sizeof(report->machine));
  }
}

ps_status ps_probe(ps_ctx *ctx, const ps_probe_opts *opts, ps_report **out) {
  ps__nvml nvml;
  ps_report *report = NULL;
  nvmlDevice_t *handles = NULL;
  ps_status st;
  double t0 = ps__now_ms();
  *out = NULL;
  ps_probe_opts o;
  if ((st = PS__OPTS_IN(ctx, opts, &o, "ps_probe_opts")) != PS_OK) return st;

  st = ps__nvml_open(ctx, &nvml, o.driver_dir, o.fixture);
  if (st != PS_OK) return st;
  double t_init = ps__now_ms();

  ps__nvml_lock();
  unsigned count = 0;
  nvmlReturn_t rc = nvml.DeviceGetCount(&count);
  if (rc != NVML_SUCCESS) {
    st = ps__fail(ctx, PS_ERR_DRIVER, "nvmlDeviceGetCount failed: %s", ps__nvml_error(&nvml, rc));
    goto out;
  }
  if (count > PS_PROBE_MAX_GPUS) {
    st = ps__fail(ctx, PS_ERR_DRIVER, "NVML reports %u GPUs; peerscope handles at most %d", count,
                  PS_PROBE_MAX_GPUS);
    goto out;
  }
  report = ps__report_new((int)count);
  handles = ps__calloc(count ? count : 1, sizeof(*handles));
  if (!report || !handles) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory for %u GPUs", count);
    goto out;
  }
  read_host(&nvml, report);
  for (unsigned g = 0; g < count; g++)
    ps__probe_gpu(&nvml, (int)g, &report->gpus[g], &handles[g]);
  ps__probe_links(&nvml, report, handles);

  report->timings.driver_init_ms = t_init - t0;
  report->timings.probe_ms = ps__now_ms() - t_init;
  *out = report;
  report = NULL; /* now the caller's */
  st = PS_OK;
out:
  ps__nvml_unlock();
  ps__nvml_close(&nvml);
  ps__free(handles);
  ps_report_free(report);
  return st;
}
