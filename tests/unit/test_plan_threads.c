/* The planner is re-entrant: plans with different objectives and machines, made at the same
 * time from several threads (as the web server's connection threads do), each equal to the
 * single-threaded answer. scripts/test.sh also runs this under ThreadSanitizer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define THREADS 6
#define ROUNDS 12
#define CASES 4

static ps_model model(int layers, int hidden, int heads, uint64_t weights) {
  ps_model m = {0};
  snprintf(m.name, sizeof(m.name), "threads-%d", layers);
  m.valid = PS_MODEL_WEIGHTS_EXACT | PS_MODEL_MAX_POSITIONS;
  m.num_layers = layers, m.hidden_size = hidden, m.num_heads = heads, m.num_kv_heads = 8;
  m.head_dim = 128, m.vocab_size = 128256, m.intermediate_size = hidden * 3;
  m.max_position_embeddings = 131072, m.dtype_bytes = 2, m.attention_layers = layers;
  snprintf(m.dtype, sizeof(m.dtype), "bfloat16");
  m.weight_bytes = weights;
  return m;
}

typedef struct plan_case {
  const ps_report *report;
  ps_plan_request req;
  char *expected; /* the plan's JSON, made on one thread */
} plan_case;

static plan_case cases[CASES];

/* The plan for case i as JSON (NULL on failure). */
static char *plan_json(int i) {
  ps_ctx *ctx = ps_ctx_new();
  ps_plan *p = NULL;
  char *text = NULL;
  if (ctx && ps_plan_make(ctx, cases[i].report, &cases[i].req, &p) == PS_OK)
    ps_plan_write(ctx, p, PS_PLAN_JSON, &text);
  ps_plan_free(p);
  ps_ctx_free(ctx);
  return text;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg, wrong = 0;
  for (int round = 0; round < ROUNDS; round++) {
    int i = (id + round) % CASES; /* neighbours plan different objectives at the same time */
    char *got = plan_json(i);
    if (!got || strcmp(got, cases[i].expected) != 0) wrong++;
    ps_free(got);
  }
  return (void *)(intptr_t)wrong;
}

static void test_concurrent_objectives(void **state) {
  (void)state;
  ps_report *a100 = ps_test_verified_machine("example-4x-a100.topo");
  ps_report *h100 = ps_test_verified_machine("hgx-h100-8.topo");
  ps_model small = model(32, 4096, 32, 16000000000ull);
  ps_model large = model(80, 8192, 64, 141000000000ull);
  const ps_objective objectives[2] = {PS_OBJECTIVE_THROUGHPUT, PS_OBJECTIVE_LATENCY};
  for (int i = 0; i < CASES; i++) {
    cases[i].report = i < 2 ? a100 : h100;
    cases[i].req = (ps_plan_request){.size = sizeof(ps_plan_request),
                                     .model = i < 2 ? &small : &large,
                                     .objective = objectives[i % 2]};
    cases[i].expected = plan_json(i);
    assert_non_null(cases[i].expected);
  }
  /* The objectives really lead to different plans, so a shared objective would show. */
  assert_string_not_equal(cases[0].expected, cases[1].expected);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t), 0);
  int wrong = 0;
  for (int t = 0; t < THREADS; t++) {
    void *ret = NULL;
    pthread_join(threads[t], &ret);
    wrong += (int)(intptr_t)ret;
  }
  assert_int_equal(wrong, 0);
  for (int i = 0; i < CASES; i++)
    ps_free(cases[i].expected);
  ps_report_free(a100);
  ps_report_free(h100);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_concurrent_objectives)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
