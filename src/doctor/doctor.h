/* What the doctor offers the modules above it (capture): a run that reports every path and
 * variable it reads, and a GPU's PCI path under a sysfs root. The checks' shared state stays
 * in doctor_internal.h, for the doctor's own files. */
#ifndef PS_DOCTOR_H
#define PS_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

/* What a check reads, as `peerscope capture` records it: the list is derived from the checks
 * themselves rather than kept by hand. */
typedef enum ps__doctor_read {
  PS_DOCTOR_READ_PATH = 0, /* a file or directory (links followed), e.g. "/proc/cmdline" */
  PS_DOCTOR_READ_LIST = 1, /* a directory whose entry names are read */
  PS_DOCTOR_READ_ENV = 2   /* an environment variable's name */
} ps__doctor_read;
typedef void (*ps__doctor_recorder)(void *user, ps__doctor_read kind, const char *what);

/* ps_doctor_run, telling `record` every path and variable the checks read. */
ps_status ps__doctor_run_recorded(ps_ctx *ctx, const ps_report *report, const ps_doctor_opts *opts,
                                  ps__doctor_recorder record, void *user, ps_doctor_result **out);

#define PS_PCI_PATH_MAX 16
/* The PCI devices from the host bridge down to a GPU, from its sysfs device link. */
typedef struct ps__pci_path {
  char host[32];                 /* "pci0000:00" */
  int count;                     /* devices, the GPU last */
  char dev[PS_PCI_PATH_MAX][16]; /* "0000:00:01.0", ..., "0000:18:00.0" */
} ps__pci_path;

/* A GPU's PCI path under root ("" = the real /sys), nothing recorded; false (why in `why`)
 * if it is not there. */
bool ps__pci_path_under(const char *root, const char *busid, ps__pci_path *out, char *why,
                        size_t why_len);

#endif
