/* GET/POST /api/v1/bench: the last benchmark (JSON section, SVG heatmaps or the text tables)
 * and a new one in the background. */
#include <string.h>

#include "web/web_internal.h"

void ps__web_bench_get(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  const char *format = req->query_format ? req->query_format : "json";
  bool svg = strcmp(format, "svg") == 0, text = strcmp(format, "text") == 0;
  if (!svg && !text && strcmp(format, "json") != 0)
    return ps__web_error(resp, 400, "format '%.32s': json, svg or text", format);
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return ps__web_error(resp, 500, "out of memory");
  char *out = NULL;
  web_snapshot *snap = ps__web_snapshot_get(w);
  bool have = snap->report->bench != NULL;
  ps_status st = !have  ? PS_OK
                 : svg  ? ps_bench_write(ctx, snap->report, PS_BENCH_SVG, &out)
                 : text ? ps_bench_write(ctx, snap->report, PS_BENCH_TEXT, &out)
                        : ps_report_to_json(ctx, snap->report, &out);
  ps__web_snapshot_put(snap);
  if (!have) {
    ps__web_error(resp, 404, "no benchmark yet: POST /api/v1/bench runs one");
  } else if (st != PS_OK) {
    ps__web_error(resp, 500, "%s", ps_ctx_error(ctx));
  } else if (svg || text) {
    ps__web_text(resp, 200, svg ? "image/svg+xml" : "text/plain; charset=utf-8", out);
  } else {
    /* The report's "bench" section alone. */
    json_t *doc = json_loads(out, 0, NULL), *bench = doc ? json_object_get(doc, "bench") : NULL;
    if (bench)
      ps__web_json(resp, 200, json_incref(bench));
    else
      ps__web_error(resp, 500, "the report's JSON has no bench section");
    json_decref(doc);
  }
  ps_free(out);
  ps_ctx_free(ctx);
}

void ps__web_bench_post(ps_web *w, const ps_web_request *req, ps_web_response *resp) {
  static const char *const fields[] = {"quick", "tests", "gpus", NULL};
  json_t *body = ps__web_body_object(req, fields, resp);
  if (!body) return;
  web_job job = {.quick = true};
  bool ok = ps__web_get_bool(body, "quick", &job.quick, resp) &&
            ps__web_get_gpus(body, "gpus", job.gpus, &job.gpu_count, resp);
  json_t *tests = json_object_get(body, "tests");
  if (ok && tests) {
    size_t i;
    json_t *t;
    ok = json_is_array(tests);
    json_array_foreach(tests, i, t) {
      const char *name = json_is_string(t) ? json_string_value(t) : "";
      unsigned bit = strcmp(name, "copy") == 0        ? PS_BENCH_TEST_COPY
                     : strcmp(name, "latency") == 0   ? PS_BENCH_TEST_LATENCY
                     : strcmp(name, "allreduce") == 0 ? PS_BENCH_TEST_ALLREDUCE
                     : strcmp(name, "all") == 0       ? PS_BENCH_TEST_ALL
                                                      : 0;
      ok = ok && bit;
      job.tests |= bit;
    }
    if (!ok)
      ps__web_error(resp, 400, "field 'tests' must be a list of copy, latency, allreduce, all");
  }
  web_snapshot *snap = ps__web_snapshot_get(w);
  for (int i = 0; ok && i < job.gpu_count; i++)
    if (job.gpus[i] >= snap->report->gpu_count) {
      ps__web_error(resp, 400, "GPU %d does not exist (%d GPUs)", job.gpus[i],
                    snap->report->gpu_count);
      ok = false;
    }
  ps__web_snapshot_put(snap);
  json_decref(body);
  if (ok) ps__web_start_job(w, JOB_BENCH, &job, resp);
}
