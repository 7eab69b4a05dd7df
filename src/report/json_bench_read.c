/* Reads the report's optional "bench" object: the inverse of json_bench_write.c, as strict as
 * the rest of the reader (every key, no other, values in range, GPUs that exist, and nothing
 * where the writer writes null). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>

#include "core/internal.h"
#include "report/json_internal.h"
#include "report/report_internal.h"

/* More results than any run makes (8 GPUs, every kind and size, is a few thousand): a larger
 * array is not a benchmark, and would only make us allocate. */
#define PS_BENCH_MAX_RESULTS 100000

static const char kind_list[] = "copy_ce, copy_sm_read, copy_sm_write, local_ce, local_sm, h2d, "
                                "d2h, latency_write, latency_chase, allreduce_nccl or "
                                "allreduce_oneshot";

static ps_status get_int(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                         bool nullable, long long min, long long max, int *out, bool *set) {
  long long value;
  bool present = true;
  ps_status st = ps__jint(r, obj, path, key, nullable, min, max, &value, &present);
  if (st == PS_OK && present) *out = (int)value;
  if (set) *set = present;
  return st;
}

/* A GPU index of a report of gpu_count GPUs, or null (-1). */
static ps_status get_gpu(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                         int gpu_count, int *out) {
  char at[PS_JPATH_LEN];
  long long value;
  bool set;
  *out = -1;
  ps_status st = ps__jint(r, obj, path, key, true, 0, INT_MAX, &value, &set);
  if (st != PS_OK || !set) return st;
  if (value >= gpu_count)
    return ps__jfail(r, ps__jpath_key(at, path, key), "no GPU %lld (the report has %d)", value,
                     gpu_count);
  *out = (int)value;
  return PS_OK;
}

/* A derived number: null (0) or positive, and only for kinds that have it. */
static ps_status get_derived(const ps__jreader *r, const json_t *obj, const char *path,
                             const char *key, bool applies, const char *what, ps_bench_kind kind,
                             double *out) {
  char at[PS_JPATH_LEN];
  bool set;
  *out = 0;
  ps_status st = ps__jreal(r, obj, path, key, true, out, &set);
  if (st != PS_OK || !set) return st;
  if (!applies)
    return ps__jfail(r, ps__jpath_key(at, path, key), "%s has no %s (must be null)",
                     ps_bench_kind_name(kind), what);
  if (*out <= 0)
    return ps__jfail(r, ps__jpath_key(at, path, key),
                     "0 is not a %s (write null for a value not measured)", what);
  return PS_OK;
}

static ps_status read_group(const ps__jreader *r, const json_t *o, const char *path, int gpu_count,
                            ps_bench_result *res) {
  ps_status st = PS_OK;
  char at[PS_JPATH_LEN], item[PS_JPATH_LEN];
  bool has_ranks;
  res->ranks = 0;
  CHECK(get_int(r, o, path, "ranks", true, 1, PS_BENCH_MAX_RANKS, &res->ranks, &has_ranks));
  const json_t *group = json_object_get(o, "group");
  ps__jpath_key(at, path, "group");
  if (json_is_null(group) != !has_ranks) {
    st = ps__jfail(r, path, "ranks and group must both be null or both be set");
    goto cleanup;
  }
  if (!has_ranks) goto cleanup;
  if (!json_is_array(group)) {
    st = ps__jfail(r, at, "expected an array or null");
    goto cleanup;
  }
  if (json_array_size(group) != (size_t)res->ranks) {
    st = ps__jfail(r, at, "%zu GPUs but ranks is %d", json_array_size(group), res->ranks);
    goto cleanup;
  }
  for (int i = 0; i < res->ranks; i++) {
    const json_t *g = json_array_get(group, (size_t)i);
    ps__jpath_index(item, at, (size_t)i);
    if (!json_is_integer(g)) {
      st = ps__jfail(r, item, "expected an integer");
      goto cleanup;
    }
    json_int_t index = json_integer_value(g);
    if (index < 0 || index >= gpu_count) {
      st = ps__jfail(r, item, "no GPU %lld (the report has %d)", (long long)index, gpu_count);
      goto cleanup;
    }
    res->group[i] = (int)index;
  }
cleanup:
  return st;
}

/* us and cv exist exactly when trials ran. */
static ps_status read_times(const ps__jreader *r, const json_t *o, const char *path,
                            ps_bench_result *res) {
  ps_status st = PS_OK;
  char at[PS_JPATH_LEN];
  bool ran = res->trials > 0;
  static const char *const keys[] = {"us", "cv"};
  for (size_t k = 0; k < PS_ARRAY_LEN(keys); k++) {
    bool null = json_is_null(json_object_get(o, keys[k]));
    if (ran && null)
      return ps__jfail(r, ps__jpath_key(at, path, keys[k]), "expected %s when trials is %d",
                       k == 0 ? "an object" : "a number", res->trials);
    if (!ran && !null)
      return ps__jfail(r, ps__jpath_key(at, path, keys[k]), "must be null when trials is 0");
  }
  if (!ran) return PS_OK;
  json_t *us;
  CHECK(ps__jobj(r, o, path, "us", false, &us));
  ps__jpath_key(at, path, "us");
  KEYS(us, at, "median", "p10", "p90", "min", "max");
  CHECK(ps__jreal(r, us, at, "median", false, &res->us_median, NULL));
  CHECK(ps__jreal(r, us, at, "p10", false, &res->us_p10, NULL));
  CHECK(ps__jreal(r, us, at, "p90", false, &res->us_p90, NULL));
  CHECK(ps__jreal(r, us, at, "min", false, &res->us_min, NULL));
  CHECK(ps__jreal(r, us, at, "max", false, &res->us_max, NULL));
  CHECK(ps__jreal(r, o, path, "cv", false, &res->cv, NULL));
cleanup:
  return st;
}

static ps_status read_result(const ps__jreader *r, const json_t *o, const char *path, int gpu_count,
                             ps_bench_result *res) {
  ps_status st;
  char at[PS_JPATH_LEN], name[32];
  long long bytes;
  bool set;
  KEYS(o, path, "kind", "outcome", "src", "dst", "ranks", "group", "virtual_ranks", "bidirectional",
       "p2p", "graph", "env", "dtype", "bytes", "iters", "trials", "us", "cv", "gbps", "bus_gbps",
       "ns_per_access", "reason");
  CHECK(ps__jstr(r, o, path, "kind", false, name, sizeof(name), NULL));
  if (!ps__bench_kind_parse(name, &res->kind)) {
    st = ps__jfail(r, ps__jpath_key(at, path, "kind"), "unknown kind '%s' (expected %s)", name,
                   kind_list);
    goto cleanup;
  }
  CHECK(ps__jstr(r, o, path, "outcome", false, name, sizeof(name), NULL));
  if (!ps__bench_outcome_parse(name, &res->outcome)) {
    st = ps__jfail(r, ps__jpath_key(at, path, "outcome"),
                   "unknown outcome '%s' (expected ok, waived, failed, hang or wrong)", name);
    goto cleanup;
  }
  CHECK(get_gpu(r, o, path, "src", gpu_count, &res->src));
  CHECK(get_gpu(r, o, path, "dst", gpu_count, &res->dst));
  CHECK(read_group(r, o, path, gpu_count, res));
  CHECK(ps__jbool(r, o, path, "virtual_ranks", false, &res->virtual_ranks, NULL));
  CHECK(ps__jbool(r, o, path, "bidirectional", false, &res->bidirectional, NULL));
  CHECK(ps__jbool(r, o, path, "p2p", false, &res->p2p, NULL));
  CHECK(ps__jbool(r, o, path, "graph", false, &res->graph, NULL));
  CHECK(ps__jstr(r, o, path, "env", true, res->env, sizeof(res->env), NULL));
  CHECK(ps__jstr(r, o, path, "dtype", true, res->dtype, sizeof(res->dtype), NULL));
  CHECK(ps__jint(r, o, path, "bytes", true, 1, LLONG_MAX, &bytes, &set));
  if (set) res->bytes = (uint64_t)bytes;
  CHECK(get_int(r, o, path, "iters", true, 1, INT_MAX, &res->iters, NULL));
  CHECK(get_int(r, o, path, "trials", false, 0, INT_MAX, &res->trials, NULL));
  CHECK(read_times(r, o, path, res));
  CHECK(get_derived(r, o, path, "gbps", ps__bench_kind_has_gbps(res->kind), "bandwidth", res->kind,
                    &res->gbps));
  CHECK(get_derived(r, o, path, "bus_gbps", ps__bench_kind_has_bus_gbps(res->kind), "bus bandwidth",
                    res->kind, &res->bus_gbps));
  CHECK(get_derived(r, o, path, "ns_per_access", ps__bench_kind_has_ns(res->kind),
                    "time per access", res->kind, &res->ns_per_access));
  CHECK(ps__jstr(r, o, path, "reason", true, res->reason, sizeof(res->reason), NULL));
cleanup:
  return st;
}

ps_status ps__bench_read(const ps__jreader *r, const json_t *obj, int gpu_count, ps_bench **out) {
  ps_status st = PS_OK;
  char path[PS_JPATH_LEN];
  ps_bench *b = NULL;
  *out = NULL;
  KEYS(obj, "bench", "simulated", "kernels", "nccl_version", "nccl_note", "started", "wall_ms",
       "results");
  const json_t *results = json_object_get(obj, "results");
  if (!json_is_array(results)) {
    st = ps__jfail(r, "bench.results", "expected an array");
    goto cleanup;
  }
  size_t n = json_array_size(results);
  if (n > PS_BENCH_MAX_RESULTS) {
    st = ps__jfail(r, "bench.results", "%zu results is more than peerscope reads (%d)", n,
                   PS_BENCH_MAX_RESULTS);
    goto cleanup;
  }
  if (!(b = ps__calloc(1, sizeof(*b))) ||
      (n > 0 && !(b->results = ps__calloc(n, sizeof(*b->results))))) {
    st = ps__fail(r->ctx, PS_ERR_NO_MEMORY, "%s: out of memory for %zu results", r->name, n);
    goto cleanup;
  }
  CHECK(ps__jbool(r, obj, "bench", "simulated", false, &b->simulated, NULL));
  CHECK(ps__jbool(r, obj, "bench", "kernels", false, &b->kernels, NULL));
  CHECK(get_int(r, obj, "bench", "nccl_version", true, 1, INT_MAX, &b->nccl_version, NULL));
  CHECK(ps__jstr(r, obj, "bench", "nccl_note", true, b->nccl_note, sizeof(b->nccl_note), NULL));
  CHECK(ps__jstr(r, obj, "bench", "started", true, b->started, sizeof(b->started), NULL));
  b->wall_ms = -1;
  CHECK(ps__jreal(r, obj, "bench", "wall_ms", true, &b->wall_ms, NULL));
  for (size_t i = 0; i < n; i++) {
    ps_bench_result *res = &b->results[i];
    res->src = res->dst = -1;
    CHECK(read_result(r, json_array_get(results, i), ps__jpath_index(path, "bench.results", i),
                      gpu_count, res));
    b->count = i + 1;
  }
  *out = b;
  b = NULL;
cleanup:
  ps_bench_free(b);
  return st;
}
