#include "bench/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_internal.h"
#include "core/internal.h"

bool ps__bench_job_format(const ps__bench_job *job, char *out, size_t len) {
  char flags[8] = "", group[64] = "";
  size_t f = 0, g = 0;
  if (job->bidirectional) flags[f++] = 'b';
  if (job->p2p) flags[f++] = 'p';
  if (job->graph) flags[f++] = 'g';
  if (job->virtual_ranks) flags[f++] = 'v';
  flags[f] = '\0';
  for (int r = 0; r < job->ranks && r < PS_BENCH_MAX_RANKS; r++)
    g += (size_t)snprintf(group + g, sizeof(group) - g, "%s%d", r ? "+" : "", job->group[r]);
  int n = snprintf(out, len, "%s/%d/%d/%s/%llu/%d/%d/%s/%s", ps_bench_kind_name(job->kind), job->a,
                   job->b, f ? flags : "-", (unsigned long long)job->bytes, job->iters, job->trials,
                   job->dtype[0] ? job->dtype : "-", g ? group : "-");
  return n > 0 && (size_t)n < len;
}

static bool parse_int(const char *s, long lo, long hi, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) return false;
  *out = (int)v;
  return true;
}

static bool parse_group(char *s, ps__bench_job *job) {
  job->ranks = 0;
  if (strcmp(s, "-") == 0) return true;
  for (char *save = NULL, *tok = strtok_r(s, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
    if (job->ranks >= PS_BENCH_MAX_RANKS) return false;
    if (!parse_int(tok, 0, 1 << 20, &job->group[job->ranks++])) return false;
  }
  return job->ranks > 0;
}

static bool parse_flags(const char *s, ps__bench_job *job) {
  if (strcmp(s, "-") == 0) return true;
  for (; *s; s++) {
    switch (*s) {
    case 'b': job->bidirectional = true; break;
    case 'p': job->p2p = true; break;
    case 'g': job->graph = true; break;
    case 'v': job->virtual_ranks = true; break;
    default: return false;
    }
  }
  return true;
}

bool ps__bench_job_parse(const char *text, ps__bench_job *job) {
  char buf[256];
  if (!text || strlen(text) >= sizeof(buf)) return false;
  ps__strlcpy(buf, text, sizeof(buf));
  memset(job, 0, sizeof(*job));
  char *field[9];
  int n = 0;
  char *p = buf;
  while (n < 9) {
    field[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = '\0';
    p = slash + 1;
  }
  if (n != 9 || strchr(field[8], '/')) return false;
  char *end;
  unsigned long long bytes = strtoull(field[4], &end, 10);
  if (end == field[4] || *end) return false;
  job->bytes = bytes;
  if (!ps__bench_kind_parse(field[0], &job->kind) || !parse_int(field[1], -1, 1 << 20, &job->a) ||
      !parse_int(field[2], -1, 1 << 20, &job->b) || !parse_flags(field[3], job) ||
      !parse_int(field[5], 1, 1 << 24, &job->iters) ||
      !parse_int(field[6], 1, 1 << 16, &job->trials) || strlen(field[7]) >= sizeof(job->dtype) ||
      !parse_group(field[8], job))
    return false;
  if (strcmp(field[7], "-") != 0) ps__strlcpy(job->dtype, field[7], sizeof(job->dtype));
  return true;
}
