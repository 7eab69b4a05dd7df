/* peerscope.doctor/1 (docs/doctor.schema.json): the findings and the checks as JSON, for
 * `peerscope doctor --json` and the web dashboard's GET /api/v1/doctor. */
#include <jansson.h>
#include <stdlib.h>

#include "core/internal.h"

static const char *source_name(ps_source s) {
  return s == PS_SOURCE_LIVE ? "live" : s == PS_SOURCE_FIXTURE ? "fixture" : "file";
}

static json_t *gpus_json(const ps_finding *f) {
  json_t *a = json_array();
  if (f->gpu_a >= 0) json_array_append_new(a, json_integer(f->gpu_a));
  if (f->gpu_b >= 0) json_array_append_new(a, json_integer(f->gpu_b));
  return a;
}

ps_status ps_doctor_to_json(ps_ctx *ctx, const ps_report *r, const ps_doctor_result *res,
                            char **out) {
  *out = NULL;
  json_t *doc = json_object(), *findings = json_array(), *checks = json_array();
  json_object_set_new(doc, "schema", json_string("peerscope.doctor/1"));
  json_object_set_new(doc, "machine", json_string(r->machine));
  json_object_set_new(doc, "source", json_string(source_name(r->source)));
  json_object_set_new(doc, "origin", r->origin[0] ? json_string(r->origin) : json_null());
  json_object_set_new(doc, "sysfs_root",
                      res->sysfs_root[0] ? json_string(res->sysfs_root) : json_null());
  json_object_set_new(doc, "verified", json_boolean(r->verified));
  json_t *summary = json_object();
  json_object_set_new(summary, "errors", json_integer(res->errors));
  json_object_set_new(summary, "warnings", json_integer(res->warnings));
  json_object_set_new(summary, "infos", json_integer(res->infos));
  json_object_set_new(doc, "summary", summary);
  for (int i = 0; i < res->count; i++) {
    const ps_finding *f = &res->findings[i];
    json_t *o = json_object();
    json_object_set_new(o, "severity", json_string(ps_severity_name(f->severity)));
    json_object_set_new(o, "code", json_string(f->code));
    json_object_set_new(o, "title", json_string(f->title));
    json_object_set_new(o, "evidence", json_string(f->evidence));
    json_object_set_new(o, "breaks", json_string(f->breaks));
    json_object_set_new(o, "fix", json_string(f->fix));
    json_object_set_new(o, "link", json_string(f->link));
    json_object_set_new(o, "gpus", gpus_json(f));
    json_array_append_new(findings, o);
  }
  json_object_set_new(doc, "findings", findings);
  for (int i = 0; i < res->check_count; i++) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(res->checks[i].name));
    json_object_set_new(o, "state", json_string(ps_check_state_name(res->checks[i].state)));
    json_object_set_new(o, "note", json_string(res->checks[i].note));
    json_array_append_new(checks, o);
  }
  json_object_set_new(doc, "checks", checks);
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(doc);
  if (!text) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the doctor's JSON");
  *out = ps__strdup(text);
  free(text);
  return *out ? PS_OK : ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
}
