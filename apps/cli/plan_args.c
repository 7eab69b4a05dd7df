#include "plan_args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
  O_MODEL = CLI_PLAN_OPTION_BASE,
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
  O_FIXTURE,
  O_LIVE,
  O_REFRESH,
  O_TIMEOUT_MS
};

static const struct option shared[] = {
    {"model", required_argument, 0, O_MODEL},
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
    {"fixture", required_argument, 0, O_FIXTURE},
    {"live", no_argument, 0, O_LIVE},
    {"refresh", no_argument, 0, O_REFRESH},
    {"timeout-ms", required_argument, 0, O_TIMEOUT_MS},
};

int cli_plan_options_copy(struct option *out, int cap) {
  int n = (int)(sizeof(shared) / sizeof(shared[0]));
  if (n > cap) n = cap;
  memcpy(out, shared, (size_t)n * sizeof(*out));
  return n;
}

void cli_plan_args_init(cli_plan_args *a) {
  memset(a, 0, sizeof(*a));
  a->source.verify = true;
}

static bool parse_double(const char *text, double min, double max, double *out) {
  char *end = NULL;
  double v = strtod(text, &end);
  if (!text[0] || *end || !isfinite(v) || v < min || v > max) return false;
  *out = v;
  return true;
}

int cli_plan_option(const char *cmd, int id, const char *arg, const char *flag, cli_plan_args *a) {
  const char *bad = NULL;
  switch (id) {
  case O_MODEL: a->model_dir = arg; break;
  case O_SIZE:
    if (!parse_double(arg, 0.001, 1e6, &a->size_gb)) bad = "a size in GB";
    break;
  case O_PARAMS:
    if (!parse_double(arg, 0.001, 1e5, &a->params_b)) bad = "billions of parameters";
    break;
  case O_DTYPE: a->dtype = arg; break;
  case O_TOPO:
    if (a->topology_count == CLI_PLAN_MAX_NODES)
      bad = "one more node: peerscope plans at most 8";
    else
      a->topologies[a->topology_count++] = arg;
    break;
  case O_CLAIMS: a->p2p_claims = arg; break;
  case O_GPUMEM: a->gpu_mem = arg; break;
  case O_GPUINFO: a->gpu_info = arg; break;
  case O_TP:
    if (!cli_parse_int(arg, 1, CLI_MAX_GPUS, &a->tp)) bad = "a positive integer";
    break;
  case O_PP:
    if (!cli_parse_int(arg, 1, CLI_MAX_GPUS, &a->pp)) bad = "a positive integer";
    break;
  case O_GPUS: a->sel.text = arg; break;
  case O_UTIL:
    if (!parse_double(arg, 0.01, 1.0, &a->util)) bad = "a fraction in (0, 1]";
    break;
  case O_LEN:
    if (!cli_parse_int(arg, 1, 1 << 30, &a->max_model_len)) bad = "a positive integer";
    break;
  case O_SEQS:
    if (!cli_parse_int(arg, 1, 1 << 20, &a->max_num_seqs)) bad = "a positive integer";
    break;
  case O_KV: a->kv_dtype = arg; break;
  case O_RESERVE:
    if (!parse_double(arg, 0, 1e4, &a->reserve_gb)) bad = "GB, 0 or more";
    break;
  case O_OBJ:
    if (strcmp(arg, "throughput") == 0)
      a->objective = PS_OBJECTIVE_THROUGHPUT;
    else if (strcmp(arg, "latency") == 0)
      a->objective = PS_OBJECTIVE_LATENCY;
    else
      bad = "throughput or latency";
    break;
  case O_FIXTURE: a->source.fixture = arg; break;
  case O_LIVE: a->source.live = true; break;
  case O_REFRESH: a->source.refresh = true; break;
  case O_TIMEOUT_MS:
    if (!cli_parse_int(arg, 1, 3600000, &a->source.timeout_ms)) bad = "a positive integer";
    break;
  default: return -1;
  }
  if (bad) return cli_fail(cmd, EXIT_USAGE, "%s: '%s' is not %s", flag, arg, bad);
  return EXIT_VERIFIED;
}

int cli_plan_check(const char *cmd, const cli_plan_args *a) {
  int sources = (a->model_dir != NULL) + (a->size_gb > 0) + (a->params_b > 0);
  if (sources != 1)
    return cli_fail(cmd, EXIT_USAGE,
                    "give exactly one of --model DIR, --model-size-gb X, "
                    "--params-b N");
  if (a->dtype && a->params_b <= 0)
    return cli_fail(cmd, EXIT_USAGE, "--dtype goes with --params-b");
  if ((a->p2p_claims || a->gpu_mem || a->gpu_info) && !a->topology_count)
    return cli_fail(cmd, EXIT_USAGE,
                    "--p2p-claims, --gpu-mem and --gpu-info describe a --topology file");
  if ((a->p2p_claims || a->gpu_info || a->sel.text) && a->topology_count > 1)
    return cli_fail(cmd, EXIT_USAGE,
                    "--p2p-claims, --gpu-info and --gpus describe one node; "
                    "with several --topology files, put them in each report");
  return EXIT_VERIFIED;
}

int cli_plan_load_model(const char *cmd, const cli_plan_args *a, ps_ctx *ctx, ps_model *model) {
  ps_status st = a->model_dir ? ps_model_load(ctx, a->model_dir, model)
                              : ps_model_synthetic(ctx, a->params_b, a->dtype ? a->dtype : "bf16",
                                                   a->size_gb, model);
  if (st == PS_OK) return EXIT_VERIFIED;
  return cli_fail(cmd,
                  st == PS_ERR_INVALID_ARG                    ? EXIT_USAGE
                  : st == PS_ERR_BAD_INPUT || st == PS_ERR_IO ? EXIT_BAD_INPUT
                                                              : EXIT_INTERNAL,
                  "%s", ps_ctx_error(ctx));
}

static int apply_gpu_mem(const char *cmd, const char *text, ps_ctx *ctx, ps_report *r) {
  double values[CLI_MAX_GPUS];
  int n = 0;
  const char *p = text;
  while (*p && n < CLI_MAX_GPUS) {
    char item[64];
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof(item))
      return cli_fail(cmd, EXIT_USAGE, "--gpu-mem: '%s' is not a list of sizes in GB", text);
    memcpy(item, p, len);
    item[len] = '\0';
    if (!parse_double(item, 0.1, 1e5, &values[n]))
      return cli_fail(cmd, EXIT_USAGE, "--gpu-mem: '%s' is not a list of sizes in GB", text);
    n++;
    p += len;
    if (*p == ',') p++;
  }
  if (ps_report_set_gpu_memory(ctx, r, values, n) != PS_OK)
    return cli_fail(cmd, EXIT_USAGE, "--gpu-mem: %s", ps_ctx_error(ctx));
  return EXIT_VERIFIED;
}

/* One imported node: the file, then the claims, GPU facts and memory given for it. */
static int import_node(const char *cmd, cli_plan_args *a, ps_ctx *ctx, const char *path,
                       ps_report **out) {
  ps_report *r = NULL;
  int code = EXIT_VERIFIED;
  if (ps__capture_is_archive(path)) {
    /* A peerscope capture: its recorded report, verdicts included. */
    ps_capture cap;
    if ((code = cli_replay_open(cmd, path, false, &cap, &r)) != EXIT_VERIFIED) return code;
    ps__capture_close(&cap);
  } else if (ps_import_topology(ctx, path, &r) != PS_OK) {
    return cli_fail(cmd, EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  }
  if (a->p2p_claims && ps_import_p2p_claims(ctx, r, a->p2p_claims) != PS_OK)
    code = cli_fail(cmd, EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  if (!code && a->gpu_info && ps_import_gpu_info(ctx, r, a->gpu_info) != PS_OK)
    code = cli_fail(cmd, EXIT_BAD_INPUT, "%s", ps_ctx_error(ctx));
  if (!code && a->gpu_mem) code = apply_gpu_mem(cmd, a->gpu_mem, ctx, r);
  if (!code) code = cli_resolve_gpus(cmd, r, &a->sel);
  if (code) {
    ps_report_free(r);
    return code;
  }
  *out = r;
  return EXIT_VERIFIED;
}

int cli_plan_load_nodes(const char *cmd, cli_plan_args *a, ps_ctx *ctx, ps_report **nodes, int *n,
                        char *notice, size_t notice_len) {
  *n = 0;
  notice[0] = '\0';
  if (!a->topology_count) {
    int code = cli_load_report(cmd, &a->source, &a->sel, &nodes[0], notice, notice_len);
    *n = code ? 0 : 1;
    return code;
  }
  for (int i = 0; i < a->topology_count; i++) {
    int code = import_node(cmd, a, ctx, a->topologies[i], &nodes[i]);
    if (code) return code;
    *n = i + 1;
  }
  return EXIT_VERIFIED;
}

void cli_plan_request(const cli_plan_args *a, const ps_model *model, const char *model_path,
                      ps_plan_request *req) {
  memset(req, 0, sizeof(*req));
  req->model = model;
  req->tp = a->tp;
  req->pp = a->pp;
  req->gpus = a->sel.count ? a->sel.gpus : NULL;
  req->gpu_count = a->sel.count;
  req->gpu_memory_utilization = a->util;
  req->max_model_len = a->max_model_len;
  req->max_num_seqs = a->max_num_seqs;
  req->kv_cache_dtype = a->kv_dtype;
  req->reserve_gib = a->reserve_gb;
  req->objective = a->objective;
  req->model_path = model_path;
}
