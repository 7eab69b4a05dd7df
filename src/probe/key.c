/* The machine key (key.h). */
#include "probe/key.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "drv/nvml.h"
#include "report/report_internal.h"

#define KEY_SCHEMA "peerscope.machine-key/1"

uint64_t ps__hash_bytes(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t ps__hash_str(uint64_t h, const char *s) { return ps__hash_bytes(h, s, strlen(s) + 1); }

uint64_t ps__hash_file(uint64_t h, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return ps__hash_str(h, path);
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
    h = ps__hash_bytes(h, buf, got);
  fclose(f);
  return h;
}

/* The fields in one order for both ways of reading them; fixture NULL for a live machine. */
static uint64_t start_key(const char *driver_version, const char *boot_id, int count,
                          const char *fixture) {
  char buf[32];
  uint64_t h = ps__hash_str(PS_HASH_SEED, KEY_SCHEMA);
  h = ps__hash_str(h, driver_version);
  h = ps__hash_str(h, boot_id);
  snprintf(buf, sizeof(buf), "%d", count);
  h = ps__hash_str(h, buf);
  if (fixture) h = ps__hash_file(ps__hash_str(h, fixture), fixture);
  return h;
}

static void read_boot_id(char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return;
  if (fgets(out, (int)len, f)) out[strcspn(out, "\r\n")] = '\0';
  fclose(f);
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted names in dir that start with prefix (at most cap); the count, -1 when unreadable. */
static int list_dir(const char *dir, const char *prefix, char names[][64], int cap) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < cap;)
    if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0)
      ps__strlcpy(names[n++], e->d_name, 64);
  closedir(d);
  qsort(names, (size_t)n, 64, cmp_name);
  return n;
}

/* The first line of path starting with label, after it (trimmed); false when none. */
static bool find_line(const char *path, const char *label, char *out, size_t len) {
  FILE *f = fopen(path, "r");
  char line[512];
  bool found = false;
  while (f && !found && fgets(line, sizeof(line), f)) {
    if (strncmp(line, label, strlen(label)) != 0) continue;
    const char *v = line + strlen(label);
    while (*v == ' ' || *v == '\t')
      v++;
    ps__strlcpy(out, v, len);
    out[strcspn(out, "\r\n")] = '\0';
    found = true;
  }
  if (f) fclose(f);
  return found;
}

int ps__probe_gpu_nodes(const char *root) {
  char path[1024], names[PS_REPORT_MAX_GPUS * 2][64];
  snprintf(path, sizeof(path), "%s/dev", root);
  int n = list_dir(path, "nvidia", names, PS_REPORT_MAX_GPUS * 2), gpus = 0;
  for (int i = 0; i < n; i++)
    gpus += names[i][6] && strspn(names[i] + 6, "0123456789") == strlen(names[i] + 6);
  return n < 0 ? -1 : gpus;
}

bool ps__probe_key_procfs(const char *root, uint64_t *key) {
  char path[1024], text[512], host[256] = "";
  char names[PS_REPORT_MAX_GPUS * 2][64];
  snprintf(path, sizeof(path), "%s/proc/driver/nvidia/version", root);
  if (!find_line(path, "NVRM version:", text, sizeof(text))) return false;
  uint64_t h = ps__hash_str(ps__hash_str(PS_HASH_SEED, KEY_SCHEMA "+procfs"), text);
  snprintf(path, sizeof(path), "%s/proc/sys/kernel/random/boot_id", root);
  if (!find_line(path, "", text, sizeof(text))) return false;
  h = ps__hash_str(h, text);
  gethostname(host, sizeof(host) - 1);
  h = ps__hash_str(h, host);
  snprintf(path, sizeof(path), "%s/proc/driver/nvidia/gpus", root);
  int n = list_dir(path, "", names, PS_REPORT_MAX_GPUS * 2);
  if (n <= 0 || n > PS_REPORT_MAX_GPUS) return false;
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof(path), "%s/proc/driver/nvidia/gpus/%.64s/information", root, names[i]);
    if (!find_line(path, "GPU UUID:", text, sizeof(text)) || strncmp(text, "GPU-", 4) != 0)
      return false;
    h = ps__hash_str(ps__hash_str(h, names[i]), text);
  }
  snprintf(path, sizeof(path), "%s/dev", root);
  n = list_dir(path, "nvidia", names, PS_REPORT_MAX_GPUS * 2);
  for (int i = 0; i < n; i++)
    h = ps__hash_str(h, names[i]);
  *key = h;
  return true;
}

/* Whether peerscope uses the system's own driver (no fixture, no driver directory): only then
 * do the kernel module's files describe what NVML would. */
static bool system_driver(const ps_probe_opts *opts) {
  const char *fixture = getenv("PEERSCOPE_FIXTURE"), *dir = getenv("PEERSCOPE_DRIVER_DIR");
  return !opts->fixture && !opts->driver_dir && !(fixture && *fixture) && !(dir && *dir);
}

ps_status ps__probe_key_read(ps_ctx *ctx, const ps_probe_opts *opts, uint64_t *key, bool *usable,
                             double *init_ms, double *read_ms) {
  ps__nvml nvml;
  double t0 = ps__now_ms();
  *usable = false;
  /* $PEERSCOPE_PROC_ROOT: another root for those files, used with any driver (tests and
   * benchmarks play a machine's files beside a fixture; its content still counts). */
  const char *root = getenv("PEERSCOPE_PROC_ROOT"), *fixture = opts->fixture;
  bool forced = root && *root;
  if (!fixture) fixture = getenv("PEERSCOPE_FIXTURE");
  if ((forced || system_driver(opts)) && ps__probe_key_procfs(forced ? root : "", key)) {
    if (fixture && *fixture) *key = ps__hash_file(ps__hash_str(*key, fixture), fixture);
    *init_ms = 0;
    *read_ms = ps__now_ms() - t0;
    *usable = true;
    return PS_OK;
  }
  ps_status st = ps__nvml_open(ctx, &nvml, opts->driver_dir, opts->fixture);
  if (st != PS_OK) return st;
  double t1 = ps__now_ms();
  char version[80] = "", boot_id[64], uuid[96];
  unsigned count = 0;
  read_boot_id(boot_id, sizeof(boot_id));
  ps__nvml_lock();
  bool ok = nvml.SystemGetDriverVersion &&
            nvml.SystemGetDriverVersion(version, sizeof(version)) == NVML_SUCCESS &&
            nvml.DeviceGetCount(&count) == NVML_SUCCESS && count <= PS_REPORT_MAX_GPUS;
  uint64_t h = ok ? start_key(version, boot_id, (int)count, nvml.fake_fixture) : 0;
  for (unsigned g = 0; ok && g < count; g++) {
    nvmlDevice_t dev = NULL;
    ok = nvml.DeviceGetHandleByIndex(g, &dev) == NVML_SUCCESS &&
         nvml.DeviceGetUUID(dev, uuid, sizeof(uuid)) == NVML_SUCCESS;
    if (ok) h = ps__hash_str(h, uuid);
  }
  ps__nvml_unlock();
  ps__nvml_close(&nvml);
  *init_ms = t1 - t0;
  *read_ms = ps__now_ms() - t1;
  *key = h;
  *usable = ok;
  return PS_OK;
}
