/* Check 5: a GPU's PCIe link running below its maximum generation or width. Width rarely
 * drops at idle, so a narrow link is a real finding; a lower generation alone may be the
 * GPU's idle power saving, and the finding says so. sysfs first, NVML's numbers after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"

#define DCGM_PCIE                                                                                  \
  "https://docs.nvidia.com/datacenter/dcgm/latest/reference/diagnostics/plugins/pcie.html"

/* "16.0 GT/s PCIe" -> 4; 0 when unknown. */
static int speed_gen(const char *s) {
  double gts = strtod(s, NULL);
  if (gts >= 60) return 6;
  if (gts >= 30) return 5;
  if (gts >= 15) return 4;
  if (gts >= 7.5) return 3;
  if (gts >= 4.5) return 2;
  if (gts >= 2) return 1;
  return 0;
}

typedef struct link_reading {
  int gen, width, gen_max, width_max;
  char from[160]; /* where the numbers came from */
} link_reading;

static bool read_sysfs(ps__doctor *d, const char *busid, link_reading *l) {
  static const char *const files[] = {"current_link_speed", "current_link_width", "max_link_speed",
                                      "max_link_width"};
  char sys_id[32], rel[160], path[4096], text[64];
  int v[4];
  if (!d->use_sysfs || !ps__sysfs_busid(busid, sys_id, sizeof(sys_id))) return false;
  for (int i = 0; i < 4; i++) {
    PS_DSET(rel, "/sys/bus/pci/devices/%s/%s", sys_id, files[i]);
    if (!ps__sysfs_path(d, rel, path, sizeof(path)) ||
        !ps__sysfs_read_line(path, text, sizeof(text)))
      return false;
    v[i] = (i % 2 == 0) ? speed_gen(text) : atoi(text);
    if (v[i] <= 0) return false;
  }
  l->gen = v[0], l->width = v[1], l->gen_max = v[2], l->width_max = v[3];
  PS_DSET(l->from, "%s/sys/bus/pci/devices/%s/{current,max}_link_{speed,width}", d->root, sys_id);
  return true;
}

static bool read_nvml(const ps_gpu *g, link_reading *l) {
  if ((g->valid & (PS_GPU_PCIE_CURRENT | PS_GPU_PCIE_MAX)) !=
      (PS_GPU_PCIE_CURRENT | PS_GPU_PCIE_MAX))
    return false;
  l->gen = g->pcie_gen_current, l->width = g->pcie_width_current;
  l->gen_max = g->pcie_gen_max, l->width_max = g->pcie_width_max;
  PS_DSET(l->from, "NVML nvmlDeviceGet{Curr,Max}PcieLink{Generation,Width}");
  return true;
}

void ps__check_pcie_link(ps__doctor *d) {
  const ps_report *r = d->report;
  int read = 0, narrow = 0, slow = 0;
  for (int g = 0; g < r->gpu_count; g++) {
    const ps_gpu *gpu = &r->gpus[g];
    link_reading l;
    memset(&l, 0, sizeof(l));
    if (!((gpu->valid & PS_GPU_PCI_BUS_ID) && read_sysfs(d, gpu->pci_bus_id, &l)) &&
        !read_nvml(gpu, &l))
      continue;
    read++;
    bool width_low = l.width < l.width_max, gen_low = l.gen < l.gen_max;
    if (!width_low && !gen_low) continue;
    if (width_low)
      narrow++;
    else
      slow++;
    ps_finding *f = ps__doctor_add(d, width_low ? PS_SEVERITY_WARNING : PS_SEVERITY_INFO,
                                   width_low ? "pcie-link-narrow" : "pcie-link-slow");
    if (!f) return;
    char label[160];
    f->gpu_a = g;
    PS_DSET(f->title, "GPU %d's PCIe link runs at Gen%d x%d, below its maximum Gen%d x%d%s", g,
            l.gen, l.width, l.gen_max, l.width_max,
            width_low ? "" : " (not conclusive: the GPU may be idle)");
    PS_DSET(f->evidence, "%s: %s: current Gen%d x%d, max Gen%d x%d",
            ps__doctor_gpu_label(r, g, label, sizeof(label)), l.from, l.gen, l.width, l.gen_max,
            l.width_max);
    if (width_low)
      PS_DSET(f->breaks,
              "slow P2P and host copies: x%d carries %d%% of x%d's bandwidth, and "
              "NCCL all-reduce over PCIe slows with it",
              l.width, 100 * l.width / l.width_max, l.width_max);
    else
      PS_DSET(f->breaks, "slow P2P if it stays there under load; idle GPUs lower the PCIe "
                         "generation to save power, so an idle reading proves nothing");
    PS_DSET(f->fix,
            "re-read under load (nvidia-smi -q -d PCIE while peerscope check --refresh "
            "runs); if it stays low: a slot wired x16 (not a chipset x%s slot), reseat "
            "the card or replace the riser, BIOS PCIe slot speed Auto/Gen%d",
            width_low ? "4/x8" : "8", l.gen_max);
    PS_DSET(f->link, "%s", DCGM_PCIE);
  }
  if (read == 0)
    ps__doctor_check(d, "pcie-link", PS_CHECK_NOT_CHECKED,
                     "link speed and width unknown (sysfs and NVML)");
  else if (narrow || slow)
    ps__doctor_check(d, "pcie-link", PS_CHECK_FINDING, "%d GPU%s narrower, %d only slower", narrow,
                     narrow == 1 ? "" : "s", slow);
  else
    ps__doctor_check(d, "pcie-link", PS_CHECK_OK, "%d GPU%s at maximum generation and width", read,
                     read == 1 ? "" : "s");
}
