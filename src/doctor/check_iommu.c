/* Check 2: the IOMMU in translated (DMA) mode rather than passthrough. Every peer-to-peer
 * write then goes through address translation at the root complex: known to corrupt
 * (pytorch#84803) or slow P2P. Evidence, best first: the GPU's iommu_group/type, then
 * /sys/class/iommu and the kernel command line. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"

static bool cmdline_has(const char *cmdline, const char *word) {
  size_t n = strlen(word);
  for (const char *p = cmdline; (p = strstr(p, word)) != NULL; p += n)
    if ((p == cmdline || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
  return false;
}

/* The first entry of /sys/class/iommu ("dmar0", "ivhd0"), "" when none. */
static bool iommu_units(const ps__doctor *d, char *first, size_t len, int *count) {
  char path[4096];
  first[0] = '\0';
  *count = 0;
  if (!ps__sysfs_list_path(d, "/sys/class/iommu", path, sizeof(path))) return false;
  DIR *dir = opendir(path);
  if (!dir) return false;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (!first[0] || strcmp(e->d_name, first) < 0) ps__strlcpy(first, e->d_name, len);
    (*count)++;
  }
  closedir(dir);
  return true;
}

static void add_finding(ps__doctor *d, const char *evidence, bool failed_pairs, bool amd) {
  ps_finding *f =
      ps__doctor_add(d, failed_pairs ? PS_SEVERITY_ERROR : PS_SEVERITY_WARNING, "iommu-translated");
  if (!f) return;
  PS_DSET(f->title, "The IOMMU translates GPU DMA (not passthrough)%s",
          failed_pairs ? ": the likely cause of the failed transfers" : "");
  PS_DSET(f->evidence, "%s", evidence);
  PS_DSET(f->breaks, "peer-to-peer writes go through IOMMU translation at the root complex: "
                     "silent corruption (zeros or garbage, pytorch#84803) or slow P2P, and NCCL "
                     "hangs (vllm#51513)");
  PS_DSET(f->fix,
          "add iommu=pt to the kernel command line (%s): in /etc/default/grub append it to "
          "GRUB_CMDLINE_LINUX, then sudo update-grub (or grub2-mkconfig -o "
          "/boot/grub2/grub.cfg) and reboot; or disable the IOMMU (%s) in the BIOS if nothing "
          "needs it (VFIO passthrough does)",
          amd ? "AMD: amd_iommu=on iommu=pt" : "Intel: intel_iommu=on iommu=pt",
          amd ? "AMD-Vi / IOMMU" : "VT-d");
  PS_DSET(f->link, "%s", PS_DOC_NCCL_ACS);
}

/* Per GPU: the kernel's own word on its DMA domain (iommu_group/type). */
typedef struct gpu_domains {
  int translated, identity; /* GPUs in a DMA (translated) or identity (passthrough) domain */
  int first;                /* the first translated GPU, -1 if none */
  char first_type[64];
} gpu_domains;

static void count_domains(ps__doctor *d, gpu_domains *out) {
  const ps_report *r = d->report;
  char path[4096], type[64];
  memset(out, 0, sizeof(*out));
  out->first = -1;
  for (int g = 0; g < r->gpu_count; g++) {
    char sys_id[32], rel[128];
    if (!(r->gpus[g].valid & PS_GPU_PCI_BUS_ID) ||
        !ps__sysfs_busid(r->gpus[g].pci_bus_id, sys_id, sizeof(sys_id)))
      continue;
    PS_DSET(rel, "/sys/bus/pci/devices/%s/iommu_group/type", sys_id);
    if (!ps__sysfs_path(d, rel, path, sizeof(path)) ||
        !ps__sysfs_read_line(path, type, sizeof(type)))
      continue;
    if (strcmp(type, "identity") == 0) {
      out->identity++;
    } else if (strncmp(type, "DMA", 3) == 0) {
      out->translated++;
      if (out->first < 0)
        out->first = g, ps__strlcpy(out->first_type, type, sizeof(out->first_type));
    }
  }
}

void ps__check_iommu(ps__doctor *d) {
  const ps_report *r = d->report;
  if (!d->use_sysfs) {
    ps__doctor_check(d, "iommu", PS_CHECK_NOT_CHECKED,
                     "the GPUs are a fixture's or a file's, not this machine's; --sysfs-root DIR "
                     "reads a recorded /sys");
    return;
  }
  char cmdline[4096] = "", path[4096], unit[64];
  int units = 0;
  bool have_cmdline = ps__sysfs_path(d, "/proc/cmdline", path, sizeof(path)) &&
                      ps__sysfs_read_line(path, cmdline, sizeof(cmdline));
  bool have_class = iommu_units(d, unit, sizeof(unit), &units);
  bool amd = strncmp(unit, "ivhd", 4) == 0 || strstr(cmdline, "amd_iommu") != NULL;
  bool failed = false;
  for (int i = 0; i < r->pair_count; i++)
    if (r->pairs[i].link != PS_LINK_NVLINK && ps__doctor_pair_failed(&r->pairs[i])) failed = true;

  gpu_domains dom;
  count_domains(d, &dom);
  int translated = dom.translated, identity = dom.identity, first = dom.first;
  const char *first_type = dom.first_type;
  bool pt = cmdline_has(cmdline, "iommu=pt") || cmdline_has(cmdline, "iommu.passthrough=1");
  char evidence[1024];
  if (translated) {
    char sys_id[32];
    ps__sysfs_busid(r->gpus[first].pci_bus_id, sys_id, sizeof(sys_id));
    PS_DSET(evidence,
            "%s/sys/bus/pci/devices/%s/iommu_group/type = %s (GPU %d; %d of %d GPUs "
            "translated, identity would be passthrough); /proc/cmdline %s iommu=pt",
            d->root, sys_id, first_type, first, translated, translated + identity,
            pt ? "has" : "lacks");
    add_finding(d, evidence, failed, amd);
    ps__doctor_check(d, "iommu", PS_CHECK_FINDING, "translated (%s) for %d GPU%s", first_type,
                     translated, translated == 1 ? "" : "s");
    return;
  }
  if (identity) {
    ps__doctor_check(d, "iommu", PS_CHECK_OK, "passthrough: iommu_group type identity for %d GPU%s",
                     identity, identity == 1 ? "" : "s");
    return;
  }
  if (have_class && units == 0) {
    ps__doctor_check(d, "iommu", PS_CHECK_OK, "no IOMMU active (/sys/class/iommu is empty)");
    return;
  }
  if (!have_class && !have_cmdline) {
    ps__doctor_check(d, "iommu", PS_CHECK_NOT_CHECKED,
                     "neither /sys/class/iommu nor /proc/cmdline readable");
    return;
  }
  if (!have_class) {
    ps__doctor_check(d, "iommu", PS_CHECK_OK, "no /sys/class/iommu: no IOMMU driver");
    return;
  }
  if (pt || cmdline_has(cmdline, "iommu=off") || cmdline_has(cmdline, "intel_iommu=off") ||
      cmdline_has(cmdline, "amd_iommu=off")) {
    ps__doctor_check(d, "iommu", PS_CHECK_OK, "%d IOMMU unit%s (%s...), kernel command line: %s",
                     units, units == 1 ? "" : "s", unit, pt ? "iommu=pt" : "IOMMU off");
    return;
  }
  snprintf(
      evidence, sizeof(evidence),
      "%s/sys/class/iommu has %d unit%s (%s...) and /proc/cmdline has no iommu=pt (\"%.200s\"); "
      "the GPUs' iommu_group/type was not readable",
      d->root, units, units == 1 ? "" : "s", unit, cmdline);
  add_finding(d, evidence, failed, amd);
  ps__doctor_check(d, "iommu", PS_CHECK_FINDING, "translated (from /sys/class/iommu and cmdline)");
}
