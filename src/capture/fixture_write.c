/* A report as a fake-driver fixture (docs/fixture-format.md), so `--replay` can play the
 * captured machine's NVML and CUDA facts on another computer. Unknown facts stay unknown,
 * except the ones the format requires, which get neutral stand-ins. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "capture/capture.h"
#include "core/ebuf.h"
#include "core/internal.h"

#define MIB (1024ull * 1024ull)

static void put_quoted(ps__ebuf *b, const char *s, size_t max) {
  ps__eput(b, "\"");
  for (size_t i = 0; s[i] && i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      ps__eput(b, "\\%c", c);
    else
      ps__eput(b, "%c", c < 0x20 || c == 0x7f ? '?' : c);
  }
  ps__eput(b, "\"");
}

static bool canonical_uuid(const char *u) {
  static const char shape[] = "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  if (strlen(u) != sizeof(shape) - 1) return false;
  for (size_t i = 0; shape[i]; i++)
    if (shape[i] == 'x' ? !isxdigit((unsigned char)u[i]) : u[i] != shape[i]) return false;
  return true;
}

static bool version_ok(const char *v) {
  return v[0] && strspn(v, "0123456789.") == strlen(v) && isdigit((unsigned char)v[0]);
}

static const char *claim(ps_claim c) {
  switch (c) {
  case PS_CLAIM_OK: return "OK";
  case PS_CLAIM_CNS: return "CNS";
  case PS_CLAIM_GNS: return "GNS";
  case PS_CLAIM_TNS: return "TNS";
  case PS_CLAIM_DISABLED: return "DISABLED";
  case PS_CLAIM_U: return "U";
  default: return "NS";
  }
}

static const char *link_class(ps_link_class l) {
  switch (l) {
  case PS_LINK_PIX: return "PIX";
  case PS_LINK_PXB: return "PXB";
  case PS_LINK_PHB: return "PHB";
  case PS_LINK_NODE: return "NODE";
  default: return "SYS"; /* unknown, internal: the most distant the format has */
  }
}

static bool pcie_ok(int gen, int width) {
  return gen >= 1 && gen <= 7 &&
         (width == 1 || width == 2 || width == 4 || width == 8 || width == 12 || width == 16 ||
          width == 32);
}

static void put_gpu(ps__ebuf *b, const ps_gpu *g, int i, const ps__gpu_flags *flags) {
  uint64_t mem = (g->valid & PS_GPU_MEMORY_TOTAL) ? g->memory_total_bytes / MIB : 1;
  if (mem < 1) mem = 1;
  if (mem > (1u << 24)) mem = 1u << 24;
  ps__eput(b, "gpu %d name=", i);
  put_quoted(b, (g->valid & PS_GPU_NAME) ? g->name : "unknown GPU", 95);
  if ((g->valid & PS_GPU_UUID) && canonical_uuid(g->uuid))
    ps__eput(b, " uuid=%s", g->uuid);
  else
    ps__eput(b, " uuid=GPU-00000000-0000-0000-0000-%012x", (unsigned)i);
  if (g->valid & PS_GPU_PCI_BUS_ID)
    ps__eput(b, " bus=%s", g->pci_bus_id);
  else
    ps__eput(b, " bus=0000FFFE:%02X:00.0", (unsigned)i & 0xff);
  ps__eput(b, " mem_mib=%llu cc=%d.%d", (unsigned long long)mem,
           (g->valid & PS_GPU_COMPUTE_CAP) ? g->cc_major : 0,
           (g->valid & PS_GPU_COMPUTE_CAP) ? g->cc_minor : 0);
  if (g->valid & PS_GPU_MEMORY_FREE) {
    uint64_t free_mib = g->memory_free_bytes / MIB;
    ps__eput(b, " free_mib=%llu", (unsigned long long)(free_mib > mem ? mem : free_mib));
  }
  if ((g->valid & PS_GPU_NUMA_NODE) && g->numa_node >= 0 && g->numa_node <= 1023)
    ps__eput(b, " numa=%d", g->numa_node);
  if ((g->valid & PS_GPU_CPU_AFFINITY) && g->cpu_affinity[0] &&
      strspn(g->cpu_affinity, "0123456789,-") == strlen(g->cpu_affinity))
    ps__eput(b, " cpus=%s", g->cpu_affinity);
  if ((g->valid & PS_GPU_PCIE_CURRENT) && pcie_ok(g->pcie_gen_current, g->pcie_width_current))
    ps__eput(b, " pcie=%dx%d", g->pcie_gen_current, g->pcie_width_current);
  if ((g->valid & PS_GPU_PCIE_MAX) && pcie_ok(g->pcie_gen_max, g->pcie_width_max))
    ps__eput(b, " pcie_max=%dx%d", g->pcie_gen_max, g->pcie_width_max);
  if ((g->valid & PS_GPU_BAR1) && g->bar1_total_bytes >= MIB)
    ps__eput(b, " bar1_mib=%llu", (unsigned long long)(g->bar1_total_bytes / MIB));
  static const char *const keys[3] = {"mig", "persistence", "display"};
  const int fl[3] = {flags ? flags->mig : -1, flags ? flags->persistence : -1,
                     flags ? flags->display : -1};
  for (int k = 0; k < 3; k++)
    if (fl[k] == 0 || fl[k] == 1) ps__eput(b, " %s=%d", keys[k], fl[k]);
  ps__eput(b, "\n");
}

static void put_pair(ps__ebuf *b, const ps_pair *p) {
  if (p->link == PS_LINK_NVLINK && p->nvlink_count >= 1 && p->nvlink_count <= 36) {
    ps__eput(b, "link %d %d NV%d", p->from, p->to, p->nvlink_count);
    if (p->nvlink_version >= 1 && p->nvlink_version <= 7)
      ps__eput(b, " nvlink_version=%d", p->nvlink_version);
    if (p->nvswitch) ps__eput(b, " nvswitch=1");
    ps__eput(b, "\n");
  } else {
    ps__eput(b, "link %d %d %s\n", p->from, p->to, link_class(p->link));
  }
  ps__eput(b, "p2p %d %d", p->from, p->to);
  if (p->valid & PS_PAIR_CLAIMS)
    ps__eput(b, " read=%s write=%s nvlink=%s atomics=%s", claim(p->claim_read),
             claim(p->claim_write), claim(p->claim_nvlink), claim(p->claim_atomics));
  ps__eput(b, " cuda=%d\n", (p->valid & PS_PAIR_CUDA_CLAIM) && p->cuda_can_access ? 1 : 0);
}

ps_status ps__capture_fixture(ps_ctx *ctx, const ps_report *r, const ps__gpu_flags *flags,
                              char **out) {
  *out = NULL;
  if (r->gpu_count > 64)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "capture: %d GPUs, a fixture holds 64", r->gpu_count);
  ps__ebuf b = {0};
  ps__eput(&b, "peerscope-fixture 1\n# written by peerscope capture: NVML and CUDA facts only, the "
               "verdicts are in report.json\nmachine ");
  put_quoted(&b, r->machine[0] ? r->machine : "captured machine", 127);
  ps__eput(&b, "\nsource \"peerscope capture\"\n");
  ps__eput(&b, "driver version=%s cuda=%d",
           version_ok(r->driver_version) ? r->driver_version : "0.0",
           r->cuda_driver_version > 0 ? r->cuda_driver_version : 0);
  if (version_ok(r->nvml_version)) ps__eput(&b, " nvml=%s", r->nvml_version);
  ps__eput(&b, "\n\n");
  for (int g = 0; g < r->gpu_count; g++)
    put_gpu(&b, &r->gpus[g], g, flags ? &flags[g] : NULL);
  if (r->gpu_count) ps__eput(&b, "\n");
  /* Lines apply to both directions: the pair from the lower index speaks for both. */
  for (int i = 0; i < r->pair_count; i++)
    if (r->pairs[i].from < r->pairs[i].to) put_pair(&b, &r->pairs[i]);
  if (b.failed) {
    ps__free(b.data);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  }
  if (!b.data) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  *out = b.data;
  return PS_OK;
}
