/* The planner over several nodes (ps_plan_make_cluster): one node whenever the model fits one,
 * else TP = the GPUs of a node and PP = the fewest nodes that hold it (vLLM's advice), the
 * replicas the other nodes serve, clusters of up to 1024 nodes, mixed nodes, bad requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* Llama-3.1-405B's config.json; weights: its 405.85 billion parameters in bfloat16. */
static ps_model llama405b(void) {
  ps_model m = ps_test_llama70b();
  snprintf(m.name, sizeof(m.name), "Llama-3.1-405B-Instruct");
  m.num_layers = 126, m.hidden_size = 16384, m.num_heads = 128, m.intermediate_size = 53248;
  m.weight_bytes = 811700000000ull;
  return m;
}

static ps_plan *cluster(const ps_report *const *nodes, int n, const ps_plan_request *req) {
  ps_ctx *ctx = ps_ctx_new();
  ps_plan *p = NULL;
  ps_status st = ps_plan_make_cluster(ctx, nodes, n, req, &p);
  if (st != PS_OK) fail_msg("plan: %s (%s)", ps_status_name(st), ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return p;
}

static bool has_reason(const ps_plan *p, const char *text) {
  for (int i = 0; i < p->reason_count; i++)
    if (strstr(p->reasons[i], text)) return true;
  return false;
}

/* The plan passes vLLM `name` with `value`. */
static void assert_arg(const ps_plan *p, const char *name, const char *value) {
  const ps_plan_item *arg = ps_test_plan_item(p->args, p->arg_count, name);
  assert_non_null(arg);
  assert_string_equal(arg->value, value);
}

/* ps_plan_make_cluster refuses the request as an invalid argument, with no plan; the message
 * holds `why` unless it is NULL. */
static void refused(ps_ctx *ctx, const ps_report *const *nodes, int n, const ps_plan_request *req,
                    const char *why) {
  ps_plan *none = NULL;
  assert_int_equal(ps_plan_make_cluster(ctx, nodes, n, req, &none), PS_ERR_INVALID_ARG);
  if (why) assert_non_null(strstr(ps_ctx_error(ctx), why));
  assert_null(none);
}

static ps_report *h100, *a100; /* 8x H100 80 GB; 4x A100 40 GB */

static int setup(void **state) {
  (void)state;
  h100 = ps_test_verified_machine("hgx-h100-8.topo");
  a100 = ps_test_verified_machine("example-4x-a100.topo");
  return h100 && a100 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ps_report_free(h100);
  ps_report_free(a100);
  return 0;
}

/* Llama-3.1-70B on four nodes of 8 H100s: TP=4 on one node, not TP=1 PP=4 over the network;
 * the head's other 4 GPUs and the other nodes serve replicas. */
static void test_one_node_when_it_fits(void **state) {
  (void)state;
  const ps_report *nodes[] = {h100, h100, h100, h100};
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  for (int n = 2; n <= 4; n += 2) {
    ps_plan *p = cluster(nodes, n, &req);
    assert_true(p->feasible);
    assert_int_equal(p->tp, 4);
    assert_int_equal(p->pp, 1);
    assert_int_equal(p->node_count, 1);
    assert_int_equal(p->max_model_len, 131072);
    assert_int_equal(p->replicas, 2 * n);
    assert_int_equal(p->command_count, 0); /* no Ray */
    assert_arg(p, "--distributed-executor-backend", "mp");
    assert_null(ps_test_plan_item(p->args, p->arg_count, "--pipeline-parallel-size"));
    for (int i = 0; i < p->gpu_count; i++)
      assert_int_equal(p->gpu_node[i], 0);
    assert_true(has_reason(p, "the model fits one, so one instance on node 0 without Ray"));
    assert_true(has_reason(p, "node 0 can serve 1 more beside this one"));
    assert_true(has_reason(p, n == 4 ? "the other 3 nodes 2 each" : "the other 1 node 2 each"));
    assert_non_null(strstr(p->summary, "of node 0"));
    ps_plan_free(p);
  }
}

/* 405B does not fit 8 H100s: TP=8 inside each node, PP=2 over two, on Ray. */
static void test_405b_over_two_nodes(void **state) {
  (void)state;
  const ps_report *nodes[] = {h100, h100};
  ps_model m = llama405b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_plan *one = cluster(nodes, 1, &req);
  assert_false(one->feasible);
  ps_plan_free(one);
  ps_plan *p = cluster(nodes, 2, &req);
  assert_true(p->feasible);
  assert_int_equal(p->tp, 8);
  assert_int_equal(p->pp, 2);
  assert_int_equal(p->node_count, 2);
  assert_int_equal(p->max_model_len, 131072);
  assert_true(p->kv_tokens > 131072);
  assert_int_equal(p->command_count, 2);
  assert_non_null(strstr(p->commands[0].value, "ray start --head --port=6379 --num-gpus=8"));
  assert_non_null(strstr(p->commands[1].value, "ray start --address=HEAD_IP:6379 --num-gpus=8"));
  assert_arg(p, "--distributed-executor-backend", "ray");
  assert_arg(p, "--pipeline-parallel-size", "2");
  for (int i = 0; i < p->gpu_count; i++)
    assert_int_equal(p->gpu_node[i], i / 8);
  assert_true(has_reason(p, "TP = the GPUs of a node, PP = the nodes"));
  ps_plan_free(p);
}

/* Two nodes of 4x A100 40 GB: 70B fits one with a short context; the whole context takes two,
 * which --max-model-len asks for. */
static void test_context_on_more_nodes(void **state) {
  (void)state;
  const ps_report *nodes[] = {a100, a100};
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_plan *p = cluster(nodes, 2, &req);
  assert_true(p->feasible);
  assert_int_equal(p->node_count, 1);
  assert_int_equal(p->tp, 4);
  assert_true(p->max_model_len > 1024 && p->max_model_len < 131072);
  assert_true(has_reason(p, "2 nodes would hold the whole context of 131072 tokens"));
  ps_plan_free(p);
  req.max_model_len = 131072;
  p = cluster(nodes, 2, &req);
  assert_true(p->feasible);
  assert_int_equal(p->node_count, 2);
  assert_int_equal(p->tp, 4);
  assert_int_equal(p->pp, 2);
  assert_int_equal(p->replicas, 1);
  ps_plan_free(p);
}

/* A Ray cluster of 128 nodes gets a plan, and so does one of 1024; 1025 is refused. */
static void test_many_nodes(void **state) {
  (void)state;
  enum { MANY = 1025 };
  const ps_report **nodes = calloc(MANY, sizeof(*nodes));
  assert_non_null(nodes);
  for (int i = 0; i < MANY; i++)
    nodes[i] = h100;
  ps_model m70 = ps_test_llama70b(), m405 = llama405b();
  ps_plan_request req = {.size = sizeof(req), .model = &m70};
  ps_plan *p = cluster(nodes, 128, &req);
  assert_int_equal(p->node_count, 1);
  assert_int_equal(p->replicas, 256);
  assert_true(has_reason(p, "the other 127 nodes 2 each: 256 in all"));
  ps_plan_free(p);
  req.model = &m405;
  p = cluster(nodes, 128, &req);
  assert_int_equal(p->node_count, 2);
  assert_int_equal(p->tp, 8);
  assert_int_equal(p->replicas, 64);
  assert_int_equal(p->command_count, 2); /* Ray on the instance's nodes only */
  assert_true(has_reason(p, "the other 126 nodes can serve 63 more instances of 2 nodes each"));
  ps_plan_free(p);
  p = cluster(nodes, 1024, &req);
  assert_int_equal(p->replicas, 512);
  ps_plan_free(p);
  ps_ctx *ctx = ps_ctx_new();
  refused(ctx, nodes, MANY, &req, "1025 nodes: peerscope plans 1 to 1024");
  ps_ctx_free(ctx);
  free(nodes);
}

/* Mixed nodes: the head's 4x A100 40 GB, 8x V100 16 GB, 8x H100. The instance takes the head and
 * the node that gives the most, 4 GPUs each (the head's count), layers by each stage's room;
 * the plan says to give the larger node first. */
static void test_mixed_nodes(void **state) {
  (void)state;
  ps_report *v = ps_test_verified_machine("dgx1-v100-8.topo");
  const ps_report *nodes[] = {a100, v, h100};
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m, .max_model_len = 131072};
  ps_plan *p = cluster(nodes, 3, &req);
  assert_true(p->feasible);
  assert_int_equal(p->node_count, 2);
  assert_int_equal(p->tp, 4);
  assert_int_equal(p->pp, 2);
  for (int i = 0; i < p->gpu_count; i++)
    assert_int_equal(p->gpu_node[i], i < 4 ? 0 : 2);
  assert_non_null(ps_test_plan_item(p->env, p->env_count, "VLLM_PP_LAYER_PARTITION"));
  assert_non_null(strstr(p->commands[1].why, "on node 2"));
  assert_true(has_reason(p, "give node 2 first to plan on it"));
  assert_true(has_reason(p, "every node of the instance gives 4"));
  ps_plan_free(p);
  /* one node: replicas wherever the same TP=4 holds the same context, checked node by node:
   * one on the A100s, two on the H100s, none on the V100s of 16 GB */
  req.max_model_len = 4096;
  p = cluster(nodes, 3, &req);
  assert_true(p->feasible);
  assert_int_equal(p->node_count, 1);
  assert_int_equal(p->tp, 4);
  assert_int_equal(p->replicas, 3);
  assert_true(has_reason(p, "replicas: none more on node 0, 2 on node 2, none on node 1"));
  assert_true(has_reason(
      p,
      "node 1: no replica (fewer than 4 usable GPUs, or TP=4 at max_model_len 4096 does not fit"));
  ps_plan_free(p);
  ps_report_free(v);
}

static void test_bad_requests(void **state) {
  (void)state;
  const ps_report *nodes[] = {a100, a100};
  ps_model m = ps_test_llama70b();
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_ctx *ctx = ps_ctx_new();
  int gpus[] = {0};
  ps_plan_request bad = req;
  bad.gpus = gpus;
  bad.gpu_count = 1;
  refused(ctx, nodes, 2, &bad, NULL);
  bad = req;
  bad.tp = 8;
  refused(ctx, nodes, 2, &bad, "largest node");
  bad = req;
  bad.tp = 2, bad.pp = 3; /* 6 GPUs on one node, or 3 stages on two nodes: neither */
  refused(ctx, nodes, 2, &bad, "no configuration with TP=2 and PP=3");
  refused(ctx, nodes, 0, &req, NULL);
  /* a node without GPUs: left out, said so; the head without any: refused */
  ps_report empty = *a100;
  empty.gpu_count = 0;
  empty.pair_count = 0;
  const ps_report *with_empty[] = {a100, &empty}, *empty_head[] = {&empty, a100};
  ps_plan *p = cluster(with_empty, 2, &req);
  assert_true(p->feasible);
  assert_int_equal(p->node_count, 1);
  assert_true(has_reason(p, "node 1: no usable GPU, left out"));
  ps_plan_free(p);
  refused(ctx, empty_head, 2, &req, "node 0 (the head, where vllm serve runs) has no GPUs");
  const ps_report *missing[] = {a100, NULL};
  refused(ctx, missing, 2, &req, NULL);
  ps_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_node_when_it_fits), cmocka_unit_test(test_405b_over_two_nodes),
      cmocka_unit_test(test_context_on_more_nodes), cmocka_unit_test(test_many_nodes),
      cmocka_unit_test(test_mixed_nodes),           cmocka_unit_test(test_bad_requests),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
