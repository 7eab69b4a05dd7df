/* Candidate configurations: for one (TP, PP), which GPUs, how memory divides, and the longest
 * context that fits. Pure: a report and a model in, a filled candidate out. */
#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/internal.h"
#include "plan/calibration.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

#define FULL_GROUP_CAP PS_PLAN_NODE_GPUS

static bool taken(const int *used, int used_count, int gpu) {
  for (int i = 0; i < used_count; i++)
    if (used[i] == gpu) return true;
  return false;
}

/* One stage's TP group from the GPUs not yet used: the best verified clique, else (no P2P
 * between enough GPUs) the largest-memory GPUs, which then talk through NCCL's shared-memory
 * path. */
static bool pick_group(const ps_report *r, const int *allowed, int allowed_count, const int *used,
                       int used_n, int tp, int *out, bool *p2p) {
  int avail[FULL_GROUP_CAP] = {0}, n = 0;
  for (int i = 0; i < allowed_count; i++)
    if (!taken(used, used_n, allowed[i])) avail[n++] = allowed[i];
  if (n < tp) return false;
  *p2p = true;
  if (tp == 1) {
    /* the GPU with the most memory (ties: lowest index) */
    int best = avail[0];
    for (int i = 1; i < n; i++)
      if (r->gpus[avail[i]].memory_total_bytes > r->gpus[best].memory_total_bytes) best = avail[i];
    out[0] = best;
    return true;
  }
  int group[FULL_GROUP_CAP];
  if (ps_best_group(r, avail, n, tp, group, FULL_GROUP_CAP) == tp) {
    memcpy(out, group, (size_t)tp * sizeof(int));
    return true;
  }
  *p2p = false;
  /* Largest memory first, then lowest index: a simple stable selection. */
  bool chosen[FULL_GROUP_CAP] = {false};
  for (int k = 0; k < tp; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (!chosen[i] && (best < 0 || r->gpus[avail[i]].memory_total_bytes >
                                         r->gpus[avail[best]].memory_total_bytes))
        best = i;
    chosen[best] = true;
  }
  for (int i = 0, k = 0; i < n; i++)
    if (chosen[i]) out[k++] = avail[i];
  return true;
}

/* Worst link inside the TP groups, as a rank (0 NVLink ... 7 unknown). */
static int worst_link(const ps__plan_input *in, const ps__candidate *c) {
  static const int rank[] = {[PS_LINK_UNKNOWN] = 7,  [PS_LINK_SELF] = 0, [PS_LINK_NVLINK] = 0,
                             [PS_LINK_INTERNAL] = 1, [PS_LINK_PIX] = 2,  [PS_LINK_PXB] = 3,
                             [PS_LINK_PHB] = 4,      [PS_LINK_NODE] = 5, [PS_LINK_SYS] = 6};
  int worst = 0;
  for (int s = 0; s < c->pp; s++)
    for (int i = 0; i < c->tp; i++)
      for (int j = 0; j < c->tp; j++) {
        if (i == j) continue;
        const ps_report *r = in->reports[c->node[s * c->tp]];
        const ps_pair *p = ps_report_pair(r, c->gpus[s * c->tp + i], c->gpus[s * c->tp + j]);
        int k = p && (p->valid & PS_PAIR_LINK) ? rank[p->link] : 7;
        if (k > worst) worst = k;
      }
  return worst;
}

static uint64_t gpu_budget(const ps_report *r, const ps__plan_input *in, int gpu,
                           bool *free_limited) {
  const ps_gpu *g = &r->gpus[gpu];
  /* vLLM's budget is a fraction of what CUDA reports, a little below NVML's total */
  double budget = (double)ps__visible_total(g) * in->util;
  /* On a live machine vLLM refuses to start when free memory is below its budget. */
  if (r->source == PS_SOURCE_LIVE && (g->valid & PS_GPU_MEMORY_FREE) &&
      (double)g->memory_free_bytes < budget) {
    budget = (double)g->memory_free_bytes;
    *free_limited = true;
  }
  budget -= in->reserve_bytes;
  return budget > 0 ? (uint64_t)budget : 0;
}

/* Layers per stage: vLLM's default, or proportional to each stage's room when stages differ
 * (mixed GPUs), as the maintainers advise with VLLM_PP_LAYER_PARTITION. */
static void partition_layers(const ps_model *m, ps__candidate *c, const uint64_t *room) {
  int layers = m->num_layers > 0 ? m->num_layers : c->pp;
  ps__pp_default_partition(layers, c->pp, c->layers);
  c->custom_partition = false;
  bool equal = true;
  double total_room = 0;
  for (int s = 0; s < c->pp; s++) {
    total_room += (double)room[s];
    if (room[s] != room[0]) equal = false;
  }
  if (equal || c->pp == 1 || total_room <= 0 || m->num_layers <= 0) return;
  int assigned = 0;
  for (int s = 0; s < c->pp; s++) {
    int share = (int)((double)layers * (double)room[s] / total_room);
    c->layers[s] = share < 1 ? 1 : share;
    assigned += c->layers[s];
  }
  /* hand out the remainder (or take back the excess) from the roomiest stages */
  while (assigned != layers) {
    int pick = 0;
    for (int s = 1; s < c->pp; s++)
      if (assigned < layers ? room[s] > room[pick] : (c->layers[s] > c->layers[pick])) pick = s;
    if (assigned > layers && c->layers[pick] <= 1) break;
    c->layers[pick] += assigned < layers ? 1 : -1;
    assigned += assigned < layers ? 1 : -1;
  }
  int def[PS_PLAN_MAX_GPUS];
  ps__pp_default_partition(layers, c->pp, def);
  c->custom_partition = memcmp(def, c->layers, (size_t)c->pp * sizeof(int)) != 0;
}

static bool stage_layout(const ps__plan_input *in, const ps__candidate *c, int stage,
                         ps__kv_layout *l) {
  return ps__kv_layout_make(in->model, &in->vllm, c->tp, in->kv_dtype_bytes, in->block_size,
                            c->mem.batched, c->layers[stage], l);
}

/* Blocks per pool vLLM allocates: the smallest over the stages (the engine takes the minimum
 * over workers). */
static uint64_t min_blocks(const ps__plan_input *in, const ps__candidate *c) {
  uint64_t least = UINT64_MAX;
  for (int s = 0; s < c->pp; s++) {
    ps__kv_layout l;
    if (!stage_layout(in, c, s, &l)) return 0;
    uint64_t b = ps__kv_blocks(&l, c->kv_room[s]);
    if (b < least) least = b;
  }
  return least;
}

/* KV bytes stage 0 needs for seqs requests of len tokens. */
static uint64_t stage_need(const ps__plan_input *in, const ps__candidate *c, uint64_t len) {
  ps__kv_layout l;
  if (!stage_layout(in, c, 0, &l)) return 0;
  return ps__mul_u64_sat(
      ps__mul_u64_sat(ps__mul_u64_sat(ps__kv_blocks_per_request(&l, len), (uint64_t)in->seqs),
                      l.page),
      (uint64_t)l.pool_layers);
}

/* vLLM starts when one request of max_model_len fits; seqs of them at once when the blocks
 * hold seqs x the blocks of one. */
static bool fits(const ps__plan_input *in, const ps__candidate *c, uint64_t len) {
  ps__kv_layout l;
  if (!stage_layout(in, c, 0, &l)) return false;
  return min_blocks(in, c) >=
         ps__mul_u64_sat(ps__kv_blocks_per_request(&l, len), (uint64_t)in->seqs);
}

static double gib(uint64_t b) { return (double)b / PS_GIB; }

/* Largest len in [0, hi] for which fits() holds (fits is monotonic in len). */
static uint64_t longest_fit(const ps__plan_input *in, const ps__candidate *c, uint64_t hi) {
  uint64_t lo = 0;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(in, c, mid))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* What vLLM would log for the chosen length: blocks, tokens, groups, concurrency. */
static void kv_figures(const ps__plan_input *in, ps__candidate *c) {
  ps__kv_layout l;
  stage_layout(in, c, 0, &l);
  c->kv_blocks = min_blocks(in, c);
  c->kv_groups = ps__kv_groups(&l);
  c->block_size = l.block;
  uint64_t len = c->max_model_len > 0 ? (uint64_t)c->max_model_len : 0;
  c->kv_tokens = ps__kv_printed_tokens(&l, c->kv_blocks, len);
  c->max_concurrency = len ? (double)c->kv_blocks / (double)ps__kv_blocks_per_request(&l, len) : 0;
}

/* The longest context (a multiple of 16 up to the model's maximum) that fits every stage. */
static void size_context(const ps__plan_input *in, ps__candidate *c) {
  const ps_model *m = in->model;
  ps__kv_layout probe;
  c->kv_known = stage_layout(in, c, 0, &probe);
  if (!c->kv_known) {
    c->max_model_len = in->max_model_len;
    c->full_context = true; /* nothing to compare: KV per token unknown */
    return;
  }
  uint64_t max_pos = (m->valid & PS_MODEL_MAX_POSITIONS) && m->max_position_embeddings > 0
                         ? (uint64_t)m->max_position_embeddings
                         : 131072;
  if (in->max_model_len > 0) {
    c->max_model_len = in->max_model_len;
    c->full_context = true;
    kv_figures(in, c);
    if (!fits(in, c, (uint64_t)in->max_model_len)) {
      uint64_t need = stage_need(in, c, (uint64_t)in->max_model_len);
      c->feasible = false;
      c->shortfall = need > c->kv_room[0] ? need - c->kv_room[0] : 1;
      snprintf(c->why, sizeof(c->why),
               "max_model_len %d x %d sequence%s needs %.1f GiB of KV per GPU at TP=%d; %.1f GiB "
               "is left after weights and overhead",
               in->max_model_len, in->seqs, in->seqs == 1 ? "" : "s", gib(need), c->tp,
               gib(c->kv_room[0]));
    }
    return;
  }
  uint64_t len = longest_fit(in, c, max_pos);
  if (len != max_pos) len = len / 16 * 16;
  uint64_t useful = max_pos < 1024 ? max_pos : 1024;
  c->max_model_len = (int)len;
  c->full_context = len == max_pos;
  kv_figures(in, c);
  if (len < useful) {
    c->feasible = false;
    uint64_t need = stage_need(in, c, useful);
    c->shortfall = need > c->kv_room[0] ? need - c->kv_room[0] : 1;
    snprintf(c->why, sizeof(c->why),
             "only %llu tokens of KV fit per sequence at TP=%d (%.1f GiB left for KV per GPU)",
             (unsigned long long)len, c->tp, gib(c->kv_room[0]));
  }
}

/* Activation, non-torch and graphs as this vLLM measures them on the candidate's GPUs. */
static void overhead(const ps__plan_input *in, ps__candidate *c, const char *gpu_name) {
  const ps_model *m = in->model;
  int len = in->max_model_len;
  if (len <= 0)
    len = (m->valid & PS_MODEL_MAX_POSITIONS) && m->max_position_embeddings > 0
              ? m->max_position_embeddings
              : 131072;
  ps__vllm_setup setup = {&in->vllm, c->tp,      len,      in->batched,
                          in->eager, c->visible, gpu_name, in->asked_seqs};
  ps__vllm_memory_make(m, &setup, &c->mem);
  c->overhead =
      ps__add_u64_sat(ps__add_u64_sat(c->mem.activation, c->mem.non_torch), c->mem.graphs);
}

/* Each stage's budget (its tightest GPU's) and the smallest CUDA-visible total; false, with
 * the reason in c, when a GPU's memory is unknown. */
static bool stage_budgets(const ps__plan_input *in, ps__candidate *c) {
  c->visible = UINT64_MAX;
  for (int s = 0; s < c->pp; s++) {
    c->budget[s] = UINT64_MAX;
    for (int i = 0; i < c->tp; i++) {
      int g = c->gpus[s * c->tp + i];
      const ps_report *r = in->reports[c->node[s * c->tp + i]];
      if (!(r->gpus[g].valid & PS_GPU_MEMORY_TOTAL)) {
        c->feasible = false;
        c->memory_unknown = true;
        snprintf(c->why, sizeof(c->why),
                 "GPU %d's memory is unknown (give --gpu-mem or --gpu-info)", g);
        return false;
      }
      uint64_t b = gpu_budget(r, in, g, &c->free_limited);
      if (b < c->budget[s]) c->budget[s] = b;
      uint64_t v = ps__visible_total(&r->gpus[g]);
      if (v < c->visible) c->visible = v;
    }
  }
  return true;
}

void ps__candidate_build(const ps__plan_input *in, const int *nodes, int span, int tp, int pp,
                         ps__candidate *c) {
  memset(c, 0, sizeof(*c));
  c->tp = tp;
  c->pp = pp;
  c->count = tp * pp;
  c->span = span;
  c->stages = pp / span;
  c->feasible = true;
  char why[256];
  if (!ps__tp_valid(in->model, tp, why, sizeof(why))) {
    c->feasible = false;
    c->invalid = true;
    ps__strlcpy(c->why, why, sizeof(c->why));
    return;
  }
  if (in->model->num_layers > 0 && pp > in->model->num_layers) {
    c->feasible = false;
    c->invalid = true;
    snprintf(c->why, sizeof(c->why), "PP=%d exceeds the model's %d layers", pp,
             in->model->num_layers);
    return;
  }
  c->p2p = true;
  int per_node = c->stages; /* stages on each node */
  for (int s = 0; s < pp; s++) {
    int k = s / per_node, n = nodes[k], first = k * per_node * tp; /* node k's ranks start here */
    bool p2p = true;
    if (!pick_group(in->reports[n], in->allowed[n], in->allowed_count[n], c->gpus + first,
                    (s - k * per_node) * tp, tp, c->gpus + s * tp, &p2p)) {
      c->feasible = false;
      c->invalid = true;
      snprintf(c->why, sizeof(c->why), "needs %d GPUs per node; node %d gives %d", tp * per_node, n,
               in->allowed_count[n]);
      return;
    }
    for (int i = 0; i < tp; i++)
      c->node[s * tp + i] = n;
    c->p2p = c->p2p && p2p;
  }
  c->worst_link = worst_link(in, c);

  uint64_t room[PS_PLAN_MAX_GPUS];
  const char *gpu_name = in->reports[c->node[0]]->gpus[c->gpus[0]].name;
  if (!stage_budgets(in, c)) return;
  overhead(in, c, gpu_name);
  const ps_vllm_calibration *cal = ps__calibration_find(in, tp, pp, gpu_name);
  if (cal) ps__calibration_apply(in, cal, c);
  for (int s = 0; s < pp; s++)
    room[s] = c->budget[s] > c->overhead ? c->budget[s] - c->overhead : 0;
  partition_layers(in->model, c, room);
  for (int s = 0; s < pp; s++) {
    c->weights[s] = cal ? cal->weights : ps__stage_weights(in->model, tp, s, pp, c->layers[s]);
    uint64_t need = ps__add_u64_sat(c->weights[s], c->overhead); /* saturated: never fits */
    if (need >= c->budget[s]) {
      c->feasible = false;
      c->shortfall = ps__add_u64_sat(need - c->budget[s], 1);
      snprintf(c->why, sizeof(c->why),
               "needs %.1f GiB per GPU at TP=%d%s (weights %.1f + overhead %.1f) before any KV; "
               "%s offers %.1f GiB at gpu_memory_utilization %.2f",
               gib(need), tp, pp > 1 ? " per stage" : "", gib(c->weights[s]), gib(c->overhead),
               tp * pp > 1 ? "each GPU" : "the GPU", gib(c->budget[s]), in->util);
      return;
    }
    c->kv_room[s] = c->budget[s] - need;
  }
  size_context(in, c);
}
