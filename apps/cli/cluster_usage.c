/* peerscope cluster's help, in C: `peerscope cluster --help` and `cluster topo|plan|launch
 * --help` answer without Python (the sub-commands themselves run in the Python package, see
 * cmd_cluster.c). Keep in step with python/peerscope/cluster/cli.py and docs/cluster.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char cluster_usage[] =
    "usage: peerscope cluster {topo,plan,launch} [options]\n"
    "\n"
    "Several machines over the Ray cluster you already run (docs/cluster.md).\n"
    "\n"
    "  topo     verified check on every node, one cluster report\n"
    "  plan     plan vLLM on the healthy nodes (one node when the model fits one)\n"
    "  launch   vllm serve on the head with the plan, Ray executor, health watch\n"
    "\n"
    "peerscope cluster COMMAND --help describes each. The commands run in the peerscope Python\n"
    "package with Ray (pip install \"peerscope[cluster]\"): $PEERSCOPE_PYTHON, else the Python\n"
    "peerscope was installed into, else python3 in PATH.\n"
    "\n"
    "Exit codes: 0 ok, 1 a node is not healthy or nothing fits, 2 usage error, 3 bad input,\n"
    "4 driver unavailable, 5 internal error, 6 the Ray cluster unreachable or lost, 127 Python,\n"
    "the package, Ray or vLLM not installed, 130 interrupted; launch: vLLM's exit code.\n";

#define CLUSTER_OPTIONS                                                                            \
  "  --ray-address ADDR    the Ray cluster (host:port of the head's GCS, or auto)\n"               \
  "  --deadline S          seconds for every node to answer (default 60)\n"                        \
  "  --connect-timeout S   seconds to connect to Ray (default 60)\n"                               \
  "  --allow-partial       go on with the healthy nodes when some are not\n"                       \
  "  --peerscope-cli PATH  the peerscope executable on the nodes (default: PATH, then the\n"       \
  "                        package's)\n"                                                           \
  "  --node-ip IP          this machine's address in the Ray cluster, when Ray guesses wrong\n"

#define REPORT_OPTION                                                                              \
  "  --report FILE         a cluster report from `peerscope cluster topo --out` instead of\n"      \
  "                        gathering\n"

#define PLAN_OPTIONS                                                                               \
  "  --model DIR           a Hugging Face model directory\n"                                       \
  "  --model-size-gb X     a model known only by its weight size\n"                                \
  "  --params-b N          a model known by its parameter count (billions)\n"                      \
  "  --dtype D             with --params-b: bf16, fp16, fp8, int4\n"                               \
  "  --tp N, --pp N        fix the tensor / pipeline parallel size\n"                              \
  "  --gpu-memory-utilization F, --max-model-len N, --max-num-seqs N, --kv-cache-dtype D,\n"       \
  "  --reserve-gb X, --objective throughput|latency: as for peerscope plan\n"

static const char topo_usage[] =
    "usage: peerscope cluster topo --ray-address ADDR [--deadline S] [--connect-timeout S]\n"
    "                              [--allow-partial] [--peerscope-cli PATH] [--node-ip IP]\n"
    "                              [--json] [--out FILE]\n"
    "\n"
    "Runs a verified peerscope check on every node of the Ray cluster and prints one cluster\n"
    "report.\n"
    "\n" CLUSTER_OPTIONS "  --json                the peerscope.cluster/1 report on stdout\n"
    "  --out FILE            also write the JSON report to FILE (atomically)\n"
    "\n"
    "Exit codes: 0 every node healthy (with --allow-partial: at least one), 1 a node is not\n"
    "healthy, 2 usage error, 5 internal error, 6 the Ray cluster unreachable or lost, 127 Ray\n"
    "not installed.\n";

static const char plan_usage[] =
    "usage: peerscope cluster plan (--ray-address ADDR | --report FILE)\n"
    "                              (--model DIR | --model-size-gb X | --params-b N [--dtype D])\n"
    "                              [cluster options] [plan options] [--json] [--out FILE]\n"
    "\n"
    "Plans vLLM on the healthy nodes: one instance on the head when the model fits one\n"
    "node (replicas on the others), else TP inside a node and PP across the fewest nodes\n"
    "that hold it, Ray as the executor.\n"
    "\n" CLUSTER_OPTIONS REPORT_OPTION PLAN_OPTIONS
    "  --json                the JSON plan on stdout\n"
    "  --out FILE            also write the JSON plan to FILE (atomically)\n"
    "\n"
    "Exit codes: 0 a plan fits, 1 a node is not healthy (without --allow-partial) or nothing\n"
    "fits, 2 usage error, 3 bad input, 4 driver unavailable, 5 internal error, 6 the Ray\n"
    "cluster unreachable or lost, 127 Ray not installed.\n";

static const char launch_usage[] =
    "usage: peerscope cluster launch MODEL (--ray-address ADDR | --report FILE)\n"
    "                                [cluster options] [plan options] [--port PORT]\n"
    "                                [--host HOST] [--vllm PATH] [--timeout S]\n"
    "                                [--stop-grace S] [--nccl-debug] [--dry-run]\n"
    "                                [-- VLLM ARGS...]\n"
    "\n"
    "Plans as cluster plan does, then runs vllm serve on the head with Ray as the executor and\n"
    "watches it come up. MODEL is a model directory or a name for vLLM (or --model DIR).\n"
    "\n" CLUSTER_OPTIONS REPORT_OPTION PLAN_OPTIONS
    "  --port PORT, --host HOST   where vLLM listens\n"
    "  --vllm PATH           the vllm executable\n"
    "  --timeout S           seconds to wait for /health (default 900)\n"
    "  --stop-grace S        seconds from SIGTERM to SIGKILL on stop\n"
    "  --nccl-debug          add NCCL_DEBUG=INFO (to see the transports)\n"
    "  --dry-run             print the commands, start nothing\n"
    "\n"
    "Exit codes: 0 vLLM came up and was stopped, or --dry-run, 1 a node is not healthy, nothing\n"
    "fits, /health not answered in time or the port taken, 2 usage error, 3 bad input, 5\n"
    "internal error, 6 the Ray cluster unreachable or lost, 127 Ray or vLLM not installed, 130\n"
    "interrupted; otherwise vLLM's exit code.\n";

static bool is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_cluster_usage(int argc, char **argv) {
  if (argc < 2) {
    fputs(cluster_usage, stdout);
    return EXIT_USAGE;
  }
  const char *sub = argv[1];
  if (is_help(sub)) {
    fputs(cluster_usage, stdout);
    return EXIT_VERIFIED;
  }
  const char *text = strcmp(sub, "topo") == 0     ? topo_usage
                     : strcmp(sub, "plan") == 0   ? plan_usage
                     : strcmp(sub, "launch") == 0 ? launch_usage
                                                  : NULL;
  if (!text) {
    if (strcmp(sub, "_driver") == 0) return -1; /* the hidden driver child's command */
    return cli_fail("cluster", EXIT_USAGE, "unknown %s '%s' (see peerscope cluster --help)",
                    sub[0] == '-' ? "option" : "command", sub);
  }
  for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (is_help(argv[i])) {
      fputs(text, stdout);
      return EXIT_VERIFIED;
    }
  return -1;
}
