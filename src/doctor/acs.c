/* Check 1: PCIe Access Control Services on the bridges between two GPUs. Redirect bits send
 * every peer-to-peer request up to the root complex, where it is slow, blocked or (with a
 * translating IOMMU) dropped: the usual cause of NCCL hangs on PCIe P2P. */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"

#define ECAP_START 0x100
#define ECAP_ACS 0x000D
#define CONFIG_SPACE 4096
#define MAX_BRIDGES 128

ps__acs_status ps__acs_find(const uint8_t *config, size_t len, unsigned *cap_offset,
                            uint16_t *ctl) {
  if (len < ECAP_START + 4) return PS_ACS_SHORT;
  if (len > CONFIG_SPACE) len = CONFIG_SPACE;
  unsigned off = ECAP_START;
  /* Each capability takes at least 4 bytes of 3840: more steps than that is a loop. */
  for (int steps = 0; steps < (CONFIG_SPACE - ECAP_START) / 4; steps++) {
    if (off < ECAP_START || off + 4 > len) return PS_ACS_MALFORMED;
    uint32_t hdr = (uint32_t)config[off] | (uint32_t)config[off + 1] << 8 |
                   (uint32_t)config[off + 2] << 16 | (uint32_t)config[off + 3] << 24;
    if (hdr == 0 || hdr == 0xffffffffu) return PS_ACS_ABSENT; /* empty list, or no device */
    if ((hdr & 0xffff) == ECAP_ACS) {
      if (off + 8 > len) return PS_ACS_MALFORMED;
      *cap_offset = off;
      *ctl = (uint16_t)(config[off + 6] | config[off + 7] << 8);
      return PS_ACS_FOUND;
    }
    unsigned next = (hdr >> 20) & 0xffc;
    if (next == 0) return PS_ACS_ABSENT;
    off = next;
  }
  return PS_ACS_MALFORMED;
}

void ps__acs_format(uint16_t ctl, char *out, size_t len) {
  static const char *const names[] = {"SrcValid",    "TransBlk",   "ReqRedir",   "CmpltRedir",
                                      "UpstreamFwd", "EgressCtrl", "DirectTrans"};
  out[0] = '\0';
  for (unsigned i = 0; i < PS_ARRAY_LEN(names); i++)
    ps__dcat(out, len, "%s%s%c", i ? " " : "", names[i], (ctl >> i) & 1 ? '+' : '-');
}

typedef struct bridge {
  char bdf[16];
  ps__acs_status status;
  unsigned cap;
  uint16_t ctl;
  int a, b;        /* the first pair it sits between */
  char pairs[256]; /* "0-1, 0-2, ..." */
} bridge;

typedef struct acs_state {
  bridge bridges[MAX_BRIDGES];
  int count;
} acs_state;

static bridge *bridge_of(ps__doctor *d, acs_state *s, const char *bdf) {
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->bridges[i].bdf, bdf) == 0) return &s->bridges[i];
  if (s->count == MAX_BRIDGES) return NULL;
  bridge *b = &s->bridges[s->count++];
  memset(b, 0, sizeof(*b));
  b->a = b->b = -1;
  ps__strlcpy(b->bdf, bdf, sizeof(b->bdf));
  char rel[96], path[4096];
  uint8_t config[CONFIG_SPACE];
  PS_DSET(rel, "/sys/bus/pci/devices/%s/config", bdf);
  size_t n = ps__sysfs_path(d, rel, path, sizeof(path))
                 ? ps__sysfs_read_bytes(path, config, sizeof(config))
                 : 0;
  b->status = ps__acs_find(config, n, &b->cap, &b->ctl);
  return b;
}

static void note_pair(acs_state *s, ps__doctor *d, const char *bdf, int ga, int gb) {
  bridge *b = bridge_of(d, s, bdf);
  if (!b) return;
  if (b->a < 0) b->a = ga, b->b = gb;
  PS_DCAT(b->pairs, "%sGPU %d-GPU %d", b->pairs[0] ? ", " : "", ga, gb);
}

/* Bridges strictly between two GPUs: below their common ancestor, plus the ancestor itself
 * when it is a PCI device (a switch's upstream port), never the GPUs. */
static void pair_bridges(acs_state *s, ps__doctor *d, const ps__pci_path *pa,
                         const ps__pci_path *pb, int ga, int gb) {
  int k = 0;
  if (strcmp(pa->host, pb->host) == 0)
    while (k < pa->count - 1 && k < pb->count - 1 && strcmp(pa->dev[k], pb->dev[k]) == 0)
      k++;
  if (k > 0) note_pair(s, d, pa->dev[k - 1], ga, gb);
  for (int i = k; i < pa->count - 1; i++)
    note_pair(s, d, pa->dev[i], ga, gb);
  for (int i = k; i < pb->count - 1; i++)
    note_pair(s, d, pb->dev[i], ga, gb);
}

static void add_finding(ps__doctor *d, const bridge *b) {
  ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "acs-redirect");
  if (!f) return;
  char bits[160];
  ps__acs_format(b->ctl, bits, sizeof(bits));
  f->gpu_a = b->a;
  f->gpu_b = b->b;
  PS_DSET(f->title, "PCIe ACS redirects peer-to-peer traffic at bridge %s (between %s)", b->bdf,
          b->pairs);
  PS_DSET(f->evidence,
          "%s/sys/bus/pci/devices/%s/config: ACS capability at 0x%03x, ACSCtl = 0x%04x (%s); "
          "ReqRedir/CmpltRedir/EgressCtrl send GPU-to-GPU requests up to the root complex",
          d->root, b->bdf, b->cap, b->ctl, bits);
  PS_DSET(f->breaks, "NCCL hangs or crawls on PCIe P2P (NCCL's known ACS hang: "
                     "github.com/NVIDIA/nccl/issues/2079, /606, /304); P2P copies go through "
                     "the CPU, slower, and are dropped or corrupted with a translating IOMMU");
  PS_DSET(f->fix,
          "now (root, lost at reboot): sudo setpci -s %s ECAP_ACS+6.w=0000 ; permanently: "
          "disable ACS in the BIOS (often 'PCIe ACS Control' / 'ACS Enable' under PCIe or "
          "chipset settings) or boot with pci=noacs; check with: sudo lspci -s %s -vvv | grep "
          "ACSCtl",
          b->bdf, b->bdf);
  PS_DSET(f->link, "%s", PS_DOC_NCCL_ACS);
}

void ps__check_acs(ps__doctor *d) {
  const ps_report *r = d->report;
  if (!d->use_sysfs) {
    ps__doctor_check(d, "acs", PS_CHECK_NOT_CHECKED,
                     "the GPUs are a fixture's or a file's, not this machine's; --sysfs-root DIR "
                     "reads a recorded /sys");
    return;
  }
  acs_state *s = ps__calloc(1, sizeof(*s));
  ps__pci_path *paths = ps__calloc(r->gpu_count ? (size_t)r->gpu_count : 1, sizeof(*paths));
  bool *ok = ps__calloc(r->gpu_count ? (size_t)r->gpu_count : 1, sizeof(*ok));
  char why[512] = "";
  int resolved = 0, pcie_pairs = 0;
  if (!s || !paths || !ok) {
    d->oom = true;
    goto out;
  }
  for (int g = 0; g < r->gpu_count; g++) {
    char w[512] = "";
    ok[g] = (r->gpus[g].valid & PS_GPU_PCI_BUS_ID) &&
            ps__pci_path_of(d, r->gpus[g].pci_bus_id, &paths[g], w, sizeof(w));
    if (ok[g])
      resolved++;
    else if (!why[0])
      PS_DSET(why, "GPU %d: %s", g, (r->gpus[g].valid & PS_GPU_PCI_BUS_ID) ? w : "bus id unknown");
  }
  for (int a = 0; a < r->gpu_count; a++)
    for (int b = a + 1; b < r->gpu_count; b++) {
      const ps_pair *p = ps_report_pair(r, a, b);
      if (!ok[a] || !ok[b] || !p || p->link == PS_LINK_NVLINK) continue;
      pcie_pairs++;
      pair_bridges(s, d, &paths[a], &paths[b], a, b);
    }
  int found = 0, on = 0, shorts = 0, bad = 0;
  for (int i = 0; i < s->count; i++) {
    const bridge *b = &s->bridges[i];
    if (b->status == PS_ACS_SHORT) shorts++;
    if (b->status == PS_ACS_MALFORMED) bad++;
    if (b->status != PS_ACS_FOUND) continue;
    found++;
    if (b->ctl & PS_ACS_P2P_BITS) {
      on++;
      add_finding(d, b);
    }
  }
  if (on)
    ps__doctor_check(d, "acs", PS_CHECK_FINDING, "%d of %d bridge%s between GPUs redirect P2P", on,
                     s->count, s->count == 1 ? "" : "s");
  else if (resolved < 2 && r->gpu_count >= 2)
    ps__doctor_check(d, "acs", PS_CHECK_NOT_CHECKED, "GPU PCI paths not found in sysfs (%s)", why);
  else if (r->gpu_count < 2)
    ps__doctor_check(d, "acs", PS_CHECK_OK, "fewer than two GPUs: no bridge between GPUs");
  else if (pcie_pairs == 0)
    ps__doctor_check(d, "acs", PS_CHECK_OK, "no pair of GPUs talks over PCIe (NVLink)");
  else if (shorts || bad)
    ps__doctor_check(d, "acs", PS_CHECK_NOT_CHECKED,
                     "%d of %d bridges between GPUs not read: %d with config space cut before "
                     "the extended capabilities (only root reads past 64 bytes), %d with a "
                     "malformed capability list; run as root, or check with sudo lspci -vvv | "
                     "grep ACSCtl",
                     shorts + bad, s->count, shorts, bad);
  else
    ps__doctor_check(d, "acs", PS_CHECK_OK, "%d bridge%s between GPUs, none redirects P2P%s",
                     s->count, s->count == 1 ? "" : "s",
                     found < s->count ? " (some have no ACS capability)" : "");
out:
  ps__free(s);
  ps__free(paths);
  ps__free(ok);
}
