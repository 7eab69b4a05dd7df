/* Embeds the fatbins nvcc built (src/CMakeLists.txt) with the assembler's .incbin: no
 * generated C arrays, no extra tool. */
#include "worker/kernels.h"

#if PS_HAVE_KERNELS

#define PS_EMBED(sym, file)                                                                        \
  __asm__(".pushsection .rodata\n.balign 64\n.hidden " #sym "\n.globl " #sym "\n" #sym             \
          ":\n.incbin \"" file "\"\n.hidden " #sym "_end\n.globl " #sym "_end\n" #sym              \
          "_end:\n.popsection\n");                                                                 \
  extern const unsigned char sym[], sym##_end[]

PS_EMBED(ps__fatbin_copy, PS_FATBIN_COPY);
PS_EMBED(ps__fatbin_oneshot, PS_FATBIN_ONESHOT);

const ps__kernel_image *ps__kernel_images(size_t *count) {
  static ps__kernel_image images[2];
  images[0] =
      (ps__kernel_image){"copy", ps__fatbin_copy, (size_t)(ps__fatbin_copy_end - ps__fatbin_copy)};
  images[1] = (ps__kernel_image){"oneshot", ps__fatbin_oneshot,
                                 (size_t)(ps__fatbin_oneshot_end - ps__fatbin_oneshot)};
  *count = 2;
  return images;
}

#else

const ps__kernel_image *ps__kernel_images(size_t *count) {
  *count = 0;
  return NULL;
}

#endif
