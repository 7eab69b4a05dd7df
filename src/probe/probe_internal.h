/* The probe's parts: host facts, per-GPU facts and per-pair links, all read through NVML. */
#ifndef PS_PROBE_INTERNAL_H
#define PS_PROBE_INTERNAL_H

#include "drv/nvml.h"

/* Largest GPU count whose NVLink ends are matched by index. */
#define PS_PROBE_MAX_NVLINK_PEERS 64
#include "peerscope/peerscope.h"

/* Fills report->gpus[i] from NVML; unreadable fields keep their valid bit clear.
 * handles[i] receives the device handle (NULL if even that failed). */
void ps__probe_gpu(const ps__nvml *nvml, int index, ps_gpu *gpu, nvmlDevice_t *handle);

/* Fills every pair's link class, NVLink count/version/NVSwitch and NVML claims. */
void ps__probe_links(const ps__nvml *nvml, ps_report *report, const nvmlDevice_t *handles);

/* Turns a cpuset bitmask into a cpulist ("0-15,32-47"). */
void ps__cpulist_format(const unsigned long *mask, unsigned words, char *out, size_t out_len);

#endif
