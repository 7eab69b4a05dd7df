/* ps_report_to_json: the report as a "peerscope.topology/1" document
 * (docs/topology-report.md); its "bench" member is json_bench_write.c's. Unknown values are
 * null, never 0 or "". Keys keep insertion order and reals are rounded to 3 decimals, so the
 * same report always gives the same bytes. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "report/json_internal.h"
#include "report/report_internal.h"

#define PS_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

void ps__jput(ps__jwriter *w, json_t *obj, const char *key, json_t *value) {
  if (!obj || !value || json_object_set_new(obj, key, value) != 0) w->failed = true;
}

/* Driver strings are not always UTF-8: bytes that make the string invalid become '?' rather
 * than making the report unwritable. */
json_t *ps__jstr_or_null(const char *s, size_t cap) {
  size_t len = strnlen(s, cap);
  if (len == 0) return json_null();
  json_t *value = json_stringn(s, len);
  if (value) return value;
  char copy[512];
  if (len >= sizeof(copy)) len = sizeof(copy) - 1;
  for (size_t i = 0; i < len; i++)
    copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
  return json_stringn(copy, len);
}
#define STR(field) ps__jstr_or_null((field), sizeof(field))

static json_t *int_or_null(bool known, long long value) {
  return known ? json_integer(value) : json_null();
}

static json_t *u64_or_null(ps__jwriter *w, bool known, uint64_t value, const char *what) {
  if (!known) return json_null();
  if (value > (uint64_t)INT64_MAX) {
    snprintf(w->bad, sizeof(w->bad), "%s: %llu does not fit a JSON integer", what,
             (unsigned long long)value);
    return json_null();
  }
  return json_integer((json_int_t)value);
}

/* Negative or non-finite means not measured. Rounded by hand (libpeerscope does not link
 * libm), then printed with 15 significant digits, which gives exactly those decimals back. */
json_t *ps__jreal_or_null(double value, int decimals) {
  if (!isfinite(value) || value < 0) return json_null();
  double scale = 1;
  for (int i = 0; i < decimals && i < 6; i++)
    scale *= 10;
  double scaled = value * scale;
  if (scaled < 9.0e15) value = (double)(int64_t)(scaled + 0.5) / scale;
  return json_real(value);
}

/* The topology report's reals: 3 decimals (nanoseconds of copy_us, microseconds of
 * timings_ms). */
static json_t *real_or_null(double value) { return ps__jreal_or_null(value, 3); }

static json_t *verdict_json(ps__jwriter *w, ps_verdict verdict, const char *what) {
  if ((unsigned)verdict > PS_VERDICT_UNAVAILABLE) {
    snprintf(w->bad, sizeof(w->bad), "%s: invalid verdict %d", what, (int)verdict);
    return json_null();
  }
  return json_string(ps_verdict_name(verdict));
}

/* {"sm": {...}, "ipc": {...}}: the modes beyond the copy engine's. */
static json_t *modes_json(ps__jwriter *w, const ps_mode_result *sm, const ps_mode_result *ipc,
                          const char *where) {
  const ps_mode_result *results[] = {sm, ipc};
  const ps_verify_mode modes[] = {PS_MODE_SM, PS_MODE_IPC};
  json_t *o = json_object();
  for (int i = 0; i < 2; i++) {
    char what[96];
    json_t *m = json_object();
    snprintf(what, sizeof(what), "%s.modes.%s.verdict", where, ps_mode_name(modes[i]));
    ps__jput(w, m, "verdict", verdict_json(w, results[i]->verdict, what));
    ps__jput(w, m, "from_cache", json_boolean(results[i]->from_cache));
    ps__jput(w, m, "reason", STR(results[i]->reason));
    ps__jput(w, m, "error_name", STR(results[i]->error_name));
    ps__jput(w, o, ps_mode_name(modes[i]), m);
  }
  return o;
}

static json_t *claim_json(ps_claim claim) {
  return claim > PS_CLAIM_UNKNOWN && claim <= PS_CLAIM_U ? json_string(ps_claim_name(claim))
                                                         : json_null();
}

static json_t *gpu_json(ps__jwriter *w, const ps_gpu *gpu, int position) {
  char what[64];
  json_t *o = json_object();
  uint32_t v = gpu->valid;
  ps__jput(w, o, "index", json_integer(gpu->index));
  ps__jput(w, o, "name", (v & PS_GPU_NAME) ? STR(gpu->name) : json_null());
  ps__jput(w, o, "uuid", (v & PS_GPU_UUID) ? STR(gpu->uuid) : json_null());
  ps__jput(w, o, "pci_bus_id", (v & PS_GPU_PCI_BUS_ID) ? STR(gpu->pci_bus_id) : json_null());
  snprintf(what, sizeof(what), "gpus[%d].memory_total_bytes", position);
  ps__jput(w, o, "memory_total_bytes",
           u64_or_null(w, v & PS_GPU_MEMORY_TOTAL, gpu->memory_total_bytes, what));
  snprintf(what, sizeof(what), "gpus[%d].memory_free_bytes", position);
  ps__jput(w, o, "memory_free_bytes",
           u64_or_null(w, v & PS_GPU_MEMORY_FREE, gpu->memory_free_bytes, what));
  if ((v & PS_GPU_COMPUTE_CAP) && gpu->cc_major >= 0 && gpu->cc_minor >= 0) {
    char cc[32];
    snprintf(cc, sizeof(cc), "%d.%d", gpu->cc_major, gpu->cc_minor);
    ps__jput(w, o, "compute_capability", json_string(cc));
  } else {
    ps__jput(w, o, "compute_capability", json_null());
  }
  ps__jput(w, o, "numa_node",
           int_or_null((v & PS_GPU_NUMA_NODE) && gpu->numa_node >= 0, gpu->numa_node));
  ps__jput(w, o, "cpu_affinity", (v & PS_GPU_CPU_AFFINITY) ? STR(gpu->cpu_affinity) : json_null());

  json_t *pcie = json_object();
  bool cur = v & PS_GPU_PCIE_CURRENT, max = v & PS_GPU_PCIE_MAX;
  ps__jput(w, pcie, "gen_current",
           int_or_null(cur && gpu->pcie_gen_current > 0, gpu->pcie_gen_current));
  ps__jput(w, pcie, "width_current",
           int_or_null(cur && gpu->pcie_width_current > 0, gpu->pcie_width_current));
  ps__jput(w, pcie, "gen_max", int_or_null(max && gpu->pcie_gen_max > 0, gpu->pcie_gen_max));
  ps__jput(w, pcie, "width_max", int_or_null(max && gpu->pcie_width_max > 0, gpu->pcie_width_max));
  ps__jput(w, o, "pcie", pcie);

  snprintf(what, sizeof(what), "gpus[%d].bar1_total_bytes", position);
  ps__jput(w, o, "bar1_total_bytes", u64_or_null(w, v & PS_GPU_BAR1, gpu->bar1_total_bytes, what));
  ps__jput(w, o, "cuda_ordinal",
           int_or_null((v & PS_GPU_CUDA_ORDINAL) && gpu->cuda_ordinal >= 0, gpu->cuda_ordinal));
  /* Only where the caller's CUDA_VISIBLE_DEVICES was applied (ps_report_apply_visible). */
  if (v & PS_GPU_VISIBLE)
    ps__jput(w, o, "visible_ordinal", int_or_null(gpu->visible_ordinal >= 0, gpu->visible_ordinal));
  json_t *local = json_object();
  snprintf(what, sizeof(what), "gpus[%d].local_copy.verdict", position);
  ps__jput(w, local, "verdict", verdict_json(w, gpu->local_verdict, what));
  ps__jput(w, local, "reason", STR(gpu->local_reason));
  snprintf(what, sizeof(what), "gpus[%d].local_copy", position);
  ps__jput(w, local, "modes", modes_json(w, &gpu->local_sm, &gpu->local_ipc, what));
  ps__jput(w, o, "local_copy", local);
  return o;
}

static json_t *pair_json(ps__jwriter *w, const ps_pair *pair, int position) {
  char what[64];
  json_t *o = json_object();
  uint32_t v = pair->valid;
  ps__jput(w, o, "from", json_integer(pair->from));
  ps__jput(w, o, "to", json_integer(pair->to));
  if (v & PS_PAIR_LINK) {
    char name[32];
    int count = (v & PS_PAIR_NVLINK) ? pair->nvlink_count : 0;
    ps__jput(w, o, "link", json_string(ps_link_name(pair->link, count, name, sizeof(name))));
    ps__jput(w, o, "link_class", json_string(ps__link_class_name(pair->link)));
  } else {
    ps__jput(w, o, "link", json_null());
    ps__jput(w, o, "link_class", json_null());
  }
  if (v & PS_PAIR_NVLINK) {
    json_t *nv = json_object();
    ps__jput(w, nv, "count", json_integer(pair->nvlink_count > 0 ? pair->nvlink_count : 0));
    ps__jput(w, nv, "version", int_or_null(pair->nvlink_version > 0, pair->nvlink_version));
    ps__jput(w, nv, "nvswitch", json_boolean(pair->nvswitch));
    ps__jput(w, o, "nvlink", nv);
  } else {
    ps__jput(w, o, "nvlink", json_null());
  }
  if (v & PS_PAIR_CLAIMS) {
    json_t *claims = json_object();
    ps__jput(w, claims, "read", claim_json(pair->claim_read));
    ps__jput(w, claims, "write", claim_json(pair->claim_write));
    ps__jput(w, claims, "nvlink", claim_json(pair->claim_nvlink));
    ps__jput(w, claims, "atomics", claim_json(pair->claim_atomics));
    ps__jput(w, o, "claims", claims);
  } else {
    ps__jput(w, o, "claims", json_null());
  }
  ps__jput(w, o, "cuda_can_access",
           (v & PS_PAIR_CUDA_CLAIM) ? json_boolean(pair->cuda_can_access) : json_null());
  snprintf(what, sizeof(what), "pairs[%d].verdict", position);
  ps__jput(w, o, "verdict", verdict_json(w, pair->verdict, what));
  ps__jput(w, o, "from_cache", json_boolean(pair->from_cache));
  ps__jput(w, o, "reason", STR(pair->reason));
  ps__jput(w, o, "error_name", STR(pair->error_name));
  if (v & PS_PAIR_CORRUPT_DETAIL) {
    json_t *c = json_object();
    snprintf(what, sizeof(what), "pairs[%d].corrupt.offset", position);
    ps__jput(w, c, "offset", u64_or_null(w, true, pair->corrupt_offset, what));
    ps__jput(w, c, "expected", json_integer(pair->corrupt_expected));
    ps__jput(w, c, "seen", json_integer(pair->corrupt_seen));
    ps__jput(w, o, "corrupt", c);
  } else {
    ps__jput(w, o, "corrupt", json_null());
  }
  ps__jput(w, o, "copy_us", (v & PS_PAIR_COPY_TIME) ? real_or_null(pair->copy_us) : json_null());
  snprintf(what, sizeof(what), "pairs[%d]", position);
  ps__jput(w, o, "modes", modes_json(w, &pair->sm, &pair->ipc, what));
  return o;
}

static json_t *report_json(ps__jwriter *w, const ps_report *r) {
  json_t *doc = json_object();
  ps__jput(w, doc, "schema", json_string(PS_REPORT_SCHEMA));

  json_t *gen = json_object();
  ps__jput(w, gen, "name", json_string("peerscope"));
  ps__jput(w, gen, "version", json_string(ps_version()));
  ps__jput(w, doc, "generator", gen);

  json_t *source = json_object();
  if ((unsigned)r->source > PS_SOURCE_FILE)
    snprintf(w->bad, sizeof(w->bad), "source: invalid kind %d", (int)r->source);
  ps__jput(w, source, "kind", json_string(ps__source_name(r->source)));
  ps__jput(w, source, "origin", STR(r->origin));
  ps__jput(w, source, "machine", STR(r->machine));
  ps__jput(w, doc, "source", source);

  json_t *host = json_object();
  ps__jput(w, host, "hostname", STR(r->hostname));
  ps__jput(w, host, "boot_id", STR(r->boot_id));
  ps__jput(w, doc, "host", host);

  json_t *driver = json_object();
  ps__jput(w, driver, "version", STR(r->driver_version));
  ps__jput(w, driver, "cuda_driver_version",
           int_or_null(r->cuda_driver_version > 0, r->cuda_driver_version));
  ps__jput(w, driver, "nvml_version", STR(r->nvml_version));
  ps__jput(w, doc, "driver", driver);
  ps__jput(w, doc, "cuda_visible_devices", STR(r->cuda_visible_devices));

  json_t *gpus = json_array();
  for (int g = 0; g < r->gpu_count; g++)
    if (json_array_append_new(gpus, gpu_json(w, &r->gpus[g], g)) != 0) w->failed = true;
  ps__jput(w, doc, "gpus", gpus);

  json_t *pairs = json_array();
  for (int p = 0; p < r->pair_count; p++)
    if (json_array_append_new(pairs, pair_json(w, &r->pairs[p], p)) != 0) w->failed = true;
  ps__jput(w, doc, "pairs", pairs);

  json_t *ver = json_object();
  ps__jput(w, ver, "ran", json_boolean(r->verified));
  ps__jput(w, ver, "cache_used", json_boolean(r->cache_used));
  ps__jput(w, ver, "hang_workers", json_integer(r->hang_workers > 0 ? r->hang_workers : 0));
  json_t *ran = json_array();
  for (int m = 0; m < PS_MODE_COUNT; m++)
    if ((r->modes & PS_MODE_BIT(m)) && json_array_append_new(ran, json_string(ps_mode_name(m))))
      w->failed = true;
  ps__jput(w, ver, "modes", ran);
  if (r->restart_count > 0) ps__jput(w, ver, "worker_restarts", ps__restarts_json(w, r));
  ps__jput(w, doc, "verification", ver);

  const ps_timings *t = &r->timings;
  json_t *tm = json_object();
  ps__jput(w, tm, "driver_init", real_or_null(t->driver_init_ms));
  ps__jput(w, tm, "probe", real_or_null(t->probe_ms));
  ps__jput(w, tm, "worker_spawn", real_or_null(t->worker_spawn_ms));
  ps__jput(w, tm, "cuda_init", real_or_null(t->cuda_init_ms));
  ps__jput(w, tm, "contexts", real_or_null(t->contexts_ms));
  ps__jput(w, tm, "copies", real_or_null(t->copies_ms));
  ps__jput(w, tm, "total", real_or_null(t->total_ms));
  ps__jput(w, doc, "timings_ms", tm);
  /* Only when benchmarks ran (or were read): reports without them keep their bytes. */
  if (r->bench) ps__jput(w, doc, "bench", ps__bench_json(w, r->bench));
  return doc;
}

/* A report whose arrays disagree with its counts would make us read out of bounds. */
static ps_status check_shape(ps_ctx *ctx, const ps_report *r) {
  if (r->gpu_count < 0 || r->gpu_count > PS_REPORT_MAX_GPUS)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "report has %d GPUs (at most %d)", r->gpu_count,
                    PS_REPORT_MAX_GPUS);
  if (r->pair_count != r->gpu_count * (r->gpu_count - 1))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "report has %d pairs for %d GPUs (expected %d)",
                    r->pair_count, r->gpu_count, r->gpu_count * (r->gpu_count - 1));
  if ((r->gpu_count > 0 && !r->gpus) || (r->pair_count > 0 && !r->pairs))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "report arrays are missing");
  return PS_OK;
}

ps_status ps_report_to_json(ps_ctx *ctx, const ps_report *report, char **out) {
  ps_status st = PS_OK;
  ps__jwriter w = {0};
  json_t *doc = NULL;
  char *text = NULL;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_to_json: out is NULL");
  *out = NULL;
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_to_json: report is NULL");
  st = check_shape(ctx, report);
  if (st != PS_OK) goto cleanup;

  doc = report_json(&w, report);
  if (w.bad[0]) {
    st = ps__fail(ctx, PS_ERR_INVALID_ARG, "cannot write report: %s", w.bad);
    goto cleanup;
  }
  if (w.failed || !doc || !(text = json_dumps(doc, PS_JSON_FLAGS))) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the report as JSON");
    goto cleanup;
  }
  /* Our own copy: jansson's allocator may be the application's, and the text wants a
   * trailing newline. */
  size_t len = strlen(text);
  char *copy = ps__calloc(len + 2, 1);
  if (!copy) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the report as JSON");
    goto cleanup;
  }
  memcpy(copy, text, len);
  copy[len] = '\n';
  *out = copy;

cleanup:
  if (text) {
    json_malloc_t jmalloc;
    json_free_t jfree;
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(text);
  }
  json_decref(doc);
  return st;
}
