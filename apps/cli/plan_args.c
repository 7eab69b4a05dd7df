#include "plan_args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where to plan: options of the CLI only (the request's own come from the library's table). */
enum { O_TOPO = CLI_PLAN_OPTION_BASE + 100, O_CLAIMS, O_GPUMEM, O_GPUINFO };

static const struct option sources[] = {
    {"topology", required_argument, 0, O_TOPO},
    {"p2p-claims", required_argument, 0, O_CLAIMS},
    {"gpu-mem", required_argument, 0, O_GPUMEM},
    {"gpu-info", required_argument, 0, O_GPUINFO},
};

int cli_plan_options_copy(struct option *out, int cap) {
  int n = 0;
  for (int i = 0; i < ps_plan_field_count() && n < cap; i++) {
    const ps_plan_field *f = ps_plan_field_at(i);
    out[n++] = (struct option){f->flag, f->type == PS_FIELD_BOOL ? no_argument : required_argument,
                               0, CLI_PLAN_OPTION_BASE + i};
  }
  for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]) && n < cap; i++)
    out[n++] = sources[i];
  return cli_source_options(out, n, cap, CLI_SRC_MACHINE | CLI_SRC_ALL_GPUS);
}

int cli_plan_args_init(cli_plan_args *a) {
  memset(a, 0, sizeof(*a));
  a->source.verify = true;
  if (ps_plan_input_new(NULL, &a->in) != PS_OK)
    return cli_fail("plan", EXIT_INTERNAL, "out of memory");
  ps_plan_input_use_flags(a->in);
  return EXIT_VERIFIED;
}

void cli_plan_args_free(cli_plan_args *a) {
  ps_plan_input_free(a->in);
  a->in = NULL;
  free(a->topologies);
  a->topologies = NULL;
  a->topology_count = a->topology_cap = 0;
}

/* One more --topology; how many nodes a plan takes is the planner's to say. */
static bool add_topology(cli_plan_args *a, const char *path) {
  if (a->topology_count == a->topology_cap) {
    int cap = a->topology_cap ? a->topology_cap * 2 : 8;
    const char **grown = realloc(a->topologies, (size_t)cap * sizeof(*grown));
    if (!grown) return false;
    a->topologies = grown;
    a->topology_cap = cap;
  }
  a->topologies[a->topology_count++] = path;
  return true;
}

static bool parse_double(const char *text, double min, double max, double *out) {
  char *end = NULL;
  double v = strtod(text, &end);
  if (!text[0] || *end || !isfinite(v) || v < min || v > max) return false;
  *out = v;
  return true;
}

/* A field of the request: the library parses it, except --gpus, which may name UUIDs and is
 * resolved on the report (cli_resolve_gpus) before it goes into the request. */
static int field_option(const char *cmd, int i, const char *arg, cli_plan_args *a) {
  const ps_plan_field *f = ps_plan_field_at(i);
  if (f->type == PS_FIELD_GPUS) {
    a->sel.text = arg;
    return EXIT_VERIFIED;
  }
  char key[96];
  snprintf(key, sizeof(key), "--%s", f->flag);
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
  int code = EXIT_VERIFIED;
  if (ps_plan_input_set(ctx, a->in, key, arg ? arg : "true") != PS_OK)
    code = cli_fail(cmd, EXIT_USAGE, "%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return code;
}

int cli_plan_option(const char *cmd, int id, const char *arg, const char *flag, cli_plan_args *a) {
  (void)flag;
  int field = id - CLI_PLAN_OPTION_BASE;
  if (field >= 0 && field < ps_plan_field_count()) return field_option(cmd, field, arg, a);
  switch (id) {
  case O_TOPO:
    if (!add_topology(a, arg)) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
    break;
  case O_CLAIMS: a->p2p_claims = arg; break;
  case O_GPUMEM: a->gpu_mem = arg; break;
  case O_GPUINFO: a->gpu_info = arg; break;
  default: return cli_source_option(cmd, id, arg, &a->source, NULL);
  }
  return EXIT_VERIFIED;
}

int cli_plan_check(const char *cmd, const cli_plan_args *a) {
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
  int code = EXIT_VERIFIED;
  if (ps_plan_input_check(ctx, a->in) != PS_OK)
    code = cli_fail(cmd, EXIT_USAGE, "%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  if (code) return code;
  if ((a->p2p_claims || a->gpu_mem || a->gpu_info) && !a->topology_count)
    return cli_fail(cmd, EXIT_USAGE,
                    "--p2p-claims, --gpu-mem and --gpu-info describe a --topology file");
  if ((a->p2p_claims || a->gpu_info || a->sel.text) && a->topology_count > 1)
    return cli_fail(cmd, EXIT_USAGE,
                    "--p2p-claims, --gpu-info and --gpus describe one node; "
                    "with several --topology files, put them in each report");
  return EXIT_VERIFIED;
}

int cli_plan_load_model(const char *cmd, const cli_plan_args *a, ps_ctx *ctx, ps_model **model) {
  ps_model_source *src = NULL;
  ps_status st = ps_plan_input_model_source(ctx, a->in, model, &src);
  /* Where the facts of a model given by id came from (stderr: stdout stays the plan). */
  if (st == PS_OK && src && src->origin != PS_MODEL_FROM_DIRECTORY)
    fprintf(stderr, "peerscope %s: model %s from the %s\n", cmd, src->given, src->where);
  ps_model_source_free(src);
  if (st == PS_OK) return EXIT_VERIFIED;
  return cli_fail(cmd,
                  st == PS_ERR_INVALID_ARG                    ? EXIT_USAGE
                  : st == PS_ERR_BAD_INPUT || st == PS_ERR_IO ? EXIT_BAD_INPUT
                  : st == PS_ERR_NETWORK                      ? EXIT_NETWORK
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
  if (ps_capture_is_archive(path)) {
    /* A peerscope capture: its recorded report, verdicts included. */
    ps_capture *cap = NULL;
    if ((code = cli_replay_open(cmd, path, NULL, &cap, &r)) != EXIT_VERIFIED) return code;
    ps_capture_free(cap);
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

int cli_plan_load_nodes(const char *cmd, cli_plan_args *a, ps_ctx *ctx, ps_report ***nodes, int *n,
                        char *notice, size_t notice_len) {
  *n = 0;
  notice[0] = '\0';
  *nodes = calloc(a->topology_count ? (size_t)a->topology_count : 1, sizeof(**nodes));
  if (!*nodes) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
  if (!a->topology_count) {
    int code = cli_load_report(cmd, &a->source, &a->sel, &(*nodes)[0], notice, notice_len);
    *n = code ? 0 : 1;
    return code;
  }
  for (int i = 0; i < a->topology_count; i++) {
    int code = import_node(cmd, a, ctx, a->topologies[i], &(*nodes)[i]);
    if (code) return code;
    *n = i + 1;
  }
  return EXIT_VERIFIED;
}

void cli_plan_nodes_free(ps_report **nodes, int n) {
  for (int i = 0; nodes && i < n; i++)
    ps_report_free(nodes[i]);
  free(nodes);
}

int cli_plan_request(const char *cmd, cli_plan_args *a, const ps_model *model,
                     const char *model_path, ps_plan_request *req) {
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
  int code = EXIT_VERIFIED;
  ps_status st = ps_plan_input_set_gpus(ctx, a->in, a->sel.gpus, a->sel.count);
  if (st == PS_OK) st = ps_plan_input_request(ctx, a->in, model, req);
  if (st != PS_OK) /* a bad --vllm-log is a bad input file */
    code = cli_fail(cmd, st == PS_ERR_BAD_INPUT || st == PS_ERR_IO ? EXIT_BAD_INPUT : EXIT_USAGE,
                    "%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  if (!code && model_path) req->model_path = model_path;
  return code;
}

int cli_plan_store_calibration(const char *cmd, ps_ctx *ctx, const ps_report *report,
                               const ps_plan_request *req, const char *source) {
  ps_vllm_calibration *cal = NULL;
  ps_status st = ps_vllm_calibration_make(ctx, report, req, source, &cal);
  if (st != PS_OK)
    return cli_fail(cmd, st == PS_ERR_BAD_INPUT ? EXIT_BAD_INPUT : EXIT_INTERNAL, "%s",
                    ps_ctx_error(ctx));
  char what[512];
  ps_vllm_calibration_describe(cal, what, sizeof(what));
  if (ps_vllm_calibration_store(ctx, NULL, cal) == PS_OK)
    fprintf(stderr, "peerscope %s: figures %s kept for later plans\n", cmd, what);
  else
    fprintf(stderr, "peerscope %s: figures %s not kept: %s\n", cmd, what, ps_ctx_error(ctx));
  ps_vllm_calibration_free(cal);
  return EXIT_VERIFIED;
}
