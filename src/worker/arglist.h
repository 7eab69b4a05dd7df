/* A comma-joined list for a worker's command line (--gpus, --jobs), grown item by item. */
#ifndef PS_WORKER_ARGLIST_H
#define PS_WORKER_ARGLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

typedef struct ps__arglist {
  char *text; /* owned until taken */
  size_t len, cap;
  bool failed; /* an allocation failed: take returns NULL */
} ps__arglist;

/* Appends item (with a comma before all but the first). */
void ps__arglist_add(ps__arglist *list, const char *item);
/* The joined text ("" when empty), owned by the caller; NULL when out of memory. */
char *ps__arglist_take(ps__arglist *list);

/* --gpus: the report's GPUs' PCI bus ids in NVML order ("none" where NVML could not read
 * one); NULL when out of memory. */
char *ps__arglist_gpus(const ps_report *report);

#endif
