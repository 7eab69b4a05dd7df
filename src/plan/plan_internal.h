/* The planner's parts: vLLM's rules, the memory model, and the candidate search. */
#ifndef PS_PLAN_INTERNAL_H
#define PS_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

#define PS_GIB (1024.0 * 1024.0 * 1024.0)

/* --- rules.c: what vLLM accepts and decides (vllm-rules.md, vLLM main of Sept 2026) --- */

/* TP must divide the attention heads (ModelConfig.verify_with_parallel_config), and the KV
 * heads must divide TP or TP the KV heads (QKVParallelLinear's divide()). Unknown head counts
 * (synthetic models) accept every TP. Writes why not to `why`. */
bool ps__tp_valid(const ps_model *model, int tp, char *why, size_t why_len);

/* True when the pair is fit for P2P traffic: verified ok, or, in a report that was not
 * verified, claimed OK for read and write. */
bool ps__pair_usable(const ps_report *report, int a, int b);
/* True when the pair failed a real transfer in a way NCCL would not notice by itself:
 * corrupt, error, hang, or refused while the driver claimed P2P. */
bool ps__pair_broken(const ps_report *report, int a, int b);
/* Some pair of the group is usable (or not) only by assumption from its link: no claims. */
bool ps__group_assumed(const ps_report *report, const int *group, int n);
/* What the plan knows of P2P inside a TP group (p2p: every pair usable), and how it knows. */
const char *ps__tp_group_p2p(const ps_report *r, const int *group, int tp, bool p2p);

typedef struct ps__car_decision {
  bool enabled;
  bool essential; /* the flag prevents a failure, not only a warning */
  char why[256];
} ps__car_decision;

/* Which verification modes every directed pair of the group passed, as text ("ce, sm, ipc",
 * then what did not: "sm not available (...)", "ipc not run"); true when all three did. */
bool ps__group_modes(const ps_report *r, const int *group, int n, char *out, size_t len);

/* Custom all-reduce as vLLM would decide it for this TP group, plus off where peerscope saw
 * a pair fail (CudaCommunicator / CustomAllreduce.__init__). */
void ps__custom_all_reduce(const ps_report *report, const int *group, int tp,
                           ps__car_decision *out);

/* --- bench_evidence.c: the report's measured all-reduce on a TP group -------------------- */

typedef enum ps__car_evidence {
  PS_CAR_NOT_MEASURED, /* no benchmark of this group in the report */
  PS_CAR_FASTER,       /* the one-shot kernel beat NCCL at a decode-sized message */
  PS_CAR_NO_GAIN,      /* NCCL was as fast at every size up to 512 KiB */
  PS_CAR_FAILED        /* the one-shot kernel failed, hung or gave wrong sums on the group */
} ps__car_evidence;
ps__car_evidence ps__bench_car_evidence(const ps_report *report, const int *group, int tp,
                                        char *why, size_t why_len);

/* --- memory.c -------------------------------------------------------------------------- */

typedef struct ps__stage_memory {
  uint64_t budget;   /* per GPU: min over the stage's GPUs of total x util - reserve */
  uint64_t weights;  /* per GPU */
  uint64_t overhead; /* per GPU */
  int layers;        /* layers on this stage */
} ps__stage_memory;

/* Weights one GPU of a stage holds: its layers' share / tp, embeddings on the first stage,
 * the LM head on the last, plus KV projections replicated when tp > kv heads. */
uint64_t ps__stage_weights(const ps_model *model, int tp, int stage, int pp, int layers);

/* vLLM's default layer split for pp stages (get_pp_indices): layers / pp each, the remainder
 * one each to stages -2, -3, ... */
void ps__pp_default_partition(int layers, int pp, int *out);

/* plan.c: the planner into a plan of the caller's (zeroed first); `req` is a full, current
 * ps_plan_request (plan_api.c copies the caller's in). ps_plan_make(_cluster) allocate. */
ps_status ps__plan_fill(ps_ctx *ctx, const ps_report *const *reports, int nodes,
                        const ps_plan_request *req, ps_plan *plan);

/* model_arg.c: p->model_arg from req->model_path (or the model's name); an id with a
 * revision gives the id and, when with_args, a --revision argument. */
void ps__plan_model_arg(const ps_plan_request *req, const ps_model *model, ps_plan *p,
                        bool with_args);

#endif
