/* A set of strings (open addressing, FNV-1a, grown by doubling): "seen this name before?" in
 * constant time, so parsers stay linear in their input however many names it holds. The set
 * borrows the strings; they must outlive it. */
#ifndef PS_CORE_STRSET_H
#define PS_CORE_STRSET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ps__strset {
  const char **slots; /* NULL = empty */
  size_t cap;         /* a power of two, or 0 */
  size_t count;
} ps__strset;

/* Adds s; *added tells whether it was new. False only when out of memory. */
bool ps__strset_add(ps__strset *set, const char *s, bool *added);
bool ps__strset_has(const ps__strset *set, const char *s);
void ps__strset_free(ps__strset *set);

#endif
