/* peerscope launch: plan, then start `vllm serve` with the plan's arguments and environment,
 * stream its log, wait for /health, summarise the start-up, and stop it cleanly. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plan_args.h"

static void launch_help(FILE *f) {
  fputs(
      "usage: peerscope launch MODEL [plan options] [--port P] [--host H] [--vllm PATH]\n"
      "                        [--timeout S] [--stop-grace S] [--nccl-debug] [--dry-run] [-- "
      "extra vllm args]\n"
      "\n"
      "Plans vLLM for MODEL on this machine (as `peerscope plan` does), starts `vllm serve` with\n"
      "the plan, streams its log, waits for GET /health and prints the served URL. Ctrl-C or\n"
      "SIGTERM stops vLLM and all its workers.\n"
      "\n"
      "  MODEL                    a model directory or a Hugging Face id org/name[@revision]\n"
      "                           (vLLM gets it as given); with --model-size-gb or --params-b,\n"
      "                           any name passed to vLLM as is\n"
      "  --model DIR|ID           the same as MODEL for a directory or an id\n"
      "  --model-size-gb X, --params-b N [--dtype D]   size of a model given by name\n",
      f);
  cli_plan_flags(f, "plan", "as for peerscope plan");
  fputs(
      "  --fixture FILE, --live, --topology FILE, --refresh, --timeout-ms N   where to plan\n"
      "  --port P                 vLLM's port (default 8000), on --host (default 127.0.0.1)\n"
      "  --vllm PATH              the vllm executable (default: vllm in PATH)\n"
      "  --timeout S              seconds to wait for /health (default 900)\n"
      "  --stop-grace S           seconds between SIGTERM and SIGKILL when stopping (default 15)\n"
      "  --nccl-debug             NCCL_DEBUG=INFO, to report the NCCL transport used\n"
      "  --dry-run                print the environment and command, start nothing\n"
      "  -- ARGS                  more vllm serve arguments; where they contradict the plan\n"
      "                           (--tensor-parallel-size ...) they win, and peerscope says so\n"
      "\n"
      "Exit codes: vLLM's exit status when it exited by itself; 0 when it came up and was\n"
      "stopped (Ctrl-C, SIGTERM) or for --dry-run; 1 nothing fits, /health not answered before\n"
      "--timeout, or the port is taken; 2 usage error; 3 bad input; 4 driver unavailable;\n"
      "5 internal error; 7 the Hugging Face Hub could not answer for a model id; 127 vLLM not\n"
      "installed; 130 stopped before it came up.\n",
      f);
}

enum { EXIT_NOT_INSTALLED = 127, EXIT_INTERRUPTED = 130 };

typedef struct launch_opts {
  cli_plan_args plan; /* the options launch shares with plan */
  const char *model, *vllm, *host;
  int port, timeout_s, grace_s;
  bool dry_run, nccl_debug;
  char **extra;
  int extra_count;
} launch_opts;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static bool is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A well-formed Hugging Face id (org/name[@revision]). */
static bool is_id(const char *text) {
  ps_model_id *id = NULL;
  bool ok = ps_model_id_parse(NULL, text, &id) == PS_OK;
  ps_model_id_free(id);
  return ok;
}

static int check_model(launch_opts *o) {
  char dir[1100] = "";
  bool has_dir = ps_plan_input_get(o->plan.in, "model_dir", dir, sizeof(dir));
  int sizes = ps_plan_input_get(o->plan.in, "model_size_gb", NULL, 0) +
              ps_plan_input_get(o->plan.in, "params_b", NULL, 0);
  if (o->model && has_dir)
    return cli_fail("launch", EXIT_USAGE, "give MODEL or --model DIR|ID, not both");
  /* A directory, or an id whose size is not given: peerscope reads it (cache, catalog, Hub). */
  if (o->model && (is_dir(o->model) || (!sizes && is_id(o->model)))) {
    ps_ctx *ctx = ps_ctx_new();
    bool ok = ctx && ps_plan_input_set(ctx, o->plan.in, "--model", o->model) == PS_OK;
    if (!ok) cli_fail("launch", EXIT_USAGE, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
    ps_ctx_free(ctx);
    if (!ok) return EXIT_USAGE;
    has_dir = ps_plan_input_get(o->plan.in, "model_dir", dir, sizeof(dir));
  }
  if (!o->model && !has_dir)
    return cli_fail("launch", EXIT_USAGE, "no model (see peerscope launch --help)");
  if (has_dir && sizes)
    return cli_fail("launch", EXIT_USAGE,
                    "%s is a model directory or id: its size comes from its files, drop "
                    "--model-size-gb / --params-b",
                    dir);
  if (!has_dir && sizes != 1)
    return cli_fail("launch", EXIT_USAGE,
                    "'%s' is not a directory or a Hugging Face id (org/name): it goes to vLLM "
                    "as a model name, and peerscope needs its size (--model-size-gb X or "
                    "--params-b N)",
                    o->model);
  return EXIT_VERIFIED;
}

static int parse(int argc, char **argv, launch_opts *o) {
  enum { O_PORT = 1, O_HOST, O_VLLM, O_TIMEOUT, O_GRACE, O_NCCL, O_DRY, O_HELP };
  struct option longs[CLI_PLAN_MAX_OPTIONS + 10];
  int n = cli_plan_options_copy(longs, CLI_PLAN_MAX_OPTIONS);
  longs[n++] = (struct option){"port", required_argument, 0, O_PORT};
  longs[n++] = (struct option){"host", required_argument, 0, O_HOST};
  longs[n++] = (struct option){"vllm", required_argument, 0, O_VLLM};
  longs[n++] = (struct option){"timeout", required_argument, 0, O_TIMEOUT};
  longs[n++] = (struct option){"stop-grace", required_argument, 0, O_GRACE};
  longs[n++] = (struct option){"nccl-debug", no_argument, 0, O_NCCL};
  longs[n++] = (struct option){"dry-run", no_argument, 0, O_DRY};
  longs[n++] = (struct option){"help", no_argument, 0, O_HELP};
  longs[n] = (struct option){0, 0, 0, 0};
  memset(o, 0, sizeof(*o));
  if (cli_plan_args_init(&o->plan)) return EXIT_INTERNAL;
  /* Everything after "--" belongs to vLLM: cut it off before getopt sees (and permutes) it. */
  int own = argc;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) {
      own = i;
      o->extra = argv + i + 1;
      o->extra_count = argc - i - 1;
      break;
    }
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(own, argv, "h", longs, NULL)) != -1) {
    const char *bad = NULL;
    switch (c) {
    case O_PORT:
      if (!cli_parse_int(optarg, 1, 65535, &o->port)) bad = "a port number (1-65535)";
      break;
    case O_HOST: o->host = optarg; break;
    case O_VLLM: o->vllm = optarg; break;
    case O_TIMEOUT:
      if (!cli_parse_int(optarg, 1, 86400, &o->timeout_s)) bad = "seconds (1-86400)";
      break;
    case O_GRACE:
      if (!cli_parse_int(optarg, 1, 3600, &o->grace_s)) bad = "seconds (1-3600)";
      break;
    case O_NCCL: o->nccl_debug = true; break;
    case O_DRY: o->dry_run = true; break;
    case 'h':
    case O_HELP: launch_help(stdout); return -1;
    default: {
      if (c == '?' && optopt)
        return cli_fail("launch", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
      int code = c == '?' ? -1 : cli_plan_option("launch", c, optarg, argv[optind - 2], &o->plan);
      if (code > 0) return code;
      if (code < 0)
        return cli_fail("launch", EXIT_USAGE,
                        "unknown option '%s' (vLLM's own options go after --; see peerscope "
                        "launch --help)",
                        argv[optind - 1]);
    }
    }
    if (bad)
      return cli_fail("launch", EXIT_USAGE, "%s: '%s' is not %s", argv[optind - 2], optarg, bad);
  }
  if (optind < own) o->model = argv[optind++];
  if (optind < own)
    return cli_fail("launch", EXIT_USAGE, "unexpected argument '%s' (vLLM's go after --)",
                    argv[optind]);
  if (o->plan.topology_count > 1)
    return cli_fail("launch", EXIT_USAGE,
                    "launch starts vLLM on this node; plan several nodes "
                    "with peerscope plan and start Ray as it says");
  int code = check_model(o);
  return code ? code : cli_plan_check("launch", &o->plan);
}

/* What the plan was made from, kept for the calibration after the run. */
typedef struct launch_basis {
  ps_model *model;
  ps_report *report;
  ps_plan_request req;
} launch_basis;

static void basis_free(launch_basis *b) {
  ps_report_free(b->report);
  ps_model_free(b->model);
}

static int make_plan(launch_opts *o, ps_ctx *ctx, launch_basis *b, ps_plan **plan) {
  ps_report **nodes = NULL;
  int node_count = 0;
  char notice[1024] = "";
  int code = EXIT_VERIFIED;
  if ((code = cli_plan_load_model("launch", &o->plan, ctx, &b->model))) goto out;
  if ((code = cli_plan_load_nodes("launch", &o->plan, ctx, &nodes, &node_count, notice,
                                  sizeof(notice))))
    goto out;
  b->report = nodes[0];
  nodes[0] = NULL;
  if (notice[0]) fprintf(stderr, "%s\n", notice);
  b->req = (ps_plan_request)PS_INIT(ps_plan_request);
  bool has_dir = ps_plan_input_get(o->plan.in, "model_dir", NULL, 0);
  if ((code = cli_plan_request("launch", &o->plan, b->model, has_dir ? NULL : o->model, &b->req)))
    goto out;
  /* the version of the vLLM this launch runs (--vllm), unless one is given */
  static char version[32], why[700];
  if (!ps_plan_input_get(o->plan.in, "vllm_version", NULL, 0) && o->vllm &&
      ps_vllm_installed_version(o->vllm, version, sizeof(version), why, sizeof(why))) {
    b->req.vllm_version = version;
    b->req.vllm_version_note = why;
  }
  ps_status st = ps_plan_make(ctx, b->report, &b->req, plan);
  if (st != PS_OK)
    code = cli_fail("launch",
                    st == PS_ERR_INVALID_ARG ? EXIT_USAGE
                    : st == PS_ERR_BAD_INPUT ? EXIT_BAD_INPUT
                                             : EXIT_INTERNAL,
                    "%s", ps_ctx_error(ctx));
  else if (!(*plan)->feasible)
    code = cli_fail("launch", EXIT_FINDING, "nothing to launch: %s", (*plan)->summary);
out:
  cli_plan_nodes_free(nodes, node_count);
  return code;
}

/* Shell quoting for display only: the command itself is an argv array, never a shell line. */
static void print_word(FILE *f, const char *w) {
  bool plain = *w != '\0';
  for (const char *p = w; *p && plain; p++)
    plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%",
                   *p) != NULL;
  if (plain) {
    fputs(w, f);
    return;
  }
  fputc('\'', f);
  for (const char *p = w; *p; p++)
    if (*p == '\'')
      fputs("'\\''", f);
    else
      fputc(*p, f);
  fputc('\'', f);
}

static void print_command(FILE *f, const ps_launch_cmd *cmd) {
  for (int i = 0; i < cmd->envc; i++) {
    print_word(f, cmd->env[i]);
    fputs(" \\\n  ", f);
  }
  for (int i = 0; i < cmd->argc; i++) {
    if (i) fputc(' ', f);
    print_word(f, cmd->argv[i]);
  }
  fputc('\n', f);
}

static void print_conflicts(const ps_launch_cmd *cmd) {
  for (int i = 0; i < cmd->conflict_count; i++) {
    const ps_launch_conflict *c = &cmd->conflicts[i];
    bool gpus = strcmp(c->flag, "--tensor-parallel-size") == 0 ||
                strcmp(c->flag, "--pipeline-parallel-size") == 0;
    fprintf(stderr,
            "peerscope launch: %s %s (after --) contradicts the plan's %s %s; your value wins%s\n",
            c->flag, c->user_value, c->flag, c->plan_value,
            gpus ? " (the plan's GPUs and memory are for its own value: --tp/--pp plan yours)"
                 : "");
  }
}

/* The run as the callbacks see it: the plan, and vLLM's log up to the moment it came up
 * (what sizes the KV cache), kept for the calibration. */
typedef struct launch_watch {
  const ps_plan *plan;
  char *log;
  size_t len, cap;
  bool up;
} launch_watch;

#define LOG_KEEP_MAX (16u << 20)

static void keep_line(launch_watch *w, const char *line) {
  size_t n = strlen(line);
  if (w->up || w->len + n + 2 > LOG_KEEP_MAX) return;
  if (w->len + n + 2 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 1 << 16;
    while (cap < w->len + n + 2)
      cap *= 2;
    char *more = realloc(w->log, cap);
    if (!more) return;
    w->log = more;
    w->cap = cap;
  }
  memcpy(w->log + w->len, line, n);
  w->len += n;
  w->log[w->len++] = '\n';
}

static void on_line(void *user, int stream, const char *line) {
  if (stream > 0) keep_line(user, line);
  printf("%s %s\n", stream == 0 ? "[peerscope]" : "[vllm]", line);
}

static void print_summary(const ps_launch_result *r, const ps_plan *plan) {
  const ps_log_summary *s = &r->summary;
  printf("Start-up summary:\n");
  if (s->custom_all_reduce < 0)
    printf("  custom all-reduce: not stated (one GPU, or vLLM did not say)\n");
  else
    printf(
        "  custom all-reduce: %s%s%s%s%s\n", s->custom_all_reduce ? "on" : "off",
        s->custom_all_reduce_reason[0] ? " (" : "", s->custom_all_reduce_reason,
        s->custom_all_reduce_reason[0] ? ")" : "",
        plan->tp > 1 && (s->custom_all_reduce == 1) != plan->custom_all_reduce
            ? (plan->custom_all_reduce ? "; the plan expected it on" : "; the plan expected it off")
            : "");
  if (s->nccl_transports)
    printf("  NCCL transport:%s%s%s\n", s->nccl_transports & PS_NCCL_P2P ? " P2P/IPC" : "",
           s->nccl_transports & PS_NCCL_SHM ? " SHM" : "",
           s->nccl_transports & PS_NCCL_NET ? " NET" : "");
  else
    printf("  NCCL transport: not logged (--nccl-debug sets NCCL_DEBUG=INFO)\n");
  if (s->kv_cache_tokens >= 0)
    printf("  KV cache: %lld tokens (planned %llu)\n", (long long)s->kv_cache_tokens,
           (unsigned long long)plan->kv_tokens);
  if (s->max_concurrency >= 0)
    printf("  max concurrency: %.2fx at %lld tokens per request\n", s->max_concurrency,
           (long long)s->concurrency_tokens);
  if (s->failure != PS_LOG_FAIL_NONE) {
    char hint[1024];
    ps_log_suggest(s, plan, hint, sizeof(hint));
    printf("  failure: %s\n  suggestion: %s\n", s->failure_line, hint);
  }
}

static void on_ready(void *user, const ps_launch_result *r) {
  launch_watch *w = user;
  const ps_plan *plan = w->plan;
  w->up = true;
  print_summary(r, plan);
  printf("[peerscope] serving %s at %s/v1 (up after %.1f s); Ctrl-C stops it\n", plan->model_arg,
         r->url, r->up_after_s);
}

/* vLLM came up: its measured figures into the cache, for later plans of this setup. A log
 * that does not calibrate (a version not modelled, figures of another model) is a note. */
static void calibrate(launch_basis *b, const ps_plan *plan, const launch_watch *w, ps_ctx *ctx) {
  ps_vllm_log *log = NULL;
  if (ps_vllm_log_read(ctx, w->log, w->len, "vLLM's log", &log) != PS_OK) {
    printf("[peerscope] measured figures not kept: %s\n", ps_ctx_error(ctx));
    return;
  }
  ps_plan_request req = b->req;
  req.vllm_log = log;
  req.tp = plan->tp;
  req.gpus = plan->gpus;
  req.gpu_count = plan->gpu_count;
  req.gpu_memory_utilization = plan->gpu_memory_utilization;
  req.max_model_len = plan->max_model_len;
  if (cli_plan_store_calibration("launch", ctx, b->report, &req, "launch"))
    printf("[peerscope] measured figures not kept (see above)\n");
  ps_vllm_log_free(log);
}

static int run(const launch_opts *o, const ps_plan *plan, ps_launch_opts *lo,
               const ps_launch_cmd *cmd, ps_ctx *ctx, launch_basis *b) {
  struct sigaction sa = {0};
  sa.sa_handler = on_signal; /* no SA_RESTART: the wait in poll() returns at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a closed output pipe must not kill peerscope and orphan vLLM */
  lo->stop = (const volatile int *)&stop_requested;
  lo->on_line = on_line;
  lo->on_ready = on_ready;
  launch_watch w = {.plan = plan};
  lo->user = &w;
  printf("[peerscope] plan: %s\n[peerscope] starting: ", plan->summary);
  print_command(stdout, cmd);
  fflush(stdout);
  ps_launch_result *r = NULL;
  int code;
  if (ps_launch_run(ctx, cmd, lo, &r) != PS_OK) {
    code = cli_fail("launch", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
    goto out;
  }
  switch (r->outcome) {
  case PS_LAUNCH_NOT_FOUND:
    code = cli_fail("launch", EXIT_NOT_INSTALLED,
                    "'%s' not found: install vLLM (pip install vllm, see "
                    "https://docs.vllm.ai/en/latest/getting_started/installation/) or give "
                    "--vllm PATH",
                    cmd->argv[0]);
    goto out;
  case PS_LAUNCH_PORT_IN_USE:
    code =
        cli_fail("launch", EXIT_FINDING, "%s: choose another with --port", r->summary.failure_line);
    goto out;
  case PS_LAUNCH_STOPPED: code = EXIT_VERIFIED; break;
  case PS_LAUNCH_INTERRUPTED: code = EXIT_INTERRUPTED; break;
  case PS_LAUNCH_HUNG: code = EXIT_FINDING; break;
  default: code = r->exit_code; break;
  }
  if (!r->came_up || r->summary.failure != PS_LOG_FAIL_NONE) print_summary(r, plan);
  if (r->came_up) calibrate(b, plan, &w, ctx);
  if (r->came_up)
    printf("[peerscope] served %s/v1 (%s), up after %.1f s; %s\n", r->url, plan->model_arg,
           r->up_after_s,
           r->outcome == PS_LAUNCH_STOPPED ? "stopped on request" : "vLLM has exited");
  else
    printf("[peerscope] vLLM %s without answering /health (exit %d)\n",
           r->outcome == PS_LAUNCH_HUNG ? "was stopped at the deadline" : "ended", code);
  (void)o;
out:
  ps_launch_result_free(r);
  free(w.log);
  return code;
}

int cmd_launch(int argc, char **argv) {
  launch_opts o;
  int code = parse(argc, argv, &o);
  if (code) {
    cli_plan_args_free(&o.plan);
    return code < 0 ? EXIT_VERIFIED : code;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* the log streams line by line, also into a pipe */
  ps_ctx *ctx = ps_ctx_new();
  ps_plan *plan = NULL;
  ps_launch_cmd *cmd = NULL;
  launch_basis basis = {0};
  if (!ctx) {
    code = cli_fail("launch", EXIT_INTERNAL, "out of memory");
    goto out;
  }
  if ((code = make_plan(&o, ctx, &basis, &plan))) goto out;
  ps_launch_opts lo = PS_INIT(ps_launch_opts);
  lo.vllm = o.vllm;
  lo.host = o.host;
  lo.port = o.port;
  lo.extra = (const char *const *)o.extra;
  lo.extra_count = o.extra_count;
  lo.health_timeout_s = o.timeout_s;
  lo.stop_grace_s = o.grace_s;
  lo.nccl_debug = o.nccl_debug;
  if (ps_launch_argv(ctx, plan, &lo, &cmd) != PS_OK) {
    code = cli_fail("launch", EXIT_USAGE, "%s", ps_ctx_error(ctx));
    goto out;
  }
  print_conflicts(cmd);
  if (o.dry_run) {
    printf("# %s\n", plan->summary);
    print_command(stdout, cmd);
    code = EXIT_VERIFIED;
    goto out;
  }
  code = run(&o, plan, &lo, cmd, ctx, &basis);
out:
  basis_free(&basis);
  ps_launch_cmd_free(cmd);
  ps_plan_free(plan);
  ps_ctx_free(ctx);
  cli_plan_args_free(&o.plan);
  return code;
}
