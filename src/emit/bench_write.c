/* ps_bench_write: report->bench as text tables (bench_text.c), CSV (here) or SVG heatmaps
 * (bench_svg.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"
#include "report/report_internal.h"

/* ---- CSV: one row per result, the JSON's fields and null rules (empty = null) ------------ */

/* RFC 4180: quoted (with "" for ") only when the field holds a comma, quote or line break. */
static void csv_text(ps__ebuf *b, const char *s, size_t cap) {
  size_t len = strnlen(s, cap);
  if (strcspn(s, ",\"\r\n") >= len) {
    ps__eput(b, ",%.*s", (int)len, s);
    return;
  }
  ps__eput(b, ",\"");
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"')
      ps__eput(b, "\"\"");
    else
      ps__eput(b, "%c", s[i]);
  }
  ps__eput(b, "\"");
}

static void csv_int(ps__ebuf *b, bool known, long long value) {
  if (known)
    ps__eput(b, ",%lld", value);
  else
    ps__eput(b, ",");
}

static void csv_real(ps__ebuf *b, bool known, double value, int decimals) {
  if (known && isfinite(value))
    ps__eput(b, ",%.*f", decimals, value);
  else
    ps__eput(b, ",");
}

static void write_csv(ps__ebuf *b, const ps_bench *bench) {
  ps__eput(b, "kind,outcome,src,dst,ranks,group,virtual_ranks,bidirectional,p2p,graph,env,dtype,"
              "bytes,iters,trials,us_median,us_p10,us_p90,us_min,us_max,cv,gbps,bus_gbps,"
              "ns_per_access,reason\n");
  static const char *const bools[] = {"false", "true"};
  for (size_t i = 0; bench->results && i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    ps__eput(b, "%s,%s", ps_bench_kind_name(r->kind), ps_bench_outcome_name(r->outcome));
    csv_int(b, r->src >= 0, r->src);
    csv_int(b, r->dst >= 0, r->dst);
    csv_int(b, r->ranks > 0, r->ranks);
    ps__eput(b, ","); /* group: GPU indexes separated by spaces */
    for (int k = 0; k < r->ranks && k < PS_BENCH_MAX_RANKS; k++)
      ps__eput(b, "%s%d", k ? " " : "", r->group[k]);
    ps__eput(b, ",%s,%s,%s,%s", bools[r->virtual_ranks], bools[r->bidirectional], bools[r->p2p],
             bools[r->graph]);
    csv_text(b, r->env, sizeof(r->env));
    csv_text(b, r->dtype, sizeof(r->dtype));
    csv_int(b, r->bytes > 0, (long long)r->bytes);
    csv_int(b, r->iters > 0, r->iters);
    bool ran = r->trials > 0;
    csv_int(b, true, ran ? r->trials : 0);
    const double us[] = {r->us_median, r->us_p10, r->us_p90, r->us_min, r->us_max};
    for (size_t k = 0; k < PS_ARRAY_LEN(us); k++)
      csv_real(b, ran, us[k], 3);
    csv_real(b, ran, r->cv, 4);
    csv_real(b, ps__bench_kind_has_gbps(r->kind) && r->gbps > 0, r->gbps, 3);
    csv_real(b, ps__bench_kind_has_bus_gbps(r->kind) && r->bus_gbps > 0, r->bus_gbps, 3);
    csv_real(b, ps__bench_kind_has_ns(r->kind) && r->ns_per_access > 0, r->ns_per_access, 3);
    csv_text(b, r->reason, sizeof(r->reason));
    ps__eput(b, "\n");
  }
}

ps_status ps_bench_write(ps_ctx *ctx, const ps_report *report, ps_bench_format format, char **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_bench_write: out is NULL");
  *out = NULL;
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_bench_write: report is NULL");
  if (!report->bench)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_bench_write: the report has no benchmarks");
  if (report->bench->count > 0 && !report->bench->results)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_bench_write: the results are missing");
  ps__ebuf b = {0};
  switch (format) {
  case PS_BENCH_TEXT: ps__bench_text(&b, report); break;
  case PS_BENCH_CSV: write_csv(&b, report->bench); break;
  case PS_BENCH_SVG: ps__bench_svg(&b, report); break;
  default: return ps__fail(ctx, PS_ERR_INVALID_ARG, "unknown bench format %d", (int)format);
  }
  if (b.failed || !b.data) {
    ps__free(b.data);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the benchmarks");
  }
  *out = b.data;
  return PS_OK;
}
