/* peerscope doctor's parts: one file per check, sharing the finding list and the sysfs
 * reader (everything under a root prefix, so recorded trees replay a machine). */
#ifndef PS_DOCTOR_INTERNAL_H
#define PS_DOCTOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "doctor/doctor.h"

/* Vendor documents the findings point at. */
#define PS_DOC_NCCL_ACS                                                                            \
  "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html"                 \
  "#pci-access-control-services-acs"
#define PS_DOC_NCCL_ENV "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html"

typedef struct ps__doctor {
  ps_ctx *ctx;
  const ps_report *report;
  const ps_doctor_opts *opts;
  ps_doctor_result *res;
  int cap;
  bool oom;
  bool use_sysfs;             /* sysfs and /proc describe the report's machine */
  char root[512];             /* prefix for /sys and /proc, "" = the real ones */
  ps__doctor_recorder record; /* NULL, or told every path and variable read (capture) */
  void *record_user;
} ps__doctor;

/* A new finding (zeroed, code set, GPUs -1); NULL when out of memory (d->oom is set). */
ps_finding *ps__doctor_add(ps__doctor *d, ps_severity severity, const char *code);
/* snprintf into a fixed field, truncating quietly. */
void ps__dset(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends to a fixed field, truncating quietly. */
void ps__dcat(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define PS_DSET(field, ...) ps__dset(field, sizeof(field), __VA_ARGS__)
#define PS_DCAT(field, ...) ps__dcat(field, sizeof(field), __VA_ARGS__)
/* Records what a check did. */
void ps__doctor_check(ps__doctor *d, const char *name, ps_check_state state, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The value of an environment variable as the doctor sees it (opts->env or the process). */
const char *ps__doctor_env(const ps__doctor *d, const char *name);
/* "GPU 1 (NVIDIA A100 80GB PCIe, 00000000:52:00.0)" */
const char *ps__doctor_gpu_label(const ps_report *r, int gpu, char *buf, size_t len);
/* True when the pair failed a real transfer (corrupt, error, hang, or refused while claimed). */
bool ps__doctor_pair_failed(const ps_pair *p);
/* Whether the pair fails only across processes: ce ok, sm not failed, ipc failed (the
 * environment, not the link: check_ipc.c's finding, not the others'). */
bool ps__doctor_ipc_only(const ps_pair *p);

/* ---- sysfs ---- */

/* root + path ("/sys/class/iommu") into out; false if it does not fit. */
bool ps__sysfs_path(const ps__doctor *d, const char *path, char *out, size_t len);
/* The same, for a directory whose entries are listed. */
bool ps__sysfs_list_path(const ps__doctor *d, const char *path, char *out, size_t len);
/* Reads at most len-1 bytes of a text file, first line only, trimmed; false if unreadable. */
bool ps__sysfs_read_line(const char *path, char *out, size_t len);
/* Reads up to `len` bytes of a binary file; returns the count (0 if unreadable). */
size_t ps__sysfs_read_bytes(const char *path, uint8_t *out, size_t len);
/* "00000000:18:00.0" -> "0000:18:00.0" (sysfs form); false if not a bus id. */
bool ps__sysfs_busid(const char *nvml_busid, char *out, size_t len);

/* Resolves root/sys/bus/pci/devices/<busid>; false (why in `why`) if it is not there. */
bool ps__pci_path_of(const ps__doctor *d, const char *busid, ps__pci_path *out, char *why,
                     size_t why_len);

/* ---- ACS (PCIe extended capability 0x000D) ---- */

enum {
  PS_ACS_SRC_VALID = 1u << 0,
  PS_ACS_TRANS_BLOCK = 1u << 1,
  PS_ACS_REQ_REDIR = 1u << 2,
  PS_ACS_CMPLT_REDIR = 1u << 3,
  PS_ACS_UPSTREAM_FWD = 1u << 4,
  PS_ACS_EGRESS_CTRL = 1u << 5,
  PS_ACS_DIRECT_TRANS = 1u << 6
};
/* Bits that send or block peer-to-peer traffic instead of routing it inside the switch. */
#define PS_ACS_P2P_BITS (PS_ACS_REQ_REDIR | PS_ACS_CMPLT_REDIR | PS_ACS_EGRESS_CTRL)

typedef enum ps__acs_status {
  PS_ACS_FOUND = 0,    /* cap and ctl filled */
  PS_ACS_ABSENT = 1,   /* extended config space read, no ACS capability */
  PS_ACS_SHORT = 2,    /* config shorter than 0x104 bytes: not root, or not PCIe */
  PS_ACS_MALFORMED = 3 /* a capability pointer out of range or a loop */
} ps__acs_status;

/* Walks the extended capability list of a config-space image (bounded, never trusts a
 * pointer). */
ps__acs_status ps__acs_find(const uint8_t *config, size_t len, unsigned *cap_offset, uint16_t *ctl);
/* "SrcValid+ TransBlk- ReqRedir+ ..." as lspci prints ACSCtl. */
void ps__acs_format(uint16_t ctl, char *out, size_t len);

/* ---- the checks, in the order they run ---- */
void ps__check_verify(ps__doctor *d);
void ps__check_ipc(ps__doctor *d);
void ps__check_acs(ps__doctor *d);
void ps__check_iommu(ps__doctor *d);
void ps__check_driver(ps__doctor *d);
void ps__check_pcie_link(ps__doctor *d);
void ps__check_gpus(ps__doctor *d);
void ps__check_env(ps__doctor *d);
void ps__check_nvml(ps__doctor *d);

#endif
