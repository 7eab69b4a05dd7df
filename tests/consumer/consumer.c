/* A program of someone else's: links an installed libpeerscope through pkg-config or
 * find_package(peerscope) and uses only <peerscope/peerscope.h> (tests/consumer/run.sh). */
#include <peerscope/peerscope.h>
#include <stdio.h>
#include <string.h>

/* `nvidia-smi topo -m` and `topo -p2p rw` of four GPUs: 0-2 joined by NVLink, GPU3 behind
 * a chipset that refuses peer access (CNS). */
static const char topo[] = "\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\n"
                           "GPU0\t X \tNV12\tNV12\tSYS\t0-31\n"
                           "GPU1\tNV12\t X \tNV12\tSYS\t0-31\n"
                           "GPU2\tNV12\tNV12\t X \tSYS\t0-31\n"
                           "GPU3\tSYS\tSYS\tSYS\t X \t0-31\n"
                           "\n$ nvidia-smi topo -p2p rw\n"
                           " \tGPU0\tGPU1\tGPU2\tGPU3\t\n"
                           " GPU0\tX\tOK\tOK\tCNS\t\n"
                           " GPU1\tOK\tX\tOK\tCNS\t\n"
                           " GPU2\tOK\tOK\tX\tCNS\t\n"
                           " GPU3\tCNS\tCNS\tCNS\tX\t\n";

int main(void) {
  printf("peerscope %s (ABI %d)\n", ps_version(), ps_abi_version());
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return 1;
  ps_report *report = NULL;
  ps_status st = ps_import_topology_text(ctx, topo, strlen(topo), "consumer.txt", &report);
  if (st != PS_OK) {
    fprintf(stderr, "import: %s: %s\n", ps_status_name(st), ps_ctx_error(ctx));
    ps_ctx_free(ctx);
    return 1;
  }
  int tp = ps_recommend_tp(report, NULL, 0), group[8];
  int n = ps_best_group(report, NULL, 0, tp, group, 8);
  printf("recommended TP: %d on", tp);
  for (int i = 0; i < n && i < 8; i++)
    printf(" GPU%d", group[i]);
  printf("\n");
  ps_report_free(report);
  ps_ctx_free(ctx);
  return 0;
}
