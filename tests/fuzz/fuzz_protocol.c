/* libFuzzer target: the parent's parsers of worker output (job names, result fields). A
 * worker killed mid-line or a driver printing junk must not crash the parent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
  free(text);
  return 0;
}
