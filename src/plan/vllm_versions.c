/* vLLM versions whose memory accounting the planner models (docs/vllm-memory.md): one row
 * where a rule changes, the release the rule was read from, and the CUDA-visible total. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/calibration.h"
#include "plan/vllm.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define V(a, b, c) ((a)*10000 + (b)*100 + (c))

/* modelled, from, engine, graphs_first, a100_small, kv_groups, util, print, non_torch_all,
 * sampler, flashinfer_optional. The sampler path per version (topk_topp_sampler.py,
 * TopKTopPSampler.__init__): 0.9-0.11 use FlashInfer whenever it imports
 * (VLLM_USE_FLASHINFER_SAMPLER unset counts as on,
 * @0.10.1.1:36-53); the wheel lists it only as an extra (METADATA: `flashinfer-python==0.2.11;
 * extra == "flashinfer"`), the Docker image ships it: the Docker image is assumed (the held-out
 * A100 0.10.1.1 pods fit it, a pip install without FlashInfer takes the sort path). 0.12-0.19
 * require flashinfer but leave the sampler off by default (`if envs.VLLM_USE_FLASHINFER_SAMPLER:`,
 * @0.12.0:98): PyTorch sort, and from 0.17 (@0.17.1:251; 0.16 not read) the in-place Triton
 * kernel for >= 8 rows. 0.22 defaults the variable to True (envs.py@0.22.1:818-822). */
static const ps__vllm_rules rules[] = {
    {"0.6.4", V(0, 6, 0), PS__ENGINE_V0, false, false, false, 0.90, PS__PRINT_BLOCKS, true,
     PS__SAMPLER_V0_FITTED, false},
    {"0.6.6.post1", V(0, 6, 6), PS__ENGINE_V0, false, false, false, 0.90, PS__PRINT_BLOCKS, false,
     PS__SAMPLER_V0_FITTED, false},
    {"0.8.5.post1", V(0, 8, 0), PS__ENGINE_V1_08, false, false, false, 0.90, PS__PRINT_BLOCKS, true,
     PS__SAMPLER_V0_FITTED, false},
    {"0.10.2", V(0, 9, 0), PS__ENGINE_V1, false, true, true, 0.90, PS__PRINT_PER_GROUP, false,
     PS__SAMPLER_FLASHINFER, true},
    {"0.15.1", V(0, 12, 0), PS__ENGINE_V1, false, true, true, 0.90, PS__PRINT_PER_GROUP, false,
     PS__SAMPLER_SORT, false},
    {"0.19.1", V(0, 17, 0), PS__ENGINE_V1, false, true, true, 0.90, PS__PRINT_PER_GROUP, false,
     PS__SAMPLER_TRITON, false},
    /* the printed count and the graph estimate changed between 0.19.1 and 0.22.1; the
     * corpus' 0.21.0 logs print int(concurrency x len) and the graph line names 0.21.0.
     * 0.20-0.21 were not read: 0.19.1's sampler assumed */
    {"0.21.0", V(0, 21, 0), PS__ENGINE_V1, true, true, true, 0.90, PS__PRINT_CONCURRENCY, false,
     PS__SAMPLER_TRITON, false},
    {"0.25.1", V(0, 22, 0), PS__ENGINE_V1, true, true, true, 0.92, PS__PRINT_CONCURRENCY, false,
     PS__SAMPLER_FLASHINFER, false},
};
#define NEWEST                                                                                     \
  V(0, 25, 99) /* 0.34 sizes an "extensible" cache after graph capture: not modelled               \
                */

static bool parse(const char *s, int *out) {
  if (*s == 'v' || *s == 'V') s++;
  int part[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (!isdigit((unsigned char)*s)) {
      if (i < 2) return false; /* at least major.minor */
      break;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (v > 99) return false;
    part[i] = (int)v;
    s = end;
    if (*s != '.') break;
    s++;
  }
  *out = V(part[0], part[1], part[2]);
  return true;
}

ps_status ps__vllm_resolve(ps_ctx *ctx, const char *given, ps__vllm *out) {
  memset(out, 0, sizeof(*out));
  int n = (int)PS_ARRAY_LEN(rules);
  if (!given || !*given) {
    out->rules = &rules[n - 1];
    ps__strlcpy(out->version, out->rules->modelled, sizeof(out->version));
    snprintf(out->note, sizeof(out->note), "vLLM %s assumed (the newest modelled)", out->version);
    return PS_OK;
  }
  int v;
  if (!parse(given, &v) || strlen(given) >= sizeof(out->version))
    return ps__fail(ctx, PS_ERR_INVALID_ARG,
                    "vllm-version '%.64s' is not a version as vLLM prints it (e.g. 0.10.1.1)",
                    given);
  ps__strlcpy(out->version, given, sizeof(out->version));
  out->rules = &rules[0];
  for (int i = 0; i < n; i++)
    if (v >= rules[i].from) out->rules = &rules[i];
  if (v < rules[0].from || v > NEWEST)
    snprintf(out->note, sizeof(out->note),
             "vLLM %.31s is not modelled: the rules of the nearest modelled version, %s, used",
             given, out->rules->modelled);
  else
    snprintf(out->note, sizeof(out->note), "vLLM %.31s (rules read from %s)", given,
             out->rules->modelled);
  return PS_OK;
}

bool ps__vllm_modelled(const char *version) {
  int v;
  return version && parse(version, &v) && v >= rules[0].from && v <= NEWEST;
}

/* cudaMemGetInfo's total is NVML's memory.total less what the driver keeps; the gap per GPU
 * class is the corpus' logged total_gpu_memory against the card's NVML total (MiB as
 * nvidia-smi prints it): H100 80GB 81559 MiB -> 79.22 GiB; A100 40GB 40960 -> 39.38; L40S
 * 46068 -> 44.42; RTX 3090 24576 -> 23.58; RTX 4090 24564 -> 23.55-23.57. */
static const struct {
  const char *name;
  double gap_gib;
} gaps[] = {{"H100", 0.43}, {"H200", 0.43}, {"H800", 0.43}, {"H20", 0.43}, {"A100", 0.62},
            {"A800", 0.62}, {"L40", 0.57},  {"L4", 0.57},   {"RTX", 0.42}, {"GeForce", 0.42}};
#define DEFAULT_GAP_GIB 0.5 /* GPU unnamed (--gpu-mem): the middle of the 0.42-0.62 seen */

uint64_t ps__visible_total(const ps_gpu *g) {
  double gap = DEFAULT_GAP_GIB;
  for (size_t i = 0; i < PS_ARRAY_LEN(gaps); i++)
    if (strstr(g->name, gaps[i].name)) {
      gap = gaps[i].gap_gib;
      break;
    }
  uint64_t cut = (uint64_t)(gap * GIB);
  return g->memory_total_bytes > 2 * cut ? g->memory_total_bytes - cut : g->memory_total_bytes;
}

/* Measured by tests/cli/test_vllm_corpus.py on the corpus cases it plans (see
 * tests/fixtures/vllm-logs/regression.json, which names the cases each constant was fitted on);
 * update both together. */
void ps__vllm_error_band(const ps__vllm *v, char *out, size_t len) {
  snprintf(out, len,
           "KV tokens vs vLLM's logs: median 0.5%%, worst 7.4%% on 6 (4 fitted); 0.4%%/13%% on 8 "
           "read while deriving; 11%%/146%% on 5 blind (3 multimodal)%s",
           v->rules->graphs_first ? "; graphs unchecked" : "");
}
