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

const char *ps__printable(const char *s, char *buf, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  if (len == 0) return buf;
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    bool plain = c >= 0x20 && c < 0x7F && c != '\\';
    size_t n = plain ? 1 : 4;
    if (o + n + 4 > len) { /* room for "..." and the NUL */
      if (len >= 4) {
        memcpy(buf + o, "...", 3);
        o += 3;
      }
      break;
    }
    if (plain) {
      buf[o++] = (char)c;
    } else {
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[c >> 4];
      buf[o++] = hex[c & 15];
    }
  }
  buf[o] = '\0';
  return buf;
}
