/* The options `plan` and `launch` share: the model, where to plan, and the request. One
 * parser, one loader, so the two commands cannot drift apart. */
#ifndef PS_CLI_PLAN_ARGS_H
#define PS_CLI_PLAN_ARGS_H

#include <getopt.h>

#include "cli.h"
#include "source_args.h"

typedef struct cli_plan_args {
  cli_source source;
  cli_selection sel; /* --gpus: resolved on the report (UUIDs), then into `in` */
  ps_plan_input *in; /* the plan request's fields (the library's table) */
  const char *p2p_claims, *gpu_mem, *gpu_info;
  const char **topologies; /* --topology, once per node; node 0 is the head (the planner caps) */
  int topology_count, topology_cap;
} cli_plan_args;

/* getopt_long entries for the shared options: one per field of the library's plan request
 * table (ps_plan_field_at), then where to plan; ids from CLI_PLAN_OPTION_BASE up. A command
 * copies them into its own table (cli_plan_options_copy) and hands unknown ids back here. */
#define CLI_PLAN_OPTION_BASE 1000
#define CLI_PLAN_MAX_OPTIONS 80
int cli_plan_options_copy(struct option *out, int cap);

/* --help lines of the request's fields in `group` ("model", "plan"; NULL = all), from the
 * table. cli_plan_synopsis: "[--tp N] [--pp N] ..." wrapped at `indent`; cli_plan_flags:
 * "--tp N, --pp N, ..." wrapped at two spaces. */
void cli_plan_help(FILE *f, const char *group);
void cli_plan_synopsis(FILE *f, const char *group, int indent);
void cli_plan_flags(FILE *f, const char *group, const char *then);

/* Exit code (out of memory); cli_plan_args_free releases what init made. */
int cli_plan_args_init(cli_plan_args *a);
void cli_plan_args_free(cli_plan_args *a);
/* Handles the shared option `id` with `arg` (the option as typed is `flag`, for messages).
 * Returns -1 when `id` is not a shared option, else an exit code (0 = fine). */
int cli_plan_option(const char *cmd, int id, const char *arg, const char *flag, cli_plan_args *a);
/* Checks that go across options (exactly one model source, ...). Exit code. */
int cli_plan_check(const char *cmd, const cli_plan_args *a);

/* The model: a directory, or a synthetic one from its size (ps_plan_input_model); *model:
 * ps_model_free. Exit code. */
int cli_plan_load_model(const char *cmd, const cli_plan_args *a, ps_ctx *ctx, ps_model **model);
/* The live (or fixture) machine, or every --topology file with its claims, GPU facts and
 * memory. *n nodes are returned in *nodes (allocated here, also on failure): free them with
 * cli_plan_nodes_free. Exit code. */
void cli_plan_nodes_free(ps_report **nodes, int n);
int cli_plan_load_nodes(const char *cmd, cli_plan_args *a, ps_ctx *ctx, ps_report ***nodes, int *n,
                        char *notice, size_t notice_len);
/* The request for ps_plan_make_cluster (borrows from a and model); model_path NULL = the
 * model directory. Exit code. */
int cli_plan_request(const char *cmd, cli_plan_args *a, const ps_model *model,
                     const char *model_path, ps_plan_request *req);

/* The measured figures of req->vllm_log for `req` on `report` into the cache (a note on
 * stderr; a cache that cannot be written is a note, not a failure). `source`: "log" or
 * "launch". Exit code: 3 when the log contradicts the model or the request. */
int cli_plan_store_calibration(const char *cmd, ps_ctx *ctx, const ps_report *report,
                               const ps_plan_request *req, const char *source);

#endif
