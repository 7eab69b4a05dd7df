/* What only NVML knows about a GPU and the report does not hold: MIG mode, persistence mode,
 * a display on it. Read by the doctor (check 8) and recorded by capture. */
#ifndef PS_PROBE_FLAGS_H
#define PS_PROBE_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

typedef struct ps__gpu_flags {
  int mig, persistence, display; /* 1/0, -1 unknown */
} ps__gpu_flags;

/* Fills flags[g] for every GPU of the report (all -1 where NVML cannot say, or where NVML's
 * GPU g is not the report's: another boot). False, with NVML's reason in why, when NVML
 * cannot be opened at all. */
bool ps__probe_gpu_flags(const ps_report *report, const char *driver_dir, const char *fixture,
                         ps__gpu_flags *flags, char *why, size_t why_len);

#endif
