/* The verification cache: verdicts keyed by the set of GPU UUIDs, the driver version, the
 * boot id (a reboot or BIOS change can change the answer) and the copy size; for fixture
 * runs also the fixture's content. One JSON file per key under the cache directory. */
#ifndef PS_VERIFY_CACHE_H
#define PS_VERIFY_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

typedef struct ps__cache {
  char path[1024]; /* "" when there is no usable cache directory */
  void *doc;       /* json_t * of the loaded file, or NULL */
} ps__cache;

void ps__cache_open(ps__cache *cache, const ps_report *report, const ps_verify_opts *opts,
                    size_t bytes);
/* Copies a cached verdict of one mode into the report (marking it from_cache); false if
 * none. */
bool ps__cache_lookup(ps__cache *cache, ps_report *report, ps_verify_mode mode, bool local, int a,
                      int b);
/* Writes every verdict of the report (atomically: temp file and rename). Best effort. */
void ps__cache_store(ps__cache *cache, const ps_report *report);
void ps__cache_close(ps__cache *cache);

#endif
