/* The planner: real model shapes on the fixture machines (probed and verified through the fake
 * drivers), vLLM's rules, infeasible requests with numbers, and properties over generated
 * topologies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "report/report_internal.h"

#define GB 1000000000ull

/* Shapes from the models' config.json files (tests/fixtures/models/README.md cites them); the
 * Llamas are support.c's ps_test_llama8b and ps_test_llama70b. */
static ps_model qwen7b(void) {
  ps_model m = ps_test_llama8b();
  snprintf(m.name, sizeof(m.name), "Qwen2.5-7B-Instruct");
  m.num_layers = 28, m.hidden_size = 3584, m.num_heads = 28, m.num_kv_heads = 4;
  m.vocab_size = 152064, m.intermediate_size = 18944, m.max_position_embeddings = 32768;
  m.weight_bytes = 15231233024ull;
  return m;
}

static ps_plan *plan(const ps_report *r, const ps_plan_request *req, ps_status expect) {
  ps_ctx *ctx = ps_ctx_new();
  ps_plan *p = NULL;
  ps_status st = ps_plan_make(ctx, r, req, &p);
  if (st != expect) fail_msg("plan: %s (%s)", ps_status_name(st), ps_ctx_error(ctx));
  if ((st == PS_OK) != (p != NULL)) fail_msg("plan: a result exactly when PS_OK");
  ps_ctx_free(ctx);
  return p;
}

static void test_small_model_is_tp1(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("example-4x-a100.topo");
  ps_model m = ps_test_llama8b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_plan *p = plan(r, &req, PS_OK);
  assert_true(p->feasible);
  assert_int_equal(p->tp, 1);
  assert_int_equal(p->pp, 1);
  assert_int_equal(p->replicas, 4);
  assert_int_equal(p->max_model_len, 131072); /* 40 GB A100: the full context fits */
  assert_true(p->weights_bytes + p->overhead_bytes + p->kv_bytes <= p->budget_bytes);
  assert_null(ps_test_plan_item(p->args, p->arg_count, "--disable-custom-all-reduce"));
  ps_plan_free(p);
  /* latency objective on an NVLink machine: the largest verified TP group */
  req.objective = PS_OBJECTIVE_LATENCY;
  p = plan(r, &req, PS_OK);
  assert_int_equal(p->tp, 4);
  assert_true(p->custom_all_reduce);
  ps_plan_free(p);
  ps_report_free(r);
}

/* A benchmark result on GPUs 0-3 (as ps_bench_run would leave it in the report). */
static ps_bench_result *add_allreduce(ps_bench *b, ps_bench_kind kind, ps_bench_outcome outcome,
                                      double us, const char *reason) {
  ps_bench_result *r = &b->results[b->count++];
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  r->outcome = outcome;
  r->src = r->dst = -1;
  r->ranks = 4;
  for (int i = 0; i < 4; i++)
    r->group[i] = 3 - i; /* any order: a group is a set */
  snprintf(r->env, sizeof(r->env), "default");
  snprintf(r->dtype, sizeof(r->dtype), "bf16");
  r->bytes = 256 * 1024;
  r->us_median = us;
  snprintf(r->reason, sizeof(r->reason), "%s", reason);
  return r;
}

static bool said_in(const ps_plan *p, const char *text) {
  for (int i = 0; i < PS_PLAN_MAX_ITEMS; i++)
    if (strstr(p->reasons[i], text)) return true;
  return false;
}

static void test_measured_all_reduce_decides(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("example-4x-a100.topo");
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_bench bench = {0};
  ps_bench_result results[4];
  bench.results = results;
  r->bench = &bench;
  /* the one-shot kernel beat NCCL on the group: on, with the number */
  add_allreduce(&bench, PS_BENCH_ALLREDUCE_NCCL, PS_BENCH_OK, 20.0, "");
  add_allreduce(&bench, PS_BENCH_ALLREDUCE_ONESHOT, PS_BENCH_OK, 10.0, "");
  ps_plan *p = plan(r, &req, PS_OK);
  assert_int_equal(p->tp, 4);
  assert_true(p->custom_all_reduce);
  assert_true(said_in(p, "eager: a one-shot P2P all-reduce is 2.00x faster than NCCL at 256 KiB "
                         "on this group (10.0 vs 20.0 us)"));
  ps_plan_free(p);
  /* graph figures too: those are quoted (vLLM replays its all-reduce from a graph) */
  add_allreduce(&bench, PS_BENCH_ALLREDUCE_NCCL, PS_BENCH_OK, 9.0, "")->graph = true;
  add_allreduce(&bench, PS_BENCH_ALLREDUCE_ONESHOT, PS_BENCH_OK, 6.0, "")->graph = true;
  p = plan(r, &req, PS_OK);
  assert_true(p->custom_all_reduce);
  assert_true(said_in(p, "in CUDA graphs (as vLLM replays it): a one-shot P2P all-reduce is "
                         "1.50x faster than NCCL at 256 KiB on this group (6.0 vs 9.0 us)"));
  ps_plan_free(p);
  /* it gave wrong sums there: off, and the flag says why */
  bench.count = 0;
  add_allreduce(&bench, PS_BENCH_ALLREDUCE_ONESHOT, PS_BENCH_WRONG, 10.0, "rank 2 element 9");
  p = plan(r, &req, PS_OK);
  assert_false(p->custom_all_reduce);
  const ps_plan_item *flag =
      ps_test_plan_item(p->args, p->arg_count, "--disable-custom-all-reduce");
  assert_non_null(flag);
  assert_non_null(strstr(flag->why, "wrong on this group: rank 2 element 9"));
  ps_plan_free(p);
  r->bench = NULL; /* on the stack: not the report's to free */
  ps_report_free(r);
}

static void test_70b_needs_four(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("example-4x-a100.topo");
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_plan *p = plan(r, &req, PS_OK);
  assert_true(p->feasible);
  assert_int_equal(p->tp * p->pp, 4);
  assert_int_equal(p->tp, 4);
  assert_true(p->custom_all_reduce); /* NVLink between all 4, verified */
  assert_non_null(ps_test_plan_item(p->args, p->arg_count, "--distributed-executor-backend"));
  ps_plan_free(p);
  /* one GPU cannot hold it: a verdict with numbers */
  int one[] = {0};
  req.gpus = one;
  req.gpu_count = 1;
  p = plan(r, &req, PS_OK);
  assert_false(p->feasible);
  assert_non_null(strstr(p->summary, "needs "));
  assert_non_null(strstr(p->summary, "GiB per GPU at TP=1"));
  ps_plan_free(p);
  /* TP=2 cannot hold the weights (65.7 GiB per GPU); four GPUs hold them, with a context
   * shorter than the 32k asked: the summary names the nearest plan that fits */
  req.gpus = NULL;
  req.gpu_count = 0;
  req.tp = 2;
  req.max_model_len = 32768;
  p = plan(r, &req, PS_OK);
  assert_false(p->feasible);
  assert_non_null(strstr(p->summary, "at TP=2"));
  assert_non_null(strstr(p->summary, "TP=4 PP=1 fits"));
  ps_plan_free(p);
  ps_report_free(r);
}

static void test_heads_rule(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("hgx-h100-8.topo");
  ps_model m = qwen7b();
  ps_plan_request req = {.size = sizeof(req), .model = &m, .tp = 8};
  ps_plan *p = plan(r, &req, PS_OK);
  assert_false(p->feasible);
  assert_non_null(strstr(p->summary, "28 attention heads"));
  ps_plan_free(p);
  req.tp = 0;
  req.objective = PS_OBJECTIVE_LATENCY;
  p = plan(r, &req, PS_OK);
  assert_true(p->feasible);
  assert_int_equal(28 % p->tp, 0);
  assert_int_equal(p->tp, 4); /* 7 and 14 GPUs aside, 4 is the largest divisor that fits 8 */
  ps_plan_free(p);
  ps_report_free(r);
}

static void test_broken_pair_environment(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("fault-corrupt.topo"); /* 1->2 corrupt while claimed OK */
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m, .tp = 4};
  ps_plan *p = plan(r, &req, PS_OK);
  if (p->feasible) {
    assert_non_null(ps_test_plan_item(p->args, p->arg_count, "--disable-custom-all-reduce"));
    const ps_plan_item *nccl = ps_test_plan_item(p->env, p->env_count, "NCCL_P2P_DISABLE");
    assert_non_null(nccl);
    assert_string_equal(nccl->value, "1");
  }
  ps_plan_free(p);
  /* without the constraint the planner avoids the pair for TP groups */
  ps_model small = ps_test_llama8b();
  req.model = &small;
  req.tp = 2;
  p = plan(r, &req, PS_OK);
  assert_true(p->feasible);
  assert_false((p->gpus[0] == 1 && p->gpus[1] == 2) || (p->gpus[0] == 2 && p->gpus[1] == 1));
  assert_null(ps_test_plan_item(p->env, p->env_count, "NCCL_P2P_DISABLE"));
  ps_plan_free(p);
  ps_report_free(r);
}

static void test_bad_requests(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("rtx3090-2-nvlink.topo");
  ps_model m = ps_test_llama8b();
  ps_plan_request req = {.size = sizeof(req), .model = &m, .tp = 4};
  ps_plan_free(plan(r, &req, PS_ERR_INVALID_ARG));
  req.tp = 0;
  req.kv_cache_dtype = "int3";
  ps_plan_free(plan(r, &req, PS_ERR_INVALID_ARG));
  req.kv_cache_dtype = NULL;
  int bad[] = {5};
  req.gpus = bad;
  req.gpu_count = 1;
  ps_plan_free(plan(r, &req, PS_ERR_INVALID_ARG));
  ps_report_free(r);
}

static void test_formats(void **state) {
  (void)state;
  ps_report *r = ps_test_verified_machine("example-4x-a100.topo");
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m, .model_path = "/models/it's 70B"};
  ps_plan *p = plan(r, &req, PS_OK);
  ps_ctx *ctx = ps_ctx_new();
  for (int f = PS_PLAN_TEXT; f <= PS_PLAN_YAML; f++) {
    char *text = NULL;
    assert_int_equal(ps_plan_write(ctx, p, (ps_plan_format)f, &text), PS_OK);
    assert_non_null(text);
    if (f == PS_PLAN_SHELL) assert_non_null(strstr(text, "vllm serve '/models/it'\\''s 70B'"));
    if (f == PS_PLAN_ARGS) assert_non_null(strstr(text, "--tensor-parallel-size 4"));
    if (f == PS_PLAN_YAML) assert_non_null(strstr(text, "tensor-parallel-size: 4"));
    if (f == PS_PLAN_JSON) assert_non_null(strstr(text, "\"schema\": \"peerscope.plan/1\""));
    ps_free(text);
  }
  char *text = NULL;
  assert_int_equal(ps_plan_write(ctx, p, (ps_plan_format)42, &text), PS_ERR_INVALID_ARG);
  ps_ctx_free(ctx);
  ps_plan_free(p);
  ps_report_free(r);
}

/* ---- properties over generated topologies ------------------------------------------- */

static unsigned rng_state = 12345;
static unsigned rnd(unsigned n) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (rng_state >> 8) % n;
}

static ps_report *random_report(int n) {
  ps_report *r = ps__report_new(n);
  r->verified = true;
  static const uint64_t sizes[] = {16, 24, 40, 48, 80};
  for (int g = 0; g < n; g++) {
    ps_gpu *gpu = &r->gpus[g];
    gpu->valid |= PS_GPU_MEMORY_TOTAL | PS_GPU_NAME;
    gpu->memory_total_bytes = sizes[rnd(5)] * GB;
    snprintf(gpu->name, sizeof(gpu->name), "GPU model %d", (int)rnd(2));
    gpu->local_verdict = PS_VERDICT_OK;
  }
  static const ps_verdict verdicts[] = {PS_VERDICT_OK, PS_VERDICT_OK, PS_VERDICT_OK,
                                        PS_VERDICT_CORRUPT, PS_VERDICT_UNSUPPORTED};
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      ps_verdict v = verdicts[rnd(5)];
      ps_link_class link = rnd(3) == 0 ? PS_LINK_NVLINK : PS_LINK_PHB;
      for (int k = 0; k < 2; k++) {
        ps_pair *p = (ps_pair *)ps_report_pair(r, k ? b : a, k ? a : b);
        p->valid |= PS_PAIR_LINK | PS_PAIR_CLAIMS;
        p->link = link;
        p->nvlink_count = link == PS_LINK_NVLINK ? 4 : 0;
        p->claim_read = p->claim_write = PS_CLAIM_OK;
        p->claim_nvlink = link == PS_LINK_NVLINK ? PS_CLAIM_OK : PS_CLAIM_NS;
        p->verdict = v;
      }
    }
  return r;
}

static void test_properties(void **state) {
  (void)state;
  ps_model models[] = {ps_test_llama8b(), ps_test_llama70b(), qwen7b()};
  for (int trial = 0; trial < 150; trial++) {
    int n = 1 + (int)rnd(8);
    ps_report *r = random_report(n);
    ps_model *m = &models[rnd(3)];
    ps_plan_request req = {.size = sizeof(req),
                           .model = m,
                           .objective = (ps_objective)rnd(2),
                           .max_num_seqs = 1 + (int)rnd(4)};
    ps_plan *p = plan(r, &req, PS_OK);
    ps_plan *again = plan(r, &req, PS_OK);
    assert_memory_equal(p, again, sizeof(*p)); /* deterministic */
    if (p->feasible) {
      assert_int_equal(m->num_heads % p->tp, 0);
      assert_true(p->weights_bytes + p->overhead_bytes + p->kv_bytes <= p->budget_bytes);
      for (int i = 0; i < p->gpu_count; i++)
        assert_in_range(p->gpus[i], 0, n - 1);
      /* a broken pair inside the plan always comes with NCCL kept off it */
      bool broken = false;
      for (int i = 0; i < p->gpu_count; i++)
        for (int j = 0; j < p->gpu_count; j++)
          if (i != j && ps_report_pair(r, p->gpus[i], p->gpus[j])->verdict == PS_VERDICT_CORRUPT)
            broken = true;
      if (broken)
        assert_true(ps_test_plan_item(p->env, p->env_count, "NCCL_P2P_DISABLE") ||
                    ps_test_plan_item(p->env, p->env_count, "NCCL_P2P_LEVEL"));
      /* custom all-reduce only on a fully verified TP group */
      if (p->custom_all_reduce)
        for (int i = 0; i < p->tp; i++)
          for (int j = 0; j < p->tp; j++)
            if (i != j)
              assert_int_equal(ps_report_pair(r, p->gpus[i], p->gpus[j])->verdict, PS_VERDICT_OK);
    }
    ps_plan_free(p);
    ps_plan_free(again);
    ps_report_free(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_model_is_tp1),
      cmocka_unit_test(test_70b_needs_four),
      cmocka_unit_test(test_heads_rule),
      cmocka_unit_test(test_broken_pair_environment),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_measured_all_reduce_decides),
      cmocka_unit_test(test_formats),
      cmocka_unit_test(test_properties),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
