/* Fixture loading, call counting and fault lookup for one fake driver library. */
#include "fake_core.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PS_FAKE_DRIVER
#error "PS_FAKE_DRIVER must be PS_FIX_DRV_NVML or PS_FIX_DRV_CUDA"
#endif

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ps_fixture *fixture;
static bool attempted;                /* a load was tried for `attempted_path` */
static char attempted_path[PATH_MAX]; /* "" when $PEERSCOPE_FIXTURE was unset */
static bool chosen;                   /* peerscope_fake_use_fixture named one: not the env */
static char chosen_path[PATH_MAX];
static char machine[sizeof(((ps_fixture *)0)->machine)];
static long calls;
static long counted_before_reload; /* calls before the last reload */

void ps__fake_lock(void) { pthread_mutex_lock(&lock); }
void ps__fake_unlock(void) { pthread_mutex_unlock(&lock); }

static void load(const char *path) {
  char err[512];
  ps__fake_reset_hook();
  ps__fixture_free(fixture);
  fixture = NULL;
  counted_before_reload += calls;
  calls = 0;
  machine[0] = '\0';
  attempted = true;
  snprintf(attempted_path, sizeof(attempted_path), "%s", path ? path : "");
  if (!path || !*path) {
    fprintf(stderr, "peerscope fake driver: PEERSCOPE_FIXTURE is not set\n");
    return;
  }
  fixture = ps__fixture_load(path, err, sizeof(err));
  if (!fixture) {
    fprintf(stderr, "peerscope fake driver: %s\n", err);
    return;
  }
  snprintf(machine, sizeof(machine), "%s", fixture->machine);
}

const ps_fixture *ps__fake_fixture(bool reload) {
  const char *path = chosen ? chosen_path : getenv("PEERSCOPE_FIXTURE");
  if (!attempted || (reload && strcmp(path ? path : "", attempted_path) != 0)) load(path);
  return fixture;
}

void ps__fake_count_call(void) { calls++; }

/* Every call since the library loaded. */
static long total_calls(void) { return counted_before_reload + calls; }

__attribute__((destructor)) static void log_calls(void) {
  const char *path = getenv("PEERSCOPE_FAKE_CALLS_LOG");
  FILE *f = path && *path ? fopen(path, "a") : NULL;
  if (!f) return;
  fprintf(f, "%s %ld\n", PS_FAKE_DRIVER == PS_FIX_DRV_NVML ? "nvml" : "cuda", total_calls());
  fclose(f);
}

void ps__fake_latency(const char *name) {
  const char *spec = getenv("PEERSCOPE_FAKE_LATENCY_MS");
  size_t n = strlen(name);
  for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    if (strncmp(p, name, n) != 0 || p[n] != '=') continue;
    long ms = strtol(p + n + 1, NULL, 10);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0) {
    }
    return;
  }
}
long ps__fake_calls(void) { return calls; }

bool ps__fake_gpu_lost(int gpu) {
  if (!fixture) return false;
  for (int i = 0; i < fixture->fault_count; i++) {
    const ps_fix_fault *ft = &fixture->faults[i];
    if (ft->kind == PS_FAULT_GPU_LOST && ft->gpu_a == gpu && (ft->drivers & PS_FAKE_DRIVER) &&
        calls > ft->after_calls)
      return true;
  }
  return false;
}

const ps_fix_fault *ps__fake_fault(ps_fix_fault_kind kind, int a, int b) {
  if (!fixture) return NULL;
  for (int i = 0; i < fixture->fault_count; i++) {
    const ps_fix_fault *ft = &fixture->faults[i];
    if (ft->kind == kind && ft->gpu_a == a && ft->gpu_b == b) return ft;
  }
  return NULL;
}

int ps__fake_nvlinks_up(const ps_fixture *f, int a, int b) {
  const ps_fix_pair *p = ps__fixture_pair(f, a, b);
  if (p->link != PS_FIX_LINK_NV) return 0;
  const ps_fix_fault *down = ps__fake_fault(PS_FAULT_NVLINK_DOWN, a, b);
  int up = p->nvlinks;
  for (int k = 0; down && k < p->nvlinks; k++)
    up -= (int)(down->links >> k & 1);
  return up;
}

int ps__fake_nvlinks(const ps_fixture *f, int gpu, ps_fake_nvlink *links) {
  int n = 0, via_switch = 0, switch_version = 0;
  for (int b = 0; b < f->gpu_count; b++) {
    if (b == gpu) continue;
    const ps_fix_pair *p = ps__fixture_pair(f, gpu, b);
    if (p->link != PS_FIX_LINK_NV) continue;
    if (p->nvswitch) {
      if (p->nvlinks > via_switch) via_switch = p->nvlinks;
      if (p->nvlink_version > switch_version) switch_version = p->nvlink_version;
      continue;
    }
    const ps_fix_fault *down = ps__fake_fault(PS_FAULT_NVLINK_DOWN, gpu, b);
    for (int k = 0; k < p->nvlinks && n < PS_FIX_MAX_NVLINKS; k++)
      links[n++] = (ps_fake_nvlink){.peer = b,
                                    .version = p->nvlink_version,
                                    .switch_id = 0,
                                    .down = down && (down->links >> k & 1)};
  }
  /* Spread switch links over 4 switches, as HGX boards do (the parser caps the total). */
  for (int k = 0; k < via_switch && n < PS_FIX_MAX_NVLINKS; k++)
    links[n++] = (ps_fake_nvlink){.peer = -1, .version = switch_version, .switch_id = k % 4};
  return n;
}

/* libpeerscope names the fixture here (ps_probe_opts.fixture) instead of in the caller's
 * environment; NULL goes back to $PEERSCOPE_FIXTURE. Takes effect at the next load (nvmlInit,
 * cuInit), as a change of the variable does. */
PS_FAKE_EXPORT void peerscope_fake_use_fixture(const char *path) {
  ps__fake_lock();
  chosen = path != NULL;
  snprintf(chosen_path, sizeof(chosen_path), "%s", path ? path : "");
  ps__fake_unlock();
}

/* Exported by both libraries so that peerscope can tell it is talking to a fake. */
PS_FAKE_EXPORT const char *peerscope_fake_fixture(void) {
  ps__fake_lock();
  ps__fake_fixture(false);
  const char *path = attempted && attempted_path[0] ? attempted_path : NULL;
  ps__fake_unlock();
  return path;
}

PS_FAKE_EXPORT const char *peerscope_fake_machine(void) {
  ps__fake_lock();
  const char *m = ps__fake_fixture(false) ? machine : NULL;
  ps__fake_unlock();
  return m;
}

__attribute__((destructor)) static void fake_core_fini(void) {
  ps__fake_lock();
  ps__fake_reset_hook();
  ps__fixture_free(fixture);
  fixture = NULL;
  ps__fake_unlock();
}
