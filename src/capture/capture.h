/* peerscope capture: one tar.gz holding what the commands need to replay a machine elsewhere
 * (the report with its verdicts, a fixture for the fake drivers, the sysfs and /proc files
 * the doctor reads, the doctor's variables, nvidia-smi's topology). Format: docs/capture.md. */
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

typedef struct ps_capture_opts {
  const char *sysfs_root; /* where /sys and /proc are read; NULL/"" = the real ones */
  const char *driver_dir; /* as ps_probe_opts.driver_dir, for the NVML flags */
  bool keep_hostname;     /* keep the report's hostname (removed by default) */
  bool run_nvidia_smi;    /* record `nvidia-smi topo -m` / `-p2p r` when it exists */
  const char *const *env; /* NULL = this process's environment */
} ps_capture_opts;

/* Writes the capture of `report` to `path` (gzip'd tar). The sysfs files are the ones the
 * doctor reads for this report, found by running it. */
ps_status ps__capture_write(ps_ctx *ctx, const ps_report *report, const ps_capture_opts *opts,
                            const char *path);

/* The fake-driver fixture that plays back the report's NVML and CUDA facts (no faults: the
 * verdicts stay in the report). mig/persistence/display per GPU: -1 unknown, may be NULL. */
ps_status ps__capture_fixture(ps_ctx *ctx, const ps_report *report, const ps__gpu_flags *flags,
                              char **out);

/* A replayable capture, extracted into a fresh temporary directory. */
typedef struct ps_capture {
  char dir[512];     /* the temporary directory (removed by ps__capture_close) */
  char report[600];  /* dir/report.json */
  char fixture[600]; /* dir/machine.topo */
  char root[600];    /* dir/root: the sysfs root */
  char **env;        /* "NAME=value" ... NULL, the doctor's variables at capture time */
} ps_capture;

/* True when the file starts like a gzip stream (a capture, not a report or topo text). */
bool ps__capture_is_archive(const char *path);
/* Extracts `path` safely (no absolute paths, no "..", symlinks only inside, regular files,
 * directories and symlinks only, size and count caps); on any refusal nothing is left. Errors
 * name the archive and the member. PS_ERR_BAD_INPUT for a refused archive. */
ps_status ps__capture_open(ps_ctx *ctx, const char *path, ps_capture *out);
/* Loads the recorded report: source PS_SOURCE_FILE, origin = `archive`. */
ps_status ps__capture_report(ps_ctx *ctx, const ps_capture *cap, const char *archive,
                             ps_report **out);
void ps__capture_close(ps_capture *cap);

/* Removes a directory tree without following symlinks. */
void ps__capture_rmtree(const char *dir);

#endif
