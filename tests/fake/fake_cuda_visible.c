/* The fake libcuda.so.1's device enumeration: CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES as
 * the real driver applies them at cuInit (docs/fixture-format.md, "CUDA devices"), and the
 * record of the primary contexts it makes (which GPUs a process touched). Kept apart from
 * fake_cuda.c, which only asks for the resulting ordinal -> fixture GPU map. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fake_cuda_internal.h"

static bool pci_before(const ps_fix_gpu *a, const ps_fix_gpu *b) {
  if (a->pci_domain != b->pci_domain) return a->pci_domain < b->pci_domain;
  if (a->pci_bus != b->pci_bus) return a->pci_bus < b->pci_bus;
  if (a->pci_device != b->pci_device) return a->pci_device < b->pci_device;
  return a->pci_function < b->pci_function;
}

/* FASTEST_FIRST as modelled: higher compute capability first, then more multiprocessors
 * (unknown counts as 0), then PCI bus order. */
static bool faster(const ps_fix_gpu *a, const ps_fix_gpu *b) {
  if (a->cc_major != b->cc_major) return a->cc_major > b->cc_major;
  if (a->cc_minor != b->cc_minor) return a->cc_minor > b->cc_minor;
  if (a->sm_count != b->sm_count) return a->sm_count > b->sm_count;
  return pci_before(a, b);
}

/* Every fixture GPU in CUDA's enumeration order (insertion sort: at most 64). */
static void enumeration_order(const ps_fixture *f, int *order) {
  const char *mode = getenv("CUDA_DEVICE_ORDER");
  bool by_bus = mode && strcmp(mode, "PCI_BUS_ID") == 0;
  for (int i = 0; i < f->gpu_count; i++) {
    int j = i;
    for (; j > 0; j--) {
      const ps_fix_gpu *a = &f->gpus[i], *b = &f->gpus[order[j - 1]];
      if (!(by_bus ? pci_before(a, b) : faster(a, b))) break;
      order[j] = order[j - 1];
    }
    order[j] = i;
  }
}

/* Whether id (len bytes) is a prefix of uuid, ignoring case. */
static bool uuid_prefix(const char *id, size_t len, const char *uuid) {
  return len > 0 && len <= strlen(uuid) && strncasecmp(id, uuid, len) == 0;
}

/* The one GPU whose UUID (after "GPU-") starts with id; -1 when none or several. */
static int gpu_by_uuid(const ps_fixture *f, const char *id, size_t len) {
  int found = -1;
  for (int g = 0; g < f->gpu_count; g++) {
    if (!uuid_prefix(id, len, f->gpus[g].uuid + 4)) continue;
    if (found >= 0) return -1;
    found = g;
  }
  return found;
}

/* "MIG-<uuid>" (a unique prefix of a declared MIG device) or "MIG-GPU-<uuid>/<gi>/<ci>" (MIG
 * device gi of that GPU); the fixture GPU, or -1. */
static int gpu_by_mig(const ps_fixture *f, const char *id, size_t len) {
  if (len > 4 && strncasecmp(id, "GPU-", 4) == 0) {
    size_t uuid_len = strcspn(id, "/");
    if (uuid_len >= len) return -1;
    int g = gpu_by_uuid(f, id + 4, uuid_len - 4);
    char *end = NULL;
    long gi = strtol(id + uuid_len + 1, &end, 10);
    if (g < 0 || end == id + uuid_len + 1 || *end != '/' || !isdigit((unsigned char)end[1]))
      return -1;
    strtol(end + 1, &end, 10);
    if (end != id + len || f->gpus[g].mig != 1 || gi < 0 || gi >= f->gpus[g].mig_count) return -1;
    return g;
  }
  int found = -1;
  for (int g = 0; g < f->gpu_count; g++)
    for (int m = 0; m < f->gpus[g].mig_count; m++) {
      if (!uuid_prefix(id, len, f->gpus[g].mig_uuids[m] + 4)) continue;
      if (found >= 0 && found != g) return -1;
      found = g;
    }
  return found;
}

/* One entry of CUDA_VISIBLE_DEVICES: the fixture GPU, or -1 (the list ends there). */
static int entry_gpu(const ps_fixture *f, const int *order, const char *s, size_t len, bool *mig) {
  *mig = false;
  if (len == 0) return -1;
  if (strncasecmp(s, "GPU-", 4) == 0) return gpu_by_uuid(f, s + 4, len - 4);
  if (strncasecmp(s, "MIG-", 4) == 0) {
    *mig = true;
    return gpu_by_mig(f, s + 4, len - 4);
  }
  long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i]) || v > PS_FIX_MAX_GPUS) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v < f->gpu_count ? order[v] : -1;
}

int ps__fake_cuda_enumerate(const ps_fixture *f, int *gpus, bool *mig) {
  int order[PS_FIX_MAX_GPUS], count = 0;
  enumeration_order(f, order);
  const char *env = getenv("CUDA_VISIBLE_DEVICES");
  if (!env) {
    for (int i = 0; i < f->gpu_count; i++) {
      gpus[count] = order[i];
      mig[count++] = false;
    }
    return count;
  }
  bool seen[PS_FIX_MAX_GPUS] = {false}, have_mig = false;
  for (const char *s = env; *s && count < f->gpu_count;) {
    while (*s == ' ')
      s++;
    size_t len = strcspn(s, ",");
    size_t trimmed = len;
    while (trimmed > 0 && s[trimmed - 1] == ' ')
      trimmed--;
    bool is_mig = false;
    int g = entry_gpu(f, order, s, trimmed, &is_mig);
    if (g < 0 || (seen[g] && !(is_mig && have_mig))) break;
    /* CUDA enumerates one MIG device per process: later MIG entries are left out. */
    if (!is_mig || !have_mig) {
      seen[g] = true;
      gpus[count] = g;
      mig[count++] = is_mig;
      have_mig = have_mig || is_mig;
    }
    s += len;
    if (*s == ',') s++;
  }
  return count;
}

/* ---- which GPUs got a context ----------------------------------------------------------- */

static int contexts_made[PS_FIX_MAX_GPUS];

void ps__fake_cuda_contexts_reset(void) { memset(contexts_made, 0, sizeof(contexts_made)); }

void ps__fake_cuda_context_made(const ps_fixture *f, int gpu) {
  contexts_made[gpu]++;
  const char *path = getenv("PEERSCOPE_FAKE_CONTEXT_LOG");
  if (!path || !*path) return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  char line[192];
  int n =
      snprintf(line, sizeof(line), "ctx %d %s %s\n", gpu, f->gpus[gpu].bus_id, f->gpus[gpu].uuid);
  if (n > 0 && write(fd, line, (size_t)n) != n) {
    /* a test reading the log will notice the missing line */
  }
  close(fd);
}

PS_FAKE_EXPORT int ps_fake_contexts_made(int gpu) {
  ps__fake_lock();
  int n = gpu >= 0 && gpu < PS_FIX_MAX_GPUS ? contexts_made[gpu] : -1;
  ps__fake_unlock();
  return n;
}
