/* peerscope/report.h: the topology report: GPUs, directed pairs, probe, verify, groups, JSON,
 * import. Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_REPORT_H
#define PEERSCOPE_REPORT_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the topology report ------------------------------------------------------------ */

/* How two GPUs are connected (nvidia-smi topo -m vocabulary). */
typedef enum ps_link_class {
  PS_LINK_UNKNOWN = 0,
  PS_LINK_SELF = 1,    /* X */
  PS_LINK_NVLINK = 2,  /* NV# */
  PS_LINK_PIX = 3,     /* at most one PCIe bridge */
  PS_LINK_PXB = 4,     /* several PCIe bridges, no host bridge */
  PS_LINK_PHB = 5,     /* through a PCIe host bridge (the CPU) */
  PS_LINK_NODE = 6,    /* across host bridges within one NUMA node */
  PS_LINK_SYS = 7,     /* across the inter-socket link */
  PS_LINK_INTERNAL = 8 /* same board (e.g. K80) */
} ps_link_class;

/* The driver's P2P claim (nvidia-smi topo -p2p vocabulary). */
typedef enum ps_claim {
  PS_CLAIM_UNKNOWN = 0, /* not read */
  PS_CLAIM_OK = 1,
  PS_CLAIM_CNS = 2,      /* chipset not supported */
  PS_CLAIM_GNS = 3,      /* GPU not supported */
  PS_CLAIM_TNS = 4,      /* topology not supported */
  PS_CLAIM_DISABLED = 5, /* disabled by regkey */
  PS_CLAIM_NS = 6,       /* not supported */
  PS_CLAIM_U = 7         /* unknown */
} ps_claim;

/* What a real transfer showed. */
typedef enum ps_verdict {
  PS_VERDICT_NOT_RUN = 0,     /* no test made (e.g. --no-verify, imported topology) */
  PS_VERDICT_OK = 1,          /* bytes arrived intact both ways */
  PS_VERDICT_CORRUPT = 2,     /* the copy completed but delivered wrong bytes */
  PS_VERDICT_ERROR = 3,       /* a driver call failed (error_name says which) */
  PS_VERDICT_HANG = 4,        /* a step passed its deadline; the worker was killed */
  PS_VERDICT_UNSUPPORTED = 5, /* the driver refused to enable peer access */
  PS_VERDICT_SKIPPED = 6,     /* not tested (GPU lost, filtered out, ...) */
  PS_VERDICT_UNAVAILABLE = 7  /* the mode cannot run here (built without CUDA kernels, a
                                 driver without cuMem): never a pass */
} ps_verdict;

/* How a pair is verified (docs/user-guide.md, "Verification modes"):
 *   ce   the copy engine: cuMemcpyPeer out and back within one process (ps_pair.verdict);
 *   sm   kernels: a kernel on `from` stores into and loads back from `to`'s buffer through
 *        the peer mapping, as vLLM's custom all-reduce and NCCL's kernels do;
 *   ipc  across processes: `to`'s buffer exported by one worker process (a CUDA IPC handle,
 *        and cuMem with a POSIX file descriptor as NCCL's P2P/CUMEM) and opened, written and
 *        read back by another on `from`, then checked by the exporter. */
typedef enum ps_verify_mode { PS_MODE_CE = 0, PS_MODE_SM = 1, PS_MODE_IPC = 2 } ps_verify_mode;
#define PS_MODE_COUNT 3
#define PS_MODE_BIT(mode) (1u << (mode))
#define PS_MODES_ALL 0x7u

/* The outcome of the sm or ipc mode on a pair or a GPU (the ce mode's is ps_pair.verdict,
 * reason, error_name and ps_gpu.local_verdict, local_reason). */
typedef struct ps_mode_result {
  ps_verdict verdict; /* PS_VERDICT_NOT_RUN when the mode was not asked for */
  bool from_cache;
  char reason[160];
  char error_name[48];
} ps_mode_result;

enum {
  PS_GPU_NAME = 1u << 0,
  PS_GPU_UUID = 1u << 1,
  PS_GPU_PCI_BUS_ID = 1u << 2,
  PS_GPU_MEMORY_TOTAL = 1u << 3,
  PS_GPU_MEMORY_FREE = 1u << 4,
  PS_GPU_COMPUTE_CAP = 1u << 5,
  PS_GPU_NUMA_NODE = 1u << 6,
  PS_GPU_CPU_AFFINITY = 1u << 7,
  PS_GPU_PCIE_CURRENT = 1u << 8, /* gen and width */
  PS_GPU_PCIE_MAX = 1u << 9,
  PS_GPU_BAR1 = 1u << 10,
  PS_GPU_CUDA_ORDINAL = 1u << 11,
  PS_GPU_VISIBLE = 1u << 12 /* visible_ordinal: the caller's CUDA_VISIBLE_DEVICES was applied */
};

typedef struct ps_gpu {
  uint32_t valid; /* PS_GPU_* bits */
  int index;      /* NVML index: PCI bus order, as nvidia-smi numbers them */
  char name[96];
  char uuid[96];
  char pci_bus_id[32]; /* "00000000:18:00.0" */
  uint64_t memory_total_bytes;
  uint64_t memory_free_bytes;
  int cc_major, cc_minor;
  int numa_node;
  char cpu_affinity[256]; /* cpulist, "0-55,112-167" */
  int pcie_gen_current, pcie_width_current;
  int pcie_gen_max, pcie_width_max;
  uint64_t bar1_total_bytes;
  int cuda_ordinal;         /* the device's number in the worker's CUDA (PCI_BUS_ID order) */
  ps_verdict local_verdict; /* control copy within this GPU */
  char local_reason[160];
  /* With PS_GPU_VISIBLE: the device's number in the caller's CUDA (its CUDA_VISIBLE_DEVICES
   * and CUDA_DEVICE_ORDER), -1 when that hides it; see ps_report_apply_visible. */
  int visible_ordinal;
  ps_mode_result local_sm, local_ipc; /* the same control in the sm and ipc modes */
} ps_gpu;

enum {
  PS_PAIR_LINK = 1u << 0,
  PS_PAIR_NVLINK = 1u << 1, /* nvlink_count, nvlink_version, nvswitch */
  PS_PAIR_CLAIMS = 1u << 2,
  PS_PAIR_CUDA_CLAIM = 1u << 3,
  PS_PAIR_COPY_TIME = 1u << 4,
  PS_PAIR_CORRUPT_DETAIL = 1u << 5
};

/* One directed pair: `from` copies to `to` and reads back. */
typedef struct ps_pair {
  uint32_t valid; /* PS_PAIR_* bits */
  int from, to;   /* ps_gpu.index values */
  ps_link_class link;
  int nvlink_count;   /* links from `from` that end at `to` (or at NVSwitches) */
  int nvlink_version; /* NVML's version number of those links */
  bool nvswitch;      /* the links go through NVSwitch */
  ps_claim claim_read, claim_write, claim_nvlink, claim_atomics; /* NVML */
  bool cuda_can_access; /* cuDeviceCanAccessPeer(from, to) */
  ps_verdict verdict;
  bool from_cache;     /* verdict read from the verification cache */
  char reason[160];    /* one line: why it failed, "" when ok */
  char error_name[48]; /* driver error name for PS_VERDICT_ERROR */
  uint64_t corrupt_offset;
  uint8_t corrupt_expected, corrupt_seen;
  double copy_us;         /* wall time of the out-and-back copy */
  ps_mode_result sm, ipc; /* the sm and ipc modes (the fields above are the ce mode's) */
} ps_pair;

typedef enum ps_source { PS_SOURCE_LIVE = 0, PS_SOURCE_FIXTURE = 1, PS_SOURCE_FILE = 2 } ps_source;

/* Where time went, in milliseconds; negative = not measured. */
typedef struct ps_timings {
  double driver_init_ms;  /* dlopen + nvmlInit */
  double probe_ms;        /* NVML queries */
  double worker_spawn_ms; /* posix_spawn until the worker's hello */
  double cuda_init_ms;    /* cuInit in the worker */
  double contexts_ms;     /* primary contexts, all GPUs */
  double copies_ms;       /* all pair tests */
  double total_ms;
} ps_timings;

/* Why the verification started a fresh worker process for the jobs left (ps_report.restarts). */
typedef enum ps_restart_cause {
  PS_RESTART_STICKY = 1, /* a CUDA error poisoned the process (700, 719, ...: every later call
                            fails), so nothing more could be tested in it */
  PS_RESTART_HANG = 2,   /* a step passed its deadline; the worker was killed */
  PS_RESTART_DIED = 3    /* the worker died during a step */
} ps_restart_cause;

typedef struct ps_restart {
  ps_restart_cause cause;
  int from, to;        /* the job it ended at: a pair, from == to for a GPU's local copy or
                          context; -1 when unknown */
  char error_name[48]; /* PS_RESTART_STICKY: the CUDA error, e.g. CUDA_ERROR_ILLEGAL_ADDRESS */
  char reason[160];    /* one line */
} ps_restart;

typedef struct ps_report {
  ps_source source;
  char origin[512];  /* fixture or file path for non-live reports, else "" */
  char machine[128]; /* fixture's machine description, or hostname */
  char hostname[128];
  char boot_id[64];
  char driver_version[80]; /* "550.54.15", "" if unknown */
  int cuda_driver_version; /* 12040; 0 if unknown */
  char nvml_version[80];
  int gpu_count;
  ps_gpu *gpus;     /* gpu_count entries, by index */
  int pair_count;   /* gpu_count * (gpu_count - 1) */
  ps_pair *pairs;   /* directed pairs, from-major order */
  bool verified;    /* verification ran (or came from the cache) */
  bool cache_used;  /* at least one verdict came from the cache */
  int hang_workers; /* workers killed at a deadline */
  ps_timings timings;
  char cuda_visible_devices[256]; /* the caller's CUDA_VISIBLE_DEVICES, "" if unset */
  struct ps_bench *bench;         /* measured benchmarks (ps_bench_run, or read back), or NULL */
  int restart_count;              /* fresh workers the verification started, and why */
  ps_restart *restarts;           /* restart_count entries, in order; NULL when none */
  unsigned modes;                 /* PS_MODE_BIT of each verification mode that ran */
} ps_report;

PS_API void ps_report_free(ps_report *report);
/* The pair from -> to, or NULL. */
PS_API const ps_pair *ps_report_pair(const ps_report *report, int from, int to);
/* Whether the pair can carry P2P traffic: verified ok (the ce verdict, and no failure in the
 * sm or ipc modes where they ran) or, in a report that was not verified
 * (an imported topology), claimed OK for read and write by the driver; without the driver's
 * claims (a `topo -m` paste with no -p2p section), assumed from the link: NVLink (the driver
 * always allows peer access over an active NVLink) and PIX/PXB (probably), never PHB, NODE,
 * SYS (unknown). */
PS_API bool ps_pair_usable(const ps_report *report, const ps_pair *pair);
/* Whether ps_pair_usable answered from the link class alone (no verdict, no claim). */
PS_API bool ps_pair_assumed(const ps_report *report, const ps_pair *pair);
/* Whether the pair failed a real transfer in a way NCCL would not notice by itself: corrupt,
 * error, hang, or refused while the driver claimed P2P; in any mode that ran. */
PS_API bool ps_pair_failed(const ps_report *report, const ps_pair *pair);
/* The pair's verdict in one mode (PS_VERDICT_NOT_RUN for a mode that did not run). */
PS_API ps_verdict ps_pair_mode_verdict(const ps_pair *pair, ps_verify_mode mode);
/* Whether the verdict is a failure of a transfer that ran: corrupt, error or hang. */
PS_API bool ps_verdict_failed(ps_verdict verdict);

/* Whether the caller may use GPU `gpu`: not hidden by the CUDA_VISIBLE_DEVICES that
 * ps_report_apply_visible recorded (every GPU when it was not applied). False out of range. */
PS_API bool ps_gpu_allowed(const ps_report *report, int gpu);
/* Whether ps_report_apply_visible recorded a CUDA_VISIBLE_DEVICES in the report. */
PS_API bool ps_report_restricted(const ps_report *report);
/* The GPUs the caller may use, as report indexes in the caller's CUDA ordinal order (every
 * GPU in index order when unrestricted); writes up to cap, returns the count. */
PS_API int ps_report_allowed_gpus(const ps_report *report, int *out, int cap);

/* ---- probe: devices and links from NVML (in process, read-only) ---------------------- */

typedef struct ps_probe_opts {
  size_t size;            /* sizeof(ps_probe_opts): PS_INIT(ps_probe_opts) */
  const char *driver_dir; /* look for the driver libraries here first; NULL = default */
  /* A topology fixture (docs/fixture-format.md) for peerscope's fake drivers, which
   * driver_dir must then name (ps_fixture_select gives both); NULL = $PEERSCOPE_FIXTURE. */
  const char *fixture;
} ps_probe_opts;

/* Loads the driver (PEERSCOPE_DRIVER_DIR, then opts->driver_dir, then the system) and reads
 * every GPU and pair. PS_ERR_NO_DRIVER when no driver library is installed;
 * PS_ERR_DRIVER_UNAVAILABLE when one is but lacks a required symbol or NVML cannot start;
 * PS_ERR_INVALID_ARG when opts->fixture is given and the driver found is not the fake. */
PS_API ps_status ps_probe(ps_ctx *ctx, const ps_probe_opts *opts, ps_report **out);

/* ---- verify: a real transfer per directed pair, in a worker process ------------------- */

typedef struct ps_verify_opts {
  size_t size;       /* sizeof(ps_verify_opts): PS_INIT(ps_verify_opts) */
  int timeout_ms;    /* deadline per step; 0 = default (2000) */
  size_t copy_bytes; /* per copy; 0 = default (1 MiB) */
  bool refresh;      /* ignore the cache */
  const char
      *cache_dir; /* NULL = $PEERSCOPE_CACHE_DIR, $XDG_CACHE_HOME/peerscope, ~/.cache/peerscope */
  const char *worker_path; /* NULL = $PEERSCOPE_WORKER, then next to the library */
  const char *driver_dir;  /* as ps_probe_opts.driver_dir, passed on to the worker */
  const int *gpus;         /* test only pairs within these indexes; NULL = all */
  int gpu_count;
  const char *fixture; /* as ps_probe_opts.fixture, passed on to the worker */
  unsigned modes;      /* PS_MODE_BIT of each mode to run; 0 = all where two GPUs or more
                        * are selected, ce and sm on one GPU (no pair shares memory there) */
} ps_verify_opts;

/* Fills verdicts (one per mode asked for), claims from CUDA and timings in `report`. A
 * failing pair is not an error of this call: PS_OK means every pair has a verdict. The call
 * returns once the worker process has answered; it may still be releasing its CUDA contexts
 * for a moment (about 100 ms on an H200), and a thread of the library reaps it then. */
PS_API ps_status ps_verify(ps_ctx *ctx, ps_report *report, const ps_verify_opts *opts);

/* ps_probe for a caller that calls ps_verify(ctx, report, vopts) next, as peerscope check
 * does: the same report, sooner. Unless vopts->refresh, a probe cached for this machine under
 * vopts' cache directory (the key of the verification cache: the GPUs' UUIDs in NVML's order,
 * the driver version, the boot id; a fixture's content) is returned after reading only that
 * key from NVML; its changing fields (free memory, current PCIe link) are those of the run
 * that cached it. Otherwise the verification worker is started first, so that CUDA starts
 * (cuInit) while NVML probes, and the next ps_verify on ctx hands it its GPUs and jobs (one
 * it cannot use is killed, at the latest by ps_ctx_free); the probe is then cached. */
PS_API ps_status ps_probe_for_verify(ps_ctx *ctx, const ps_probe_opts *popts,
                                     const ps_verify_opts *vopts, ps_report **out);

/* ---- the caller's CUDA_VISIBLE_DEVICES ------------------------------------------------ */

typedef struct ps_visible_opts {
  size_t size;             /* sizeof(ps_visible_opts): PS_INIT(ps_visible_opts) */
  const char *worker_path; /* as ps_verify_opts.worker_path */
  const char *driver_dir;  /* as ps_probe_opts.driver_dir, passed on to the worker */
  const char *fixture;     /* as ps_probe_opts.fixture, passed on to the worker */
  /* The values to apply; NULL = the process's $CUDA_VISIBLE_DEVICES / $CUDA_DEVICE_ORDER. */
  const char *cuda_visible_devices;
  const char *cuda_device_order;
} ps_visible_opts;

/* Records which of the report's GPUs the caller's CUDA shows, and in what order: CUDA itself
 * answers, in a worker started with the caller's CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER
 * (cuInit and device queries only, no context), whose devices are matched to the report's
 * by PCI bus id. Sets PS_GPU_VISIBLE and visible_ordinal on every GPU, and
 * cuda_visible_devices. When CUDA_VISIBLE_DEVICES is unset, nothing is run or changed. A
 * list that hides every GPU (empty, or an invalid first entry) is PS_ERR_INVALID_ARG; a
 * report not read from this machine's driver (PS_SOURCE_FILE) is left alone. */
PS_API ps_status ps_report_apply_visible(ps_ctx *ctx, ps_report *report,
                                         const ps_visible_opts *opts);

/* ---- groups ------------------------------------------------------------------------ */

/* Largest set of GPUs (within `allowed`, NULL = all) whose every directed pair verified ok
 * (or, when the report was not verified, is claimed OK for read and write). Writes up to
 * `cap` indexes to `out` in ascending order and returns the group's size. Ties go to the
 * group with the best links (NVLink, then PIX, ...), then to the lowest indexes. */
PS_API int ps_best_group(const ps_report *report, const int *allowed, int allowed_count, int size,
                         int *out, int cap);

/* Largest TP size (a power of two, see docs/user-guide.md) for which such a group exists. */
PS_API int ps_recommend_tp(const ps_report *report, const int *allowed, int allowed_count);

/* ---- JSON ("peerscope.topology/1", docs/topology.schema.json) ------------------------ */

/* Writes the report as JSON; *out is NUL-terminated, free with ps_free. */
PS_API ps_status ps_report_to_json(ps_ctx *ctx, const ps_report *report, char **out);
/* Reads a report; errors name the file, line and column. */
PS_API ps_status ps_report_read_json(ps_ctx *ctx, const char *path, ps_report **out);
PS_API ps_status ps_report_parse_json(ps_ctx *ctx, const char *text, size_t len, const char *name,
                                      ps_report **out);

/* ---- import: topologies from other machines (pure parsers, no driver) --------------- */

/* Reads a topology from `path`, detecting its kind: a peerscope report (JSON), or the text of
 * `nvidia-smi topo -m` / `topo -mp` (tabs or spaces, NIC rows and legend, affinity columns,
 * ANSI codes, with or without legend). Text imports carry links and (from a -p2p section in
 * the same file) the driver's claims only: every verdict is PS_VERDICT_NOT_RUN, `verified`
 * is false, source PS_SOURCE_FILE, origin = path. GPU names and memory are unknown until
 * ps_import_gpu_info or ps_report_set_gpu_memory. Errors name the file, line and column. */
PS_API ps_status ps_import_topology(ps_ctx *ctx, const char *path, ps_report **out);
PS_API ps_status ps_import_topology_text(ps_ctx *ctx, const char *text, size_t len,
                                         const char *name, ps_report **out);
/* Adds the claims of `nvidia-smi topo -p2p r|w|n|a|p` text (OK, CNS, GNS, TNS, NS, U) to an
 * imported report: r -> claim_read, w -> claim_write, n -> claim_nvlink, a -> claim_atomics
 * (p, the PCIe claim, fills read and write when they are unknown). */
PS_API ps_status ps_import_p2p_claims(ps_ctx *ctx, ps_report *report, const char *path);
/* Fills names, memory and bus ids from `nvidia-smi --query-gpu=index,name,memory.total,
 * pci.bus_id --format=csv` output (header optional, any column order given by the header). */
PS_API ps_status ps_import_gpu_info(ps_ctx *ctx, ps_report *report, const char *path);
/* Sets every GPU's total memory (count == 1) or each one's (count == gpu_count), in GiB. */
PS_API ps_status ps_report_set_gpu_memory(ps_ctx *ctx, ps_report *report, const double *gib,
                                          int count);

/* ---- names ------------------------------------------------------------------------- */

PS_API const char *ps_link_name(ps_link_class link, int nvlink_count, char *buf, size_t len);
PS_API const char *ps_claim_name(ps_claim claim);                 /* "OK", "CNS", ... */
PS_API const char *ps_verdict_name(ps_verdict verdict);           /* "ok", "corrupt", ... */
PS_API const char *ps_restart_cause_name(ps_restart_cause cause); /* "sticky_error", ... */
PS_API const char *ps_mode_name(ps_verify_mode mode);             /* "ce", "sm", "ipc" */
/* Parses a comma list of mode names ("ce,sm", "all") into PS_MODE_BIT bits; false (naming
 * the bad word in ctx) when a word is not a mode. */
PS_API bool ps_modes_parse(ps_ctx *ctx, const char *list, unsigned *modes);

#ifdef __cplusplus
}
#endif
#endif
