/* One candidate configuration (TP x PP on chosen GPUs) and how it fares. */
#ifndef PS_PLAN_CANDIDATES_H
#define PS_PLAN_CANDIDATES_H

#include <stdbool.h>
#include <stdint.h>

#include "peerscope/peerscope.h"
#include "plan/vllm.h"

#define PS_PLAN_MAX_NODES 8

/* The request, resolved: defaults filled in, the allowed GPUs of every node listed. */
typedef struct ps__plan_input {
  const ps_model *model;
  int nodes;
  const ps_report *reports[PS_PLAN_MAX_NODES];
  int allowed[PS_PLAN_MAX_NODES][1024];
  int allowed_count[PS_PLAN_MAX_NODES];
  int per_node; /* GPUs every node can give: the smallest node's count */
  double util;
  double reserve_bytes;
  int kv_dtype_bytes; /* 0 = the model's dtype */
  int seqs;
  int max_model_len; /* 0 = find the longest */
  ps_objective objective;
  ps__vllm vllm;  /* whose accounting is modelled */
  bool eager;     /* --enforce-eager */
  int batched;    /* --max-num-batched-tokens, 0 = the version's default */
  int block_size; /* 0 = the default */
  /* measured figures: the request's log's record (owned), then the cache's */
  ps_vllm_calibration *log_cal;
  const ps_vllm_calibration *const *cals;
  int cal_count;
} ps__plan_input;

typedef struct ps__candidate {
  int tp, pp, count;
  int stages;                 /* pipeline stages on each node (pp / nodes) */
  int gpus[PS_PLAN_MAX_GPUS]; /* rank order, stage-major; indexes within their node */
  int node[PS_PLAN_MAX_GPUS]; /* the node of each rank */
  bool feasible;
  bool invalid; /* not a configuration vLLM accepts (TP vs heads, too few GPUs) */
  bool memory_unknown;
  bool p2p;          /* every TP group is a verified (or claimed) P2P clique */
  bool free_limited; /* a live GPU's free memory is below total x util */
  int worst_link;    /* 0 NVLink ... 7 unknown, within the TP groups */
  int layers[PS_PLAN_MAX_GPUS];
  bool custom_partition;
  uint64_t budget[PS_PLAN_MAX_GPUS];  /* per stage, per GPU */
  uint64_t weights[PS_PLAN_MAX_GPUS]; /* per stage, per GPU */
  uint64_t kv_room[PS_PLAN_MAX_GPUS]; /* per stage, per GPU */
  uint64_t overhead;                  /* mem's activation + non_torch + graphs */
  ps__vllm_memory mem;
  uint64_t visible; /* the smallest CUDA-visible total among the GPUs */
  bool kv_known;
  uint64_t kv_tokens; /* "GPU KV cache size" as the version prints it */
  uint64_t kv_blocks; /* per pool, the smallest over stages */
  int kv_groups;      /* KV-cache groups sharing a block id */
  int block_size;
  double max_concurrency; /* requests of max_model_len the blocks hold */
  int max_model_len;
  bool full_context;              /* max_model_len reaches the model's maximum (or the request) */
  uint64_t shortfall;             /* infeasible: bytes per GPU missing on the tightest stage */
  char why[256];                  /* why it is infeasible */
  ps_objective objective;         /* the request's: qsort's comparator reads it here, no static */
  const ps_vllm_calibration *cal; /* measured figures used, NULL for the model's */
} ps__candidate;

/* pp must be a multiple of in->nodes: each node holds pp / nodes consecutive stages. */
void ps__candidate_build(const ps__plan_input *in, int tp, int pp, ps__candidate *c);

/* plan_vllm.c: the vLLM whose rules apply (the request's log's, the given one, the installed
 * one, else the newest modelled), with the log's record made and the cache's taken. */
ps_status ps__plan_vllm_version(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                                ps__plan_input *in);
/* plan_vllm.c: the plan's figures of vLLM's accounting, and the reasons that explain them. */
void ps__plan_vllm_fill(const ps__plan_input *in, const ps__candidate *c, ps_plan *p);
void ps__plan_vllm_reasons(const ps__plan_input *in, const ps__candidate *c, ps_plan *p);

#endif
