/* Finding results for the benchmark renderers: the GPU axis, matrix cells, sizes. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"

/* Indexes above this are not GPUs of any report (the reader refuses them). */
#define AXIS_MAX 1024

static void mark(bool *seen, int gpu) {
  if (gpu >= 0 && gpu < AXIS_MAX) seen[gpu] = true;
}

bool ps__bench_axis_make(const ps_bench *bench, ps__bench_axis *axis) {
  axis->n = 0;
  axis->gpus = NULL;
  bool *seen = ps__calloc(AXIS_MAX, sizeof(bool));
  if (!seen) return false;
  for (size_t i = 0; bench->results && i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    mark(seen, r->src);
    mark(seen, r->dst);
    for (int k = 0; k < r->ranks && k < PS_BENCH_MAX_RANKS; k++)
      mark(seen, r->group[k]);
  }
  int n = 0;
  for (int g = 0; g < AXIS_MAX; g++)
    n += seen[g];
  if (n > 0 && !(axis->gpus = ps__calloc((size_t)n, sizeof(int)))) {
    ps__free(seen);
    return false;
  }
  for (int g = 0; g < AXIS_MAX; g++)
    if (seen[g]) axis->gpus[axis->n++] = g;
  ps__free(seen);
  return true;
}

void ps__bench_axis_free(ps__bench_axis *axis) {
  ps__free(axis->gpus);
  axis->gpus = NULL;
  axis->n = 0;
}

int ps__bench_result_gpu(const ps_bench_result *r) {
  if (r->kind == PS_BENCH_H2D) return r->dst >= 0 ? r->dst : r->src; /* host -> GPU */
  return r->src >= 0 ? r->src : r->dst;
}

static bool is_local(ps_bench_kind kind) {
  return kind == PS_BENCH_LOCAL_CE || kind == PS_BENCH_LOCAL_SM || kind == PS_BENCH_H2D ||
         kind == PS_BENCH_D2H;
}

/* The diagonal: a one-GPU kind matches its GPU; P2P does not apply within a GPU. A result
 * with the matrix's direction setting wins over one without. */
static const ps_bench_result *diagonal(const ps_bench *b, const ps__bench_matrix *m, int gpu) {
  const ps_bench_result *fallback = NULL;
  for (size_t i = 0; i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind != m->diag_kind || (m->bytes && r->bytes != m->bytes)) continue;
    bool here = is_local(r->kind) ? ps__bench_result_gpu(r) == gpu : r->src == gpu && r->dst == gpu;
    if (!here) continue;
    if (r->bidirectional == m->bidirectional) return r;
    if (!fallback) fallback = r;
  }
  return fallback;
}

static const ps_bench_result *pair(const ps_bench *b, const ps__bench_matrix *m, int src, int dst) {
  for (size_t i = 0; i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind == m->kind && r->src == src && r->dst == dst && r->p2p == m->p2p &&
        r->bidirectional == m->bidirectional && (!m->bytes || r->bytes == m->bytes))
      return r;
  }
  return NULL;
}

const ps_bench_result *ps__bench_cell(const ps_bench *b, const ps__bench_matrix *m, int src,
                                      int dst) {
  if (!b || !b->results) return NULL;
  if (src == dst) return diagonal(b, m, src);
  const ps_bench_result *r = pair(b, m, src, dst);
  /* Both directions at once is one measurement per pair of GPUs: it fills both cells. */
  if (!r && m->bidirectional) r = pair(b, m, dst, src);
  return r;
}

bool ps__bench_matrix_used(const ps_bench *b, const ps__bench_matrix *m) {
  for (size_t i = 0; b->results && i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind == m->kind && r->src >= 0 && r->dst >= 0 && r->src != r->dst && r->p2p == m->p2p &&
        r->bidirectional == m->bidirectional && (!m->bytes || r->bytes == m->bytes))
      return true;
  }
  return false;
}

const char *ps__bench_outcome_short(ps_bench_outcome outcome) {
  switch (outcome) {
  case PS_BENCH_OK: return NULL;
  case PS_BENCH_WAIVED: return "waived";
  case PS_BENCH_FAILED: return "FAIL";
  case PS_BENCH_HANG: return "HANG";
  case PS_BENCH_WRONG: return "WRONG";
  }
  return "?";
}

const char *ps__bench_size(uint64_t bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, len, "%llu %s", (unsigned long long)bytes, units[u]);
  return buf;
}

int ps__bench_sizes(const ps_bench *b, ps_bench_kind kind, uint64_t *sizes, int cap) {
  int n = 0;
  for (size_t i = 0; b->results && i < b->count; i++) {
    const ps_bench_result *r = &b->results[i];
    if (r->kind != kind) continue;
    int at = 0;
    while (at < n && sizes[at] < r->bytes)
      at++;
    if ((at < n && sizes[at] == r->bytes) || n == cap) continue;
    memmove(&sizes[at + 1], &sizes[at], (size_t)(n - at) * sizeof(*sizes));
    sizes[at] = r->bytes;
    n++;
  }
  return n;
}
