/* MIG, persistence and display per GPU: NVML facts the report does not hold but the doctor
 * reads, so the fixture carries them and the replayed doctor sees the same answers. */
#include <string.h>

#include "capture/capture_internal.h"
#include "drv/nvml.h"
#include "probe/busid.h"

void ps__capture_nvml_flags(const ps_report *r, const char *driver_dir, int (*flags)[3]) {
  for (int g = 0; g < r->gpu_count; g++)
    flags[g][0] = flags[g][1] = flags[g][2] = -1;
  ps__nvml nvml;
  ps_ctx *quiet = ps_ctx_new(); /* no NVML: the flags stay unknown, not an error */
  if (!quiet) return;
  if (ps__nvml_open(quiet, &nvml, driver_dir) != PS_OK) {
    ps_ctx_free(quiet);
    return;
  }
  ps_ctx_free(quiet);
  ps__nvml_lock();
  unsigned count = 0;
  if (nvml.DeviceGetCount(&count) != NVML_SUCCESS) count = 0;
  for (int g = 0; g < r->gpu_count && (unsigned)g < count; g++) {
    nvmlDevice_t dev = NULL;
    nvmlPciInfo_t pci;
    memset(&pci, 0, sizeof(pci));
    if (nvml.DeviceGetHandleByIndex((unsigned)g, &dev) != NVML_SUCCESS) continue;
    if ((r->gpus[g].valid & PS_GPU_PCI_BUS_ID) &&
        nvml.DeviceGetPciInfo(dev, &pci) == NVML_SUCCESS) {
      pci.busId[sizeof(pci.busId) - 1] = '\0';
      pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
      if (!ps__busid_equal(pci.busId, r->gpus[g].pci_bus_id) &&
          !ps__busid_equal(pci.busIdLegacy, r->gpus[g].pci_bus_id))
        continue;
    }
    unsigned cur = 0, pending = 0;
    nvmlEnableState_t st = NVML_FEATURE_DISABLED;
    if (nvml.DeviceGetMigMode && nvml.DeviceGetMigMode(dev, &cur, &pending) == NVML_SUCCESS)
      flags[g][0] = cur == 1;
    if (nvml.DeviceGetPersistenceMode && nvml.DeviceGetPersistenceMode(dev, &st) == NVML_SUCCESS)
      flags[g][1] = st == NVML_FEATURE_ENABLED;
    if (nvml.DeviceGetDisplayActive && nvml.DeviceGetDisplayActive(dev, &st) == NVML_SUCCESS)
      flags[g][2] = st == NVML_FEATURE_ENABLED;
  }
  ps__nvml_unlock();
  ps__nvml_close(&nvml);
}
