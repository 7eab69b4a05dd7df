/* The report module: allocation defaults, pair lookup, enum names and their parsers. */
#include <string.h>

#include "support.h"

#include "report/report_internal.h"

static void test_new_defaults(void **state) {
  (void)state;
  ps_report *r = ps__report_new(4);
  assert_non_null(r);
  assert_int_equal(r->gpu_count, 4);
  assert_int_equal(r->pair_count, 12);
  for (int g = 0; g < 4; g++) {
    assert_int_equal(r->gpus[g].index, g);
    assert_int_equal(r->gpus[g].valid, 0);
    assert_int_equal(r->gpus[g].local_verdict, PS_VERDICT_NOT_RUN);
  }
  int i = 0;
  for (int from = 0; from < 4; from++) {
    for (int to = 0; to < 4; to++) {
      if (from == to) continue;
      const ps_pair *p = &r->pairs[i];
      assert_int_equal(p->from, from);
      assert_int_equal(p->to, to);
      assert_int_equal(p->verdict, PS_VERDICT_NOT_RUN);
      assert_int_equal(p->valid, 0);
      assert_true(p->copy_us < 0);
      assert_int_equal(ps__pair_slot(4, from, to), i);
      assert_ptr_equal(ps_report_pair(r, from, to), p);
      i++;
    }
  }
  const ps_timings *t = &r->timings;
  assert_true(t->driver_init_ms < 0 && t->probe_ms < 0 && t->worker_spawn_ms < 0 &&
              t->cuda_init_ms < 0 && t->contexts_ms < 0 && t->copies_ms < 0 && t->total_ms < 0);
  assert_false(r->verified);
  ps_report_free(r);
}

static void test_new_limits(void **state) {
  (void)state;
  ps_report *r = ps__report_new(0);
  assert_non_null(r);
  assert_int_equal(r->pair_count, 0);
  assert_null(ps_report_pair(r, 0, 1));
  ps_report_free(r);
  r = ps__report_new(1);
  assert_non_null(r);
  assert_int_equal(r->pair_count, 0);
  ps_report_free(r);
  assert_null(ps__report_new(-1));
  assert_null(ps__report_new(PS_REPORT_MAX_GPUS + 1));
  ps_report_free(NULL);
}

static void test_pair_lookup(void **state) {
  (void)state;
  ps_report *r = ps__report_new(3);
  assert_null(ps_report_pair(NULL, 0, 1));
  assert_null(ps_report_pair(r, 1, 1));
  assert_null(ps_report_pair(r, -1, 1));
  assert_null(ps_report_pair(r, 0, 3));
  /* A report whose pairs are out of order is still searched. */
  ps_pair tmp = r->pairs[0];
  r->pairs[0] = r->pairs[5];
  r->pairs[5] = tmp;
  const ps_pair *p = ps_report_pair(r, 0, 1);
  assert_non_null(p);
  assert_int_equal(p->from, 0);
  assert_int_equal(p->to, 1);
  ps_report_free(r);
}

static void test_link_names(void **state) {
  (void)state;
  char buf[16];
  static const struct {
    ps_link_class link;
    int count;
    const char *name;
  } cases[] = {
      {PS_LINK_NVLINK, 18, "NV18"}, {PS_LINK_NVLINK, 0, "NV"},  {PS_LINK_PIX, 3, "PIX"},
      {PS_LINK_PXB, 0, "PXB"},      {PS_LINK_PHB, 0, "PHB"},    {PS_LINK_NODE, 0, "NODE"},
      {PS_LINK_SYS, 0, "SYS"},      {PS_LINK_SELF, 0, "X"},     {PS_LINK_INTERNAL, 0, "INT"},
      {PS_LINK_UNKNOWN, 0, "?"},    {(ps_link_class)99, 0, "?"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_string_equal(ps_link_name(cases[i].link, cases[i].count, buf, sizeof(buf)),
                        cases[i].name);
    if (cases[i].link == (ps_link_class)99) continue;
    ps_link_class link;
    int count = -1;
    assert_true(ps__link_parse(cases[i].name, &link, &count));
    assert_int_equal(link, cases[i].link);
    assert_int_equal(count, cases[i].link == PS_LINK_NVLINK ? cases[i].count : 0);
  }
  assert_string_equal(ps_link_name(PS_LINK_NVLINK, 4, NULL, 0), "NV");
  assert_string_equal(ps_link_name(PS_LINK_NVLINK, 12, buf, 4), "NV1"); /* truncated, ended */
  ps_link_class link;
  int count;
  assert_false(ps__link_parse("NV018", &link, &count));
  assert_false(ps__link_parse("NV-1", &link, &count));
  assert_false(ps__link_parse("pix", &link, &count));
  assert_false(ps__link_parse(NULL, &link, &count));

  static const char *const classes[] = {"unknown", "self", "nvlink", "pix",     "pxb",
                                        "phb",     "node", "sys",    "internal"};
  for (int c = 0; c < 9; c++) {
    assert_string_equal(ps__link_class_name((ps_link_class)c), classes[c]);
    assert_true(ps__link_class_parse(classes[c], &link));
    assert_int_equal(link, c);
  }
  assert_false(ps__link_class_parse("NVLINK", &link));
}

static void test_claim_and_verdict_names(void **state) {
  (void)state;
  static const char *const claims[] = {"n/a", "OK", "CNS", "GNS", "TNS", "DIS", "NS", "U"};
  for (int c = 0; c < 8; c++) {
    assert_string_equal(ps_claim_name((ps_claim)c), claims[c]);
    ps_claim parsed;
    assert_int_equal(ps__claim_parse(claims[c], &parsed), c != PS_CLAIM_UNKNOWN);
    if (c != PS_CLAIM_UNKNOWN) assert_int_equal(parsed, c);
  }
  assert_string_equal(ps_claim_name((ps_claim)42), "n/a");

  static const char *const verdicts[] = {"not_run", "ok",          "corrupt", "error",
                                         "hang",    "unsupported", "skipped"};
  for (int v = 0; v < 7; v++) {
    assert_string_equal(ps_verdict_name((ps_verdict)v), verdicts[v]);
    ps_verdict parsed;
    assert_true(ps__verdict_parse(verdicts[v], &parsed));
    assert_int_equal(parsed, v);
  }
  ps_verdict parsed;
  assert_false(ps__verdict_parse("OK", &parsed));
  assert_false(ps__verdict_parse(NULL, &parsed));

  static const char *const sources[] = {"live", "fixture", "file"};
  for (int s = 0; s < 3; s++) {
    assert_string_equal(ps__source_name((ps_source)s), sources[s]);
    ps_source src;
    assert_true(ps__source_parse(sources[s], &src));
    assert_int_equal(src, s);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_defaults),
      cmocka_unit_test(test_new_limits),
      cmocka_unit_test(test_pair_lookup),
      cmocka_unit_test(test_link_names),
      cmocka_unit_test(test_claim_and_verdict_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
