/* The machine key: what a cached answer for this machine is valid for (the GPUs' UUIDs in
 * NVML's order, the driver version, the boot id; for a fixture, its path and content). Read
 * cheaply from NVML (init, count, UUIDs, driver version: no per-GPU or per-pair probe), or
 * taken from a full probe's report; both give the same key for the same machine. */
#ifndef PS_PROBE_KEY_H
#define PS_PROBE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

/* FNV-1a over len bytes, a string with its terminator, a file's content (its path when it
 * cannot be read). */
uint64_t ps__hash_bytes(uint64_t h, const void *data, size_t len);
uint64_t ps__hash_str(uint64_t h, const char *s);
uint64_t ps__hash_file(uint64_t h, const char *path);
#define PS_HASH_SEED 0xcbf29ce484222325ull

/* The key from the driver: *usable false (PS_OK) when a GPU has no UUID. Fails as ps_probe's
 * driver loading does. *init_ms: loading and starting NVML; *read_ms: the reads. */
ps_status ps__probe_key_read(ps_ctx *ctx, const ps_probe_opts *opts, uint64_t *key, bool *usable,
                             double *init_ms, double *read_ms);
/* The key of a full probe's report; false when a GPU has no UUID. */
bool ps__probe_key_of(const ps_report *report, uint64_t *key);

#endif
