/* Check 7: NCCL and vLLM variables already set that contradict what the fabric did under
 * test. Each finding says what the variable does. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doctor/doctor_internal.h"

#define VLLM_ENV_DOC "https://docs.vllm.ai/en/latest/configuration/env_vars.html"

static bool truthy(const char *v) {
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

/* NCCL's path ranks: LOC 0, NVL 1, PIX 2, PXB 3, PHB 4, SYS 5 (names or numbers). */
static int level_rank(const char *v) {
  static const char *const names[] = {"LOC", "NVL", "PIX", "PXB", "PHB", "SYS"};
  for (int i = 0; i < 6; i++)
    if (strcasecmp(v, names[i]) == 0) return i;
  if (isdigit((unsigned char)v[0]) && !v[1]) return v[0] - '0' > 5 ? 5 : v[0] - '0';
  return -1;
}

static int link_rank(ps_link_class c) {
  switch (c) {
  case PS_LINK_NVLINK: return 1;
  case PS_LINK_PIX: return 2;
  case PS_LINK_PXB: return 3;
  case PS_LINK_PHB:
  case PS_LINK_NODE: return 4; /* NCCL counts a path within one CPU as PHB */
  case PS_LINK_SYS: return 5;
  default: return -1;
  }
}

static const char *rank_name(int rank) {
  static const char *const names[] = {"LOC", "NVL", "PIX", "PXB", "PHB", "SYS"};
  return rank >= 0 && rank < 6 ? names[rank] : "?";
}

typedef struct fabric {
  int ok_pairs, failed_pairs, refused_pairs; /* unordered pairs */
  int worst_ok_rank;                         /* highest link rank among verified pairs */
  int fa, fb;                                /* a verified pair */
} fabric;

static void survey(const ps_report *r, fabric *fb) {
  memset(fb, 0, sizeof(*fb));
  fb->worst_ok_rank = -1;
  fb->fa = fb->fb = -1;
  for (int a = 0; a < r->gpu_count; a++)
    for (int b = a + 1; b < r->gpu_count; b++) {
      const ps_pair *ab = ps_report_pair(r, a, b), *ba = ps_report_pair(r, b, a);
      if (!ab || !ba) continue;
      if (ps__doctor_pair_failed(ab) || ps__doctor_pair_failed(ba)) {
        fb->failed_pairs++;
      } else if (r->verified && ab->verdict == PS_VERDICT_OK && ba->verdict == PS_VERDICT_OK) {
        fb->ok_pairs++;
        if (fb->fa < 0) fb->fa = a, fb->fb = b;
        if (link_rank(ab->link) > fb->worst_ok_rank) fb->worst_ok_rank = link_rank(ab->link);
      } else {
        fb->refused_pairs++;
      }
    }
}

/* What the variable checks share: the fabric, and the names and count of what was found. */
typedef struct env_scan {
  ps__doctor *d;
  fabric fb;
  int found;
  char seen[256];
} env_scan;

/* The variable's value, or NULL; a set variable is listed in the check's note. */
static const char *env_get(env_scan *e, const char *name) {
  const char *v = ps__doctor_env(e->d, name);
  if (v) PS_DCAT(e->seen, "%s%s", e->seen[0] ? ", " : "", name);
  return v;
}

static ps_finding *add(env_scan *e, ps_severity sev, const char *code) {
  e->found++;
  return ps__doctor_add(e->d, sev, code);
}

static void check_p2p_disable(env_scan *e, const char *p2p_disable) {
  ps_finding *f;
  if (!truthy(p2p_disable) || !e->fb.ok_pairs || e->fb.failed_pairs ||
      !(f = add(e, PS_SEVERITY_WARNING, "nccl-p2p-disabled")))
    return;
  f->gpu_a = e->fb.fa, f->gpu_b = e->fb.fb;
  PS_DSET(f->title, "NCCL_P2P_DISABLE=%s turns off P2P that verified fine", p2p_disable);
  PS_DSET(f->evidence,
          "environment NCCL_P2P_DISABLE=%s; %d GPU pair%s passed a real transfer "
          "and none failed",
          p2p_disable, e->fb.ok_pairs, e->fb.ok_pairs == 1 ? "" : "s");
  PS_DSET(f->breaks, "slow all-reduce: NCCL copies through host shared memory instead of P2P "
                     "(vLLM's custom all-reduce does not read it and still uses P2P)");
  PS_DSET(f->fix, "unset NCCL_P2P_DISABLE (left over from debugging a hang, or set by a "
                  "launcher); keep it only for GPUs that fail peerscope check");
  PS_DSET(f->link, PS_DOC_NCCL_ENV "#nccl-p2p-disable");
}

static void check_p2p_level(env_scan *e) {
  const char *level = env_get(e, "NCCL_P2P_LEVEL");
  int rank = level ? level_rank(level) : -1, worst = e->fb.worst_ok_rank;
  ps_finding *f;
  if (!level || rank < 0 || !e->fb.ok_pairs || rank >= worst ||
      !(f = add(e, PS_SEVERITY_WARNING, "nccl-p2p-level")))
    return;
  PS_DSET(f->title, "NCCL_P2P_LEVEL=%s is below the verified links (%s)", level, rank_name(worst));
  PS_DSET(f->evidence,
          "environment NCCL_P2P_LEVEL=%s (NCCL uses P2P only up to %s); GPU "
          "pairs over %s links passed a real transfer",
          level, rank_name(rank), rank_name(worst));
  PS_DSET(f->breaks, "slow all-reduce: NCCL skips P2P on the pairs beyond the level and "
                     "goes through host memory");
  PS_DSET(f->fix, "export NCCL_P2P_LEVEL=%s, or unset it and let NCCL decide", rank_name(worst));
  PS_DSET(f->link, PS_DOC_NCCL_ENV "#nccl-p2p-level");
}

static void check_vllm_skip(env_scan *e) {
  const char *skip = env_get(e, "VLLM_SKIP_P2P_CHECK");
  const fabric *fb = &e->fb;
  ps_finding *f;
  if (truthy(skip) && fb->failed_pairs &&
      (f = add(e, PS_SEVERITY_WARNING, "vllm-skip-p2p-check"))) {
    PS_DSET(f->title,
            "VLLM_SKIP_P2P_CHECK=%s makes vLLM trust the driver's P2P claim, and it "
            "is wrong here",
            skip);
    PS_DSET(f->evidence,
            "environment VLLM_SKIP_P2P_CHECK=%s; %d GPU pair%s failed a real "
            "transfer (see p2p-verify-failed)",
            skip, fb->failed_pairs, fb->failed_pairs == 1 ? "" : "s");
    PS_DSET(f->breaks, "vLLM turns its custom all-reduce on for two GPUs from "
                       "cudaDeviceCanAccessPeer alone: wrong results or a hang");
    PS_DSET(f->fix, "pass --disable-custom-all-reduce for those GPUs, or set "
                    "VLLM_SKIP_P2P_CHECK=0 so vLLM tests P2P itself (slower start)");
    PS_DSET(f->link, VLLM_ENV_DOC);
  } else if (skip && strcmp(skip, "0") == 0 && fb->ok_pairs && !fb->failed_pairs &&
             (f = add(e, PS_SEVERITY_INFO, "vllm-p2p-check-redundant"))) {
    PS_DSET(f->title, "VLLM_SKIP_P2P_CHECK=0 repeats a test peerscope already passed");
    PS_DSET(f->evidence, "environment VLLM_SKIP_P2P_CHECK=0; %d GPU pair%s verified", fb->ok_pairs,
            fb->ok_pairs == 1 ? "" : "s");
    PS_DSET(f->breaks, "slow start only: vLLM's own P2P test takes up to a minute at TP=8 "
                       "(vllm#19824)");
    PS_DSET(f->fix, "export VLLM_SKIP_P2P_CHECK=1 (vLLM's default) on this machine");
    PS_DSET(f->link, VLLM_ENV_DOC);
  }
}

static void check_shm_disable(env_scan *e, const char *p2p_disable) {
  const char *shm = env_get(e, "NCCL_SHM_DISABLE");
  const fabric *fb = &e->fb;
  bool no_p2p =
      truthy(p2p_disable) || (fb->ok_pairs == 0 && (fb->failed_pairs || fb->refused_pairs));
  ps_finding *f;
  if (!truthy(shm) || !no_p2p || e->d->report->gpu_count <= 1 ||
      !(f = add(e, PS_SEVERITY_WARNING, "nccl-shm-disabled")))
    return;
  PS_DSET(f->title, "NCCL_SHM_DISABLE=%s while P2P is off: NCCL has no fast path left", shm);
  PS_DSET(f->evidence, "environment NCCL_SHM_DISABLE=%s; %s", shm,
          truthy(p2p_disable) ? "NCCL_P2P_DISABLE is set too"
                              : "no GPU pair passed a P2P transfer");
  PS_DSET(f->breaks, "NCCL falls back to its network transport between GPUs of one machine: "
                     "all-reduce many times slower");
  PS_DSET(f->fix, "unset NCCL_SHM_DISABLE (needed only for a specific shared-memory bug, "
                  "nccl#2079)");
  PS_DSET(f->link, PS_DOC_NCCL_ENV "#nccl-shm-disable");
}

void ps__check_env(ps__doctor *d) {
  env_scan e = {.d = d, .found = 0, .seen = ""};
  survey(d->report, &e.fb);
  /* In this order, so the note lists the variables as the findings come. */
  const char *p2p_disable = env_get(&e, "NCCL_P2P_DISABLE");
  check_p2p_disable(&e, p2p_disable);
  check_p2p_level(&e);
  check_vllm_skip(&e);
  check_shm_disable(&e, p2p_disable);
  if (e.found)
    ps__doctor_check(d, "env", PS_CHECK_FINDING, "set: %s", e.seen);
  else
    ps__doctor_check(d, "env", PS_CHECK_OK, "%s%s", e.seen[0] ? "set, consistent: " : "",
                     e.seen[0] ? e.seen
                               : "no NCCL_P2P_*, NCCL_SHM_DISABLE or VLLM_SKIP_P2P_CHECK set");
}
