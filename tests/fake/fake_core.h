/* State shared by the entry points of one fake driver library (libcuda.so.1 or
 * libnvidia-ml.so.1): the fixture named by peerscope_fake_use_fixture or, when none was,
 * by $PEERSCOPE_FIXTURE, the driver-call counter
 * that `fault gpu_lost` uses, and the lock that guards both.
 *
 * fake_core.c is compiled into each library separately (PS_FAKE_DRIVER names which), so
 * the two libraries never share state: each counts its own calls. */
#ifndef PS_FAKE_CORE_H
#define PS_FAKE_CORE_H

#include <stdbool.h>

#include "fixture/fixture.h"

#define PS_FAKE_EXPORT __attribute__((visibility("default")))

/* One NVLink of a GPU as NVML numbers them: direct GPU links first (peers in index
 * order), then the links into NVSwitches. */
typedef struct ps_fake_nvlink {
  int peer;      /* fixture index of the remote GPU, -1 for an NVSwitch */
  int version;   /* NVML NVLink version, 0 = unknown */
  int switch_id; /* made-up NVSwitch number for peer == -1 */
  bool down;     /* `fault nvlink_down`: NVML reports it inactive */
} ps_fake_nvlink;

/* The whole state is guarded by one mutex; every entry point runs under it. */
void ps__fake_lock(void);
void ps__fake_unlock(void);

/* The loaded fixture, or NULL. With reload, (re)loads it when the chosen fixture names
 * another path than the last attempt (or nothing was attempted yet); a reload calls the
 * library's reset hook and restarts the call counter. A failure prints one line on
 * stderr. Without reload, loads only if nothing was ever attempted. Lock held. */
const ps_fixture *ps__fake_fixture(bool reload);

/* Called on a reload, before the new fixture is in place: drops library state. */
void ps__fake_reset_hook(void);

/* $PEERSCOPE_FAKE_LATENCY_MS, "name=ms,...": the call `name` (nvmlInit, cuInit, ctx for
 * cuDevicePrimaryCtxRetain) sleeps that long, outside the lock (calls on several threads
 * sleep at once), as a real driver's start-up does: benchmarks of peerscope's own overlap
 * (tests/bench/check_latency.py). Lock not held. */
void ps__fake_latency(const char *name);

/* Counts one driver call of this library (lock held). With $PEERSCOPE_FAKE_CALLS_LOG set, the
 * count is appended there when the library is unloaded or the process exits ("nvml 42"). */
void ps__fake_count_call(void);
long ps__fake_calls(void);

/* Whether fixture GPU `gpu` is lost for this library at the current call count. */
bool ps__fake_gpu_lost(int gpu);

/* The first fault of `kind` on a -> b (-1 matches faults without GPUs), or NULL. */
const ps_fix_fault *ps__fake_fault(ps_fix_fault_kind kind, int a, int b);

/* The pair's NVLinks that are up: its NV<n> minus those `fault nvlink_down` takes down
 * (0 for a PCIe pair). */
int ps__fake_nvlinks_up(const ps_fixture *f, int a, int b);

/* Fills links (PS_FIX_MAX_NVLINKS entries) for GPU gpu; returns the count. */
int ps__fake_nvlinks(const ps_fixture *f, int gpu, ps_fake_nvlink *links);

#endif
