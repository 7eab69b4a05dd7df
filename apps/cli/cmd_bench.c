/* peerscope bench: measured copy bandwidth and latency, and all-reduce with NCCL and with
 * peerscope's one-shot P2P kernel, P2P on and off, on this machine (docs/bench.md). */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "source_args.h"

static const char bench_usage[] =
    "usage: peerscope bench [copy|latency|allreduce|all] [--gpus LIST] [--sizes LIST]\n"
    "                       [--iters N] [--trials N] [--copy-size SIZE] [--quick]\n"
    "                       [--json | --csv] [--svg FILE] [--timeout-ms N] [--nccl PATH]\n"
    "                       [--refresh] [--fixture FILE] [--live]\n"
    "                       [--all-gpus]\n"
    "\n"
    "Measures, on this machine: copy bandwidth per GPU pair (copy engine and SM kernels, one\n"
    "and both directions, P2P on and off), local, host-to-device and device-to-host copies,\n"
    "small-copy and pointer-chase latency, and all-reduce for each tensor-parallel group with\n"
    "NCCL (default, NCCL_P2P_DISABLE=1, NCCL_P2P_LEVEL=NVL; eager and CUDA graph) and with\n"
    "peerscope's one-shot P2P kernel. Waived measurements say why; none of this is a guess.\n"
    "\n"
    "  copy|latency|allreduce|all   which benchmarks (default all)\n"
    "  --gpus LIST       only these GPUs: indexes (0,2,4-7) or UUIDs\n"
    "  --sizes LIST      all-reduce message sizes, e.g. 1K,64K,1M (default 1K..64M, x4)\n"
    "  --iters N         operations per trial (default 16 copies, 20 all-reduces)\n"
    "  --trials N        timed trials, each behind its warm-up (default 3); the median counts\n"
    "  --copy-size SIZE  copy buffer (default 512M as nvbandwidth, 32M with --quick)\n"
    "  --quick           smaller buffers, fewer sizes: seconds, not a minute\n"
    "  --json            the topology report (peerscope.topology/1) with the results in it\n"
    "  --csv             one row per measurement\n"
    "  --svg FILE        also write heatmaps of the bandwidth and latency matrices\n"
    "  --timeout-ms N    deadline for each measurement (default 15000)\n"
    "  --nccl PATH       libnccl.so.2 to load (default: PEERSCOPE_NCCL, then the system)\n"
    "  --refresh         verify P2P again instead of using cached verdicts\n"
    "  --fixture FILE    play back a described machine through the fake drivers (simulated)\n"
    "  --live            use this machine's driver or fail; never the bundled example\n"
    "  --all-gpus        the whole machine; by default only the GPUs CUDA_VISIBLE_DEVICES\n"
    "                    allows are touched and planned (nvidia-smi's numbers)\n"
    "\n"
    "PEERSCOPE_MIN_P2P_GBPS=X turns the copy benchmark into a health gate: exit 1 when any\n"
    "P2P copy (copy engine, one direction) is slower than X GB/s.\n"
    "\n"
    "Exit codes: 0 measured, 1 a measurement failed, hung or gave wrong data, or the gate\n"
    "failed, 2 usage error, 3 bad input file, 4 driver unavailable, 5 internal error.\n";

typedef struct bench_cli {
  cli_source source;
  cli_selection sel;
  unsigned tests;
  uint64_t sizes[64];
  int size_count;
  ps_bench_opts opts;
  bool json, csv;
  const char *svg;
} bench_cli;

/* "64K" -> 65536; binary multiples, as nccl-tests reads them. */
static bool parse_size(const char *text, uint64_t *out) {
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || text[0] == '-') return false;
  uint64_t mul = 1;
  switch (*end) {
  case 'K':
  case 'k':
    mul = 1ull << 10;
    end++;
    break;
  case 'M':
  case 'm':
    mul = 1ull << 20;
    end++;
    break;
  case 'G':
  case 'g':
    mul = 1ull << 30;
    end++;
    break;
  default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end || v == 0 || v > (1ull << 40) / mul) return false;
  *out = v * mul;
  return true;
}

static int parse_sizes(bench_cli *b, const char *text) {
  char buf[1024];
  if (strlen(text) >= sizeof(buf)) return cli_fail("bench", EXIT_USAGE, "--sizes: list too long");
  strcpy(buf, text);
  b->size_count = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (b->size_count == (int)(sizeof(b->sizes) / sizeof(b->sizes[0])))
      return cli_fail("bench", EXIT_USAGE, "--sizes: more than 64 sizes");
    if (!parse_size(tok, &b->sizes[b->size_count]) || b->sizes[b->size_count] % 16)
      return cli_fail("bench", EXIT_USAGE,
                      "--sizes: '%s' is not a size in bytes that is a multiple of 16 (e.g. 64K)",
                      tok);
    b->size_count++;
  }
  if (b->size_count == 0) return cli_fail("bench", EXIT_USAGE, "--sizes: empty list");
  return 0;
}

static int parse_what(bench_cli *b, const char *word) {
  if (strcmp(word, "copy") == 0)
    b->tests |= PS_BENCH_TEST_COPY;
  else if (strcmp(word, "latency") == 0)
    b->tests |= PS_BENCH_TEST_LATENCY;
  else if (strcmp(word, "allreduce") == 0)
    b->tests |= PS_BENCH_TEST_ALLREDUCE;
  else if (strcmp(word, "all") == 0)
    b->tests |= PS_BENCH_TEST_ALL;
  else
    return cli_fail("bench", EXIT_USAGE, "unknown benchmark '%s' (copy, latency, allreduce or all)",
                    word);
  return 0;
}

static int parse(int argc, char **argv, bench_cli *b) {
  /* --timeout-ms is bench's own: per measurement, not per verification step. */
  struct option longs[12 + CLI_SOURCE_MAX_OPTIONS] = {{"sizes", required_argument, 0, 's'},
                                                      {"iters", required_argument, 0, 'i'},
                                                      {"trials", required_argument, 0, 'n'},
                                                      {"copy-size", required_argument, 0, 'c'},
                                                      {"quick", no_argument, 0, 'q'},
                                                      {"json", no_argument, 0, 'j'},
                                                      {"csv", no_argument, 0, 'v'},
                                                      {"svg", required_argument, 0, 'S'},
                                                      {"timeout-ms", required_argument, 0, 'T'},
                                                      {"nccl", required_argument, 0, 'N'},
                                                      {"help", no_argument, 0, 'h'}};
  longs[cli_source_options(longs, 11, 11 + CLI_SOURCE_MAX_OPTIONS,
                           CLI_SRC_FIXTURE | CLI_SRC_LIVE | CLI_SRC_REFRESH | CLI_SRC_GPUS)] =
      (struct option){0, 0, 0, 0};
  memset(b, 0, sizeof(*b));
  b->source.verify = true;
  opterr = 0;
  optind = 1;
  int c, code;
  uint64_t copy = 0;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (c) {
    case 's':
      if ((code = parse_sizes(b, optarg))) return code;
      break;
    case 'i':
      if (!cli_parse_int(optarg, 1, 100000, &b->opts.iters))
        return cli_fail("bench", EXIT_USAGE, "--iters: '%s' is not an integer 1..100000", optarg);
      break;
    case 'n':
      if (!cli_parse_int(optarg, 1, 64, &b->opts.trials))
        return cli_fail("bench", EXIT_USAGE, "--trials: '%s' is not an integer 1..64", optarg);
      break;
    case 'c':
      if (!parse_size(optarg, &copy) || copy < 4096 || copy > (4ull << 30))
        return cli_fail("bench", EXIT_USAGE, "--copy-size: '%s' is not a size 4K..4G", optarg);
      b->opts.copy_bytes = copy;
      break;
    case 'q': b->opts.quick = true; break;
    case 'j': b->json = true; break;
    case 'v': b->csv = true; break;
    case 'S': b->svg = optarg; break;
    case 'T':
      if (!cli_parse_int(optarg, 1, 3600000, &b->opts.timeout_ms))
        return cli_fail("bench", EXIT_USAGE, "--timeout-ms: '%s' is not a positive integer",
                        optarg);
      b->source.timeout_ms = b->opts.timeout_ms < 2000 ? b->opts.timeout_ms : 2000;
      break;
    case 'N': b->opts.nccl_path = optarg; break;
    case 'h': fputs(bench_usage, stdout); return -1;
    default:
      code = c == '?' ? -1 : cli_source_option("bench", c, optarg, &b->source, &b->sel);
      if (code) return code < 0 ? cli_option_error("bench", argv) : code;
    }
  }
  for (; optind < argc; optind++)
    if ((code = parse_what(b, argv[optind]))) return code;
  if (b->json && b->csv)
    return cli_fail("bench", EXIT_USAGE, "--json and --csv exclude each other");
  return 0;
}

/* A bar on stderr while it runs, only on a terminal: logs and pipes get none. */
static void progress(void *user, int done, int total, const ps_bench_result *last) {
  (void)user;
  int width = 30, filled = total > 0 ? done * width / total : width;
  fprintf(stderr, "\r[%.*s%*s] %d/%d %-18s", filled, "##############################",
          width - filled, "", done, total, ps_bench_kind_name(last->kind));
  if (done == total) fputs("\n", stderr);
  fflush(stderr);
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return cli_fail("bench", EXIT_BAD_INPUT, "--svg %s: cannot write", path);
  bool ok = fputs(text, f) >= 0;
  ok = fclose(f) == 0 && ok;
  return ok ? 0 : cli_fail("bench", EXIT_BAD_INPUT, "--svg %s: write failed", path);
}

static int render(ps_ctx *ctx, const bench_cli *b, const ps_report *r) {
  char *text = NULL;
  ps_status st = b->json ? ps_report_to_json(ctx, r, &text)
                         : ps_bench_write(ctx, r, b->csv ? PS_BENCH_CSV : PS_BENCH_TEXT, &text);
  if (st != PS_OK) return cli_fail("bench", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
  fputs(text, stdout);
  ps_free(text);
  if (!b->svg) return 0;
  if (ps_bench_write(ctx, r, PS_BENCH_SVG, &text) != PS_OK)
    return cli_fail("bench", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
  int code = write_file(b->svg, text);
  ps_free(text);
  return code;
}

/* Failures, hangs and wrong data are findings, as a failed pair is for `check`. */
static int verdict(const ps_bench *bench) {
  int bad = 0;
  for (size_t i = 0; i < bench->count; i++)
    bad += bench->results[i].outcome == PS_BENCH_FAILED ||
           bench->results[i].outcome == PS_BENCH_HANG ||
           bench->results[i].outcome == PS_BENCH_WRONG;
  const char *gate = getenv("PEERSCOPE_MIN_P2P_GBPS");
  if (gate && *gate) {
    char *end;
    double want = strtod(gate, &end);
    if (end == gate || *end || want <= 0)
      return cli_fail("bench", EXIT_USAGE, "PEERSCOPE_MIN_P2P_GBPS='%s' is not a positive number",
                      gate);
    double got = ps_bench_min_p2p_gbps(bench);
    if (got < 0) {
      fprintf(stderr,
              "peerscope bench: gate failed: no P2P copy was measured (one GPU, or P2P "
              "unsupported), so %.1f GB/s cannot be shown\n",
              want);
      return EXIT_FINDING;
    }
    if (got < want) {
      fprintf(stderr,
              "peerscope bench: gate failed: slowest P2P copy %.1f GB/s is below "
              "PEERSCOPE_MIN_P2P_GBPS=%.1f\n",
              got, want);
      return EXIT_FINDING;
    }
    fprintf(stderr, "peerscope bench: gate passed: slowest P2P copy %.1f GB/s >= %.1f\n", got,
            want);
  }
  return bad ? EXIT_FINDING : EXIT_VERIFIED;
}

int cmd_bench(int argc, char **argv) {
  bench_cli b;
  int code = parse(argc, argv, &b);
  if (code) return code < 0 ? EXIT_VERIFIED : code;
  ps_report *r = NULL;
  char notice[1024];
  b.source.quiet = b.json || b.csv;
  if ((code = cli_load_report("bench", &b.source, &b.sel, &r, notice, sizeof(notice)))) return code;
  if (notice[0]) fprintf(b.json || b.csv ? stderr : stdout, "%s\n", notice);
  b.opts.size = sizeof(b.opts);
  b.opts.tests = b.tests;
  b.opts.gpus = b.sel.count ? b.sel.gpus : NULL;
  b.opts.gpu_count = b.sel.count;
  b.opts.sizes = b.size_count ? b.sizes : NULL;
  b.opts.size_count = b.size_count;
  b.opts.driver_dir = cli_opt(b.source.drivers.dir);
  b.opts.fixture = cli_opt(b.source.drivers.fixture);
  if (isatty(STDERR_FILENO)) b.opts.progress = progress;
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) {
    ps_report_free(r);
    return cli_fail("bench", EXIT_INTERNAL, "out of memory");
  }
  ps_status st = ps_bench_run(ctx, r, &b.opts);
  if (st == PS_ERR_INVALID_ARG)
    code = cli_fail("bench", EXIT_USAGE, "%s", ps_ctx_error(ctx));
  else if (st == PS_ERR_DRIVER_UNAVAILABLE || st == PS_ERR_NO_DRIVER)
    code = cli_fail("bench", EXIT_NO_DRIVER, "%s", ps_ctx_error(ctx));
  else if (st != PS_OK)
    code = cli_fail("bench", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
  if (!code && r->bench) code = render(ctx, &b, r);
  if (!code && r->bench) code = verdict(r->bench);
  ps_ctx_free(ctx);
  ps_report_free(r);
  return code;
}
