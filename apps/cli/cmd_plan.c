/* peerscope plan: which GPUs, TP and PP for a model, how memory divides, the longest context,
 * and the exact vllm serve command with its environment, each choice explained. */
#include <stdlib.h>
#include <string.h>

#include "plan_args.h"

/* The request's options (synopsis and lines) come from the library's field table. */
static void plan_help(FILE *f) {
  fputs("usage: peerscope plan (--model DIR|ID | --model-size-gb X | --params-b N [--dtype D])\n"
        "                      [--model-name NAME] [--topology FILE]... [--p2p-claims FILE]\n"
        "                      [--gpu-mem GB[,GB...]]\n"
        "                      [--gpu-info FILE]\n",
        f);
  cli_plan_synopsis(f, "plan", 22);
  fputs("                      [--json | --format text|json|shell|args|yaml]\n"
        "                      [--fixture FILE] [--live] [--refresh] [--timeout-ms N]\n"
        "                      [--all-gpus]\n"
        "\n"
        "Plans vLLM for a model on this machine (verified P2P), on a saved report or on pasted\n"
        "`nvidia-smi topo -m` text (--topology, detected automatically).\n"
        "\n",
        f);
  cli_plan_help(f, "model");
  fputs("  --topology FILE          a peerscope report or capture, or nvidia-smi topo -m text;\n"
        "                           once per node for several nodes (the first is the Ray head)\n"
        "  --p2p-claims FILE        nvidia-smi topo -p2p r (or w, n, a, p) text for --topology\n"
        "  --gpu-mem GB[,GB...]     memory of every GPU, or of each, for a text topology\n"
        "  --gpu-info FILE          nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id\n"
        "                           --format=csv output for a text topology\n",
        f);
  cli_plan_help(f, "plan");
  fputs("  --all-gpus               the whole machine; by default only the GPUs\n"
        "                           CUDA_VISIBLE_DEVICES allows (the plan names them by\n"
        "                           nvidia-smi's numbers, with CUDA_DEVICE_ORDER=PCI_BUS_ID)\n"
        "\n"
        "Exit codes: 0 a plan fits, 1 nothing fits (the message says why, with numbers), 2 usage\n"
        "error, 3 bad input file, model directory or id, 4 driver unavailable, 5 internal error,\n"
        "7 the Hugging Face Hub could not answer for a model id (docs/models.md).\n",
        f);
}

/* Whether an imported topology carries the driver's P2P claims (a -p2p section). */
static bool has_claims(const ps_report *r) {
  for (int i = 0; i < r->pair_count; i++)
    if (r->pairs[i].valid & PS_PAIR_CLAIMS) return true;
  return r->pair_count == 0;
}

static int parse(int argc, char **argv, cli_plan_args *a, ps_plan_format *format) {
  enum { O_JSON = 1, O_FORMAT, O_HELP };
  static const char *const formats[] = {"text", "json", "shell", "args", "yaml"};
  struct option longs[CLI_PLAN_MAX_OPTIONS + 4];
  int n = cli_plan_options_copy(longs, CLI_PLAN_MAX_OPTIONS);
  longs[n++] = (struct option){"json", no_argument, 0, O_JSON};
  longs[n++] = (struct option){"format", required_argument, 0, O_FORMAT};
  longs[n++] = (struct option){"help", no_argument, 0, O_HELP};
  longs[n] = (struct option){0, 0, 0, 0};
  if (cli_plan_args_init(a)) return EXIT_INTERNAL;
  *format = PS_PLAN_TEXT;
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    switch (c) {
    case O_JSON: *format = PS_PLAN_JSON; break;
    case O_FORMAT: {
      int f = -1;
      for (int i = 0; i < 5; i++)
        if (strcmp(optarg, formats[i]) == 0) f = i;
      if (f < 0)
        return cli_fail("plan", EXIT_USAGE, "--format: '%s' is not text, json, shell, args or yaml",
                        optarg);
      *format = (ps_plan_format)f;
      break;
    }
    case 'h':
    case O_HELP: plan_help(stdout); return -1;
    default: {
      if (c == '?' && optopt)
        return cli_fail("plan", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
      int code = c == '?' ? -1 : cli_plan_option("plan", c, optarg, argv[optind - 2], a);
      if (code > 0) return code;
      if (code < 0)
        return cli_fail("plan", EXIT_USAGE, "unknown option '%s' (see peerscope plan --help)",
                        argv[optind - 1]);
    }
    }
  }
  if (optind < argc) return cli_fail("plan", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
  return cli_plan_check("plan", a);
}

int cmd_plan(int argc, char **argv) {
  cli_plan_args a;
  ps_plan_format format;
  int code = parse(argc, argv, &a, &format);
  if (code) {
    cli_plan_args_free(&a);
    return code < 0 ? EXIT_VERIFIED : code;
  }
  ps_ctx *ctx = ps_ctx_new();
  ps_model *model = NULL;
  ps_plan *plan = NULL;
  ps_report **nodes = NULL;
  int node_count = 0;
  char notice[1024] = "", *text = NULL;
  if (!ctx) {
    code = cli_fail("plan", EXIT_INTERNAL, "out of memory");
    goto out;
  }
  if ((code = cli_plan_load_model("plan", &a, ctx, &model))) goto out;
  if ((code = cli_plan_load_nodes("plan", &a, ctx, &nodes, &node_count, notice, sizeof(notice))))
    goto out;

  ps_plan_request req = PS_INIT(ps_plan_request);
  if ((code = cli_plan_request("plan", &a, model, NULL, &req))) goto out;
  ps_status st =
      ps_plan_make_cluster(ctx, (const ps_report *const *)nodes, node_count, &req, &plan);
  if (st != PS_OK) {
    code = cli_fail("plan",
                    st == PS_ERR_INVALID_ARG ? EXIT_USAGE
                    : st == PS_ERR_BAD_INPUT ? EXIT_BAD_INPUT
                                             : EXIT_INTERNAL,
                    "%s", ps_ctx_error(ctx));
    goto out;
  }
  if (req.vllm_log && (code = cli_plan_store_calibration("plan", ctx, nodes[0], &req, "log")))
    goto out;
  if (ps_plan_write(ctx, plan, format, &text) != PS_OK) {
    code = cli_fail("plan", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
    goto out;
  }
  if (notice[0]) fprintf(format == PS_PLAN_TEXT ? stdout : stderr, "%s\n", notice);
  for (int i = 0; format == PS_PLAN_TEXT && i < node_count; i++)
    if (!nodes[i]->verified && nodes[i]->source == PS_SOURCE_FILE)
      printf("Topology %s: %s, not verified.\n", nodes[i]->origin,
             has_claims(nodes[i]) ? "driver claims only"
                                  : "links only (no -p2p section: P2P assumed over NVLink, "
                                    "PIX, PXB)");
  fputs(text, stdout);
  code = plan->feasible ? EXIT_VERIFIED : EXIT_FINDING;
out:
  ps_free(text);
  cli_plan_nodes_free(nodes, node_count);
  ps_plan_free(plan);
  ps_model_free(model);
  ps_ctx_free(ctx);
  cli_plan_args_free(&a);
  return code;
}
