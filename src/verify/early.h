/* A verification worker started ahead of ps_verify (ps_probe_for_verify): its CUDA start-up
 * overlaps the NVML probe; ps_verify hands it its GPU and job lists over stdin. */
#ifndef PS_VERIFY_EARLY_H
#define PS_VERIFY_EARLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"
#include "worker/watchdog.h"

typedef struct ps__early_worker {
  ps__watch watch; /* started, lists not sent */
  char worker[1024];
  char driver_dir[1024], fixture[1024]; /* as given ("" for NULL) */
  size_t bytes;
  uint64_t nonce;
} ps__early_worker;

/* The run's pattern seed: $PEERSCOPE_VERIFY_SEED (hex) when set, else fresh. */
uint64_t ps__verify_nonce(void);
/* The copy size of opts (its default when 0). */
size_t ps__verify_bytes(const ps_verify_opts *opts);

/* The modes a verification runs when its options name none (ps_verify_opts.modes 0): all of
 * them where the selection holds two GPUs or more; on one GPU ce and sm only, since no
 * tensor-parallel group there shares memory across processes, and the ipc mode's second
 * process would double the check's CUDA start-up (the driver serialises the two). */
unsigned ps__verify_default_modes(const ps_report *r, const ps_verify_opts *opts);

/* Takes ctx's early worker if it was started for this worker path, driver, fixture and copy
 * size (the caller owns it: ps__early_free); any other is killed. NULL when none. */
ps__early_worker *ps__early_take(ps_ctx *ctx, const char *worker, const ps_verify_opts *opts,
                                 size_t bytes);
/* Kills it if still running and frees it. */
void ps__early_free(void *early);

#endif
