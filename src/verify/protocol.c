/* The verification's worker protocol (protocol.h): parsing job names and result fields. */
#include "verify/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "report/report_internal.h"

/* A GPU number: digits only (no sign, no space), below PS_REPORT_MAX_GPUS. */
static bool gpu_number(const char *s, const char **end, int *out) {
  long v = 0;
  const char *p = s;
  for (; *p >= '0' && *p <= '9' && v < PS_REPORT_MAX_GPUS; p++)
    v = v * 10 + (*p - '0');
  *end = p;
  *out = (int)v;
  return p != s && v < PS_REPORT_MAX_GPUS;
}

bool ps__job_parse(const char *text, ps__job *job) {
  const char *end = NULL;
  memset(job, 0, sizeof(*job));
  if (text[0] == 'L') {
    job->local = true;
    return gpu_number(text + 1, &end, &job->a) && *end == '\0' && (job->b = job->a, true);
  }
  if (text[0] == 'S')
    job->mode = PS_MODE_SM;
  else if (text[0] == 'I')
    job->mode = PS_MODE_IPC;
  else if (text[0] != 'P')
    return false;
  if (!gpu_number(text + 1, &end, &job->a) || *end != '.') return false;
  if (!gpu_number(end + 1, &end, &job->b) || *end != '\0') return false;
  job->local = job->a == job->b;
  return !job->local || job->mode != PS_MODE_CE; /* the ce control is L<g> */
}

void ps__job_token(const ps__job *job, char *out, size_t len) {
  if (job->mode == PS_MODE_CE && job->local)
    snprintf(out, len, "L%d", job->a);
  else
    snprintf(out, len, "%c%d.%d", "PSI"[job->mode], job -> a, job -> b);
}

const char *ps__job_word(const ps__job *job) {
  if (job->mode == PS_MODE_CE) return job->local ? "local" : "pair";
  return ps_mode_name(job->mode);
}

bool ps__result_parse(const char *verdict, const char *fields, ps__job_result *out) {
  memset(out, 0, sizeof(*out));
  out->access = -1;
  out->copy_us = -1;
  if (!ps__verdict_parse(verdict, &out->verdict)) return false;
  const char *p = fields;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p) break;
    if (strncmp(p, "reason=", 7) == 0) { /* the rest of the line */
      ps__strlcpy(out->reason, p + 7, sizeof(out->reason));
      break;
    }
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char field[96];
    if (len >= sizeof(field)) return false;
    memcpy(field, p, len);
    field[len] = '\0';
    char *value = strchr(field, '=');
    if (!value) return false;
    *value++ = '\0';
    if (strcmp(field, "access") == 0)
      out->access = atoi(value);
    else if (strcmp(field, "us") == 0)
      out->copy_us = strtod(value, NULL);
    else if (strcmp(field, "offset") == 0) {
      out->offset = strtoull(value, NULL, 10);
      out->has_corrupt = true;
    } else if (strcmp(field, "expected") == 0)
      out->expected = (unsigned)strtoul(value, NULL, 10) & 0xff;
    else if (strcmp(field, "seen") == 0)
      out->seen = (unsigned)strtoul(value, NULL, 10) & 0xff;
    else if (strcmp(field, "error") == 0)
      ps__strlcpy(out->error, value, sizeof(out->error));
    /* unknown fields are skipped: a newer worker may say more */
    p += len;
  }
  return true;
}
