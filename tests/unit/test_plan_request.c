/* The plan request defined once: every row of the field table round-trips through CLI text
 * and JSON, bad values are refused with one line naming the field, the rules across fields
 * and the request built from the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* A valid value of field f as text: its largest, its last choice, two GPUs. */
static void sample(const ps_plan_field *f, char *out, size_t len) {
  int last = 0;
  switch (f->type) {
  case PS_FIELD_INT: snprintf(out, len, "%lld", (long long)f->max); break;
  case PS_FIELD_NUMBER: snprintf(out, len, "%.17g", f->min); break;
  case PS_FIELD_STRING: snprintf(out, len, "value-of-%s", f->name); break;
  case PS_FIELD_ENUM:
    while (f->choices[last + 1])
      last++;
    snprintf(out, len, "%s", f->choices[last]);
    break;
  case PS_FIELD_GPUS: snprintf(out, len, "0,2"); break;
  case PS_FIELD_BOOL: snprintf(out, len, "true"); break;
  }
}

static void test_every_field_round_trips(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  char *fields = NULL;
  assert_int_equal(ps_plan_fields_json(ctx, &fields), PS_OK);
  assert_true(ps_plan_field_count() > 0);
  for (int i = 0; i < ps_plan_field_count(); i++) {
    const ps_plan_field *f = ps_plan_field_at(i);
    char flag[96], text[128], back[128], quoted[100];
    snprintf(flag, sizeof(flag), "--%s", f->flag);
    snprintf(quoted, sizeof(quoted), "\"%s\"", f->name);
    assert_non_null(strstr(fields, quoted));          /* served to the dashboard */
    assert_ptr_equal(ps_plan_field_find(flag), f);    /* a CLI option */
    assert_ptr_equal(ps_plan_field_find(f->name), f); /* a JSON key */
    assert_true(f->help && f->help[0] && f->expect && f->group);
    sample(f, text, sizeof(text));
    ps_plan_input *in = NULL, *again = NULL;
    assert_int_equal(ps_plan_input_new(ctx, &in), PS_OK);
    if (ps_plan_input_set(ctx, in, flag, text) != PS_OK)
      fail_msg("%s: %s", flag, ps_ctx_error(ctx));
    char *json = NULL;
    assert_int_equal(ps_plan_input_to_json(ctx, in, &json), PS_OK);
    if (ps_plan_input_from_json(ctx, json, strlen(json), NULL, &again) != PS_OK)
      fail_msg("%s: %s", json, ps_ctx_error(ctx));
    assert_true(ps_plan_input_get(again, f->name, back, sizeof(back)));
    assert_string_equal(back, text);
    ps_free(json);
    ps_plan_input_free(again);
    ps_plan_input_free(in);
  }
  ps_free(fields);
  ps_ctx_free(ctx);
}

/* Refused, with one line that names the field. */
static void refused_json(ps_ctx *ctx, const char *body, const char *names) {
  ps_plan_input *in = NULL;
  ps_status st = ps_plan_input_from_json(ctx, body, strlen(body), NULL, &in);
  if (st == PS_OK) fail_msg("accepted %s", body);
  assert_null(in);
  if (!strstr(ps_ctx_error(ctx), names))
    fail_msg("%s: '%s' lacks %s", body, ps_ctx_error(ctx), names);
  assert_null(strchr(ps_ctx_error(ctx), '\n'));
}

static void test_bad_values(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  refused_json(ctx, "{\"colour\": 1}", "colour");
  refused_json(ctx, "{\"tp\": \"4\"}", "tp");
  refused_json(ctx, "{\"tp\": 4.0}", "tp");
  refused_json(ctx, "{\"tp\": 0}", "tp");
  refused_json(ctx, "{\"gpu_memory_utilization\": 1.5}", "gpu_memory_utilization");
  refused_json(ctx, "{\"objective\": \"fast\"}", "objective");
  refused_json(ctx, "{\"gpus\": [0, -1]}", "gpus");
  refused_json(ctx, "{\"model_dir\": \"\"}", "model_dir");
  refused_json(ctx, "{\"tp\": 1, \"tp\": 2}", "line");
  refused_json(ctx, "{\"model-size-gb\": 1}", "model-size-gb"); /* JSON takes names, not flags */
  /* a caller's own field is skipped */
  const char *own[] = {"port", NULL};
  ps_plan_input *in = NULL;
  assert_int_equal(ps_plan_input_from_json(ctx, "{\"port\": 1, \"tp\": null}", 23, own, &in),
                   PS_OK);
  assert_false(ps_plan_input_get(in, "tp", NULL, 0));
  ps_plan_input_free(in);
  /* CLI text */
  assert_int_equal(ps_plan_input_new(ctx, &in), PS_OK);
  assert_int_equal(ps_plan_input_set(ctx, in, "--model-size-gb", "x"), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx),
                      "--model-size-gb: 'x' is not a size in GB from 0.001 to 1000000");
  assert_int_equal(ps_plan_input_set(ctx, in, "--tp", "2.5"), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_plan_input_set(ctx, in, "--frob", "1"), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_plan_input_set(ctx, in, "--gpus", "0,0,1-2"), PS_OK);
  char text[64];
  assert_true(ps_plan_input_get(in, "gpus", text, sizeof(text)));
  assert_string_equal(text, "0,1,2"); /* listed twice is listed once */
  ps_plan_input_free(in);
  ps_ctx_free(ctx);
}

static void test_model_rule_and_request(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_plan_input *in = NULL;
  assert_int_equal(ps_plan_input_from_json(ctx, "{}", 2, NULL, &in), PS_OK);
  assert_int_equal(ps_plan_input_check(ctx, in), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx),
                      "give exactly one of model_dir, model_size_gb or params_b");
  ps_plan_input_use_flags(in);
  assert_int_equal(ps_plan_input_check(ctx, in), PS_ERR_INVALID_ARG);
  assert_non_null(strstr(ps_ctx_error(ctx), "--model-size-gb X"));
  ps_plan_input_free(in);
  const char *body = "{\"params_b\": 8, \"dtype\": \"fp8\", \"tp\": 2, \"gpus\": [1, 3], "
                     "\"gpu_memory_utilization\": 0.8, \"kv_cache_dtype\": \"fp8\", "
                     "\"objective\": \"latency\", \"reserve_gb\": 1.5}";
  assert_int_equal(ps_plan_input_from_json(ctx, body, strlen(body), NULL, &in), PS_OK);
  ps_model *model = NULL;
  assert_int_equal(ps_plan_input_model(ctx, in, &model), PS_OK);
  assert_int_equal(model->weight_bytes, 8000000000ull); /* fp8: one byte per parameter */
  ps_plan_request req = PS_INIT(ps_plan_request);
  assert_int_equal(ps_plan_input_request(ctx, in, model, &req), PS_OK);
  assert_ptr_equal(req.model, model);
  ps_model_free(model);
  model = NULL;
  assert_int_equal(req.tp, 2);
  assert_int_equal(req.pp, 0);
  assert_int_equal(req.gpu_count, 2);
  assert_int_equal(req.gpus[1], 3);
  assert_true(req.gpu_memory_utilization == 0.8);
  assert_string_equal(req.kv_cache_dtype, "fp8");
  assert_int_equal(req.objective, PS_OBJECTIVE_LATENCY);
  assert_true(req.reserve_gib == 1.5);
  assert_null(req.model_path);
  ps_plan_input_free(in);
  body = "{\"model_size_gb\": 10, \"dtype\": \"fp8\"}";
  assert_int_equal(ps_plan_input_from_json(ctx, body, strlen(body), NULL, &in), PS_OK);
  assert_int_equal(ps_plan_input_model(ctx, in, &model), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx), "dtype goes with params_b");
  assert_null(model);
  ps_plan_input_free(in);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_field_round_trips),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_model_rule_and_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
