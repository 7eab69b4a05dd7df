/* The all-reduce part of `peerscope bench`'s text: one table per group of GPUs, data type,
 * launch mode and NCCL environment, a row per size, NCCL and peerscope's one-shot kernel side
 * by side so the speed-up reads off one line. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"

static bool is_nccl(const ps_bench_result *r) { return r->kind == PS_BENCH_ALLREDUCE_NCCL; }
static bool is_oneshot(const ps_bench_result *r) { return r->kind == PS_BENCH_ALLREDUCE_ONESHOT; }

/* Same GPUs, ranks, data type and launch mode: the one-shot kernel's comparison. */
static bool same_group(const ps_bench_result *a, const ps_bench_result *b) {
  if (a->ranks != b->ranks || a->virtual_ranks != b->virtual_ranks || a->graph != b->graph ||
      strncmp(a->dtype, b->dtype, sizeof(a->dtype)) != 0)
    return false;
  for (int k = 0; k < a->ranks && k < PS_BENCH_MAX_RANKS; k++)
    if (a->group[k] != b->group[k]) return false;
  return true;
}

static bool same_env(const ps_bench_result *a, const ps_bench_result *b) {
  return strncmp(a->env, b->env, sizeof(a->env)) == 0;
}

/* A table: its first result stands for its group (and NCCL environment when nccl). */
typedef struct table {
  const ps_bench_result *key;
  bool nccl;
} table;

static bool in_table(const table *t, const ps_bench_result *r) {
  if (is_oneshot(r)) return same_group(t->key, r);
  return is_nccl(r) && t->nccl && same_group(t->key, r) && same_env(t->key, r);
}

/* NCCL's tables (one per group and environment), then one per group only the one-shot kernel
 * measured. */
static int find_tables(const ps_bench *bench, table *tables) {
  int n = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < bench->count; i++) {
      const ps_bench_result *r = &bench->results[i];
      if (pass == 0 ? !is_nccl(r) : !is_oneshot(r)) continue;
      bool known = false;
      for (int t = 0; t < n && !known; t++)
        known = pass == 0 ? in_table(&tables[t], r) : same_group(tables[t].key, r);
      if (!known) tables[n++] = (table){r, pass == 0};
    }
  }
  return n;
}

static void put_title(ps__ebuf *b, const table *t) {
  const ps_bench_result *k = t->key;
  if (k->virtual_ranks && k->ranks > 0) {
    ps__eput(b, "  GPU %d as %d virtual ranks (buffers on one GPU)", k->group[0], k->ranks);
  } else {
    ps__eput(b, "  GPUs ");
    for (int g = 0; g < k->ranks && g < PS_BENCH_MAX_RANKS; g++)
      ps__eput(b, "%s%d", g ? "," : "", k->group[g]);
    ps__eput(b, " (%d ranks)", k->ranks);
  }
  if (k->dtype[0]) ps__eput(b, ", %.*s", (int)sizeof(k->dtype), k->dtype);
  ps__eput(b, ", %s", k->graph ? "CUDA graph" : "eager");
  if (t->nccl)
    ps__eput(b, ", NCCL env %.*s\n", (int)sizeof(k->env), k->env[0] ? k->env : "default");
  else
    ps__eput(b, ", no NCCL measurement\n");
  if (!t->nccl) return;
  /* What NCCL's column compares with: nccl-tests timed the same way (its -w 1 is the default). */
  ps__eput(b, "  compare: %.*s%sall_reduce_perf -g %d -d %s -n %d%s\n", (int)sizeof(k->env),
           strcmp(k->env, "default") != 0 ? k->env : "",
           strcmp(k->env, "default") != 0 && k->env[0] ? " " : "", k->ranks,
           strcmp(k->dtype, "bf16") == 0 ? "bfloat16" : "half", k->iters, k->graph ? " -G 20" : "");
}

/* Time, algbw and busbw of one implementation, or its outcome. */
static void put_three(ps__ebuf *b, const ps_bench_result *r, int us_width) {
  const char *bad = r ? ps__bench_outcome_short(r->outcome) : "-";
  if (bad) {
    ps__eput(b, "%*s%8s%8s", us_width, bad, "-", "-");
    return;
  }
  ps__eput(b, "%*.2f", us_width, r->us_median);
  if (r->gbps > 0)
    ps__eput(b, "%8.1f", r->gbps);
  else
    ps__eput(b, "%8s", "n/a");
  if (r->bus_gbps > 0)
    ps__eput(b, "%8.1f", r->bus_gbps);
  else
    ps__eput(b, "%8s", "n/a");
}

static const ps_bench_result *find(const ps_bench *bench, const table *t, bool nccl,
                                   uint64_t bytes) {
  for (size_t i = 0; i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    if (r->bytes == bytes && (nccl ? is_nccl(r) : is_oneshot(r)) && in_table(t, r)) return r;
  }
  return NULL;
}

static void put_table(ps__ebuf *b, const ps_bench *bench, const table *t, uint64_t *sizes) {
  int n = 0;
  for (size_t i = 0; i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    if (!in_table(t, r)) continue;
    int at = 0;
    while (at < n && sizes[at] < r->bytes)
      at++;
    if (at < n && sizes[at] == r->bytes) continue;
    memmove(&sizes[at + 1], &sizes[at], (size_t)(n - at) * sizeof(*sizes));
    sizes[at] = r->bytes;
    n++;
  }
  put_title(b, t);
  ps__eput(b, "        size   NCCL us   algbw   busbw  one-shot us   algbw   busbw  speed-up\n");
  for (int s = 0; s < n; s++) {
    char size[32], up[32] = "-";
    const ps_bench_result *nc = t->nccl ? find(bench, t, true, sizes[s]) : NULL;
    const ps_bench_result *one = find(bench, t, false, sizes[s]);
    ps__eput(b, "%12s", ps__bench_size(sizes[s], size, sizeof(size)));
    put_three(b, nc, 10);
    put_three(b, one, 13);
    if (nc && one && nc->outcome == PS_BENCH_OK && one->outcome == PS_BENCH_OK &&
        one->us_median > 0 && nc->us_median > 0)
      snprintf(up, sizeof(up), "%.2fx", nc->us_median / one->us_median);
    ps__eput(b, "%10s\n", up);
  }
  ps__eput(b, "\n");
}

void ps__bench_text_allreduce(ps__ebuf *b, const ps_bench *bench) {
  size_t count = 0;
  for (size_t i = 0; i < bench->count; i++)
    count += is_nccl(&bench->results[i]) || is_oneshot(&bench->results[i]);
  if (!count) return;
  table *tables = ps__calloc(count, sizeof(*tables));
  uint64_t *sizes = ps__calloc(count, sizeof(*sizes));
  if (!tables || !sizes) {
    b->failed = true;
  } else {
    ps__eput(b, "All-reduce (sum), per operation: time in us; algbw = bytes / time and busbw = "
                "algbw * 2(n-1)/n\n"
                "  in GB/s (as nccl-tests); the one-shot P2P kernel (two-shot from 512 KiB at 4 "
                "ranks, 256 KiB at 8,\n"
                "  as vLLM picks) against NCCL (ncclAllReduce, one process) in each NCCL "
                "environment shown;\n"
                "  speed-up = NCCL time / one-shot time. Both timed as all_reduce_perf times "
                "NCCL: back-to-back\n"
                "  operations between two host clock readings, the second after a stream "
                "synchronize; CUDA graph:\n"
                "  the operations captured once, the graph launched 20 times (once above 1 "
                "MiB)\n\n");
    int n = find_tables(bench, tables);
    for (int t = 0; t < n; t++)
      put_table(b, bench, &tables[t], sizes);
  }
  ps__free(tables);
  ps__free(sizes);
}
