/* Vertex sets as bit arrays and clique search (greedy-colouring bound, Tomita-style) over
 * graphs of up to PS_REPORT_MAX_GPUS vertices. Used by the group planner (groups.c). */
#ifndef PS_GROUPS_CLIQUE_H
#define PS_GROUPS_CLIQUE_H

#include <stdbool.h>
#include <stdint.h>

#include "report/report_internal.h"

#define PS_SET_WORDS ((PS_REPORT_MAX_GPUS + 63) / 64)

typedef struct ps__set {
  uint64_t w[PS_SET_WORDS];
} ps__set;

/* An undirected graph; only the first `words` words of each set are used. */
typedef struct ps__graph {
  int n;
  int words;    /* (n + 63) / 64 */
  ps__set *adj; /* n neighbour sets; no vertex is its own neighbour */
} ps__graph;

static inline void ps__set_add(ps__set *s, int v) { s->w[v >> 6] |= 1ull << (v & 63); }
static inline void ps__set_del(ps__set *s, int v) { s->w[v >> 6] &= ~(1ull << (v & 63)); }
static inline bool ps__set_has(const ps__set *s, int v) { return (s->w[v >> 6] >> (v & 63)) & 1; }

static inline int ps__set_count(const ps__set *s, int words) {
  int count = 0;
  for (int i = 0; i < words; i++)
    count += __builtin_popcountll(s->w[i]);
  return count;
}

static inline bool ps__set_empty(const ps__set *s, int words) {
  for (int i = 0; i < words; i++)
    if (s->w[i]) return false;
  return true;
}

/* Lowest member, or -1. */
static inline int ps__set_first(const ps__set *s, int words) {
  for (int i = 0; i < words; i++)
    if (s->w[i]) return i * 64 + __builtin_ctzll(s->w[i]);
  return -1;
}

/* out = a & b */
static inline void ps__set_and(ps__set *out, const ps__set *a, const ps__set *b, int words) {
  for (int i = 0; i < words; i++)
    out->w[i] = a->w[i] & b->w[i];
}

/* Members of s greater than v. */
static inline void ps__set_above(ps__set *s, int v, int words) {
  for (int i = 0; i < words; i++) {
    if (i < v >> 6)
      s->w[i] = 0;
    else if (i == v >> 6)
      s->w[i] &= (v & 63) == 63 ? 0 : ~0ull << ((v & 63) + 1);
  }
}

/* Colours a greedy sequential colouring of p needs: an upper bound on any clique in p. */
int ps__set_colors(const ps__graph *g, const ps__set *p);

/* The largest clique within `within`: its size (0 for an empty set), one such clique in
 * ascending order in witness (room for n) when witness is not NULL; -1 when out of memory. */
int ps__clique_max(const ps__graph *g, const ps__set *within, int *witness);

/* 1 if a clique of exactly k vertices exists within `within` (then one is in witness,
 * ascending, when witness is not NULL), 0 if not, -1 when out of memory. */
int ps__clique_find(const ps__graph *g, const ps__set *within, int k, int *witness);

#endif
