/* The string set of strset.h. */
#include "core/strset.h"

#include <stdint.h>
#include <string.h>

#include "core/internal.h"

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t slot_of(const char **slots, size_t cap, const char *s) {
  size_t i = (size_t)fnv1a(s) & (cap - 1);
  while (slots[i] && strcmp(slots[i], s) != 0)
    i = (i + 1) & (cap - 1);
  return i;
}

static bool grow(ps__strset *set) {
  size_t cap = set->cap ? set->cap * 2 : 64;
  if (cap < set->cap || cap > SIZE_MAX / sizeof(char *)) return false;
  const char **slots = ps__calloc(cap, sizeof(*slots));
  if (!slots) return false;
  for (size_t i = 0; i < set->cap; i++)
    if (set->slots[i]) slots[slot_of(slots, cap, set->slots[i])] = set->slots[i];
  ps__free(set->slots);
  set->slots = slots;
  set->cap = cap;
  return true;
}

bool ps__strset_add(ps__strset *set, const char *s, bool *added) {
  *added = false;
  /* at most half full, so probes stay short */
  if ((set->count + 1) * 2 > set->cap && !grow(set)) return false;
  size_t i = slot_of(set->slots, set->cap, s);
  if (set->slots[i]) return true;
  set->slots[i] = s;
  set->count++;
  *added = true;
  return true;
}

bool ps__strset_has(const ps__strset *set, const char *s) {
  return set->cap && set->slots[slot_of(set->slots, set->cap, s)] != NULL;
}

void ps__strset_free(ps__strset *set) {
  ps__free(set->slots);
  memset(set, 0, sizeof(*set));
}
