/* Shared by the benchmark renderers (ps_bench_write): a growing output string, the GPUs the
 * results name, and the lookup of one matrix cell. */
#ifndef PS_EMIT_BENCH_EMIT_H
#define PS_EMIT_BENCH_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ebuf.h"
#include "peerscope/peerscope.h"

/* The GPUs that any result names (src, dst or group), ascending: the axes of every matrix,
 * so that a run on GPUs 4-7 of 8 shows 4 x 4. */
typedef struct ps__bench_axis {
  int n;
  int *gpus;
} ps__bench_axis;
bool ps__bench_axis_make(const ps_bench *bench, ps__bench_axis *axis); /* false: no memory */
void ps__bench_axis_free(ps__bench_axis *axis);

/* One source x destination matrix of a kind. The diagonal comes from diag_kind: a local copy
 * for the copy kinds, the kind itself (src == dst) for the latencies. */
typedef struct ps__bench_matrix {
  ps_bench_kind kind, diag_kind;
  bool p2p, bidirectional;
  uint64_t bytes; /* only results of this size; 0 = any */
} ps__bench_matrix;

/* The result for the cell src -> dst, or NULL. */
const ps_bench_result *ps__bench_cell(const ps_bench *bench, const ps__bench_matrix *m, int src,
                                      int dst);
/* Whether any off-diagonal cell of m has a result. */
bool ps__bench_matrix_used(const ps_bench *bench, const ps__bench_matrix *m);
/* The GPU a one-GPU result (local, h2d, d2h) is about, or -1. */
int ps__bench_result_gpu(const ps_bench_result *r);

/* "waived", "FAIL", "HANG", "WRONG" for a result that did not measure; NULL for ok. */
const char *ps__bench_outcome_short(ps_bench_outcome outcome);
/* "4 B", "256 KiB", "1 GiB", "1536 B": exact binary units only. */
const char *ps__bench_size(uint64_t bytes, char *buf, size_t len);
/* The distinct sizes of kind's results, ascending, at most cap; returns how many. */
int ps__bench_sizes(const ps_bench *bench, ps_bench_kind kind, uint64_t *sizes, int cap);

void ps__bench_text(ps__ebuf *b, const ps_report *report);
void ps__bench_text_allreduce(ps__ebuf *b, const ps_bench *bench); /* bench_text_ar.c */
void ps__bench_text_problems(ps__ebuf *b, const ps_bench *bench);  /* bench_problems.c */
void ps__bench_svg(ps__ebuf *b, const ps_report *report);

#endif
