/* vLLM's rules, as of vLLM main in Sept 2026 (see ../docs/plan.md for the sources):
 * - TP divides num_attention_heads: ModelConfig.verify_with_parallel_config
 *   (vllm/config/model.py) raises "Total number of attention heads (N) must be divisible by
 *   tensor parallel size (T)."
 * - KV heads: QKVParallelLinear (vllm/model_executor/layers/linear.py) replicates them when
 *   tp >= kv (divide(tp, kv)) and splits them otherwise (divide(kv, tp)); divide() asserts.
 * - Custom all-reduce (vllm/distributed/device_communicators/custom_all_reduce.py): world
 *   sizes 2, 4, 6, 8; above 2 GPUs every pair must be NVLink per NVML
 *   (NvmlCudaPlatform.is_fully_connected); at 2 GPUs the driver's peer-access claim. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "plan/plan_internal.h"

bool ps__tp_valid(const ps_model *model, int tp, char *why, size_t why_len) {
  why[0] = '\0';
  if (tp < 1) {
    snprintf(why, why_len, "TP=%d is not a size", tp);
    return false;
  }
  if (model->num_heads <= 0) return true; /* unknown shape: nothing to check */
  if (model->num_heads % tp != 0) {
    snprintf(why, why_len,
             "TP=%d does not divide the %d attention heads (vLLM refuses: "
             "\"Total number of attention heads (%d) must be divisible by tensor parallel "
             "size (%d)\")",
             tp, model->num_heads, model->num_heads, tp);
    return false;
  }
  int kv = model->num_kv_heads > 0 ? model->num_kv_heads : model->num_heads;
  if (tp >= kv ? tp % kv != 0 : kv % tp != 0) {
    snprintf(why, why_len,
             "TP=%d and the %d KV heads do not divide each other (vLLM fails "
             "at model load in divide())",
             tp, kv);
    return false;
  }
  return true;
}

bool ps__pair_usable(const ps_report *report, int a, int b) {
  return ps_pair_usable(report, ps_report_pair(report, a, b));
}

bool ps__pair_broken(const ps_report *report, int a, int b) {
  return ps_pair_failed(report, ps_report_pair(report, a, b));
}

static bool nvml_nvlink_ok(const ps_report *report, int a, int b) {
  const ps_pair *p = ps_report_pair(report, a, b);
  if (ps_pair_assumed(report, p)) /* no claims: the link */
    return (p->valid & PS_PAIR_LINK) && p->link == PS_LINK_NVLINK;
  return p && (p->valid & PS_PAIR_CLAIMS) && p->claim_nvlink == PS_CLAIM_OK;
}

/* The first mode the pair failed in, as "ce: corrupt" (the pair's verdict otherwise). */
static const char *failed_mode(const ps_pair *p, char *buf, size_t len) {
  for (int m = 0; m < PS_MODE_COUNT; m++)
    if (ps_verdict_failed(ps_pair_mode_verdict(p, m))) {
      snprintf(buf, len, "%s: %s", ps_mode_name(m), ps_verdict_name(ps_pair_mode_verdict(p, m)));
      return buf;
    }
  return ps_verdict_name(p->verdict);
}

/* Appends a mode name to a comma list. */
static void add_name(char *list, size_t len, const char *name) {
  size_t used = strlen(list);
  snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

bool ps__group_modes(const ps_report *r, const int *group, int n, char *out, size_t len) {
  char passed[32] = "", failed[32] = "", not_run[32] = "", unavailable[128] = "";
  for (int m = 0; m < PS_MODE_COUNT; m++) {
    bool ok = r->modes & PS_MODE_BIT(m);
    const char *why = NULL;
    for (int i = 0; ok && i < n; i++)
      for (int j = 0; ok && j < n; j++) {
        const ps_pair *p = i == j ? NULL : ps_report_pair(r, group[i], group[j]);
        ps_verdict v = p ? ps_pair_mode_verdict(p, m) : PS_VERDICT_OK;
        ok = v == PS_VERDICT_OK;
        if (v == PS_VERDICT_UNAVAILABLE) why = m == PS_MODE_SM ? p->sm.reason : p->ipc.reason;
      }
    if (ok)
      add_name(passed, sizeof(passed), ps_mode_name(m));
    else if (!(r->modes & PS_MODE_BIT(m)))
      add_name(not_run, sizeof(not_run), ps_mode_name(m));
    else if (why)
      snprintf(unavailable + strlen(unavailable), sizeof(unavailable) - strlen(unavailable),
               "; %s %.80s", ps_mode_name(m), why);
    else
      add_name(failed, sizeof(failed), ps_mode_name(m));
  }
  snprintf(out, len, "%s%s%s%s%s%s", passed[0] ? passed : "none",
           failed[0] ? "; not passed by every pair: " : "", failed, unavailable,
           not_run[0] ? "; not run: " : "", not_run);
  return strcmp(passed, "ce, sm, ipc") == 0;
}

bool ps__group_assumed(const ps_report *report, const int *group, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && ps_pair_assumed(report, ps_report_pair(report, group[i], group[j])))
        return true;
  return false;
}

void ps__custom_all_reduce(const ps_report *report, const int *group, int tp,
                           ps__car_decision *out) {
  memset(out, 0, sizeof(*out));
  if (tp <= 1) {
    out->enabled = true; /* not built at all: nothing to say */
    return;
  }
  for (int i = 0; i < tp; i++)
    for (int j = 0; j < tp; j++) {
      int a = group[i], b = group[j];
      if (i == j || ps__pair_usable(report, a, b)) continue;
      if (ps_pair_assumed(report, ps_report_pair(report, a, b))) {
        /* A topo -m paste without -p2p: P2P over this link is unknown, so vLLM's own check
         * at start-up decides; no flag that would turn off what may work. */
        out->enabled = true;
        snprintf(out->why, sizeof(out->why),
                 "left to vLLM: P2P between GPU%d and GPU%d is unknown (no -p2p section in the "
                 "topology; `nvidia-smi topo -p2p r` shows it), vLLM checks it at start-up",
                 a, b);
        return;
      }
      out->essential = ps__pair_broken(report, a, b);
      char mode[48];
      if (out->essential)
        snprintf(out->why, sizeof(out->why),
                 "GPU%d->GPU%d failed verification (%s); custom all-reduce opens the peers' "
                 "buffers in each worker process (ipc) and writes them from kernels (sm), and "
                 "would fail, hang or corrupt results",
                 a, b, failed_mode(ps_report_pair(report, a, b), mode, sizeof(mode)));
      else
        snprintf(out->why, sizeof(out->why),
                 "no P2P between GPU%d and GPU%d%s; vLLM disables custom all-reduce anyway, the "
                 "flag only silences its warning",
                 a, b, report->verified ? "" : " (claimed, not verified)");
      return;
    }
  if (tp != 2 && tp != 4 && tp != 6 && tp != 8) {
    snprintf(out->why, sizeof(out->why),
             "vLLM disables it anyway at TP=%d (supported world sizes: 2, 4, 6, 8); the flag "
             "only silences the warning",
             tp);
    return;
  }
  if (tp > 2)
    for (int i = 0; i < tp; i++)
      for (int j = i + 1; j < tp; j++)
        if (!nvml_nvlink_ok(report, group[i], group[j])) {
          snprintf(out->why, sizeof(out->why),
                   "vLLM disables it anyway: GPU%d and GPU%d are not NVLink-connected, and above "
                   "2 GPUs it needs all pairs on NVLink; the flag only silences the warning",
                   group[i], group[j]);
          return;
        }
  /* Measured evidence, when the report carries a benchmark of this group, outranks the
   * general rule: a one-shot all-reduce that failed here would fail inside vLLM too. */
  char measured[200];
  ps__car_evidence evidence = ps__bench_car_evidence(report, group, tp, measured, sizeof(measured));
  if (evidence == PS_CAR_FAILED) {
    out->essential = true;
    snprintf(out->why, sizeof(out->why), "%s", measured);
    return;
  }
  out->enabled = true;
  if (evidence != PS_CAR_NOT_MEASURED) {
    snprintf(out->why, sizeof(out->why), "every pair of the TP group %s; %s",
             report->verified ? "verified" : "claimed P2P", measured);
    return;
  }
  char modes[160];
  if (report->verified && ps__group_modes(report, group, tp, modes, sizeof(modes))) {
    snprintf(out->why, sizeof(out->why),
             "every pair of the TP group verified in the modes it uses (%.60s): vLLM's custom "
             "all-reduce is safe and faster than NCCL for small messages",
             modes);
    return;
  }
  if (report->verified) {
    snprintf(out->why, sizeof(out->why),
             "every pair of the TP group verified, but not in every mode custom all-reduce uses "
             "(passed: %.110s); vLLM's own P2P check decides at start-up",
             modes);
    return;
  }
  snprintf(out->why, sizeof(out->why), "%s",
           ps__group_assumed(report, group, tp)
               ? "every pair of the TP group assumed P2P from its links (NVLink, PIX, PXB; no "
                 "-p2p section: confirm with `nvidia-smi topo -p2p r`)"
               : "every pair of the TP group is claimed P2P (not verified)");
}

const char *ps__tp_group_p2p(const ps_report *r, const int *group, int tp, bool p2p) {
  bool assumed = ps__group_assumed(r, group, tp);
  if (p2p)
    return r->verified ? "verified P2P between every pair"
           : assumed   ? "assumed P2P between every pair from the links (NVLink, PIX, PXB): the "
                         "topology has no -p2p section; `nvidia-smi topo -p2p r` confirms it"
                       : "claimed P2P between every pair (not verified: imported topology)";
  return assumed ? "has links whose P2P is unknown (no -p2p section; `nvidia-smi topo -p2p r` "
                   "shows it): NCCL decides at start-up"
                 : "has no P2P between every pair: NCCL uses host memory";
}
