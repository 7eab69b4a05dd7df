/* Model ids: the parser against the Hub's rules, the Hugging Face cache as huggingface_hub lays
 * it out (refs, snapshots, commits given directly, where HF_HUB_CACHE / HF_HOME point), the
 * catalog, and the order they are asked in. No network: every test runs offline. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#include "hub/hub_internal.h"

#define SHA "0123456789abcdef0123456789abcdef01234567"

static ps_ctx *ctx;
static char root[PATH_MAX];

static int setup(void **state) {
  (void)state;
  ctx = ps_ctx_new();
  return ctx && ps_test_scratch_dir("hub", root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ps_ctx_free(ctx);
  return ps_test_remove_tree(root);
}

/* ---- helpers ------------------------------------------------------------------------ */

static void write_file(const char *path, const char *text) {
  char dir[PATH_MAX];
  ps__hub_fmt(dir, sizeof(dir), "%s", path);
  *strrchr(dir, '/') = '\0';
  assert_true(ps__hub_mkdirs(dir));
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *slurp(const char *path) {
  static char buf[64 * 1024];
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static const char *fixture_config(const char *model) {
  static char path[PATH_MAX];
  ps__hub_fmt(path, sizeof(path), "%s/models/%s/config.json", ps_test_env("PEERSCOPE_FIXTURES"),
              model);
  return path;
}

/* <root>/<cache>/models--org--name/{refs/<ref> = SHA, snapshots/SHA/config.json [+ index]} */
static void cache_model(const char *cache, const char *repo_dir, const char *ref, bool index) {
  char path[PATH_MAX];
  ps__hub_fmt(path, sizeof(path), "%s/%s/%s/refs/%s", root, cache, repo_dir, ref);
  write_file(path, SHA);
  ps__hub_fmt(path, sizeof(path), "%s/%s/%s/snapshots/" SHA "/config.json", root, cache, repo_dir);
  write_file(path, slurp(fixture_config("Llama-3.1-8B-Instruct")));
  if (!index) return;
  ps__hub_fmt(path, sizeof(path), "%s/%s/%s/snapshots/" SHA "/model.safetensors.index.json", root,
              cache, repo_dir);
  write_file(path, "{\"metadata\": {\"total_size\": 16060522496}, \"weight_map\": {}}");
}

static ps_model_resolve_opts offline_opts(const char *cache) {
  static char dir[PATH_MAX];
  ps__hub_fmt(dir, sizeof(dir), "%s/%s", root, cache);
  ps_model_resolve_opts o = {
      .size = sizeof(o), .offline = true, .no_catalog = true, .hub_cache = dir};
  return o;
}

/* ---- ids ---------------------------------------------------------------------------- */

static void parses(const char *text, const char *repo, const char *rev) {
  ps_model_id *id = NULL;
  if (ps_model_id_parse(ctx, text, &id) != PS_OK) fail_msg("%s: %s", text, ps_ctx_error(ctx));
  assert_int_equal(id->size, sizeof(*id));
  assert_string_equal(id->repo, repo);
  assert_string_equal(id->revision, rev);
  ps_model_id_free(id);
}

static void refused(const char *text, const char *why) {
  ps_model_id *id = (ps_model_id *)1;
  assert_int_equal(ps_model_id_parse(ctx, text, &id), PS_ERR_BAD_INPUT);
  assert_null(id);
  if (!strstr(ps_ctx_error(ctx), why))
    fail_msg("%s: '%s' lacks '%s'", text, ps_ctx_error(ctx), why);
  assert_non_null(strstr(ps_ctx_error(ctx), "not a Hugging Face model id"));
}

static void test_id_good(void **state) {
  (void)state;
  parses("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "");
  parses("Qwen/Qwen2.5-7B-Instruct@main", "Qwen/Qwen2.5-7B-Instruct", "main");
  parses("org/name@refs/pr/12", "org/name", "refs/pr/12");
  parses("org/name@" SHA, "org/name", SHA);
  parses("_o/n_@v1.0", "_o/n_", "v1.0");
  parses("a.b/c.d", "a.b/c.d", "");
}

static void test_id_bad(void **state) {
  (void)state;
  char long_name[160];
  memset(long_name, 'x', sizeof(long_name));
  ps__hub_fmt(long_name, sizeof(long_name), "org/%0*d", 97, 0);
  refused("noslash", "has no '/'");
  refused("a/b/c", "more than one '/'");
  refused("-a/b", "the organisation must start and end");
  refused("a/b-", "the name must start and end");
  refused("a/", "the name is empty");
  refused("a--b/c", "'--' or '..'");
  refused("a/b..c", "'--' or '..'");
  refused("a/b.git", "'.git'");
  refused("a/b c", "only letters, digits");
  refused("a/\xc3\xa9", "only letters, digits");
  refused(long_name, "longer than 96");
  refused("a/b@", "the revision is empty");
  refused("a/b@x..y", "'..'");
  refused("a/b@.x", "starting with '.'");
  refused("a/b@x.lock", "'.lock'");
  refused("a/b@x y", "spaces");
  refused("a/b@/x", "start or end with '/'");
  refused("a/b@x//y", "'//'");
  refused("a/b@x.", "end with '.'");
  refused("a/b@x:y", "~^:?*[");
}

static void test_id_shape(void **state) {
  (void)state;
  assert_true(ps__hub_id_shaped("a/b"));
  assert_true(ps__hub_id_shaped("a/b@refs/pr/1"));
  assert_true(ps__hub_id_shaped("a--b/c")); /* shaped like one, so refused as an id */
  assert_false(ps__hub_id_shaped("llama"));
  assert_false(ps__hub_id_shaped("./a"));
  assert_false(ps__hub_id_shaped("/models/llama"));
  assert_false(ps__hub_id_shaped("~/llama"));
  assert_false(ps__hub_id_shaped("models/a/b"));
  assert_false(ps__hub_id_shaped("a/"));
  assert_true(ps__hub_is_commit(SHA));
  assert_false(ps__hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
  assert_false(ps__hub_is_commit("main"));
}

/* ---- the HF cache -------------------------------------------------------------------- */

static void test_cache_ref(void **state) {
  (void)state;
  cache_model("hub", "models--org--cached", "main", true);
  ps_model_resolve_opts o = offline_opts("hub");
  ps_model m;
  ps_model_source *src = NULL;
  if (ps_test_model_resolve(ctx, "org/cached", &o, &m, &src) != PS_OK)
    fail_msg("%s", ps_ctx_error(ctx));
  assert_int_equal(src->origin, PS_MODEL_FROM_HF_CACHE);
  assert_string_equal(src->commit, SHA);
  assert_string_equal(src->repo, "org/cached");
  assert_string_equal(m.name, "org/cached");
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_int_equal(m.weight_bytes, 16060522496ull);
  assert_non_null(strstr(src->where, "Hugging Face cache "));
  assert_non_null(strstr(src->where, "(revision " SHA ")"));
  assert_int_equal(src->requests, 0);
  ps_model_source_free(src);
  /* The commit itself needs no ref. */
  assert_int_equal(ps_test_model_resolve(ctx, "org/cached@" SHA, &o, &m, NULL), PS_OK);
}

static void test_cache_misses(void **state) {
  (void)state;
  char path[PATH_MAX];
  cache_model("hub2", "models--org--bare", "main", false); /* config alone: no weights' size */
  ps__hub_fmt(path, sizeof(path), "%s/hub2/models--org--dangling/refs/main", root);
  write_file(path, "ffffffffffffffffffffffffffffffffffffffff"); /* no such snapshot */
  ps_model_resolve_opts o = offline_opts("hub2");
  ps_model m;
  const char *misses[] = {"org/bare", "org/dangling", "org/absent", "org/bare@v2"};
  for (size_t i = 0; i < sizeof(misses) / sizeof(*misses); i++) {
    assert_int_equal(ps_test_model_resolve(ctx, misses[i], &o, &m, NULL), PS_ERR_NETWORK);
    assert_non_null(strstr(ps_ctx_error(ctx), "HF_HUB_OFFLINE"));
    assert_non_null(strstr(ps_ctx_error(ctx), misses[i]));
  }
}

static void test_cache_env(void **state) {
  (void)state;
  char path[PATH_MAX], home[PATH_MAX];
  cache_model("home/hub", "models--org--envmodel", "main", true);
  cache_model("elsewhere", "models--org--other", "main", true);
  ps__hub_fmt(home, sizeof(home), "%s/home", root);
  setenv("HF_HOME", home, 1);
  setenv("HF_HUB_OFFLINE", "1", 1);
  unsetenv("HF_HUB_CACHE");
  ps_model_resolve_opts o = {.size = sizeof(o), .no_catalog = true};
  ps_model m;
  assert_int_equal(ps_test_model_resolve(ctx, "org/envmodel", &o, &m, NULL), PS_OK);
  /* HF_HUB_CACHE wins over HF_HOME. */
  ps__hub_fmt(path, sizeof(path), "%s/elsewhere", root);
  setenv("HF_HUB_CACHE", path, 1);
  assert_int_equal(ps_test_model_resolve(ctx, "org/other", &o, &m, NULL), PS_OK);
  assert_int_equal(ps_test_model_resolve(ctx, "org/envmodel", &o, &m, NULL), PS_ERR_NETWORK);
  unsetenv("HF_HUB_CACHE");
  unsetenv("HF_HOME");
  unsetenv("HF_HUB_OFFLINE");
}

static void test_cache_write(void **state) {
  (void)state;
  char cache[PATH_MAX], path[PATH_MAX], target[PATH_MAX] = "";
  ps__hub_fmt(cache, sizeof(cache), "%s/written", root);
  ps__hub_env env;
  ps_model_resolve_opts o = {.size = sizeof(o), .hub_cache = cache, .no_catalog = true};
  ps__hub_env_read(ctx, &o, &env);
  const char *etag = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
  assert_int_equal(ps__hub_cache_put(ctx, &env, "o/n", SHA, "config.json", etag, "{}", 2), PS_OK);
  assert_int_equal(ps__hub_cache_ref(ctx, &env, "o/n", "refs/pr/1", SHA), PS_OK);
  ps__hub_fmt(path, sizeof(path), "%s/models--o--n/snapshots/" SHA "/config.json", cache);
  assert_true(readlink(path, target, sizeof(target) - 1) > 0);
  assert_string_equal(target, "../../blobs/4b825dc642cb6eb9a060e54bf8d69288fbee4904");
  assert_string_equal(slurp(path), "{}");
  ps__hub_fmt(path, sizeof(path), "%s/models--o--n/refs/refs/pr/1", cache);
  assert_string_equal(slurp(path), SHA);
  /* No etag: a plain file. */
  assert_int_equal(ps__hub_cache_put(ctx, &env, "o/n", SHA, "x.json", "", "[]", 2), PS_OK);
  ps__hub_fmt(path, sizeof(path), "%s/models--o--n/snapshots/" SHA "/x.json", cache);
  struct stat sb;
  assert_int_equal(lstat(path, &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
}

/* ---- the catalog and the order -------------------------------------------------------- */

static void make_catalog(const char *dir, const char *rev) {
  char path[PATH_MAX], text[512];
  ps__hub_fmt(path, sizeof(path), "%s/%s/org--listed/config.json", root, dir);
  write_file(path, slurp(fixture_config("Qwen2.5-7B-Instruct")));
  ps__hub_fmt(path, sizeof(path), "%s/%s/org--listed/peerscope-catalog.json", root, dir);
  ps__hub_fmt(text, sizeof(text),
              "{\"id\": \"org/listed\", \"revision\": \"%s\", \"total_size\": 15231233024}", rev);
  write_file(path, text);
  ps__hub_fmt(path, sizeof(path), "%s/%s/org--broken/peerscope-catalog.json", root, dir);
  write_file(path, "{\"id\": \"org/other\"}");
}

static void test_catalog(void **state) {
  (void)state;
  char dir[PATH_MAX];
  make_catalog("catalog", SHA);
  ps__hub_fmt(dir, sizeof(dir), "%s/catalog", root);
  ps_model_resolve_opts o = offline_opts("empty-cache");
  o.no_catalog = false;
  o.catalog = dir;
  ps_model m;
  ps_model_source *src = NULL;
  if (ps_test_model_resolve(ctx, "org/listed", &o, &m, &src) != PS_OK)
    fail_msg("%s", ps_ctx_error(ctx));
  assert_int_equal(src->origin, PS_MODEL_FROM_CATALOG);
  assert_string_equal(src->where, "peerscope catalog (source revision " SHA ")");
  assert_int_equal(m.weight_bytes, 15231233024ull);
  assert_true(m.valid & PS_MODEL_WEIGHTS_EXACT);
  assert_int_equal(m.num_kv_heads, 4);
  assert_string_equal(m.name, "org/listed");
  ps_model_source_free(src);
  assert_int_equal(ps_test_model_resolve(ctx, "org/listed@" SHA, &o, &m, NULL), PS_OK);
  assert_int_equal(ps_test_model_resolve(ctx, "org/listed@v2", &o, &m, NULL), PS_ERR_NETWORK);
  assert_int_equal(ps_test_model_resolve(ctx, "org/broken", &o, &m, NULL), PS_ERR_BAD_INPUT);
  /* The cache answers before the catalog. */
  cache_model("empty-cache", "models--org--listed", "main", true);
  assert_int_equal(ps_test_model_resolve(ctx, "org/listed", &o, &m, &src), PS_OK);
  assert_int_equal(src->origin, PS_MODEL_FROM_HF_CACHE);
  ps_model_source_free(src);
  char **ids = NULL;
  size_t count = 0;
  assert_int_equal(ps_model_catalog_ids(ctx, dir, &ids, &count), PS_OK);
  assert_int_equal(count, 1);
  assert_string_equal(ids[0], "org/listed");
  ps_free(ids);
}

static void test_directory_and_args(void **state) {
  (void)state;
  char dir[PATH_MAX];
  ps__hub_fmt(dir, sizeof(dir), "%s/models/Llama-3.1-70B-Instruct",
              ps_test_env("PEERSCOPE_FIXTURES"));
  ps_model m;
  ps_model_source *src = NULL;
  assert_int_equal(ps_test_model_resolve(ctx, dir, NULL, &m, &src), PS_OK);
  assert_int_equal(src->origin, PS_MODEL_FROM_DIRECTORY);
  assert_string_equal(src->where, "local directory");
  assert_string_equal(src->given, dir);
  ps_model_source_free(src);
  /* A relative directory shaped like an id is still a directory when it exists. */
  assert_int_equal(chdir(ps_test_env("PEERSCOPE_FIXTURES")), 0);
  assert_int_equal(ps_test_model_resolve(ctx, "models/Llama-3.1-8B-Instruct", NULL, &m, NULL),
                   PS_OK);
  ps_model_resolve_opts bad = {0};
  assert_int_equal(ps_test_model_resolve(ctx, "a/b", &bad, &m, NULL), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_test_model_resolve(ctx, "", NULL, &m, NULL), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_test_model_resolve(ctx, "a--b/c", NULL, &m, NULL), PS_ERR_BAD_INPUT);
  assert_int_equal(ps_test_model_resolve(ctx, "/no/such/model", NULL, &m, NULL), PS_ERR_NOT_FOUND);
  assert_string_equal(ps_model_origin_name(PS_MODEL_FROM_HUB), "Hugging Face Hub");
  assert_string_equal(ps_status_name(PS_ERR_NETWORK), "ERR_NETWORK");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_id_good),
      cmocka_unit_test(test_id_bad),
      cmocka_unit_test(test_id_shape),
      cmocka_unit_test(test_cache_ref),
      cmocka_unit_test(test_cache_misses),
      cmocka_unit_test(test_cache_env),
      cmocka_unit_test(test_cache_write),
      cmocka_unit_test(test_catalog),
      cmocka_unit_test(test_directory_and_args),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
