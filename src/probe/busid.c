#include "probe/busid.h"

#include <stdio.h>
#include <string.h>

bool ps__busid_canonical(const char *id, char *out, size_t out_len) {
  unsigned domain = 0, bus = 0, dev = 0, fn = 0;
  int used = 0;
  if (sscanf(id, "%x:%x:%x.%x%n", &domain, &bus, &dev, &fn, &used) != 4 || id[used] != '\0')
    return false;
  if (bus > 0xff || dev > 0x1f || fn > 7) return false;
  snprintf(out, out_len, "%08X:%02X:%02X.%X", domain, bus, dev, fn);
  return true;
}

bool ps__busid_equal(const char *a, const char *b) {
  char ca[32], cb[32];
  if (!ps__busid_canonical(a, ca, sizeof(ca)) || !ps__busid_canonical(b, cb, sizeof(cb)))
    return false;
  return strcmp(ca, cb) == 0;
}
