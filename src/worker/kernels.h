/* The CUDA kernels compiled by nvcc at build time and embedded in peerscope-worker as fatbins
 * (machine code for the GPU generations in PS_CUDA_ARCHS, PTX for newer ones), loaded with
 * cuModuleLoadData by the bench worker and by the verification's `sm` mode. */
#ifndef PS_WORKER_KERNELS_H
#define PS_WORKER_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ps__kernel_image {
  const char *name; /* "copy", "oneshot" */
  const void *data;
  size_t size;
} ps__kernel_image;

/* The embedded images; count 0 when built without nvcc ("built without CUDA kernels"). */
const ps__kernel_image *ps__kernel_images(size_t *count);

#endif
