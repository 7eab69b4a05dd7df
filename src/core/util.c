/* Allocation wrappers (one place to swap the allocator or inject failures), bounded string
 * copy and the monotonic clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"

void *ps__calloc(size_t count, size_t size) { return calloc(count, size); }
void *ps__realloc(void *ptr, size_t size) { return realloc(ptr, size); }
void ps__free(void *ptr) { free(ptr); }
void ps_free(void *ptr) { free(ptr); }

char *ps__strdup(const char *s) {
  size_t len = strlen(s) + 1;
  char *copy = malloc(len);
  if (copy) memcpy(copy, s, len);
  return copy;
}

char *ps__strlcpy(char *dst, const char *src, size_t dst_len) {
  if (dst_len == 0) return dst;
  size_t n = src ? strnlen(src, dst_len - 1) : 0;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
  return dst;
}

double ps__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
