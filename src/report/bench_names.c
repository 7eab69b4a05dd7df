/* Bench results as data: names of the kinds and outcomes, what each kind measures, freeing,
 * and the slowest P2P copy. Here, with the report that holds them, so the JSON reader and
 * writer, the planner and the renderers need nothing from the benchmarks that fill them. */
#include "core/internal.h"
#include "report/report_internal.h"

static const char *const kind_names[PS_BENCH_KIND_COUNT] = {
    [PS_BENCH_COPY_CE] = "copy_ce",
    [PS_BENCH_COPY_SM_READ] = "copy_sm_read",
    [PS_BENCH_COPY_SM_WRITE] = "copy_sm_write",
    [PS_BENCH_LOCAL_CE] = "local_ce",
    [PS_BENCH_LOCAL_SM] = "local_sm",
    [PS_BENCH_H2D] = "h2d",
    [PS_BENCH_D2H] = "d2h",
    [PS_BENCH_LATENCY_WRITE] = "latency_write",
    [PS_BENCH_LATENCY_CHASE] = "latency_chase",
    [PS_BENCH_ALLREDUCE_NCCL] = "allreduce_nccl",
    [PS_BENCH_ALLREDUCE_ONESHOT] = "allreduce_oneshot"};

static const char *const outcome_names[] = {[PS_BENCH_OK] = "ok",
                                            [PS_BENCH_WAIVED] = "waived",
                                            [PS_BENCH_FAILED] = "failed",
                                            [PS_BENCH_HANG] = "hang",
                                            [PS_BENCH_WRONG] = "wrong"};

const char *ps_bench_kind_name(ps_bench_kind kind) {
  return (unsigned)kind < PS_ARRAY_LEN(kind_names) ? kind_names[kind] : "?";
}

const char *ps_bench_outcome_name(ps_bench_outcome outcome) {
  return (unsigned)outcome < PS_ARRAY_LEN(outcome_names) ? outcome_names[outcome] : "?";
}

bool ps__bench_kind_parse(const char *name, ps_bench_kind *out) {
  int i = ps__report_name_index(kind_names, PS_ARRAY_LEN(kind_names), name);
  if (i < 0) return false;
  *out = (ps_bench_kind)i;
  return true;
}

bool ps__bench_outcome_parse(const char *name, ps_bench_outcome *out) {
  int i = ps__report_name_index(outcome_names, PS_ARRAY_LEN(outcome_names), name);
  if (i < 0) return false;
  *out = (ps_bench_outcome)i;
  return true;
}

/* A pointer chase times dependent loads, not a transfer: it has no bandwidth. */
bool ps__bench_kind_has_gbps(ps_bench_kind kind) {
  return (unsigned)kind < PS_BENCH_KIND_COUNT && kind != PS_BENCH_LATENCY_CHASE;
}

bool ps__bench_kind_has_bus_gbps(ps_bench_kind kind) {
  return kind == PS_BENCH_ALLREDUCE_NCCL || kind == PS_BENCH_ALLREDUCE_ONESHOT;
}

bool ps__bench_kind_has_ns(ps_bench_kind kind) { return kind == PS_BENCH_LATENCY_CHASE; }

void ps_bench_free(ps_bench *bench) {
  if (!bench) return;
  ps__free(bench->results);
  ps__free(bench);
}

double ps_bench_min_p2p_gbps(const ps_bench *bench) {
  double best = -1;
  if (!bench || !bench->results) return best;
  for (size_t i = 0; i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    if (r->kind == PS_BENCH_COPY_CE && r->outcome == PS_BENCH_OK && r->p2p && !r->bidirectional &&
        (best < 0 || r->gbps < best))
      best = r->gbps;
  }
  return best;
}
