/* safetensors data ranges: the tensors must tile the data from 0 with no gap or overlap, in
 * whatever order the header lists them (JSON objects have none). Out of order but contiguous
 * is valid; overlapping, nested, repeated and gapped ranges are refused, naming the tensor. */
#include <stdio.h>
#include <string.h>

#include "support.h"

#include "model/model.h"

static ps_ctx *ctx;

static ps_status parse(const char *header, ps__st_sum *sum) {
  static unsigned char buf[4096];
  size_t n = strlen(header);
  assert_true(n + 8 <= sizeof(buf));
  memset(buf, 0, 8);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(buf + 8, header, n);
  return ps__safetensors_parse_header(ctx, buf, 8 + n, "x.st", sum);
}

static void valid(const char *header, uint64_t data_bytes, uint64_t tensors, uint64_t params) {
  ps__st_sum sum;
  ps_status st = parse(header, &sum);
  if (st != PS_OK) fail_msg("%s: %s", header, ps_ctx_error(ctx));
  assert_int_equal(sum.data_bytes, data_bytes);
  assert_int_equal(sum.tensors, tensors);
  assert_int_equal(sum.params, params);
}

static void refused(const char *header, const char *message) {
  ps__st_sum sum;
  ps_status st = parse(header, &sum);
  if (st != PS_ERR_BAD_INPUT) fail_msg("%s: %s, expected refused", header, ps_status_name(st));
  assert_string_equal(ps_ctx_error(ctx), message);
  assert_int_equal(sum.data_bytes, 0); /* nothing half-filled */
  assert_int_equal(sum.tensors, 0);
}

#define T(name, dtype, shape, b, e)                                                                \
  "\"" name "\": {\"dtype\": \"" dtype "\", \"shape\": " shape ", \"data_offsets\": [" #b ", " #e  \
  "]}"

static void test_out_of_order(void **state) {
  (void)state;
  /* Listed last to first, and the middle one first. */
  valid("{" T("c", "F32", "[4]", 20, 36) ", " T("b", "BF16", "[4]", 12,
                                                20) ", " T("a", "BF16", "[2, 3]", 0, 12) "}",
        36, 3, 14);
  valid("{" T("b", "BF16", "[4]", 12, 20) ", " T("a", "BF16", "[2, 3]", 0,
                                                 12) ", " T("c", "F32", "[4]", 20, 36) "}",
        36, 3, 14);
  /* Empty tensors may sit at any boundary, even where another begins. */
  valid("{" T("b", "BF16", "[4]", 8, 16) ", " T("e", "BF16", "[0]", 8, 8) ", " T(
            "a", "BF16", "[4]", 0, 8) ", " T("z", "F32", "[0]", 0, 0) "}",
        16, 4, 8);
}

static void test_overlap_and_nesting(void **state) {
  (void)state;
  /* b starts inside a: the data size would come out 4 bytes short. */
  refused("{" T("a", "BF16", "[4]", 0, 8) ", " T("b", "BF16", "[4]", 4, 12) "}",
          "x.st: offset 71: tensor 'b': data starts at byte 4, inside tensor 'a' (which ends at "
          "8): tensors must not overlap");
  /* The same, listed the other way round. */
  refused("{" T("b", "BF16", "[4]", 4, 12) ", " T("a", "BF16", "[4]", 0, 8) "}",
          "x.st: offset 9: tensor 'b': data starts at byte 4, inside tensor 'a' (which ends at 8): "
          "tensors must not overlap");
  /* b lies wholly inside a. */
  refused("{" T("a", "F32", "[4]", 0, 16) ", " T("b", "BF16", "[2]", 4, 8) "}",
          "x.st: offset 71: tensor 'b': data starts at byte 4, inside tensor 'a' (which ends at "
          "16): tensors must not overlap");
  /* Two tensors on the same bytes. */
  refused("{" T("a", "BF16", "[4]", 0, 8) ", " T("b", "U16", "[4]", 0, 8) "}",
          "x.st: offset 71: tensor 'b': data starts at byte 0, inside tensor 'a' (which ends at "
          "8): tensors must not overlap");
  /* A gap before the first tensor. */
  refused("{" T("a", "BF16", "[4]", 4, 12) "}",
          "x.st: offset 9: tensor 'a': data starts at byte 4, expected 0 (tensors must tile "
          "the data with no gap or overlap)");
}

static void test_range_sizes(void **state) {
  (void)state;
  /* A range larger than dtype x shape, as well as a smaller one. */
  refused("{" T("w", "BF16", "[2, 3]", 0, 14) "}",
          "x.st: offset 9: tensor 'w': data_offsets [0, 14] hold 14 bytes, but 6 elements of "
          "BF16 need 12");
  refused("{" T("w", "BF16", "[2, 3]", 0, 10) "}",
          "x.st: offset 9: tensor 'w': data_offsets [0, 10] hold 10 bytes, but 6 elements of "
          "BF16 need 12");
}

int main(void) {
  ctx = ps_ctx_new();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_out_of_order),
      cmocka_unit_test(test_overlap_and_nesting),
      cmocka_unit_test(test_range_sizes),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ps_ctx_free(ctx);
  return failed;
}
