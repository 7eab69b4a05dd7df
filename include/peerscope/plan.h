/* peerscope/plan.h: the planner (GPUs, TP and PP, memory, the vLLM command) and its request.
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_PLAN_H
#define PEERSCOPE_PLAN_H

#include "report.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- plan: GPUs, TP and PP, memory, and the vLLM command (pure, no I/O) -------------- */

typedef enum ps_objective {
  PS_OBJECTIVE_THROUGHPUT = 0, /* fewest GPUs per replica: TP=1 and replicas when it fits */
  PS_OBJECTIVE_LATENCY = 1     /* larger TP where the fabric (NVLink) makes it pay */
} ps_objective;

typedef struct ps_plan_request {
  size_t size; /* sizeof(ps_plan_request): PS_INIT(ps_plan_request) */
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
  /* Measured figures (docs/vllm-memory.md, "Calibration"): a start-up log of this setup
   * (ps_vllm_log_read), used for this plan and checked against the model; and records of
   * earlier start-ups (ps_vllm_calibration_load), used where model, GPU, TP and version
   * match. ps_plan_input_request fills all three from the vllm_log field and the cache. */
  const struct ps_vllm_log *vllm_log;
  const struct ps_vllm_calibration *const *calibrations;
  int calibration_count;
  const char *vllm_version_note; /* why vllm_version (e.g. "installed at PATH"); NULL = given */
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
  int replicas;               /* copies of this plan that fit on the allowed GPUs (all nodes) */
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
  /* Several nodes (ps_plan_make_cluster): the nodes the instance spans (1 when the model
   * fits one), the node of each rank (an index into the reports), and the commands to run on
   * each node of the instance (name "head" or "worker N", value the command line, why where
   * to run it; none for one node). */
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
  /* Measured figures used (calibration), "" for none: "measured at launch on 2026-05-01
   * (vLLM 0.10.2, TP=1, NVIDIA H100 80GB HBM3)". */
  char calibration[256];
  /* The KV figure's error band (percent) and, for a requested max_model_len or max_num_seqs
   * that lands inside it, the largest values that stay outside (0 = not needed): vLLM could
   * refuse the requested ones. */
  double kv_band_pct;
  int safe_max_model_len;
  int safe_max_num_seqs;
  /* Multimodal models: the vision encoder's part of the profile peak (in activation_bytes),
   * and "" (text-only), "modelled" (derived from vLLM's code), "estimated" (derived for the
   * image, but a longer video item may be profiled instead) or "unmodelled" (0 here: the KV
   * figure may be high). */
  uint64_t encoder_profile_bytes;
  char encoder_profile[16];
} ps_plan;

/* Plans `req` on one machine (`report`: live, fixture, saved or imported). PS_OK also when
 * nothing fits: then plan->feasible is false and summary says why, with numbers, and alts
 * holds the nearest alternatives. PS_ERR_INVALID_ARG for impossible requests (tp larger than
 * the GPUs allowed, ...). Deterministic: the same inputs give the same plan. *out:
 * ps_plan_free. */
PS_API ps_status ps_plan_make(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                              ps_plan **out);

/* Plans over several nodes (1 to 1024), one report each (node 0 is the head, where vllm serve
 * runs): one instance on the head when the model fits one node, else over the fewest nodes
 * that hold it, TP inside a node and PP across nodes (each node holds the same number of
 * stages), Ray as the executor, with the `ray start` commands for the instance's nodes. The
 * head comes first, then the nodes that give the most GPUs; every node of the instance gives
 * as many as the smallest. The reasons say how many replicas the other nodes serve (replicas
 * counts them all). req->gpus must be NULL. */
PS_API ps_status ps_plan_make_cluster(ps_ctx *ctx, const ps_report *const *reports, int count,
                                      const ps_plan_request *req, ps_plan **out);
PS_API void ps_plan_free(ps_plan *plan);

typedef enum ps_plan_format {
  PS_PLAN_TEXT = 0,  /* for people: the plan, each choice explained, alternatives */
  PS_PLAN_JSON = 1,  /* "peerscope.plan/1", docs/plan.schema.json */
  PS_PLAN_SHELL = 2, /* export lines, then the vllm serve command */
  PS_PLAN_ARGS = 3,  /* the vllm serve arguments on one line */
  PS_PLAN_YAML = 4   /* a file for `vllm serve --config` (environment as comments) */
} ps_plan_format;

/* Writes the plan in `format`; *out is NUL-terminated, free with ps_free. */
PS_API ps_status ps_plan_write(ps_ctx *ctx, const ps_plan *plan, ps_plan_format format, char **out);

/* ---- calibration: vLLM's own figures from its start-up log (docs/vllm-memory.md) ------- */

/* What a vLLM start-up log says about memory (opaque): weights, activation peak, non-torch,
 * CUDA graphs, KV GiB and tokens, and the version, TP and settings where it states them. */
typedef struct ps_vllm_log ps_vllm_log;

/* Reads `len` bytes of log text (untrusted: any bytes; lines longer than 4 KiB are cut).
 * `name` (the file) starts every message. PS_ERR_BAD_INPUT, one line "NAME:LINE: ...", for a
 * text that is not a vLLM start-up log, one that ends before the KV cache is sized, or one
 * from a version whose accounting is not modelled. *out: ps_vllm_log_free. */
PS_API ps_status ps_vllm_log_read(ps_ctx *ctx, const char *text, size_t len, const char *name,
                                  ps_vllm_log **out);
/* The same from a file (at most 64 MiB); PS_ERR_IO when it cannot be read. */
PS_API ps_status ps_vllm_log_load(ps_ctx *ctx, const char *path, ps_vllm_log **out);
PS_API void ps_vllm_log_free(ps_vllm_log *log);

/* Measured figures keyed by model, GPU type, TP and vLLM version (opaque). */
typedef struct ps_vllm_calibration ps_vllm_calibration;

/* The record req->vllm_log gives for `req` on `report` (the GPU type: the first GPU allowed;
 * TP: the log's, else req->tp, else 1): PS_ERR_BAD_INPUT "NAME:LINE: ..." when the log
 * contradicts the model (its weights are not the model's, within the tolerance of
 * docs/vllm-memory.md), req->tp or req->vllm_version. `source` says where it was measured
 * ("launch", "log"). *out: ps_vllm_calibration_free. */
PS_API ps_status ps_vllm_calibration_make(ps_ctx *ctx, const ps_report *report,
                                          const ps_plan_request *req, const char *source,
                                          ps_vllm_calibration **out);
PS_API void ps_vllm_calibration_free(ps_vllm_calibration *cal);
/* One line: what was measured, where and when. */
PS_API void ps_vllm_calibration_describe(const ps_vllm_calibration *cal, char *out, size_t len);
/* The cache (PEERSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/peerscope, else ~/.cache/peerscope;
 * `dir` overrides): vllm-calibration.json, schema-versioned, written atomically; a record
 * replaces the one of the same key. Load: every record (*out an array of *count, free with
 * ps_vllm_calibrations_free); a missing, unreadable or foreign file is no records. */
PS_API ps_status ps_vllm_calibration_store(ps_ctx *ctx, const char *dir,
                                           const ps_vllm_calibration *cal);
PS_API ps_status ps_vllm_calibration_load(ps_ctx *ctx, const char *dir, ps_vllm_calibration ***out,
                                          int *count);
PS_API void ps_vllm_calibrations_free(ps_vllm_calibration **cals, int count);

/* The vLLM `launch` would run: `vllm` (NULL: $PEERSCOPE_VLLM, else "vllm" in PATH; "none":
 * none) and its version, from the package metadata beside it (vllm-*.dist-info/METADATA of
 * its Python), else `vllm --version` (10 s at most, the answer cached). false when none is
 * installed; `why` says where the version came from. */
PS_API bool ps_vllm_installed_version(const char *vllm, char *version, size_t len, char *why,
                                      size_t why_len);

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
 * ps_model_resolve) or a size (ps_model_synthetic). *out: ps_model_free. */
PS_API ps_status ps_plan_input_model(ps_ctx *ctx, const ps_plan_input *in, ps_model **out);
/* The same, and where the facts came from (*source, NULL for a model known by size; free it
 * with ps_model_source_free). */
PS_API ps_status ps_plan_input_model_source(ps_ctx *ctx, const ps_plan_input *in, ps_model **out,
                                            ps_model_source **source);
/* The request for ps_plan_make(_cluster): every field given, `model`, and model_path =
 * model_dir, else model_name. `req` is the caller's (PS_INIT): the fields that fit in its size
 * are written. It borrows from `in` and `model` (keep both while it is used); the caller may
 * change it afterwards. */
PS_API ps_status ps_plan_input_request(ps_ctx *ctx, const ps_plan_input *in, const ps_model *model,
                                       ps_plan_request *req);

#ifdef __cplusplus
}
#endif
#endif
