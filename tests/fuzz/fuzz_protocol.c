/* libFuzzer target: the parsers between the parent and its workers (verify job names, result
 * fields, bench job tokens). A worker killed mid-line or a driver printing junk must not crash
 * the parent; a bench job token that parses must survive a format/parse round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/job.h"
#include "verify/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ps__job job;
  if (ps__job_parse(text, &job) && (job.a < 0 || job.b < 0 || (!job.local && job.a == job.b)))
    abort();
  ps__job_result result;
  char *space = strchr(text, ' ');
  if (space) {
    *space = '\0';
    if (ps__result_parse(text, space + 1, &result) &&
        strlen(result.reason) >= sizeof(result.reason))
      abort();
  }
  ps__bench_job bench, again;
  char token[256];
  if (ps__bench_job_parse(text, &bench)) {
    if (!ps__bench_job_format(&bench, token, sizeof(token)) ||
        !ps__bench_job_parse(token, &again) || memcmp(&bench, &again, sizeof(bench)) != 0)
      abort();
  }
  free(text);
  return 0;
}
