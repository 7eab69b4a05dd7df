#include "drv/nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t nvml_mutex = PTHREAD_MUTEX_INITIALIZER;

void ps__nvml_lock(void) { pthread_mutex_lock(&nvml_mutex); }
void ps__nvml_unlock(void) { pthread_mutex_unlock(&nvml_mutex); }

#define SYM(field, req, ...)                                                                       \
  { (void **)&n->field, {__VA_ARGS__}, req, NULL }

static size_t build_table(ps__nvml *n, ps__sym *t) {
  ps__sym table[] = {
      SYM(Init, true, "nvmlInit_v2", "nvmlInit"),
      SYM(Shutdown, true, "nvmlShutdown"),
      SYM(ErrorString, false, "nvmlErrorString"),
      SYM(SystemGetDriverVersion, false, "nvmlSystemGetDriverVersion"),
      SYM(SystemGetNVMLVersion, false, "nvmlSystemGetNVMLVersion"),
      SYM(SystemGetCudaDriverVersion, false, "nvmlSystemGetCudaDriverVersion_v2",
          "nvmlSystemGetCudaDriverVersion"),
      SYM(DeviceGetCount, true, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"),
      SYM(DeviceGetHandleByIndex, true, "nvmlDeviceGetHandleByIndex_v2",
          "nvmlDeviceGetHandleByIndex"),
      SYM(DeviceGetName, true, "nvmlDeviceGetName"),
      SYM(DeviceGetUUID, true, "nvmlDeviceGetUUID"),
      SYM(DeviceGetPciInfo, true, "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2",
          "nvmlDeviceGetPciInfo"),
      SYM(DeviceGetMemoryInfo, false, "nvmlDeviceGetMemoryInfo"),
      SYM(DeviceGetBAR1MemoryInfo, false, "nvmlDeviceGetBAR1MemoryInfo"),
      SYM(DeviceGetCudaComputeCapability, false, "nvmlDeviceGetCudaComputeCapability"),
      SYM(DeviceGetNumaNodeId, false, "nvmlDeviceGetNumaNodeId"),
      SYM(DeviceGetMemoryAffinity, false, "nvmlDeviceGetMemoryAffinity"),
      SYM(DeviceGetCpuAffinity, false, "nvmlDeviceGetCpuAffinity"),
      SYM(DeviceGetCurrPcieLinkGeneration, false, "nvmlDeviceGetCurrPcieLinkGeneration"),
      SYM(DeviceGetMaxPcieLinkGeneration, false, "nvmlDeviceGetMaxPcieLinkGeneration"),
      SYM(DeviceGetCurrPcieLinkWidth, false, "nvmlDeviceGetCurrPcieLinkWidth"),
      SYM(DeviceGetMaxPcieLinkWidth, false, "nvmlDeviceGetMaxPcieLinkWidth"),
      SYM(DeviceGetTopologyCommonAncestor, false, "nvmlDeviceGetTopologyCommonAncestor"),
      SYM(DeviceGetP2PStatus, false, "nvmlDeviceGetP2PStatus"),
      SYM(DeviceGetNvLinkState, false, "nvmlDeviceGetNvLinkState"),
      SYM(DeviceGetNvLinkVersion, false, "nvmlDeviceGetNvLinkVersion"),
      SYM(DeviceGetNvLinkRemotePciInfo, false, "nvmlDeviceGetNvLinkRemotePciInfo_v2",
          "nvmlDeviceGetNvLinkRemotePciInfo"),
      SYM(DeviceGetNvLinkRemoteDeviceType, false, "nvmlDeviceGetNvLinkRemoteDeviceType"),
      SYM(DeviceGetMigMode, false, "nvmlDeviceGetMigMode"),
      SYM(DeviceGetPersistenceMode, false, "nvmlDeviceGetPersistenceMode"),
      SYM(DeviceGetDisplayActive, false, "nvmlDeviceGetDisplayActive"),
  };
  memcpy(t, table, sizeof(table));
  return PS_ARRAY_LEN(table);
}

const char *ps__nvml_error(const ps__nvml *nvml, nvmlReturn_t rc) {
  static __thread char buf[32];
  if (nvml->ErrorString) {
    const char *s = nvml->ErrorString(rc);
    if (s) return s;
  }
  snprintf(buf, sizeof(buf), "NVML error %d", rc);
  return buf;
}

/* The fixture goes to the fake driver through its own entry point, never through the caller's
 * environment; every open names it (or NULL) so that an earlier choice does not stick. */
static ps_status hand_fixture(ps_ctx *ctx, ps__nvml *nvml, const char *fixture) {
  void (*use_fixture)(const char *) =
      (void (*)(const char *))dlsym(nvml->lib.handle, "peerscope_fake_use_fixture");
  if (use_fixture) {
    use_fixture(fixture && *fixture ? fixture : NULL);
    return PS_OK;
  }
  if (!fixture || !*fixture) return PS_OK;
  return ps__fail(ctx, PS_ERR_INVALID_ARG,
                  "fixture %s: %s is not peerscope's fake driver (a fixture plays only through "
                  "the fake drivers)",
                  fixture, nvml->lib.path);
}

ps_status ps__nvml_open(ps_ctx *ctx, ps__nvml *nvml, const char *dir, const char *fixture) {
  static const char *const sonames[] = {"libnvidia-ml.so.1", "libnvidia-ml.so", NULL};
  char err[PS_ERRBUF_LEN];
  memset(nvml, 0, sizeof(*nvml));
  if (!ps__lib_open(&nvml->lib, sonames, dir, err, sizeof(err)))
    return ps__fail(ctx, PS_ERR_NO_DRIVER, "no NVIDIA driver: %s", err);

  ps__sym table[32];
  size_t count = build_table(nvml, table);
  if (!ps__lib_resolve(&nvml->lib, table, count, err, sizeof(err))) {
    ps__lib_close(&nvml->lib);
    return ps__fail(ctx, PS_ERR_DRIVER_UNAVAILABLE, "unusable NVIDIA driver: %s", err);
  }
  ps_status st = hand_fixture(ctx, nvml, fixture);
  if (st != PS_OK) {
    ps__lib_close(&nvml->lib);
    return st;
  }
  /* peerscope's fake driver says so; the report then records the fixture as its source. */
  const char *(*fake_fixture)(void) =
      (const char *(*)(void))dlsym(nvml->lib.handle, "peerscope_fake_fixture");
  const char *(*fake_machine)(void) =
      (const char *(*)(void))dlsym(nvml->lib.handle, "peerscope_fake_machine");
  if (fake_fixture) nvml->fake_fixture = fake_fixture();
  if (fake_machine) nvml->fake_machine = fake_machine();

  ps__nvml_lock();
  nvmlReturn_t rc = nvml->Init();
  ps__nvml_unlock();
  if (rc != NVML_SUCCESS) {
    st = ps__fail(ctx, PS_ERR_DRIVER_UNAVAILABLE, "nvmlInit failed (%s): %s", nvml->lib.path,
                  ps__nvml_error(nvml, rc));
    ps__lib_close(&nvml->lib);
    return st;
  }
  nvml->initialised = true;
  return PS_OK;
}

void ps__nvml_close(ps__nvml *nvml) {
  if (nvml->initialised) {
    ps__nvml_lock();
    nvml->Shutdown();
    ps__nvml_unlock();
  }
  nvml->initialised = false;
  ps__lib_close(&nvml->lib);
}
