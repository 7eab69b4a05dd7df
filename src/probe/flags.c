#include "probe/flags.h"

#include <string.h>

#include "core/busid.h"
#include "core/internal.h"
#include "drv/nvml.h"

static void read_flags(const ps__nvml *nvml, nvmlDevice_t dev, ps__gpu_flags *fl) {
  unsigned cur = 0, pending = 0;
  nvmlEnableState_t st = NVML_FEATURE_DISABLED;
  if (nvml->DeviceGetMigMode && nvml->DeviceGetMigMode(dev, &cur, &pending) == NVML_SUCCESS)
    fl->mig = cur == 1;
  if (nvml->DeviceGetPersistenceMode && nvml->DeviceGetPersistenceMode(dev, &st) == NVML_SUCCESS)
    fl->persistence = st == NVML_FEATURE_ENABLED;
  if (nvml->DeviceGetDisplayActive && nvml->DeviceGetDisplayActive(dev, &st) == NVML_SUCCESS)
    fl->display = st == NVML_FEATURE_ENABLED;
}

/* Same GPU as the report's? (a report from another boot could differ) */
static bool same_gpu(const ps__nvml *nvml, nvmlDevice_t dev, const ps_gpu *gpu) {
  nvmlPciInfo_t pci;
  memset(&pci, 0, sizeof(pci));
  if (!(gpu->valid & PS_GPU_PCI_BUS_ID) || nvml->DeviceGetPciInfo(dev, &pci) != NVML_SUCCESS)
    return true; /* nothing to compare: trust the index */
  pci.busId[sizeof(pci.busId) - 1] = '\0';
  pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
  return ps__busid_equal(pci.busId, gpu->pci_bus_id) ||
         ps__busid_equal(pci.busIdLegacy, gpu->pci_bus_id);
}

bool ps__probe_gpu_flags(const ps_report *r, const char *driver_dir, const char *fixture,
                         ps__gpu_flags *flags, char *why, size_t why_len) {
  for (int g = 0; g < r->gpu_count; g++)
    flags[g].mig = flags[g].persistence = flags[g].display = -1;
  ps__nvml nvml;
  ps_ctx *quiet = ps_ctx_new(); /* NVML trouble is the caller's note, not an error */
  if (!quiet) {
    ps__strlcpy(why, "out of memory", why_len);
    return false;
  }
  bool opened = ps__nvml_open(quiet, &nvml, driver_dir, fixture) == PS_OK;
  ps__strlcpy(why, opened ? "" : ps_ctx_error(quiet), why_len);
  ps_ctx_free(quiet);
  if (!opened) return false;
  ps__nvml_lock();
  unsigned count = 0;
  if (nvml.DeviceGetCount(&count) != NVML_SUCCESS) count = 0;
  for (int g = 0; g < r->gpu_count && (unsigned)g < count; g++) {
    nvmlDevice_t dev = NULL;
    if (nvml.DeviceGetHandleByIndex((unsigned)g, &dev) != NVML_SUCCESS) continue;
    if (same_gpu(&nvml, dev, &r->gpus[g])) read_flags(&nvml, dev, &flags[g]);
  }
  ps__nvml_unlock();
  ps__nvml_close(&nvml);
  return true;
}
