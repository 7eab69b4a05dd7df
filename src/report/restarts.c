/* The verification's worker restarts (ps_report.restarts): their names, the list's growth,
 * and their JSON, "verification.worker_restarts" (written only when there were restarts, so
 * a report without any keeps its bytes; read when present). */
#include <string.h>

#include "core/internal.h"
#include "report/json_internal.h"
#include "report/report_internal.h"

static const char *const cause_names[] = {
    [PS_RESTART_STICKY] = "sticky_error", [PS_RESTART_HANG] = "hang", [PS_RESTART_DIED] = "died"};

const char *ps_restart_cause_name(ps_restart_cause cause) {
  unsigned i = (unsigned)cause;
  return i < PS_ARRAY_LEN(cause_names) && cause_names[i] ? cause_names[i] : "?";
}

static bool cause_parse(const char *name, ps_restart_cause *out) {
  for (size_t i = 0; i < PS_ARRAY_LEN(cause_names); i++) {
    if (cause_names[i] && strcmp(cause_names[i], name) == 0) {
      *out = (ps_restart_cause)i;
      return true;
    }
  }
  return false;
}

bool ps__report_add_restart(ps_report *report, const ps_restart *restart) {
  ps_restart *grown =
      ps__realloc(report->restarts, (size_t)(report->restart_count + 1) * sizeof(*grown));
  if (!grown) return false;
  report->restarts = grown;
  report->restarts[report->restart_count++] = *restart;
  return true;
}

static json_t *int_or_null(int v) { return v >= 0 ? json_integer(v) : json_null(); }

json_t *ps__restarts_json(ps__jwriter *w, const ps_report *report) {
  json_t *list = json_array();
  for (int i = 0; i < report->restart_count; i++) {
    const ps_restart *x = &report->restarts[i];
    json_t *o = json_object();
    ps__jput(w, o, "cause", json_string(ps_restart_cause_name(x->cause)));
    ps__jput(w, o, "from", int_or_null(x->from));
    ps__jput(w, o, "to", int_or_null(x->to));
    ps__jput(w, o, "error_name", ps__jstr_or_null(x->error_name, sizeof(x->error_name)));
    ps__jput(w, o, "reason", ps__jstr_or_null(x->reason, sizeof(x->reason)));
    if (!o || json_array_append_new(list, o) != 0) w->failed = true;
  }
  return list;
}

/* A GPU index of the restart's job: null, or 0 .. gpu_count - 1. */
static ps_status read_gpu(const ps__jreader *r, const json_t *o, const char *path, const char *key,
                          int gpu_count, int *out) {
  long long v = -1;
  bool set = false;
  ps_status st = ps__jint(r, o, path, key, true, 0, gpu_count > 0 ? gpu_count - 1 : 0, &v, &set);
  *out = set ? (int)v : -1;
  return st;
}

static ps_status read_one(const ps__jreader *r, const json_t *o, const char *path, int gpu_count,
                          ps_restart *x) {
  ps_status st;
  char cause[32];
  KEYS(o, path, "cause", "from", "to", "error_name", "reason");
  CHECK(ps__jstr(r, o, path, "cause", false, cause, sizeof(cause), NULL));
  if (!cause_parse(cause, &x->cause)) {
    char at[PS_JPATH_LEN];
    st = ps__jfail(r, ps__jpath_key(at, path, "cause"),
                   "unknown cause '%s' (expected sticky_error, hang or died)", cause);
    goto cleanup;
  }
  CHECK(read_gpu(r, o, path, "from", gpu_count, &x->from));
  CHECK(read_gpu(r, o, path, "to", gpu_count, &x->to));
  CHECK(ps__jstr(r, o, path, "error_name", true, x->error_name, sizeof(x->error_name), NULL));
  CHECK(ps__jstr(r, o, path, "reason", true, x->reason, sizeof(x->reason), NULL));
cleanup:
  return st;
}

ps_status ps__restarts_read(const ps__jreader *r, const json_t *list, ps_report *report) {
  const char *path = "verification.worker_restarts";
  if (!json_is_array(list)) return ps__jfail(r, path, "expected an array");
  for (size_t i = 0; i < json_array_size(list); i++) {
    char at[PS_JPATH_LEN];
    const json_t *o = json_array_get(list, i);
    ps_restart x;
    memset(&x, 0, sizeof(x));
    ps__jpath_index(at, path, i);
    if (!json_is_object(o)) return ps__jfail(r, at, "expected an object");
    ps_status st = read_one(r, o, at, report->gpu_count, &x);
    if (st != PS_OK) return st;
    if (!ps__report_add_restart(report, &x))
      return ps__fail(r->ctx, PS_ERR_NO_MEMORY, "%s: out of memory", r->name);
  }
  return PS_OK;
}
