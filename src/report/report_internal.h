/* Report internals shared by the probe, verify, the benchmarks, the JSON reader/writer, the
 * planner and the renderers: the data model's names and parsers, bench results included. */
#ifndef PS_REPORT_INTERNAL_H
#define PS_REPORT_INTERNAL_H

#include <stdbool.h>

#include "peerscope/peerscope.h"

/* The JSON document's "schema" value; bumped only for incompatible format changes. */
#define PS_REPORT_SCHEMA "peerscope.topology/1"
/* Most GPUs a report (one node) may hold; the readers reject more, ps__report_new refuses
 * more. Today's largest nodes have 8 or 16 GPUs; NVL72-style NVLink domains span nodes of 4,
 * each its own report. The cap also bounds every per-pair array and loop (64 x 63 pairs). */
#define PS_REPORT_MAX_GPUS 64

/* A report for gpu_count GPUs (0..PS_REPORT_MAX_GPUS): gpus[i].index = i, pairs from-major
 * with from != to, every verdict PS_VERDICT_NOT_RUN, every valid mask clear, timings -1.
 * NULL when out of memory or gpu_count is out of range. Free with ps_report_free. */
ps_report *ps__report_new(int gpu_count);

/* Position of the pair from -> to in a from-major pair array (from != to, both in range). */
static inline int ps__pair_slot(int gpu_count, int from, int to) {
  return from * (gpu_count - 1) + (to < from ? to : to - 1);
}

/* Link class as a lower-case word ("nvlink", "pix", ..., "unknown"); the JSON link_class. */
const char *ps__link_class_name(ps_link_class link);
bool ps__link_class_parse(const char *name, ps_link_class *out);
/* The inverse of ps_link_name: "NV18" -> NVLINK, 18; "PIX" -> PIX, 0; "NV" -> NVLINK, 0. */
bool ps__link_parse(const char *text, ps_link_class *link, int *nvlink_count);
/* ps_claim_name's inverse for the known claims ("n/a" does not parse). */
bool ps__claim_parse(const char *name, ps_claim *out);
bool ps__verdict_parse(const char *name, ps_verdict *out);
bool ps__mode_parse(const char *name, ps_verify_mode *out); /* "ce", "sm", "ipc" */
const char *ps__source_name(ps_source source);              /* "live", "fixture", "file" */
bool ps__source_parse(const char *name, ps_source *out);

/* --- worker restarts (restarts.c) --- */

/* Index of name in a table of names (NULL entries skipped), or -1 (also for a NULL name):
 * the parsers of report.c and bench_names.c. */
int ps__report_name_index(const char *const *table, size_t count, const char *name);

/* Appends a copy of restart to report->restarts; false when out of memory. */
bool ps__report_add_restart(ps_report *report, const ps_restart *restart);

/* --- bench results (bench_names.c) --- */

/* ps_bench_kind_name's and ps_bench_outcome_name's inverses; false for an unknown name, *out
 * untouched. */
bool ps__bench_kind_parse(const char *name, ps_bench_kind *out);
bool ps__bench_outcome_parse(const char *name, ps_bench_outcome *out);

/* Which derived numbers a kind has; the others stay 0 and are null in JSON. */
bool ps__bench_kind_has_gbps(ps_bench_kind kind);     /* all but latency_chase */
bool ps__bench_kind_has_bus_gbps(ps_bench_kind kind); /* the all-reduces */
bool ps__bench_kind_has_ns(ps_bench_kind kind);       /* latency_chase */

#endif
