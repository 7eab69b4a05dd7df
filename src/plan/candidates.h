/* One candidate configuration (TP x PP on chosen GPUs) and how it fares. */
#ifndef PS_PLAN_CANDIDATES_H
#define PS_PLAN_CANDIDATES_H

#include <stdbool.h>
#include <stdint.h>

#include "peerscope/peerscope.h"
#include "plan/vllm.h"

/* Nodes one plan takes (a Ray cluster of up to this many: one instance over the fewest nodes
 * that hold the model, replicas on the rest). */
#define PS_PLAN_MAX_NODES 1024
/* Usable GPUs of one node the planner considers. */
#define PS_PLAN_NODE_GPUS 1024

/* The request, resolved: defaults filled in, the allowed GPUs of every node listed. */
typedef struct ps__plan_input {
  const ps_model *model;
  int nodes;                       /* nodes given; node 0 is the head (vllm serve runs there) */
  const ps_report *const *reports; /* the caller's, one per node */
  int **allowed;                   /* per node, its usable GPUs (nodes.c allocates) */
  int *allowed_count;              /* per node; 0: the node has none and is left out */
  int *order;     /* the head, then the other nodes, most GPUs (then memory) first */
  int *span_gpus; /* [k]: GPUs each of the first k nodes of `order` gives (their least) */
  double util;
  double reserve_bytes;
  int kv_dtype_bytes; /* 0 = the model's dtype */
  int seqs;
  int asked_seqs;    /* max_num_seqs as requested, 0 = not given */
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
  int span;                   /* nodes it spans */
  int stages;                 /* pipeline stages on each node (pp / span) */
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

/* On the `span` nodes listed (node indexes; the first one's GPUs hold rank 0): pp must be a
 * multiple of span, each node holding pp / span consecutive stages. */
void ps__candidate_build(const ps__plan_input *in, const int *nodes, int span, int tp, int pp,
                         ps__candidate *c);

/* --- nodes.c: which nodes an instance spans, and the replicas the others serve ---------- */

/* Allocates in->allowed and the rest for `nodes` nodes (ps__nodes_free releases them). */
bool ps__nodes_alloc(ps__plan_input *in, int nodes);
void ps__nodes_free(ps__plan_input *in);
/* in->order and in->span_gpus, once every node's allowed GPUs are known. */
void ps__nodes_order(ps__plan_input *in);
/* The most GPUs any node gives. */
int ps__nodes_largest(const ps__plan_input *in);

/* What the other nodes (and the instance's own spare GPUs) can serve with the same plan:
 * replicas counts the instance; per_node[n] the copies whose first node is n. */
typedef struct ps__replicas {
  int total;
  int *per_node; /* in->nodes entries, the caller's */
} ps__replicas;
void ps__nodes_replicas(const ps__plan_input *in, const ps__candidate *c, ps__replicas *out);
/* The reasons for the nodes: which the instance spans and why, what differs between them,
 * and the replicas the rest serve. */
void ps__nodes_explain(const ps__plan_input *in, const ps__candidate *c, const ps__replicas *r,
                       ps_plan *p);

/* --- search.c: the candidates over 1, 2, ... nodes ---------------------------------------- */

typedef struct ps__cand_list {
  ps__candidate *c;
  int count, cap;
} ps__cand_list;
/* Appends to l the candidates over the fewest nodes that hold the model (and those of one more
 * node when that count cuts the context short); false when out of memory. */
bool ps__plan_search(const ps__plan_input *in, const ps_plan_request *req, ps__cand_list *l);
/* A reason when `best` cuts the context short and a candidate of l over more nodes holds it. */
void ps__plan_note_more_nodes(const ps__cand_list *l, const ps__candidate *best, ps_plan *p);

/* plan.c: one line to p->reasons (dropped when full). */
void ps__plan_reason(ps_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* plan_vllm.c: the vLLM whose rules apply (the request's log's, the given one, the installed
 * one, else the newest modelled), with the log's record made and the cache's taken. */
ps_status ps__plan_vllm_version(ps_ctx *ctx, const ps_report *report, const ps_plan_request *req,
                                ps__plan_input *in);
/* plan_vllm.c: the plan's figures of vLLM's accounting, and the reasons that explain them. */
void ps__plan_vllm_fill(const ps__plan_input *in, const ps__candidate *c, ps_plan *p);
void ps__plan_vllm_reasons(const ps__plan_input *in, const ps__candidate *c, ps_plan *p);

#endif
