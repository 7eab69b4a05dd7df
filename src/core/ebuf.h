/* A growing output string (the renderers of plans and bench results, the capture's fixture
 * writer): printf-style appends that
 * remember an allocation failure instead of reporting each one. */
#ifndef PS_CORE_EBUF_H
#define PS_CORE_EBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ps__ebuf {
  char *data;
  size_t len, cap;
  bool failed; /* out of memory: the output is incomplete */
} ps__ebuf;

void ps__eput(ps__ebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
