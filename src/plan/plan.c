/* ps_plan_make: every (TP, PP) vLLM would accept on the allowed GPUs, ranked for the
 * objective; the best becomes the plan, with its vLLM arguments, environment and reasons. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

static double gib(uint64_t b) { return (double)b / PS_GIB; }

void ps__plan_reason(ps_plan *p, const char *fmt, ...) {
  if (p->reason_count >= PS_PLAN_MAX_ITEMS) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->reasons[p->reason_count++], sizeof(p->reasons[0]), fmt, ap);
  va_end(ap);
}

static void item(ps_plan_item *items, int *count, const char *name, const char *value,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void item(ps_plan_item *items, int *count, const char *name, const char *value,
                 const char *fmt, ...) {
  if (*count >= PS_PLAN_MAX_ITEMS) return;
  ps_plan_item *it = &items[(*count)++];
  ps__strlcpy(it->name, name, sizeof(it->name));
  ps__strlcpy(it->value, value, sizeof(it->value));
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->why, sizeof(it->why), fmt, ap);
  va_end(ap);
}

/* Fills in->allowed[node] with the node's usable GPUs (all, or req->gpus on one node). A node
 * other than the head without any is left out (the plan says so). */
static ps_status resolve_node(ps_ctx *ctx, const ps_report *r, const ps_plan_request *req, int node,
                              ps__plan_input *in) {
  if (!r) return ps__fail(ctx, PS_ERR_INVALID_ARG, "plan needs a report for every node");
  if (r->gpu_count == 0 && node > 0) return PS_OK;
  if (r->gpu_count == 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    in->nodes > 1 ? "node 0 (the head, where vllm serve runs) has no GPUs"
                                  : "the topology has no GPUs");
  int cap = req->gpus ? req->gpu_count : r->gpu_count;
  if (cap > PS_PLAN_NODE_GPUS) cap = PS_PLAN_NODE_GPUS;
  if (cap > 0 && !(in->allowed[node] = ps__calloc((size_t)cap, sizeof(int))))
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  for (int i = 0; i < (req->gpus ? req->gpu_count : r->gpu_count); i++) {
    int g = req->gpus ? req->gpus[i] : i;
    if (g < 0 || g >= r->gpu_count)
      return ps__fail(ctx, PS_ERR_INVALID_ARG, "GPU %d does not exist (the topology has %d)", g,
                      r->gpu_count);
    if (!ps_gpu_allowed(r, g)) {
      if (!req->gpus) continue; /* hidden by CUDA_VISIBLE_DEVICES */
      return ps__fail(ctx, PS_ERR_INVALID_ARG,
                      "GPU %d is not among the GPUs CUDA_VISIBLE_DEVICES=%s allows", g,
                      r->cuda_visible_devices);
    }
    /* A GPU whose own memory copy failed is not used at all. */
    ps_verdict local = r->gpus[g].local_verdict;
    if (local == PS_VERDICT_CORRUPT || local == PS_VERDICT_ERROR || local == PS_VERDICT_HANG)
      continue;
    if (in->allowed_count[node] < cap) in->allowed[node][in->allowed_count[node]++] = g;
  }
  if (in->allowed_count[node] == 0 && node == 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "no usable GPU among those allowed%s",
                    in->nodes > 1 ? " on node 0 (the head, where vllm serve runs)" : "");
  return PS_OK;
}

static ps_status resolve(ps_ctx *ctx, const ps_report *const *reports, int nodes,
                         const ps_plan_request *req, ps__plan_input *in) {
  in->model = req->model;
  if (!req->model) return ps__fail(ctx, PS_ERR_INVALID_ARG, "plan needs a model");
  if (nodes < 1 || nodes > PS_PLAN_MAX_NODES)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "%d nodes: peerscope plans 1 to %d (one instance over the fewest nodes that "
                    "hold the model, replicas on the rest); plan a part of the cluster",
                    nodes, PS_PLAN_MAX_NODES);
  if (nodes > 1 && req->gpus)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "a GPU list applies to one node only");
  if (!reports) return ps__fail(ctx, PS_ERR_INVALID_ARG, "plan needs a report for every node");
  if (!ps__nodes_alloc(in, nodes)) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  in->reports = reports;
  for (int n = 0; n < nodes; n++) {
    ps_status st = resolve_node(ctx, reports[n], req, n, in);
    if (st != PS_OK) return st;
  }
  ps__nodes_order(in);
  ps_status vst = ps__plan_vllm_version(ctx, reports[0], req, in);
  if (vst != PS_OK) return vst;
  in->eager = req->enforce_eager;
  in->batched = req->max_num_batched_tokens > 0 ? req->max_num_batched_tokens : 0;
  in->block_size = req->block_size > 0 ? req->block_size : 0;
  in->util =
      req->gpu_memory_utilization > 0 ? req->gpu_memory_utilization : in->vllm.rules->default_util;
  if (in->util > 1.0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "gpu_memory_utilization %.2f is above 1", in->util);
  if (req->reserve_gib < 0)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "reserve %.1f GiB is negative", req->reserve_gib);
  in->reserve_bytes = req->reserve_gib * PS_GIB;
  in->seqs = req->max_num_seqs > 0 ? req->max_num_seqs : 1;
  in->asked_seqs = req->max_num_seqs > 0 ? req->max_num_seqs : 0;
  in->max_model_len = req->max_model_len > 0 ? req->max_model_len : 0;
  in->objective = req->objective;
  const char *kv = req->kv_cache_dtype;
  if (!kv || !*kv || strcmp(kv, "auto") == 0)
    in->kv_dtype_bytes = 0;
  else if (strncmp(kv, "fp8", 3) == 0)
    in->kv_dtype_bytes = 1;
  else if (strcmp(kv, "bfloat16") == 0 || strcmp(kv, "float16") == 0)
    in->kv_dtype_bytes = 2;
  else
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "kv-cache-dtype '%s' unknown (auto, fp8, fp8_e4m3, fp8_e5m2, bfloat16)", kv);
  int n = in->allowed_count[0], most = ps__nodes_largest(in);
  if (nodes == 1 &&
      (req->tp > n || req->pp > n || (req->tp > 0 && req->pp > 0 && req->tp * req->pp > n)))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "TP=%d x PP=%d needs more than the %d GPU%s allowed",
                    req->tp > 0 ? req->tp : 1, req->pp > 0 ? req->pp : 1, n, n == 1 ? "" : "s");
  if (nodes > 1 && req->tp > most)
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "TP=%d is larger than the %d GPUs of the largest node (TP stays inside a "
                    "node)",
                    req->tp, most);
  return PS_OK;
}

/* Whether this TP group is all NVLink and usable: where larger TP pays for latency. */
static bool nvlink_group(const ps__candidate *c) {
  return c->tp > 1 && c->p2p && c->worst_link == 0;
}

/* Ranking key: negative when a is better. */
static int compare(const ps__candidate *a, const ps__candidate *b, ps_objective objective) {
#define BETTER(cond_a, cond_b)                                                                     \
  do {                                                                                             \
    if ((cond_a) != (cond_b)) return (cond_a) ? -1 : 1;                                            \
  } while (0)
  BETTER(a->feasible, b->feasible);
  if (!a->feasible) { /* nearest infeasible: valid ones, the least memory missing */
    BETTER(!a->invalid, !b->invalid);
    BETTER(!a->memory_unknown, !b->memory_unknown);
    if (a->shortfall != b->shortfall) return a->shortfall < b->shortfall ? -1 : 1;
  }
  /* The fewest nodes: several only when one cannot hold the model (vLLM's advice). */
  if (a->feasible && a->span != b->span) return a->span < b->span ? -1 : 1;
  /* A plan that reaches the model's whole context beats one that cuts it short. */
  BETTER(a->full_context, b->full_context);
  if (objective == PS_OBJECTIVE_LATENCY && a->feasible) {
    BETTER(nvlink_group(a), nvlink_group(b));
    if (nvlink_group(a) && a->tp != b->tp) return a->tp > b->tp ? -1 : 1;
  }
  /* One pipeline stage per node when any such plan fits (vLLM's advice: TP inside a node,
   * PP across nodes or where GPUs differ). */
  BETTER(a->stages == 1, b->stages == 1);
  if (a->count != b->count) return a->count < b->count ? -1 : 1;
  BETTER(a->p2p, b->p2p);
  if (a->pp != b->pp) return a->pp < b->pp ? -1 : 1;
  if (a->worst_link != b->worst_link) return a->worst_link < b->worst_link ? -1 : 1;
  if (a->kv_tokens != b->kv_tokens) return a->kv_tokens > b->kv_tokens ? -1 : 1;
  return memcmp(a->gpus, b->gpus, (size_t)a->count * sizeof(int));
#undef BETTER
}

/* The objective travels in each candidate: the planner keeps no file-static state, so
 * concurrent plans (the web server's threads) cannot see each other's objective. */
static int compare_qsort(const void *a, const void *b) {
  const ps__candidate *ca = a;
  return compare(ca, b, ca->objective);
}

static void list_gpus(const int *gpus, int n, char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%d", i ? "," : "", gpus[i]);
}

static void lost_because(const ps__candidate *best, const ps__candidate *c, ps_objective obj,
                         char *out, size_t len) {
  if (!c->feasible) {
    snprintf(out, len, "%s", c->why);
  } else if (c->span > best->span) {
    snprintf(out, len, "spans %d nodes where %d suffice%s%s", c->span, best->span,
             best->span == 1 ? "s" : "",
             best->full_context || c->full_context == best->full_context
                 ? ""
                 : " (it holds the whole context: --max-model-len plans it)");
  } else if (obj == PS_OBJECTIVE_LATENCY && nvlink_group(best) && !nvlink_group(c)) {
    snprintf(out, len, "TP group not all-NVLink: a larger NVLink TP answers faster");
  } else if (obj == PS_OBJECTIVE_LATENCY && nvlink_group(best) && c->tp < best->tp) {
    snprintf(out, len, "smaller TP: the NVLink group of %d answers faster", best->tp);
  } else if (best->full_context && !c->full_context) {
    snprintf(out, len, "context cut to %d tokens; the model's full context needs more room",
             c->max_model_len);
  } else if (c->stages > 1 && best->stages == 1) {
    snprintf(out, len, "pipeline stages add latency where tensor parallelism fits");
  } else if (c->count > best->count) {
    snprintf(out, len, "uses %d GPUs where %d suffice%s", c->count, best->count,
             obj == PS_OBJECTIVE_THROUGHPUT ? " (for throughput, run replicas instead)" : "");
  } else if (!c->p2p && best->p2p) {
    snprintf(out, len, "its TP group has no verified P2P (NCCL would go through host memory)");
  } else if (c->pp > best->pp) {
    snprintf(out, len, "pipeline stages add latency where tensor parallelism fits");
  } else if (c->worst_link > best->worst_link) {
    snprintf(out, len, "slower links inside the TP group");
  } else {
    snprintf(out, len, "less room for KV (%llu tokens vs %llu)", (unsigned long long)c->kv_tokens,
             (unsigned long long)best->kv_tokens);
  }
}

static bool gpus_mixed(const ps_report *r) {
  for (int g = 1; g < r->gpu_count; g++)
    if (strcmp(r->gpus[g].name, r->gpus[0].name) != 0) return true;
  return false;
}

/* The node's ranks' GPUs, in rank order. */
static int node_gpus(const ps__candidate *c, int node, int *out) {
  int n = 0;
  for (int i = 0; i < c->count; i++)
    if (c->node[i] == node) out[n++] = c->gpus[i];
  return n;
}

/* CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES for one node, when its GPUs are a subset, in
 * another order, or of different models, or when the caller had a CUDA_VISIBLE_DEVICES of
 * its own (which vLLM would otherwise read, perhaps fastest-first): always the planned GPUs
 * by nvidia-smi's (PCI) numbers, never positions in the caller's list. */
static bool visible_devices(const ps_report *r, const ps__candidate *c, int node, char *list,
                            size_t len) {
  int gpus[PS_PLAN_MAX_GPUS] = {0}, n = node_gpus(c, node, gpus);
  list_gpus(gpus, n, list, len);
  bool all_in_order = n == r->gpu_count;
  for (int i = 0; all_in_order && i < n; i++)
    all_in_order = gpus[i] == i;
  return !all_in_order || gpus_mixed(r) || r->cuda_visible_devices[0];
}

static void emit_environment(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  char list[512];
  if (c->span == 1 && visible_devices(in->reports[c->node[0]], c, c->node[0], list, sizeof(list))) {
    item(p->env, &p->env_count, "CUDA_DEVICE_ORDER", "PCI_BUS_ID",
         "number GPUs as nvidia-smi and NVML do; CUDA's default is fastest-first");
    item(p->env, &p->env_count, "CUDA_VISIBLE_DEVICES", list,
         "the planned GPUs as integer indexes in rank order (vLLM reads them with int())");
  }
  /* NCCL: only where verification failed; NCCL notices an honest "not supported" itself. */
  bool broken = false, broken_nvlink = false, nvlink_used = false, only_ipc = true;
  for (int i = 0; i < c->count; i++)
    for (int j = 0; j < c->count; j++) {
      if (i == j || c->node[i] != c->node[j]) continue;
      const ps_report *r = in->reports[c->node[i]];
      const ps_pair *pair = ps_report_pair(r, c->gpus[i], c->gpus[j]);
      bool nv = pair && pair->link == PS_LINK_NVLINK;
      nvlink_used = nvlink_used || nv;
      if (ps__pair_broken(r, c->gpus[i], c->gpus[j])) {
        broken = true;
        broken_nvlink = broken_nvlink || nv;
        only_ipc =
            only_ipc && pair->verdict == PS_VERDICT_OK && !ps_verdict_failed(pair->sm.verdict);
      }
    }
  if (broken && only_ipc)
    item(p->env, &p->env_count, "NCCL_P2P_DISABLE", "1",
         "the planned GPUs pass P2P within one process but one process cannot open another's "
         "GPU memory (ipc failed verification): NCCL's P2P transport would fail, so it goes "
         "through shared memory instead; peerscope doctor gives the fix (--ipc=host)");
  else if (broken && nvlink_used && !broken_nvlink)
    item(p->env, &p->env_count, "NCCL_P2P_LEVEL", "NVL",
         "PCIe P2P failed verification between planned GPUs; NVL keeps NCCL's P2P on the "
         "verified NVLinks only");
  else if (broken)
    item(p->env, &p->env_count, "NCCL_P2P_DISABLE", "1",
         "P2P failed verification between planned GPUs; NCCL would use it and hang or corrupt, "
         "so it goes through shared memory instead");
  if (c->custom_partition) {
    size_t used = 0;
    for (int s = 0; s < c->pp; s++)
      used += (size_t)snprintf(p->pp_layer_partition + used, sizeof(p->pp_layer_partition) - used,
                               "%s%d", s ? "," : "", c->layers[s]);
    item(p->env, &p->env_count, "VLLM_PP_LAYER_PARTITION", p->pp_layer_partition,
         "stages differ in memory: layers in proportion to each stage's room");
  }
}

static void emit_arguments(const ps__plan_input *in, const ps__candidate *c,
                           const ps_plan_request *req, ps_plan *p) {
  char v[64];
  snprintf(v, sizeof(v), "%d", c->tp);
  item(p->args, &p->arg_count, "--tensor-parallel-size", v,
       c->tp == 1 ? "the model fits one GPU" : "split each layer over %d GPUs", c->tp);
  if (c->pp > 1) {
    snprintf(v, sizeof(v), "%d", c->pp);
    item(p->args, &p->arg_count, "--pipeline-parallel-size", v, "%d stages of layers", c->pp);
  }
  snprintf(v, sizeof(v), "%.2f", p->gpu_memory_utilization);
  item(p->args, &p->arg_count, "--gpu-memory-utilization", v,
       p->gpu_memory_utilization < in->util ? "lowered: free memory on a GPU is below the "
                                              "requested budget, and vLLM would refuse to start"
                                            : "vLLM's budget as a fraction of each GPU's memory");
  if (c->max_model_len > 0) {
    snprintf(v, sizeof(v), "%d", c->max_model_len);
    item(p->args, &p->arg_count, "--max-model-len", v,
         in->max_model_len ? "as requested; fits the KV budget"
                           : "the longest context whose KV fits at the requested concurrency");
  }
  if (req->max_num_seqs > 0) {
    snprintf(v, sizeof(v), "%d", req->max_num_seqs);
    item(p->args, &p->arg_count, "--max-num-seqs", v, "the requested concurrency");
  }
  if (in->kv_dtype_bytes == 1)
    item(p->args, &p->arg_count, "--kv-cache-dtype", req->kv_cache_dtype,
         "1-byte KV entries: twice the tokens in the same memory");
  /* One flag for every TP group: off when any group needs it off. */
  ps__car_decision car;
  for (int s = 0; s < c->pp; s++) {
    ps__custom_all_reduce(in->reports[c->node[s * c->tp]], c->gpus + s * c->tp, c->tp, &car);
    if (!car.enabled) break;
  }
  p->custom_all_reduce = c->tp > 1 && car.enabled;
  if (c->tp > 1) {
    if (!car.enabled)
      item(p->args, &p->arg_count, "--disable-custom-all-reduce", "", "%s", car.why);
    ps__plan_reason(p, "custom all-reduce %s: %s", car.enabled ? "on" : "off", car.why);
  }
  if (c->span > 1)
    item(p->args, &p->arg_count, "--distributed-executor-backend", "ray",
         "%d nodes: vLLM's workers run on the Ray cluster started below", c->span);
  else if (c->count > 1)
    item(p->args, &p->arg_count, "--distributed-executor-backend", "mp",
         "one node: vLLM's multiprocessing workers (its default; explicit so that a Ray "
         "cluster in the environment is not picked up)");
}

/* `ray start` for every node of the instance, with that node's GPUs and the shared
 * environment: Ray workers inherit the environment of the raylet that `ray start` launches. */
static void emit_cluster_commands(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  for (int k = 0; k < c->span; k++) {
    int n = c->node[k * c->stages * c->tp];
    char list[512], cmd[256 + 512], env[256] = "";
    int gpus[PS_PLAN_MAX_GPUS] = {0}, count = node_gpus(c, n, gpus);
    size_t used = 0;
    if (visible_devices(in->reports[n], c, n, list, sizeof(list)))
      used += (size_t)snprintf(env, sizeof(env),
                               "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=%s ", list);
    for (int i = 0; i < p->env_count && used < sizeof(env); i++)
      used += (size_t)snprintf(env + used, sizeof(env) - used, "%s=%s ", p->env[i].name,
                               p->env[i].value);
    if (k == 0)
      snprintf(cmd, sizeof(cmd), "%sray start --head --port=6379 --num-gpus=%d", env, count);
    else
      snprintf(cmd, sizeof(cmd), "%sray start --address=HEAD_IP:6379 --num-gpus=%d", env, count);
    char name[32];
    snprintf(name, sizeof(name), k == 0 ? "head" : "worker %d", n);
    item(p->commands, &p->command_count, name, cmd,
         "on node %d (%s), before vllm serve; then vllm serve on the head only", n,
         in->reports[n]->machine[0] ? in->reports[n]->machine : "unnamed");
  }
}

static void summarise(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  const ps_report *r = in->reports[c->node[0]];
  char list[512];
  list_gpus(c->gpus, c->count, list, sizeof(list));
  if (in->nodes > 1) { /* "0,1,2,3 of each of 4 nodes" reads better than the rank list */
    int gpus[PS_PLAN_MAX_GPUS] = {0}, n = node_gpus(c, c->node[0], gpus);
    list_gpus(gpus, n, list, sizeof(list));
    size_t used = strlen(list);
    if (c->span == 1)
      snprintf(list + used, sizeof(list) - used, " of node %d", c->node[0]);
    else
      snprintf(list + used, sizeof(list) - used, " of each of %d nodes", c->span);
  }
  if (c->feasible) {
    char link[24] = "one GPU";
    if (c->tp == 1 && c->count > 1) snprintf(link, sizeof(link), "one GPU per stage");
    if (c->tp > 1) {
      const ps_pair *pair = ps_report_pair(r, c->gpus[0], c->gpus[1]);
      if (pair) ps_link_name(pair->link, pair->nvlink_count, link, sizeof(link));
    }
    if (c->kv_known)
      snprintf(p->summary, sizeof(p->summary),
               "TP=%d PP=%d on GPUs %.200s (%s%s): %.1f GiB weights + %.1f GiB overhead per GPU, "
               "%.1f GiB KV = %llu tokens; max_model_len %d x %d sequence%s",
               c->tp, c->pp, list, link, c->tp > 1 && c->p2p ? ", P2P verified" : "",
               gib(c->weights[0]), gib(c->overhead), gib(c->kv_room[0]),
               (unsigned long long)c->kv_tokens, c->max_model_len, in->seqs,
               in->seqs == 1 ? "" : "s");
    else
      snprintf(p->summary, sizeof(p->summary),
               "TP=%d PP=%d on GPUs %.200s: %.1f GiB weights + %.1f GiB overhead per GPU, %.1f GiB "
               "left for KV (KV per token unknown without the model's config)",
               c->tp, c->pp, list, gib(c->weights[0]), gib(c->overhead), gib(c->kv_room[0]));
    return;
  }
  snprintf(p->summary, sizeof(p->summary), "does not fit: %s", c->why);
}

/* For a request that does not fit as asked: the nearest plan that does, first keeping the
 * requested context and freeing TP and PP, then freeing the context too. Named in the summary
 * and added to the alternatives. */
static void suggest_relaxed(ps_ctx *ctx, const ps_report *const *reports, int nodes,
                            const ps_plan_request *req, ps_plan *p) {
  if (req->tp <= 0 && req->pp <= 0 && req->max_model_len <= 0) return;
  ps_plan *alt = ps__calloc(1, sizeof(*alt));
  if (!alt) return;
  ps_plan_request relaxed = *req;
  relaxed.tp = relaxed.pp = 0;
  bool found = (req->tp > 0 || req->pp > 0) &&
               ps__plan_fill(ctx, reports, nodes, &relaxed, alt) == PS_OK && alt->feasible;
  if (!found && req->max_model_len > 0) {
    relaxed.max_model_len = 0;
    found = ps__plan_fill(ctx, reports, nodes, &relaxed, alt) == PS_OK && alt->feasible;
  }
  if (found) {
    size_t used = strlen(p->summary);
    snprintf(p->summary + used, sizeof(p->summary) - used,
             "; TP=%d PP=%d fits with %.1f GiB for KV = %llu tokens (max_model_len %d)", alt->tp,
             alt->pp, gib(alt->kv_bytes), (unsigned long long)alt->kv_tokens, alt->max_model_len);
    if (p->alt_count < PS_PLAN_MAX_ALTS) {
      ps_plan_option *o = &p->alts[p->alt_count++];
      o->tp = alt->tp;
      o->pp = alt->pp;
      o->gpu_count = alt->gpu_count;
      memcpy(o->gpus, alt->gpus, (size_t)alt->gpu_count * sizeof(int));
      o->feasible = true;
      snprintf(o->why, sizeof(o->why), "fits without the requested constraints");
    }
  }
  ps__free(alt);
}

static void fill_plan(const ps__plan_input *in, const ps_plan_request *req, const ps__candidate *c,
                      const ps__replicas *replicas, ps_plan *p) {
  p->feasible = c->feasible;
  p->tp = c->tp;
  p->pp = c->pp;
  p->gpu_count = c->count;
  p->node_count = c->span;
  memcpy(p->gpus, c->gpus, (size_t)c->count * sizeof(int));
  memcpy(p->gpu_node, c->node, (size_t)c->count * sizeof(int));
  p->replicas = c->feasible ? replicas->total : 0;
  uint64_t min_room = UINT64_MAX;
  int tight = 0;
  for (int s = 0; s < c->pp; s++)
    if (c->kv_room[s] < min_room) {
      min_room = c->kv_room[s];
      tight = s;
    }
  p->budget_bytes = c->budget[tight];
  p->weights_bytes = c->weights[tight];
  p->overhead_bytes = c->overhead;
  p->kv_bytes = c->kv_room[tight];
  p->kv_tokens = c->kv_tokens;
  p->max_model_len = c->max_model_len;
  p->max_num_seqs = in->seqs;
  p->gpu_memory_utilization = in->util;
  if (c->free_limited) {
    double lowest = in->util;
    for (int i = 0; i < c->count; i++) {
      const ps_gpu *g = &in->reports[c->node[i]]->gpus[c->gpus[i]];
      double u = (double)g->memory_free_bytes / (double)g->memory_total_bytes;
      if ((g->valid & PS_GPU_MEMORY_FREE) && u < lowest) lowest = u;
    }
    p->gpu_memory_utilization = (double)(int)(lowest * 100.0) / 100.0;
  }
  ps__plan_vllm_fill(in, c, p);
  ps__plan_model_arg(req, in->model, p, false);
  if (!c->feasible) return;
  emit_environment(in, c, p);
  emit_arguments(in, c, req, p);
  ps__plan_model_arg(req, in->model, p, true);
  if (c->span > 1) emit_cluster_commands(in, c, p);
}

static void explain(const ps__plan_input *in, const ps__candidate *c, const ps__replicas *replicas,
                    ps_plan *p) {
  const ps_report *r = in->reports[c->node[0]];
  const ps_model *m = in->model;
  ps__nodes_explain(in, c, replicas, p);
  if (c->tp == 1 && c->pp == 1 && in->nodes == 1)
    ps__plan_reason(p,
                    "the model fits one GPU: TP=1 is the throughput choice; %d replica%s fit the "
                    "allowed GPUs (one vLLM per GPU behind a load balancer)",
                    p->replicas, p->replicas == 1 ? "" : "s");
  else if (c->tp == 1 && c->pp == 1)
    ps__plan_reason(p, "the model fits one GPU: TP=1 is the throughput choice");
  else if (c->span > 1 && c->stages == 1)
    ps__plan_reason(p, "one pipeline stage per node, each a TP group of %d GPUs", c->tp);
  else if (in->objective == PS_OBJECTIVE_THROUGHPUT)
    ps__plan_reason(p, "the smallest group that holds the model: %d GPU%s", c->count,
                    c->count == 1 ? "" : "s");
  else
    ps__plan_reason(p, "latency objective: %s",
                    nvlink_group(c) ? "the largest verified NVLink TP group"
                                    : "no NVLink group, so the smallest "
                                      "group that fits");
  if (c->tp > 1) ps__plan_reason(p, "TP group %s", ps__tp_group_p2p(r, c->gpus, c->tp, c->p2p));
  char modes[160];
  if (c->tp > 1 && r->verified) {
    ps__group_modes(r, c->gpus, c->tp, modes, sizeof(modes));
    ps__plan_reason(p,
                    "verification modes passed by every pair of the TP group: %s (vLLM's custom "
                    "all-reduce needs ipc and sm; NCCL's P2P transport ipc, and sm or ce)",
                    modes);
  }
  if (m->num_heads > 0 && c->tp > 1)
    ps__plan_reason(p, "TP=%d divides the %d attention heads and %s the %d KV heads", c->tp,
                    m->num_heads, c->tp >= m->num_kv_heads ? "is divided by" : "divides",
                    m->num_kv_heads);
  ps__plan_vllm_reasons(in, c, p);
  if (c->kv_known)
    ps__plan_reason(p, "KV: %s", m->estimate_note[0] ? m->estimate_note : "full attention");
  else
    ps__plan_reason(p, "KV size per token unknown (model given by size only): --max-model-len %s",
                    in->max_model_len ? "as requested, not checked" : "left to vLLM");
  if (c->free_limited)
    ps__plan_reason(p, "a GPU has less free memory than total x %.2f (other processes?)", in->util);
  if (in->nodes == 1 && in->allowed_count[0] == 3 && m->num_heads > 0 && m->num_heads % 3 != 0)
    ps__plan_reason(p,
                    "3 GPUs: TP=3 does not divide %d heads (most models' head counts are powers of "
                    "two); use TP=2 and the third GPU for a replica or another model, or PP=3",
                    m->num_heads);
  if (c->pp > 1)
    ps__plan_reason(p, "pipeline parallel: layers per stage %s",
                    c->custom_partition ? p->pp_layer_partition : "vLLM's default split");
}

static void list_alternatives(const ps__plan_input *in, const ps__cand_list *l, ps_plan *plan) {
  const ps__candidate *best = &l->c[0];
  for (int i = 0; i < l->count && plan->alt_count < PS_PLAN_MAX_ALTS; i++) {
    const ps__candidate *c = &l->c[i];
    if (c->invalid && plan->alt_count >= 4) continue; /* keep room for real options */
    ps_plan_option *o = &plan->alts[plan->alt_count++];
    o->tp = c->tp;
    o->pp = c->pp;
    o->gpu_count = c->invalid ? 0 : c->count;
    memcpy(o->gpus, c->gpus, (size_t)o->gpu_count * sizeof(int));
    o->feasible = c->feasible;
    if (i == 0)
      snprintf(o->why, sizeof(o->why), "chosen%s", c->feasible ? "" : " (nearest; does not fit)");
    else
      lost_because(best, c, in->objective, o->why, sizeof(o->why));
  }
}

static ps_status plan_input(ps_ctx *ctx, const ps__plan_input *in, const ps_plan_request *req,
                            ps__cand_list *l, ps_plan *plan) {
  if (!ps__plan_search(in, req, l)) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  if (l->count == 0) /* a TP or PP request no configuration matches */
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "no configuration with TP=%d and PP=%d fits the %d GPU%s of %s", req->tp,
                    req->pp, in->span_gpus[1], in->span_gpus[1] == 1 ? "" : "s",
                    in->nodes > 1 ? "a node" : "the machine");
  qsort(l->c, (size_t)l->count, sizeof(*l->c), compare_qsort);
  const ps__candidate *best = &l->c[0];
  ps__replicas replicas = {0, ps__calloc((size_t)in->nodes, sizeof(int))};
  if (!replicas.per_node) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  if (best->feasible) ps__nodes_replicas(in, best, &replicas);
  fill_plan(in, req, best, &replicas, plan);
  summarise(in, best, plan);
  if (best->feasible) explain(in, best, &replicas, plan);
  ps__plan_note_more_nodes(l, best, plan);
  ps__free(replicas.per_node);
  /* Alternatives: the chosen one, then the nearest others, one per (TP, PP). */
  list_alternatives(in, l, plan);
  return PS_OK;
}

ps_status ps__plan_fill(ps_ctx *ctx, const ps_report *const *reports, int nodes,
                        const ps_plan_request *req, ps_plan *plan) {
  memset(plan, 0, sizeof(*plan));
  ps__plan_input *in = ps__calloc(1, sizeof(*in));
  if (!in) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps__cand_list l = {0};
  ps_status st = resolve(ctx, reports, nodes, req, in);
  if (st == PS_OK) st = plan_input(ctx, in, req, &l, plan);
  if (st == PS_OK && !plan->feasible) suggest_relaxed(ctx, reports, nodes, req, plan);
  ps__free(l.c);
  ps_vllm_calibration_free(in->log_cal);
  ps__nodes_free(in);
  ps__free(in);
  return st;
}
