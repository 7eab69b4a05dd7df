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

/* The key of this machine: for the system's driver, from the kernel module's files (root:
 * "/proc/driver/nvidia"'s parent, "" for /proc; no NVML at all: nvmlInit costs tens of ms);
 * else, or when those cannot be read, from NVML (init, driver version, count, UUIDs).
 * *usable false (PS_OK) when there is no key (a GPU without UUID). Fails as ps_probe's
 * driver loading does. *init_ms: starting NVML (0 without); *read_ms: the reads. */
ps_status ps__probe_key_read(ps_ctx *ctx, const ps_probe_opts *opts, uint64_t *key, bool *usable,
                             double *init_ms, double *read_ms);
/* The key from the kernel module's files under root (procfs: version, gpus/<bus>/information
 * "GPU UUID:"), with the boot id, the host name and the /dev/nvidia<N> nodes (a container that
 * sees fewer GPUs has fewer); false when they cannot be read. */
bool ps__probe_key_procfs(const char *root, uint64_t *key);
/* How many GPU device nodes (/dev/nvidia<N>) this process sees under root ("" for /): what a
 * container was given, without NVML; -1 when /dev cannot be read. */
int ps__probe_gpu_nodes(const char *root);

#endif
