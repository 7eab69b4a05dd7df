/* The "Waived / failed" list of `peerscope bench`'s text: one line per problem, and one line
 * for many results that share a reason, also when only the GPUs it names differ (a machine
 * without P2P refuses every pair: one line, not 12). */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"

#define REASON_LEN sizeof(((ps_bench_result *)0)->reason)

/* A reason on one line: line breaks and tabs (a driver's message) become spaces. */
static void put_reason(ps__ebuf *b, const char *reason) {
  size_t len = strnlen(reason, REASON_LEN);
  if (!len) ps__eput(b, "(no reason given)");
  for (size_t i = 0; i < len; i++) {
    char c = reason[i];
    ps__eput(b, "%c", c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
}

/* The reason with every "GPU <n>" as "GPU *": the key that groups the same problem. */
static void mask_gpus(const char *reason, char *out) {
  size_t len = strnlen(reason, REASON_LEN), n = 0;
  for (size_t i = 0; i < len && n + 1 < REASON_LEN; i++) {
    bool after_gpu = n >= 4 && memcmp(out + n - 4, "GPU ", 4) == 0;
    if (after_gpu && reason[i] >= '0' && reason[i] <= '9') {
      while (i + 1 < len && reason[i + 1] >= '0' && reason[i + 1] <= '9')
        i++;
      out[n++] = '*';
    } else {
      out[n++] = reason[i];
    }
  }
  out[n] = '\0';
}

/* "copy_ce 0->1 P2P on", "h2d GPU 2", "allreduce_nccl GPUs 0,1 fp16 1 MiB". */
static void put_what(ps__ebuf *b, const ps_bench_result *r) {
  char size[32];
  ps__eput(b, "%s", ps_bench_kind_name(r->kind));
  if (r->ranks > 0) {
    ps__eput(b, " GPUs ");
    for (int k = 0; k < r->ranks && k < PS_BENCH_MAX_RANKS; k++)
      ps__eput(b, "%s%d", k ? "," : "", r->group[k]);
  } else if (r->src >= 0 && r->dst >= 0 && r->src != r->dst) {
    ps__eput(b, " %d->%d P2P %s", r->src, r->dst, r->p2p ? "on" : "off");
  } else if (ps__bench_result_gpu(r) >= 0) {
    ps__eput(b, " GPU %d", ps__bench_result_gpu(r));
  }
  if (r->bidirectional) ps__eput(b, " both ways");
  if (r->dtype[0]) ps__eput(b, " %.*s", (int)sizeof(r->dtype), r->dtype);
  if (r->env[0]) ps__eput(b, " %.*s", (int)sizeof(r->env), r->env);
  if (r->bytes && r->kind != PS_BENCH_COPY_CE && r->kind != PS_BENCH_LOCAL_CE)
    ps__eput(b, " %s", ps__bench_size(r->bytes, size, sizeof(size)));
}

/* One group: the results from `first` on with its outcome and masked reason. */
static void put_group(ps__ebuf *b, const ps_bench *bench, char (*keys)[REASON_LEN], size_t first) {
  const ps_bench_result *r = &bench->results[first];
  size_t count = 0, variants = 0;
  for (size_t j = first; j < bench->count; j++) {
    const ps_bench_result *o = &bench->results[j];
    if (o->outcome != r->outcome || strcmp(keys[j], keys[first]) != 0) continue;
    count++;
    bool seen = false; /* the same exact reason earlier in the group? */
    for (size_t k = first; k < j && !seen; k++)
      seen = bench->results[k].outcome == r->outcome && strcmp(keys[k], keys[first]) == 0 &&
             strncmp(bench->results[k].reason, o->reason, REASON_LEN) == 0;
    variants += !seen;
  }
  if (count == 1) {
    ps__eput(b, "  %-6s ", ps__bench_outcome_short(r->outcome));
    put_what(b, r);
    ps__eput(b, ": ");
    put_reason(b, r->reason);
    ps__eput(b, "\n");
    return;
  }
  ps__eput(b, "  %s x%zu: ", ps__bench_outcome_short(r->outcome), count);
  put_reason(b, variants > 1 ? keys[first] : r->reason);
  ps__eput(b, " (");
  if (variants > 1) ps__eput(b, "%zu combinations of GPUs; ", variants);
  bool kinds[PS_BENCH_KIND_COUNT] = {0}; /* the kinds involved, each once */
  int listed = 0;
  for (size_t j = first; j < bench->count; j++) {
    const ps_bench_result *o = &bench->results[j];
    if (o->outcome != r->outcome || strcmp(keys[j], keys[first]) != 0 ||
        (unsigned)o->kind >= PS_BENCH_KIND_COUNT || kinds[o->kind])
      continue;
    kinds[o->kind] = true;
    ps__eput(b, "%s%s", listed++ ? ", " : "", ps_bench_kind_name(o->kind));
  }
  ps__eput(b, ")\n");
}

void ps__bench_text_problems(ps__ebuf *b, const ps_bench *bench) {
  size_t bad = 0;
  for (size_t i = 0; i < bench->count; i++)
    bad += bench->results[i].outcome != PS_BENCH_OK;
  if (!bad) return;
  char(*keys)[REASON_LEN] = ps__calloc(bench->count, REASON_LEN);
  if (!keys) {
    b->failed = true;
    return;
  }
  for (size_t i = 0; i < bench->count; i++)
    mask_gpus(bench->results[i].reason, keys[i]);
  ps__eput(b, "Waived / failed (%zu of %zu): waived = a precondition is missing, not a fault\n",
           bad, bench->count);
  for (size_t i = 0; i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    if (r->outcome == PS_BENCH_OK) continue;
    size_t first = 0;
    while (bench->results[first].outcome != r->outcome || strcmp(keys[first], keys[i]) != 0)
      first++;
    if (first == i) put_group(b, bench, keys, i); /* else told with its first occurrence */
  }
  ps__eput(b, "\n");
  ps__free(keys);
}
