/* peerscope/doctor.h: why P2P is broken, and how to fix it.
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_DOCTOR_H
#define PEERSCOPE_DOCTOR_H

#include "report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- doctor: why P2P is broken, and how to fix it ------------------------------------ */

typedef enum ps_severity {
  PS_SEVERITY_INFO = 0,
  PS_SEVERITY_WARNING = 1,
  PS_SEVERITY_ERROR = 2 /* `peerscope doctor` exits 1 */
} ps_severity;

/* One thing found wrong (or worth knowing) about the machine, with its proof and its fix. */
typedef struct ps_finding {
  ps_severity severity;
  char code[48];       /* stable name: "acs-redirect", "iommu-translated", ... */
  char title[256];     /* what is wrong, one line */
  char evidence[1024]; /* what was read: the file, register or value */
  char breaks[512];    /* what it breaks: NCCL hang, silent corruption, slow P2P, ... */
  char fix[1024];      /* a concrete command or BIOS setting */
  char link[256];      /* the vendor document (or the issue) that explains it */
  int gpu_a, gpu_b;    /* the GPUs concerned (report indexes), -1 when none */
} ps_finding;

typedef enum ps_check_state {
  PS_CHECK_OK = 0,         /* looked, found nothing wrong */
  PS_CHECK_FINDING = 1,    /* at least one finding */
  PS_CHECK_NOT_CHECKED = 2 /* could not look (no sysfs, not root, no NVML); note says why */
} ps_check_state;

/* What each check did, found or not, so "nothing found" and "could not look" differ. */
typedef struct ps_doctor_check {
  char name[32]; /* "verify", "ipc", "acs", "iommu", "driver", "pcie-link", "gpus", "env",
                    "nvml" */
  ps_check_state state;
  char note[384];
} ps_doctor_check;

#define PS_DOCTOR_MAX_CHECKS 16

typedef struct ps_doctor_opts {
  size_t size; /* sizeof(ps_doctor_opts): PS_INIT(ps_doctor_opts) */
  /* Where /sys and /proc are read from: NULL = $PEERSCOPE_SYSFS_ROOT, else the real ones.
   * A report from a fixture or a file gets sysfs checks only when a root is given. */
  const char *sysfs_root;
  /* "NAME=value" strings ending with NULL; NULL = this process's environment. */
  const char *const *env;
  bool skip_nvml;         /* do not open NVML (MIG, persistence, display unchecked) */
  const char *driver_dir; /* as ps_probe_opts.driver_dir */
  const char *fixture;    /* as ps_probe_opts.fixture (a fixture's report, a replay) */
} ps_doctor_opts;

typedef struct ps_doctor_result {
  int count;
  ps_finding *findings; /* most serious first; within a severity, in check order */
  int errors, warnings, infos;
  int check_count;
  ps_doctor_check checks[PS_DOCTOR_MAX_CHECKS];
  char sysfs_root[512]; /* the root used, "" for the real /sys and /proc */
} ps_doctor_result;

/* Runs every check against `report` (probed and ideally verified) and this machine's sysfs,
 * /proc, NVML and environment. Findings are not failures of this call: PS_OK with
 * result->errors > 0 is a sick machine. Never crashes on malformed sysfs files. */
PS_API ps_status ps_doctor_run(ps_ctx *ctx, const ps_report *report, const ps_doctor_opts *opts,
                               ps_doctor_result **out);
PS_API void ps_doctor_result_free(ps_doctor_result *result);
/* peerscope.doctor/1 (docs/doctor.schema.json); *out is freed with ps_free. */
PS_API ps_status ps_doctor_to_json(ps_ctx *ctx, const ps_report *report,
                                   const ps_doctor_result *result, char **out);
PS_API const char *ps_severity_name(ps_severity severity);    /* "error", "warning", "info" */
PS_API const char *ps_check_state_name(ps_check_state state); /* "ok", "finding", "not checked" */

#ifdef __cplusplus
}
#endif
#endif
