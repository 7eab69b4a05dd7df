/* PCI bus ids in one canonical form, so NVML's "00000000:18:00.0", CUDA's "0000:18:00.0"
 * and sysfs's "0000:18:00.0" compare equal. */
#ifndef PS_CORE_BUSID_H
#define PS_CORE_BUSID_H

#include <stdbool.h>
#include <stddef.h>

/* Writes "%08X:%02X:%02X.%X" (upper-case hex, as nvidia-smi prints it) to out; false if
 * `id` is not a bus id. */
bool ps__busid_canonical(const char *id, char *out, size_t out_len);
bool ps__busid_equal(const char *a, const char *b);

#endif
