/* peerscope capture: one tar.gz holding what the commands need to replay a machine elsewhere
 * (the report with its verdicts, a fixture for the fake drivers, the sysfs and /proc files
 * the doctor reads, the doctor's variables, nvidia-smi's topology). Format: docs/capture.md.
 * The public side (ps_capture_write, ps_capture_open, ...) is in peerscope/capture.h. */
#ifndef PS_CAPTURE_H
#define PS_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"
#include "probe/flags.h"

/* Members of an archive, relative to its root. */
#define PS_CAPTURE_MAGIC "peerscope-capture 1"
#define PS_CAPTURE_MANIFEST "peerscope-capture.txt"
#define PS_CAPTURE_REPORT "report.json"
#define PS_CAPTURE_FIXTURE "machine.topo"
#define PS_CAPTURE_ENV "env.txt"
#define PS_CAPTURE_ROOT "root" /* the recorded /sys and /proc */

/* Extraction limits: a capture of a large machine holds a few hundred small files. */
#define PS_CAPTURE_MAX_MEMBERS 10000
#define PS_CAPTURE_MAX_MEMBER (16u << 20)
#define PS_CAPTURE_MAX_TOTAL (256u << 20)

/* The fake-driver fixture that plays back the report's NVML and CUDA facts (no faults: the
 * verdicts stay in the report). mig/persistence/display per GPU: -1 unknown, may be NULL. */
ps_status ps__capture_fixture(ps_ctx *ctx, const ps_report *report, const ps__gpu_flags *flags,
                              char **out);

/* Removes a directory tree without following symlinks. */
void ps__capture_rmtree(const char *dir);

#endif
