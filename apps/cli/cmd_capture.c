/* peerscope capture: this machine in one file for a bug report (docs/capture.md), which
 * doctor/topo --replay and plan --topology play back elsewhere. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "source_args.h"

static const char capture_usage[] =
    "usage: peerscope capture [--no-verify] [--refresh] [--timeout-ms N] [--sysfs-root DIR]\n"
    "                         [--keep-hostname] [--fixture FILE] [--live] OUT.tar.gz\n"
    "\n"
    "Records the machine in OUT.tar.gz: the topology report with its verdicts, the NVML\n"
    "facts as a fake-driver fixture, the sysfs and /proc files the doctor reads (PCI config\n"
    "space of the GPUs and the bridges above them, IOMMU, kernel command line, driver\n"
    "version), the NCCL/CUDA/vLLM variables the doctor checks, and nvidia-smi topo -m and\n"
    "-p2p r output when nvidia-smi exists. Nothing else: no hostname unless --keep-hostname.\n"
    "Play it back with peerscope doctor --replay, topo --replay or plan --topology.\n"
    "\n"
    "  --no-verify       record the driver's claims only (no transfers)\n"
    "  --sysfs-root DIR  read /sys and /proc under DIR; default $PEERSCOPE_SYSFS_ROOT\n"
    "  --keep-hostname   keep the hostname in the report\n"
    "  --refresh, --timeout-ms N, --fixture FILE, --live: as for peerscope check\n"
    "\n"
    "Run as root to record the bridges' extended config space (ACS).\n"
    "Exit codes: 0 written, 2 usage error, 3 bad input, 4 driver unavailable, 5 internal\n"
    "error (including a write failure).\n";

int cmd_capture(int argc, char **argv) {
  struct option longs[4 + CLI_SOURCE_MAX_OPTIONS] = {{"sysfs-root", required_argument, 0, 's'},
                                                     {"keep-hostname", no_argument, 0, 'k'},
                                                     {"help", no_argument, 0, 'h'}};
  longs[cli_source_options(longs, 3, 3 + CLI_SOURCE_MAX_OPTIONS,
                           CLI_SRC_MACHINE | CLI_SRC_NO_VERIFY | CLI_SRC_ALL_GPUS)] =
      (struct option){0, 0, 0, 0};
  cli_source source = {.verify = true};
  cli_selection sel;
  memset(&sel, 0, sizeof(sel));
  ps_capture_opts copts = PS_INIT(ps_capture_opts);
  opterr = 0;
  optind = 1;
  int c, code;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    switch (c) {
    case 's': copts.sysfs_root = optarg; break;
    case 'k': copts.keep_hostname = true; break;
    case 'h': fputs(capture_usage, stdout); return EXIT_VERIFIED;
    default:
      code = c == '?' ? -1 : cli_source_option("capture", c, optarg, &source, NULL);
      if (code) return code < 0 ? cli_option_error("capture", argv) : code;
    }
  }
  if (optind != argc - 1)
    return cli_fail("capture", EXIT_USAGE, "give one output file (OUT.tar.gz)");
  const char *out = argv[optind];
  if (!copts.sysfs_root) copts.sysfs_root = getenv("PEERSCOPE_SYSFS_ROOT");
  struct stat st;
  if (copts.sysfs_root && *copts.sysfs_root &&
      (stat(copts.sysfs_root, &st) != 0 || !S_ISDIR(st.st_mode)))
    return cli_fail("capture", EXIT_BAD_INPUT, "sysfs root '%s' is not a directory",
                    copts.sysfs_root);

  ps_report *r = NULL;
  char notice[1024];
  code = cli_load_report("capture", &source, &sel, &r, notice, sizeof(notice));
  if (code) return code;
  if (notice[0]) fprintf(stderr, "%s\n", notice);
  /* nvidia-smi describes this computer's GPUs: only worth recording for a live report. */
  copts.run_nvidia_smi = r->source == PS_SOURCE_LIVE;
  copts.driver_dir = cli_opt(source.drivers.dir);
  copts.fixture = cli_opt(source.drivers.fixture);
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) {
    code = cli_fail("capture", EXIT_INTERNAL, "out of memory");
  } else if (ps_capture_write(ctx, r, &copts, out) != PS_OK) {
    code = cli_fail("capture", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
  } else {
    printf("peerscope capture: wrote %s (%d GPU%s); attach it to the bug report\n", out,
           r->gpu_count, r->gpu_count == 1 ? "" : "s");
  }
  ps_ctx_free(ctx);
  ps_report_free(r);
  return code;
}
