/* peerscope launch, the pure parts: the vllm serve argv and environment built from a plan,
 * conflicts with the user's extra arguments, every flag peerscope emits checked against the
 * option list of a real vLLM release (tests/fixtures/vllm-cli-*.txt), and the log classifier
 * on log lines of real vLLM start-ups. */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static void add_item(ps_plan_item *items, int *count, const char *name, const char *value) {
  snprintf(items[*count].name, sizeof(items[*count].name), "%s", name);
  snprintf(items[*count].value, sizeof(items[*count].value), "%s", value);
  snprintf(items[*count].why, sizeof(items[*count].why), "test");
  (*count)++;
}

/* What ps_log_summary_new starts from, in the test's own struct. */
static void fresh_summary(ps_log_summary *s) {
  ps_log_summary *n = ps_log_summary_new();
  assert_non_null(n);
  *s = *n;
  ps_log_summary_free(n);
}

/* A plan made by hand (ps_launch_argv is pure: it reads only these fields). */
static ps_plan *tp4_plan(void) {
  ps_plan *p = calloc(1, sizeof(*p));
  p->feasible = true;
  p->tp = 4, p->pp = 1, p->gpu_count = 4;
  snprintf(p->model_arg, sizeof(p->model_arg), "/models/Llama-3.1-70B-Instruct");
  add_item(p->args, &p->arg_count, "--tensor-parallel-size", "4");
  add_item(p->args, &p->arg_count, "--gpu-memory-utilization", "0.90");
  add_item(p->args, &p->arg_count, "--max-model-len", "32768");
  add_item(p->args, &p->arg_count, "--disable-custom-all-reduce", "");
  add_item(p->args, &p->arg_count, "--distributed-executor-backend", "mp");
  add_item(p->env, &p->env_count, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  add_item(p->env, &p->env_count, "CUDA_VISIBLE_DEVICES", "4,5,6,7");
  add_item(p->env, &p->env_count, "NCCL_P2P_DISABLE", "1");
  return p;
}

static char *joined(const ps_launch_cmd *cmd) {
  static char buf[8192];
  buf[0] = '\0';
  for (int i = 0; i < cmd->argc; i++) {
    if (i) strcat(buf, " ");
    strcat(buf, cmd->argv[i]);
  }
  return buf;
}

static void test_argv_plan_only(void **state) {
  (void)state;
  ps_plan *p = tp4_plan();
  ps_ctx *ctx = ps_ctx_new();
  ps_launch_opts o = {.size = sizeof(o), .vllm = "/opt/venv/bin/vllm", .port = 8123};
  ps_launch_cmd *cmd = NULL;
  assert_int_equal(ps_launch_argv(ctx, p, &o, &cmd), PS_OK);
  assert_string_equal(joined(cmd),
                      "/opt/venv/bin/vllm serve /models/Llama-3.1-70B-Instruct "
                      "--tensor-parallel-size 4 --gpu-memory-utilization 0.90 --max-model-len "
                      "32768 --disable-custom-all-reduce --distributed-executor-backend mp "
                      "--host 127.0.0.1 --port 8123");
  assert_null(cmd->argv[cmd->argc]);
  assert_int_equal(cmd->envc, 3);
  assert_string_equal(cmd->env[0], "CUDA_DEVICE_ORDER=PCI_BUS_ID");
  assert_string_equal(cmd->env[1], "CUDA_VISIBLE_DEVICES=4,5,6,7");
  assert_string_equal(cmd->env[2], "NCCL_P2P_DISABLE=1");
  assert_int_equal(cmd->conflict_count, 0);
  ps_launch_cmd_free(cmd);
  ps_ctx_free(ctx);
  free(p);
}

static void test_argv_user_wins(void **state) {
  (void)state;
  ps_plan *p = tp4_plan();
  ps_ctx *ctx = ps_ctx_new();
  const char *extra[] = {"-tp", "2", "--max_model_len=8192", "--enforce-eager", "--port", "9000"};
  ps_launch_opts o = {.size = sizeof(o), .extra = extra, .extra_count = 6, .nccl_debug = true};
  ps_launch_cmd *cmd = NULL;
  assert_int_equal(ps_launch_argv(ctx, p, &o, &cmd), PS_OK);
  /* The plan's TP, length and port are dropped; the user's copies follow, in their order. */
  assert_string_equal(joined(cmd), "vllm serve /models/Llama-3.1-70B-Instruct "
                                   "--gpu-memory-utilization 0.90 --disable-custom-all-reduce "
                                   "--distributed-executor-backend mp --host 127.0.0.1 -tp 2 "
                                   "--max_model_len=8192 --enforce-eager --port 9000");
  assert_int_equal(cmd->conflict_count, 3);
  assert_string_equal(cmd->conflicts[0].flag, "--tensor-parallel-size");
  assert_string_equal(cmd->conflicts[0].plan_value, "4");
  assert_string_equal(cmd->conflicts[0].user_value, "2");
  assert_string_equal(cmd->conflicts[1].flag, "--max-model-len");
  assert_string_equal(cmd->conflicts[1].user_value, "8192");
  assert_string_equal(cmd->conflicts[2].flag, "--port");
  assert_string_equal(cmd->conflicts[2].plan_value, "8000");
  assert_string_equal(cmd->env[cmd->envc - 1], "NCCL_DEBUG=INFO");
  ps_launch_cmd_free(cmd);

  /* The same value is no conflict. */
  const char *same[] = {"--tensor-parallel-size=4"};
  ps_launch_opts o2 = {.size = sizeof(o2), .extra = same, .extra_count = 1};
  assert_int_equal(ps_launch_argv(ctx, p, &o2, &cmd), PS_OK);
  assert_int_equal(cmd->conflict_count, 0);
  assert_non_null(strstr(joined(cmd), "--tensor-parallel-size=4"));
  ps_launch_cmd_free(cmd);
  ps_ctx_free(ctx);
  free(p);
}

static void test_argv_refuses(void **state) {
  (void)state;
  ps_plan *p = tp4_plan();
  ps_ctx *ctx = ps_ctx_new();
  ps_launch_opts o = PS_INIT(ps_launch_opts);
  ps_launch_cmd *cmd = NULL;
  p->feasible = false;
  snprintf(p->summary, sizeof(p->summary), "needs 141 GB, has 80");
  assert_int_equal(ps_launch_argv(ctx, p, &o, &cmd), PS_ERR_INVALID_ARG);
  assert_non_null(strstr(ps_ctx_error(ctx), "needs 141 GB"));
  p->feasible = true;
  const char *many[PS_LAUNCH_MAX_ARGV];
  for (int i = 0; i < PS_LAUNCH_MAX_ARGV; i++)
    many[i] = "--enforce-eager";
  o.extra = many;
  o.extra_count = PS_LAUNCH_MAX_ARGV;
  assert_int_equal(ps_launch_argv(ctx, p, &o, &cmd), PS_ERR_INVALID_ARG);
  assert_null(cmd);
  ps_ctx_free(ctx);
  free(p);
}

/* The newest tests/fixtures/vllm-cli-<version>.txt, one option per line. */
static char *load_flags(char *version, size_t len) {
  const char *dir = ps_test_env("PEERSCOPE_FIXTURES");
  DIR *d = opendir(dir);
  assert_non_null(d);
  char best[256] = "";
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "vllm-cli-", 9) == 0 && strcmp(e->d_name, best) > 0)
      snprintf(best, sizeof(best), "%s", e->d_name);
  closedir(d);
  if (!best[0]) fail_msg("no tests/fixtures/vllm-cli-*.txt (scripts/vllm-cli-flags.py)");
  snprintf(version, len, "%s", best);
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", dir, best);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text + 1, 1, (1 << 20) - 3, f);
  fclose(f);
  text[0] = '\n';
  text[n + 1] = '\n';
  return text;
}

static bool has_flag(const char *flags, const char *flag) {
  char needle[160];
  snprintf(needle, sizeof(needle), "\n%.150s\n", flag);
  return strstr(flags, needle) != NULL;
}

/* Declared names, plus the forms vLLM's boolean options generate (the fixture lists the
 * declared ones): --no-X (BooleanOptionalAction) and --enable-X / --disable-X pairs
 * (EnableDisableAction, vllm/utils/argparse_utils.py). */
static void expect_flag(const char *flags, const char *file, const char *flag, const char *from) {
  char alt[160];
  if (has_flag(flags, flag)) return;
  if (strncmp(flag, "--no-", 5) == 0 && (snprintf(alt, sizeof(alt), "--%.140s", flag + 5), 1) &&
      has_flag(flags, alt))
    return;
  if (strncmp(flag, "--enable-", 9) == 0 &&
      (snprintf(alt, sizeof(alt), "--disable-%.140s", flag + 9), 1) && has_flag(flags, alt))
    return;
  if (strncmp(flag, "--disable-", 10) == 0 &&
      (snprintf(alt, sizeof(alt), "--enable-%.140s", flag + 10), 1) && has_flag(flags, alt))
    return;
  fail_msg("%s (%s) is not a vllm serve option in %s", flag, from, file);
}

static void check_plan_flags(const char *flags, const char *file, const ps_plan *p,
                             const char *from) {
  for (int i = 0; i < p->arg_count; i++)
    expect_flag(flags, file, p->args[i].name, from);
}

/* Real plans over the fixture machines, with options that make the planner emit each of its
 * arguments, plus every argument name in the planner's source (src/plan: item(p->args, ...)). */
static void test_flags_exist_in_vllm(void **state) {
  (void)state;
  char file[256];
  char *flags = load_flags(file, sizeof(file));
  /* launch's own */
  expect_flag(flags, file, "--host", "launch");
  expect_flag(flags, file, "--port", "launch");
  expect_flag(flags, file, "-tp", "argv.c alias");
  expect_flag(flags, file, "-pp", "argv.c alias");
  expect_flag(flags, file, "--no-enable-prefix-caching", "generated boolean form");
  assert_false(has_flag(flags, "--not-a-vllm-option"));

  static const char *fixtures[] = {"example-4x-a100.topo", "pcie-4-consumer-cns.topo",
                                   "mixed-gpus.topo", "hgx-h100-8.topo"};
  ps_model m = {0};
  ps_ctx *ctx = ps_ctx_new();
  char model_dir[1024];
  snprintf(model_dir, sizeof(model_dir), "%s/models/Llama-3.1-8B-Instruct",
           ps_test_env("PEERSCOPE_FIXTURES"));
  assert_int_equal(ps_test_model_load(ctx, model_dir, &m), PS_OK);
  for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
    ps_test_use_fixture("fake", fixtures[f]);
    ps_report *r = NULL;
    assert_int_equal(ps_probe(ctx, NULL, &r), PS_OK);
    ps_verify_opts vo = {.size = sizeof(vo), .refresh = true, .cache_dir = "/nonexistent-cache"};
    assert_int_equal(ps_verify(ctx, r, &vo), PS_OK);
    int tps[] = {1, 2, 4}, pps[] = {1, 2};
    for (int t = 0; t < 3; t++)
      for (int s = 0; s < 2; s++) {
        ps_plan_request req = {.size = sizeof(req),
                               .model = &m,
                               .tp = tps[t],
                               .pp = pps[s],
                               .max_num_seqs = 2,
                               .kv_cache_dtype = t == 1 ? "fp8" : NULL};
        ps_plan *p = NULL;
        if (tps[t] * pps[s] <= r->gpu_count && ps_plan_make(ctx, r, &req, &p) == PS_OK)
          check_plan_flags(flags, file, p, fixtures[f]);
        ps_plan_free(p);
      }
    ps_report_free(r);
  }
  ps_ctx_free(ctx);

  /* Every argument the planner's source can emit. */
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/src/plan", ps_test_env("PEERSCOPE_SOURCE_DIR"));
  DIR *d = opendir(dir);
  assert_non_null(d);
  regex_t re;
  assert_int_equal(
      regcomp(&re, "item\\(p->args, &p->arg_count,[[:space:]]*\"(-[-a-z0-9]+)\"", REG_EXTENDED), 0);
  int found = 0;
  struct dirent *e;
  char *src = calloc(1, 1 << 20);
  while ((e = readdir(d))) {
    size_t nl = strlen(e->d_name);
    if (nl < 3 || strcmp(e->d_name + nl - 2, ".c") != 0) continue;
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    FILE *fp = fopen(path, "r");
    if (!fp) continue;
    size_t n = fread(src, 1, (1 << 20) - 1, fp);
    fclose(fp);
    src[n] = '\0';
    regmatch_t mt[2];
    for (const char *p = src; regexec(&re, p, 2, mt, 0) == 0; p += mt[0].rm_eo) {
      char flag[128];
      int len = (int)(mt[1].rm_eo - mt[1].rm_so);
      snprintf(flag, sizeof(flag), "%.*s", len, p + mt[1].rm_so);
      expect_flag(flags, file, flag, e->d_name);
      found++;
    }
  }
  closedir(d);
  regfree(&re);
  free(src);
  assert_true(found >= 6); /* the pattern still matches the planner's code */
  free(flags);
}

/* Lines from real vLLM start-ups (vLLM 0.6 to 0.33 texts; see docs/launch.md). */
static void test_log_success(void **state) {
  (void)state;
  static const char *lines[] = {
      "(APIServer pid=1812) INFO 09-02 11:41:05 [api_server.py:1896] vLLM API server version "
      "0.10.1.1",
      "(VllmWorker TP0 pid=1990) INFO 09-02 11:41:31 [custom_all_reduce.py:35] Skipping P2P "
      "check and trusting the driver's P2P report.",
      "a100-node:1990:1990 [0] NCCL INFO Channel 00/24 : 0[0] -> 1[1] via P2P/CUMEM/read",
      "a100-node:1991:1991 [1] NCCL INFO Channel 01/0 : 1[1] -> 0[0] via P2P/IPC",
      "(VllmWorker TP0 pid=1990) INFO 09-02 11:42:10 [gpu_worker.py:276] Available KV cache "
      "memory: 53.13 GiB",
      "(EngineCore_0 pid=1900) INFO 09-02 11:42:11 [kv_cache_utils.py:849] GPU KV cache size: "
      "1,740,624 tokens",
      "(EngineCore_0 pid=1900) INFO 09-02 11:42:11 [kv_cache_utils.py:853] Maximum concurrency "
      "for 131,072 tokens per request: 13.28x",
      "INFO:     Application startup complete.",
  };
  ps_log_summary s;
  fresh_summary(&s);
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    ps_log_classify_line(&s, lines[i]);
  assert_int_equal(s.custom_all_reduce, -1); /* vLLM only says so when it disables it */
  assert_int_equal(s.nccl_transports, PS_NCCL_P2P);
  assert_int_equal(s.kv_cache_tokens, 1740624);
  assert_int_equal(s.concurrency_tokens, 131072);
  assert_true(s.max_concurrency > 13.27 && s.max_concurrency < 13.29);
  assert_true(s.kv_available_gib > 53.12 && s.kv_available_gib < 53.14);
  assert_int_equal(s.failure, PS_LOG_FAIL_NONE);
  assert_true(s.ready);

  /* v0.33 writes size and concurrency on one line. */
  fresh_summary(&s);
  ps_log_classify_line(&s, "(EngineCore_DP0 pid=7) INFO 11-25 10:00:00 [kv_cache_utils.py:1148] "
                           "GPU KV cache size: 435,216 tokens, Maximum concurrency for 8,192 "
                           "tokens per request: 53.13x");
  assert_int_equal(s.kv_cache_tokens, 435216);
  assert_int_equal(s.concurrency_tokens, 8192);
  assert_true(s.max_concurrency > 53.12 && s.max_concurrency < 53.14);
  ps_log_classify_line(&s, "gpu:1:1 [0] NCCL INFO Channel 00 : 0[0] -> 1[1] via SHM/direct/direct");
  ps_log_classify_line(&s, "gpu:1:1 [0] NCCL INFO Channel 00/0 : 1[0] -> 0[0] [send] via "
                           "NET/Socket/0");
  assert_int_equal(s.nccl_transports, PS_NCCL_SHM | PS_NCCL_NET);
}

static void test_log_custom_all_reduce(void **state) {
  (void)state;
  static const struct {
    const char *line, *reason;
  } cases[] = {
      {"(VllmWorker TP0 pid=2218) WARNING 03-11 09:12:48 [custom_all_reduce.py:137] Custom "
       "allreduce is disabled because it's not supported on more than two PCIe-only GPUs. To "
       "silence this warning, specify disable_custom_all_reduce=True explicitly.",
       "it's not supported on more than two PCIe-only GPUs."},
      {"WARNING 07-30 02:15:54 custom_all_reduce.py:144] Custom allreduce is disabled because "
       "your platform lacks GPU P2P capability or P2P test failed. To silence this warning, "
       "specify disable_custom_all_reduce=True explicitly.",
       "your platform lacks GPU P2P capability or P2P test failed."},
      {"WARNING 11-25 10:00:00 [custom_all_reduce.py:212] Custom allreduce is disabled due to an "
       "unsupported world size: 3. Supported world sizes: [2, 4, 6, 8, 16]. To silence this "
       "warning, specify disable_custom_all_reduce=True explicitly.",
       "an unsupported world size: 3. Supported world sizes: [2, 4, 6, 8, 16]."},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ps_log_summary s;
    fresh_summary(&s);
    ps_log_classify_line(&s, cases[i].line);
    assert_int_equal(s.custom_all_reduce, 0);
    assert_string_equal(s.custom_all_reduce_reason, cases[i].reason);
  }
}

static void test_log_failures(void **state) {
  (void)state;
  ps_plan *p = tp4_plan();
  char hint[1024];
  ps_log_summary s;

  fresh_summary(&s);
  ps_log_classify_line(&s, "ValueError: To serve at least one request with the models's max seq "
                           "len (131072), (16.00 GiB KV cache is needed, which is larger than "
                           "the available KV cache memory (9.12 GiB). Based on the available "
                           "memory, the estimated maximum model length is 74640. Try increasing "
                           "`gpu_memory_utilization` or decreasing `max_model_len` when "
                           "initializing the engine.");
  assert_int_equal(s.failure, PS_LOG_FAIL_KV_TOO_SMALL);
  assert_true(s.kv_needed_gib > 15.99 && s.kv_needed_gib < 16.01);
  assert_true(s.kv_available_gib > 9.11 && s.kv_available_gib < 9.13);
  assert_int_equal(s.estimated_max_len, 74640);
  ps_log_suggest(&s, p, hint, sizeof(hint));
  assert_non_null(strstr(hint, "--max-model-len 74640"));

  fresh_summary(&s);
  ps_log_classify_line(&s, "(APIServer pid=1) ValueError: Total number of attention heads (64) "
                           "must be divisible by tensor parallel size (3).");
  assert_int_equal(s.failure, PS_LOG_FAIL_HEADS);
  assert_int_equal(s.heads, 64);
  assert_int_equal(s.heads_tp, 3);
  ps_log_suggest(&s, p, hint, sizeof(hint));
  assert_non_null(strstr(hint, "TP 3 does not divide the model's 64 attention heads"));

  fresh_summary(&s);
  ps_log_classify_line(&s, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 "
                           "GiB. GPU 0 has a total capacity of 79.25 GiB of which 1.02 GiB is "
                           "free.");
  /* Later fallout does not replace the first cause. */
  ps_log_classify_line(&s, "RuntimeError: Engine core initialization failed. See root cause "
                           "above. Failed core proc(s): {}");
  ps_log_classify_line(&s, "[Errno 98] error while attempting to bind on address ('127.0.0.1', "
                           "8000): Address already in use");
  assert_int_equal(s.failure, PS_LOG_FAIL_OOM);
  assert_non_null(strstr(s.failure_line, "Tried to allocate 1.96 GiB"));
  ps_log_suggest(&s, p, hint, sizeof(hint));
  assert_non_null(strstr(hint, "--tp 8"));

  fresh_summary(&s);
  ps_log_classify_line(&s, "ValueError: Free memory on device cuda:0 (30.1/79.25 GiB) on startup "
                           "is less than desired GPU memory utilization (0.9, 71.33 GiB). "
                           "Decrease GPU memory utilization or reduce GPU memory used by other "
                           "processes.");
  assert_int_equal(s.failure, PS_LOG_FAIL_FREE_MEMORY);
  fresh_summary(&s);
  ps_log_classify_line(&s, "ValueError: No available memory for the cache blocks. Try "
                           "increasing `gpu_memory_utilization` when initializing the engine.");
  assert_int_equal(s.failure, PS_LOG_FAIL_NO_KV_MEMORY);
  fresh_summary(&s);
  ps_log_classify_line(&s, "ERROR [Errno 98] error while attempting to bind on address "
                           "('0.0.0.0', 8000): address already in use");
  ps_log_classify_line(&s, "OSError: [Errno 98] Address already in use");
  assert_int_equal(s.failure, PS_LOG_FAIL_PORT_IN_USE);
  s.failure = PS_LOG_FAIL_HANG;
  ps_log_suggest(&s, p, hint, sizeof(hint)); /* tp4_plan already has P2P off */
  assert_non_null(strstr(hint, "P2P was already off"));
  p->env_count = 2;
  ps_log_suggest(&s, p, hint, sizeof(hint));
  assert_non_null(strstr(hint, "NCCL_P2P_DISABLE=1 in the environment"));
  s.failure = PS_LOG_FAIL_NONE;
  ps_log_suggest(&s, p, hint, sizeof(hint));
  assert_string_equal(hint, "");
  ps_log_classify_line(NULL, "x");
  ps_log_classify_line(&s, NULL);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_argv_plan_only), cmocka_unit_test(test_argv_user_wins),
      cmocka_unit_test(test_argv_refuses),   cmocka_unit_test(test_flags_exist_in_vllm),
      cmocka_unit_test(test_log_success),    cmocka_unit_test(test_log_custom_all_reduce),
      cmocka_unit_test(test_log_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
