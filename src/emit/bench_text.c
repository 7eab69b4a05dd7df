/* The text form of `peerscope bench`: a header, then copy-bandwidth matrices laid out as
 * CUDA's p2pBandwidthLatencyTest prints them, the per-GPU copies, latencies, all-reduce
 * (bench_text_ar.c) and what was waived or failed (bench_problems.c). Each table says what it
 * compares with. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"

#define COL 9 /* a matrix cell: "  1520.3", "  waived" */

typedef enum value_kind { VALUE_GBPS, VALUE_US, VALUE_NS } value_kind;

/* A cell: the number, the outcome of a measurement that did not give one, or "-". */
static const char *cell(const ps_bench_result *r, value_kind what, char *buf, size_t len) {
  if (!r) return "-";
  const char *bad = ps__bench_outcome_short(r->outcome);
  if (bad) return bad;
  double v = what == VALUE_GBPS ? r->gbps : what == VALUE_US ? r->us_median : r->ns_per_access;
  if (!(v > 0) && !(what == VALUE_US && r->trials > 0)) return "n/a";
  snprintf(buf, len, what == VALUE_US ? "%.2f" : "%.1f", v);
  return buf;
}

static void put_matrix(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax,
                       const ps__bench_matrix *m, value_kind what) {
  char buf[32];
  ps__eput(b, "   src\\dst");
  for (int c = 0; c < ax->n; c++)
    ps__eput(b, "%*d", COL, ax->gpus[c]);
  ps__eput(b, "\n");
  for (int row = 0; row < ax->n; row++) {
    ps__eput(b, "%10d", ax->gpus[row]);
    for (int c = 0; c < ax->n; c++)
      ps__eput(b, "%*s", COL,
               cell(ps__bench_cell(bench, m, ax->gpus[row], ax->gpus[c]), what, buf, sizeof(buf)));
    ps__eput(b, "\n");
  }
  ps__eput(b, "\n");
}

static void put_header(ps__ebuf *b, const ps_report *rep) {
  const ps_bench *bench = rep->bench;
  const char *machine = rep->machine[0]    ? rep->machine
                        : rep->hostname[0] ? rep->hostname
                                           : "this machine";
  ps__eput(b, "Benchmarks on %.*s, %d GPU%s", (int)sizeof(rep->machine), machine, rep->gpu_count,
           rep->gpu_count == 1 ? "" : "s");
  if (bench->started[0]) ps__eput(b, ", %.*s", (int)sizeof(bench->started), bench->started);
  ps__eput(b, "\n");
  if (bench->simulated)
    ps__eput(b, "SIMULATED: fake drivers, modelled timings, not measurements of a machine\n");
  ps__eput(b, "Copy kernels: %s. ",
           bench->kernels ? "built in"
                          : "not built (SM copies, pointer "
                            "chase and one-shot waived)");
  int v = bench->nccl_version; /* 22809 = 2.28.9; before 2.9, 2708 = 2.7.8 */
  /* On the fakes the version is the fake libnccl's answer, not an installed NCCL's. */
  const char *nccl = bench->simulated ? "fake NCCL (peerscope's libnccl.so.2, reports" : "NCCL";
  const char *end = bench->simulated ? ")" : "";
  if (v >= 10000)
    ps__eput(b, "%s %d.%d.%d%s.", nccl, v / 10000, v % 10000 / 100, v % 100, end);
  else if (v > 0)
    ps__eput(b, "%s %d.%d.%d%s.", nccl, v / 1000, v % 1000 / 100, v % 100, end);
  else
    ps__eput(b, "NCCL: not loaded.");
  if (bench->nccl_note[0]) ps__eput(b, " %.*s.", (int)sizeof(bench->nccl_note), bench->nccl_note);
  if (bench->wall_ms > 0) ps__eput(b, " Took %.1f s.", bench->wall_ms / 1000.0);
  ps__eput(b, "\n\n");
}

/* ---- (a) copy bandwidth matrices ------------------------------------------------------- */

static void put_copies(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax) {
  static const ps_bench_kind kinds[] = {PS_BENCH_COPY_CE, PS_BENCH_COPY_SM_READ,
                                        PS_BENCH_COPY_SM_WRITE};
  static const char *const engine[] = {"copy engine", "copy kernel reading from the peer",
                                       "copy kernel writing to the peer"};
  for (int k = 0; k < 3; k++) {
    for (int on = 1; on >= 0; on--) {
      for (int bidir = 0; bidir <= 1; bidir++) {
        bool ce = kinds[k] == PS_BENCH_COPY_CE;
        ps__bench_matrix m = {kinds[k], ce ? PS_BENCH_LOCAL_CE : PS_BENCH_LOCAL_SM, on, bidir, 0};
        if (!ps__bench_matrix_used(bench, &m)) continue;
        ps__eput(b, "Copy bandwidth (GB/s), %s, P2P %s, %s\n", engine[k], on ? "on" : "off",
                 bidir ? "both directions at once (sum)" : "one direction");
        ps__eput(b,
                 "  rows = source GPU, columns = destination; diagonal = a copy within the "
                 "GPU (%s)\n",
                 ce ? "local_ce" : "local_sm");
        if (!on)
          ps__eput(b, "  P2P off = staged through pinned host memory, as CUDA falls back; "
                      "compare with P2P on\n");
        else if (ce)
          ps__eput(b, "  P2P on = cuMemcpyPeerAsync over the peer mapping (NVLink or PCIe)\n");
        else
          ps__eput(b, "  the kernel runs on the %s GPU; compare with the copy engine above\n",
                   kinds[k] == PS_BENCH_COPY_SM_READ ? "destination" : "source");
        put_matrix(b, bench, ax, &m, VALUE_GBPS);
      }
    }
  }
}

/* ---- (b) per GPU ------------------------------------------------------------------------ */

static const ps_bench_result *one_gpu(const ps_bench *bench, ps_bench_kind kind, int gpu) {
  const ps_bench_result *fallback = NULL;
  for (size_t i = 0; i < bench->count; i++) {
    const ps_bench_result *r = &bench->results[i];
    if (r->kind != kind || ps__bench_result_gpu(r) != gpu) continue;
    if (!r->bidirectional) return r;
    if (!fallback) fallback = r;
  }
  return fallback;
}

static void put_per_gpu(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax) {
  static const ps_bench_kind kinds[] = {PS_BENCH_LOCAL_CE, PS_BENCH_LOCAL_SM, PS_BENCH_H2D,
                                        PS_BENCH_D2H};
  bool any = false;
  for (int g = 0; g < ax->n && !any; g++)
    for (int k = 0; k < 4 && !any; k++)
      any = one_gpu(bench, kinds[k], ax->gpus[g]) != NULL;
  if (!any) return;
  ps__eput(b, "Per GPU (GB/s): copies within the GPU and with pinned host memory\n"
              "  local = device to device within one GPU, the ceiling for any copy\n"
              "  H2D, D2H = to and from pinned host memory, what P2P off is staged through\n");
  ps__eput(b, "       GPU  local CE  local SM       H2D       D2H\n");
  char buf[32];
  for (int g = 0; g < ax->n; g++) {
    const ps_bench_result *r[4];
    bool row = false;
    for (int k = 0; k < 4; k++)
      row |= (r[k] = one_gpu(bench, kinds[k], ax->gpus[g])) != NULL;
    if (!row) continue;
    ps__eput(b, "%10d", ax->gpus[g]);
    for (int k = 0; k < 4; k++)
      ps__eput(b, "%10s", cell(r[k], VALUE_GBPS, buf, sizeof(buf)));
    ps__eput(b, "\n");
  }
  ps__eput(b, "\n");
}

/* ---- (c) latency ------------------------------------------------------------------------ */

#define MAX_SIZES 64
#define MATRIX_SIZES 3 /* more latency sizes than this: one compact table instead */

static void put_latency_table(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax,
                              const uint64_t *sizes, int n) {
  char buf[32];
  ps__eput(b, "Copy latency (us per copy), by size; P2P off = staged through pinned host memory\n");
  ps__eput(b, "      pair  P2P");
  for (int s = 0; s < n; s++)
    ps__eput(b, "%*s", COL, ps__bench_size(sizes[s], buf, sizeof(buf)));
  ps__eput(b, "\n");
  for (int i = 0; i < ax->n; i++) {
    for (int j = 0; j < ax->n; j++) {
      for (int on = 1; on >= 0; on--) {
        const ps_bench_result *r[MAX_SIZES];
        bool row = false;
        for (int s = 0; s < n; s++) {
          ps__bench_matrix m = {PS_BENCH_LATENCY_WRITE, PS_BENCH_LATENCY_WRITE, on, false,
                                sizes[s]};
          r[s] = ps__bench_cell(bench, &m, ax->gpus[i], ax->gpus[j]);
          row |= r[s] != NULL;
        }
        if (!row || (i == j && !on)) continue; /* within a GPU P2P does not apply */
        snprintf(buf, sizeof(buf), "%d->%d", ax->gpus[i], ax->gpus[j]);
        ps__eput(b, "%10s  %-3s", buf, i == j ? "-" : on ? "on" : "off");
        for (int s = 0; s < n; s++)
          ps__eput(b, "%*s", COL, cell(r[s], VALUE_US, buf, sizeof(buf)));
        ps__eput(b, "\n");
      }
    }
  }
  ps__eput(b, "\n");
}

static void put_latency(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax) {
  uint64_t sizes[MAX_SIZES];
  char size[32];
  int n = ps__bench_sizes(bench, PS_BENCH_LATENCY_WRITE, sizes, MAX_SIZES);
  if (n > MATRIX_SIZES) {
    put_latency_table(b, bench, ax, sizes, n);
  } else {
    for (int s = 0; s < n; s++) {
      for (int on = 1; on >= 0; on--) {
        ps__bench_matrix m = {PS_BENCH_LATENCY_WRITE, PS_BENCH_LATENCY_WRITE, on, false, sizes[s]};
        if (!ps__bench_matrix_used(bench, &m)) continue;
        ps__eput(b, "Copy latency (us per copy), %s, P2P %s\n",
                 ps__bench_size(sizes[s], size, sizeof(size)), on ? "on" : "off");
        ps__eput(
            b,
            "  rows = source GPU, columns = destination; - = not measured (no copy to itself)\n");
        if (!on)
          ps__eput(b, "  P2P off = staged through pinned host memory; compare with P2P on\n");
        put_matrix(b, bench, ax, &m, VALUE_US);
      }
    }
  }
  for (int on = 1; on >= 0; on--) {
    ps__bench_matrix m = {PS_BENCH_LATENCY_CHASE, PS_BENCH_LATENCY_CHASE, on, false, 0};
    if (!ps__bench_matrix_used(bench, &m)) continue;
    ps__eput(b, "Load latency (ns per dependent load), pointer chase, P2P %s\n", on ? "on" : "off");
    ps__eput(b, "  rows = GPU holding the memory, columns = GPU loading\n"
                "  diagonal = the GPU's own memory, the baseline for the links\n");
    put_matrix(b, bench, ax, &m, VALUE_NS);
  }
}

void ps__bench_text(ps__ebuf *b, const ps_report *rep) {
  const ps_bench *bench = rep->bench;
  ps__bench_axis ax;
  put_header(b, rep);
  if (bench->count == 0) {
    ps__eput(b, "No measurements.\n");
    return;
  }
  if (!ps__bench_axis_make(bench, &ax)) {
    b->failed = true;
    return;
  }
  put_copies(b, bench, &ax);
  put_per_gpu(b, bench, &ax);
  put_latency(b, bench, &ax);
  ps__bench_text_allreduce(b, bench);
  ps__bench_text_problems(b, bench);
  ps__bench_axis_free(&ax);
  if (!b->failed && b->len >= 2 && b->data[b->len - 2] == '\n') /* no blank line at the end */
    b->data[--b->len] = '\0';
}
