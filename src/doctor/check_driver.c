/* Check 4: the driver. Consumer GPUs the driver refuses P2P to (CNS/GNS), BAR1 smaller than
 * VRAM (what patched P2P drivers need), and the kernel module: open or proprietary, and
 * whether its version matches the user-space library's. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)
#define P2P_DRIVER "https://github.com/tinygrad/open-gpu-kernel-modules"
#define REBAR_DOC                                                                                  \
  "https://www.nvidia.com/en-us/geforce/news/geforce-rtx-30-series-resizable-bar-support/"

/* "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build ..." */
static void parse_module(const char *line, bool *open, char *version, size_t len) {
  *open = strstr(line, "Open Kernel Module") != NULL;
  version[0] = '\0';
  const char *m = strstr(line, "Module");
  for (const char *p = m ? m : line; *p; p++) {
    if (!isdigit((unsigned char)*p) || (p > line && !isspace((unsigned char)p[-1]))) continue;
    size_t n = strspn(p, "0123456789.");
    if (n < 3 || !memchr(p, '.', n) || n >= len) continue;
    memcpy(version, p, n);
    version[n] = '\0';
    return;
  }
}

static bool refused(ps_claim c) { return c == PS_CLAIM_CNS || c == PS_CLAIM_GNS; }

static void consumer(ps__doctor *d, const char *module) {
  const ps_report *r = d->report;
  int pairs = 0, fa = -1, fb = -1;
  char list[256] = "";
  ps_claim first = PS_CLAIM_UNKNOWN;
  for (int a = 0; a < r->gpu_count; a++)
    for (int b = a + 1; b < r->gpu_count; b++) {
      const ps_pair *p = ps_report_pair(r, a, b);
      if (!p || !(p->valid & PS_PAIR_CLAIMS) || !refused(p->claim_read)) continue;
      if (pairs++ == 0) fa = a, fb = b, first = p->claim_read;
      if (pairs <= 6) PS_DCAT(list, "%sGPU %d-GPU %d", list[0] ? ", " : "", a, b);
    }
  if (pairs) {
    ps_finding *f = ps__doctor_add(d, PS_SEVERITY_WARNING, "p2p-refused-by-driver");
    if (!f) return;
    f->gpu_a = fa;
    f->gpu_b = fb;
    PS_DSET(f->title, "The driver refuses peer-to-peer for %d GPU pair%s (%s: %s)", pairs,
            pairs == 1 ? "" : "s", ps_claim_name(first),
            first == PS_CLAIM_CNS ? "chipset not supported" : "GPU not supported");
    PS_DSET(f->evidence, "nvmlDeviceGetP2PStatus(READ) = %s for %s%s; GPU %d is %s; %s",
            ps_claim_name(first), list, pairs > 6 ? ", ..." : "", fa,
            (r->gpus[fa].valid & PS_GPU_NAME) ? r->gpus[fa].name : "n/a", module);
    PS_DSET(f->breaks, "no P2P: NCCL moves tensors through host shared memory (slower "
                       "all-reduce) and vLLM turns its custom all-reduce off; tensor "
                       "parallelism still works");
    PS_DSET(f->fix,
            "nothing to repair for correctness (peerscope plan uses NCCL without P2P). For P2P "
            "on GeForce: a community-patched open kernel module (" P2P_DRIVER ")%s with "
            "Resizable BAR on, iommu=pt and ACS off; or an NVLink bridge where the cards have "
            "one (RTX 3090)",
            strstr(module, "proprietary") ? ", which replaces the proprietary module this "
                                            "machine runs,"
                                          : "");
    PS_DSET(f->link, "%s", P2P_DRIVER);
  }
  /* BAR1 matters where P2P must come from a patched driver: it maps all of VRAM in BAR1. */
  int small = 0, g0 = -1;
  char glist[384] = "";
  for (int g = 0; g < r->gpu_count && pairs; g++) {
    const ps_gpu *gpu = &r->gpus[g];
    if (!(gpu->valid & PS_GPU_BAR1) || !(gpu->valid & PS_GPU_MEMORY_TOTAL) ||
        gpu->bar1_total_bytes >= gpu->memory_total_bytes)
      continue;
    if (small++ == 0) g0 = g;
    PS_DCAT(glist, "%sGPU %d BAR1 %.0f MiB < VRAM %.1f GiB", glist[0] ? "; " : "", g,
            (double)gpu->bar1_total_bytes / MIB, (double)gpu->memory_total_bytes / GIB);
  }
  if (small) {
    ps_finding *f = ps__doctor_add(d, PS_SEVERITY_WARNING, "bar1-small");
    if (!f) return;
    f->gpu_a = g0;
    PS_DSET(f->title, "BAR1 is smaller than VRAM on %d GPU%s: Resizable BAR is off", small,
            small == 1 ? "" : "s");
    PS_DSET(f->evidence, "nvmlDeviceGetBAR1MemoryInfo: %s", glist);
    PS_DSET(f->breaks, "patched P2P drivers need all of VRAM mapped in BAR1: without it P2P "
                       "fails (cudaErrorMapBufferObjectFailed) or stays off");
    PS_DSET(f->fix, "BIOS: enable 'Above 4G Decoding' and 'Re-Size BAR Support' (Resizable "
                    "BAR), disable CSM; then nvidia-smi -q -d MEMORY shows BAR1 Total >= VRAM");
    PS_DSET(f->link, "%s", REBAR_DOC);
  }
}

void ps__check_driver(ps__doctor *d) {
  const ps_report *r = d->report;
  char path[4096], line[512] = "", version[64] = "", module[256] = "kernel module not read";
  bool open = false, have = false;
  if (d->use_sysfs && ps__sysfs_path(d, "/proc/driver/nvidia/version", path, sizeof(path)) &&
      ps__sysfs_read_line(path, line, sizeof(line))) {
    parse_module(line, &open, version, sizeof(version));
    have = true;
    PS_DSET(module, "%s kernel module %s (/proc/driver/nvidia/version)",
            open ? "open" : "proprietary", version[0] ? version : "of unknown version");
  }
  int before = d->res->count;
  consumer(d, module);
  if (have && version[0] && r->driver_version[0] && strcmp(version, r->driver_version) != 0) {
    ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "driver-version-mismatch");
    if (f) {
      PS_DSET(f->title, "Kernel module %s and driver library %s differ", version,
              r->driver_version);
      PS_DSET(f->evidence, "%s/proc/driver/nvidia/version: \"%.200s\"; NVML driver version %s",
              d->root, line, r->driver_version);
      PS_DSET(f->breaks, "CUDA and NVML calls fail or misbehave (\"Driver/library version "
                         "mismatch\"); verification results are not trustworthy");
      PS_DSET(f->fix, "reboot (a driver upgrade left the old module loaded), or reinstall one "
                      "driver version: sudo apt install --reinstall nvidia-driver-<version>");
      PS_DSET(f->link, "https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/");
    }
  }
  bool found = d->res->count > before;
  if (have)
    ps__doctor_check(d, "driver", found ? PS_CHECK_FINDING : PS_CHECK_OK, "%s kernel module %s%s",
                     open ? "open" : "proprietary", version[0] ? version : "(version unknown)",
                     r->driver_version[0] ? "" : ", NVML driver version unknown");
  else
    ps__doctor_check(d, "driver", found ? PS_CHECK_FINDING : PS_CHECK_OK,
                     "driver %s; kernel module not read (%s)",
                     r->driver_version[0] ? r->driver_version : "version unknown",
                     d->use_sysfs ? "no /proc/driver/nvidia/version" : "fixture or file");
}
