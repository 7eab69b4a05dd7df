/* The report's JSON form: lossless round trips, nulls for unknown values, canonical bytes
 * for the golden examples, and one exact message per kind of bad input. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "core/internal.h"
#include "report/report_internal.h"

/* ---- a report with every field set ---------------------------------------------------- */

static void set_gpu(ps_gpu *g, int i) {
  g->valid = PS_GPU_NAME | PS_GPU_UUID | PS_GPU_PCI_BUS_ID | PS_GPU_MEMORY_TOTAL |
             PS_GPU_MEMORY_FREE | PS_GPU_COMPUTE_CAP | PS_GPU_NUMA_NODE | PS_GPU_CPU_AFFINITY |
             PS_GPU_PCIE_CURRENT | PS_GPU_PCIE_MAX | PS_GPU_BAR1 | PS_GPU_CUDA_ORDINAL;
  snprintf(g->name, sizeof(g->name), "NVIDIA H100 80GB HBM3 \"%d\" \xc3\xa9", i); /* é */
  snprintf(g->uuid, sizeof(g->uuid), "GPU-5fa3c1d2-0000-4e1b-9c3d-00000000000%d", i);
  snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "00000000:%02X:00.0", 0x18 + i * 0x10);
  g->memory_total_bytes = 85899345920ull + (uint64_t)i;
  g->memory_free_bytes = 85000000000ull - (uint64_t)i;
  g->cc_major = 9;
  g->cc_minor = i;
  g->numa_node = i / 2;
  snprintf(g->cpu_affinity, sizeof(g->cpu_affinity), "%s", i < 2 ? "0-55,112-167" : "56-111");
  g->pcie_gen_current = 4 + (i & 1);
  g->pcie_width_current = 16;
  g->pcie_gen_max = 5;
  g->pcie_width_max = 16 >> i;
  g->bar1_total_bytes = 137438953472ull;
  g->cuda_ordinal = 2 - i;
  g->local_verdict = i == 2 ? PS_VERDICT_CORRUPT : PS_VERDICT_OK;
  if (i == 2) snprintf(g->local_reason, sizeof(g->local_reason), "byte 17 read back as 0x00");
}

static void set_pair(ps_pair *p, int i) {
  p->valid = PS_PAIR_LINK | PS_PAIR_NVLINK | PS_PAIR_CLAIMS | PS_PAIR_CUDA_CLAIM |
             PS_PAIR_COPY_TIME | PS_PAIR_CORRUPT_DETAIL;
  static const ps_link_class links[] = {PS_LINK_NVLINK, PS_LINK_PIX, PS_LINK_SYS,
                                        PS_LINK_NODE,   PS_LINK_PHB, PS_LINK_INTERNAL};
  p->link = links[i % 6];
  p->nvlink_count = p->link == PS_LINK_NVLINK ? 18 : i; /* a count with a PCIe link */
  p->nvlink_version = 4 + i;
  p->nvswitch = i % 2 == 0;
  p->claim_read = (ps_claim)(1 + i % 7);
  p->claim_write = (ps_claim)(1 + (i + 1) % 7);
  p->claim_nvlink = (ps_claim)(1 + (i + 2) % 7);
  p->claim_atomics = (ps_claim)(1 + (i + 3) % 7);
  p->cuda_can_access = i % 3 != 0;
  p->verdict = (ps_verdict)(i % 7);
  p->from_cache = i % 2 == 1;
  snprintf(p->reason, sizeof(p->reason), "reason %d: cuMemcpyPeer took\ttoo long", i);
  snprintf(p->error_name, sizeof(p->error_name), "CUDA_ERROR_%d", i);
  p->corrupt_offset = 4096ull * (uint64_t)i + 1;
  p->corrupt_expected = (uint8_t)(0xab + i);
  p->corrupt_seen = (uint8_t)(0xaa - i);
  p->copy_us = 12.5 + i * 1000.125;
}

static ps_report *full_report(void) {
  ps_report *r = ps__report_new(3);
  assert_non_null(r);
  r->source = PS_SOURCE_FIXTURE;
  snprintf(r->origin, sizeof(r->origin), "tests/fixtures/dgx-h100.topo");
  snprintf(r->machine, sizeof(r->machine), "DGX H100 (fixture)");
  snprintf(r->hostname, sizeof(r->hostname), "node-07");
  snprintf(r->boot_id, sizeof(r->boot_id), "0f6e2a9c-1b1d-4a4e-9f3e-6c1d2b3a4f5e");
  snprintf(r->driver_version, sizeof(r->driver_version), "550.54.15");
  r->cuda_driver_version = 12040;
  snprintf(r->nvml_version, sizeof(r->nvml_version), "12.550.54.15");
  snprintf(r->cuda_visible_devices, sizeof(r->cuda_visible_devices), "2,0,1");
  for (int g = 0; g < r->gpu_count; g++)
    set_gpu(&r->gpus[g], g);
  for (int p = 0; p < r->pair_count; p++)
    set_pair(&r->pairs[p], p);
  r->verified = true;
  r->cache_used = true;
  r->hang_workers = 2;
  r->timings = (ps_timings){1.25, 30.5, 4.001, 250.75, 1024.0, 0.0, 1310.507};
  return r;
}

/* ---- comparing reports ---------------------------------------------------------------- */

#define SAME_INT(a, b, f) assert_int_equal((a)->f, (b)->f)
#define SAME_STR(a, b, f) assert_string_equal((a)->f, (b)->f)
#define SAME_DBL(a, b, f) assert_true((a)->f == (b)->f)

static void assert_same_report(const ps_report *a, const ps_report *b) {
  SAME_INT(a, b, source);
  SAME_STR(a, b, origin);
  SAME_STR(a, b, machine);
  SAME_STR(a, b, hostname);
  SAME_STR(a, b, boot_id);
  SAME_STR(a, b, driver_version);
  SAME_INT(a, b, cuda_driver_version);
  SAME_STR(a, b, nvml_version);
  SAME_STR(a, b, cuda_visible_devices);
  SAME_INT(a, b, gpu_count);
  SAME_INT(a, b, pair_count);
  SAME_INT(a, b, verified);
  SAME_INT(a, b, cache_used);
  SAME_INT(a, b, hang_workers);
  SAME_DBL(a, b, timings.driver_init_ms);
  SAME_DBL(a, b, timings.probe_ms);
  SAME_DBL(a, b, timings.worker_spawn_ms);
  SAME_DBL(a, b, timings.cuda_init_ms);
  SAME_DBL(a, b, timings.contexts_ms);
  SAME_DBL(a, b, timings.copies_ms);
  SAME_DBL(a, b, timings.total_ms);
  for (int i = 0; i < a->gpu_count; i++) {
    const ps_gpu *x = &a->gpus[i], *y = &b->gpus[i];
    uint32_t v = x->valid;
    SAME_INT(x, y, valid);
    SAME_INT(x, y, index);
    if (v & PS_GPU_NAME) SAME_STR(x, y, name);
    if (v & PS_GPU_UUID) SAME_STR(x, y, uuid);
    if (v & PS_GPU_PCI_BUS_ID) SAME_STR(x, y, pci_bus_id);
    if (v & PS_GPU_MEMORY_TOTAL) SAME_INT(x, y, memory_total_bytes);
    if (v & PS_GPU_MEMORY_FREE) SAME_INT(x, y, memory_free_bytes);
    if (v & PS_GPU_COMPUTE_CAP) SAME_INT(x, y, cc_major);
    if (v & PS_GPU_COMPUTE_CAP) SAME_INT(x, y, cc_minor);
    if (v & PS_GPU_NUMA_NODE) SAME_INT(x, y, numa_node);
    if (v & PS_GPU_CPU_AFFINITY) SAME_STR(x, y, cpu_affinity);
    if (v & PS_GPU_PCIE_CURRENT) SAME_INT(x, y, pcie_gen_current);
    if (v & PS_GPU_PCIE_CURRENT) SAME_INT(x, y, pcie_width_current);
    if (v & PS_GPU_PCIE_MAX) SAME_INT(x, y, pcie_gen_max);
    if (v & PS_GPU_PCIE_MAX) SAME_INT(x, y, pcie_width_max);
    if (v & PS_GPU_BAR1) SAME_INT(x, y, bar1_total_bytes);
    if (v & PS_GPU_CUDA_ORDINAL) SAME_INT(x, y, cuda_ordinal);
    SAME_INT(x, y, local_verdict);
    SAME_STR(x, y, local_reason);
  }
  for (int i = 0; i < a->pair_count; i++) {
    const ps_pair *x = &a->pairs[i], *y = &b->pairs[i];
    uint32_t v = x->valid;
    SAME_INT(x, y, valid);
    SAME_INT(x, y, from);
    SAME_INT(x, y, to);
    if (v & PS_PAIR_LINK) SAME_INT(x, y, link);
    if (v & PS_PAIR_NVLINK) SAME_INT(x, y, nvlink_count);
    if (v & PS_PAIR_NVLINK) SAME_INT(x, y, nvlink_version);
    if (v & PS_PAIR_NVLINK) SAME_INT(x, y, nvswitch);
    if (v & PS_PAIR_CLAIMS) SAME_INT(x, y, claim_read);
    if (v & PS_PAIR_CLAIMS) SAME_INT(x, y, claim_write);
    if (v & PS_PAIR_CLAIMS) SAME_INT(x, y, claim_nvlink);
    if (v & PS_PAIR_CLAIMS) SAME_INT(x, y, claim_atomics);
    if (v & PS_PAIR_CUDA_CLAIM) SAME_INT(x, y, cuda_can_access);
    SAME_INT(x, y, verdict);
    SAME_INT(x, y, from_cache);
    SAME_STR(x, y, reason);
    SAME_STR(x, y, error_name);
    if (v & PS_PAIR_CORRUPT_DETAIL) SAME_INT(x, y, corrupt_offset);
    if (v & PS_PAIR_CORRUPT_DETAIL) SAME_INT(x, y, corrupt_expected);
    if (v & PS_PAIR_CORRUPT_DETAIL) SAME_INT(x, y, corrupt_seen);
    if (v & PS_PAIR_COPY_TIME) SAME_DBL(x, y, copy_us);
  }
}

/* ---- helpers ---------------------------------------------------------------------------- */

static char *to_json(const ps_report *r) {
  ps_ctx *ctx = ps_ctx_new();
  char *text = NULL;
  ps_status st = ps_report_to_json(ctx, r, &text);
  if (st != PS_OK) fail_msg("ps_report_to_json: %s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return text;
}

static ps_report *from_json(const char *text) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  ps_status st = ps_report_parse_json(ctx, text, strlen(text), "rig.json", &r);
  if (st != PS_OK) fail_msg("ps_report_parse_json: %s", ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

/* Parsing text must fail with exactly `message`. */
static void expect_error(const char *text, size_t len, const char *message) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = (ps_report *)0x1;
  ps_status st = ps_report_parse_json(ctx, text, len, "rig.json", &r);
  if (st != PS_ERR_BAD_INPUT || strcmp(ps_ctx_error(ctx), message) != 0)
    fail_msg("expected BAD_INPUT \"%s\", got %s \"%s\"", message, ps_status_name(st),
             ps_ctx_error(ctx));
  assert_null(r);
  ps_ctx_free(ctx);
}

static json_t *full_doc(void) {
  ps_report *r = full_report();
  char *text = to_json(r);
  json_error_t err;
  json_t *doc = json_loads(text, 0, &err);
  assert_non_null(doc);
  ps_free(text);
  ps_report_free(r);
  return doc;
}

/* Replaces (value != NULL, stolen) or removes the member at a path like "gpus[1].pcie.gen_max"
 * or "pairs[3]". */
static void edit(json_t *doc, const char *path, json_t *value) {
  struct {
    bool index;
    size_t i;
    char key[64];
  } tok[8];
  int n = 0;
  for (const char *p = path; *p && n < 8; n++) {
    if (*p == '.') p++;
    tok[n].index = *p == '[';
    if (tok[n].index) {
      char *end;
      tok[n].i = strtoul(p + 1, &end, 10);
      p = end + 1; /* past ']' */
    } else {
      size_t len = strcspn(p, ".[");
      snprintf(tok[n].key, sizeof(tok[n].key), "%.*s", (int)len, p);
      p += len;
    }
  }
  json_t *at = doc;
  for (int t = 0; t < n - 1; t++) {
    at = tok[t].index ? json_array_get(at, tok[t].i) : json_object_get(at, tok[t].key);
    if (!at) fail_msg("bad path %s", path);
  }
  const int last = n - 1;
  if (tok[last].index && value)
    json_array_set_new(at, tok[last].i, value);
  else if (tok[last].index)
    json_array_remove(at, tok[last].i);
  else if (value)
    json_object_set_new(at, tok[last].key, value);
  else
    json_object_del(at, tok[last].key);
}

/* The full document with one edit must fail with exactly `message`. */
static void expect_edit_error(const char *path, json_t *value, const char *message) {
  json_t *doc = full_doc();
  edit(doc, path, value);
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  expect_error(text, strlen(text), message);
  free(text);
  json_decref(doc);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_round_trip_full(void **state) {
  (void)state;
  ps_report *r = full_report();
  char *text = to_json(r);
  ps_report *back = from_json(text);
  assert_same_report(r, back);
  /* And the text is canonical: writing what was read gives the same bytes. */
  char *again = to_json(back);
  assert_string_equal(text, again);
  assert_int_equal(text[strlen(text) - 1], '\n');
  assert_non_null(strstr(text, "\n  \"schema\": \"peerscope.topology/1\",\n"));
  assert_non_null(strstr(text, "\"link\": \"NV18\""));
  assert_non_null(strstr(text, "\"copy_us\": 1012.625"));
  assert_non_null(strstr(text, "\"compute_capability\": \"9.1\""));
  ps_free(text);
  ps_free(again);
  ps_report_free(back);
  ps_report_free(r);
}

static void test_round_trip_nulls(void **state) {
  (void)state;
  ps_report *r = ps__report_new(2); /* nothing known */
  char *text = to_json(r);
  ps_report *back = from_json(text);
  assert_same_report(r, back);
  assert_int_equal(back->gpus[0].numa_node, -1);
  assert_int_equal(back->gpus[1].cuda_ordinal, -1);
  assert_true(back->pairs[0].copy_us < 0);
  assert_true(back->timings.total_ms < 0);

  /* Unknown is null, never 0 or "". */
  assert_null(strstr(text, "\"\""));
  json_t *doc = json_loads(text, 0, NULL);
  const json_t *gpu = json_array_get(json_object_get(doc, "gpus"), 0);
  static const char *const gpu_nulls[] = {"name",
                                          "uuid",
                                          "pci_bus_id",
                                          "memory_total_bytes",
                                          "memory_free_bytes",
                                          "compute_capability",
                                          "numa_node",
                                          "cpu_affinity",
                                          "bar1_total_bytes",
                                          "cuda_ordinal"};
  for (size_t i = 0; i < sizeof(gpu_nulls) / sizeof(gpu_nulls[0]); i++)
    assert_true(json_is_null(json_object_get(gpu, gpu_nulls[i])));
  const json_t *pcie = json_object_get(gpu, "pcie");
  assert_int_equal(json_object_size(pcie), 4);
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)pcie, key, value) assert_true(json_is_null(value));
  const json_t *pair = json_array_get(json_object_get(doc, "pairs"), 0);
  static const char *const pair_nulls[] = {"link",       "link_class",      "nvlink",
                                           "claims",     "cuda_can_access", "reason",
                                           "error_name", "corrupt",         "copy_us"};
  for (size_t i = 0; i < sizeof(pair_nulls) / sizeof(pair_nulls[0]); i++)
    assert_true(json_is_null(json_object_get(pair, pair_nulls[i])));
  assert_string_equal(json_string_value(json_object_get(pair, "verdict")), "not_run");
  json_object_foreach(json_object_get(doc, "timings_ms"), key, value)
      assert_true(json_is_null(value));
  json_object_foreach(json_object_get(doc, "driver"), key, value) assert_true(json_is_null(value));
  json_object_foreach(json_object_get(doc, "host"), key, value) assert_true(json_is_null(value));
  assert_true(json_is_null(json_object_get(doc, "cuda_visible_devices")));
  json_decref(doc);
  ps_free(text);
  ps_report_free(back);
  ps_report_free(r);
}

/* Valid bits set on values that mean "unknown" still give null, and the reader's defaults. */
static void test_unknown_values_are_null(void **state) {
  (void)state;
  ps_report *r = ps__report_new(2);
  r->gpus[0].valid = PS_GPU_NAME | PS_GPU_NUMA_NODE | PS_GPU_PCIE_CURRENT | PS_GPU_CUDA_ORDINAL;
  r->gpus[0].numa_node = -1;
  r->gpus[0].cuda_ordinal = -1;
  r->gpus[0].pcie_width_current = 8; /* gen unknown, width known */
  ps_pair *p = &r->pairs[0];
  p->valid = PS_PAIR_LINK | PS_PAIR_NVLINK | PS_PAIR_CLAIMS | PS_PAIR_COPY_TIME;
  p->link = PS_LINK_NVLINK;
  p->nvlink_count = 0;
  p->claim_read = PS_CLAIM_OK;
  p->copy_us = -1;
  char *text = to_json(r);
  assert_non_null(strstr(text, "\"name\": null"));
  assert_non_null(strstr(text, "\"numa_node\": null"));
  assert_non_null(strstr(text, "\"gen_current\": null,\n        \"width_current\": 8,"));
  assert_non_null(strstr(text, "\"link\": \"NV\","));
  assert_non_null(strstr(text, "\"version\": null"));
  assert_non_null(strstr(text, "\"write\": null"));
  assert_non_null(strstr(text, "\"copy_us\": null"));
  ps_report *back = from_json(text);
  assert_int_equal(back->gpus[0].valid, PS_GPU_PCIE_CURRENT);
  assert_int_equal(back->gpus[0].pcie_gen_current, 0);
  assert_int_equal(back->gpus[0].pcie_width_current, 8);
  assert_int_equal(back->pairs[0].valid, PS_PAIR_LINK | PS_PAIR_NVLINK | PS_PAIR_CLAIMS);
  assert_int_equal(back->pairs[0].claim_write, PS_CLAIM_UNKNOWN);
  ps_free(text);
  ps_report_free(back);
  ps_report_free(r);
}

static void test_reals_rounded(void **state) {
  (void)state;
  ps_report *r = ps__report_new(0);
  r->timings.total_ms = 1.23456;
  r->timings.probe_ms = 0.0004;
  r->timings.copies_ms = 1e300 * 1e300; /* inf: not a measurement */
  r->timings.contexts_ms = 7;
  char *text = to_json(r);
  assert_non_null(strstr(text, "\"total\": 1.235\n"));
  assert_non_null(strstr(text, "\"probe\": 0.0,"));
  assert_non_null(strstr(text, "\"copies\": null,"));
  assert_non_null(strstr(text, "\"contexts\": 7.0,"));
  assert_non_null(strstr(text, "\"gpus\": [],"));
  ps_report *back = from_json(text);
  assert_true(back->timings.total_ms == 1.235);
  assert_int_equal(back->gpu_count, 0);
  ps_free(text);
  ps_report_free(back);
  ps_report_free(r);
}

static void test_file_round_trip(void **state) {
  (void)state;
  char path[] = "/tmp/peerscope-report-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  ps_report *r = full_report();
  char *text = to_json(r);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *back = NULL;
  assert_int_equal(ps_report_read_json(ctx, path, &back), PS_OK);
  assert_same_report(r, back);
  /* The reader keeps the document's source; it does not record the path it read. */
  assert_int_equal(back->source, PS_SOURCE_FIXTURE);
  assert_string_equal(back->origin, "tests/fixtures/dgx-h100.topo");
  unlink(path);
  ps_ctx_free(ctx);
  ps_free(text);
  ps_report_free(back);
  ps_report_free(r);
}

static void test_write_rejects_unrepresentable(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = ps__report_new(1);
  char *text = (char *)0x1;
  r->gpus[0].valid = PS_GPU_MEMORY_TOTAL;
  r->gpus[0].memory_total_bytes = UINT64_MAX;
  assert_int_equal(ps_report_to_json(ctx, r, &text), PS_ERR_INVALID_ARG);
  assert_null(text);
  assert_string_equal(ps_ctx_error(ctx), "cannot write report: gpus[0].memory_total_bytes: "
                                         "18446744073709551615 does not fit a JSON integer");
  r->gpus[0].valid = PS_GPU_NAME;
  snprintf(r->gpus[0].name, sizeof(r->gpus[0].name), "bad \xff\xfe utf-8");
  assert_int_equal(ps_report_to_json(ctx, r, &text), PS_OK);
  assert_non_null(strstr(text, "\"name\": \"bad ?? utf-8\""));
  ps_free(text);
  r->pair_count = 5;
  assert_int_equal(ps_report_to_json(ctx, r, &text), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx), "report has 5 pairs for 1 GPUs (expected 0)");
  assert_int_equal(ps_report_to_json(ctx, NULL, &text), PS_ERR_INVALID_ARG);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_syntax_errors(void **state) {
  (void)state;
  const char *truncated = "{\n  \"schema\": \"peerscope.topology/1\",\n  \"gpus\": [";
  expect_error(truncated, strlen(truncated), "rig.json:3:11: ']' expected near end of file");
  expect_error("", 0, "rig.json: empty document (not a topology report)");
  expect_error(" \n", 2, "rig.json: empty document (not a topology report)");
  expect_error("{} x", 4, "rig.json:1:4: end of file expected near 'x'");
  expect_error("{\"a\": tru}", 10, "rig.json:1:9: invalid token near 'tru'");
  expect_error("{\"a\":1,\"a\":2}", 13, "rig.json:1:10: duplicate object key near '\"a\"'");
  expect_error("{\"a\":\"\\u0000\"}", 14, "rig.json:1:13: \\u0000 is not allowed in strings");
  expect_error("{\"a\": \"x\0y\"}", 11, "rig.json:1:8: control character 0x0 near '\"x'");
  expect_error("[]", 2, "rig.json: expected a JSON object at the top level");

  /* A real report cut anywhere gives a one-line syntax message with a position. */
  ps_report *r = full_report();
  char *text = to_json(r);
  size_t len = strlen(text);
  for (size_t cut = 1; cut < len - 1; cut += 97) {
    ps_ctx *ctx = ps_ctx_new();
    ps_report *out = NULL;
    assert_int_equal(ps_report_parse_json(ctx, text, cut, "cut.json", &out), PS_ERR_BAD_INPUT);
    assert_null(out);
    assert_true(strncmp(ps_ctx_error(ctx), "cut.json:", 9) == 0);
    assert_null(strchr(ps_ctx_error(ctx), '\n'));
    ps_ctx_free(ctx);
  }
  ps_free(text);
  ps_report_free(r);
}

static void test_schema_errors(void **state) {
  (void)state;
  expect_edit_error("schema", json_string("peerscope.topology/9"),
                    "rig.json: unsupported schema 'peerscope.topology/9' (this peerscope reads "
                    "peerscope.topology/1)");
  expect_edit_error("schema", json_integer(1), "rig.json: schema: expected a string");
  expect_edit_error("schema", NULL,
                    "rig.json: missing key 'schema' (not a peerscope topology report?)");
  expect_edit_error("extra", json_true(), "rig.json: unknown key 'extra'");
  expect_edit_error("timings_ms", NULL, "rig.json: missing key 'timings_ms'");
}

static void test_type_errors(void **state) {
  (void)state;
  expect_edit_error("gpus[1].memory_total_bytes", json_string("80GB"),
                    "rig.json: gpus[1].memory_total_bytes: expected an integer or null");
  expect_edit_error("gpus[0].memory_free_bytes", json_real(1.5),
                    "rig.json: gpus[0].memory_free_bytes: expected an integer or null");
  expect_edit_error("gpus[2].name", json_integer(3),
                    "rig.json: gpus[2].name: expected a string or null");
  expect_edit_error("gpus[0].pcie", json_null(), "rig.json: gpus[0].pcie: expected an object");
  expect_edit_error("gpus", json_object(), "rig.json: gpus: expected an array");
  expect_edit_error("pairs[2]", json_integer(0), "rig.json: pairs[2]: expected an object");
  expect_edit_error("pairs[4].from", json_string("1"),
                    "rig.json: pairs[4].from: expected an integer");
  expect_edit_error("verification.ran", json_integer(1),
                    "rig.json: verification.ran: expected true or false");
  expect_edit_error("pairs[0].cuda_can_access", json_string("yes"),
                    "rig.json: pairs[0].cuda_can_access: expected true, false or null");
  expect_edit_error("pairs[1].copy_us", json_string("fast"),
                    "rig.json: pairs[1].copy_us: expected a number or null");
  expect_edit_error("pairs[1].nvlink", json_array(),
                    "rig.json: pairs[1].nvlink: expected an object or null");
  expect_edit_error("source", json_string("live"), "rig.json: source: expected an object");
}

static void test_key_errors(void **state) {
  (void)state;
  expect_edit_error("gpus[0].uuid", NULL, "rig.json: gpus[0]: missing key 'uuid'");
  expect_edit_error("gpus[0].foo", json_null(), "rig.json: gpus[0]: unknown key 'foo'");
  expect_edit_error("gpus[1].pcie.gen", json_integer(4),
                    "rig.json: gpus[1].pcie: unknown key 'gen'");
  expect_edit_error("pairs[3].corrupt.seen", NULL,
                    "rig.json: pairs[3].corrupt: missing key 'seen'");
  expect_edit_error("pairs[5].from", NULL, "rig.json: pairs[5]: missing key 'from'");
  expect_edit_error("driver.cuda_version", json_integer(12040),
                    "rig.json: driver: unknown key 'cuda_version'");
}

/* The sm and ipc verdicts and the modes that ran travel through JSON; a report written before
 * the modes (no "modes" keys) still reads, as ce only; the reader refuses what is not a mode. */
static void test_modes(void **state) {
  (void)state;
  ps_report *r = full_report();
  r->modes = PS_MODES_ALL;
  r->pairs[1].sm = (ps_mode_result){PS_VERDICT_CORRUPT, false, "kernel on GPU0 storing", ""};
  r->pairs[2].ipc =
      (ps_mode_result){PS_VERDICT_ERROR, true, "CUDA IPC handle: no", "CUDA_ERROR_INVALID_VALUE"};
  r->gpus[2].local_sm = (ps_mode_result){PS_VERDICT_UNAVAILABLE, false, "no kernels", ""};
  char *text = to_json(r);
  ps_report *back = from_json(text);
  assert_int_equal(back->modes, PS_MODES_ALL);
  assert_int_equal(back->pairs[1].sm.verdict, PS_VERDICT_CORRUPT);
  assert_string_equal(back->pairs[1].sm.reason, "kernel on GPU0 storing");
  assert_int_equal(back->pairs[2].ipc.verdict, PS_VERDICT_ERROR);
  assert_true(back->pairs[2].ipc.from_cache);
  assert_string_equal(back->pairs[2].ipc.error_name, "CUDA_ERROR_INVALID_VALUE");
  assert_int_equal(back->gpus[2].local_sm.verdict, PS_VERDICT_UNAVAILABLE);
  assert_true(ps_pair_failed(back, &back->pairs[1]) && !ps_pair_usable(back, &back->pairs[1]));
  ps_report_free(back);
  json_error_t err;
  json_t *doc = json_loads(text, 0, &err);
  edit(doc, "verification.modes", NULL);
  for (size_t i = 0; i < json_array_size(json_object_get(doc, "pairs")); i++)
    json_object_del(json_array_get(json_object_get(doc, "pairs"), i), "modes");
  for (size_t i = 0; i < json_array_size(json_object_get(doc, "gpus")); i++)
    json_object_del(json_object_get(json_array_get(json_object_get(doc, "gpus"), i), "local_copy"),
                    "modes");
  char *old = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  back = from_json(old);
  assert_int_equal(back->modes, PS_MODE_BIT(PS_MODE_CE));
  assert_int_equal(back->pairs[1].sm.verdict, PS_VERDICT_NOT_RUN);
  ps_report_free(back);
  free(old);
  json_decref(doc);
  ps_free(text);
  ps_report_free(r);
  expect_edit_error("pairs[0].modes.sm.verdict", json_string("great"),
                    "rig.json: pairs[0].modes.sm.verdict: unknown verdict 'great' (expected "
                    "not_run, ok, corrupt, error, hang, unsupported, skipped or unavailable)");
  expect_edit_error("pairs[0].modes.ce", json_object(),
                    "rig.json: pairs[0].modes: unknown key 'ce'");
  expect_edit_error("gpus[0].local_copy.modes.ipc.verdict", NULL,
                    "rig.json: gpus[0].local_copy.modes.ipc: missing key 'verdict'");
  expect_edit_error("verification.modes", json_pack("[ss]", "ce", "ce"),
                    "rig.json: verification.modes[1]: mode 'ce' listed twice");
  expect_edit_error("verification.modes", json_pack("[s]", "nvlink"),
                    "rig.json: verification.modes[0]: expected a mode name (ce, sm or ipc)");
}

static void test_value_errors(void **state) {
  (void)state;
  expect_edit_error("pairs[2].verdict", json_string("fine"),
                    "rig.json: pairs[2].verdict: unknown verdict 'fine' (expected not_run, ok, "
                    "corrupt, error, hang, unsupported, skipped or unavailable)");
  expect_edit_error("gpus[1].local_copy.verdict", json_string("OK"),
                    "rig.json: gpus[1].local_copy.verdict: unknown verdict 'OK' (expected "
                    "not_run, ok, corrupt, error, hang, unsupported, skipped or unavailable)");
  expect_edit_error("pairs[0].claims.read", json_string("YES"),
                    "rig.json: pairs[0].claims.read: unknown claim 'YES' (expected OK, CNS, GNS, "
                    "TNS, DIS, NS, U or null)");
  expect_edit_error("pairs[0].link_class", json_string("pcie"),
                    "rig.json: pairs[0].link_class: unknown link class 'pcie' (expected nvlink, "
                    "internal, pix, pxb, phb, node, sys, self, unknown or null)");
  expect_edit_error("pairs[0].link", json_string("NV4"),
                    "rig.json: pairs[0].link: 'NV4' does not match link_class 'nvlink' and "
                    "nvlink.count 18 (expected 'NV18')");
  expect_edit_error("pairs[1].link", json_null(),
                    "rig.json: pairs[1]: link and link_class must both be null or both be set");
  expect_edit_error("source.kind", json_string("cloud"),
                    "rig.json: source.kind: unknown source 'cloud' (expected live, fixture or "
                    "file)");
  expect_edit_error("gpus[0].name", json_string(""),
                    "rig.json: gpus[0].name: empty string (write null for an unknown value)");
  expect_edit_error("gpus[0].compute_capability", json_string("9"),
                    "rig.json: gpus[0].compute_capability: '9' is not major.minor such as '9.0'");
  expect_edit_error("gpus[0].compute_capability", json_string("9.00"),
                    "rig.json: gpus[0].compute_capability: '9.00' is not major.minor such as "
                    "'9.0'");
  expect_edit_error("gpus[2].index", json_integer(0),
                    "rig.json: gpus[2].index: 0 but the GPU is at position 2 (gpus are listed by "
                    "index)");
  expect_edit_error("gpus[0].numa_node", json_integer(-1),
                    "rig.json: gpus[0].numa_node: -1 is below the minimum 0");
  expect_edit_error("gpus[0].pcie.width_max", json_integer(0),
                    "rig.json: gpus[0].pcie.width_max: 0 is below the minimum 1");
  expect_edit_error("gpus[0].cuda_ordinal", json_integer(3000000000LL),
                    "rig.json: gpus[0].cuda_ordinal: 3000000000 is above the maximum 2147483647");
  expect_edit_error("pairs[3].corrupt.seen", json_integer(256),
                    "rig.json: pairs[3].corrupt.seen: 256 is above the maximum 255");
  expect_edit_error("timings_ms.total", json_integer(-1),
                    "rig.json: timings_ms.total: -1 is negative (write null for a value not "
                    "measured)");
  expect_edit_error("verification.hang_workers", json_integer(-2),
                    "rig.json: verification.hang_workers: -2 is below the minimum 0");
  char long_name[200];
  memset(long_name, 'x', sizeof(long_name) - 1);
  long_name[sizeof(long_name) - 1] = '\0';
  expect_edit_error("gpus[1].name", json_string(long_name),
                    "rig.json: gpus[1].name: 199 bytes is too long (at most 95)");
}

static void test_pair_set_errors(void **state) {
  (void)state;
  expect_edit_error("pairs[0].to", json_integer(7),
                    "rig.json: pairs[0].to: no GPU 7 (the report has 3)");
  expect_edit_error("pairs[0].to", json_integer(0), "rig.json: pairs[0]: from and to are both 0");
  expect_edit_error("pairs[5]", NULL, "rig.json: pairs: missing pair 2->1");

  json_t *doc = full_doc();
  json_t *pairs = json_object_get(doc, "pairs");
  json_array_set(pairs, 3, json_array_get(pairs, 1)); /* 0->2 twice, 1->2 missing */
  char *text = json_dumps(doc, 0);
  expect_error(text, strlen(text), "rig.json: pairs[3]: duplicate pair 0->2 (also pairs[1])");
  free(text);
  json_decref(doc);

  /* Pairs in any order read into from-major order. */
  doc = full_doc();
  pairs = json_object_get(doc, "pairs");
  json_t *first = json_incref(json_array_get(pairs, 0));
  json_array_remove(pairs, 0);
  json_array_append_new(pairs, first);
  text = json_dumps(doc, 0);
  ps_report *r = from_json(text), *expect = full_report();
  assert_same_report(expect, r);
  free(text);
  ps_report_free(r);
  ps_report_free(expect);
  json_decref(doc);

  /* Too many GPUs is refused before anything is allocated for them. */
  doc = full_doc();
  json_t *gpus = json_array();
  for (int g = 0; g <= PS_REPORT_MAX_GPUS; g++)
    json_array_append_new(gpus, json_object());
  json_object_set_new(doc, "gpus", gpus);
  text = json_dumps(doc, 0);
  expect_error(text, strlen(text),
               "rig.json: gpus: 65 GPUs is more than one node has (peerscope handles 64 per node)");
  free(text);
  json_decref(doc);
}

static void test_read_file_errors(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = (ps_report *)0x1;
  assert_int_equal(ps_report_read_json(ctx, "/nonexistent/rig.json", &r), PS_ERR_IO);
  assert_null(r);
  assert_string_equal(ps_ctx_error(ctx), "/nonexistent/rig.json: No such file or directory");
  assert_int_equal(ps_report_read_json(ctx, "/", &r), PS_ERR_IO);
  assert_string_equal(ps_ctx_error(ctx), "/: Is a directory");
  assert_int_equal(ps_report_read_json(ctx, NULL, &r), PS_ERR_INVALID_ARG);
  ps_ctx_free(ctx);
}

/* ---- the golden examples -------------------------------------------------------------------- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = calloc((size_t)len + 1, 1);
  assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  return text;
}

/* Names of dir's *.json files, sorted; returns the count. */
static int list_json(const char *dir, char names[][128], int cap) {
  DIR *d = opendir(dir);
  if (!d) fail_msg("%s: %s", dir, strerror(errno));
  int count = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len > 5 && len < 128 && strcmp(e->d_name + len - 5, ".json") == 0 && count < cap)
      memcpy(names[count++], e->d_name, len + 1);
  }
  closedir(d);
  qsort(names, (size_t)count, 128, (int (*)(const void *, const void *))strcmp);
  return count;
}

/* Each valid example reads, and writing it back gives its exact bytes (the generator's version
 * aside): the examples are canonical writer output, which the schema test validates. */
static void test_examples_are_canonical(void **state) {
  (void)state;
  char dir[512], path[700], names[32][128];
  snprintf(dir, sizeof(dir), "%s/tests/golden/examples", ps_test_env("PEERSCOPE_SOURCE_DIR"));
  int count = list_json(dir, names, 32);
  assert_true(count >= 3);
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof(path), "%.511s/%.127s", dir, names[i]);
    ps_ctx *ctx = ps_ctx_new();
    ps_report *r = NULL;
    if (ps_report_read_json(ctx, path, &r) != PS_OK) fail_msg("%s", ps_ctx_error(ctx));
    char *expect = slurp(path), *text = to_json(r);
    char *version = strstr(expect, "\"version\": \"");
    assert_non_null(version);
    char *end = strchr(version + 12, '"');
    char fixed[64];
    snprintf(fixed, sizeof(fixed), "\"version\": \"%s\"", ps_version());
    size_t tail = strlen(end + 1);
    char *canon = calloc(strlen(expect) + sizeof(fixed), 1);
    memcpy(canon, expect, (size_t)(version - expect));
    strcat(canon, fixed);
    memcpy(canon + strlen(canon), end + 1, tail + 1);
    if (strcmp(canon, text) != 0) fail_msg("%s is not what the writer writes for it", names[i]);
    free(canon);
    free(expect);
    ps_free(text);
    ps_report_free(r);
    ps_ctx_free(ctx);
  }
}

/* The examples the schema rejects, the reader rejects too. */
static void test_invalid_examples_rejected(void **state) {
  (void)state;
  char dir[512], path[700], names[64][128];
  snprintf(dir, sizeof(dir), "%s/tests/golden/examples/invalid",
           ps_test_env("PEERSCOPE_SOURCE_DIR"));
  int count = list_json(dir, names, 64);
  assert_true(count >= 3);
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof(path), "%.511s/%.127s", dir, names[i]);
    ps_ctx *ctx = ps_ctx_new();
    ps_report *r = NULL;
    if (ps_report_read_json(ctx, path, &r) != PS_ERR_BAD_INPUT)
      fail_msg("%s was accepted", names[i]);
    assert_null(r);
    ps_ctx_free(ctx);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_full),
      cmocka_unit_test(test_round_trip_nulls),
      cmocka_unit_test(test_unknown_values_are_null),
      cmocka_unit_test(test_reals_rounded),
      cmocka_unit_test(test_file_round_trip),
      cmocka_unit_test(test_write_rejects_unrepresentable),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_schema_errors),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_key_errors),
      cmocka_unit_test(test_value_errors),
      cmocka_unit_test(test_pair_set_errors),
      cmocka_unit_test(test_read_file_errors),
      cmocka_unit_test(test_examples_are_canonical),
      cmocka_unit_test(test_modes),
      cmocka_unit_test(test_invalid_examples_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
