/* Benchmark (not a test): time to plan a model on a saved 8-GPU report, on four such nodes and
 * on a Ray cluster of 128 (one instance, replicas on the rest), next to the time to read that
 * report and to import a topology text, in one run.
 * usage: bench_plan REPORT.json MODEL_DIR TOPO.txt [runs] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peerscope/peerscope.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n, const char *target) {
  qsort(t, (size_t)n, sizeof(*t), cmp);
  printf("%-34s median %8.3f ms  p10 %8.3f  p90 %8.3f  (n=%d; target %s)\n", what, t[n / 2],
         t[n / 10], t[n * 9 / 10], n, target);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s REPORT.json MODEL_DIR TOPO.txt [runs]\n", argv[0]);
    return 2;
  }
  int runs = argc > 4 ? atoi(argv[4]) : 50;
  if (runs < 10) runs = 10;
  ps_ctx *ctx = ps_ctx_new();
  ps_model *model = NULL;
  if (ps_model_load(ctx, argv[2], &model) != PS_OK) {
    fprintf(stderr, "%s\n", ps_ctx_error(ctx));
    return 1;
  }
  FILE *f = fopen(argv[3], "rb");
  if (!f) return 1;
  static char topo[1 << 21];
  size_t len = fread(topo, 1, sizeof(topo) - 1, f);
  fclose(f);
  double *t = calloc((size_t)runs, sizeof(double));
  ps_report *r = NULL;
  for (int i = 0; i < runs; i++) {
    double t0 = now_ms();
    ps_report_free(r);
    if (ps_report_read_json(ctx, argv[1], &r) != PS_OK) {
      fprintf(stderr, "%s\n", ps_ctx_error(ctx));
      return 1;
    }
    t[i] = now_ms() - t0;
  }
  report("read 8-GPU report (JSON)", t, runs, "-");
  ps_plan *plan = NULL;
  ps_plan_request req = {.size = sizeof(req), .model = model};
  for (int i = 0; i < runs; i++) {
    ps_plan_free(plan);
    plan = NULL;
    double t0 = now_ms();
    ps_plan_make(ctx, r, &req, &plan);
    t[i] = now_ms() - t0;
  }
  printf("plan: %s\n", plan->summary);
  report("plan on the 8-GPU report", t, runs, "< 5 ms");
  const ps_report *nodes[4] = {r, r, r, r};
  for (int i = 0; i < runs; i++) {
    ps_plan_free(plan);
    plan = NULL;
    double t0 = now_ms();
    ps_plan_make_cluster(ctx, nodes, 4, &req, &plan);
    t[i] = now_ms() - t0;
  }
  printf("plan: %s\n", plan->summary);
  report("plan on 4 nodes x 8 GPUs", t, runs, "< 50 ms");
  enum { MANY = 128 };
  const ps_report *many[MANY];
  for (int i = 0; i < MANY; i++)
    many[i] = r;
  for (int i = 0; i < runs; i++) {
    ps_plan_free(plan);
    plan = NULL;
    double t0 = now_ms();
    ps_plan_make_cluster(ctx, many, MANY, &req, &plan);
    t[i] = now_ms() - t0;
  }
  printf("plan: %s (%d replicas)\n", plan->summary, plan->replicas);
  report("plan on 128 nodes x 8 GPUs", t, runs, "< 50 ms");
  /* every other node with GPUs of 70 GiB: each is planned again for its replicas */
  ps_report *smaller = NULL;
  double gib70 = 70;
  if (ps_report_read_json(ctx, argv[1], &smaller) != PS_OK ||
      ps_report_set_gpu_memory(ctx, smaller, &gib70, 1) != PS_OK) {
    fprintf(stderr, "%s\n", ps_ctx_error(ctx));
    return 1;
  }
  for (int i = 1; i < MANY; i += 2)
    many[i] = smaller;
  for (int i = 0; i < runs; i++) {
    ps_plan_free(plan);
    plan = NULL;
    double t0 = now_ms();
    ps_plan_make_cluster(ctx, many, MANY, &req, &plan);
    t[i] = now_ms() - t0;
  }
  printf("plan: %s (%d replicas)\n", plan->summary, plan->replicas);
  report("plan on 128 mixed nodes", t, runs, "< 50 ms");
  ps_report_free(smaller);
  for (int i = 0; i < runs; i++) {
    ps_report *imported = NULL;
    double t0 = now_ms();
    ps_import_topology_text(ctx, topo, len, "topo.txt", &imported);
    t[i] = now_ms() - t0;
    ps_report_free(imported);
  }
  report("import topo -m text", t, runs, "1 MB < 20 ms");
  printf("(text size %zu bytes)\n", len);
  ps_plan_free(plan);
  ps_model_free(model);
  free(t);
  ps_report_free(r);
  ps_ctx_free(ctx);
  return 0;
}
