/* Reading /sys and /proc under a root prefix, and a GPU's PCI path from its sysfs link. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"

bool ps__sysfs_path(const ps__doctor *d, const char *path, char *out, size_t len) {
  if (d->record) d->record(d->record_user, PS_DOCTOR_READ_PATH, path);
  int n = snprintf(out, len, "%s%s", d->root, path);
  return n >= 0 && (size_t)n < len;
}

bool ps__sysfs_list_path(const ps__doctor *d, const char *path, char *out, size_t len) {
  if (d->record) d->record(d->record_user, PS_DOCTOR_READ_LIST, path);
  int n = snprintf(out, len, "%s%s", d->root, path);
  return n >= 0 && (size_t)n < len;
}

bool ps__sysfs_read_line(const char *path, char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool ok = fgets(out, (int)len, f) != NULL;
  fclose(f);
  if (!ok) {
    out[0] = '\0';
    return false;
  }
  out[strcspn(out, "\r\n")] = '\0';
  size_t n = strlen(out);
  while (n > 0 && isspace((unsigned char)out[n - 1]))
    out[--n] = '\0';
  return true;
}

size_t ps__sysfs_read_bytes(const char *path, uint8_t *out, size_t len) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t total = 0;
  /* sysfs config files may return less than asked per read: loop until EOF. */
  while (total < len) {
    size_t n = fread(out + total, 1, len - total, f);
    if (n == 0) break;
    total += n;
  }
  fclose(f);
  return total;
}

bool ps__sysfs_busid(const char *id, char *out, size_t len) {
  unsigned domain, bus, dev, fn;
  char tail;
  if (sscanf(id, "%x:%x:%x.%x%c", &domain, &bus, &dev, &fn, &tail) != 4) return false;
  if (bus > 0xff || dev > 0x1f || fn > 7) return false;
  int n = snprintf(out, len, "%04x:%02x:%02x.%x", domain, bus, dev, fn);
  return n > 0 && (size_t)n < len;
}

static bool is_pci_address(const char *s) {
  unsigned domain, bus, dev, fn;
  char tail;
  return sscanf(s, "%x:%x:%x.%x%c", &domain, &bus, &dev, &fn, &tail) == 4;
}

bool ps__pci_path_under(const char *root, const char *busid, ps__pci_path *out, char *why,
                        size_t why_len) {
  ps__doctor d;
  memset(&d, 0, sizeof(d));
  ps__strlcpy(d.root, root ? root : "", sizeof(d.root));
  return ps__pci_path_of(&d, busid, out, why, why_len);
}

bool ps__pci_path_of(const ps__doctor *d, const char *busid, ps__pci_path *out, char *why,
                     size_t why_len) {
  char sys_id[32], link[PATH_MAX], real[PATH_MAX], real_root[PATH_MAX];
  memset(out, 0, sizeof(*out));
  if (!ps__sysfs_busid(busid, sys_id, sizeof(sys_id))) {
    snprintf(why, why_len, "bad bus id '%s'", busid);
    return false;
  }
  char rel[96];
  snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s", sys_id);
  if (!ps__sysfs_path(d, rel, link, sizeof(link)) || !realpath(link, real)) {
    snprintf(why, why_len, "%s: %s", rel, strerror(errno ? errno : ENOENT));
    return false;
  }
  /* Where the tree's /sys/devices is, after resolving the root's own links. */
  char devices[PATH_MAX];
  if (!ps__sysfs_path(d, "/sys/devices", devices, sizeof(devices)) ||
      !realpath(devices, real_root)) {
    snprintf(why, why_len, "/sys/devices: %s", strerror(errno ? errno : ENOENT));
    return false;
  }
  size_t rl = strlen(real_root);
  if (strncmp(real, real_root, rl) != 0 || real[rl] != '/') {
    snprintf(why, why_len, "%s does not lead into /sys/devices", rel);
    return false;
  }
  /* pci0000:00/0000:00:01.0/0000:01:00.0/... */
  char *save = NULL;
  bool first = true;
  for (char *tok = strtok_r(real + rl + 1, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
    if (first) {
      first = false;
      if (strncmp(tok, "pci", 3) != 0) {
        snprintf(why, why_len, "%s: no PCI host bridge above it", rel);
        return false;
      }
      ps__strlcpy(out->host, tok, sizeof(out->host));
      continue;
    }
    if (!is_pci_address(tok)) continue; /* not a PCI device (a virtual node): skip */
    if (out->count == PS_PCI_PATH_MAX) {
      snprintf(why, why_len, "%s: more than %d PCI levels", rel, PS_PCI_PATH_MAX);
      return false;
    }
    ps__strlcpy(out->dev[out->count++], tok, sizeof(out->dev[0]));
  }
  if (out->count == 0 || strcmp(out->dev[out->count - 1], sys_id) != 0) {
    snprintf(why, why_len, "%s: resolves to a path that does not end at the device", rel);
    return false;
  }
  return true;
}
