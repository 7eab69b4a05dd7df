/* What the model module offers the modules above it (hub): the parsers of config.json, of a
 * safetensors header and of a directory's listing, run on text that came from elsewhere (the
 * Hub, the catalog). The estimates' internals stay in model_internal.h. */
#ifndef PS_MODEL_H
#define PS_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

/* load.c, synthetic.c: ps_model_load and ps_model_synthetic into a struct of the caller's (the
 * hub fills one; the public functions allocate it). */
ps_status ps__model_load(ps_ctx *ctx, const char *dir, ps_model *out);
ps_status ps__model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                              ps_model *out);

/* config.c: config.json text -> *out (weights estimated from the config, EXACT clear).
 * Errors: "name:LINE:COL: jansson text" or "name: path: message", PS_ERR_BAD_INPUT. */
ps_status ps__model_parse_config(ps_ctx *ctx, const char *text, size_t len, const char *name,
                                 ps_model *out);

typedef struct ps__st_sum {
  uint64_t data_bytes; /* bytes of tensor data the header describes */
  uint64_t params;     /* elements, summed over tensors */
  uint64_t tensors;
} ps__st_sum;

/* Parses the start of a safetensors file: `buf` holds the 8-byte little-endian header length
 * N and then (up to `len` bytes in all) the N-byte JSON header; tensor data after it is never
 * looked at. Errors: "name: offset N: message", PS_ERR_BAD_INPUT. */
ps_status ps__safetensors_parse_header(ps_ctx *ctx, const uint8_t *buf, size_t len,
                                       const char *name, ps__st_sum *out);

typedef struct ps__model_dir {
  char **safetensors; /* file names, sorted */
  size_t safetensors_count;
  bool has_index; /* model.safetensors.index.json */
  bool has_gguf;  /* *.gguf */
  bool has_bin;   /* pytorch_model*.bin */
  bool has_config;
} ps__model_dir;

/* Lists `dir`. PS_ERR_NOT_FOUND when it does not exist, PS_ERR_BAD_INPUT when not a
 * directory (a .gguf file gets the GGUF message), PS_ERR_IO otherwise. */
ps_status ps__model_dir_scan(ps_ctx *ctx, const char *dir, ps__model_dir *out);
void ps__model_dir_free(ps__model_dir *d);

/* Reads a whole small file (JSON) into a NUL-terminated buffer. */
ps_status ps__model_read_text(ps_ctx *ctx, const char *path, char **text, size_t *len);

/* Parses JSON text, recording "name:LINE:COL: message" on failure. */
ps_status ps__model_json_load(ps_ctx *ctx, const char *text, size_t len, const char *name,
                              json_t **out);

#endif
