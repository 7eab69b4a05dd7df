/* The start-up log reader (src/plan/vllm_log.c): every wording of vLLM's memory lines it
 * knows, the smallest figure over ranks, separators and suffixes, odd bytes, and its refusals
 * (one line, the file and the line). */
#include <string.h>

#include "support.h"

#include "plan/calibration.h"

static ps_vllm_log *read_ok(const char *text) {
  ps_ctx *ctx = ps_ctx_new();
  ps_vllm_log *g = NULL;
  ps_status st = ps_vllm_log_read(ctx, text, strlen(text), "t.log", &g);
  if (st != PS_OK) fail_msg("%s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return g;
}

static void refused(const char *text, size_t len, const char *where, const char *why) {
  ps_ctx *ctx = ps_ctx_new();
  ps_vllm_log *g = NULL;
  assert_int_equal(ps_vllm_log_read(ctx, text, len, "t.log", &g), PS_ERR_BAD_INPUT);
  assert_null(g);
  assert_non_null(strstr(ps_ctx_error(ctx), where));
  assert_non_null(strstr(ps_ctx_error(ctx), why));
  assert_null(strchr(ps_ctx_error(ctx), '\n'));
  ps_ctx_free(ctx);
}

static void test_v0_one_line(void **state) {
  (void)state;
  ps_vllm_log *g = read_ok(
      "Loading model weights took 14.9888 GB\r\n"
      "Memory profiling results: total_gpu_memory=23.58GiB initial_memory_usage=15.34GiB "
      "peak_torch_memory=17.06GiB memory_usage_post_profile=15.35GiB non_torch_memory=0.35GiB "
      "kv_cache_size=3.81GiB gpu_memory_utilization=0.90\r\n"
      "# GPU blocks: 1952, # CPU blocks: 2048\r\n");
  assert_float_equal(g->weights.gib, 14.9888, 1e-9);
  assert_int_equal(g->weights.line, 1);
  assert_float_equal(g->visible.gib, 23.58, 1e-9);
  assert_float_equal(g->peak_torch.gib, 17.06, 1e-9);
  assert_float_equal(g->non_torch.gib, 0.35, 1e-9);
  assert_float_equal(g->kv_gib.gib, 3.81, 1e-9);
  assert_float_equal(g->util, 0.9, 1e-9);
  assert_int_equal(g->blocks, 1952);
  assert_int_equal(g->blocks_line, 3);
  assert_int_equal(g->lines, 3);
  ps_vllm_log_free(g);
}

static void test_v1_lines(void **state) {
  (void)state;
  ps_vllm_log *g = read_ok(
      "(APIServer pid=1) INFO [api_server.py:1] vLLM API server version 0.10.2\n"
      "vllm serve Q --tensor-parallel-size 4 --max-model-len 32K --enforce-eager\n"
      "(W pid=2) INFO [gpu_worker.py:298] Available KV cache memory: 10.65 GiB\n"
      "(W pid=3) INFO [gpu_worker.py:298] Available KV cache memory: 10.61 GiB\n"
      "INFO [kv_cache_utils.py:864] GPU KV cache size: 238,208 tokens\n"
      "INFO [kv_cache_utils.py:864] GPU KV cache size: 238,400 tokens\n"
      "INFO [kv_cache_utils.py:868] Maximum concurrency for 32,768 tokens per request: 7.27x\n"
      "(W pid=2) INFO [gpu_worker.py:391] Free memory on device (43.93/44.42 GiB) on startup. "
      "Desired GPU memory utilization is (0.9, 39.98 GiB). Actual usage is 27.72 GiB for "
      "weight, 1.4 GiB for peak activation, 0.21 GiB for non-torch memory, and 3.45 GiB for "
      "CUDAGraph memory.\n");
  assert_string_equal(g->version, "0.10.2");
  assert_int_equal(g->version_line, 1);
  assert_int_equal(g->tp, 4);
  assert_int_equal(g->max_model_len, 32768);
  assert_int_equal(g->eager, 1);
  assert_float_equal(g->kv_gib.gib, 10.61, 1e-9); /* the smallest worker */
  assert_int_equal(g->kv_tokens, 238208);         /* the smallest rank */
  assert_int_equal(g->concurrency_len, 32768);
  assert_float_equal(g->visible.gib, 44.42, 1e-9);
  assert_float_equal(g->weights.gib, 27.72, 1e-9);
  assert_float_equal(g->activation.gib, 1.4, 1e-9);
  assert_float_equal(g->non_torch.gib, 0.21, 1e-9);
  assert_float_equal(g->graphs.gib, 3.45, 1e-9);
  assert_float_equal(g->util, 0.9, 1e-9);
  ps_vllm_log_free(g);
}

static void test_refusals(void **state) {
  (void)state;
  refused("", 0, "t.log:1:", "not a vLLM start-up log");
  refused("a\0b\nc", 5, "t.log:1:", "not a vLLM start-up log");
  static const char cut[] = "x\nvLLM API server version 0.10.2\nModel loading took 1.5 GiB\n";
  refused(cut, strlen(cut), "t.log:3:", "ends before vLLM sized its KV cache");
  static const char newer[] = "vLLM API server version 0.34.0\nGPU KV cache size: 10 tokens\n";
  refused(newer, strlen(newer), "t.log:1:", "vLLM 0.34.0");
  /* a line longer than the reader keeps is cut, not overrun */
  size_t n = 100000;
  char *big = test_malloc(n + 128);
  memset(big, 'x', n);
  strcpy(big + n, "\nGPU KV cache size: 99,999,999,999,999,999,999 tokens\n"
                  "GPU KV cache size: 12 tokens\n");
  ps_vllm_log *g = read_ok(big); /* the overflowing count is no count */
  assert_int_equal(g->kv_tokens, 12);
  assert_int_equal(g->kv_tokens_line, 3);
  ps_vllm_log_free(g);
  test_free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v0_one_line),
      cmocka_unit_test(test_v1_lines),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
