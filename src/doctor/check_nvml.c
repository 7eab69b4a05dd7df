/* Check 8: what only NVML knows: MIG mode, persistence mode, a display on the GPU. All three
 * entry points are optional; a driver without them leaves the check "not checked". */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"
#include "probe/flags.h"

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
  ps__gpu_flags *flags = ps__calloc(r->gpu_count ? (size_t)r->gpu_count : 1, sizeof(*flags));
  char why[PS_ERRBUF_LEN];
  if (!flags) {
    d->oom = true;
    return;
  }
  if (!ps__probe_gpu_flags(r, d->opts ? d->opts->driver_dir : NULL,
                           d->opts ? d->opts->fixture : NULL, flags, why, sizeof(why))) {
    ps__doctor_check(d, "nvml", PS_CHECK_NOT_CHECKED, "NVML unavailable: %s", why);
    ps__free(flags);
    return;
  }
  char mig[128] = "", pers[128] = "", disp[128] = "";
  int g_mig = -1, g_pers = -1, g_disp = -1, read = 0;
  for (int g = 0; g < r->gpu_count; g++) {
    const ps__gpu_flags *fl = &flags[g];
    if (fl->mig < 0 && fl->persistence < 0 && fl->display < 0) continue;
    read++;
    if (fl->mig == 1) list_add(mig, sizeof(mig), g), g_mig = g_mig < 0 ? g : g_mig;
    if (fl->persistence == 0) list_add(pers, sizeof(pers), g), g_pers = g_pers < 0 ? g : g_pers;
    if (fl->display == 1) list_add(disp, sizeof(disp), g), g_disp = g_disp < 0 ? g : g_disp;
  }
  ps__free(flags);
  findings(d, mig, pers, disp, g_mig, g_pers, g_disp);
  if (read == 0)
    ps__doctor_check(
        d, "nvml", PS_CHECK_NOT_CHECKED,
        "the driver reports neither MIG mode, persistence mode nor display state for any GPU");
  else if (mig[0] || pers[0] || disp[0])
    ps__doctor_check(d, "nvml", PS_CHECK_FINDING, "MIG on: %s; persistence off: %s; display: %s",
                     mig[0] ? mig : "none", pers[0] ? pers : "none", disp[0] ? disp : "none");
  else
    ps__doctor_check(d, "nvml", PS_CHECK_OK,
                     "%d GPU%s read: MIG off, persistence on, no display (where supported)", read,
                     read == 1 ? "" : "s");
}
