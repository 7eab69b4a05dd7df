/* Clique search with a greedy-colouring bound (Tomita & Seki's MCQ): vertices are coloured
 * so that no two neighbours share a colour, and a branch whose colours cannot reach the
 * target size is cut. Exact, and fast on the graphs GPU topologies make (n <= a few dozen,
 * a few islands); exponential only on adversarial dense random graphs. */
#include "groups/clique.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct finder {
  const ps__graph *g;
  int k;         /* looking for a clique of this size */
  bool maximize; /* after a find, raise k and go on */
  int found;     /* size of the clique in witness, 0 if none */
  int *order;    /* per depth: n vertices in colour order */
  int *color;    /* per depth: their colours, non-decreasing */
  int *cur;      /* the clique being grown */
  int *witness;
} finder;

/* Greedy sequential colouring of p; the number of colours. With order, vertices land in
 * order[] by colour, their colours in color[] (non-decreasing), and *size = |p|. */
static int greedy_colors(const ps__graph *g, const ps__set *p, int *order, int *color, int *size) {
  ps__set left = *p;
  int m = 0, c = 0;
  while (!ps__set_empty(&left, g->words)) {
    c++;
    ps__set can = left; /* vertices that may still take this colour */
    for (int v; (v = ps__set_first(&can, g->words)) >= 0;) {
      ps__set_del(&can, v);
      ps__set_del(&left, v);
      for (int i = 0; i < g->words; i++)
        can.w[i] &= ~g->adj[v].w[i];
      if (order) {
        order[m] = v;
        color[m++] = c;
      }
    }
  }
  if (order) *size = m;
  return c;
}

int ps__set_colors(const ps__graph *g, const ps__set *p) {
  return greedy_colors(g, p, NULL, NULL, NULL);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* True when the search is over (a clique of size k found and not maximizing). */
static bool expand(finder *f, ps__set p, int depth) {
  if (depth >= f->k) {
    f->found = depth;
    if (f->witness) {
      memcpy(f->witness, f->cur, (size_t)depth * sizeof(int));
      qsort(f->witness, (size_t)depth, sizeof(int), cmp_int);
    }
    if (!f->maximize) return true;
    f->k = depth + 1;
  }
  int n = f->g->n;
  int *order = f->order + (size_t)depth * n, *color = f->color + (size_t)depth * n;
  int m = 0;
  greedy_colors(f->g, &p, order, color, &m);
  /* Highest colours first: they are the most likely to lead to large cliques. */
  for (int i = m - 1; i >= 0; i--) {
    if (depth + color[i] < f->k) return false;
    int v = order[i];
    ps__set next = {{0}}; /* only `words` words are set; GCC -O3 cannot see that */
    ps__set_and(&next, &p, &f->g->adj[v], f->g->words);
    f->cur[depth] = v;
    if (expand(f, next, depth + 1)) return true;
    ps__set_del(&p, v);
  }
  return false;
}

static int run(const ps__graph *g, const ps__set *within, int k, bool maximize, int *witness) {
  finder f = {.g = g, .k = k, .maximize = maximize, .witness = witness};
  size_t cells = (size_t)(g->n + 1) * (size_t)(g->n > 0 ? g->n : 1);
  f.order = ps__calloc(cells, sizeof(int));
  f.color = ps__calloc(cells, sizeof(int));
  f.cur = ps__calloc((size_t)g->n + 1, sizeof(int));
  int result = -1;
  if (!f.order || !f.color || !f.cur) goto cleanup;
  ps__set p = *within;
  for (int i = g->words; i < PS_SET_WORDS; i++)
    p.w[i] = 0;
  expand(&f, p, 0);
  result = f.found;
cleanup:
  ps__free(f.order);
  ps__free(f.color);
  ps__free(f.cur);
  return result;
}

int ps__clique_max(const ps__graph *g, const ps__set *within, int *witness) {
  return run(g, within, 1, true, witness);
}

int ps__clique_find(const ps__graph *g, const ps__set *within, int k, int *witness) {
  if (k <= 0) return 1;
  int found = run(g, within, k, false, witness);
  return found < 0 ? -1 : found >= k;
}
