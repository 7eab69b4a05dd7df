/* Check 3, the headline: the driver claims P2P but a real transfer failed. The evidence is
 * the verifier's own result (the pair, the byte, the error). */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor_internal.h"

#define ISSUE_CORRUPT "https://github.com/NVIDIA/open-gpu-kernel-modules/issues/1257"

static const char *claim_text(const ps_pair *p, char *buf, size_t len) {
  if (!(p->valid & PS_PAIR_CLAIMS)) {
    ps__dset(buf, len, "NVML claims n/a");
    return buf;
  }
  ps__dset(buf, len, "NVML claims read=%s write=%s", ps_claim_name(p->claim_read),
           ps_claim_name(p->claim_write));
  if (p->valid & PS_PAIR_CUDA_CLAIM)
    ps__dcat(buf, len, ", cuDeviceCanAccessPeer=%d", p->cuda_can_access ? 1 : 0);
  return buf;
}

static void describe(const ps_pair *p, bool sep, char *out, size_t len) {
  char claims[128];
  ps__dcat(out, len, "%sGPU %d -> GPU %d: %s", sep ? "; " : "", p->from, p->to,
           ps_verdict_name(p->verdict));
  if (p->verdict == PS_VERDICT_CORRUPT && (p->valid & PS_PAIR_CORRUPT_DETAIL))
    ps__dcat(out, len, ", byte at offset %llu arrived as 0x%02x, expected 0x%02x",
             (unsigned long long)p->corrupt_offset, p->corrupt_seen, p->corrupt_expected);
  if (p->reason[0]) ps__dcat(out, len, " (%s)", p->reason);
  /* The kernels' verdict, when the copy engine's passed: an IOMMU or fabric that breaks
   * only SM-initiated traffic. */
  if (!ps_verdict_failed(p->verdict) && ps_verdict_failed(p->sm.verdict))
    ps__dcat(out, len, ", but kernels (sm mode): %s (%s)", ps_verdict_name(p->sm.verdict),
             p->sm.reason);
  ps__dcat(out, len, "; %s", claim_text(p, claims, sizeof(claims)));
}

static bool claimed(const ps_pair *p) {
  return ((p->valid & PS_PAIR_CLAIMS) && p->claim_read == PS_CLAIM_OK) ||
         ((p->valid & PS_PAIR_CUDA_CLAIM) && p->cuda_can_access);
}

static void pair_finding(ps__doctor *d, const ps_pair *ab, const ps_pair *ba) {
  const ps_report *r = d->report;
  const ps_pair *first = ps__doctor_pair_failed(ab) ? ab : ba;
  bool corrupt = ab->verdict == PS_VERDICT_CORRUPT || ba->verdict == PS_VERDICT_CORRUPT ||
                 ab->sm.verdict == PS_VERDICT_CORRUPT || ba->sm.verdict == PS_VERDICT_CORRUPT;
  bool hang = ab->verdict == PS_VERDICT_HANG || ba->verdict == PS_VERDICT_HANG ||
              ab->sm.verdict == PS_VERDICT_HANG || ba->sm.verdict == PS_VERDICT_HANG;
  ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "p2p-verify-failed");
  if (!f) return;
  char la[160], lb[160], link[16];
  f->gpu_a = first->from;
  f->gpu_b = first->to;
  ps_link_name(first->link, first->nvlink_count, link, sizeof(link));
  PS_DSET(f->title, "%s P2P between GPU %d and GPU %d, but a real transfer %s",
          claimed(first) ? "The driver claims" : "Peer access is offered for", first->from,
          first->to,
          corrupt ? "delivered wrong bytes"
          : hang  ? "hung"
                  : "failed");
  PS_DSET(f->evidence, "%s and %s, link %s: ", ps__doctor_gpu_label(r, first->from, la, sizeof(la)),
          ps__doctor_gpu_label(r, first->to, lb, sizeof(lb)), link);
  if (ps__doctor_pair_failed(ab)) describe(ab, false, f->evidence, sizeof(f->evidence));
  if (ps__doctor_pair_failed(ba))
    describe(ba, ps__doctor_pair_failed(ab), f->evidence, sizeof(f->evidence));
  if (corrupt)
    PS_DSET(f->breaks, "silent corruption: tensor-parallel all-reduce over this pair (vLLM "
                       "custom all-reduce, NCCL's P2P transport) returns wrong numbers without "
                       "any error; a capability query cannot see it");
  else if (hang)
    PS_DSET(f->breaks, "NCCL hang: vLLM with tensor parallelism over this pair stops at NCCL "
                       "init or at the first all-reduce");
  else
    PS_DSET(f->breaks, "NCCL's P2P transport and vLLM's custom all-reduce fail on this pair");
  PS_DSET(f->fix, "keep the pair out of one tensor-parallel group (peerscope plan picks verified "
                  "groups), or run vLLM with NCCL_P2P_DISABLE=1 and --disable-custom-all-reduce; "
                  "remove the cause (the ACS and IOMMU findings, if any), then re-test with: "
                  "peerscope check --refresh");
  PS_DSET(f->link, "%s", corrupt ? ISSUE_CORRUPT : PS_DOC_NCCL_ACS);
}

void ps__check_verify(ps__doctor *d) {
  const ps_report *r = d->report;
  if (!r->verified) {
    ps__doctor_check(d, "verify", PS_CHECK_NOT_CHECKED,
                     "no transfers ran (--no-verify, or an imported topology)");
    return;
  }
  int failed = 0;
  for (int a = 0; a < r->gpu_count; a++)
    for (int b = a + 1; b < r->gpu_count; b++) {
      const ps_pair *ab = ps_report_pair(r, a, b), *ba = ps_report_pair(r, b, a);
      if (!ab || !ba || (!ps__doctor_pair_failed(ab) && !ps__doctor_pair_failed(ba))) continue;
      failed++;
      pair_finding(d, ab, ba);
    }
  int local = 0;
  for (int g = 0; g < r->gpu_count; g++) {
    const ps_gpu *gpu = &r->gpus[g];
    bool ce_bad = gpu->local_verdict != PS_VERDICT_OK && gpu->local_verdict != PS_VERDICT_NOT_RUN &&
                  gpu->local_verdict != PS_VERDICT_SKIPPED;
    if (!ce_bad && !ps_verdict_failed(gpu->local_sm.verdict)) continue;
    local++;
    ps_finding *f = ps__doctor_add(d, PS_SEVERITY_ERROR, "local-copy-failed");
    if (!f) return;
    char label[160];
    f->gpu_a = g;
    PS_DSET(f->title, "GPU %d fails a copy within its own memory", g);
    PS_DSET(f->evidence, "%s: control copy %s%s%s",
            ps__doctor_gpu_label(r, g, label, sizeof(label)), ps_verdict_name(gpu->local_verdict),
            gpu->local_reason[0] ? ": " : "", gpu->local_reason);
    if (ps_verdict_failed(gpu->local_sm.verdict))
      PS_DCAT(f->evidence, "; kernel copy (sm mode) %s: %s", ps_verdict_name(gpu->local_sm.verdict),
              gpu->local_sm.reason);
    PS_DSET(f->breaks, "everything on this GPU: the fault is the GPU or its driver, not P2P");
    PS_DSET(f->fix, "check dmesg for Xid errors (sudo dmesg | grep -i xid), reseat or replace the "
                    "GPU, reinstall the driver; leave it out with --gpus meanwhile");
    PS_DSET(f->link, "https://docs.nvidia.com/deploy/xid-errors/index.html");
  }
  if (failed || local)
    ps__doctor_check(d, "verify", PS_CHECK_FINDING, "%d pair%s failed a real transfer%s", failed,
                     failed == 1 ? "" : "s", local ? ", and local copies failed" : "");
  else
    ps__doctor_check(d, "verify", PS_CHECK_OK,
                     "no pair that P2P was offered for failed a real transfer%s",
                     r->cache_used ? " (some verdicts from the cache)" : "");
}
