/* The machine key (key.h). */
#include "probe/key.h"

#include <stdio.h>
#include <string.h>

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

bool ps__probe_key_of(const ps_report *r, uint64_t *key) {
  uint64_t h = start_key(r->driver_version, r->boot_id, r->gpu_count,
                         r->source == PS_SOURCE_FIXTURE ? r->origin : NULL);
  for (int g = 0; g < r->gpu_count; g++) {
    if (!(r->gpus[g].valid & PS_GPU_UUID)) return false;
    h = ps__hash_str(h, r->gpus[g].uuid);
  }
  *key = h;
  return true;
}

ps_status ps__probe_key_read(ps_ctx *ctx, const ps_probe_opts *opts, uint64_t *key, bool *usable,
                             double *init_ms, double *read_ms) {
  ps__nvml nvml;
  double t0 = ps__now_ms();
  *usable = false;
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
