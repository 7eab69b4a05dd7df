/* vLLM's rules as the planner applies them (src/plan/rules.c, memory.c), each on a synthetic
 * machine built for it: custom all-reduce needs a supported world size (2, 4, 6, 8), NVLink
 * between every pair above 2 GPUs, and is essential to turn off where a pair failed; KV
 * projections replicated when TP exceeds the KV heads weigh on every GPU. */
#include <stdio.h>
#include <string.h>

#include "support.h"

#include "plan/plan_internal.h"
#include "report/report_internal.h"

/* n verified GPUs, every pair `link` (NVLink pairs claim NVLink), every verdict ok. */
static ps_report *machine(int n, ps_link_class link) {
  ps_report *r = ps__report_new(n);
  assert_non_null(r);
  r->verified = true;
  for (int g = 0; g < n; g++)
    r->gpus[g].local_verdict = PS_VERDICT_OK;
  for (int i = 0; i < r->pair_count; i++) {
    ps_pair *p = &r->pairs[i];
    p->valid |= PS_PAIR_LINK | PS_PAIR_CLAIMS;
    p->link = link;
    p->nvlink_count = link == PS_LINK_NVLINK ? 4 : 0;
    p->claim_read = p->claim_write = PS_CLAIM_OK;
    p->claim_nvlink = link == PS_LINK_NVLINK ? PS_CLAIM_OK : PS_CLAIM_NS;
    p->verdict = PS_VERDICT_OK;
  }
  return r;
}

static const int first8[] = {0, 1, 2, 3, 4, 5, 6, 7};

static void expect_car(const ps_report *r, int tp, bool enabled, bool essential, const char *why) {
  ps__car_decision d;
  ps__custom_all_reduce(r, first8, tp, &d);
  if (d.enabled != enabled || d.essential != essential || !strstr(d.why, why))
    fail_msg("TP=%d: enabled=%d essential=%d why '%s'; expected %d %d '%s'", tp, d.enabled,
             d.essential, d.why, enabled, essential, why);
}

static void test_world_sizes(void **state) {
  (void)state;
  ps_report *r = machine(8, PS_LINK_NVLINK);
  for (int tp = 2; tp <= 8; tp += 2)
    expect_car(r, tp, true, false, "every pair of the TP group verified");
  for (int tp = 3; tp <= 7; tp += 2)
    expect_car(r, tp, false, false, "supported world sizes: 2, 4, 6, 8");
  ps_report_free(r);
}

static void test_nvlink_above_two(void **state) {
  (void)state;
  ps_report *r = machine(4, PS_LINK_PIX); /* P2P verified over one PCIe switch */
  expect_car(r, 2, true, false, "every pair of the TP group verified");
  expect_car(r, 4, false, false, "not NVLink-connected");
  ps_report_free(r);
  /* NVLink everywhere but one pair (0, 3): enough at 2, not at 4. */
  r = machine(4, PS_LINK_NVLINK);
  for (int k = 0; k < 2; k++) {
    ps_pair *p = (ps_pair *)ps_report_pair(r, k ? 3 : 0, k ? 0 : 3);
    p->link = PS_LINK_PIX;
    p->claim_nvlink = PS_CLAIM_NS;
  }
  expect_car(r, 2, true, false, "verified");
  expect_car(r, 4, false, false, "GPU0 and GPU3 are not NVLink-connected");
  ps_report_free(r);
}

static void test_failed_pair_is_essential(void **state) {
  (void)state;
  static const ps_verdict failures[] = {PS_VERDICT_CORRUPT, PS_VERDICT_HANG, PS_VERDICT_ERROR};
  for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
    ps_report *r = machine(2, PS_LINK_NVLINK);
    ((ps_pair *)ps_report_pair(r, 1, 0))->verdict = failures[i];
    char why[80];
    snprintf(why, sizeof(why), "GPU1->GPU0 failed verification (ce: %s)",
             ps_verdict_name(failures[i]));
    expect_car(r, 2, false, true, why);
    ps_report_free(r);
  }
  /* Refused where the driver never claimed P2P (not failed): vLLM turns it off by itself,
   * the flag only silences its warning. */
  ps_report *r = machine(2, PS_LINK_PHB);
  for (int i = 0; i < r->pair_count; i++) {
    r->pairs[i].verdict = PS_VERDICT_UNSUPPORTED;
    r->pairs[i].claim_read = r->pairs[i].claim_write = PS_CLAIM_NS;
  }
  expect_car(r, 2, false, false, "vLLM disables custom all-reduce anyway");
  ps_report_free(r);
}

/* A tiny shape whose numbers are easy to follow: no embeddings (vocab unknown), 1000 bytes of
 * layers, 1 KV head of dimension 2 on a hidden size of 8, 2 bytes per element. */
static void test_replicated_kv_weights(void **state) {
  (void)state;
  ps_model m = {0};
  m.num_layers = 2, m.hidden_size = 8, m.num_heads = 4, m.num_kv_heads = 1, m.head_dim = 2;
  m.dtype_bytes = 2, m.weight_bytes = 1000;
  assert_int_equal(ps__stage_weights(&m, 1, 0, 1, 2), 1000);
  /* TP=2: half each, plus the half of a K and V head (2 x 8 x 2 x 2 bytes per layer) that an
   * even split would not give each GPU. */
  assert_int_equal(ps__stage_weights(&m, 2, 0, 1, 2), 500 + 2 * 64 * 1 / 2);
  assert_int_equal(ps__stage_weights(&m, 4, 0, 1, 2), 250 + 2 * 64 * 3 / 4);
  m.num_kv_heads = 4; /* as many KV heads as GPUs: nothing replicated */
  assert_int_equal(ps__stage_weights(&m, 4, 0, 1, 2), 250);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_world_sizes),
      cmocka_unit_test(test_nvlink_above_two),
      cmocka_unit_test(test_failed_pair_is_essential),
      cmocka_unit_test(test_replicated_kv_weights),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
