/* peerscope: command dispatch. Each command lives in its own cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: peerscope <command> [options]\n"
    "\n"
    "Commands:\n"
    "  check     which GPUs really talk peer-to-peer, and the tensor-parallel size they allow\n"
    "  topo      the link matrix (like nvidia-smi topo -m) with driver claims and verdicts\n"
    "  plan      GPUs, TP and PP for a model, and the vllm serve command with its environment\n"
    "  doctor    why P2P is broken or slow (ACS, IOMMU, driver, links, env) and how to fix it\n"
    "  launch    start vllm serve with the plan, wait until it answers, stop it cleanly\n"
    "  bench     measured P2P bandwidth and latency, all-reduce with NCCL and a one-shot kernel\n"
    "  capture   record this machine in one file for a bug report (--replay plays it back)\n"
    "  web       a dashboard in the browser: the matrix, benchmarks, plans, launching vLLM\n"
    "  cluster   several machines over a Ray cluster: topo, plan and launch vLLM on Ray\n"
    "\n"
    "Run 'peerscope <command> --help' for a command's options.\n"
    "Exit codes: 0 verified, 1 a pair failed verification, 2 usage error, 3 bad input file,\n"
    "4 driver unavailable, 5 internal error.\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return EXIT_VERIFIED;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("peerscope %s\n", ps_version());
    return EXIT_VERIFIED;
  }
  if (strcmp(cmd, "check") == 0) return cmd_check(argc - 1, argv + 1);
  if (strcmp(cmd, "topo") == 0) return cmd_topo(argc - 1, argv + 1);
  if (strcmp(cmd, "plan") == 0) return cmd_plan(argc - 1, argv + 1);
  if (strcmp(cmd, "doctor") == 0) return cmd_doctor(argc - 1, argv + 1);
  if (strcmp(cmd, "launch") == 0) return cmd_launch(argc - 1, argv + 1);
  if (strcmp(cmd, "capture") == 0) return cmd_capture(argc - 1, argv + 1);
  if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
  if (strcmp(cmd, "web") == 0) return cmd_web(argc - 1, argv + 1);
  if (strcmp(cmd, "cluster") == 0) return cmd_cluster(argc - 1, argv + 1);
  return cli_fail(NULL, EXIT_USAGE, "unknown command '%s' (see peerscope --help)", cmd);
}
