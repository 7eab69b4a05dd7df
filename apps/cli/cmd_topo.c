/* peerscope topo: the link matrix as nvidia-smi topo -m prints it, then the driver's P2P
 * claim beside the verified result for every pair. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "source_args.h"

static const char topo_usage[] =
    "usage: peerscope topo [--json] [--no-verify] [--gpus LIST] [--refresh] [--timeout-ms N]\n"
    "                      [--fixture FILE] [--live] [--all-gpus] [--replay CAPTURE.tar.gz]\n"
    "\n"
    "Prints the link matrix (X, NV#, PIX, PXB, PHB, NODE, SYS) with CPU and NUMA affinity,\n"
    "then a matrix of driver claim / verified result per pair.\n"
    "\n"
    "  --json            write the topology report (peerscope.topology/1) instead\n"
    "  --no-verify       only ask the driver; make no transfers\n"
    "  --gpus LIST       verify only pairs among these GPUs\n"
    "  --refresh, --timeout-ms N, --fixture FILE, --live, --all-gpus: as for peerscope check\n"
    "  --replay FILE     show a peerscope capture's recorded report (no probing, no transfers)\n"
    "\n"
    "Exit codes: 0 verified (or --no-verify), 1 a pair failed verification, 2 usage error,\n"
    "3 bad input file, 4 driver unavailable, 5 internal error.\n";

static const char *short_verdict(ps_verdict v) {
  switch (v) {
  case PS_VERDICT_OK: return "ok";
  case PS_VERDICT_CORRUPT: return "BAD";
  case PS_VERDICT_ERROR: return "ERR";
  case PS_VERDICT_HANG: return "HANG";
  case PS_VERDICT_UNSUPPORTED: return "uns";
  case PS_VERDICT_SKIPPED: return "skip";
  default: return "-";
  }
}

/* Matrix rows are padded to columns; the last cell must not leave trailing blanks. */
static void put_row(char *line) {
  size_t len = strlen(line);
  while (len && line[len - 1] == ' ')
    line[--len] = '\0';
  puts(line);
}

static void print_links(const ps_report *r) {
  printf("      ");
  for (int g = 0; g < r->gpu_count; g++)
    printf("  GPU%-3d", g);
  printf("  CPU Affinity      NUMA Affinity\n");
  for (int a = 0; a < r->gpu_count; a++) {
    printf("GPU%-3d", a);
    for (int b = 0; b < r->gpu_count; b++) {
      char link[16] = "X";
      if (a != b) {
        const ps_pair *p = ps_report_pair(r, a, b);
        if (p->valid & PS_PAIR_LINK)
          ps_link_name(p->link, p->nvlink_count, link, sizeof(link));
        else
          snprintf(link, sizeof(link), "n/a");
      }
      printf("  %-6s", link);
    }
    const ps_gpu *g = &r->gpus[a];
    printf("  %-16s  ", (g->valid & PS_GPU_CPU_AFFINITY) ? g->cpu_affinity : "n/a");
    if (g->valid & PS_GPU_NUMA_NODE)
      printf("%d\n", g->numa_node);
    else
      printf("n/a\n");
  }
}

static void print_claims(const ps_report *r) {
  printf("\nP2P, driver claim / verified (%s):\n",
         r->verified ? "a real copy, byte for byte" : "not verified: --no-verify");
  static char line[16 * 1024];
  size_t used = (size_t)snprintf(line, sizeof(line), "      ");
  for (int g = 0; g < r->gpu_count && used < sizeof(line); g++)
    used += (size_t)snprintf(line + used, sizeof(line) - used, "  GPU%-6d", g);
  put_row(line);
  for (int a = 0; a < r->gpu_count; a++) {
    used = (size_t)snprintf(line, sizeof(line), "GPU%-3d", a);
    for (int b = 0; b < r->gpu_count && used < sizeof(line); b++) {
      char cell[24] = "X";
      if (a != b) {
        const ps_pair *p = ps_report_pair(r, a, b);
        snprintf(cell, sizeof(cell), "%s/%s",
                 (p->valid & PS_PAIR_CLAIMS) ? ps_claim_name(p->claim_read) : "n/a",
                 short_verdict(p->verdict));
      }
      used += (size_t)snprintf(line + used, sizeof(line) - used, "  %-9s", cell);
    }
    put_row(line);
  }
  printf("\nLegend:\n"
         "  X    = Self\n"
         "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA "
         "nodes (e.g., QPI/UPI)\n"
         "  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host "
         "Bridges within a NUMA node\n"
         "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)\n"
         "  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe "
         "Host Bridge)\n"
         "  PIX  = Connection traversing at most a single PCIe bridge\n"
         "  NV#  = Connection traversing a bonded set of # NVLinks\n"
         "  claim (NVML P2P read): OK, CNS chipset not supported, GNS GPU not supported, TNS "
         "topology not supported, DIS disabled by regkey, NS not supported, U unknown\n"
         "  verified: ok, BAD wrong bytes arrived, ERR driver error, HANG copy never finished, "
         "uns driver refused peer access, skip not tested, - not verified\n");
}

int cmd_topo(int argc, char **argv) {
  struct option longs[4 + CLI_SOURCE_MAX_OPTIONS] = {{"json", no_argument, 0, 'j'},
                                                     {"replay", required_argument, 0, 'R'},
                                                     {"help", no_argument, 0, 'h'}};
  longs[cli_source_options(longs, 3, 3 + CLI_SOURCE_MAX_OPTIONS,
                           CLI_SRC_MACHINE | CLI_SRC_NO_VERIFY | CLI_SRC_GPUS)] =
      (struct option){0, 0, 0, 0};
  cli_source source = {.verify = true};
  cli_selection sel;
  memset(&sel, 0, sizeof(sel));
  bool json = false;
  const char *replay = NULL;
  opterr = 0;
  optind = 1;
  int c, code;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    switch (c) {
    case 'j': json = true; break;
    case 'R': replay = optarg; break;
    case 'h': fputs(topo_usage, stdout); return EXIT_VERIFIED;
    default:
      code = c == '?' ? -1 : cli_source_option("topo", c, optarg, &source, &sel);
      if (code) return code < 0 ? cli_option_error("topo", argv) : code;
    }
  }
  if (optind < argc) return cli_fail("topo", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);

  ps_report *r = NULL;
  char notice[1024];
  if (replay) {
    ps_capture *cap = NULL;
    notice[0] = '\0';
    code = cli_replay_open("topo", replay, NULL, &cap, &r);
    if (code) return code;
    ps_capture_free(cap); /* the report is all topo needs */
    if ((code = cli_resolve_gpus("topo", r, &sel)) != EXIT_VERIFIED) {
      ps_report_free(r);
      return code;
    }
  } else {
    code = cli_load_report("topo", &source, &sel, &r, notice, sizeof(notice));
    if (code) return code;
  }
  if (json) {
    if (notice[0]) fprintf(stderr, "%s\n", notice);
    ps_ctx *ctx = ps_ctx_new();
    char *text = NULL;
    if (!ctx || ps_report_to_json(ctx, r, &text) != PS_OK)
      code = cli_fail("topo", EXIT_INTERNAL, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
    else
      fputs(text, stdout);
    ps_free(text);
    ps_ctx_free(ctx);
  } else {
    if (notice[0]) printf("%s\n", notice);
    print_links(r);
    print_claims(r);
  }
  for (int i = 0; !code && i < r->pair_count; i++)
    if (ps_pair_failed(r, &r->pairs[i])) code = EXIT_FINDING;
  ps_report_free(r);
  return code;
}
