/* Hostile and absurd inputs (issue 18): checked size arithmetic, the string set that keeps
 * the index parser linear, weight_map entries confined to the model directory, safetensors
 * data sizes against the file, caps on experts, weights, shards and GPUs per node, plan
 * emitters that a model's name cannot inject into, and the signal-safe tree removal. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#include "core/checked.h"
#include "core/internal.h"
#include "core/strset.h"
#include "core/tmpdir.h"
#include "model/model_internal.h"

#define MSG_LEN (PATH_MAX * 3)

static ps_ctx *ctx;
static char root[PATH_MAX];

static int setup(void **state) {
  (void)state;
  ctx = ps_ctx_new();
  return ctx && ps_test_scratch_dir("limits", root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ps_ctx_free(ctx);
  return ps_test_remove_tree(root);
}

/* ---- helpers ------------------------------------------------------------------------ */

static const char *new_dir(const char *name) {
  static char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", root, name);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) fail_msg("mkdir %s: %s", path, strerror(errno));
  return path;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[PATH_MAX * 3];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) fail_msg("%s: %s", path, strerror(errno));
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text) {
  write_file(dir, name, text, strlen(text));
}

/* A safetensors file in memory (malloc'ed, *len bytes): the 8-byte length, the header, then
 * data_len zero bytes. */
static unsigned char *st_bytes(const char *header, size_t data_len, size_t *len) {
  size_t h = strlen(header);
  unsigned char *buf = calloc(1, 8 + h + data_len);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, header, h);
  *len = 8 + h + data_len;
  return buf;
}

static void write_st(const char *dir, const char *name, const char *header, size_t data_len) {
  size_t len;
  unsigned char *buf = st_bytes(header, data_len, &len);
  write_file(dir, name, buf, len);
  free(buf);
}

/* ps__safetensors_parse_header on a file "x.st" of only the length and the header. */
static ps_status parse_st_header(const char *header, ps__st_sum *sum) {
  size_t len;
  unsigned char *buf = st_bytes(header, 0, &len);
  ps_status st = ps__safetensors_parse_header(ctx, buf, len, "x.st", sum);
  free(buf);
  return st;
}

static const char *tiny_config =
    "{\"num_hidden_layers\": 2, \"hidden_size\": 8, \"num_attention_heads\": 2, "
    "\"vocab_size\": 10, \"intermediate_size\": 16, \"torch_dtype\": \"bfloat16\"}";

/* A new model directory `name` holding tiny_config (in new_dir's static buffer). */
static const char *tiny_model(const char *name) {
  const char *dir = new_dir(name);
  write_text(dir, "config.json", tiny_config);
  return dir;
}

/* A tiny model whose model.safetensors.index.json is `index`. */
static const char *tiny_model_index(const char *name, const char *index) {
  const char *dir = tiny_model(name);
  write_text(dir, "model.safetensors.index.json", index);
  return dir;
}

/* A tiny model whose weights are one model.safetensors: that header, data_len bytes. */
static const char *tiny_model_st(const char *name, const char *header, size_t data_len) {
  const char *dir = tiny_model(name);
  write_st(dir, "model.safetensors", header, data_len);
  return dir;
}

/* Loading `dir` fails with PS_ERR_BAD_INPUT and exactly `dir` + `rest`. */
static void load_fails(const char *dir, const char *rest) {
  char want[MSG_LEN];
  ps_model m;
  snprintf(want, sizeof(want), "%s%s", dir, rest);
  ps_status st = ps_test_model_load(ctx, dir, &m);
  if (st != PS_ERR_BAD_INPUT)
    fail_msg("%s: status %s (%s)", dir, ps_status_name(st), ps_ctx_error(ctx));
  assert_string_equal(ps_ctx_error(ctx), want);
}

static ps_model load_ok(const char *dir) {
  ps_model m;
  if (ps_test_model_load(ctx, dir, &m) != PS_OK) fail_msg("%s: %s", dir, ps_ctx_error(ctx));
  return m;
}

/* ---- core ----------------------------------------------------------------------------- */

static void test_checked_arithmetic(void **state) {
  (void)state;
  uint64_t r;
  assert_true(ps__add_u64_checked(1, 2, &r) && r == 3);
  assert_false(ps__add_u64_checked(UINT64_MAX, 1, &r));
  assert_true(r == UINT64_MAX);
  assert_false(ps__mul_u64_checked(1ull << 62, 4, &r));
  assert_true(r == UINT64_MAX);
  assert_true(ps__mul_u64_checked(1ull << 31, 1ull << 32, &r) && r == 1ull << 63);
  /* Four shards of 2^62 bytes: saturated, never 0. */
  uint64_t sum = 0;
  for (int i = 0; i < 4; i++)
    sum = ps__add_u64_sat(sum, 1ull << 62);
  assert_true(sum == UINT64_MAX);
  assert_true(ps__mul_u64_sat(1ull << 40, 1ull << 30) == UINT64_MAX);
}

static void test_strset(void **state) {
  (void)state;
  enum { N = 100000 };
  char(*names)[32] = calloc(N, sizeof(*names));
  assert_non_null(names);
  ps__strset set = {0};
  bool added;
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "model-%06d-of-%06d", i, N);
    assert_true(ps__strset_add(&set, names[i], &added));
    assert_true(added);
  }
  assert_int_equal(set.count, N);
  assert_true(set.cap >= 2 * (size_t)N);
  char again[32];
  snprintf(again, sizeof(again), "model-%06d-of-%06d", 4242, N);
  assert_true(ps__strset_add(&set, again, &added));
  assert_false(added);
  assert_true(ps__strset_has(&set, again));
  assert_false(ps__strset_has(&set, "model-x"));
  ps__strset_free(&set);
  assert_false(ps__strset_has(&set, again));
  free(names);
}

static void test_printable(void **state) {
  (void)state;
  char buf[32];
  assert_string_equal(ps__printable("a\nb\x1b[31m\\", buf, sizeof(buf)), "a\\x0Ab\\x1B[31m\\x5C");
  assert_string_equal(ps__printable("0123456789012345678901234567890123456789", buf, 16),
                      "012345678901...");
  assert_string_equal(ps__printable(NULL, buf, sizeof(buf)), "");
}

/* A file being written beside its final name (the Hub cache's way) goes on SIGTERM. */
static void test_tmpfile_removed_on_signal(void **state) {
  (void)state;
  char templ[PATH_MAX * 3];
  snprintf(templ, sizeof(templ), "%s/config.json.incomplete.XXXXXX", new_dir("hub"));
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = ps__tmpfile_make(templ);
    if (fd < 0 || write(ready[1], templ, sizeof(templ)) != (ssize_t)sizeof(templ)) _exit(2);
    pause(); /* the parent's SIGTERM ends it here */
    _exit(3);
  }
  close(ready[1]);
  char made[PATH_MAX * 3];
  assert_int_equal(read(ready[0], made, sizeof(made)), (ssize_t)sizeof(made));
  close(ready[0]);
  struct stat st;
  assert_int_equal(stat(made, &st), 0);
  assert_int_equal(kill(pid, SIGTERM), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  assert_int_equal(stat(made, &st), -1); /* removed by the handler */
}

static void test_tmpdir_remove_tree(void **state) {
  (void)state;
  char tree[PATH_MAX * 2], path[PATH_MAX * 3], outside[PATH_MAX * 2];
  snprintf(tree, sizeof(tree), "%s", new_dir("tree"));
  snprintf(outside, sizeof(outside), "%s", new_dir("outside"));
  write_text(outside, "keep", "x");
  /* deep enough for several getdents passes, a link to outside, many entries */
  snprintf(path, sizeof(path), "%s/a", tree);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/a/b", tree);
  mkdir(path, 0755);
  for (int i = 0; i < 300; i++) {
    char name[32];
    snprintf(name, sizeof(name), "file-with-a-long-name-%04d", i);
    write_text(path, name, "x");
  }
  snprintf(path, sizeof(path), "%s/a/out", tree);
  assert_int_equal(symlink(outside, path), 0);
  assert_true(ps__tmpdir_register(tree));
  ps__tmpdir_unregister(tree);
  ps__tmpdir_remove_tree(tree);
  struct stat st;
  assert_int_equal(lstat(tree, &st), -1);
  snprintf(path, sizeof(path), "%s/keep", outside);
  assert_int_equal(stat(path, &st), 0); /* the link was removed, not followed */
  /* Every slot can be taken, and no more. */
  for (int i = 0; i < PS_TMPDIR_SLOTS; i++) {
    snprintf(path, sizeof(path), "%s/slot-%d", root, i);
    assert_true(ps__tmpdir_register(path));
  }
  assert_false(ps__tmpdir_register("/one-too-many"));
  for (int i = 0; i < PS_TMPDIR_SLOTS; i++) {
    snprintf(path, sizeof(path), "%s/slot-%d", root, i);
    ps__tmpdir_unregister(path);
  }
}

/* ---- the index --------------------------------------------------------------------- */

/* An index of `n` distinct shard names (none present) with total_size given. */
static void write_big_index(const char *dir, int n) {
  size_t cap = (size_t)n * 64 + 256, o = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  o += (size_t)snprintf(text + o, cap - o,
                        "{\"metadata\": {\"total_size\": 123456}, \"weight_map\": {");
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(text + o, cap - o, "%s\"t%d\": \"model-%06d-of-%06d.safetensors\"",
                          i ? ", " : "", i, i + 1, n);
  o += (size_t)snprintf(text + o, cap - o, "}}");
  write_file(dir, "model.safetensors.index.json", text, o);
  free(text);
}

static void test_index_many_shards(void **state) {
  (void)state;
  /* The largest index allowed: read in one pass (timings: tests/bench/input_scaling.py). */
  const char *dir = tiny_model("idx-100k");
  write_big_index(dir, PS_MODEL_MAX_SHARDS);
  ps_model m = load_ok(dir);
  assert_int_equal(m.weight_bytes, 123456);

  dir = tiny_model("idx-100k-plus-1");
  write_big_index(dir, PS_MODEL_MAX_SHARDS + 1);
  load_fails(dir, "/model.safetensors.index.json: weight_map: more than 100000 shard files");
}

static void test_index_confined(void **state) {
  (void)state;
  static const char *const bad[] = {
      "../../../../etc/passwd", "/etc/passwd", "a/../../x", "./x.safetensors", "", "a//b", "sub/"};
  char index[512], rest[512], shown[128];
  for (size_t i = 0; i < PS_ARRAY_LEN(bad); i++) {
    char name[32];
    snprintf(name, sizeof(name), "conf-%zu", i);
    snprintf(index, sizeof(index), "{\"weight_map\": {\"w\": \"%s\"}}", bad[i]);
    const char *dir = tiny_model_index(name, index);
    snprintf(rest, sizeof(rest),
             "/model.safetensors.index.json: weight_map: '%s' is not a file inside the model "
             "directory",
             ps__printable(bad[i], shown, sizeof(shown)));
    load_fails(dir, rest);
  }
  /* A subdirectory that is a symlink out of the model directory. */
  const char *dir = tiny_model("conf-link");
  char link[PATH_MAX * 3];
  snprintf(link, sizeof(link), "%s/sub", dir);
  assert_int_equal(symlink("/etc", link), 0);
  write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"w\": \"sub/passwd\"}}");
  load_fails(dir, "/model.safetensors.index.json: weight_map: 'sub/passwd' is not a file inside "
                  "the model directory");
  /* A control character in the name stays out of the one-line message. */
  dir = tiny_model_index("conf-newline", "{\"weight_map\": {\"w\": \"../a\\nb\"}}");
  load_fails(dir, "/model.safetensors.index.json: weight_map: '../a\\x0Ab' is not a file inside "
                  "the model directory");
  /* A real subdirectory inside is fine. */
  dir = tiny_model("conf-sub");
  char sub[PATH_MAX * 3];
  snprintf(sub, sizeof(sub), "%s", new_dir("conf-sub/shards"));
  dir = new_dir("conf-sub");
  write_st(sub, "a.safetensors",
           "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4);
  write_text(dir, "model.safetensors.index.json",
             "{\"weight_map\": {\"w\": \"shards/a.safetensors\"}}");
  assert_int_equal(load_ok(dir).weight_bytes, 4);
}

static void test_index_absurd_sizes(void **state) {
  (void)state;
  const char *dir = tiny_model_index(
      "idx-huge", "{\"metadata\": {\"total_size\": 4611686018427387904}, \"weight_map\": {}}");
  load_fails(dir, "/model.safetensors.index.json: metadata.total_size: 4611686018427387904 is "
                  "absurd (more than 1125899906842624; no model is that large)");
  dir = tiny_model_index(
      "idx-params",
      "{\"metadata\": {\"total_size\": 10, \"total_parameters\": 9000000000000000000}}");
  load_fails(dir, "/model.safetensors.index.json: metadata.total_parameters: 9000000000000000000 "
                  "is absurd (more than 1125899906842624; no model is that large)");
}

/* ---- safetensors ------------------------------------------------------------------- */

static void test_safetensors_sizes(void **state) {
  (void)state;
  /* 100 bytes whose header claims 1.8 TB of data. */
  const char *dir =
      tiny_model_st("st-claims",
                    "{\"w\": {\"dtype\": \"U8\", \"shape\": [1800000000000], \"data_offsets\": [0, "
                    "1800000000000]}}",
                    0);
  load_fails(dir, "/model.safetensors: offset 92: the tensors need 1800000000000 bytes of data, "
                  "but the file has 0 after the header (cut short: an interrupted download?)");
  /* Bytes after the last tensor. */
  dir = tiny_model_st(
      "st-extra", "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 6);
  load_fails(dir, "/model.safetensors: offset 70: the tensors need 4 bytes of data, but the file "
                  "has 6 after the header (bytes no tensor describes)");
  /* A header claiming more than any model, checked before the file: each tensor at the cap,
   * together twice that; then one tensor over the cap on its own. */
  const char hdr[] = "{\"a\": {\"dtype\": \"U8\", \"shape\": [1125899906842624], "
                     "\"data_offsets\": [0, 1125899906842624]}, "
                     "\"b\": {\"dtype\": \"U8\", \"shape\": [1125899906842624], "
                     "\"data_offsets\": [1125899906842624, 2251799813685248]}}";
  ps__st_sum sum;
  assert_int_equal(parse_st_header(hdr, &sum), PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx),
                      "x.st: offset 8: the tensors claim 2251799813685248 bytes of data; no model "
                      "is that large (at most 1125899906842624)");
  const char one[] = "{\"w\": {\"dtype\": \"U8\", \"shape\": [4611686018427387904], "
                     "\"data_offsets\": [0, 4611686018427387904]}}";
  assert_int_equal(parse_st_header(one, &sum), PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "x.st: offset 9: tensor 'w': 4611686018427387904 "
                                         "elements; no model is that large (at most "
                                         "1125899906842624)");
}

static void test_safetensors_tiling(void **state) {
  (void)state;
  /* Listed out of order, tiling exactly: fine. */
  const char *dir =
      tiny_model_st("st-order",
                    "{\"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [4, 8]}, "
                    "\"e\": {\"dtype\": \"BF16\", \"shape\": [0], \"data_offsets\": [8, 8]}, "
                    "\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}",
                    8);
  assert_int_equal(load_ok(dir).weight_bytes, 8);
  /* Overlapping. */
  dir = tiny_model_st("st-overlap",
                      "{\"a\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 8]}, "
                      "\"b\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [4, 12]}}",
                      12);
  load_fails(dir, "/model.safetensors: offset 71: tensor 'b': data starts at byte 4, inside "
                  "tensor 'a' (which ends at 8): tensors must not overlap");
  /* Nested: b lies wholly inside a. */
  dir = tiny_model_st("st-nested",
                      "{\"a\": {\"dtype\": \"BF16\", \"shape\": [6], \"data_offsets\": [0, 12]}, "
                      "\"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [4, 8]}}",
                      12);
  load_fails(dir, "/model.safetensors: offset 72: tensor 'b': data starts at byte 4, inside "
                  "tensor 'a' (which ends at 12): tensors must not overlap");
}

/* ---- config ------------------------------------------------------------------------ */

static void test_config_absurd(void **state) {
  (void)state;
  ps_model m;
  const char *experts =
      "{\"num_hidden_layers\": 2, \"hidden_size\": 8, \"num_attention_heads\": 2, "
      "\"num_local_experts\": 1073741824, \"num_experts_per_tok\": 2}";
  assert_int_equal(ps__model_parse_config(ctx, experts, strlen(experts), "cfg.json", &m),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx),
                      "cfg.json: num_local_experts: 1073741824 is too large (at most 65536)");
  /* Every figure in range, their product a petabyte and more. */
  const char *wide = "{\"num_hidden_layers\": 1000000, \"hidden_size\": 1000000, "
                     "\"num_attention_heads\": 1, \"intermediate_size\": 1000000}";
  assert_int_equal(ps__model_parse_config(ctx, wide, strlen(wide), "cfg.json", &m),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx),
                      "cfg.json: the shapes describe 1.4e+19 bytes of weights; no model is that "
                      "large (at most 1125899906842624)");
  assert_int_equal(ps_test_model_synthetic(ctx, 0, NULL, 2e6, &m), PS_ERR_INVALID_ARG);
}

/* ---- the plan -------------------------------------------------------------------------- */

static ps_report *eight_gpus(void) {
  static const char topo[] = "\tGPU0\tGPU1\nGPU0\t X \tNV4\nGPU1\tNV4\t X \n";
  ps_report *r = NULL;
  assert_int_equal(ps_import_topology_text(ctx, topo, sizeof(topo) - 1, "t", &r), PS_OK);
  double gib = 80;
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, &gib, 1), PS_OK);
  return r;
}

static void test_plan_never_wraps(void **state) {
  (void)state;
  ps_report *r = eight_gpus();
  /* Weights a hair under 2^64 (a struct built by hand): weights + overhead must not wrap. */
  ps_model m = {.weight_bytes = UINT64_MAX - (1ull << 20), .dtype_bytes = 2};
  ps_plan_request req = {.size = sizeof(req), .model = &m};
  ps_plan *p = NULL;
  assert_int_equal(ps_plan_make(ctx, r, &req, &p), PS_OK);
  assert_false(p->feasible);
  ps_plan_free(p);
  ps_report_free(r);
}

static void test_plan_emitters(void **state) {
  (void)state;
  ps_report *r = eight_gpus();
  ps_model m = {.weight_bytes = 1ull << 30, .dtype_bytes = 2, .num_layers = 0};
  static const char *const paths[] = {"m\ntrust-remote-code: true", "-evil", "q'\"$(id)`x`\x1b[2J",
                                      "--trust-remote-code"};
  for (size_t i = 0; i < PS_ARRAY_LEN(paths); i++) {
    ps_plan_request req = {.size = sizeof(req), .model = &m, .model_path = paths[i]};
    ps_plan *p = NULL;
    assert_int_equal(ps_plan_make(ctx, r, &req, &p), PS_OK);
    assert_true(p->feasible);
    if (paths[i][0] == '-') {
      char want[64];
      snprintf(want, sizeof(want), "./%s", paths[i]);
      assert_string_equal(p->model_arg, want);
    }
    for (int f = PS_PLAN_TEXT; f <= PS_PLAN_YAML; f++) {
      char *out = NULL;
      assert_int_equal(ps_plan_write(ctx, p, (ps_plan_format)f, &out), PS_OK);
      /* No line starts a key or an option, and comments hold no control character. (A shell
       * word may span lines inside its single quotes: tests/cli/test_input_cli.py runs it.) */
      bool shell = f == PS_PLAN_SHELL || f == PS_PLAN_ARGS;
      for (char *line = out; line && *line;) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (!shell &&
            (strncmp(line, "trust-remote-code", 17) == 0 || strncmp(line, "--trust", 7) == 0))
          fail_msg("format %d injected: %.*s", f, (int)n, line);
        for (size_t k = 0; line[0] == '#' && k < n; k++)
          if ((unsigned char)line[k] < 0x20 && line[k] != '\t')
            fail_msg("format %d: control character in a comment: %.*s", f, (int)n, line);
        line = end ? end + 1 : NULL;
      }
      ps_free(out);
    }
    ps_plan_free(p);
  }
  ps_report_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checked_arithmetic),
      cmocka_unit_test(test_strset),
      cmocka_unit_test(test_printable),
      cmocka_unit_test(test_tmpdir_remove_tree),
      cmocka_unit_test(test_tmpfile_removed_on_signal),
      cmocka_unit_test(test_index_many_shards),
      cmocka_unit_test(test_index_confined),
      cmocka_unit_test(test_index_absurd_sizes),
      cmocka_unit_test(test_safetensors_sizes),
      cmocka_unit_test(test_safetensors_tiling),
      cmocka_unit_test(test_config_absurd),
      cmocka_unit_test(test_plan_never_wraps),
      cmocka_unit_test(test_plan_emitters),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
