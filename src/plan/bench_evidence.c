/* What a report's measured benchmarks (ps_bench_run, or a report read back with them) say
 * about vLLM's custom all-reduce on a TP group: peerscope's one-shot kernel is the same
 * algorithm (every rank reads every peer's buffer over P2P), so its outcome on the group is
 * evidence, and its time against NCCL's on the same GPUs says whether the custom all-reduce
 * pays off at decode-sized messages. Figures measured in CUDA graphs, as vLLM replays its
 * decode all-reduces, are quoted when the report has them; eager ones otherwise. */
#include <stdio.h>
#include <string.h>

#include "plan/plan_internal.h"

/* vLLM's one-shot limit for 4 GPUs (512 KB); the sizes a decode step all-reduces. */
#define SMALL_MESSAGE_BYTES (512u * 1024u)

static bool same_group(const ps_bench_result *r, const int *group, int tp) {
  if (r->virtual_ranks || r->ranks != tp) return false;
  for (int i = 0; i < tp; i++) {
    bool found = false;
    for (int j = 0; j < tp && !found; j++)
      found = r->group[j] == group[i];
    if (!found) return false;
  }
  return true;
}

/* NCCL's default-environment time for the same group, type, size and launch mode, or -1. */
static double nccl_time(const ps_bench *b, const ps_bench_result *one, const int *group, int tp) {
  for (size_t i = 0; i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind == PS_BENCH_ALLREDUCE_NCCL && r->outcome == PS_BENCH_OK && r->graph == one->graph &&
        strcmp(r->env, "default") == 0 && r->bytes == one->bytes &&
        strcmp(r->dtype, one->dtype) == 0 && same_group(r, group, tp))
      return r->us_median;
  }
  return -1;
}

/* The one-shot kernel's best speed-up over NCCL at decode sizes, in one launch mode. */
typedef struct best_gain {
  bool measured;
  double ratio, us, nccl_us;
  uint64_t bytes;
} best_gain;

static void consider(best_gain *g, const ps_bench_result *r, double nccl) {
  g->measured = true;
  if (nccl / r->us_median > g->ratio) {
    g->ratio = nccl / r->us_median;
    g->us = r->us_median;
    g->nccl_us = nccl;
    g->bytes = r->bytes;
  }
}

/* Graph figures when there are any: vLLM replays its decode all-reduces from CUDA graphs. */
static ps__car_evidence say(const ps_bench *b, const best_gain *g, bool graph, char *why,
                            size_t why_len) {
  const char *how = graph ? "in CUDA graphs (as vLLM replays it)" : "eager";
  if (g->ratio > 1.05) {
    snprintf(why, why_len,
             "measured%s %s: a one-shot P2P all-reduce is %.2fx faster than NCCL at %llu KiB on "
             "this group (%.1f vs %.1f us)",
             b->simulated ? " (simulated)" : "", how, g->ratio,
             (unsigned long long)(g->bytes / 1024), g->us, g->nccl_us);
    return PS_CAR_FASTER;
  }
  snprintf(why, why_len,
           "measured%s %s: NCCL was as fast as a one-shot P2P all-reduce at every size up to "
           "512 KiB here: the custom all-reduce gains nothing (it is harmless)",
           b->simulated ? " (simulated)" : "", how);
  return PS_CAR_NO_GAIN;
}

ps__car_evidence ps__bench_car_evidence(const ps_report *report, const int *group, int tp,
                                        char *why, size_t why_len) {
  const ps_bench *b = report->bench;
  if (!b || tp < 2) return PS_CAR_NOT_MEASURED;
  best_gain eager = {0}, graph = {0};
  for (size_t i = 0; i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind != PS_BENCH_ALLREDUCE_ONESHOT || !same_group(r, group, tp)) continue;
    if (r->outcome == PS_BENCH_FAILED || r->outcome == PS_BENCH_HANG ||
        r->outcome == PS_BENCH_WRONG) {
      snprintf(why, why_len,
               "measured: peerscope's one-shot all-reduce (the algorithm of vLLM's custom "
               "all-reduce) %s on this group: %.120s",
               ps_bench_outcome_name(r->outcome), r->reason);
      return PS_CAR_FAILED;
    }
    if (r->outcome != PS_BENCH_OK || r->bytes > SMALL_MESSAGE_BYTES) continue;
    double nccl = nccl_time(b, r, group, tp);
    if (nccl > 0 && r->us_median > 0) consider(r->graph ? &graph : &eager, r, nccl);
  }
  if (graph.measured) return say(b, &graph, true, why, why_len);
  if (eager.measured) return say(b, &eager, false, why, why_len);
  return PS_CAR_NOT_MEASURED;
}
