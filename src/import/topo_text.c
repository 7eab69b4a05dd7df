/* `nvidia-smi topo -m` / `topo -mp` text -> ps_report. The header names the devices (GPUs,
 * then NICs) and the affinity columns; each GPU row gives its links and affinities. NIC rows
 * are checked for shape and skipped. The rules are in docs/import.md. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "import/import_internal.h"
#include "report/report_internal.h"

enum { AFF_CPU, AFF_NUMA, AFF_GPU_NUMA, AFF_KINDS };
static const char *const aff_names[AFF_KINDS] = {"CPU Affinity", "NUMA Affinity", "GPU NUMA ID"};

/* What a GPU row says about its GPU. */
typedef struct gpu_facts {
  uint32_t valid; /* PS_GPU_CPU_AFFINITY, PS_GPU_NUMA_NODE */
  int numa_node;
  char cpu_affinity[sizeof(((ps_gpu *)0)->cpu_affinity)];
} gpu_facts;

typedef struct parser {
  ps_ctx *ctx;
  const char *name;
  ps__toks hdr;       /* the header's tokens; device columns are hdr.v[0..devices-1] */
  int gpus, devices;  /* GPU0..GPU<gpus-1>, then NICs up to `devices` */
  int aff[AFF_KINDS]; /* affinity columns in header order */
  int affs;
  ps__toks row;
  /* Collected compactly and turned into a report only once every GPU row has parsed, so a
   * short paste naming many GPUs costs little. */
  uint8_t *link;    /* gpus x gpus link classes */
  uint16_t *count;  /* gpus x gpus NVLink counts */
  gpu_facts *facts; /* per GPU */
} parser;

static ps_status fail_at(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ps_status fail_at(parser *p, int line, int col, const char *fmt, ...) {
  char msg[PS_ERRBUF_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return ps__fail(p->ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", p->name, line, col, msg);
}

#define SHOW(tok, buf) ps__tok_show(tok, buf, sizeof(buf))

/* The affinity column whose words start at toks[i] (-1 if none); *width = its word count. */
static int affinity_column(const ps__toks *toks, int i, int *width) {
  static const char *const words[AFF_KINDS][3] = {
      {"CPU", "Affinity", NULL}, {"NUMA", "Affinity", NULL}, {"GPU", "NUMA", "ID"}};
  for (int k = 0; k < AFF_KINDS; k++) {
    int w = 0;
    while (w < 3 && words[k][w] && i + w < toks->count && ps__tok_is(&toks->v[i + w], words[k][w]))
      w++;
    if (w == 3 || !words[k][w]) {
      *width = w;
      return k;
    }
  }
  return -1;
}

static ps_status parse_header(parser *p, const ps__line *line) {
  char shown[64];
  ps_status st = ps__tokenize(p->ctx, line, 0, &p->hdr);
  if (st != PS_OK) return st;
  int i = 0, width;
  for (; i < p->hdr.count && affinity_column(&p->hdr, i, &width) < 0; i++) {
    const ps__tok *t = &p->hdr.v[i];
    int g = ps__tok_gpu_index(t);
    if (g < 0) { /* a NIC: NIC0, mlx5_0, ... */
      p->devices++;
      continue;
    }
    if (p->devices > p->gpus)
      return fail_at(p, line->number, t->col, "GPU column '%s' after the NIC columns",
                     SHOW(t, shown));
    if (g != p->gpus)
      return fail_at(p, line->number, t->col, "expected GPU%d in the header, found '%s'", p->gpus,
                     SHOW(t, shown));
    if (p->gpus == PS_REPORT_MAX_GPUS)
      return fail_at(p, line->number, t->col,
                     "more than %d GPUs in one node (peerscope handles %d per node; give each "
                     "node's topo -m as its own --topology)",
                     PS_REPORT_MAX_GPUS, PS_REPORT_MAX_GPUS);
    p->gpus++;
    p->devices++;
  }
  while (i < p->hdr.count) {
    const ps__tok *t = &p->hdr.v[i];
    int kind = affinity_column(&p->hdr, i, &width);
    if (kind < 0)
      return fail_at(p, line->number, t->col,
                     "column '%s' after the affinity columns (expected CPU Affinity, NUMA "
                     "Affinity or GPU NUMA ID)",
                     SHOW(t, shown));
    for (int k = 0; k < p->affs; k++)
      if (p->aff[k] == kind)
        return fail_at(p, line->number, t->col, "column %s appears twice", aff_names[kind]);
    p->aff[p->affs++] = kind;
    i += width;
  }
  return PS_OK;
}

/* Digits, commas and dashes, or N/A: an affinity value, never a link. */
static bool affinity_like(const ps__tok *t) {
  if (t->text[0] == 'N') return ps__tok_is(t, "N/A");
  for (size_t i = 0; i < t->len; i++)
    if (!((t->text[i] >= '0' && t->text[i] <= '9') || t->text[i] == ',' || t->text[i] == '-'))
      return false;
  return true;
}

/* A Linux cpulist: "0-15,32-47", "1-1", "7". */
static bool cpulist(const ps__tok *t) {
  size_t i = 0;
  for (;;) {
    size_t start = i;
    while (i < t->len && t->text[i] >= '0' && t->text[i] <= '9')
      i++;
    if (i == start) return false;
    if (i < t->len && t->text[i] == '-') {
      start = ++i;
      while (i < t->len && t->text[i] >= '0' && t->text[i] <= '9')
        i++;
      if (i == start) return false;
    }
    if (i == t->len) return true;
    if (t->text[i++] != ',') return false;
  }
}

/* The cell of row `label` in column `column`; `self` on the diagonal. */
static ps_status parse_link(parser *p, int line, const ps__tok *t, bool self, const ps__tok *label,
                            const ps__tok *column, ps_link_class *link, int *count) {
  static const struct {
    const char *word;
    ps_link_class link;
  } words[] = {{"PIX", PS_LINK_PIX},     {"PXB", PS_LINK_PXB}, {"PHB", PS_LINK_PHB},
               {"NODE", PS_LINK_NODE},   {"SYS", PS_LINK_SYS}, {"SOC", PS_LINK_SYS},
               {"INT", PS_LINK_INTERNAL}};
  char a[64], b[64];
  *count = 0;
  if (ps__tok_is(t, "X")) {
    *link = PS_LINK_SELF;
    if (self) return PS_OK;
    return fail_at(p, line, t->col, "X (self) off the diagonal, in row %s column %s",
                   SHOW(label, a), SHOW(column, b));
  }
  if (self)
    return fail_at(p, line, t->col, "%s to itself must be X, found '%s'", SHOW(label, a),
                   SHOW(t, b));
  if (t->len > 2 && memcmp(t->text, "NV", 2) == 0) {
    ps__tok digits = {t->text + 2, t->len - 2, t->col + 2};
    if (ps__tok_uint(&digits, UINT16_MAX, count) && *count > 0) {
      *link = PS_LINK_NVLINK;
      return PS_OK;
    }
  }
  for (size_t i = 0; i < PS_ARRAY_LEN(words); i++)
    if (ps__tok_is(t, words[i].word)) {
      *link = words[i].link;
      return PS_OK;
    }
  return fail_at(p, line, t->col,
                 "unknown link '%s' (expected X, NV#, PIX, PXB, PHB, NODE, SYS or SOC)",
                 SHOW(t, a));
}

/* The `n` affinity values of row `gpu` (-1: a NIC row, values ignored). A row with fewer
 * values than columns lacks its leftmost ones: nvidia-smi leaves CPU Affinity empty when
 * the caller may not use those CPUs (e.g. under Slurm). */
static ps_status parse_affinity(parser *p, int line, int gpu, const ps__tok *values, int n) {
  char shown[64];
  int numa = -1, gpu_numa = -1;
  if (gpu < 0) return PS_OK;
  gpu_facts *g = &p->facts[gpu];
  for (int v = 0; v < n; v++) {
    const ps__tok *t = &values[v];
    int kind = p->aff[p->affs - n + v];
    if (ps__tok_is(t, "N/A")) continue;
    if (kind == AFF_CPU) {
      if (!cpulist(t))
        return fail_at(p, line, t->col,
                       "CPU Affinity '%s' is not a CPU list (expected e.g. 0-15,32-47, or N/A)",
                       SHOW(t, shown));
      /* A list too long for the report stays unknown rather than cut. */
      if (t->len < sizeof(g->cpu_affinity)) {
        memcpy(g->cpu_affinity, t->text, t->len);
        g->cpu_affinity[t->len] = '\0';
        g->valid |= PS_GPU_CPU_AFFINITY;
      }
      continue;
    }
    int node;
    if (ps__tok_uint(t, 1 << 20, &node))
      *(kind == AFF_NUMA ? &numa : &gpu_numa) = node;
    else if (kind == AFF_GPU_NUMA || !cpulist(t)) /* NUMA Affinity "0-3" (NPS4): not one node */
      return fail_at(p, line, t->col, "%s '%s' is not a NUMA node (expected e.g. 0, or N/A)",
                     aff_names[kind], SHOW(t, shown));
  }
  if (numa >= 0 || gpu_numa >= 0) {
    /* As the probe does: the node the GPU is attached to, else its own memory node. */
    g->numa_node = numa >= 0 ? numa : gpu_numa;
    g->valid |= PS_GPU_NUMA_NODE;
  }
  return PS_OK;
}

/* Row `r` of the device list (GPU rows first, then NIC rows), tokens in p->row. */
static ps_status parse_row(parser *p, const ps__line *line, int r) {
  const ps__toks *row = &p->row;
  const ps__tok *label = &row->v[0];
  char shown[64], a[32], b[32];
  int links = 1;
  while (links < row->count && !affinity_like(&row->v[links]))
    links++;
  links--;
  if (links != p->devices) {
    int col = links > p->devices       ? row->v[1 + p->devices].col
              : 1 + links < row->count ? row->v[1 + links].col
                                       : (int)line->len + 1;
    return fail_at(p, line->number, col, "row %s has %d link cells; the header names %d devices",
                   SHOW(label, shown), links, p->devices);
  }
  int values = row->count - 1 - links;
  if (values > p->affs)
    return fail_at(p, line->number, row->v[1 + links + p->affs].col,
                   "row %s has %d values after its links; the header names %d affinity columns",
                   SHOW(label, shown), values, p->affs);
  for (int c = 0; c < p->devices; c++) {
    const ps__tok *cell = &row->v[1 + c];
    ps_link_class link;
    int count;
    ps_status st = parse_link(p, line->number, cell, c == r, label, &p->hdr.v[c], &link, &count);
    if (st != PS_OK) return st;
    if (r >= p->gpus || c >= p->gpus) continue;
    size_t at = (size_t)r * (size_t)p->gpus + (size_t)c,
           back = (size_t)c * (size_t)p->gpus + (size_t)r;
    p->link[at] = (uint8_t)link;
    p->count[at] = (uint16_t)count;
    if (c < r && (p->link[back] != link || p->count[back] != count))
      return fail_at(p, line->number, cell->col,
                     "GPU%d-GPU%d is %s but GPU%d-GPU%d is %s (a topology matrix is symmetric)", r,
                     c, ps_link_name(link, count, a, sizeof(a)), c, r,
                     ps_link_name((ps_link_class)p->link[back], p->count[back], b, sizeof(b)));
  }
  return parse_affinity(p, line->number, r < p->gpus ? r : -1, &row->v[1 + links], values);
}

/* After the GPU rows, a line that is not the next NIC row ends the matrix, unless it names a
 * row the header has (out of order) or a GPU the header lacks. */
static ps_status check_end(parser *p, const ps__line *line, int r) {
  char a[64], b[64];
  const ps__tok *label = &p->row.v[0];
  int g = ps__tok_gpu_index(label);
  bool next_header = g == 0 && !(p->row.count > 1 && ps__tok_is(&p->row.v[1], "X"));
  if (g >= 0 && !next_header)
    return fail_at(p, line->number, label->col, "row %s is not in the header (it names %d GPUs)",
                   SHOW(label, a), p->gpus);
  for (int d = p->gpus; d < p->devices && g < 0; d++)
    if (label->len == p->hdr.v[d].len && memcmp(label->text, p->hdr.v[d].text, label->len) == 0)
      return fail_at(p, line->number, label->col, "expected row %s, found '%s'",
                     SHOW(&p->hdr.v[r], a), SHOW(label, b));
  return PS_OK;
}

ps_status ps__topo_parse(ps_ctx *ctx, const char *name, const ps__matrix *m, ps_report **out,
                         ps__lines *end) {
  parser p = {.ctx = ctx, .name = name};
  ps__lines it = m->at;
  ps__line line;
  char shown[64];
  ps_status st = PS_OK;
  *out = NULL;
  ps__lines_next(&it, &line);
  ps_report *report = NULL;
  if ((st = parse_header(&p, &line)) != PS_OK) goto cleanup;
  size_t cells = (size_t)p.gpus * (size_t)p.gpus;
  p.link = ps__calloc(cells, sizeof(*p.link));
  p.count = ps__calloc(cells, sizeof(*p.count));
  p.facts = ps__calloc((size_t)p.gpus, sizeof(*p.facts));
  if (!p.link || !p.count || !p.facts) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory for %d GPUs", name, p.gpus);
    goto cleanup;
  }
  for (int r = 0;; r++) {
    ps__lines before = it;
    bool have = ps__lines_next(&it, &line);
    if (have && (st = ps__tokenize(ctx, &line, 0, &p.row)) != PS_OK) goto cleanup;
    if (!have || p.row.count == 0) { /* a blank line or the end ends the matrix */
      if (r < p.gpus) {
        st = fail_at(&p, have ? line.number : it.number + 1, 1,
                     "missing row GPU%d (the header names %d GPUs)", r, p.gpus);
        goto cleanup;
      }
      *end = before;
      break;
    }
    const ps__tok *label = &p.row.v[0];
    const ps__tok *want = r < p.devices ? &p.hdr.v[r] : NULL;
    if (want && label->len == want->len && memcmp(label->text, want->text, want->len) == 0) {
      if ((st = parse_row(&p, &line, r)) != PS_OK) goto cleanup;
      continue;
    }
    if (r < p.gpus) {
      st = ps__tok_gpu_index(label) >= 0
               ? fail_at(&p, line.number, label->col, "expected row GPU%d, found '%s'", r,
                         SHOW(label, shown))
               : fail_at(&p, line.number, 1, "missing row GPU%d (the header names %d GPUs)", r,
                         p.gpus);
      goto cleanup;
    }
    if ((st = check_end(&p, &line, r)) != PS_OK) goto cleanup;
    *end = before;
    break;
  }
  if (!(report = ps__report_new(p.gpus))) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory for %d GPUs", name, p.gpus);
    goto cleanup;
  }
  for (int g = 0; g < p.gpus; g++) {
    ps_gpu *gpu = &report->gpus[g];
    gpu->valid = p.facts[g].valid;
    if (gpu->valid & PS_GPU_NUMA_NODE) gpu->numa_node = p.facts[g].numa_node;
    memcpy(gpu->cpu_affinity, p.facts[g].cpu_affinity, sizeof(gpu->cpu_affinity));
  }
  for (int i = 0; i < report->pair_count; i++) {
    ps_pair *pair = &report->pairs[i];
    size_t at = (size_t)pair->from * (size_t)p.gpus + (size_t)pair->to;
    pair->link = (ps_link_class)p.link[at];
    pair->nvlink_count = p.count[at];
    pair->valid |= PS_PAIR_LINK | (pair->link == PS_LINK_NVLINK ? PS_PAIR_NVLINK : 0u);
  }
  *out = report;
cleanup:
  ps__free(p.link);
  ps__free(p.count);
  ps__free(p.facts);
  ps__toks_free(&p.hdr);
  ps__toks_free(&p.row);
  return st;
}

/* ---- the API ------------------------------------------------------------------------- */

ps_status ps_import_topology_text(ps_ctx *ctx, const char *text, size_t len, const char *name,
                                  ps_report **out) {
  ps_status st = PS_OK;
  ps_report *report = NULL;
  ps__matrix *p2p = NULL;
  int p2p_count = 0, p2p_cap = 0;
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_import_topology_text: out is NULL");
  *out = NULL;
  if (!text && len) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_import_topology_text: no text");
  if (!name) name = "<input>";
  if (len > PS_IMPORT_MAX_BYTES)
    return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB; not an nvidia-smi topology",
                    name, PS_IMPORT_MAX_BYTES >> 20);
  /* A peerscope report: the first non-blank character (after a BOM) opens a JSON object. */
  size_t bom = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, i = bom;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
    i++;
  if (i < len && text[i] == '{') return ps_report_parse_json(ctx, text + bom, len - bom, name, out);

  ps__scan scan;
  ps__matrix m;
  ps__scan_init(&scan, text, len, PS__MATRIX_TOPO);
  while (ps__scan_next(&scan, &m)) {
    if (m.kind == PS__MATRIX_P2P) { /* applied once the topology is known */
      if (p2p_count == p2p_cap) {
        int cap = p2p_cap ? p2p_cap * 2 : 4;
        ps__matrix *bigger = ps__realloc(p2p, (size_t)cap * sizeof(*bigger));
        if (!bigger) {
          st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", name);
          goto cleanup;
        }
        p2p = bigger;
        p2p_cap = cap;
      }
      p2p[p2p_count++] = m;
      continue;
    }
    if (report) {
      st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                    "%s:%d:1: a second topology matrix (import one machine per file)", name,
                    m.at.number + 1);
      goto cleanup;
    }
    if ((st = ps__topo_parse(ctx, name, &m, &report, &scan.it)) != PS_OK) goto cleanup;
  }
  if (!report) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s:1:1: no nvidia-smi topo -m matrix found (expected a header line starting "
                  "with GPU0, then one row per GPU)",
                  name);
    goto cleanup;
  }
  for (int k = 0; k < p2p_count; k++)
    if ((st = ps__p2p_apply(ctx, name, &p2p[k], report)) != PS_OK) goto cleanup;
  report->source = PS_SOURCE_FILE;
  ps__strlcpy(report->origin, name, sizeof(report->origin));
  snprintf(report->machine, sizeof(report->machine), "imported from %s", name);
  *out = report;
  report = NULL;
cleanup:
  ps_report_free(report);
  ps__free(p2p);
  return st;
}

ps_status ps_import_topology(ps_ctx *ctx, const char *path, ps_report **out) {
  char *text = NULL;
  size_t len = 0;
  if (!out || !path) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_import_topology: NULL argument");
  *out = NULL;
  ps_status st =
      ps__import_read(ctx, path, "an nvidia-smi topology or a peerscope report", &text, &len);
  if (st == PS_OK) st = ps_import_topology_text(ctx, text, len, path, out);
  ps__free(text);
  return st;
}
