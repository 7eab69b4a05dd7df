/* The report's optional "bench" object (docs/topology-report.md, "bench"): one entry per
 * measurement, null for what a kind does not measure or a measurement that did not happen. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "report/json_internal.h"
#include "report/report_internal.h"

/* Times to the nanosecond, bandwidths to the MB/s; the spread needs finer steps. */
#define US_DECIMALS 3
#define GBPS_DECIMALS 3
#define CV_DECIMALS 4

static json_t *int_or_null(bool known, long long value) {
  return known ? json_integer(value) : json_null();
}

/* A derived number: null when the kind has none, or nothing (0, which also stands for "did not
 * run") was measured. A value that rounds to 0 is null too, so a document read back never has
 * a 0 the writer would not write. */
static json_t *positive_or_null(bool applies, double value, int decimals) {
  if (!applies || !isfinite(value) || value <= 0) return json_null();
  json_t *j = ps__jreal_or_null(value, decimals);
  if (j && json_real_value(j) <= 0) {
    json_decref(j);
    return json_null();
  }
  return j;
}

/* A time or spread of a result that has trials: it must be a number. */
static json_t *measured(ps__jwriter *w, double value, int decimals, const char *at,
                        const char *key) {
  if (!isfinite(value) || value < 0) {
    snprintf(w->bad, sizeof(w->bad), "%s.%s: %g is not a measurement", at, key, value);
    return json_null();
  }
  return ps__jreal_or_null(value, decimals);
}

static json_t *us_json(ps__jwriter *w, const ps_bench_result *r, const char *at) {
  json_t *us = json_object();
  ps__jput(w, us, "median", measured(w, r->us_median, US_DECIMALS, at, "us.median"));
  ps__jput(w, us, "p10", measured(w, r->us_p10, US_DECIMALS, at, "us.p10"));
  ps__jput(w, us, "p90", measured(w, r->us_p90, US_DECIMALS, at, "us.p90"));
  ps__jput(w, us, "min", measured(w, r->us_min, US_DECIMALS, at, "us.min"));
  ps__jput(w, us, "max", measured(w, r->us_max, US_DECIMALS, at, "us.max"));
  return us;
}

static json_t *group_json(ps__jwriter *w, const ps_bench_result *r, const char *at) {
  if (r->ranks <= 0) return json_null();
  if (r->ranks > PS_BENCH_MAX_RANKS) {
    snprintf(w->bad, sizeof(w->bad), "%s.ranks: %d is more than %d", at, r->ranks,
             PS_BENCH_MAX_RANKS);
    return json_null();
  }
  json_t *group = json_array();
  for (int i = 0; i < r->ranks; i++) {
    if (r->group[i] < 0)
      snprintf(w->bad, sizeof(w->bad), "%s.group[%d]: %d is not a GPU", at, i, r->group[i]);
    if (json_array_append_new(group, json_integer(r->group[i])) != 0) w->failed = true;
  }
  return group;
}

static json_t *result_json(ps__jwriter *w, const ps_bench_result *r, size_t position) {
  char at[64];
  snprintf(at, sizeof(at), "bench.results[%zu]", position);
  if ((unsigned)r->kind >= PS_BENCH_KIND_COUNT)
    snprintf(w->bad, sizeof(w->bad), "%s.kind: invalid kind %d", at, (int)r->kind);
  if ((unsigned)r->outcome > PS_BENCH_WRONG)
    snprintf(w->bad, sizeof(w->bad), "%s.outcome: invalid outcome %d", at, (int)r->outcome);
  if (r->bytes > (uint64_t)INT64_MAX)
    snprintf(w->bad, sizeof(w->bad), "%s.bytes: %llu does not fit a JSON integer", at,
             (unsigned long long)r->bytes);
  json_t *o = json_object();
  ps__jput(w, o, "kind", json_string(ps_bench_kind_name(r->kind)));
  ps__jput(w, o, "outcome", json_string(ps_bench_outcome_name(r->outcome)));
  ps__jput(w, o, "src", int_or_null(r->src >= 0, r->src));
  ps__jput(w, o, "dst", int_or_null(r->dst >= 0, r->dst));
  ps__jput(w, o, "ranks", int_or_null(r->ranks > 0, r->ranks));
  ps__jput(w, o, "group", group_json(w, r, at));
  ps__jput(w, o, "virtual_ranks", json_boolean(r->virtual_ranks));
  ps__jput(w, o, "bidirectional", json_boolean(r->bidirectional));
  ps__jput(w, o, "p2p", json_boolean(r->p2p));
  ps__jput(w, o, "graph", json_boolean(r->graph));
  ps__jput(w, o, "env", ps__jstr_or_null(r->env, sizeof(r->env)));
  ps__jput(w, o, "dtype", ps__jstr_or_null(r->dtype, sizeof(r->dtype)));
  ps__jput(w, o, "bytes",
           int_or_null(r->bytes > 0 && r->bytes <= (uint64_t)INT64_MAX, (long long)r->bytes));
  ps__jput(w, o, "iters", int_or_null(r->iters > 0, r->iters));
  bool ran = r->trials > 0; /* times and spread exist only for trials that ran */
  ps__jput(w, o, "trials", json_integer(ran ? r->trials : 0));
  ps__jput(w, o, "us", ran ? us_json(w, r, at) : json_null());
  ps__jput(w, o, "cv", ran ? measured(w, r->cv, CV_DECIMALS, at, "cv") : json_null());
  ps__jput(w, o, "gbps",
           positive_or_null(ps__bench_kind_has_gbps(r->kind), r->gbps, GBPS_DECIMALS));
  ps__jput(w, o, "bus_gbps",
           positive_or_null(ps__bench_kind_has_bus_gbps(r->kind), r->bus_gbps, GBPS_DECIMALS));
  ps__jput(w, o, "ns_per_access",
           positive_or_null(ps__bench_kind_has_ns(r->kind), r->ns_per_access, US_DECIMALS));
  ps__jput(w, o, "reason", ps__jstr_or_null(r->reason, sizeof(r->reason)));
  return o;
}

json_t *ps__bench_json(ps__jwriter *w, const ps_bench *b) {
  json_t *o = json_object();
  ps__jput(w, o, "simulated", json_boolean(b->simulated));
  ps__jput(w, o, "kernels", json_boolean(b->kernels));
  ps__jput(w, o, "nccl_version", int_or_null(b->nccl_version > 0, b->nccl_version));
  ps__jput(w, o, "nccl_note", ps__jstr_or_null(b->nccl_note, sizeof(b->nccl_note)));
  ps__jput(w, o, "started", ps__jstr_or_null(b->started, sizeof(b->started)));
  ps__jput(w, o, "wall_ms", ps__jreal_or_null(b->wall_ms, 3));
  json_t *results = json_array();
  if (b->count > 0 && !b->results) snprintf(w->bad, sizeof(w->bad), "bench: results missing");
  for (size_t i = 0; b->results && i < b->count; i++)
    if (json_array_append_new(results, result_json(w, &b->results[i], i)) != 0) w->failed = true;
  ps__jput(w, o, "results", results);
  return o;
}
