/* The verification's worker protocol (protocol.h): parsing job names and result fields. */
#include "verify/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "report/report_internal.h"

bool ps__job_parse(const char *text, ps__job *job) {
  char *end = NULL;
  memset(job, 0, sizeof(*job));
  if (text[0] == 'L') {
    job->local = true;
    job->a = job->b = (int)strtol(text + 1, &end, 10);
    return end != text + 1 && *end == '\0' && job->a >= 0;
  }
  if (text[0] != 'P') return false;
  job->a = (int)strtol(text + 1, &end, 10);
  if (end == text + 1 || *end != '.') return false;
  const char *second = end + 1;
  job->b = (int)strtol(second, &end, 10);
  return end != second && *end == '\0' && job->a >= 0 && job->b >= 0 && job->a != job->b;
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
