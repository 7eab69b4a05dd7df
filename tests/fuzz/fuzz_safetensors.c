/* libFuzzer target: the safetensors header parser reads the first bytes of files from the
 * network and from half-finished downloads. It must never crash, leak or read past the
 * buffer; every failure is one line naming the byte offset; what it accepts is consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps_ctx *ctx = ps_ctx_new();
  ps__st_sum sum;
  if (!ctx) return 0;
  ps_status st = ps__safetensors_parse_header(ctx, data, size, "fuzz.safetensors", &sum);
  if (st != PS_OK) {
    const char *err = ps_ctx_error(ctx);
    if (st == PS_ERR_BAD_INPUT &&
        (strncmp(err, "fuzz.safetensors: offset ", 25) != 0 || strchr(err, '\n')))
      abort();
    if (st != PS_ERR_BAD_INPUT && st != PS_ERR_NO_MEMORY) abort();
    if (sum.data_bytes || sum.params || sum.tensors) abort();
  } else {
    /* A header of N bytes cannot describe more tensors than it has room to name. */
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
      n = n << 8 | data[i];
    if (n > size - 8 || sum.tensors > n / 8) abort();
    if (sum.tensors == 0 && (sum.data_bytes || sum.params)) abort();
    if (sum.data_bytes > PS_MAX_WEIGHT_BYTES || sum.params > PS_MAX_PARAMS) abort();
  }
  ps_ctx_free(ctx);
  return 0;
}
