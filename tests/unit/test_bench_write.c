/* The benchmark renderers (text, CSV, SVG) and the report's "bench" JSON: a hand-built run
 * on three GPUs with waived, failed, bidirectional, latency and all-reduce results. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "bench/bench_internal.h"
#include "core/internal.h"
#include "report/report_internal.h"

/* ---- the run -------------------------------------------------------------------------- */

static ps_bench_result *result(ps_bench *b, ps_bench_kind kind, int src, int dst, bool p2p,
                               double value) {
  ps_bench_result *r = ps__bench_add(b);
  assert_non_null(r);
  r->kind = kind;
  r->src = src;
  r->dst = dst;
  r->p2p = p2p;
  r->bytes = 256ull << 20;
  r->iters = 20;
  r->trials = 5;
  r->us_median = 1000.125;
  r->us_p10 = 990.5;
  r->us_p90 = 1010.75;
  r->us_min = 985;
  r->us_max = 1020.25;
  r->cv = 0.0125;
  if (ps__bench_kind_has_ns(kind))
    r->ns_per_access = value;
  else
    r->gbps = value;
  return r;
}

static void waive(ps_bench_result *r, ps_bench_outcome outcome, const char *reason) {
  r->outcome = outcome;
  r->trials = 0;
  r->us_median = r->us_p10 = r->us_p90 = r->us_min = r->us_max = r->cv = 0;
  r->gbps = r->bus_gbps = r->ns_per_access = 0;
  snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static ps_bench_result *allreduce(ps_bench *b, ps_bench_kind kind, const char *env, double us) {
  ps_bench_result *r = result(b, kind, -1, -1, true, 0);
  r->ranks = 2;
  r->group[0] = 0;
  r->group[1] = 1;
  r->bytes = 1 << 20;
  snprintf(r->dtype, sizeof(r->dtype), "fp16");
  if (env) snprintf(r->env, sizeof(r->env), "%s", env);
  r->us_median = us;
  r->gbps = 1000.0 / us; /* round numbers: the JSON round trip compares exactly */
  r->bus_gbps = r->gbps * ps__allreduce_bus_factor(2);
  return r;
}

static ps_report *bench_report(void) {
  ps_report *rep = ps__report_new(3);
  assert_non_null(rep);
  snprintf(rep->machine, sizeof(rep->machine), "rig <3 GPUs> & \"co\"");
  ps_bench *b = calloc(1, sizeof(*b));
  assert_non_null(b);
  rep->bench = b;
  b->simulated = true;
  b->kernels = true;
  b->nccl_version = 22809;
  snprintf(b->started, sizeof(b->started), "2026-11-25T16:49:00Z");
  b->wall_ms = 1234.5;
  for (int g = 0; g < 3; g++)
    result(b, PS_BENCH_LOCAL_CE, g, g, false, 1500 + g);
  for (int s = 0; s < 3; s++)
    for (int d = 0; d < 3; d++)
      if (s != d) result(b, PS_BENCH_COPY_CE, s, d, true, 300 + 10 * s + d);
  waive(&b->results[3 + 4], PS_BENCH_WAIVED, "peer access refused <CNS>");             /* 2->0 */
  waive(&b->results[3 + 3], PS_BENCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED, in \"copy\""); /* 1->2 */
  result(b, PS_BENCH_COPY_CE, 0, 1, false, 20.5);
  result(b, PS_BENCH_COPY_CE, 1, 0, false, 21.5);
  result(b, PS_BENCH_COPY_CE, 0, 1, true, 600.25)->bidirectional = true;
  for (int s = 0; s < 3; s++) /* the same reason three times: one line in the text */
    waive(result(b, PS_BENCH_COPY_SM_READ, s, (s + 1) % 3, true, 0), PS_BENCH_WAIVED,
          "kernels not built");
  result(b, PS_BENCH_H2D, -1, 0, false, 25.125);
  result(b, PS_BENCH_D2H, 0, -1, false, 26.5);
  ps_bench_result *lat = result(b, PS_BENCH_LATENCY_WRITE, 0, 1, true, 0);
  lat->bytes = 4;
  lat->us_median = 2.5;
  lat->gbps = 0.002;
  lat = result(b, PS_BENCH_LATENCY_WRITE, 1, 0, true, 0);
  lat->bytes = 4;
  lat->us_median = 2.75;
  lat->gbps = 0.001;
  result(b, PS_BENCH_LATENCY_CHASE, 0, 1, true, 750.5)->bytes = 1 << 20;
  allreduce(b, PS_BENCH_ALLREDUCE_NCCL, "default", 20);
  allreduce(b, PS_BENCH_ALLREDUCE_ONESHOT, NULL, 10)->graph = false;
  waive(allreduce(b, PS_BENCH_ALLREDUCE_NCCL, "NCCL_P2P_DISABLE=1", 40), PS_BENCH_HANG,
        "passed its deadline of 2000 ms\nworker killed");
  return rep;
}

/* The library writes straight into the caller's variable: returning a local whose address
 * went to the library lets GCC 12 at -O3 assume it may point at itself (-Wdangling-pointer). */
static void render(const ps_report *rep, ps_bench_format format, char **out) {
  ps_ctx *ctx = ps_ctx_new();
  *out = NULL;
  if (ps_bench_write(ctx, rep, format, out) != PS_OK) fail_msg("%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  assert_non_null(*out);
}

static void assert_has(const char *text, const char *want) {
  if (!strstr(text, want)) fail_msg("missing \"%s\" in:\n%s", want, text);
}

static int occurrences(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
    n++;
  return n;
}

/* ---- text ------------------------------------------------------------------------------ */

static void test_text(void **state) {
  (void)state;
  ps_report *rep = bench_report();
  char *text;
  render(rep, PS_BENCH_TEXT, &text);
  static const char head[] =
      "Benchmarks on rig <3 GPUs> & \"co\", 3 GPUs, 2026-11-25T16:49:00Z\n"
      "SIMULATED: fake drivers, modelled timings, not measurements of a machine\n";
  assert_memory_equal(text, head, strlen(head));
  assert_has(text, "fake NCCL (peerscope's libnccl.so.2, reports 2.28.9).");
  /* The copy-engine matrix, P2P on: rows = source, diagonal = local copy. */
  assert_has(text, "Copy bandwidth (GB/s), copy engine, P2P on, one direction\n");
  assert_has(text, "   src\\dst        0        1        2\n"
                   "         0   1500.0    301.0    302.0\n"
                   "         1    310.0   1501.0     FAIL\n"
                   "         2   waived    321.0   1502.0\n");
  assert_has(text, "Copy bandwidth (GB/s), copy engine, P2P on, both directions at once (sum)\n");
  assert_has(text, "         0   1500.0    600.2        -\n" /* one result fills both cells */
                   "         1    600.2   1501.0        -\n");
  assert_has(text, "Copy bandwidth (GB/s), copy engine, P2P off, one direction\n");
  assert_has(text, "P2P off = staged through pinned host memory, as CUDA falls back");
  assert_has(text, "         1     21.5   1501.0        -\n");
  assert_has(text, "       GPU  local CE  local SM       H2D       D2H\n"
                   "         0    1500.0         -      25.1      26.5\n");
  assert_has(text, "Copy latency (us per copy), 4 B, P2P on\n");
  assert_has(text, "         1     2.75        -        -\n");
  assert_has(text, "Load latency (ns per dependent load), pointer chase, P2P on\n");
  assert_has(text, "         0        -    750.5        -\n");
  /* All-reduce: NCCL and the one-shot kernel side by side. */
  assert_has(text,
             "  GPUs 0,1 (2 ranks), fp16, eager, NCCL env default\n"
             "  compare: all_reduce_perf -g 2 -d half -n 20\n"
             "        size   NCCL us   algbw   busbw  one-shot us   algbw   busbw  speed-up\n"
             "       1 MiB     20.00    50.0    50.0        10.00   100.0   100.0     2.00x\n");
  assert_has(text,
             "       1 MiB      HANG       -       -        10.00   100.0   100.0         -\n");
  assert_has(text, "NCCL env NCCL_P2P_DISABLE=1\n"
                   "  compare: NCCL_P2P_DISABLE=1 all_reduce_perf -g 2 -d half -n 20\n");
  /* Problems: one line each, the same reason once with its count, on one line. */
  assert_has(text, "  FAIL   copy_ce 1->2 P2P on: CUDA_ERROR_LAUNCH_FAILED, in \"copy\"\n");
  assert_has(text, "  waived copy_ce 2->0 P2P on: peer access refused <CNS>\n");
  assert_has(text, "  waived x3: kernels not built (copy_sm_read)\n");
  assert_has(text, "  HANG   allreduce_nccl GPUs 0,1 fp16 NCCL_P2P_DISABLE=1 1 MiB: passed its "
                   "deadline of 2000 ms worker killed\n");
  assert_int_equal(occurrences(text, "kernels not built"), 1);
  assert_int_equal(text[strlen(text) - 1], '\n');
  assert_true(text[strlen(text) - 2] != '\n'); /* no blank line at the end */
  ps_free(text);

  rep->bench->simulated = false;
  render(rep, PS_BENCH_TEXT, &text);
  assert_null(strstr(text, "SIMULATED"));
  ps_free(text);
  ps_report_free(rep);
}

static void test_text_edges(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *rep = ps__report_new(2);
  char *out = (char *)0x1;
  assert_int_equal(ps_bench_write(ctx, rep, PS_BENCH_TEXT, &out), PS_ERR_INVALID_ARG);
  assert_null(out);
  assert_string_equal(ps_ctx_error(ctx), "ps_bench_write: the report has no benchmarks");
  assert_int_equal(ps_bench_write(ctx, NULL, PS_BENCH_TEXT, &out), PS_ERR_INVALID_ARG);

  rep->bench = calloc(1, sizeof(*rep->bench)); /* ran, measured nothing */
  char *text;
  render(rep, PS_BENCH_TEXT, &text);
  assert_has(text, "Benchmarks on this machine, 2 GPUs\n");
  assert_has(text, "NCCL: not loaded.");
  assert_has(text, "No measurements.\n");
  ps_free(text);
  assert_int_equal(ps_bench_write(ctx, rep, (ps_bench_format)9, &out), PS_ERR_INVALID_ARG);

  /* Many latency sizes: one compact table rather than a matrix per size. */
  static const uint64_t sizes[] = {4, 64, 1024, 65536, 1 << 20};
  for (int s = 0; s < 5; s++) {
    for (int on = 0; on <= 1; on++) {
      ps_bench_result *r = ps__bench_add(rep->bench);
      r->kind = PS_BENCH_LATENCY_WRITE;
      r->src = 0;
      r->dst = 1;
      r->p2p = on;
      r->bytes = sizes[s];
      r->trials = 3;
      r->us_median = 2 + s + (on ? 0 : 10);
    }
  }
  render(rep, PS_BENCH_TEXT, &text);
  assert_has(text, "      pair  P2P      4 B     64 B    1 KiB   64 KiB    1 MiB\n"
                   "      0->1  on      2.00     3.00     4.00     5.00     6.00\n"
                   "      0->1  off    12.00    13.00    14.00    15.00    16.00\n");
  assert_null(strstr(text, "src\\dst"));
  ps_free(text);

  /* Reasons that differ only in the GPUs they name are one problem. */
  for (int g = 0; g < 2; g++) {
    ps_bench_result *r = ps__bench_add(rep->bench);
    r->kind = PS_BENCH_COPY_CE;
    r->outcome = PS_BENCH_WAIVED;
    r->src = g;
    r->dst = 1 - g;
    snprintf(r->reason, sizeof(r->reason), "peer access refused from GPU %d to GPU %d", g, 1 - g);
  }
  render(rep, PS_BENCH_TEXT, &text);
  assert_has(text, "  waived x2: peer access refused from GPU * to GPU * (2 combinations of GPUs; "
                   "copy_ce)\n");
  ps_free(text);
  ps_report_free(rep);
  ps_ctx_free(ctx);
}

/* ---- CSV ------------------------------------------------------------------------------- */

/* RFC 4180 records: fields[r][f] (at most 64 x 32, 256 bytes each); returns the count. */
static int parse_csv(const char *p, char fields[][32][256], int *widths) {
  int rec = 0;
  while (*p) {
    int f = 0;
    for (;;) {
      char *out = fields[rec][f];
      size_t len = 0;
      if (*p == '"') {
        for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
          if (*p == '"') p++; /* "" */
          if (len < 255) out[len++] = *p;
        }
        assert_int_equal(*p, '"');
        p++;
      } else {
        for (; *p && *p != ',' && *p != '\n'; p++)
          if (len < 255) out[len++] = *p;
      }
      out[len] = '\0';
      f++;
      if (*p == ',') {
        p++;
        continue;
      }
      assert_int_equal(*p, '\n');
      p++;
      break;
    }
    widths[rec++] = f;
  }
  return rec;
}

static void test_csv(void **state) {
  (void)state;
  ps_report *rep = bench_report();
  char *csv;
  render(rep, PS_BENCH_CSV, &csv);
  static char fields[64][32][256];
  int widths[64];
  int rows = parse_csv(csv, fields, widths);
  assert_int_equal(rows, 1 + (int)rep->bench->count);
  for (int r = 0; r < rows; r++)
    assert_int_equal(widths[r], 25);
  assert_string_equal(fields[0][0], "kind");
  assert_string_equal(fields[0][24], "reason");
  /* Quoting: a comma and quotes; a line break. */
  assert_has(csv, ",\"CUDA_ERROR_LAUNCH_FAILED, in \"\"copy\"\"\"\n");
  assert_string_equal(fields[1 + 6][24], "CUDA_ERROR_LAUNCH_FAILED, in \"copy\"");
  assert_string_equal(fields[1 + 22][24], "passed its deadline of 2000 ms\nworker killed");
  assert_string_equal(fields[1 + 7][24], "peer access refused <CNS>"); /* plain: not quoted */
  /* Every field, empty where the JSON has null. */
  assert_has(csv, "\ncopy_ce,ok,0,1,,,false,false,true,false,,,268435456,20,5,1000.125,990.500,"
                  "1010.750,985.000,1020.250,0.0125,301.000,,,\n");
  assert_has(csv, "\nh2d,ok,,0,");
  assert_has(csv, "\nallreduce_oneshot,ok,,,2,0 1,false,false,true,false,,fp16,1048576,20,5,"
                  "10.000,");
  assert_has(csv, ",0.0125,,,750.500,\n"); /* the chase: no bandwidth */
  ps_free(csv);
  ps_report_free(rep);
}

/* ---- SVG ------------------------------------------------------------------------------- */

/* Well-formed enough for any XML parser: every tag closed in order, one root, entities known,
 * no '<' outside markup. */
static void assert_well_formed(const char *svg) {
  char stack[32][32];
  int depth = 0, roots = 0;
  for (const char *p = svg; *p; p++) {
    if (*p == '&') {
      static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
      bool ok = false;
      for (int e = 0; e < 5; e++)
        ok |= strncmp(p, ents[e], strlen(ents[e])) == 0;
      if (!ok) fail_msg("bad entity at: %.30s", p);
      continue;
    }
    if (*p != '<') continue;
    const char *end = strchr(p, '>');
    assert_non_null(end);
    if (p[1] == '?') {
      assert_true(p == svg); /* the declaration, first */
    } else if (p[1] == '/') {
      assert_true(depth > 0);
      size_t len = strlen(stack[depth - 1]);
      if (strncmp(p + 2, stack[--depth], len) != 0 || p[2 + len] != '>')
        fail_msg("</%.20s> closes <%s>", p + 2, stack[depth]);
    } else {
      size_t len = strcspn(p + 1, " />\n");
      assert_true(len > 0 && len < 32);
      for (const char *q = p + 1; q < end; q++)
        assert_true(*q != '<');
      if (end[-1] != '/') {
        assert_true(depth < 32);
        if (depth == 0) roots++;
        snprintf(stack[depth++], 32, "%.*s", (int)len, p + 1);
      }
    }
    p = end;
  }
  assert_int_equal(depth, 0);
  assert_int_equal(roots, 1);
}

static void test_svg(void **state) {
  (void)state;
  ps_report *rep = bench_report();
  char *svg;
  render(rep, PS_BENCH_SVG, &svg);
  assert_true(strncmp(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
  assert_well_formed(svg);
  /* Four heatmaps (copy P2P on and off, 4 B latency, chase), 3 x 3 cells each. */
  assert_int_equal(occurrences(svg, "<g class=\"heatmap\">"), 4);
  assert_int_equal(occurrences(svg, "<rect class=\"cell\""), 4 * 9);
  for (const char *g = strstr(svg, "<g class=\"heatmap\">"); g; g = strstr(g + 1, "<g class")) {
    const char *end = strstr(g, "</g>");
    int cells = 0;
    for (const char *c = strstr(g, "<rect class=\"cell\""); c && c < end;
         c = strstr(c + 1, "<rect class=\"cell\""))
      cells++;
    assert_int_equal(cells, 9);
    assert_non_null(strstr(g, "GPU 2</text>")); /* axis labels */
  }
  assert_int_equal(occurrences(svg, "<rect class=\"legend\""), 4);
  /* 301..321 GB/s are within 10% of each other: the scale starts at 0 (noise is not contrast) */
  assert_has(svg, ">min 0.0 GB/s</text>");
  assert_has(svg, ">max 321.0 GB/s</text>");
  assert_has(svg, ">Copy latency (us), 4 B, P2P on</text>");
  assert_has(svg, ">SIMULATED: fake drivers, modelled timings, not measurements of a machine<");
  /* Escaped text: the machine, a reason in a tooltip. */
  assert_has(svg, "rig &lt;3 GPUs&gt; &amp; &quot;co&quot;");
  assert_has(svg, "waived: peer access refused &lt;CNS&gt;</title>");
  assert_null(strstr(svg, "<CNS>"));
  assert_has(svg, ">waived</text>");
  assert_has(svg, ">FAIL</text>");
  assert_has(svg, ">n/a</text>"); /* pairs without a result */
  /* Self-contained: no script, and the only URL is the SVG namespace. */
  assert_null(strstr(svg, "<script"));
  assert_int_equal(occurrences(svg, "http"), 1);
  assert_int_equal(occurrences(svg, "href"), 0);
  ps_free(svg);

  /* A driver string that is not UTF-8 still gives a document that parses. */
  snprintf(rep->machine, sizeof(rep->machine), "bad \xff\xfe name \xc3\xa9\x01");
  render(rep, PS_BENCH_SVG, &svg);
  assert_well_formed(svg);
  assert_has(svg, "bad ?? name \xc3\xa9?");
  ps_free(svg);
  ps_report_free(rep);

  rep = ps__report_new(2);
  rep->bench = calloc(1, sizeof(*rep->bench));
  ps_bench_result *r = ps__bench_add(rep->bench); /* an all-reduce: no matrix */
  r->kind = PS_BENCH_ALLREDUCE_NCCL;
  render(rep, PS_BENCH_SVG, &svg);
  assert_well_formed(svg);
  assert_has(svg, ">no copy or latency measurements</text>");
  assert_int_equal(occurrences(svg, "<rect class=\"cell\""), 0);
  ps_free(svg);
  ps_report_free(rep);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void to_json(const ps_report *r, char **text) { /* as render() */
  ps_ctx *ctx = ps_ctx_new();
  *text = NULL;
  if (ps_report_to_json(ctx, r, text) != PS_OK) fail_msg("%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
}

static ps_report *from_json(const char *text) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_report_parse_json(ctx, text, strlen(text), "rig.json", &r) != PS_OK)
    fail_msg("%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

#define SAME(f) assert_true(x->f == y->f)
#define SAME_STR(f) assert_string_equal(x->f, y->f)

static void assert_same_bench(const ps_bench *x, const ps_bench *y) {
  assert_non_null(y);
  SAME(simulated);
  SAME(kernels);
  SAME(nccl_version);
  SAME_STR(nccl_note);
  SAME_STR(started);
  SAME(wall_ms);
  assert_int_equal(x->count, y->count);
  for (size_t i = 0; i < x->count; i++) {
    const ps_bench_result *a = &x->results[i], *b = &y->results[i];
    /* Field by field, so a failure names it; then the bytes, so no field is forgotten. */
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->outcome, b->outcome);
    assert_int_equal(a->src, b->src);
    assert_int_equal(a->dst, b->dst);
    assert_int_equal(a->ranks, b->ranks);
    assert_memory_equal(a->group, b->group, sizeof(a->group));
    assert_int_equal(a->virtual_ranks, b->virtual_ranks);
    assert_int_equal(a->bidirectional, b->bidirectional);
    assert_int_equal(a->p2p, b->p2p);
    assert_int_equal(a->graph, b->graph);
    assert_string_equal(a->env, b->env);
    assert_string_equal(a->dtype, b->dtype);
    assert_int_equal(a->bytes, b->bytes);
    assert_int_equal(a->iters, b->iters);
    assert_int_equal(a->trials, b->trials);
    assert_true(a->us_median == b->us_median && a->us_p10 == b->us_p10 && a->us_p90 == b->us_p90 &&
                a->us_min == b->us_min && a->us_max == b->us_max);
    assert_true(a->cv == b->cv);
    assert_true(a->gbps == b->gbps);
    assert_true(a->bus_gbps == b->bus_gbps);
    assert_true(a->ns_per_access == b->ns_per_access);
    assert_string_equal(a->reason, b->reason);
    assert_memory_equal(a, b, sizeof(*a)); /* results are zeroed before filling */
  }
}

static void test_json_round_trip(void **state) {
  (void)state;
  ps_report *rep = bench_report();
  ps_bench_result *r = &rep->bench->results[20];
  r->virtual_ranks = true; /* every flag set somewhere */
  r->graph = true;
  r->group[1] = 0;
  snprintf(rep->bench->nccl_note, sizeof(rep->bench->nccl_note), "NCCL_P2P_LEVEL=%s", "NVL");
  char *text;
  to_json(rep, &text);
  ps_report *back = from_json(text);
  assert_same_bench(rep->bench, back->bench);
  char *again;
  to_json(back, &again);
  assert_string_equal(text, again); /* canonical bytes */
  assert_has(text, "\n  },\n  \"bench\": {\n    \"simulated\": true,\n    \"kernels\": true,\n"
                   "    \"nccl_version\": 22809,\n");
  assert_has(text, "\"wall_ms\": 1234.5,");
  assert_has(text, "\"group\": [\n          0,\n          0\n        ],");
  assert_has(text, "\"us\": {\n          \"median\": 1000.125,");
  assert_has(text, "\"cv\": 0.0125,");
  ps_free(text);
  ps_free(again);
  ps_report_free(back);

  /* What a kind does not measure, or a run that did not happen, is null. */
  to_json(rep, &text);
  json_t *doc = json_loads(text, 0, NULL);
  json_t *results = json_object_get(json_object_get(doc, "bench"), "results");
  const json_t *chase = json_array_get(results, 19), *waived = json_array_get(results, 7);
  const json_t *h2d = json_array_get(results, 15), *copy = json_array_get(results, 3);
  assert_true(json_is_null(json_object_get(chase, "gbps")));
  assert_true(json_real_value(json_object_get(chase, "ns_per_access")) == 750.5);
  assert_true(json_is_null(json_object_get(copy, "bus_gbps")));
  assert_true(json_is_null(json_object_get(copy, "ranks")));
  assert_true(json_is_null(json_object_get(copy, "group")));
  assert_true(json_is_null(json_object_get(copy, "env")));
  assert_true(json_is_null(json_object_get(copy, "dtype")));
  assert_true(json_is_null(json_object_get(copy, "reason")));
  assert_true(json_is_null(json_object_get(h2d, "src")));
  assert_int_equal(json_integer_value(json_object_get(h2d, "dst")), 0);
  assert_int_equal(json_integer_value(json_object_get(waived, "trials")), 0);
  assert_true(json_is_null(json_object_get(waived, "us")));
  assert_true(json_is_null(json_object_get(waived, "cv")));
  assert_true(json_is_null(json_object_get(waived, "gbps")));
  assert_int_equal(json_object_size(waived), 21);
  json_decref(doc);
  ps_free(text);

  /* Unknown values read back as their unknown form; a report without benchmarks has no key. */
  ps_bench_free(rep->bench);
  rep->bench = calloc(1, sizeof(*rep->bench));
  rep->bench->wall_ms = -1;
  ps_bench_result *z = ps__bench_add(rep->bench);
  z->gbps = 0.0004; /* below the format's 0.001 GB/s: not measured */
  z->kind = PS_BENCH_H2D;
  z->trials = 1;
  z->us_median = 1.23456;
  to_json(rep, &text);
  assert_has(text, "\"nccl_version\": null,\n    \"nccl_note\": null,\n    \"started\": null,\n"
                   "    \"wall_ms\": null,");
  back = from_json(text);
  assert_true(back->bench->wall_ms == -1);
  assert_true(back->bench->results[0].gbps == 0);
  assert_true(back->bench->results[0].us_median == 1.235);
  assert_int_equal(back->bench->results[0].src, -1);
  ps_free(text);
  ps_report_free(back);
  ps_bench_free(rep->bench);
  rep->bench = NULL;
  to_json(rep, &text);
  assert_null(strstr(text, "bench"));
  back = from_json(text);
  assert_null(back->bench);
  ps_free(text);
  ps_report_free(back);
  ps_report_free(rep);
}

static void test_json_write_refuses(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *rep = bench_report();
  char *text = NULL;
  rep->bench->results[2].us_p90 = -1; /* ran, but not a time */
  assert_int_equal(ps_report_to_json(ctx, rep, &text), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx),
                      "cannot write report: bench.results[2].us.p90: -1 is not a measurement");
  rep->bench->results[2].us_p90 = 1;
  rep->bench->results[20].ranks = 9;
  assert_int_equal(ps_report_to_json(ctx, rep, &text), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx), "cannot write report: bench.results[20].ranks: 9 is more "
                                         "than 8");
  assert_null(text);
  ps_report_free(rep);
  ps_ctx_free(ctx);
}

/* Replaces (value != NULL, stolen) or removes the member at a path like
 * "bench.results[3].us.median". */
static void edit(json_t *doc, const char *path, json_t *value) {
  struct {
    bool index;
    size_t i;
    char key[64];
  } tok[8];
  int n = 0;
  for (const char *p = path; *p && n < 8; n++) {
    if (*p == '.') p++;
    tok[n].index = *p == '[';
    if (tok[n].index) {
      char *end;
      tok[n].i = strtoul(p + 1, &end, 10);
      p = end + 1;
    } else {
      size_t len = strcspn(p, ".[");
      snprintf(tok[n].key, sizeof(tok[n].key), "%.*s", (int)len, p);
      p += len;
    }
  }
  json_t *at = doc;
  for (int t = 0; t < n - 1; t++) {
    at = tok[t].index ? json_array_get(at, tok[t].i) : json_object_get(at, tok[t].key);
    if (!at) fail_msg("bad path %s", path);
  }
  if (tok[n - 1].index)
    json_array_set_new(at, tok[n - 1].i, value);
  else if (value)
    json_object_set_new(at, tok[n - 1].key, value);
  else
    json_object_del(at, tok[n - 1].key);
}

static void expect_edit_error(const char *path, json_t *value, const char *message) {
  ps_report *rep = bench_report();
  char *text;
  to_json(rep, &text);
  json_t *doc = json_loads(text, 0, NULL);
  edit(doc, path, value);
  char *edited = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *out = (ps_report *)0x1;
  ps_status st = ps_report_parse_json(ctx, edited, strlen(edited), "rig.json", &out);
  if (st != PS_ERR_BAD_INPUT || strcmp(ps_ctx_error(ctx), message) != 0)
    fail_msg("%s: expected \"%s\", got %s \"%s\"", path, message, ps_status_name(st),
             ps_ctx_error(ctx));
  assert_null(out);
  ps_ctx_free(ctx);
  free(edited);
  json_decref(doc);
  ps_free(text);
  ps_report_free(rep);
}

static void test_json_read_errors(void **state) {
  (void)state;
  /* results: 0-2 local_ce, 3-8 copy_ce (6 failed, 7 waived), 9-10 P2P off, 11 both ways, 12-14
   * waived SM reads, 15 h2d, 16 d2h, 17-18 latency_write, 19 chase, 20-22 all-reduce. */
  expect_edit_error("bench", json_null(), "rig.json: bench: expected an object");
  expect_edit_error("bench.extra", json_true(), "rig.json: bench: unknown key 'extra'");
  expect_edit_error("bench.kernels", NULL, "rig.json: bench: missing key 'kernels'");
  expect_edit_error("bench.simulated", json_integer(1),
                    "rig.json: bench.simulated: expected true or false");
  expect_edit_error("bench.nccl_version", json_integer(0),
                    "rig.json: bench.nccl_version: 0 is below the minimum 1");
  expect_edit_error("bench.started", json_string(""),
                    "rig.json: bench.started: empty string (write null for an unknown value)");
  expect_edit_error("bench.wall_ms", json_integer(-1),
                    "rig.json: bench.wall_ms: -1 is negative (write null for a value not "
                    "measured)");
  expect_edit_error("bench.results", json_object(), "rig.json: bench.results: expected an array");
  expect_edit_error("bench.results[4]", json_integer(3),
                    "rig.json: bench.results[4]: expected an object");
  expect_edit_error("bench.results[0].foo", json_null(),
                    "rig.json: bench.results[0]: unknown key 'foo'");
  expect_edit_error("bench.results[1].reason", NULL,
                    "rig.json: bench.results[1]: missing key 'reason'");
  expect_edit_error("bench.results[0].kind", json_string("copy"),
                    "rig.json: bench.results[0].kind: unknown kind 'copy' (expected copy_ce, "
                    "copy_sm_read, copy_sm_write, local_ce, local_sm, h2d, d2h, latency_write, "
                    "latency_chase, allreduce_nccl or allreduce_oneshot)");
  expect_edit_error("bench.results[0].outcome", json_string("OK"),
                    "rig.json: bench.results[0].outcome: unknown outcome 'OK' (expected ok, "
                    "waived, failed, hang or wrong)");
  expect_edit_error("bench.results[3].src", json_integer(3),
                    "rig.json: bench.results[3].src: no GPU 3 (the report has 3)");
  expect_edit_error("bench.results[3].dst", json_string("1"),
                    "rig.json: bench.results[3].dst: expected an integer or null");
  expect_edit_error("bench.results[3].p2p", json_null(),
                    "rig.json: bench.results[3].p2p: expected true or false");
  expect_edit_error("bench.results[20].ranks", json_integer(9),
                    "rig.json: bench.results[20].ranks: 9 is above the maximum 8");
  expect_edit_error("bench.results[20].group", json_pack("[i]", 0),
                    "rig.json: bench.results[20].group: 1 GPUs but ranks is 2");
  expect_edit_error("bench.results[20].group", json_null(),
                    "rig.json: bench.results[20]: ranks and group must both be null or both be "
                    "set");
  expect_edit_error("bench.results[3].group", json_pack("[i]", 0),
                    "rig.json: bench.results[3]: ranks and group must both be null or both be "
                    "set");
  expect_edit_error("bench.results[20].group", json_pack("[i,i]", 0, 7),
                    "rig.json: bench.results[20].group[1]: no GPU 7 (the report has 3)");
  expect_edit_error("bench.results[20].group", json_pack("[i,s]", 0, "1"),
                    "rig.json: bench.results[20].group[1]: expected an integer");
  expect_edit_error("bench.results[20].env",
                    json_string("NCCL_P2P_LEVEL=NVL_AND_A_LOT_MORE_TEXT_X"),
                    "rig.json: bench.results[20].env: 40 bytes is too long (at most 39)");
  expect_edit_error("bench.results[3].bytes", json_integer(0),
                    "rig.json: bench.results[3].bytes: 0 is below the minimum 1");
  expect_edit_error("bench.results[3].trials", json_null(),
                    "rig.json: bench.results[3].trials: expected an integer");
  expect_edit_error("bench.results[3].us", json_null(),
                    "rig.json: bench.results[3].us: expected an object when trials is 5");
  expect_edit_error("bench.results[3].cv", json_null(),
                    "rig.json: bench.results[3].cv: expected a number when trials is 5");
  expect_edit_error("bench.results[7].cv", json_real(0.5),
                    "rig.json: bench.results[7].cv: must be null when trials is 0");
  expect_edit_error("bench.results[3].us.median", NULL,
                    "rig.json: bench.results[3].us: missing key 'median'");
  expect_edit_error("bench.results[3].us.max", json_null(),
                    "rig.json: bench.results[3].us.max: expected a number");
  expect_edit_error("bench.results[19].gbps", json_real(5),
                    "rig.json: bench.results[19].gbps: latency_chase has no bandwidth (must be "
                    "null)");
  expect_edit_error("bench.results[3].bus_gbps", json_real(5),
                    "rig.json: bench.results[3].bus_gbps: copy_ce has no bus bandwidth (must be "
                    "null)");
  expect_edit_error("bench.results[3].ns_per_access", json_real(5),
                    "rig.json: bench.results[3].ns_per_access: copy_ce has no time per access "
                    "(must be null)");
  expect_edit_error("bench.results[3].gbps", json_real(0),
                    "rig.json: bench.results[3].gbps: 0 is not a bandwidth (write null for a "
                    "value not measured)");
}

/* A cut anywhere in the bench part is a syntax error with a position. */
static void test_json_cut(void **state) {
  (void)state;
  ps_report *rep = bench_report();
  char *text;
  to_json(rep, &text);
  size_t len = strlen(text), from = (size_t)(strstr(text, "\"bench\"") - text);
  for (size_t cut = from; cut < len - 1; cut += 211) {
    ps_ctx *ctx = ps_ctx_new();
    ps_report *out = NULL;
    assert_int_equal(ps_report_parse_json(ctx, text, cut, "cut.json", &out), PS_ERR_BAD_INPUT);
    assert_null(out);
    assert_true(strncmp(ps_ctx_error(ctx), "cut.json:", 9) == 0);
    assert_true(ps_ctx_error(ctx)[9] >= '1' && ps_ctx_error(ctx)[9] <= '9'); /* line:col */
    ps_ctx_free(ctx);
  }
  ps_free(text);
  ps_report_free(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_text_edges),
      cmocka_unit_test(test_csv),
      cmocka_unit_test(test_svg),
      cmocka_unit_test(test_json_round_trip),
      cmocka_unit_test(test_json_write_refuses),
      cmocka_unit_test(test_json_read_errors),
      cmocka_unit_test(test_json_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
