/* Calibration on vLLM's own start-up log (docs/vllm-memory.md, "Calibration"): what a log
 * says (vllm_log.c), the record it gives for a model, GPU type, TP and version
 * (calibration.c), how a plan uses a record (calibration_apply.c), and the cache
 * (calibration_store.c). */
#ifndef PS_PLAN_CALIBRATION_H
#define PS_PLAN_CALIBRATION_H

#include <stdbool.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

/* One figure of the log, in GiB as vLLM printed it, and the line it came from (0 = none). */
typedef struct ps__logged {
  double gib;
  int line;
} ps__logged;

struct ps_vllm_log {
  char name[256]; /* the file, for messages */
  int lines;      /* lines read */
  int vllm_lines; /* lines vLLM wrote that the reader recognised */
  char version[32];
  int version_line;
  int tp, tp_line;            /* 0 = not stated */
  double util;                /* 0 = not stated */
  int max_model_len, batched; /* 0 = not stated */
  int eager;                  /* -1 not stated, 0, 1 */
  ps__logged visible, weights, activation, non_torch, graphs, graphs_captured, peak_torch;
  ps__logged kv_gib; /* the smallest over workers */
  int64_t kv_tokens; /* "GPU KV cache size": the smallest over ranks; -1 */
  int kv_tokens_line;
  int64_t blocks; /* V0 "# GPU blocks"; -1 */
  int blocks_line;
  double concurrency; /* "Maximum concurrency ...": with the smallest token count; <0 */
  int64_t concurrency_len;
};

/* The version of a log or request is one the model's rules cover (0.6 to the newest). */
bool ps__vllm_modelled(const char *version);

struct ps_vllm_calibration {
  /* the key */
  char model[128]; /* ps_model.name */
  char gpu_name[96];
  int tp;
  char vllm_version[32];
  /* the settings it was measured under */
  double util;
  int max_model_len, batched;
  bool eager;
  /* per GPU, bytes; visible 0 = not logged (the planner's estimate was used) */
  uint64_t visible, weights;
  int64_t overhead; /* what vLLM subtracted besides the weights: total x util - weights - KV */
  bool parts;       /* activation, non-torch and graphs were logged */
  uint64_t activation, non_torch, graphs;
  int64_t kv_bytes;
  uint64_t kv_tokens;
  char date[16];    /* YYYY-MM-DD */
  char source[320]; /* "launch", "log FILE" */
};

/* plan: the record that matches a candidate (the request's log first, then the newest of
 * the cache), NULL if none. */
struct ps__plan_input;
struct ps__candidate;
const ps_vllm_calibration *ps__calibration_find(const struct ps__plan_input *in, int tp, int pp,
                                                const char *gpu_name);
/* Replaces the candidate's visible total, weights and overhead by the record's, moved by
 * the model's own difference between the record's settings and the plan's. */
void ps__calibration_apply(const struct ps__plan_input *in, const ps_vllm_calibration *cal,
                           struct ps__candidate *c);

#endif
