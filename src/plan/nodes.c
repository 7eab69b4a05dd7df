/* Several nodes: which nodes one instance spans, and the replicas of the same plan the other
 * nodes serve. vLLM's advice (docs "Parallelism and scaling"): one node whenever the model fits
 * one; a model larger than a node takes TP = the GPUs of a node and PP = the nodes. The head
 * (node 0) is always in the instance: vllm serve runs there, and vLLM's Ray executor puts a
 * worker on the driver's node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/candidates.h"
#include "plan/plan_internal.h"

bool ps__nodes_alloc(ps__plan_input *in, int nodes) {
  in->nodes = nodes;
  in->allowed = ps__calloc((size_t)nodes, sizeof(*in->allowed));
  in->allowed_count = ps__calloc((size_t)nodes, sizeof(int));
  in->order = ps__calloc((size_t)nodes, sizeof(int));
  in->span_gpus = ps__calloc((size_t)nodes + 1, sizeof(int));
  return in->allowed && in->allowed_count && in->order && in->span_gpus;
}

void ps__nodes_free(ps__plan_input *in) {
  for (int n = 0; in->allowed && n < in->nodes; n++)
    ps__free(in->allowed[n]);
  ps__free(in->allowed);
  ps__free(in->allowed_count);
  ps__free(in->order);
  ps__free(in->span_gpus);
  in->allowed = NULL;
  in->allowed_count = in->order = in->span_gpus = NULL;
}

/* The least memory among a node's usable GPUs (0 when one is unknown). */
static uint64_t least_memory(const ps__plan_input *in, int n) {
  uint64_t least = UINT64_MAX;
  for (int i = 0; i < in->allowed_count[n]; i++) {
    const ps_gpu *g = &in->reports[n]->gpus[in->allowed[n][i]];
    uint64_t m = (g->valid & PS_GPU_MEMORY_TOTAL) ? g->memory_total_bytes : 0;
    if (m < least) least = m;
  }
  return least == UINT64_MAX ? 0 : least;
}

typedef struct node_key {
  int node, gpus;
  uint64_t memory;
} node_key;

static int by_capacity(const void *a, const void *b) {
  const node_key *x = a, *y = b;
  if (x->gpus != y->gpus) return x->gpus > y->gpus ? -1 : 1;
  if (x->memory != y->memory) return x->memory > y->memory ? -1 : 1;
  return x->node < y->node ? -1 : x->node > y->node;
}

void ps__nodes_order(ps__plan_input *in) {
  node_key *keys = ps__calloc((size_t)in->nodes, sizeof(*keys));
  in->order[0] = 0;
  if (keys) {
    for (int n = 1; n < in->nodes; n++)
      keys[n - 1] = (node_key){n, in->allowed_count[n], least_memory(in, n)};
    qsort(keys, (size_t)in->nodes - 1, sizeof(*keys), by_capacity);
    for (int n = 1; n < in->nodes; n++)
      in->order[n] = keys[n - 1].node;
    ps__free(keys);
  } else {
    for (int n = 1; n < in->nodes; n++)
      in->order[n] = n;
  }
  int least = 1 << 30;
  for (int k = 1; k <= in->nodes; k++) {
    int c = in->allowed_count[in->order[k - 1]];
    if (c < least) least = c;
    in->span_gpus[k] = least;
  }
}

int ps__nodes_largest(const ps__plan_input *in) {
  int most = 0;
  for (int n = 0; n < in->nodes; n++)
    if (in->allowed_count[n] > most) most = in->allowed_count[n];
  return most;
}

/* ---- replicas ---------------------------------------------------------------------------- */

/* Whether every GPU of the instance is the same model with the same CUDA-visible memory, on
 * reports that are not live (where free memory could differ): then a node whose GPUs are the
 * same holds the same plan without building it again. */
static bool instance_uniform(const ps__plan_input *in, const ps__candidate *c) {
  const ps_gpu *g0 = &in->reports[c->node[0]]->gpus[c->gpus[0]];
  for (int i = 0; i < c->count; i++) {
    const ps_report *r = in->reports[c->node[i]];
    const ps_gpu *g = &r->gpus[c->gpus[i]];
    if (r->source == PS_SOURCE_LIVE || strcmp(g->name, g0->name) != 0 ||
        ps__visible_total(g) != ps__visible_total(g0))
      return false;
  }
  return true;
}

static bool node_like(const ps__plan_input *in, const ps__candidate *c, int n) {
  const ps_gpu *g0 = &in->reports[c->node[0]]->gpus[c->gpus[0]];
  if (in->reports[n]->source == PS_SOURCE_LIVE) return false;
  for (int i = 0; i < in->allowed_count[n]; i++) {
    const ps_gpu *g = &in->reports[n]->gpus[in->allowed[n][i]];
    if (strcmp(g->name, g0->name) != 0 || ps__visible_total(g) != ps__visible_total(g0))
      return false;
  }
  return true;
}

/* Whether the same TP and PP, at the plan's context, fits on these nodes. */
static bool holds(const ps__plan_input *in, const ps__candidate *c, const int *nodes, int span) {
  bool uniform = instance_uniform(in, c), like = uniform;
  for (int k = 0; k < span; k++) {
    if (in->allowed_count[nodes[k]] < c->count / c->span) return false;
    like = like && node_like(in, c, nodes[k]);
  }
  if (like) return true;
  ps__plan_input same = *in;
  if (c->max_model_len > 0) same.max_model_len = c->max_model_len;
  ps__candidate *t = ps__calloc(1, sizeof(*t));
  if (!t) return false;
  ps__candidate_build(&same, nodes, span, c->tp, c->pp, t);
  bool ok = t->feasible;
  ps__free(t);
  return ok;
}

void ps__nodes_replicas(const ps__plan_input *in, const ps__candidate *c, ps__replicas *out) {
  memset(out->per_node, 0, (size_t)in->nodes * sizeof(int));
  out->total = 0;
  int per = c->count / c->span, head = c->node[0];
  if (c->span == 1) {
    for (int n = 0; n < in->nodes; n++)
      if (n == head || holds(in, c, &n, 1)) out->per_node[n] = in->allowed_count[n] / per;
  } else {
    out->per_node[head] = 1;
    /* the rest in groups of span nodes, in order (the most GPUs first) */
    for (int k = c->span; k + c->span <= in->nodes; k += c->span)
      if (holds(in, c, in->order + k, c->span)) out->per_node[in->order[k]] = 1;
  }
  for (int n = 0; n < in->nodes; n++)
    out->total += out->per_node[n];
}

/* ---- the reasons ------------------------------------------------------------------------- */

/* "1-3,5,9-12" for the listed nodes (ascending), cut with ", ... (N nodes)" when long. */
static void node_list(const int *nodes, int n, char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    int j = i;
    while (j + 1 < n && nodes[j + 1] == nodes[j] + 1)
      j++;
    char part[32];
    if (j > i + 1)
      snprintf(part, sizeof(part), "%s%d-%d", i ? "," : "", nodes[i], nodes[j]);
    else
      snprintf(part, sizeof(part), "%s%d", i ? "," : "", nodes[i]);
    if (j == i + 1) snprintf(part + strlen(part), sizeof(part) - strlen(part), ",%d", nodes[j]);
    if (used + strlen(part) + 24 > len) {
      snprintf(out + used, len - used, ",... (%d nodes)", n);
      return;
    }
    used += (size_t)snprintf(out + used, len - used, "%s", part);
    i = j;
  }
}

/* The nodes outside the instance, with GPUs, that serve `value` replicas. */
static int nodes_with(const ps__plan_input *in, const ps__candidate *c, const ps__replicas *r,
                      int value, int *out) {
  int n = 0;
  for (int i = 0; i < in->nodes; i++) {
    bool in_instance = false;
    for (int k = 0; k < c->count; k++)
      in_instance = in_instance || c->node[k] == i;
    if (in_instance || in->allowed_count[i] == 0) continue; /* nodes without GPUs: said apart */
    if (r->per_node[i] == value) out[n++] = i;
  }
  return n;
}

/* One instance on one node: what the head's spare GPUs and every other node serve. */
static void explain_one_node(const ps__plan_input *in, const ps__candidate *c,
                             const ps__replicas *r, ps_plan *p, int *list) {
  int head = c->node[0], per = c->count, others = 0;
  for (int n = 0; n < in->nodes; n++)
    others += n != head && in->allowed_count[n] > 0;
  ps__plan_reason(p,
                  "%d nodes given: the model fits one, so one instance on node %d without Ray "
                  "(vLLM's advice: several nodes only for a model one node cannot hold; "
                  "pipeline stages over the network add latency)",
                  in->nodes, head);
  int most = 0;
  for (int n = 0; n < in->nodes; n++)
    if (n != head && r->per_node[n] > most) most = r->per_node[n];
  char text[256], nodes[96];
  int spare = r->per_node[head] - 1;
  int used = spare > 0
                 ? snprintf(text, sizeof(text),
                            "replicas: node %d can serve %d more beside this one", head, spare)
                 : snprintf(text, sizeof(text), "replicas: none more on node %d", head);
  if (others > 0 && nodes_with(in, c, r, most, list) == others) {
    if (most)
      used += snprintf(text + used, sizeof(text) - (size_t)used, ", the other %d node%s %d each",
                       others, others == 1 ? "" : "s", most);
    else
      used += snprintf(text + used, sizeof(text) - (size_t)used, ", none on the other %d node%s",
                       others, others == 1 ? "" : "s");
  } else {
    for (int v = most; v >= 0 && used < (int)sizeof(text); v--) {
      int k = nodes_with(in, c, r, v, list);
      if (!k) continue;
      node_list(list, k, nodes, sizeof(nodes));
      if (v)
        used += snprintf(text + used, sizeof(text) - (size_t)used, ", %d%s on node%s %s", v,
                         k > 1 ? " each" : "", k == 1 ? "" : "s", nodes);
      else
        used += snprintf(text + used, sizeof(text) - (size_t)used, ", none on node%s %s",
                         k == 1 ? "" : "s", nodes);
    }
  }
  if (used < (int)sizeof(text))
    snprintf(text + used, sizeof(text) - (size_t)used,
             ": %d in all (one vllm serve each, this command with CUDA_VISIBLE_DEVICES set to "
             "its GPUs; a load balancer in front)",
             r->total);
  ps__plan_reason(p, "%s", text);
  int none = nodes_with(in, c, r, 0, list);
  if (none) {
    char context[40] = "";
    if (c->max_model_len > 0)
      snprintf(context, sizeof(context), " at max_model_len %d", c->max_model_len);
    node_list(list, none, nodes, sizeof(nodes));
    ps__plan_reason(p,
                    "node%s %s: no replica (fewer than %d usable GPUs, or TP=%d%s does not fit "
                    "their memory)",
                    none == 1 ? "" : "s", nodes, per, c->tp, context);
  }
}

/* One instance over several nodes: the instance, then the further instances of as many nodes. */
static void explain_spread(const ps__plan_input *in, const ps__candidate *c, const ps__replicas *r,
                           ps_plan *p, int *list) {
  int k = 0;
  for (int i = 0; i < c->count; i += c->tp * c->stages)
    list[k++] = c->node[i];
  char nodes[96];
  node_list(list, k, nodes, sizeof(nodes));
  ps__plan_reason(p,
                  "the model does not fit one node: one instance over %d nodes (nodes %s), TP=%d "
                  "inside "
                  "each and PP=%d across them (vLLM's advice: TP = the GPUs of a node, PP = the "
                  "nodes; pipeline traffic is small enough for the network)",
                  c->span, nodes, c->tp, c->pp);
  int others = in->nodes - c->span, more = r->total - 1;
  if (!others) return;
  int idle = others - more * c->span;
  if (!more)
    ps__plan_reason(p,
                    "the other %d node%s: no further instance (one needs %d nodes that hold it), "
                    "left idle",
                    others, others == 1 ? "" : "s", c->span);
  char tail[48] = "";
  if (idle) snprintf(tail, sizeof(tail), "; %d left idle", idle);
  if (more)
    ps__plan_reason(p,
                    "the other %d nodes can serve %d more instance%s of %d nodes each (each its "
                    "own Ray cluster and vllm serve; a load balancer in front)%s",
                    others, more, more == 1 ? "" : "s", c->span, tail);
}

/* When another node gives more GPUs or more memory than the head: the instance is on the
 * head (vllm serve runs there; Ray puts a worker on the driver's node), so say how to plan
 * on the larger node instead. */
static void head_note(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  int head = c->node[0], best = head;
  for (int n = 0; n < in->nodes; n++) {
    bool more = in->allowed_count[n] > in->allowed_count[best] ||
                (in->allowed_count[n] == in->allowed_count[best] &&
                 least_memory(in, n) > least_memory(in, best));
    if (more) best = n;
  }
  if (best == head) return;
  ps__plan_reason(p,
                  "node %d gives %d GPUs of %.0f GiB, the head (node %d, the first given, where "
                  "vllm serve runs) %d of %.0f GiB: give node %d first to plan on it",
                  best, in->allowed_count[best], (double)least_memory(in, best) / PS_GIB, head,
                  in->allowed_count[head], (double)least_memory(in, head) / PS_GIB, best);
}

/* GPU counts, GPU models and drivers that differ between the instance's nodes. */
static void explain_differences(const ps__plan_input *in, const ps__candidate *c, ps_plan *p) {
  int head = c->node[0];
  const ps_report *h = in->reports[head];
  int per = c->count / c->span;
  for (int i = c->tp * c->stages; i < c->count; i += c->tp * c->stages) {
    int n = c->node[i];
    const ps_report *r = in->reports[n];
    if (in->allowed_count[n] != in->allowed_count[head])
      ps__plan_reason(p,
                      "node %d has %d usable GPUs and node %d %d: every node of the instance "
                      "gives %d (vLLM runs as many ranks on each), the rest idle",
                      n, in->allowed_count[n], head, in->allowed_count[head], per);
    if (strcmp(r->gpus[0].name, h->gpus[0].name) != 0)
      ps__plan_reason(p,
                      "node %d has %s, node %d %s: stages are sized by memory, and the slowest "
                      "stage sets the pace",
                      n, r->gpus[0].name[0] ? r->gpus[0].name : "unknown GPUs", head,
                      h->gpus[0].name[0] ? h->gpus[0].name : "unknown GPUs");
    if (strcmp(r->driver_version, h->driver_version) != 0)
      ps__plan_reason(p,
                      "driver versions differ (node %d %s, node %d %s): fine for vLLM, but keep "
                      "the same vLLM, PyTorch and NCCL on every node",
                      n, r->driver_version[0] ? r->driver_version : "unknown", head,
                      h->driver_version[0] ? h->driver_version : "unknown");
  }
  head_note(in, c, p);
}

void ps__nodes_explain(const ps__plan_input *in, const ps__candidate *c, const ps__replicas *r,
                       ps_plan *p) {
  if (in->nodes == 1) return;
  int *list = ps__calloc((size_t)in->nodes, sizeof(int));
  if (!list) return;
  if (c->span == 1)
    explain_one_node(in, c, r, p, list);
  else
    explain_spread(in, c, r, p, list);
  explain_differences(in, c, p);
  int empty = 0;
  for (int n = 0; n < in->nodes; n++)
    if (in->allowed_count[n] == 0) list[empty++] = n;
  if (empty) {
    char nodes[96];
    node_list(list, empty, nodes, sizeof(nodes));
    ps__plan_reason(p, "node%s %s: no usable GPU, left out", empty == 1 ? "" : "s", nodes);
  }
  ps__free(list);
}
