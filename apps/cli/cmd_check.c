/* peerscope check: the origin project's test report, line for line, then what it never
 * showed: link class, driver claim against the verified result, why a pair failed, and
 * where the time went. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "source_args.h"

static const char check_usage[] =
    "usage: peerscope check [--gpus LIST] [--tp N] [--json] [--refresh] [--timeout-ms N]\n"
    "                       [--modes LIST] [--ascii] [--fixture FILE] [--live]\n"
    "                       [--all-gpus]\n"
    "\n"
    "Finds which GPUs can really exchange data peer-to-peer: every directed pair writes a\n"
    "pattern to its peer and reads it back, compared byte for byte, in a worker process that\n"
    "is killed if a step hangs; in three modes, each with its own verdict: ce (the copy\n"
    "engine, cuMemcpyPeer), sm (a kernel storing and loading through the peer mapping, as\n"
    "vLLM's custom all-reduce and NCCL do) and ipc (the memory exported by one process and\n"
    "opened by another, as a CUDA IPC handle and a cuMem POSIX file descriptor, as vLLM's\n"
    "workers share it). Prints the recommended tensor-parallel size.\n"
    "\n"
    "  --gpus LIST       only these GPUs: indexes (0,2,4-7) or UUIDs (GPU-...)\n"
    "  --tp N            check that a fully verified group of N GPUs exists\n"
    "  --json            write the topology report (peerscope.topology/1) instead\n"
    "  --refresh         ignore cached verdicts and test again\n"
    "  --timeout-ms N    deadline for each copy step (default 2000)\n"
    "  --modes LIST      verification modes: ce, sm, ipc or all (default all; ce,sm on one\n"
    "                    GPU, where no pair shares memory across processes)\n"
    "  --ascii           OK/FAIL instead of check marks\n"
    "  --fixture FILE    play back a described machine through the fake drivers\n"
    "  --live            use this machine's driver or fail; never the bundled example\n"
    "  --all-gpus        the whole machine; by default only the GPUs CUDA_VISIBLE_DEVICES\n"
    "                    allows are touched and planned (nvidia-smi's numbers)\n"
    "\n"
    "Exit codes: 0 all pairs verified (or no P2P claimed and none found), 1 a pair failed\n"
    "verification, 2 usage error, 3 bad input file, 4 driver unavailable, 5 internal error.\n";

typedef struct check_opts {
  cli_source source;
  cli_selection sel;
  int tp;
  bool json, ascii;
} check_opts;

static const char *mark(const check_opts *o, bool ok) {
  if (o->ascii) return ok ? "OK" : "FAIL";
  return ok ? "\u2713" : "\u2717";
}

static const char *tf(bool v) { return v ? "True" : "False"; }

static bool group_connected(const ps_report *r, const int *g, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && !ps_pair_usable(r, ps_report_pair(r, g[i], g[j]))) return false;
  return true;
}

static void print_memory(const ps_gpu *g) {
  if (g->valid & PS_GPU_MEMORY_TOTAL)
    printf("(%lluMB)", (unsigned long long)(g->memory_total_bytes / (1024 * 1024)));
  else
    printf("(n/a)");
}

static void print_origin_block(const check_opts *o, const ps_report *r, int tp, bool connected,
                               bool any_p2p) {
  int selected = o->sel.count ? o->sel.count : r->gpu_count;
  printf("Testing P2P Connectivity Detection\n");
  printf("============================================================\n");
  printf("Detected %d GPU%s:\n", selected, selected == 1 ? "" : "s");
  for (int g = 0; g < r->gpu_count; g++) {
    if (!cli_selected(&o->sel, g)) continue;
    printf("  GPU %d: %s ", g, (r->gpus[g].valid & PS_GPU_NAME) ? r->gpus[g].name : "n/a");
    print_memory(&r->gpus[g]);
    printf("\n");
  }
  printf("\nP2P Enabled: %s\n", tf(any_p2p));
  printf("Tensor Parallel Group Connected: %s\n", tf(connected));
  printf("\nP2P Connectivity Matrix:\n");
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    if (!cli_selected(&o->sel, p->from) || !cli_selected(&o->sel, p->to)) continue;
    printf("  GPU%d->GPU%d: %s\n", p->from, p->to, mark(o, ps_pair_usable(r, p)));
  }
  printf("\nRecommended Tensor Parallel Size: %d\n", tp);
  printf("P2P Optimized: %s\n", tf(tp > 1));
}

static const char *verdict_word(ps_verdict v) {
  switch (v) {
  case PS_VERDICT_OK: return "ok";
  case PS_VERDICT_CORRUPT: return "CORRUPT";
  case PS_VERDICT_ERROR: return "ERROR";
  case PS_VERDICT_HANG: return "HANG";
  case PS_VERDICT_UNSUPPORTED: return "unsupported";
  case PS_VERDICT_SKIPPED: return "skipped";
  case PS_VERDICT_UNAVAILABLE: return "n/a";
  default: return "not verified";
  }
}

/* A GPU's local control in one mode. */
static ps_verdict local_verdict(const ps_gpu *g, ps_verify_mode m) {
  return m == PS_MODE_CE   ? g->local_verdict
         : m == PS_MODE_SM ? g->local_sm.verdict
                           : g->local_ipc.verdict;
}

static const char *local_reason(const ps_gpu *g, ps_verify_mode m) {
  return m == PS_MODE_CE   ? g->local_reason
         : m == PS_MODE_SM ? g->local_sm.reason
                           : g->local_ipc.reason;
}

static const char *pair_reason(const ps_pair *p, ps_verify_mode m) {
  return m == PS_MODE_CE ? p->reason : m == PS_MODE_SM ? p->sm.reason : p->ipc.reason;
}

/* Whether a local control failed: in ce anything but ok (as before the modes); in sm and ipc
 * a transfer that went wrong (unavailable or refused is no failure of the GPU). */
static bool local_failed(const ps_report *r, const ps_gpu *g, ps_verify_mode m) {
  if (!(r->modes & PS_MODE_BIT(m))) return false;
  ps_verdict v = local_verdict(g, m);
  return m == PS_MODE_CE ? v != PS_VERDICT_OK : ps_verdict_failed(v);
}

/* Failed pairs plus failed local control copies within the selection. */
static int count_failures(const check_opts *o, const ps_report *r) {
  int failed = 0;
  for (int i = 0; i < r->pair_count; i++)
    if (cli_selected(&o->sel, r->pairs[i].from) && cli_selected(&o->sel, r->pairs[i].to) &&
        ps_pair_failed(r, &r->pairs[i]))
      failed++;
  for (int g = 0; r->verified && g < r->gpu_count; g++)
    for (int m = 0; m < PS_MODE_COUNT; m++)
      if (cli_selected(&o->sel, g) && local_failed(r, &r->gpus[g], m)) failed++;
  return failed;
}

/* Why a fresh worker had to carry on: a sticky CUDA error, a hang, a death. */
static void print_restarts(const ps_report *r) {
  for (int i = 0; i < r->restart_count; i++) {
    const ps_restart *x = &r->restarts[i];
    printf("  Worker restarted (%s) after ", ps_restart_cause_name(x->cause));
    if (x->from >= 0 && x->from == x->to)
      printf("GPU%d", x->from);
    else if (x->from >= 0)
      printf("GPU%d->GPU%d", x->from, x->to);
    else
      printf("CUDA setup");
    printf(": %s; a fresh worker tested the pairs left.\n", x->reason[0] ? x->reason : "n/a");
  }
}

/* The pair's verdict in each mode that ran, and the first reason of a mode that did not pass
 * (unavailable modes are said once, in the modes line). */
static void print_pair(const ps_report *r, const ps_pair *p) {
  char link[16], claim[8], time[24] = "", word[24];
  const char *why = "", *why_mode = "";
  ps_link_name(p->link, p->nvlink_count, link, sizeof(link));
  snprintf(claim, sizeof(claim), "%s",
           (p->valid & PS_PAIR_CLAIMS) ? ps_claim_name(p->claim_read) : "n/a");
  if (p->valid & PS_PAIR_COPY_TIME) snprintf(time, sizeof(time), "%8.1f us", p->copy_us);
  printf("  GPU%d->GPU%d  %-5s claim %-4s", p->from, p->to, link, claim);
  for (int m = 0; m < PS_MODE_COUNT; m++) {
    if (r->modes && !(r->modes & PS_MODE_BIT(m))) continue;
    ps_verdict v = ps_pair_mode_verdict(p, m);
    snprintf(word, sizeof(word), "%s %s", ps_mode_name(m), verdict_word(v));
    printf(" %-15s", word);
    if (!*why && v != PS_VERDICT_OK && v != PS_VERDICT_UNAVAILABLE && *pair_reason(p, m))
      why = pair_reason(p, m), why_mode = ps_mode_name(m);
  }
  printf("%s%s%s%s%s%s\n", time, *why ? "  " : "", why_mode, *why ? ": " : "", why,
         p->from_cache ? " (cached)" : "");
}

/* Pairs that pass in one process (ce) but not across processes (ipc). */
static int ipc_only_failures(const check_opts *o, const ps_report *r) {
  int n = 0;
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    if (cli_selected(&o->sel, p->from) && cli_selected(&o->sel, p->to) &&
        p->verdict == PS_VERDICT_OK && ps_verdict_failed(p->ipc.verdict))
      n++;
  }
  return n;
}

static void print_locals(const check_opts *o, const ps_report *r) {
  int local_bad = 0;
  for (int g = 0; r->verified && g < r->gpu_count; g++) {
    const ps_gpu *gpu = &r->gpus[g];
    if (!cli_selected(&o->sel, g)) continue;
    for (int m = 0; m < PS_MODE_COUNT; m++) {
      ps_verdict v = local_verdict(gpu, m);
      if (!(r->modes & PS_MODE_BIT(m)) || v == PS_VERDICT_OK || v == PS_VERDICT_UNAVAILABLE)
        continue;
      local_bad++;
      printf("  GPU%d local %s: %s%s%s\n", g, m == PS_MODE_CE ? "copy" : ps_mode_name(m),
             ps_verdict_name(v), *local_reason(gpu, m) ? ": " : "", local_reason(gpu, m));
    }
  }
  if (r->verified && !local_bad) printf("  Local control copies: all ok\n");
}

static void print_details(const check_opts *o, const ps_report *r) {
  int lies = 0;
  printf("\nLinks (driver claim vs verified%s):\n",
         r->modes & ~PS_MODE_BIT(PS_MODE_CE) ? "; ce copy engine, sm kernels, ipc across processes"
                                             : "");
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    if (!cli_selected(&o->sel, p->from) || !cli_selected(&o->sel, p->to)) continue;
    print_pair(r, p);
    bool ipc_only = p->verdict == PS_VERDICT_OK && !ps_verdict_failed(p->sm.verdict);
    if (ps_pair_failed(r, p) && !ipc_only && (p->valid & PS_PAIR_CLAIMS) &&
        p->claim_read == PS_CLAIM_OK)
      lies++;
  }
  print_locals(o, r);
  print_restarts(r);
  if (lies)
    printf("\nFinding: the driver claims P2P for %d pair%s that failed a real transfer. Do not "
           "use them for tensor parallelism, or run vLLM with NCCL_P2P_DISABLE=1 and "
           "--disable-custom-all-reduce.\n",
           lies, lies == 1 ? "" : "s");
  int ipc = ipc_only_failures(o, r);
  if (ipc)
    printf("\nFinding: %d pair%s pass%s within one process (ce) but fail%s across processes "
           "(ipc): vLLM's workers could not share memory here. In a container, run it with "
           "--ipc=host (and --pid=host); `peerscope doctor` lists the causes.\n",
           ipc, ipc == 1 ? "" : "s", ipc == 1 ? "es" : "", ipc == 1 ? "s" : "");
}

/* Which modes ran, how many pairs passed in each, and why a mode could not run. */
static void print_modes(const check_opts *o, const ps_report *r) {
  static const char *const what[PS_MODE_COUNT] = {"copy engine", "kernels", "across processes"};
  if (!r->verified || !r->modes) return;
  printf("Verification modes:");
  for (int m = 0, first = 1; m < PS_MODE_COUNT; m++) {
    if (!(r->modes & PS_MODE_BIT(m))) continue;
    int ok = 0, tested = 0;
    const char *unavailable = NULL;
    for (int i = 0; i < r->pair_count; i++) {
      const ps_pair *p = &r->pairs[i];
      if (!cli_selected(&o->sel, p->from) || !cli_selected(&o->sel, p->to)) continue;
      ps_verdict v = ps_pair_mode_verdict(p, m);
      tested += v != PS_VERDICT_NOT_RUN;
      ok += v == PS_VERDICT_OK;
      if (v == PS_VERDICT_UNAVAILABLE) unavailable = pair_reason(p, m);
    }
    int local_ok = 0, local_tested = 0;
    for (int g = 0; g < r->gpu_count; g++) {
      ps_verdict v = local_verdict(&r->gpus[g], m);
      if (!cli_selected(&o->sel, g)) continue;
      local_tested += v != PS_VERDICT_NOT_RUN;
      local_ok += v == PS_VERDICT_OK;
      if (!unavailable && v == PS_VERDICT_UNAVAILABLE) unavailable = local_reason(&r->gpus[g], m);
    }
    printf("%s %s (%s) ", first ? "" : ",", ps_mode_name(m), what[m]);
    if (unavailable)
      printf("%s", unavailable);
    else
      printf("%d/%d pairs, %d/%d local controls ok", ok, tested, local_ok, local_tested);
    first = 0;
  }
  if (r->modes & PS_MODE_BIT(PS_MODE_IPC))
    printf("; every pair in each mode that ran, ipc's second process working alongside.\n");
  else if (!o->source.modes)
    printf("; ipc (across processes) not run on one GPU: no tensor-parallel group shares "
           "memory there (--modes all runs it).\n");
  else
    printf("; every pair in each mode that ran.\n");
}

static void print_group(const check_opts *o, const ps_report *r, int tp) {
  int group[CLI_MAX_GPUS];
  int n =
      ps_best_group(r, o->sel.count ? o->sel.gpus : NULL, o->sel.count, tp, group, CLI_MAX_GPUS);
  if (n <= 1) {
    printf("Tensor parallel group: none with verified P2P; TP=1 per GPU (or TP over NCCL's "
           "shared-memory path with NCCL_P2P_DISABLE=1).\n");
    return;
  }
  printf("Tensor parallel group: GPUs ");
  for (int i = 0; i < n; i++)
    printf("%s%d", i ? "," : "", group[i]);
  printf(" (CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=");
  for (int i = 0; i < n; i++)
    printf("%s%d", i ? "," : "", group[i]);
  printf(")\n");
}

static void print_timing(const ps_report *r) {
  const ps_timings *t = &r->timings;
  int pairs = 0, cached = 0;
  for (int i = 0; i < r->pair_count; i++)
    if (r->pairs[i].verdict != PS_VERDICT_NOT_RUN || r->pairs[i].sm.verdict != PS_VERDICT_NOT_RUN ||
        r->pairs[i].ipc.verdict != PS_VERDICT_NOT_RUN) {
      pairs++;
      cached += r->pairs[i].from_cache || r->pairs[i].sm.from_cache || r->pairs[i].ipc.from_cache;
    }
  int locals = 0;
  for (int g = 0; g < r->gpu_count; g++)
    for (int m = 0; m < PS_MODE_COUNT; m++)
      locals += local_verdict(&r->gpus[g], m) != PS_VERDICT_NOT_RUN;
  printf("Checked %d directed pair%s", pairs, pairs == 1 ? "" : "s");
  if (!pairs && locals) printf(" and %d local control%s", locals, locals == 1 ? "" : "s");
  printf(" in %.1f ms", t->total_ms);
  if (cached) printf(" (%d from the cache; --refresh tests again)", cached);
  printf(": driver %.1f ms, probe %.1f ms", t->driver_init_ms, t->probe_ms);
  if (t->worker_spawn_ms >= 0) printf(", worker spawn %.1f ms", t->worker_spawn_ms);
  if (t->cuda_init_ms >= 0) printf(", CUDA init %.1f ms", t->cuda_init_ms);
  if (t->contexts_ms >= 0) printf(", contexts %.1f ms", t->contexts_ms);
  if (t->copies_ms >= 0) printf(", copies %.1f ms", t->copies_ms);
  printf(".\n");
}

static int parse(int argc, char **argv, check_opts *o) {
  struct option longs[5 + CLI_SOURCE_MAX_OPTIONS] = {{"tp", required_argument, 0, 't'},
                                                     {"json", no_argument, 0, 'j'},
                                                     {"ascii", no_argument, 0, 'a'},
                                                     {"help", no_argument, 0, 'h'}};
  longs[cli_source_options(longs, 4, 4 + CLI_SOURCE_MAX_OPTIONS, CLI_SRC_MACHINE | CLI_SRC_GPUS)] =
      (struct option){0, 0, 0, 0};
  memset(o, 0, sizeof(*o));
  o->source.verify = true;
  opterr = 0;
  optind = 1;
  int c, code;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    switch (c) {
    case 't':
      if (!cli_parse_int(optarg, 1, CLI_MAX_GPUS, &o->tp))
        return cli_fail("check", EXIT_USAGE, "--tp: '%s' is not a positive integer", optarg);
      break;
    case 'j': o->json = true; break;
    case 'a': o->ascii = true; break;
    case 'h': fputs(check_usage, stdout); return -1;
    default:
      code = c == '?' ? -1 : cli_source_option("check", c, optarg, &o->source, &o->sel);
      if (code) return code < 0 ? cli_option_error("check", argv) : code;
    }
  }
  if (optind < argc) return cli_fail("check", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
  return EXIT_VERIFIED;
}

int cmd_check(int argc, char **argv) {
  check_opts o;
  int code = parse(argc, argv, &o);
  if (code) return code < 0 ? EXIT_VERIFIED : code;

  ps_report *r = NULL;
  char notice[1024];
  code = cli_load_report("check", &o.source, &o.sel, &r, notice, sizeof(notice));
  if (code) return code;
  int selected = o.sel.count ? o.sel.count : r->gpu_count;
  if (o.tp > selected) {
    ps_report_free(r);
    return cli_fail("check", EXIT_USAGE, "--tp %d is larger than the %d GPU%s selected", o.tp,
                    selected, selected == 1 ? "" : "s");
  }

  int failed = count_failures(&o, r);

  if (o.json) {
    if (notice[0]) fprintf(stderr, "%s\n", notice);
    ps_ctx *ctx = ps_ctx_new();
    char *text = NULL;
    if (!ctx || ps_report_to_json(ctx, r, &text) != PS_OK) {
      code = cli_fail("check", EXIT_INTERNAL, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
    } else {
      fputs(text, stdout);
    }
    ps_free(text);
    ps_ctx_free(ctx);
  } else {
    if (notice[0]) printf("%s\n", notice);
    const int *allowed = o.sel.count ? o.sel.gpus : NULL;
    int tp = ps_recommend_tp(r, allowed, o.sel.count);
    int group[CLI_MAX_GPUS], n;
    bool connected;
    if (o.tp) {
      n = ps_best_group(r, allowed, o.sel.count, o.tp, group, CLI_MAX_GPUS);
      connected = n == o.tp;
    } else {
      n = 0;
      for (int g = 0; g < r->gpu_count; g++)
        if (cli_selected(&o.sel, g)) group[n++] = g;
      connected = n > 0 && group_connected(r, group, n);
    }
    bool any = false;
    for (int i = 0; i < r->pair_count; i++)
      if (cli_selected(&o.sel, r->pairs[i].from) && cli_selected(&o.sel, r->pairs[i].to))
        any = any || ps_pair_usable(r, &r->pairs[i]);
    print_origin_block(&o, r, tp, connected, any);
    print_details(&o, r);
    printf("\n");
    if (o.tp && !connected)
      printf("No fully verified group of %d GPUs exists; the largest is %d.\n", o.tp, tp);
    print_group(&o, r, o.tp && connected ? o.tp : tp);
    print_modes(&o, r);
    print_timing(r);
  }
  if (!code) code = failed ? EXIT_FINDING : EXIT_VERIFIED;
  ps_report_free(r);
  return code;
}
