/* peerscope: which GPUs can really talk peer-to-peer, over which links.
 *
 * The one public header of libpeerscope.
 *
 * Error rule: every function that can fail returns a ps_status. PS_OK is 0; anything else
 * is a failure whose one-line detail (file:line, GPU, driver error name) is in
 * ps_ctx_error(). The library never prints and never exits.
 *
 * Ownership: a pointer returned through an out-parameter belongs to the caller and is
 * released with the matching *_free function. Pointers passed in are borrowed for the
 * duration of the call only.
 *
 * Option structs (ps_*_opts): zero-initialise them; every field's zero is its default. New
 * fields are only ever appended at the end (and PS_ABI_VERSION bumped).
 *
 * Environment: the library reads a few variables as defaults (PEERSCOPE_DRIVER_DIR,
 * PEERSCOPE_FIXTURE, PEERSCOPE_SYSFS_ROOT, ...) but never sets one: what a caller chooses
 * (driver directory, fixture, sysfs root) travels in the options, and to a worker process in
 * its argv or its own environment block.
 *
 * Invalid fields: a value the driver could not supply has its bit clear in the struct's
 * `valid` mask (PS_GPU_* / PS_PAIR_* bits) and must be shown as n/a or null, never 0. */
#ifndef PEERSCOPE_H
#define PEERSCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PS_BUILDING_LIBRARY)
#define PS_API __attribute__((visibility("default")))
#else
#define PS_API
#endif

#define PS_VERSION_MAJOR 0
#define PS_VERSION_MINOR 1
#define PS_VERSION_PATCH 0
/* Bumped whenever a public struct changes layout; the Python package checks it. */
#define PS_ABI_VERSION 3

/* Status codes. Numbers are fixed forever: append new ones before the end only. */
#define PS_STATUS_MAP(XX)                                                                          \
  XX(OK, 0, "success")                                                                             \
  XX(ERR_INVALID_ARG, 1, "invalid argument")                                                       \
  XX(ERR_NO_MEMORY, 2, "out of memory")                                                            \
  XX(ERR_DRIVER_UNAVAILABLE, 3, "GPU driver unavailable")                                          \
  XX(ERR_DRIVER, 4, "GPU driver call failed")                                                      \
  XX(ERR_BAD_INPUT, 5, "malformed input")                                                          \
  XX(ERR_IO, 6, "input/output error")                                                              \
  XX(ERR_WORKER, 7, "worker process failed")                                                       \
  XX(ERR_NOT_FOUND, 8, "not found")                                                                \
  XX(ERR_INTERNAL, 9, "internal error")                                                            \
  XX(ERR_NO_DRIVER, 10, "no GPU driver installed")                                                 \
  XX(ERR_NETWORK, 11, "network trouble")

typedef enum ps_status {
#define PS_STATUS_ENUM(name, num, text) PS_##name = num,
  PS_STATUS_MAP(PS_STATUS_ENUM)
#undef PS_STATUS_ENUM
      PS_STATUS_LAST
} ps_status;

PS_API const char *ps_status_name(ps_status st); /* "ERR_BAD_INPUT" */
PS_API const char *ps_status_str(ps_status st);  /* "malformed input" */
PS_API const char *ps_version(void);             /* "0.1.0" */
PS_API int ps_abi_version(void);                 /* PS_ABI_VERSION */

/* ---- context ---------------------------------------------------------------------- */

typedef struct ps_ctx ps_ctx;

/* Returns NULL only when out of memory. */
PS_API ps_ctx *ps_ctx_new(void);
PS_API void ps_ctx_free(ps_ctx *ctx);
/* The one-line detail of the last failure, "" if none. Owned by ctx. */
PS_API const char *ps_ctx_error(const ps_ctx *ctx);

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
  PS_VERDICT_SKIPPED = 6      /* not tested (GPU lost, filtered out, ...) */
} ps_verdict;

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
  PS_GPU_CUDA_ORDINAL = 1u << 11
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
  double copy_us; /* wall time of the out-and-back copy */
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
} ps_report;

PS_API void ps_report_free(ps_report *report);
/* The pair from -> to, or NULL. */
PS_API const ps_pair *ps_report_pair(const ps_report *report, int from, int to);
/* Whether the pair can carry P2P traffic: verified ok or, in a report that was not verified
 * (an imported topology), claimed OK for read and write by the driver; without the driver's
 * claims (a `topo -m` paste with no -p2p section), assumed from the link: NVLink (the driver
 * always allows peer access over an active NVLink) and PIX/PXB (probably), never PHB, NODE,
 * SYS (unknown). */
PS_API bool ps_pair_usable(const ps_report *report, const ps_pair *pair);
/* Whether ps_pair_usable answered from the link class alone (no verdict, no claim). */
PS_API bool ps_pair_assumed(const ps_report *report, const ps_pair *pair);
/* Whether the pair failed a real transfer in a way NCCL would not notice by itself: corrupt,
 * error, hang, or refused while the driver claimed P2P. */
PS_API bool ps_pair_failed(const ps_report *report, const ps_pair *pair);

/* ---- probe: devices and links from NVML (in process, read-only) ---------------------- */

typedef struct ps_probe_opts {
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
} ps_verify_opts;

/* Fills verdicts, claims from CUDA and timings in `report`. A failing pair is not an error
 * of this call: PS_OK means every pair has a verdict. */
PS_API ps_status ps_verify(ps_ctx *ctx, ps_report *report, const ps_verify_opts *opts);

/* ---- bench: measured copy bandwidth, latency and all-reduce (docs/bench.md) ---------- */

typedef enum ps_bench_kind {
  PS_BENCH_COPY_CE,          /* copy engine src -> dst (cuMemcpyPeerAsync) */
  PS_BENCH_COPY_SM_READ,     /* copy kernel on dst loading from src over the peer mapping */
  PS_BENCH_COPY_SM_WRITE,    /* copy kernel on src storing into dst over the peer mapping */
  PS_BENCH_LOCAL_CE,         /* within one GPU, copy engine */
  PS_BENCH_LOCAL_SM,         /* within one GPU, copy kernel */
  PS_BENCH_H2D,              /* pinned host -> GPU, copy engine */
  PS_BENCH_D2H,              /* GPU -> pinned host, copy engine */
  PS_BENCH_LATENCY_WRITE,    /* small src -> dst copies: time per copy */
  PS_BENCH_LATENCY_CHASE,    /* pointer chase on dst through src's memory: ns per load */
  PS_BENCH_ALLREDUCE_NCCL,   /* ncclAllReduce over the group, one process */
  PS_BENCH_ALLREDUCE_ONESHOT /* peerscope's one-shot P2P all-reduce kernel */
} ps_bench_kind;
#define PS_BENCH_KIND_COUNT 11

typedef enum ps_bench_outcome {
  PS_BENCH_OK,     /* measured (and the data checked) */
  PS_BENCH_WAIVED, /* a precondition is missing (reason says which); not a failure */
  PS_BENCH_FAILED, /* a driver or NCCL error (reason) */
  PS_BENCH_HANG,   /* passed its deadline; the worker was killed */
  PS_BENCH_WRONG   /* ran, but the data after it was wrong */
} ps_bench_outcome;

#define PS_BENCH_MAX_RANKS 8

typedef struct ps_bench_result {
  ps_bench_kind kind;
  ps_bench_outcome outcome;
  int src, dst;                  /* GPU indexes; -1 = host or not applicable */
  int ranks;                     /* all-reduce: ranks in group[] */
  int group[PS_BENCH_MAX_RANKS]; /* all-reduce GPUs; virtual ranks repeat one GPU */
  bool virtual_ranks;            /* all-reduce ranks are buffers on one GPU */
  bool bidirectional;            /* both directions at once (copy) */
  bool p2p;                      /* peer access enabled for this measurement */
  bool graph;                    /* all-reduce captured in a CUDA graph and replayed */
  char env[40];                  /* NCCL configuration: "default", "NCCL_P2P_DISABLE=1", ... */
  char dtype[8];                 /* "fp16", "bf16"; "" for copies */
  uint64_t bytes;                /* per copy, or per rank's all-reduce buffer */
  int iters;                     /* operations per trial */
  int trials;                    /* timed trials (after one warm-up) */
  double us_median, us_p10, us_p90, us_min, us_max; /* per operation, over the trials */
  double cv;                                        /* coefficient of variation of the trials */
  double gbps;          /* bytes / time; both directions summed when bidirectional; algbw */
  double bus_gbps;      /* all-reduce: algbw * 2(n-1)/n (nccl-tests' busBw) */
  double ns_per_access; /* latency chase */
  char reason[192];     /* waived, failed, hang, wrong: why; ok: "" */
} ps_bench_result;

typedef struct ps_bench {
  bool simulated;      /* measured on the fake drivers: modelled timings, not a machine's */
  bool kernels;        /* the library carries the CUDA kernels (built with nvcc) */
  int nccl_version;    /* 22809 for 2.28.9; 0 when NCCL was not loaded */
  char nccl_note[192]; /* why NCCL measurements were waived, or "" */
  char started[32];    /* UTC, ISO 8601 */
  double wall_ms;
  size_t count;
  ps_bench_result *results;
} ps_bench;

#define PS_BENCH_TEST_COPY 1u
#define PS_BENCH_TEST_LATENCY 2u
#define PS_BENCH_TEST_ALLREDUCE 4u
#define PS_BENCH_TEST_ALL 7u

typedef struct ps_bench_opts {
  unsigned tests;  /* PS_BENCH_TEST_* bits; 0 = all */
  const int *gpus; /* GPUs to measure; NULL = all */
  int gpu_count;
  const uint64_t *sizes; /* all-reduce message sizes in bytes; NULL = default */
  int size_count;
  uint64_t copy_bytes;     /* copy buffer; 0 = default */
  int iters;               /* operations per trial; 0 = default */
  int trials;              /* timed trials; 0 = default */
  bool quick;              /* smaller buffers, fewer sizes and trials */
  int timeout_ms;          /* per measurement; 0 = default */
  const char *worker_path; /* NULL: PEERSCOPE_WORKER, then next to libpeerscope */
  const char *driver_dir;  /* as ps_probe_opts */
  const char *nccl_path;   /* libnccl.so.2 to load; NULL: PEERSCOPE_NCCL, then the system */
  /* Called after each measurement (done of total), from the calling thread. */
  void (*progress)(void *user, int done, int total, const ps_bench_result *last);
  void *progress_user;
  /* Set non-zero (a signal handler, a server shutting down) to stop: the running worker is
   * killed and what is left is recorded as failed "stopped". May be NULL. */
  const volatile int *stop;
  const char *fixture; /* as ps_probe_opts.fixture, passed on to the workers */
} ps_bench_opts;

/* Runs the benchmarks on the report's GPUs in worker processes under the verify watchdog and
 * attaches the results to report->bench (replacing earlier ones). A measurement that is
 * waived, fails or hangs is recorded and the others go on: that is PS_OK. Errors only for
 * bad options, a missing worker, or a driver the worker cannot start. */
PS_API ps_status ps_bench_run(ps_ctx *ctx, ps_report *report, const ps_bench_opts *opts);
PS_API void ps_bench_free(struct ps_bench *bench);
PS_API const char *ps_bench_kind_name(ps_bench_kind kind);          /* "copy_ce", ... */
PS_API const char *ps_bench_outcome_name(ps_bench_outcome outcome); /* "ok", "waived", ... */
/* The smallest P2P-enabled unidirectional copy-engine bandwidth measured, or -1 if none. */
PS_API double ps_bench_min_p2p_gbps(const struct ps_bench *bench);

typedef enum ps_bench_format {
  PS_BENCH_TEXT, /* tables for a terminal */
  PS_BENCH_CSV,  /* one row per result */
  PS_BENCH_SVG   /* heatmaps of the copy bandwidth and latency matrices */
} ps_bench_format;
/* Renders report->bench; *out is freed with ps_free. */
PS_API ps_status ps_bench_write(ps_ctx *ctx, const ps_report *report, ps_bench_format format,
                                char **out);

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

/* ---- model facts (pure parsers of a Hugging Face directory) ---------------------------- */

typedef enum ps_attention {
  PS_ATTENTION_FULL = 0,    /* MHA / GQA / MQA: 2 x kv_heads x head_dim per token and layer */
  PS_ATTENTION_MLA = 1,     /* DeepSeek multi-head latent attention: kv_lora_rank + rope dim */
  PS_ATTENTION_SLIDING = 2, /* some or all layers attend within a window */
  PS_ATTENTION_HYBRID = 3   /* attention mixed with linear/state-space layers */
} ps_attention;

enum {
  PS_MODEL_WEIGHTS_EXACT = 1u << 0, /* weight_bytes summed from safetensors headers / index */
  PS_MODEL_PARAMS = 1u << 1,        /* param_count known */
  PS_MODEL_MAX_POSITIONS = 1u << 2
};

typedef struct ps_model {
  uint32_t valid;        /* PS_MODEL_* bits */
  char name[128];        /* directory name ("org/name" for an HF cache snapshot), or
                            "70B bf16" / "140 GB" for synthetic models */
  char architecture[64]; /* config "architectures"[0], "" if none */
  char model_type[64];
  int num_layers; /* num_hidden_layers */
  int hidden_size;
  int num_heads;    /* num_attention_heads */
  int num_kv_heads; /* num_key_value_heads, default num_heads */
  int head_dim;     /* config head_dim, else hidden_size / num_heads */
  int vocab_size;
  int intermediate_size;
  int max_position_embeddings;
  bool tied_embeddings;
  int num_experts; /* routed experts, 0 for dense */
  int experts_per_token;
  char dtype[16];        /* torch_dtype: "bfloat16", "float16", "float32", ... */
  int dtype_bytes;       /* of the activations / default KV cache: 2 for bf16/fp16 */
  char quantization[32]; /* quantization_config.quant_method ("fp8", "awq", ...), "" if none */
  uint64_t weight_bytes; /* all weights, experts included */
  uint64_t param_count;
  ps_attention attention;
  int kv_lora_rank, qk_rope_head_dim; /* MLA */
  int sliding_window;                 /* tokens, 0 if none */
  int sliding_layers;                 /* layers that use the window (the rest attend fully) */
  char estimate_note[256];            /* which KV estimate applies, in one sentence */
  int attention_layers; /* layers holding a KV cache: num_layers less a hybrid's linear-attention
                           and state-space layers */
} ps_model;

/* Reads `dir`: config.json (required) plus safetensors headers (8-byte length + JSON; never
 * the weights) or model.safetensors.index.json's metadata.total_size. A directory holding only
 * config.json and the index plans too. A directory of GGUF or .bin weights without
 * safetensors gets PS_ERR_BAD_INPUT saying to use --model-size-gb. Errors name the file and
 * the line (JSON) or byte offset (safetensors). */
PS_API ps_status ps_model_load(ps_ctx *ctx, const char *dir, ps_model *out);
/* A model known only by size: weights from `params_b` billions x the dtype's bytes
 * ("bf16", "fp16", "fp8", "int4"), or `size_gb` directly (params_b 0). Layers and heads stay
 * 0: the planner then says that it cannot check TP divisibility or KV size. */
PS_API ps_status ps_model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                                    ps_model *out);
/* KV cache bytes that one GPU needs for all the model's layers at tensor-parallel size tp,
 * for `seqs` sequences of `tokens` tokens each, counted in vLLM's blocks (16 tokens; 64 for
 * MLA): full-attention layers hold every token, sliding-window layers at most the window;
 * KV heads per GPU = kv_heads / tp, at least 1 (replicated when tp > kv_heads). KV elements
 * of kv_dtype_bytes (0 = the model's dtype). 0 when the model's shape is unknown. A pipeline
 * stage holding L of the layers needs L / num_layers of it. */
PS_API uint64_t ps_model_kv_bytes(const ps_model *model, int tp, int kv_dtype_bytes,
                                  uint64_t tokens, int seqs);

/* ---- model ids: a Hugging Face id from the cache, the catalog or the Hub (docs/models.md) -- */

/* "org/name[@revision]", checked as the Hub checks it: org and name of letters, digits, '-',
 * '_' and '.', each starting and ending with a letter, digit or '_', no "--" or "..", the name
 * at most 96 characters and not ending in ".git"; a revision is a branch, tag or commit
 * ("main", "v1.0", "refs/pr/3", 40 hex digits) as git allows ref names. */
typedef struct ps_model_id {
  size_t size;        /* sizeof(ps_model_id) */
  char repo[200];     /* "org/name" */
  char revision[256]; /* "" when none was given (the default branch, "main") */
} ps_model_id;

/* PS_ERR_BAD_INPUT with one line naming the text and the rule it breaks. */
PS_API ps_status ps_model_id_parse(ps_ctx *ctx, const char *text, ps_model_id **out);
PS_API void ps_model_id_free(ps_model_id *id);

/* Where a model's facts came from, in the order they are looked for. */
typedef enum ps_model_origin {
  PS_MODEL_FROM_DIRECTORY = 0, /* a local directory */
  PS_MODEL_FROM_HF_CACHE = 1,  /* a snapshot in the Hugging Face cache */
  PS_MODEL_FROM_CATALOG = 2,   /* the catalog shipped with peerscope */
  PS_MODEL_FROM_HUB = 3        /* config and index (or safetensors header) from the Hub */
} ps_model_origin;

typedef struct ps_model_resolve_opts {
  size_t size;           /* sizeof(ps_model_resolve_opts); 0 fields mean the default */
  bool offline;          /* no network, as HF_HUB_OFFLINE=1 */
  bool no_catalog;       /* skip the bundled catalog */
  const char *hub_cache; /* NULL = HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub */
  const char *endpoint;  /* NULL = HF_ENDPOINT, else https://huggingface.co */
  const char *token;     /* NULL = HF_TOKEN, else the file HF_TOKEN_PATH or HF_HOME/token */
  const char *catalog;   /* NULL = the bundled catalog (PS_BUNDLED_MODELS) */
  const char *cache_dir; /* peerscope's cache (header totals); NULL as ps_verify_opts */
  int timeout_ms;        /* per request; 0 = HF_HUB_DOWNLOAD_TIMEOUT seconds, else 10 s */
  int retries;           /* on 429, 5xx and timeouts; 0 = 2, -1 = none */
} ps_model_resolve_opts;

typedef struct ps_model_source {
  size_t size; /* sizeof(ps_model_source) */
  ps_model_origin origin;
  char given[512];    /* the text as given: what `vllm serve` is told */
  char repo[200];     /* "org/name"; "" for a directory */
  char revision[256]; /* as given; "" = the default branch */
  char commit[48];    /* the snapshot's 40-hex commit; "" when not known */
  char path[4096];    /* the directory read: the local one, the snapshot or the catalog entry */
  char where[4608];   /* for people: "Hugging Face cache /root/.cache/huggingface/hub
                         (revision 0e9e...)", "peerscope catalog (source revision ...)", ... */
  int requests;       /* HTTP requests made (retries included) */
  uint64_t bytes;     /* bytes received over HTTP */
  double ms;          /* wall time of the resolution */
} ps_model_source;

/* Reads a model given as a directory or as a Hugging Face id, in this order: a local
 * directory; the Hugging Face cache (models--org--name/refs/<revision> -> snapshots/<sha>/);
 * the catalog; the Hub over HTTPS (config.json, then model.safetensors.index.json or the
 * safetensors header through two Range requests: at most 3 requests, never weights), whose
 * files are then written into the Hugging Face cache for the next plan and vLLM. Text that is
 * not an existing directory and not shaped like an id is read as a directory (ps_model_load's
 * errors). `source` (may be NULL) says where the facts came from; free it with
 * ps_model_source_free. PS_ERR_BAD_INPUT for a malformed id, a repository, revision or file
 * the Hub does not have, or files that are not what they claim; PS_ERR_NETWORK when the Hub
 * cannot answer (offline, timeout, DNS, TLS, rate limited, a gated model without a token). */
PS_API ps_status ps_model_resolve(ps_ctx *ctx, const char *dir_or_id,
                                  const ps_model_resolve_opts *opts, ps_model *out,
                                  ps_model_source **source);
PS_API void ps_model_source_free(ps_model_source *source);
/* "local directory", "Hugging Face cache", "peerscope catalog", "Hugging Face Hub". */
PS_API const char *ps_model_origin_name(ps_model_origin origin);

/* The catalog's ids, sorted; *ids is one allocation (free with ps_free) of *count pointers
 * followed by the strings. `catalog` NULL = the bundled one. */
PS_API ps_status ps_model_catalog_ids(ps_ctx *ctx, const char *catalog, char ***ids, size_t *count);

/* ---- plan: GPUs, TP and PP, memory, and the vLLM command (pure, no I/O) -------------- */

typedef enum ps_objective {
  PS_OBJECTIVE_THROUGHPUT = 0, /* fewest GPUs per replica: TP=1 and replicas when it fits */
  PS_OBJECTIVE_LATENCY = 1     /* larger TP where the fabric (NVLink) makes it pay */
} ps_objective;

typedef struct ps_plan_request {
  const ps_model *model;
  int tp, pp;      /* 0 = choose */
  const int *gpus; /* GPUs allowed, as report indexes; NULL = all */
  int gpu_count;
  double gpu_memory_utilization; /* 0 = 0.9, vLLM's default */
  int max_model_len;             /* 0 = the longest that fits, up to the model's maximum */
  int max_num_seqs;              /* sequences of max_model_len that must fit at once; 0 = 1 */
  const char *kv_cache_dtype;    /* NULL/"auto" = the model's dtype; "fp8", "fp8_e4m3", ... */
  double reserve_gib;            /* per GPU, kept free for other processes */
  ps_objective objective;
  const char *model_path; /* what `vllm serve` is given; NULL = model->name */
  /* vLLM's own memory accounting (docs/vllm-memory.md) */
  const char *vllm_version;   /* as vLLM prints it, "0.10.1.1"; NULL = the newest modelled */
  bool enforce_eager;         /* no CUDA graphs: none are reserved */
  int max_num_batched_tokens; /* 0 = vLLM's default for the version and GPU */
  int block_size;             /* 0 = vLLM's default (16; 64 for MLA) */
} ps_plan_request;

#define PS_PLAN_MAX_GPUS 64
#define PS_PLAN_MAX_ITEMS 24
#define PS_PLAN_MAX_ALTS 8

/* One environment variable or vLLM argument, with the reason it is there. */
typedef struct ps_plan_item {
  char name[64];   /* "NCCL_P2P_DISABLE", "--tensor-parallel-size" */
  char value[256]; /* "" for a flag without a value */
  char why[256];
} ps_plan_item;

/* A configuration that was considered. */
typedef struct ps_plan_option {
  int tp, pp;
  int gpu_count;
  int gpus[PS_PLAN_MAX_GPUS];
  bool feasible;
  char why[256]; /* why it was chosen, or why it lost */
} ps_plan_option;

typedef struct ps_plan {
  bool feasible;
  char summary[512]; /* the verdict in one line, with numbers when infeasible */
  int tp, pp;
  int gpu_count;
  int gpus[PS_PLAN_MAX_GPUS]; /* in rank order: stage 0's TP group first */
  int replicas;               /* copies of this plan that fit on the allowed GPUs */
  /* Per GPU, for the GPU with the least room (bytes). */
  uint64_t budget_bytes; /* total x gpu_memory_utilization - reserve */
  uint64_t weights_bytes;
  uint64_t overhead_bytes; /* CUDA context, NCCL, activation peak, CUDA graphs */
  uint64_t kv_bytes;       /* what is left for the KV cache */
  uint64_t kv_tokens;      /* tokens that KV holds on the tightest stage */
  int max_model_len;
  int max_num_seqs;
  double gpu_memory_utilization;
  bool custom_all_reduce;
  char pp_layer_partition[256]; /* VLLM_PP_LAYER_PARTITION value, "" for vLLM's default */
  int env_count;
  ps_plan_item env[PS_PLAN_MAX_ITEMS];
  int arg_count;
  ps_plan_item args[PS_PLAN_MAX_ITEMS]; /* after `vllm serve <model>` */
  char model_arg[512];
  int reason_count;
  char reasons[PS_PLAN_MAX_ITEMS][256]; /* each choice explained in one line */
  int alt_count;
  ps_plan_option alts[PS_PLAN_MAX_ALTS]; /* ranked; the first is the chosen one */
  /* Several nodes (ps_plan_make_cluster): the node of each rank, and the commands to run
   * on each node (name "head" or "worker N", value the command line, why where to run it). */
  int node_count;
  int gpu_node[PS_PLAN_MAX_GPUS];
  int command_count;
  ps_plan_item commands[PS_PLAN_MAX_ITEMS];
  /* vLLM's accounting on the tightest GPU (bytes), as its start-up log shows it; the
   * overhead above is activation + non_torch + graphs. */
  char vllm_version[32];       /* the version whose rules were applied */
  char vllm_version_note[192]; /* how it was chosen, or which modelled version stood in */
  uint64_t visible_bytes;      /* the CUDA-visible total (cudaMemGetInfo), below NVML's */
  uint64_t activation_bytes;   /* "PyTorch activation peak memory" of the profile run */
  uint64_t non_torch_bytes;    /* CUDA context growth, NCCL and all-reduce buffers */
  uint64_t graphs_bytes;       /* CUDA graphs, where this version subtracts them first */
  int max_num_batched_tokens;  /* what the profile run used */
  int block_size;
  int kv_groups;            /* KV-cache groups sharing a block (1 unless hybrid) */
  uint64_t kv_blocks;       /* blocks per layer pool */
  uint64_t kv_group_tokens; /* blocks x block size: tokens per group */
  double max_concurrency;   /* "Maximum concurrency for max_model_len tokens per request" */
  char error_band[160];     /* how close the model came to vLLM's own logs */
} ps_plan;

/* Plans `req` on one machine (`report`: live, fixture, saved or imported). PS_OK also when
 * nothing fits: then plan->feasible is false and summary says why, with numbers, and alts
 * holds the nearest alternatives. PS_ERR_INVALID_ARG for impossible requests (tp larger than
 * the GPUs allowed, ...). Deterministic: the same inputs give the same plan. */
PS_API ps_status ps_plan_make(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                              ps_plan *plan);

/* Plans over several nodes, one report each (node 0 is the head): TP inside a node, PP across
 * nodes (each node holds the same number of stages), Ray as the executor, with the `ray
 * start` commands for every node. Nodes with fewer GPUs limit every node to that count, and
 * the summary says so. req->gpus must be NULL. */
PS_API ps_status ps_plan_make_cluster(ps_ctx *ctx, const ps_report *const *reports, int count,
                                      const ps_plan_request *req, ps_plan *plan);

typedef enum ps_plan_format {
  PS_PLAN_TEXT = 0,  /* for people: the plan, each choice explained, alternatives */
  PS_PLAN_JSON = 1,  /* "peerscope.plan/1", docs/plan.schema.json */
  PS_PLAN_SHELL = 2, /* export lines, then the vllm serve command */
  PS_PLAN_ARGS = 3,  /* the vllm serve arguments on one line */
  PS_PLAN_YAML = 4   /* a file for `vllm serve --config` (environment as comments) */
} ps_plan_format;

/* Writes the plan in `format`; *out is NUL-terminated, free with ps_free. */
PS_API ps_status ps_plan_write(ps_ctx *ctx, const ps_plan *plan, ps_plan_format format, char **out);

/* ---- the plan request, defined once: fields, parsers, model loading ------------------ */

/* Every input of a plan (the model and the request) is one row of a table in the library:
 * its JSON name, CLI flag, type, range, default and help. The CLI's options and --help, the
 * web API's bodies, the dashboard's form and the Python package all come from it, so a new
 * input is one new row (docs/internals.md, "The plan request"). */
typedef enum ps_field_type {
  PS_FIELD_INT = 0,    /* JSON integer; text in decimal */
  PS_FIELD_NUMBER = 1, /* JSON number; text in decimal */
  PS_FIELD_STRING = 2, /* non-empty, at most 1024 bytes, no NUL */
  PS_FIELD_ENUM = 3,   /* one of `choices` */
  PS_FIELD_GPUS = 4,   /* JSON array of GPU indexes; text "0,1,2" or "0-3" */
  PS_FIELD_BOOL = 5    /* JSON true/false; a CLI flag without a value */
} ps_field_type;

typedef struct ps_plan_field {
  const char *name;    /* JSON key: "gpu_memory_utilization" */
  const char *flag;    /* CLI option without its dashes: "gpu-memory-utilization" */
  const char *metavar; /* "F" (NULL for PS_FIELD_BOOL) */
  ps_field_type type;
  const char *group;          /* "model" (the model's source) or "plan" */
  double min, max;            /* PS_FIELD_INT, PS_FIELD_NUMBER: the range, inclusive */
  const char *def;            /* the default as text, NULL when the planner chooses */
  const char *const *choices; /* PS_FIELD_ENUM: NULL-terminated */
  const char *expect;         /* what a value is, for messages: "a fraction in (0, 1]" */
  const char *help;           /* one line for --help and the form */
} ps_plan_field;

/* The table: static data of the library, never freed. ps_plan_field_find takes the JSON name
 * or the flag (with or without "--"); NULL when there is no such field. */
PS_API int ps_plan_field_count(void);
PS_API const ps_plan_field *ps_plan_field_at(int i);
PS_API const ps_plan_field *ps_plan_field_find(const char *name);
/* The table as JSON ("peerscope.plan-fields/1", docs/web-api.yaml PlanFields); *out is freed
 * with ps_free. */
PS_API ps_status ps_plan_fields_json(ps_ctx *ctx, char **out);

/* The inputs of one plan, as given (opaque; ps_plan_input_free). */
typedef struct ps_plan_input ps_plan_input;

PS_API ps_status ps_plan_input_new(ps_ctx *ctx, ps_plan_input **out);
PS_API void ps_plan_input_free(ps_plan_input *in);
/* Sets one field from text as typed on a command line. `key` is the JSON name or the flag;
 * messages name the field as `key` names it: "--tp: 'x' is not an integer from 1 to 64".
 * PS_ERR_INVALID_ARG for an unknown field or a bad value. */
PS_API ps_status ps_plan_input_set(ps_ctx *ctx, ps_plan_input *in, const char *key,
                                   const char *text);
/* Sets the GPU list from indexes already resolved (the CLI resolves UUIDs on its report). */
PS_API ps_status ps_plan_input_set_gpus(ps_ctx *ctx, ps_plan_input *in, const int *gpus, int count);
/* Messages about rules across fields name them as flags ("--params-b N"), as on a command
 * line; ps_plan_input_set with a "--" key does this too. */
PS_API void ps_plan_input_use_flags(ps_plan_input *in);
/* Whether the field was given; its value as text in `buf` (may be NULL) when it was. */
PS_API bool ps_plan_input_get(const ps_plan_input *in, const char *name, char *buf, size_t len);
/* Reads a JSON object of fields (an empty text is {}). Unknown keys, wrong types and values
 * out of range are PS_ERR_INVALID_ARG, malformed JSON PS_ERR_BAD_INPUT, with one line
 * naming the field. Keys in `own` (NULL-terminated, may be NULL) belong to the caller (a
 * launch's port) and are skipped. JSON null is the same as an absent field. */
PS_API ps_status ps_plan_input_from_json(ps_ctx *ctx, const char *json, size_t len,
                                         const char *const *own, ps_plan_input **out);
/* The fields given, as a JSON object (the inverse of ps_plan_input_from_json). */
PS_API ps_status ps_plan_input_to_json(ps_ctx *ctx, const ps_plan_input *in, char **out);
/* The rules across fields: exactly one model source (model_dir, model_size_gb, params_b),
 * dtype only with params_b. PS_ERR_INVALID_ARG with one line. */
PS_API ps_status ps_plan_input_check(ps_ctx *ctx, const ps_plan_input *in);
/* Checks, then loads the model from its source: model_dir (a directory or a Hugging Face id,
 * ps_model_resolve) or a size (ps_model_synthetic). */
PS_API ps_status ps_plan_input_model(ps_ctx *ctx, const ps_plan_input *in, ps_model *out);
/* The same, and where the facts came from (*source, NULL for a model known by size; free it
 * with ps_model_source_free). */
PS_API ps_status ps_plan_input_model_source(ps_ctx *ctx, const ps_plan_input *in, ps_model *out,
                                            ps_model_source **source);
/* The request for ps_plan_make(_cluster): every field given, `model`, and model_path =
 * model_dir, else model_name. `req` borrows from `in` and `model`; the caller may change it
 * afterwards. */
PS_API ps_status ps_plan_input_request(ps_ctx *ctx, const ps_plan_input *in, const ps_model *model,
                                       ps_plan_request *req);

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
  char name[32]; /* "acs", "iommu", "verify", "driver", "pcie-link", "gpus", "env", "nvml" */
  ps_check_state state;
  char note[384];
} ps_doctor_check;

#define PS_DOCTOR_MAX_CHECKS 16

typedef struct ps_doctor_opts {
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

/* ---- files shipped with peerscope ------------------------------------------------- */

typedef enum ps_bundled {
  PS_BUNDLED_WORKER = 0,       /* the peerscope-worker executable */
  PS_BUNDLED_FAKE_DRIVERS = 1, /* directory of the fake libcuda.so.1 / libnvidia-ml.so.1 */
  PS_BUNDLED_FIXTURES = 2,     /* directory of the example machines (*.topo) */
  PS_BUNDLED_MODELS = 3        /* directory of the model catalog (docs/models.md) */
} ps_bundled;

/* Finds a shipped file or directory next to libpeerscope (build tree or install tree).
 * PS_ERR_NOT_FOUND when it is not there. */
PS_API ps_status ps_bundled_path(ps_ctx *ctx, ps_bundled what, char *out, size_t len);

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

/* ---- names ------------------------------------------------------------------------- */

PS_API const char *ps_link_name(ps_link_class link, int nvlink_count, char *buf, size_t len);
PS_API const char *ps_claim_name(ps_claim claim);       /* "OK", "CNS", ... */
PS_API const char *ps_verdict_name(ps_verdict verdict); /* "ok", "corrupt", ... */

PS_API void ps_free(void *ptr);

/* ---- launch: start `vllm serve` with a plan and watch it come up ------------------- */

#define PS_LAUNCH_MAX_ARGV 320
#define PS_LAUNCH_MAX_CONFLICTS 8

/* One line of vLLM's start-up log, classified (pure; see docs/launch.md). */
enum {
  PS_NCCL_P2P = 1u << 0, /* NCCL INFO "... via P2P/IPC" or "via P2P/direct pointer" */
  PS_NCCL_SHM = 1u << 1, /* "... via SHM/..." */
  PS_NCCL_NET = 1u << 2  /* "... via NET/..." */
};

typedef enum ps_log_failure {
  PS_LOG_FAIL_NONE = 0,
  PS_LOG_FAIL_OOM = 1,          /* CUDA out of memory while loading or profiling */
  PS_LOG_FAIL_KV_TOO_SMALL = 2, /* "KV cache is needed, which is larger than the available ..." */
  PS_LOG_FAIL_NO_KV_MEMORY = 3, /* "No available memory for the cache blocks" */
  PS_LOG_FAIL_HEADS = 4,        /* "Total number of attention heads (N) must be divisible ..." */
  PS_LOG_FAIL_FREE_MEMORY = 5,  /* "Free memory on device ... is less than desired ..." */
  PS_LOG_FAIL_PORT_IN_USE = 6,  /* "[Errno 98] Address already in use" */
  PS_LOG_FAIL_HANG = 7          /* no /health before the deadline (set by ps_launch_run) */
} ps_log_failure;

typedef struct ps_log_summary {
  int custom_all_reduce;              /* -1 not stated, 0 disabled, 1 enabled */
  char custom_all_reduce_reason[256]; /* vLLM's stated reason when disabled */
  uint32_t nccl_transports;           /* PS_NCCL_* seen (needs NCCL_DEBUG=INFO) */
  int64_t kv_cache_tokens;            /* "GPU KV cache size: N tokens"; -1 not seen */
  double max_concurrency;             /* "Maximum concurrency for L tokens per request: Xx"; <0 */
  int64_t concurrency_tokens;         /* that L; -1 not seen */
  double kv_available_gib;            /* "Available KV cache memory: X GiB"; <0 not seen */
  ps_log_failure failure;             /* the first failure recognised */
  char failure_line[512];             /* the line that showed it */
  int heads, heads_tp;                /* PS_LOG_FAIL_HEADS: the numbers vLLM gave */
  double kv_needed_gib;               /* PS_LOG_FAIL_KV_TOO_SMALL: needed vs available */
  int64_t estimated_max_len;          /* vLLM's estimate of the longest context that fits; -1 */
  bool ready;                         /* "Application startup complete." */
} ps_log_summary;

PS_API void ps_log_summary_init(ps_log_summary *summary);
/* Adds what one log line (without its newline) says to the summary. */
PS_API void ps_log_classify_line(ps_log_summary *summary, const char *line);
/* A concrete next step for summary->failure, using the plan (may be NULL): writes one or
 * two sentences to out ("" when there is no failure). */
PS_API void ps_log_suggest(const ps_log_summary *summary, const ps_plan *plan, char *out,
                           size_t len);

struct ps_launch_result;

typedef struct ps_launch_opts {
  const char *vllm;         /* the executable: a path or a name looked up in PATH; NULL = "vllm" */
  const char *host;         /* --host; NULL = "127.0.0.1" */
  int port;                 /* --port; 0 = 8000 */
  const char *const *extra; /* the user's extra vllm arguments (after --) */
  int extra_count;
  int health_timeout_s;     /* deadline for GET /health to answer 200; 0 = 900 */
  int stop_grace_s;         /* SIGTERM to SIGKILL on stop; 0 = 15 */
  bool nccl_debug;          /* add NCCL_DEBUG=INFO (to see the transports) */
  const volatile int *stop; /* set non-zero (e.g. by a signal handler) to stop vLLM */
  /* Called for every log line (stream 1 stdout, 2 stderr) and, with stream 0, for
   * peerscope's own events ("ready http://...", "stopping ..."). May be NULL. */
  void (*on_line)(void *user, int stream, const char *line);
  /* Called once when /health first answers 200, with the result so far (url, summary of
   * the log up to now). May be NULL. */
  void (*on_ready)(void *user, const struct ps_launch_result *result);
  void *user;
} ps_launch_opts;

/* A user argument that contradicts the plan: the user's value wins. */
typedef struct ps_launch_conflict {
  char flag[64];
  char plan_value[128];
  char user_value[128];
} ps_launch_conflict;

/* What would run: argv (argv[0] = the executable as given, "serve", the model, the plan's
 * arguments, --host/--port, then the user's extras) and the environment additions. */
typedef struct ps_launch_cmd {
  int argc;
  char *argv[PS_LAUNCH_MAX_ARGV + 1]; /* NULL-terminated; owned, ps_launch_cmd_free */
  int envc;
  char *env[PS_PLAN_MAX_ITEMS + 2]; /* "NAME=value", added to the caller's environment */
  int conflict_count;
  ps_launch_conflict conflicts[PS_LAUNCH_MAX_CONFLICTS];
} ps_launch_cmd;

/* Pure: the command for `plan` (feasible) with `opts`. A plan argument that the user also
 * gives is dropped from the plan's part and reported as a conflict when the values differ.
 * PS_ERR_INVALID_ARG for an infeasible plan or too many arguments. */
PS_API ps_status ps_launch_argv(ps_ctx *ctx, const ps_plan *plan, const ps_launch_opts *opts,
                                ps_launch_cmd *cmd);
PS_API void ps_launch_cmd_free(ps_launch_cmd *cmd);

typedef enum ps_launch_outcome {
  PS_LAUNCH_EXITED = 0,      /* vLLM exited by itself: exit_code */
  PS_LAUNCH_STOPPED = 1,     /* it came up and was stopped through opts->stop */
  PS_LAUNCH_INTERRUPTED = 2, /* stopped through opts->stop before it came up */
  PS_LAUNCH_HUNG = 3,        /* no healthy /health before the deadline; killed */
  PS_LAUNCH_NOT_FOUND = 4,   /* the executable does not exist */
  PS_LAUNCH_PORT_IN_USE = 5  /* --port was taken before vLLM started; not started */
} ps_launch_outcome;

typedef struct ps_launch_result {
  ps_launch_outcome outcome;
  bool came_up;      /* /health answered 200 */
  double up_after_s; /* seconds from start to healthy */
  int exit_code;     /* vLLM's exit status; 128 + signal when a signal ended it */
  char url[128];     /* "http://127.0.0.1:8000" */
  ps_log_summary summary;
} ps_launch_result;

/* Runs `cmd` (posix_spawnp, own process group, never a shell), streams its log to
 * opts->on_line, polls GET /health until 200 or the deadline, and returns when vLLM exits
 * or is stopped; the whole process group is gone on return. PS_OK whenever an outcome is
 * set (a vLLM failure is an outcome, not an error). */
PS_API ps_status ps_launch_run(ps_ctx *ctx, const ps_launch_cmd *cmd, const ps_launch_opts *opts,
                               ps_launch_result *result);

#ifdef __cplusplus
}
#endif
#endif
