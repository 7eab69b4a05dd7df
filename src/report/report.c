/* The topology report: allocation, pair lookup and the names of its enums. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "report/report_internal.h"

ps_report *ps__report_new(int gpu_count) {
  if (gpu_count < 0 || gpu_count > PS_REPORT_MAX_GPUS) return NULL;
  ps_report *report = ps__calloc(1, sizeof(*report));
  if (!report) return NULL;
  int pair_count = gpu_count * (gpu_count - 1);
  /* calloc(0) may return NULL; keep the arrays NULL for an empty report instead. */
  if (gpu_count > 0) report->gpus = ps__calloc((size_t)gpu_count, sizeof(ps_gpu));
  if (pair_count > 0) report->pairs = ps__calloc((size_t)pair_count, sizeof(ps_pair));
  if ((gpu_count > 0 && !report->gpus) || (pair_count > 0 && !report->pairs)) {
    ps_report_free(report);
    return NULL;
  }
  report->gpu_count = gpu_count;
  report->pair_count = pair_count;
  report->timings = (ps_timings){-1, -1, -1, -1, -1, -1, -1};
  for (int g = 0; g < gpu_count; g++) {
    ps_gpu *gpu = &report->gpus[g];
    gpu->index = g;
    gpu->numa_node = -1;
    gpu->cuda_ordinal = -1;
    gpu->visible_ordinal = -1;
    gpu->local_verdict = PS_VERDICT_NOT_RUN;
  }
  for (int from = 0; from < gpu_count; from++) {
    for (int to = 0; to < gpu_count; to++) {
      if (from == to) continue;
      ps_pair *pair = &report->pairs[ps__pair_slot(gpu_count, from, to)];
      pair->from = from;
      pair->to = to;
      pair->link = PS_LINK_UNKNOWN;
      pair->verdict = PS_VERDICT_NOT_RUN;
      pair->copy_us = -1;
    }
  }
  return report;
}

void ps_report_free(ps_report *report) {
  if (!report) return;
  ps__free(report->gpus);
  ps__free(report->pairs);
  ps_bench_free(report->bench);
  ps__free(report->restarts);
  ps__free(report);
}

const ps_pair *ps_report_pair(const ps_report *report, int from, int to) {
  if (!report || from == to || from < 0 || to < 0 || from >= report->gpu_count ||
      to >= report->gpu_count || !report->pairs)
    return NULL;
  int slot = ps__pair_slot(report->gpu_count, from, to);
  if (slot < report->pair_count) {
    const ps_pair *pair = &report->pairs[slot];
    if (pair->from == from && pair->to == to) return pair;
  }
  /* A report assembled by hand may not be in from-major order. */
  for (int i = 0; i < report->pair_count; i++)
    if (report->pairs[i].from == from && report->pairs[i].to == to) return &report->pairs[i];
  return NULL;
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *const link_short[] = {
    [PS_LINK_UNKNOWN] = "?", [PS_LINK_SELF] = "X",  [PS_LINK_NVLINK] = "NV",
    [PS_LINK_PIX] = "PIX",   [PS_LINK_PXB] = "PXB", [PS_LINK_PHB] = "PHB",
    [PS_LINK_NODE] = "NODE", [PS_LINK_SYS] = "SYS", [PS_LINK_INTERNAL] = "INT"};

static const char *const link_class_names[] = {
    [PS_LINK_UNKNOWN] = "unknown", [PS_LINK_SELF] = "self", [PS_LINK_NVLINK] = "nvlink",
    [PS_LINK_PIX] = "pix",         [PS_LINK_PXB] = "pxb",   [PS_LINK_PHB] = "phb",
    [PS_LINK_NODE] = "node",       [PS_LINK_SYS] = "sys",   [PS_LINK_INTERNAL] = "internal"};

static const char *const claim_names[] = {
    [PS_CLAIM_UNKNOWN] = "n/a", [PS_CLAIM_OK] = "OK",   [PS_CLAIM_CNS] = "CNS",
    [PS_CLAIM_GNS] = "GNS",     [PS_CLAIM_TNS] = "TNS", [PS_CLAIM_DISABLED] = "DIS",
    [PS_CLAIM_NS] = "NS",       [PS_CLAIM_U] = "U"};

static const char *const verdict_names[] = {
    [PS_VERDICT_NOT_RUN] = "not_run", [PS_VERDICT_OK] = "ok",
    [PS_VERDICT_CORRUPT] = "corrupt", [PS_VERDICT_ERROR] = "error",
    [PS_VERDICT_HANG] = "hang",       [PS_VERDICT_UNSUPPORTED] = "unsupported",
    [PS_VERDICT_SKIPPED] = "skipped", [PS_VERDICT_UNAVAILABLE] = "unavailable"};

static const char *const mode_names[PS_MODE_COUNT] = {
    [PS_MODE_CE] = "ce", [PS_MODE_SM] = "sm", [PS_MODE_IPC] = "ipc"};

static const char *const source_names[] = {
    [PS_SOURCE_LIVE] = "live", [PS_SOURCE_FIXTURE] = "fixture", [PS_SOURCE_FILE] = "file"};

int ps__report_name_index(const char *const *table, size_t count, const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < count; i++)
    if (table[i] && strcmp(table[i], name) == 0) return (int)i;
  return -1;
}

const char *ps_link_name(ps_link_class link, int nvlink_count, char *buf, size_t len) {
  const char *name = (unsigned)link < PS_ARRAY_LEN(link_short) ? link_short[link] : "?";
  if (!buf || len == 0) return name; /* a static string, without the NVLink count */
  if (link == PS_LINK_NVLINK && nvlink_count > 0)
    snprintf(buf, len, "NV%d", nvlink_count);
  else
    ps__strlcpy(buf, name, len);
  return buf;
}

const char *ps_claim_name(ps_claim claim) {
  return (unsigned)claim < PS_ARRAY_LEN(claim_names) ? claim_names[claim] : "n/a";
}

const char *ps_verdict_name(ps_verdict verdict) {
  return (unsigned)verdict < PS_ARRAY_LEN(verdict_names) ? verdict_names[verdict] : "?";
}

const char *ps_mode_name(ps_verify_mode mode) {
  return (unsigned)mode < PS_ARRAY_LEN(mode_names) ? mode_names[mode] : "?";
}

bool ps__mode_parse(const char *name, ps_verify_mode *out) {
  int i = ps__report_name_index(mode_names, PS_ARRAY_LEN(mode_names), name);
  if (i < 0) return false;
  *out = (ps_verify_mode)i;
  return true;
}

bool ps_modes_parse(ps_ctx *ctx, const char *list, unsigned *modes) {
  char word[32];
  unsigned bits = 0;
  for (const char *p = list ? list : ""; *p;) {
    size_t len = strcspn(p, ",");
    ps_verify_mode mode;
    snprintf(word, sizeof(word), "%.*s", (int)(len < sizeof(word) ? len : sizeof(word) - 1), p);
    if (strcmp(word, "all") == 0)
      bits |= PS_MODES_ALL;
    else if (ps__mode_parse(word, &mode))
      bits |= PS_MODE_BIT(mode);
    else {
      if (ctx)
        ps__fail(ctx, PS_ERR_INVALID_ARG,
                 "unknown verification mode '%s' (want ce, sm, ipc or all)", word);
      return false;
    }
    p += len + (p[len] == ',');
  }
  if (!bits) {
    if (ctx)
      ps__fail(ctx, PS_ERR_INVALID_ARG, "no verification mode given (want ce, sm, ipc or all)");
    return false;
  }
  *modes = bits;
  return true;
}

const char *ps__link_class_name(ps_link_class link) {
  return (unsigned)link < PS_ARRAY_LEN(link_class_names) ? link_class_names[link] : "unknown";
}

const char *ps__source_name(ps_source source) {
  return (unsigned)source < PS_ARRAY_LEN(source_names) ? source_names[source] : "?";
}

bool ps__link_class_parse(const char *name, ps_link_class *out) {
  int i = ps__report_name_index(link_class_names, PS_ARRAY_LEN(link_class_names), name);
  if (i < 0) return false;
  *out = (ps_link_class)i;
  return true;
}

bool ps__link_parse(const char *text, ps_link_class *link, int *nvlink_count) {
  if (!text) return false;
  if (strncmp(text, "NV", 2) == 0 && text[2] != '\0') {
    /* Digits only, no sign or spaces, no leading zero: "NV18" is the one spelling of 18. */
    const char *p = text + 2;
    if (*p == '0') return false;
    long count = 0;
    for (; *p; p++) {
      if (*p < '0' || *p > '9' || count > 100000) return false;
      count = count * 10 + (*p - '0');
    }
    *link = PS_LINK_NVLINK;
    *nvlink_count = (int)count;
    return true;
  }
  int i = ps__report_name_index(link_short, PS_ARRAY_LEN(link_short), text);
  if (i < 0) return false;
  *link = (ps_link_class)i;
  *nvlink_count = 0;
  return true;
}

bool ps__claim_parse(const char *name, ps_claim *out) {
  int i = ps__report_name_index(claim_names, PS_ARRAY_LEN(claim_names), name);
  if (i <= PS_CLAIM_UNKNOWN) return false;
  *out = (ps_claim)i;
  return true;
}

bool ps__verdict_parse(const char *name, ps_verdict *out) {
  int i = ps__report_name_index(verdict_names, PS_ARRAY_LEN(verdict_names), name);
  if (i < 0) return false;
  *out = (ps_verdict)i;
  return true;
}

bool ps__source_parse(const char *name, ps_source *out) {
  int i = ps__report_name_index(source_names, PS_ARRAY_LEN(source_names), name);
  if (i < 0) return false;
  *out = (ps_source)i;
  return true;
}

bool ps_pair_assumed(const ps_report *report, const ps_pair *pair) {
  return report && pair && !report->verified && !(pair->valid & PS_PAIR_CLAIMS);
}

bool ps_pair_usable(const ps_report *report, const ps_pair *pair) {
  if (!report || !pair) return false;
  if (report->verified)
    return pair->verdict == PS_VERDICT_OK && !ps_verdict_failed(pair->sm.verdict) &&
           !ps_verdict_failed(pair->ipc.verdict);
  if (ps_pair_assumed(report, pair))
    return (pair->valid & PS_PAIR_LINK) &&
           (pair->link == PS_LINK_NVLINK || pair->link == PS_LINK_PIX || pair->link == PS_LINK_PXB);
  return pair->claim_read == PS_CLAIM_OK && pair->claim_write == PS_CLAIM_OK;
}

bool ps_verdict_failed(ps_verdict verdict) {
  return verdict == PS_VERDICT_CORRUPT || verdict == PS_VERDICT_ERROR || verdict == PS_VERDICT_HANG;
}

ps_verdict ps_pair_mode_verdict(const ps_pair *pair, ps_verify_mode mode) {
  if (!pair) return PS_VERDICT_NOT_RUN;
  switch (mode) {
  case PS_MODE_CE: return pair->verdict;
  case PS_MODE_SM: return pair->sm.verdict;
  case PS_MODE_IPC: return pair->ipc.verdict;
  }
  return PS_VERDICT_NOT_RUN;
}

bool ps_pair_failed(const ps_report *report, const ps_pair *pair) {
  (void)report; /* verdicts exist only in verified reports */
  if (!pair) return false;
  if (ps_verdict_failed(pair->sm.verdict) || ps_verdict_failed(pair->ipc.verdict)) return true;
  switch (pair->verdict) {
  case PS_VERDICT_CORRUPT:
  case PS_VERDICT_ERROR:
  case PS_VERDICT_HANG: return true;
  case PS_VERDICT_UNSUPPORTED:
    return (pair->valid & PS_PAIR_CLAIMS) && pair->claim_read == PS_CLAIM_OK &&
           pair->claim_write == PS_CLAIM_OK;
  default: return false;
  }
}

/* ---- the caller's CUDA_VISIBLE_DEVICES (ps_report_apply_visible records it) ---------- */

bool ps_report_restricted(const ps_report *report) {
  for (int g = 0; report && g < report->gpu_count; g++)
    if (report->gpus[g].valid & PS_GPU_VISIBLE) return true;
  return false;
}

bool ps_gpu_allowed(const ps_report *report, int gpu) {
  if (!report || gpu < 0 || gpu >= report->gpu_count) return false;
  const ps_gpu *g = &report->gpus[gpu];
  return !(g->valid & PS_GPU_VISIBLE) || g->visible_ordinal >= 0;
}

int ps_report_allowed_gpus(const ps_report *report, int *out, int cap) {
  int n = 0;
  if (!report) return 0;
  if (!ps_report_restricted(report)) {
    for (int g = 0; g < report->gpu_count && n < cap; g++)
      out[n++] = g;
    return n;
  }
  /* Ordinals are 0..k-1 without gaps: find each in turn. */
  for (int ordinal = 0; n < cap; ordinal++) {
    int found = -1;
    for (int g = 0; g < report->gpu_count && found < 0; g++)
      if ((report->gpus[g].valid & PS_GPU_VISIBLE) && report->gpus[g].visible_ordinal == ordinal)
        found = g;
    if (found < 0) break;
    out[n++] = found;
  }
  return n;
}
