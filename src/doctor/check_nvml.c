/* Check 8: what only NVML knows: MIG mode, persistence mode, a display on the GPU. All three
 * entry points are optional; a driver without them leaves the check "not checked". */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"
#include "drv/nvml.h"
#include "probe/busid.h"

typedef struct gpu_flags {
  int mig, persistence, display; /* 1/0, -1 unknown */
} gpu_flags;

static void read_flags(const ps__nvml *nvml, nvmlDevice_t dev, gpu_flags *fl) {
  unsigned cur = 0, pending = 0;
  nvmlEnableState_t st = NVML_FEATURE_DISABLED;
  fl->mig = fl->persistence = fl->display = -1;
  if (nvml->DeviceGetMigMode && nvml->DeviceGetMigMode(dev, &cur, &pending) == NVML_SUCCESS)
    fl->mig = cur == 1;
  if (nvml->DeviceGetPersistenceMode && nvml->DeviceGetPersistenceMode(dev, &st) == NVML_SUCCESS)
    fl->persistence = st == NVML_FEATURE_ENABLED;
  if (nvml->DeviceGetDisplayActive && nvml->DeviceGetDisplayActive(dev, &st) == NVML_SUCCESS)
    fl->display = st == NVML_FEATURE_ENABLED;
}

static void list_add(char *list, size_t len, int g) {
  ps__dcat(list, len, "%s%d", list[0] ? "," : "", g);
}

static void findings(ps__doctor *d, const char *mig, const char *pers, const char *disp, int g_mig,
                     int g_pers, int g_disp) {
  ps_finding *f;
  if (mig[0] && (f = ps__doctor_add(d, PS_SEVERITY_WARNING, "mig-enabled"))) {
    f->gpu_a = g_mig;
    PS_DSET(f->title, "MIG mode is on (GPU %s)", mig);
    PS_DSET(f->evidence, "nvmlDeviceGetMigMode: current mode enabled on GPU %s", mig);
    PS_DSET(f->breaks, "no P2P or NVLink between MIG instances, and vLLM cannot run tensor "
                       "parallelism across them: a TP group needs whole GPUs");
    PS_DSET(f->fix,
            "sudo nvidia-smi -i %s -mig 0 (no processes on the GPU; some GPUs need a "
            "reset or reboot after it)",
            mig);
    PS_DSET(f->link, "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/");
  }
  if (disp[0] && (f = ps__doctor_add(d, PS_SEVERITY_WARNING, "display-active"))) {
    f->gpu_a = g_disp;
    PS_DSET(f->title, "A GPU drives a display (GPU %s)", disp);
    PS_DSET(f->evidence, "nvmlDeviceGetDisplayActive: enabled on GPU %s", disp);
    PS_DSET(f->breaks, "patched P2P drivers fail on a GPU that drives a display "
                       "(aikitoria/open-gpu-kernel-modules#8); the desktop also takes memory "
                       "and adds jitter to tensor-parallel steps");
    PS_DSET(f->fix,
            "move the monitor to another GPU or the CPU's graphics, or leave GPU %s out "
            "of the tensor-parallel group (--gpus); on a server: sudo systemctl "
            "set-default multi-user.target",
            disp);
    PS_DSET(f->link, "https://github.com/aikitoria/open-gpu-kernel-modules/issues/8");
  }
  if (pers[0] && (f = ps__doctor_add(d, PS_SEVERITY_INFO, "persistence-off"))) {
    f->gpu_a = g_pers;
    PS_DSET(f->title, "Persistence mode is off (GPU %s)", pers);
    PS_DSET(f->evidence, "nvmlDeviceGetPersistenceMode: disabled on GPU %s", pers);
    PS_DSET(f->breaks, "slow start: the driver tears the GPUs down when the last process exits "
                       "and initialises them again for the next (seconds per GPU)");
    PS_DSET(f->fix, "sudo systemctl enable --now nvidia-persistenced (or sudo nvidia-smi -pm 1, "
                    "lost at reboot)");
    PS_DSET(f->link, "https://docs.nvidia.com/deploy/driver-persistence/index.html");
  }
}

void ps__check_nvml(ps__doctor *d) {
  const ps_report *r = d->report;
  if ((d->opts && d->opts->skip_nvml) || r->source == PS_SOURCE_FILE) {
    ps__doctor_check(d, "nvml", PS_CHECK_NOT_CHECKED, "MIG, persistence and display not read (%s)",
                     r->source == PS_SOURCE_FILE ? "report from a file" : "NVML skipped");
    return;
  }
  ps__nvml nvml;
  ps_ctx *quiet = ps_ctx_new(); /* NVML trouble is a note here, not the caller's error */
  if (!quiet) {
    d->oom = true;
    return;
  }
  if (ps__nvml_open(quiet, &nvml, d->opts ? d->opts->driver_dir : NULL) != PS_OK) {
    ps__doctor_check(d, "nvml", PS_CHECK_NOT_CHECKED, "NVML unavailable: %s", ps_ctx_error(quiet));
    ps_ctx_free(quiet);
    return;
  }
  ps_ctx_free(quiet);
  char mig[128] = "", pers[128] = "", disp[128] = "";
  int g_mig = -1, g_pers = -1, g_disp = -1, read = 0;
  ps__nvml_lock();
  unsigned count = 0;
  if (nvml.DeviceGetCount(&count) != NVML_SUCCESS) count = 0;
  for (int g = 0; g < r->gpu_count && (unsigned)g < count; g++) {
    nvmlDevice_t dev = NULL;
    nvmlPciInfo_t pci;
    memset(&pci, 0, sizeof(pci));
    if (nvml.DeviceGetHandleByIndex((unsigned)g, &dev) != NVML_SUCCESS) continue;
    /* Same GPU as the report's? (a report from another boot could differ) */
    if ((r->gpus[g].valid & PS_GPU_PCI_BUS_ID) &&
        nvml.DeviceGetPciInfo(dev, &pci) == NVML_SUCCESS) {
      pci.busId[sizeof(pci.busId) - 1] = '\0';
      pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
      if (!ps__busid_equal(pci.busId, r->gpus[g].pci_bus_id) &&
          !ps__busid_equal(pci.busIdLegacy, r->gpus[g].pci_bus_id))
        continue;
    }
    gpu_flags fl;
    read_flags(&nvml, dev, &fl);
    if (fl.mig < 0 && fl.persistence < 0 && fl.display < 0) continue;
    read++;
    if (fl.mig == 1) list_add(mig, sizeof(mig), g), g_mig = g_mig < 0 ? g : g_mig;
    if (fl.persistence == 0) list_add(pers, sizeof(pers), g), g_pers = g_pers < 0 ? g : g_pers;
    if (fl.display == 1) list_add(disp, sizeof(disp), g), g_disp = g_disp < 0 ? g : g_disp;
  }
  ps__nvml_unlock();
  ps__nvml_close(&nvml);
  findings(d, mig, pers, disp, g_mig, g_pers, g_disp);
  if (read == 0)
    ps__doctor_check(d, "nvml", PS_CHECK_NOT_CHECKED,
                     "the driver answers none of MIG mode, persistence mode, display active");
  else if (mig[0] || pers[0] || disp[0])
    ps__doctor_check(d, "nvml", PS_CHECK_FINDING, "MIG on: %s; persistence off: %s; display: %s",
                     mig[0] ? mig : "none", pers[0] ? pers : "none", disp[0] ? disp : "none");
  else
    ps__doctor_check(d, "nvml", PS_CHECK_OK,
                     "%d GPU%s read: MIG off, persistence on, no display (where supported)", read,
                     read == 1 ? "" : "s");
}
