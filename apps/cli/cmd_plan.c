/* peerscope plan: which GPUs, TP and PP for a model, how memory divides, the longest context,
 * and the exact vllm serve command with its environment, each choice explained. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char plan_usage[] =
    "usage: peerscope plan (--model DIR | --model-size-gb X | --params-b N [--dtype D])\n"
    "                      [--topology FILE]... [--p2p-claims FILE] [--gpu-mem GB[,GB...]]\n"
    "                      [--gpu-info FILE] [--tp N] [--pp N] [--gpus LIST]\n"
    "                      [--gpu-memory-utilization F] [--max-model-len N] [--max-num-seqs N]\n"
    "                      [--kv-cache-dtype D] [--reserve-gb X]\n"
    "                      [--objective throughput|latency]\n"
    "                      [--json | --format text|json|shell|args|yaml]\n"
    "                      [--fixture FILE] [--live] [--refresh] [--timeout-ms N]\n"
    "\n"
    "Plans vLLM for a model on this machine (verified P2P), on a saved report or on pasted\n"
    "`nvidia-smi topo -m` text (--topology, detected automatically).\n"
    "\n"
    "  --model DIR              a Hugging Face directory: config.json and safetensors headers\n"
    "                           (or model.safetensors.index.json); weights are never read\n"
    "  --model-size-gb X        a model known only by its weight size\n"
    "  --params-b N --dtype D   a model known by its parameter count (D: bf16 fp16 fp8 int4)\n"
    "  --topology FILE          a peerscope report or capture, or nvidia-smi topo -m text;\n"
    "                           once per node\n"
    "                           for several nodes (the first is the Ray head)\n"
    "  --p2p-claims FILE        nvidia-smi topo -p2p r (or w, n, a, p) text for --topology\n"
    "  --gpu-mem GB[,GB...]     memory of every GPU, or of each, for a text topology\n"
    "  --gpu-info FILE          nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id\n"
    "                           --format=csv output for a text topology\n"
    "  --tp N, --pp N           fix the tensor / pipeline parallel size\n"
    "  --gpus LIST              only these GPUs (indexes, ranges or UUIDs)\n"
    "  --gpu-memory-utilization F   vLLM's budget fraction (default 0.9)\n"
    "  --max-model-len N        context length to fit (default: the longest that fits)\n"
    "  --max-num-seqs N         sequences of that length that must fit at once (default 1)\n"
    "  --kv-cache-dtype D       auto, fp8, fp8_e4m3, fp8_e5m2\n"
    "  --reserve-gb X           memory per GPU kept for other processes\n"
    "  --objective O            throughput (default: fewest GPUs, replicas) or latency\n"
    "\n"
    "Exit codes: 0 a plan fits, 1 nothing fits (the message says why, with numbers), 2 usage\n"
    "error, 3 bad input file or model directory, 4 driver unavailable, 5 internal error.\n";

typedef struct plan_opts {
  cli_source source;
  cli_selection sel;
  const char *model_dir, *dtype, *p2p_claims, *gpu_mem, *gpu_info, *kv_dtype;
  const char *topologies[8]; /* --topology, once per node; node 0 is the head */
  int topology_count;
  double size_gb, params_b, util, reserve_gb;
  int tp, pp, max_model_len, max_num_seqs;
  ps_objective objective;
  ps_plan_format format;
} plan_opts;

static bool parse_double(const char *text, double min, double max, double *out) {
  char *end = NULL;
  double v = strtod(text, &end);
  if (!text[0] || *end || !isfinite(v) || v < min || v > max) return false;
  *out = v;
  return true;
}

static int parse(int argc, char **argv, plan_opts *o) {
  enum {
    O_MODEL = 256,
    O_SIZE,
    O_PARAMS,
    O_DTYPE,
    O_TOPO,
    O_CLAIMS,
    O_GPUMEM,
    O_GPUINFO,
    O_TP,
    O_PP,
    O_GPUS,
    O_UTIL,
    O_LEN,
    O_SEQS,
    O_KV,
    O_RESERVE,
    O_OBJ,
    O_JSON,
    O_FORMAT,
    O_FIXTURE,
    O_LIVE,
    O_REFRESH,
    O_TIMEOUT,
    O_HELP
  };
  static const struct option longs[] = {{"model", required_argument, 0, O_MODEL},
                                        {"model-size-gb", required_argument, 0, O_SIZE},
                                        {"params-b", required_argument, 0, O_PARAMS},
                                        {"dtype", required_argument, 0, O_DTYPE},
                                        {"topology", required_argument, 0, O_TOPO},
                                        {"p2p-claims", required_argument, 0, O_CLAIMS},
                                        {"gpu-mem", required_argument, 0, O_GPUMEM},
                                        {"gpu-info", required_argument, 0, O_GPUINFO},
                                        {"tp", required_argument, 0, O_TP},
                                        {"pp", required_argument, 0, O_PP},
                                        {"gpus", required_argument, 0, O_GPUS},
                                        {"gpu-memory-utilization", required_argument, 0, O_UTIL},
                                        {"max-model-len", required_argument, 0, O_LEN},
                                        {"max-num-seqs", required_argument, 0, O_SEQS},
                                        {"kv-cache-dtype", required_argument, 0, O_KV},
                                        {"reserve-gb", required_argument, 0, O_RESERVE},
                                        {"objective", required_argument, 0, O_OBJ},
                                        {"json", no_argument, 0, O_JSON},
                                        {"format", required_argument, 0, O_FORMAT},
                                        {"fixture", required_argument, 0, O_FIXTURE},
                                        {"live", no_argument, 0, O_LIVE},
                                        {"refresh", no_argument, 0, O_REFRESH},
                                        {"timeout-ms", required_argument, 0, O_TIMEOUT},
                                        {"help", no_argument, 0, O_HELP},
                                        {0, 0, 0, 0}};
  static const char *const formats[] = {"text", "json", "shell", "args", "yaml"};
  memset(o, 0, sizeof(*o));
  o->source.verify = true;
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    const char *bad = NULL;
    switch (c) {
    case O_MODEL: o->model_dir = optarg; break;
    case O_SIZE:
      if (!parse_double(optarg, 0.001, 1e6, &o->size_gb)) bad = "a size in GB";
      break;
    case O_PARAMS:
      if (!parse_double(optarg, 0.001, 1e5, &o->params_b)) bad = "billions of parameters";
      break;
    case O_DTYPE: o->dtype = optarg; break;
    case O_TOPO:
      if (o->topology_count == 8)
        bad = "one more node: peerscope plans at most 8";
      else
        o->topologies[o->topology_count++] = optarg;
      break;
    case O_CLAIMS: o->p2p_claims = optarg; break;
    case O_GPUMEM: o->gpu_mem = optarg; break;
    case O_GPUINFO: o->gpu_info = optarg; break;
    case O_TP:
      if (!cli_parse_int(optarg, 1, CLI_MAX_GPUS, &o->tp)) bad = "a positive integer";
      break;
    case O_PP:
      if (!cli_parse_int(optarg, 1, CLI_MAX_GPUS, &o->pp)) bad = "a positive integer";
      break;
    case O_GPUS: o->sel.text = optarg; break;
    case O_UTIL:
      if (!parse_double(optarg, 0.01, 1.0, &o->util)) bad = "a fraction in (0, 1]";
      break;
    case O_LEN:
      if (!cli_parse_int(optarg, 1, 1 << 30, &o->max_model_len)) bad = "a positive integer";
      break;
    case O_SEQS:
      if (!cli_parse_int(optarg, 1, 1 << 20, &o->max_num_seqs)) bad = "a positive integer";
      break;
    case O_KV: o->kv_dtype = optarg; break;
    case O_RESERVE:
      if (!parse_double(optarg, 0, 1e4, &o->reserve_gb)) bad = "GB, 0 or more";
      break;
    case O_OBJ:
      if (strcmp(optarg, "throughput") == 0)
        o->objective = PS_OBJECTIVE_THROUGHPUT;
      else if (strcmp(optarg, "latency") == 0)
        o->objective = PS_OBJECTIVE_LATENCY;
      else
        bad = "throughput or latency";
      break;
    case O_JSON: o->format = PS_PLAN_JSON; break;
    case O_FORMAT: {
      int f = -1;
      for (int i = 0; i < 5; i++)
        if (strcmp(optarg, formats[i]) == 0) f = i;
      if (f < 0)
        bad = "text, json, shell, args or yaml";
      else
        o->format = (ps_plan_format)f;
      break;
    }
    case O_FIXTURE: o->source.fixture = optarg; break;
    case O_LIVE: o->source.live = true; break;
    case O_REFRESH: o->source.refresh = true; break;
    case O_TIMEOUT:
      if (!cli_parse_int(optarg, 1, 3600000, &o->source.timeout_ms)) bad = "a positive integer";
      break;
    case O_HELP: fputs(plan_usage, stdout); return -1;
    default:
      return cli_fail("plan", EXIT_USAGE, "unknown option '%s' (see peerscope plan --help)",
                      argv[optind - 1]);
    }
    if (bad)
      return cli_fail("plan", EXIT_USAGE, "%s: '%s' is not %s", argv[optind - 2], optarg, bad);
  }
  if (optind < argc) return cli_fail("plan", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
  int sources = (o->model_dir != NULL) + (o->size_gb > 0) + (o->params_b > 0);
  if (sources != 1)
    return cli_fail("plan", EXIT_USAGE,
                    "give exactly one of --model DIR, --model-size-gb X, "
                    "--params-b N");
  if (o->dtype && o->params_b <= 0)
    return cli_fail("plan", EXIT_USAGE, "--dtype goes with --params-b");
  if ((o->p2p_claims || o->gpu_mem || o->gpu_info) && !o->topology_count)
    return cli_fail("plan", EXIT_USAGE,
                    "--p2p-claims, --gpu-mem and --gpu-info describe a "
                    "--topology file");
  if ((o->p2p_claims || o->gpu_info || o->sel.text) && o->topology_count > 1)
    return cli_fail("plan", EXIT_USAGE,
                    "--p2p-claims, --gpu-info and --gpus describe one node; "
                    "with several --topology files, put them in each report");
  return EXIT_VERIFIED;
}

static int load_model(const plan_opts *o, ps_ctx *ctx, ps_model *model) {
  ps_status st = o->model_dir ? ps_model_load(ctx, o->model_dir, model)
                              : ps_model_synthetic(ctx, o->params_b, o->dtype ? o->dtype : "bf16",
                                                   o->size_gb, model);
  if (st == PS_OK) return EXIT_VERIFIED;
  return cli_fail("plan",
                  st == PS_ERR_INVALID_ARG                    ? EXIT_USAGE
                  : st == PS_ERR_BAD_INPUT || st == PS_ERR_IO ? EXIT_BAD_INPUT
                                                              : EXIT_INTERNAL,
                  "%s", ps_ctx_error(ctx));
}

static int apply_gpu_mem(const char *text, ps_ctx *ctx, ps_report *r) {
  double values[CLI_MAX_GPUS];
  int n = 0;
  const char *p = text;
  while (*p && n < CLI_MAX_GPUS) {
    char item[64];
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof(item) ||
        (memcpy(item, p, len), item[len] = '\0', !parse_double(item, 0.1, 1e5, &values[n])))
      return cli_fail("plan", EXIT_USAGE, "--gpu-mem: '%s' is not a list of sizes in GB", text);
    n++;
    p += len;
    if (*p == ',') p++;
  }
  if (ps_report_set_gpu_memory(ctx, r, values, n) != PS_OK)
    return cli_fail("plan", EXIT_USAGE, "--gpu-mem: %s", ps_ctx_error(ctx));
  return EXIT_VERIFIED;
}

/* One imported node: the file, then the claims, GPU facts and memory given for it. */
static int import_node(const plan_opts *o, ps_ctx *ctx, const char *path, ps_report **out) {
  ps_report *r = NULL;
  int code = EXIT_VERIFIED;
  if (ps__capture_is_archive(path)) {
    /* A peerscope capture: its recorded report, verdicts included. */
    ps_capture cap;
    if ((code = cli_replay_open("plan", path, false, &cap, &r)) != EXIT_VERIFIED) return code;
    ps__capture_close(&cap);
  } else if (ps_import_topology(ctx, path, &r) != PS_OK) {
    return cli_fail("plan", EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  }
  if (o->p2p_claims && ps_import_p2p_claims(ctx, r, o->p2p_claims) != PS_OK)
    code = cli_fail("plan", EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  if (!code && o->gpu_info && ps_import_gpu_info(ctx, r, o->gpu_info) != PS_OK)
    code = cli_fail("plan", EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  if (!code && o->gpu_mem) code = apply_gpu_mem(o->gpu_mem, ctx, r);
  if (!code) code = cli_resolve_gpus("plan", r, (cli_selection *)&o->sel);
  if (code) {
    ps_report_free(r);
    return code;
  }
  *out = r;
  return EXIT_VERIFIED;
}

/* The live (or fixture) machine, or every --topology file; returns the node count in *n. */
static int load_nodes(const plan_opts *o, ps_ctx *ctx, ps_report **nodes, int *n, char *notice,
                      size_t notice_len) {
  *n = 0;
  notice[0] = '\0';
  if (!o->topology_count) {
    int code = cli_load_report("plan", &o->source, &o->sel, &nodes[0], notice, notice_len);
    *n = code ? 0 : 1;
    return code;
  }
  for (int i = 0; i < o->topology_count; i++) {
    int code = import_node(o, ctx, o->topologies[i], &nodes[i]);
    if (code) return code;
    *n = i + 1;
  }
  return EXIT_VERIFIED;
}

int cmd_plan(int argc, char **argv) {
  plan_opts o;
  int code = parse(argc, argv, &o);
  if (code) return code < 0 ? EXIT_VERIFIED : code;
  ps_ctx *ctx = ps_ctx_new();
  ps_model *model = calloc(1, sizeof(*model));
  ps_plan *plan = calloc(1, sizeof(*plan));
  ps_report *nodes[8] = {NULL};
  int node_count = 0;
  char notice[1024] = "", *text = NULL;
  if (!ctx || !model || !plan) {
    code = cli_fail("plan", EXIT_INTERNAL, "out of memory");
    goto out;
  }
  if ((code = load_model(&o, ctx, model))) goto out;
  if ((code = load_nodes(&o, ctx, nodes, &node_count, notice, sizeof(notice)))) goto out;

  ps_plan_request req = {0};
  req.model = model;
  req.tp = o.tp;
  req.pp = o.pp;
  req.gpus = o.sel.count ? o.sel.gpus : NULL;
  req.gpu_count = o.sel.count;
  req.gpu_memory_utilization = o.util;
  req.max_model_len = o.max_model_len;
  req.max_num_seqs = o.max_num_seqs;
  req.kv_cache_dtype = o.kv_dtype;
  req.reserve_gib = o.reserve_gb;
  req.objective = o.objective;
  req.model_path = o.model_dir;
  ps_status st = ps_plan_make_cluster(ctx, (const ps_report *const *)nodes, node_count, &req, plan);
  if (st != PS_OK) {
    code = cli_fail("plan", st == PS_ERR_INVALID_ARG ? EXIT_USAGE : EXIT_INTERNAL, "%s",
                    ps_ctx_error(ctx));
    goto out;
  }
  if (ps_plan_write(ctx, plan, o.format, &text) != PS_OK) {
    code = cli_fail("plan", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
    goto out;
  }
  if (notice[0]) fprintf(o.format == PS_PLAN_TEXT ? stdout : stderr, "%s\n", notice);
  for (int i = 0; o.format == PS_PLAN_TEXT && i < node_count; i++)
    if (!nodes[i]->verified && nodes[i]->source == PS_SOURCE_FILE)
      printf("Topology %s: driver claims only, not verified.\n", nodes[i]->origin);
  fputs(text, stdout);
  code = plan->feasible ? EXIT_VERIFIED : EXIT_FINDING;
out:
  ps_free(text);
  for (int i = 0; i < node_count; i++)
    ps_report_free(nodes[i]);
  free(plan);
  free(model);
  ps_ctx_free(ctx);
  return code;
}
