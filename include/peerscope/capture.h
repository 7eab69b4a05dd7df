/* peerscope/capture.h: fixtures played by the fake drivers, and captures of one machine.
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_CAPTURE_H
#define PEERSCOPE_CAPTURE_H

#include "report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fixtures: a described machine played by peerscope's fake drivers ---------------- */

/* The drivers that play a fixture. Hand both on: ps_probe_opts, ps_verify_opts,
 * ps_bench_opts, ps_doctor_opts and ps_capture_opts each have driver_dir and fixture. */
typedef struct ps_fixture_source {
  char driver_dir[4096]; /* the fake drivers' directory */
  char fixture[4096];    /* the fixture, as given (or the bundled example's full path) */
  bool example;          /* the bundled example machine was chosen */
} ps_fixture_source;

#define PS_EXAMPLE_FIXTURE "example-4x-a100.topo" /* in PS_BUNDLED_FIXTURES */

/* Chooses the fake drivers playing `fixture`, or the bundled example machine when fixture is
 * NULL, after reading the fixture through (PS_ERR_BAD_INPUT naming its line and column, or
 * that it cannot be read). `driver_dir` names the fake drivers; NULL = the bundled ones
 * (PS_ERR_NOT_FOUND when they, or the example, are not installed). Sets no environment
 * variable. *out is the caller's: ps_fixture_source_free. */
PS_API ps_status ps_fixture_select(ps_ctx *ctx, const char *fixture, const char *driver_dir,
                                   ps_fixture_source **out);
PS_API void ps_fixture_source_free(ps_fixture_source *source);

/* ---- capture: one machine in one file, played back elsewhere (docs/capture.md) -------- */

typedef struct ps_capture_opts {
  size_t size;            /* sizeof(ps_capture_opts): PS_INIT(ps_capture_opts) */
  const char *sysfs_root; /* where /sys and /proc are read; NULL/"" = the real ones */
  const char *driver_dir; /* as ps_probe_opts.driver_dir, for the NVML flags */
  bool keep_hostname;     /* keep the report's hostname (removed by default) */
  bool run_nvidia_smi;    /* record `nvidia-smi topo -m` / `-p2p r` when it exists */
  const char *const *env; /* "NAME=value" ... NULL; NULL = this process's environment */
  const char *fixture;    /* as ps_probe_opts.fixture, for the NVML flags */
} ps_capture_opts;

/* Writes the capture of `report` to `path` (a gzip'd tar): the report, a fixture for the fake
 * drivers, the sysfs and /proc files the doctor reads for this report (found by running it),
 * the doctor's variables and nvidia-smi's topology. PS_ERR_NOT_FOUND when built without
 * libarchive; nothing is left at `path` on failure. */
PS_API ps_status ps_capture_write(ps_ctx *ctx, const ps_report *report, const ps_capture_opts *opts,
                                  const char *path);

/* A capture extracted for replay. Library memory: ps_capture_free removes the directory. */
typedef struct ps_capture {
  char archive[512];    /* the file it came from (the replayed report's origin) */
  char dir[512];        /* the temporary directory holding it */
  char report[600];     /* dir/report.json */
  char fixture[600];    /* dir/machine.topo: ps_*_opts.fixture to play its GPUs back */
  char sysfs_root[600]; /* dir/root: the recorded /sys and /proc (may not exist) */
  char **env;           /* "NAME=value" ... NULL: the doctor's variables at capture time */
} ps_capture;

/* True when the file starts like a gzip stream (a capture, not a report or topo text). */
PS_API bool ps_capture_is_archive(const char *path);
/* Extracts the capture at `path` into a fresh directory under `tmp_dir` (NULL = $TMPDIR, then
 * /tmp), safely: no absolute paths, no "..", symlinks only inside, regular files, directories
 * and symlinks only, size and count caps; on any refusal nothing is left. Errors name the
 * archive and the member; PS_ERR_BAD_INPUT for a refused archive. *out: ps_capture_free. */
PS_API ps_status ps_capture_open(ps_ctx *ctx, const char *path, const char *tmp_dir,
                                 ps_capture **out);
/* The recorded report: source PS_SOURCE_FILE, origin = the archive. *out: ps_report_free. */
PS_API ps_status ps_capture_report(ps_ctx *ctx, const ps_capture *capture, ps_report **out);
/* Removes the extracted directory and frees the capture. NULL is fine. */
PS_API void ps_capture_free(ps_capture *capture);

#ifdef __cplusplus
}
#endif
#endif
