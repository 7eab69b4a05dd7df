/* Check 6: mixed GPU models or memory sizes, CUDA_DEVICE_ORDER when they differ, and
 * CUDA_VISIBLE_DEVICES entries that name GPUs this machine does not have. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doctor/doctor_internal.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define CUDA_ENV_DOC                                                                               \
  "https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#cuda-environment-variables"
#define MIXED_ISSUE "https://github.com/vllm-project/vllm/issues/2317"

static bool same_kind(const ps_gpu *a, const ps_gpu *b) {
  bool names =
      !(a->valid & PS_GPU_NAME) || !(b->valid & PS_GPU_NAME) || strcmp(a->name, b->name) == 0;
  /* Within 2%: the same card with ECC on and off reports slightly different totals. */
  uint64_t hi =
      a->memory_total_bytes > b->memory_total_bytes ? a->memory_total_bytes : b->memory_total_bytes;
  uint64_t lo = a->memory_total_bytes + b->memory_total_bytes - hi;
  bool mem =
      !(a->valid & PS_GPU_MEMORY_TOTAL) || !(b->valid & PS_GPU_MEMORY_TOTAL) || hi - lo <= hi / 50;
  return names && mem;
}

/* "GPU 0-1: NVIDIA RTX A6000 48.0 GiB; GPU 2: ..." grouping equal GPUs. */
static int describe_kinds(const ps_report *r, char *out, size_t len) {
  int kinds = 0;
  bool *seen = ps__calloc((size_t)r->gpu_count, sizeof(*seen));
  if (!seen) return 0;
  for (int g = 0; g < r->gpu_count; g++) {
    if (seen[g]) continue;
    kinds++;
    char ids[128] = "";
    for (int h = g; h < r->gpu_count; h++)
      if (!seen[h] && same_kind(&r->gpus[g], &r->gpus[h])) {
        seen[h] = true;
        PS_DCAT(ids, "%s%d", ids[0] ? "," : "", h);
      }
    const ps_gpu *gpu = &r->gpus[g];
    ps__dcat(out, len, "%sGPU %s: %s, %.1f GiB", out[0] ? "; " : "", ids,
             (gpu->valid & PS_GPU_NAME) ? gpu->name : "n/a",
             (gpu->valid & PS_GPU_MEMORY_TOTAL) ? (double)gpu->memory_total_bytes / GIB : 0.0);
  }
  ps__free(seen);
  return kinds;
}

/* One CUDA_VISIBLE_DEVICES entry: an index or a (prefix of a) GPU UUID. */
static bool entry_exists(const ps_report *r, const char *e) {
  if (isdigit((unsigned char)e[0])) {
    char *end;
    long v = strtol(e, &end, 10);
    return *end == '\0' && v >= 0 && v < r->gpu_count;
  }
  if (strncmp(e, "MIG-", 4) == 0) return true; /* MIG instances: not in the report */
  size_t n = strlen(e);
  for (int g = 0; g < r->gpu_count; g++)
    if ((r->gpus[g].valid & PS_GPU_UUID) && n >= 5 && strncasecmp(r->gpus[g].uuid, e, n) == 0)
      return true;
  return false;
}

static void visible_devices(ps__doctor *d, int *found) {
  const ps_report *r = d->report;
  const char *cvd = ps__doctor_env(d, "CUDA_VISIBLE_DEVICES");
  if (!cvd) return;
  char bad[256] = "", copy[512];
  int bad_count = 0, total = 0;
  ps__strlcpy(copy, cvd, sizeof(copy));
  char *save = NULL;
  for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
    while (*e == ' ')
      e++;
    total++;
    if (!entry_exists(r, e)) {
      bad_count++;
      PS_DCAT(bad, "%s'%.40s'", bad[0] ? ", " : "", e);
    }
  }
  if (!bad_count && total) return;
  (*found)++;
  ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "cuda-visible-devices");
  if (!f) return;
  if (total == 0)
    PS_DSET(f->title, "CUDA_VISIBLE_DEVICES is set but empty: CUDA sees no GPU");
  else
    PS_DSET(f->title, "CUDA_VISIBLE_DEVICES names %d GPU%s that do%s not exist", bad_count,
            bad_count == 1 ? "" : "s", bad_count == 1 ? "es" : "");
  PS_DSET(f->evidence,
          "environment CUDA_VISIBLE_DEVICES=\"%.200s\"%s%s; this machine has %d GPU%s "
          "(0-%d)",
          cvd, bad_count ? ": no GPU " : "", bad, r->gpu_count, r->gpu_count == 1 ? "" : "s",
          r->gpu_count - 1);
  PS_DSET(f->breaks, "CUDA stops reading the list at the first bad entry: the process sees fewer "
                     "GPUs than meant, and vLLM fails (tensor-parallel size larger than the "
                     "GPUs it sees) or runs on other GPUs");
  PS_DSET(f->fix,
          "export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=<indexes from "
          "nvidia-smi, 0-%d> (peerscope plan prints the line), or unset "
          "CUDA_VISIBLE_DEVICES",
          r->gpu_count - 1);
  PS_DSET(f->link, "%s", CUDA_ENV_DOC);
}

void ps__check_gpus(ps__doctor *d) {
  const ps_report *r = d->report;
  int found = 0;
  char kinds_text[768] = "";
  int kinds = r->gpu_count ? describe_kinds(r, kinds_text, sizeof(kinds_text)) : 0;
  if (kinds > 1) {
    found++;
    ps_finding *f = ps__doctor_add(d, PS_SEVERITY_WARNING, "mixed-gpus");
    if (f) {
      PS_DSET(f->title, "%d different GPU models or memory sizes", kinds);
      PS_DSET(f->evidence, "NVML: %s", kinds_text);
      PS_DSET(f->breaks, "vLLM splits a tensor-parallel group evenly, so its smallest GPU "
                         "limits it (the larger ones waste memory, or the small one runs out)");
      PS_DSET(f->fix, "tensor-parallel groups of one kind (peerscope plan --gpus, or "
                      "CUDA_VISIBLE_DEVICES); for different memory sizes, pipeline parallel "
                      "with VLLM_PP_LAYER_PARTITION (peerscope plan works it out)");
      PS_DSET(f->link, "%s", MIXED_ISSUE);
    }
    const char *order = ps__doctor_env(d, "CUDA_DEVICE_ORDER");
    if (!order || strcmp(order, "PCI_BUS_ID") != 0) {
      found++;
      f = ps__doctor_add(d, PS_SEVERITY_WARNING, "cuda-device-order");
      if (f) {
        PS_DSET(f->title, "CUDA_DEVICE_ORDER is not PCI_BUS_ID while the GPUs differ");
        PS_DSET(f->evidence, "environment CUDA_DEVICE_ORDER=%s%s%s; %d GPU kinds",
                order ? "\"" : "", order ? order : "(unset, CUDA's default FASTEST_FIRST)",
                order ? "\"" : "", kinds);
        PS_DSET(f->breaks, "CUDA numbers the fastest GPU 0 while nvidia-smi, NVML and peerscope "
                           "number by PCI bus: CUDA_VISIBLE_DEVICES and --gpus pick other "
                           "GPUs than meant (vllm#7472)");
        PS_DSET(f->fix, "export CUDA_DEVICE_ORDER=PCI_BUS_ID (in the shell, service unit or "
                        "container that starts vLLM)");
        PS_DSET(f->link, "%s", CUDA_ENV_DOC);
      }
    }
  }
  visible_devices(d, &found);
  if (found)
    ps__doctor_check(d, "gpus", PS_CHECK_FINDING, "%d GPU kind%s, %d finding%s", kinds,
                     kinds == 1 ? "" : "s", found, found == 1 ? "" : "s");
  else
    ps__doctor_check(d, "gpus", PS_CHECK_OK, "%d GPU%s of %d kind%s%s", r->gpu_count,
                     r->gpu_count == 1 ? "" : "s", kinds, kinds == 1 ? "" : "s",
                     ps__doctor_env(d, "CUDA_VISIBLE_DEVICES") ? ", CUDA_VISIBLE_DEVICES valid"
                                                               : "");
}
