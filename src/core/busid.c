#include "core/busid.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Reads up to max_digits hex digits ending at `stop`; strict: no sign, no 0x, no spaces. */
static bool hex_field(const char **p, char stop, int max_digits, unsigned *out) {
  unsigned value = 0;
  int digits = 0;
  while (isxdigit((unsigned char)**p)) {
    if (++digits > max_digits) return false;
    char c = (char)tolower((unsigned char)**p);
    value = value * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    (*p)++;
  }
  if (digits == 0 || **p != stop) return false;
  if (stop) (*p)++;
  *out = value;
  return true;
}

bool ps__busid_canonical(const char *id, char *out, size_t out_len) {
  unsigned domain, bus, dev, fn;
  const char *p = id;
  if (!hex_field(&p, ':', 8, &domain) || !hex_field(&p, ':', 2, &bus) ||
      !hex_field(&p, '.', 2, &dev) || !hex_field(&p, '\0', 1, &fn))
    return false;
  if (dev > 0x1f || fn > 7) return false;
  snprintf(out, out_len, "%08X:%02X:%02X.%X", domain, bus, dev, fn);
  return true;
}

bool ps__busid_equal(const char *a, const char *b) {
  char ca[32], cb[32];
  if (!ps__busid_canonical(a, ca, sizeof(ca)) || !ps__busid_canonical(b, cb, sizeof(cb)))
    return false;
  return strcmp(ca, cb) == 0;
}
