/* ps_best_group and ps_recommend_tp: the best set of GPUs that can all copy to each other.
 *
 * GPUs are vertices; a and b are joined when both directions verified ok (or, for a report
 * that was not verified, both directions are claimed OK for read and write). A group is a
 * clique. Among the cliques of the wanted size the best one has, in this order:
 *   1. the best worst link (NVLink, internal, PIX, PXB, PHB, NODE, SYS, unknown);
 *   2. when that is NVLink, the most NVLinks on its thinnest edge;
 *   3. the fewest NUMA nodes (an unknown node counts as a node of its own);
 *   4. the fewest distinct GPU names (unknown names count as distinct);
 *   5. the lowest indexes (lexicographically).
 * 1 and 2 are found by raising a link threshold until a clique of the size exists; 3 to 5
 * by a branch and bound over that thresholded graph, in ascending vertex order so the first
 * of equally scored groups found is the lexicographically lowest. The worst link is what a
 * ring all-reduce runs at, so only it is ranked, not the count of slow edges. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "groups/clique.h"

/* Link quality ranks, best first. */
enum { R_NVLINK, R_INTERNAL, R_PIX, R_PXB, R_PHB, R_NODE, R_SYS, R_UNKNOWN, R_COUNT };

/* Branch-and-bound steps before the search settles for the best group found so far (a valid
 * group of the right size and worst link, possibly not the best NUMA/name spread): well under
 * a second. Keeps a pathological graph from stalling a caller; machine-shaped topologies
 * finish far below it. */
#define PS_GROUP_NODE_BUDGET 4000000L

typedef struct planner {
  int n, words;
  ps__set eligible;
  ps__set *usable; /* n sets: the usable edges */
  ps__set *thresh; /* n sets: the usable edges at the current link threshold */
  uint8_t *rank;   /* n * n: edge rank (worse of the two directions) */
  int *nvlinks;    /* n * n: NVLinks on the edge (fewer of the two directions) */
  ps__set *numa;   /* n singletons: the GPU's NUMA node id */
  ps__set *name;   /* n singletons: the GPU's name id */
} planner;

typedef struct score {
  int numa;  /* distinct NUMA nodes */
  int names; /* distinct names */
} score;

typedef struct bnb {
  const planner *pl;
  ps__graph g;
  int k;
  int *cur, *best;
  int *counts, *sizes; /* n each: scratch for ids_needed */
  bool have_best;
  score best_score;
  long nodes;
} bnb;

static int link_rank(const ps_pair *pair) {
  if (!(pair->valid & PS_PAIR_LINK)) return R_UNKNOWN;
  switch (pair->link) {
  case PS_LINK_NVLINK: return R_NVLINK;
  case PS_LINK_INTERNAL: return R_INTERNAL;
  case PS_LINK_PIX: return R_PIX;
  case PS_LINK_PXB: return R_PXB;
  case PS_LINK_PHB: return R_PHB;
  case PS_LINK_NODE: return R_NODE;
  case PS_LINK_SYS: return R_SYS;
  default: return R_UNKNOWN;
  }
}

/* A GPU whose copy within itself failed cannot be trusted with anything. */
static bool gpu_healthy(const ps_gpu *gpu) {
  return gpu->local_verdict != PS_VERDICT_CORRUPT && gpu->local_verdict != PS_VERDICT_ERROR &&
         gpu->local_verdict != PS_VERDICT_HANG;
}

static void planner_free(planner *pl) {
  ps__free(pl->usable);
  ps__free(pl->thresh);
  ps__free(pl->rank);
  ps__free(pl->nvlinks);
  ps__free(pl->numa);
  ps__free(pl->name);
}

/* Equal values share an id; unknown values each get their own. */
static void assign_ids(const ps_report *report, ps__set *ids, bool numa) {
  int n = report->gpu_count;
  for (int a = 0; a < n; a++) {
    const ps_gpu *ga = &report->gpus[a];
    bool known = numa ? (ga->valid & PS_GPU_NUMA_NODE) && ga->numa_node >= 0
                      : (ga->valid & PS_GPU_NAME) && ga->name[0];
    int id = a;
    for (int b = 0; known && b < a && id == a; b++) {
      const ps_gpu *gb = &report->gpus[b];
      bool same = numa ? (gb->valid & PS_GPU_NUMA_NODE) && gb->numa_node == ga->numa_node
                       : (gb->valid & PS_GPU_NAME) && strcmp(gb->name, ga->name) == 0;
      if (same) id = b;
    }
    ps__set_add(&ids[a], id);
  }
}

static bool planner_init(planner *pl, const ps_report *report, const int *allowed,
                         int allowed_count) {
  memset(pl, 0, sizeof(*pl));
  int n = pl->n = report->gpu_count;
  pl->words = (n + 63) / 64;
  size_t nn = (size_t)n * (size_t)n;
  pl->usable = ps__calloc((size_t)n, sizeof(ps__set));
  pl->thresh = ps__calloc((size_t)n, sizeof(ps__set));
  pl->rank = ps__calloc(nn, 1);
  pl->nvlinks = ps__calloc(nn, sizeof(int));
  pl->numa = ps__calloc((size_t)n, sizeof(ps__set));
  pl->name = ps__calloc((size_t)n, sizeof(ps__set));
  if (!pl->usable || !pl->thresh || !pl->rank || !pl->nvlinks || !pl->numa || !pl->name)
    return false;

  if (allowed) {
    for (int i = 0; i < allowed_count; i++)
      if (allowed[i] >= 0 && allowed[i] < n) ps__set_add(&pl->eligible, allowed[i]);
  } else {
    for (int g = 0; g < n; g++)
      if (ps_gpu_allowed(report, g)) ps__set_add(&pl->eligible, g); /* CUDA_VISIBLE_DEVICES */
  }
  for (int g = 0; g < n; g++)
    if (!gpu_healthy(&report->gpus[g])) ps__set_del(&pl->eligible, g);

  for (int a = 0; a < n; a++) {
    for (int b = a + 1; b < n; b++) {
      const ps_pair *ab = ps_report_pair(report, a, b), *ba = ps_report_pair(report, b, a);
      if (!ab || !ba) continue;
      int ra = link_rank(ab), rb = link_rank(ba), r = ra > rb ? ra : rb;
      pl->rank[a * n + b] = pl->rank[b * n + a] = (uint8_t)r;
      if (r == R_NVLINK) {
        int ca = (ab->valid & PS_PAIR_NVLINK) && ab->nvlink_count > 0 ? ab->nvlink_count : 0;
        int cb = (ba->valid & PS_PAIR_NVLINK) && ba->nvlink_count > 0 ? ba->nvlink_count : 0;
        pl->nvlinks[a * n + b] = pl->nvlinks[b * n + a] = ca < cb ? ca : cb;
      }
      if (ps__set_has(&pl->eligible, a) && ps__set_has(&pl->eligible, b) &&
          ps_pair_usable(report, ab) && ps_pair_usable(report, ba)) {
        ps__set_add(&pl->usable[a], b);
        ps__set_add(&pl->usable[b], a);
      }
    }
  }
  assign_ids(report, pl->numa, true);
  assign_ids(report, pl->name, false);
  return true;
}

/* thresh = usable edges with rank <= max_rank and, for NVLink-only, >= min_nvlinks links. */
static void set_threshold(planner *pl, int max_rank, int min_nvlinks) {
  int n = pl->n;
  for (int a = 0; a < n; a++) {
    pl->thresh[a] = pl->usable[a];
    for (int b = 0; b < n; b++) {
      if (!ps__set_has(&pl->usable[a], b)) continue;
      int r = pl->rank[a * n + b];
      if (r > max_rank || (r == R_NVLINK && pl->nvlinks[a * n + b] < min_nvlinks))
        ps__set_del(&pl->thresh[a], b);
    }
  }
}

static int score_cmp(const score *a, const score *b) {
  if (a->numa != b->numa) return a->numa < b->numa ? -1 : 1;
  if (a->names != b->names) return a->names < b->names ? -1 : 1;
  return 0;
}

/* Drops from cand the GPUs whose id (NUMA node or name) is not in `have`. */
static void keep_known(ps__set *cand, const ps__set *ids, const ps__set *have, int words) {
  ps__set rest = *cand;
  for (int v; (v = ps__set_first(&rest, words)) >= 0;) {
    ps__set_del(&rest, v);
    ps__set common;
    ps__set_and(&common, &ids[v], have, words);
    if (ps__set_empty(&common, words)) ps__set_del(cand, v);
  }
}

static int cmp_desc(const void *a, const void *b);

/* At least how many ids (NUMA nodes or names) not in `have` a group must take on to grow by
 * m more GPUs of cand: the fewest of the most common new ids that make up the numbers. */
static int ids_needed(bnb *b, const ps__set *cand, const ps__set *ids, const ps__set *have, int m) {
  const planner *pl = b->pl;
  int words = pl->words, known = 0, distinct = 0;
  ps__set rest = *cand;
  for (int v; (v = ps__set_first(&rest, words)) >= 0;) {
    ps__set_del(&rest, v);
    int id = ps__set_first(&ids[v], words);
    if (ps__set_has(have, id))
      known++;
    else if (b->counts[id]++ == 0)
      b->sizes[distinct++] = id;
  }
  for (int i = 0; i < distinct; i++) { /* ids -> their counts, clearing the scratch */
    int id = b->sizes[i];
    b->sizes[i] = b->counts[id];
    b->counts[id] = 0;
  }
  if (known >= m) return 0;
  qsort(b->sizes, (size_t)distinct, sizeof(int), cmp_desc);
  int needed = 0;
  for (int left = m - known; left > 0 && needed < distinct;)
    left -= b->sizes[needed++];
  return needed;
}

/* Both counts only grow as a group grows, so a partial group that scores no better than the
 * best complete one cannot lead to a better one, and once a new NUMA node (or name) would
 * make it so, only GPUs on the nodes (with the names) it has can still help. */
static void bnb_expand(bnb *b, const ps__set *cand_in, int depth, score s, ps__set numas,
                       ps__set names) {
  const planner *pl = b->pl;
  int words = pl->words;
  ps__set cand = *cand_in;
  if (b->have_best) {
    const score *best = &b->best_score; /* s is better: s.numa <= best->numa */
    if (s.numa == best->numa || (s.numa + 1 == best->numa && s.names >= best->names))
      keep_known(&cand, pl->numa, &numas, words);
    if (s.numa == best->numa && s.names + 1 >= best->names)
      keep_known(&cand, pl->name, &names, words);
  }
  if (depth + ps__set_count(&cand, words) < b->k) return;
  if (depth + ps__set_colors(&b->g, &cand) < b->k) return;
  if (b->have_best) {
    int m = b->k - depth;
    score lower = {s.numa + ids_needed(b, &cand, pl->numa, &numas, m),
                   s.names + ids_needed(b, &cand, pl->name, &names, m)};
    if (score_cmp(&lower, &b->best_score) >= 0) return;
  }
  ps__set rest = cand;
  for (int v; (v = ps__set_first(&rest, words)) >= 0;) {
    ps__set_del(&rest, v);
    if (++b->nodes > PS_GROUP_NODE_BUDGET) return;
    ps__set tn = numas, tm = names;
    for (int i = 0; i < words; i++) {
      tn.w[i] |= pl->numa[v].w[i];
      tm.w[i] |= pl->name[v].w[i];
    }
    score t = {ps__set_count(&tn, words), ps__set_count(&tm, words)};
    if (b->have_best && score_cmp(&t, &b->best_score) >= 0) continue;
    b->cur[depth] = v;
    if (depth + 1 == b->k) {
      memcpy(b->best, b->cur, (size_t)b->k * sizeof(int));
      b->best_score = t;
      b->have_best = true;
      continue;
    }
    ps__set next;
    ps__set_and(&next, &rest, &pl->thresh[v], words);
    if (depth + 1 + ps__set_count(&next, words) < b->k) continue;
    bnb_expand(b, &next, depth + 1, t, tn, tm);
  }
}

static int cmp_desc(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x < y) - (x > y);
}

/* Among NVLink-only groups of k: leaves in thresh the widest edge width that still holds one
 * (the search at width 0 succeeded, so one does) and a group of it in out. */
static bool nvlink_threshold(planner *pl, int k, int *out, bool *oom) {
  ps__graph g = {pl->n, pl->words, pl->thresh};
  int n = pl->n, count = 0, found = 0;
  int *widths = ps__calloc((size_t)n * (size_t)n + 1, sizeof(int));
  if (!widths) {
    *oom = true;
    return false;
  }
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++)
      if (ps__set_has(&pl->usable[a], b) && pl->rank[a * n + b] == R_NVLINK)
        widths[count++] = pl->nvlinks[a * n + b];
  qsort(widths, (size_t)count, sizeof(int), cmp_desc);
  for (int i = 0; i < count && found == 0; i++) {
    if (i > 0 && widths[i] == widths[i - 1]) continue;
    set_threshold(pl, R_NVLINK, widths[i]);
    found = ps__clique_find(&g, &pl->eligible, k, out);
  }
  ps__free(widths);
  *oom = found < 0;
  return found > 0;
}

/* The best group of exactly k (>= 1) GPUs into out (room for k); false if none. */
static bool best_of_size(planner *pl, int k, int *out, bool *oom) {
  ps__graph g = {pl->n, pl->words, pl->thresh};
  int r = 0, found = 0;
  for (r = 0; r < R_COUNT; r++) {
    set_threshold(pl, r, 0);
    if ((found = ps__clique_find(&g, &pl->eligible, k, out)) != 0) break;
  }
  if (found <= 0) {
    *oom = found < 0;
    return false;
  }
  if (r == R_NVLINK && k > 1 && !nvlink_threshold(pl, k, out, oom)) return false;

  bnb b = {.pl = pl, .g = g, .k = k};
  b.cur = ps__calloc((size_t)k, sizeof(int));
  b.best = ps__calloc((size_t)k, sizeof(int));
  b.counts = ps__calloc((size_t)pl->n, sizeof(int));
  b.sizes = ps__calloc((size_t)pl->n, sizeof(int));
  if (b.cur && b.best && b.counts && b.sizes) {
    bnb_expand(&b, &pl->eligible, 0, (score){0, 0}, (ps__set){{0}}, (ps__set){{0}});
    /* Without a result (budget spent) the clique the threshold search found stands. */
    if (b.have_best) memcpy(out, b.best, (size_t)k * sizeof(int));
  } else {
    *oom = true;
  }
  ps__free(b.cur);
  ps__free(b.best);
  ps__free(b.counts);
  ps__free(b.sizes);
  return !*oom;
}

int ps_best_group(const ps_report *report, const int *allowed, int allowed_count, int size,
                  int *out, int cap) {
  planner pl;
  int result = 0;
  int *group = NULL;
  bool oom = false;
  if (!report || report->gpu_count <= 0 || report->gpu_count > PS_REPORT_MAX_GPUS || !report->gpus)
    return 0;
  if (!planner_init(&pl, report, allowed, allowed_count)) goto cleanup;
  int n = pl.n;
  if (!(group = ps__calloc((size_t)n, sizeof(int)))) goto cleanup;
  ps__graph g = {n, pl.words, pl.usable};
  int k = size > 0 ? size : ps__clique_max(&g, &pl.eligible, NULL);
  if (k <= 0 || k > ps__set_count(&pl.eligible, pl.words)) goto cleanup;
  if (!best_of_size(&pl, k, group, &oom)) goto cleanup;
  for (int i = 0; i < k && i < cap && out; i++)
    out[i] = group[i];
  result = k;
cleanup:
  ps__free(group);
  planner_free(&pl);
  return result;
}

int ps_recommend_tp(const ps_report *report, const int *allowed, int allowed_count) {
  planner pl;
  int tp = 0;
  if (!report || report->gpu_count <= 0 || report->gpu_count > PS_REPORT_MAX_GPUS || !report->gpus)
    return 0;
  if (planner_init(&pl, report, allowed, allowed_count)) {
    ps__graph g = {pl.n, pl.words, pl.usable};
    int largest = ps__clique_max(&g, &pl.eligible, NULL);
    /* Any clique holds cliques of every smaller size, so the largest power of two that fits
     * in the largest group is the answer. */
    for (tp = largest > 0 ? 1 : 0; tp > 0 && tp * 2 <= largest;)
      tp *= 2;
  }
  planner_free(&pl);
  return tp;
}
