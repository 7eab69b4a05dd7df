/* Checks shared by fetch.c and fetch_index.c. */
#ifndef PS_HUB_FETCH_INTERNAL_H
#define PS_HUB_FETCH_INTERNAL_H

#include "hub/hub_internal.h"

/* model.safetensors.index.json: JSON, a weight_map, a positive metadata.total_size within 8x
 * of the config's estimate (when known), and every shard of "-K-of-N" listed. */
ps_status ps__hub_check_index(ps_ctx *ctx, const char *name, const char *text, size_t len,
                              uint64_t estimate, ps__hub_total *total);

/* The 8 length bytes and the header of a single-file model; file_size (Content-Range's
 * total, 0 when unknown) must be header + tensor data. */
ps_status ps__hub_check_header(ps_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                               uint64_t file_size, ps__hub_total *total);

#endif
