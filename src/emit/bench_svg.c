/* `peerscope bench --svg`: one self-contained SVG (no script, no external reference) with
 * heatmaps of the copy bandwidth (copy engine, one direction, P2P on and off) and latency
 * (the smallest copy, the pointer chase) matrices. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "emit/bench_emit.h"

#define CELL_W 64
#define CELL_H 28
#define LEFT 90 /* row labels */
#define MARGIN 20
#define LEGEND_MIN_W 260

typedef struct heatmap {
  ps__bench_matrix m;
  char title[96];
  bool bandwidth; /* higher is better (GB/s); else a latency, lower is better */
  bool ns;        /* latency in ns (the chase), else us */
} heatmap;

/* Text content or attribute value: XML's five specials escaped, control characters and bytes
 * that are not UTF-8 (a driver's string) as '?', so the document always parses. */
static void put_escaped(ps__ebuf *b, const char *s, size_t cap) {
  size_t len = strnlen(s, cap);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '&')
      ps__eput(b, "&amp;");
    else if (c == '<')
      ps__eput(b, "&lt;");
    else if (c == '>')
      ps__eput(b, "&gt;");
    else if (c == '"')
      ps__eput(b, "&quot;");
    else if (c == '\'')
      ps__eput(b, "&apos;");
    else if (c < 0x20 || c == 0x7f)
      ps__eput(b, "?");
    else if (c < 0x80)
      ps__eput(b, "%c", c);
    else {
      size_t more = c >= 0xc2 && c < 0xe0   ? 1
                    : c >= 0xe0 && c < 0xf0 ? 2
                    : c >= 0xf0 && c < 0xf5 ? 3
                                            : 0;
      bool ok = more > 0 && i + more < len;
      for (size_t k = 1; ok && k <= more; k++)
        ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
      /* No overlong forms, surrogates or code points above U+10FFFF either. */
      unsigned char c1 = ok ? (unsigned char)s[i + 1] : 0;
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
          (c == 0xf4 && c1 > 0x8f))
        ok = false;
      if (!ok) {
        ps__eput(b, "?");
        continue;
      }
      ps__eput(b, "%.*s", (int)(more + 1), s + i);
      i += more;
    }
  }
}

/* Viridis at five stops, dark (poor) to bright (good). */
static void colour(double t, char *out, size_t len) {
  static const unsigned char stops[5][3] = {{0x44, 0x01, 0x54},
                                            {0x3b, 0x52, 0x8b},
                                            {0x21, 0x91, 0x8c},
                                            {0x5e, 0xc9, 0x62},
                                            {0xfd, 0xe7, 0x25}};
  if (!(t >= 0)) t = 0;
  if (t > 1) t = 1;
  double pos = t * 4;
  int i = (int)pos < 4 ? (int)pos : 3;
  double f = pos - i;
  int rgb[3];
  for (int c = 0; c < 3; c++)
    rgb[c] = (int)(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]) + 0.5);
  snprintf(out, len, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static double value_of(const heatmap *h, const ps_bench_result *r) {
  return h->bandwidth ? r->gbps : h->ns ? r->ns_per_access : r->us_median;
}

static bool has_value(const heatmap *h, const ps_bench_result *r) {
  return r && r->outcome == PS_BENCH_OK && isfinite(value_of(h, r)) &&
         (value_of(h, r) > 0 || (!h->bandwidth && !h->ns && r->trials > 0));
}

/* 0 = poor .. 1 = good, between the off-diagonal extremes. */
static double goodness(const heatmap *h, double v, double lo, double hi) {
  if (!(hi > lo)) return 1; /* one value: nothing is worse than it */
  double t = (v - lo) / (hi - lo);
  return h->bandwidth ? t : 1 - t;
}

static int heatmap_height(int n) { return 52 + n * CELL_H + 58; }
static int heatmap_width(int n) {
  int grid = n * CELL_W > LEGEND_MIN_W ? n * CELL_W : LEGEND_MIN_W;
  return LEFT + grid + MARGIN;
}

/* A cell, with its tooltip (an SVG <title>: no script needed) saying what it shows or why
 * it failed. */
static void put_cell(ps__ebuf *b, const heatmap *h, const ps_bench_result *r, int src, int dst,
                     int x, int y, double lo, double hi) {
  char fill[16] = "#e0e0e0", ink[16] = "#404040", text[32] = "n/a";
  const char *style = "", *unit = h->bandwidth ? "GB/s" : h->ns ? "ns" : "us";
  if (r && r->outcome != PS_BENCH_OK) {
    snprintf(fill, sizeof(fill), "#bdbdbd");
    snprintf(text, sizeof(text), "%s", ps__bench_outcome_short(r->outcome));
  } else if (has_value(h, r)) {
    double v = value_of(h, r);
    snprintf(text, sizeof(text), h->bandwidth || h->ns ? "%.1f" : "%.2f", v);
    if (src == dst) { /* within a GPU: off the scale of the links, so not coloured */
      snprintf(fill, sizeof(fill), "#ffffff");
      style = " stroke=\"#808080\" stroke-dasharray=\"3,2\"";
    } else {
      double t = goodness(h, v, lo, hi);
      colour(t, fill, sizeof(fill));
      snprintf(ink, sizeof(ink), t < 0.6 ? "#ffffff" : "#000000");
    }
  }
  ps__eput(b,
           "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"%s>"
           "<title>GPU %d -&gt; GPU %d: %s",
           x, y, CELL_W - 2, CELL_H - 2, fill, style, src, dst, text);
  if (r && r->outcome == PS_BENCH_OK && strcmp(text, "n/a") != 0) ps__eput(b, " %s", unit);
  if (r && r->outcome != PS_BENCH_OK) {
    ps__eput(b, ": ");
    put_escaped(b, r->reason[0] ? r->reason : "no reason given", sizeof(r->reason));
  }
  ps__eput(b, "</title></rect>\n");
  ps__eput(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
           x + (CELL_W - 2) / 2, y + CELL_H / 2 + 3, ink, text);
}

static void put_heatmap(ps__ebuf *b, const ps_bench *bench, const ps__bench_axis *ax,
                        const heatmap *h, int index, int top) {
  double lo = 0, hi = 0;
  bool any = false;
  for (int i = 0; i < ax->n; i++) {
    for (int j = 0; j < ax->n; j++) {
      const ps_bench_result *r = ps__bench_cell(bench, &h->m, ax->gpus[i], ax->gpus[j]);
      if (i == j || !has_value(h, r)) continue;
      double v = value_of(h, r);
      if (!any || v < lo) lo = v;
      if (!any || v > hi) hi = v;
      any = true;
    }
  }
  /* Colours compare links, not noise: when every link is within 10% of the best, the scale
   * starts at zero, so a uniform machine looks uniform. */
  if (any && hi > 0 && lo > 0.9 * hi) lo = 0;
  ps__eput(b,
           "<g class=\"heatmap\">\n<text x=\"%d\" y=\"%d\" font-size=\"14\" "
           "font-weight=\"bold\">",
           MARGIN, top + 16);
  put_escaped(b, h->title, sizeof(h->title));
  ps__eput(b,
           "</text>\n<text x=\"%d\" y=\"%d\" fill=\"#404040\">%s; %s is better; "
           "diagonal = within the GPU, not coloured</text>\n",
           MARGIN, top + 32,
           h->ns ? "rows = GPU holding the memory, columns = GPU loading"
                 : "rows = source GPU, columns = destination",
           h->bandwidth ? "higher" : "lower");
  int grid_top = top + 52;
  for (int j = 0; j < ax->n; j++)
    ps__eput(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">GPU %d</text>\n",
             LEFT + j * CELL_W + (CELL_W - 2) / 2, grid_top - 6, ax->gpus[j]);
  for (int i = 0; i < ax->n; i++) {
    int y = grid_top + i * CELL_H;
    ps__eput(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">GPU %d</text>\n", LEFT - 8,
             y + CELL_H / 2 + 3, ax->gpus[i]);
    for (int j = 0; j < ax->n; j++)
      put_cell(b, h, ps__bench_cell(bench, &h->m, ax->gpus[i], ax->gpus[j]), ax->gpus[i],
               ax->gpus[j], LEFT + j * CELL_W, y, lo, hi);
  }
  /* The colour scale: the gradient runs from the minimum (left) to the maximum (right). */
  int legend_top = grid_top + ax->n * CELL_H + 12;
  int legend_w = heatmap_width(ax->n) - LEFT - MARGIN;
  const char *unit = h->bandwidth ? "GB/s" : h->ns ? "ns" : "us";
  const char *fmt = h->bandwidth || h->ns ? "%.1f" : "%.2f";
  char lo_text[32], hi_text[32], c0[16], c1[16], c2[16], c3[16], c4[16];
  snprintf(lo_text, sizeof(lo_text), fmt, lo);
  snprintf(hi_text, sizeof(hi_text), fmt, hi);
  double t0 = h->bandwidth ? 0 : 1, step = h->bandwidth ? 0.25 : -0.25;
  colour(t0, c0, sizeof(c0));
  colour(t0 + step, c1, sizeof(c1));
  colour(t0 + 2 * step, c2, sizeof(c2));
  colour(t0 + 3 * step, c3, sizeof(c3));
  colour(t0 + 4 * step, c4, sizeof(c4));
  ps__eput(b,
           "<defs><linearGradient id=\"scale%d\"><stop offset=\"0\" stop-color=\"%s\"/>"
           "<stop offset=\"0.25\" stop-color=\"%s\"/><stop offset=\"0.5\" stop-color=\"%s\"/>"
           "<stop offset=\"0.75\" stop-color=\"%s\"/><stop offset=\"1\" stop-color=\"%s\"/>"
           "</linearGradient></defs>\n",
           index, c0, c1, c2, c3, c4);
  if (any) {
    ps__eput(b,
             "<rect class=\"legend\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"12\" "
             "fill=\"url(#scale%d)\"/>\n",
             LEFT, legend_top, legend_w, index);
    ps__eput(b, "<text x=\"%d\" y=\"%d\">min %s %s</text>\n", LEFT, legend_top + 28, lo_text, unit);
    ps__eput(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">max %s %s</text>\n", LEFT + legend_w,
             legend_top + 28, hi_text, unit);
  } else {
    ps__eput(b, "<text x=\"%d\" y=\"%d\">no value between two GPUs to scale colours by</text>\n",
             LEFT, legend_top + 12);
  }
  ps__eput(b, "</g>\n");
}

/* The heatmaps there is data for, at most four. */
static int pick(const ps_bench *bench, heatmap *maps) {
  int n = 0;
  char size[32];
  for (int on = 1; on >= 0; on--) {
    heatmap h = {{PS_BENCH_COPY_CE, PS_BENCH_LOCAL_CE, on, false, 0}, "", true, false};
    snprintf(h.title, sizeof(h.title), "Copy bandwidth (GB/s), copy engine, P2P %s%s",
             on ? "on" : "off", on ? "" : " (staged through pinned host memory)");
    if (ps__bench_matrix_used(bench, &h.m)) maps[n++] = h;
  }
  uint64_t sizes[64];
  int sized = ps__bench_sizes(bench, PS_BENCH_LATENCY_WRITE, sizes, 64);
  for (int on = 1; on >= 0 && sized > 0; on--) {
    heatmap h = {
        {PS_BENCH_LATENCY_WRITE, PS_BENCH_LATENCY_WRITE, on, false, sizes[0]}, "", false, false};
    snprintf(h.title, sizeof(h.title), "Copy latency (us), %s, P2P %s",
             ps__bench_size(sizes[0], size, sizeof(size)), on ? "on" : "off");
    if (ps__bench_matrix_used(bench, &h.m)) {
      maps[n++] = h;
      break; /* P2P on when measured, else off */
    }
  }
  for (int on = 1; on >= 0; on--) {
    heatmap h = {{PS_BENCH_LATENCY_CHASE, PS_BENCH_LATENCY_CHASE, on, false, 0}, "", false, true};
    snprintf(h.title, sizeof(h.title),
             "Load latency (ns per dependent load), pointer chase, P2P %s", on ? "on" : "off");
    if (ps__bench_matrix_used(bench, &h.m)) {
      maps[n++] = h;
      break;
    }
  }
  return n;
}

void ps__bench_svg(ps__ebuf *b, const ps_report *rep) {
  const ps_bench *bench = rep->bench;
  ps__bench_axis ax;
  heatmap maps[4];
  if (!ps__bench_axis_make(bench, &ax)) {
    b->failed = true;
    return;
  }
  int count = pick(bench, maps);
  int head = bench->simulated ? 56 : 36;
  int width = heatmap_width(ax.n) > 760 ? heatmap_width(ax.n) : 760; /* room for the titles */
  int height = head + (count ? count * heatmap_height(ax.n) : 40) + MARGIN;
  ps__eput(b,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
           width, height, width, height);
  const char *machine = rep->machine[0] ? rep->machine : rep->hostname[0] ? rep->hostname : "";
  ps__eput(b, "<title>peerscope bench");
  if (machine[0]) {
    ps__eput(b, ": ");
    put_escaped(b, machine, sizeof(rep->machine));
  }
  ps__eput(b,
           "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n"
           "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Benchmarks on ",
           width, height, MARGIN);
  put_escaped(b, machine[0] ? machine : "this machine", sizeof(rep->machine));
  ps__eput(b, " (%d GPU%s)", rep->gpu_count, rep->gpu_count == 1 ? "" : "s");
  if (bench->started[0]) {
    ps__eput(b, ", ");
    put_escaped(b, bench->started, sizeof(bench->started));
  }
  ps__eput(b, "</text>\n");
  if (bench->simulated)
    ps__eput(b,
             "<text x=\"%d\" y=\"44\" font-weight=\"bold\" fill=\"#c00000\">SIMULATED: fake "
             "drivers, modelled timings, not measurements of a machine</text>\n",
             MARGIN);
  if (!count)
    ps__eput(b, "<text x=\"%d\" y=\"%d\">no copy or latency measurements</text>\n", MARGIN,
             head + 20);
  for (int i = 0; i < count; i++)
    put_heatmap(b, bench, &ax, &maps[i], i, head + i * heatmap_height(ax.n));
  ps__eput(b, "</svg>\n");
  ps__bench_axis_free(&ax);
}
