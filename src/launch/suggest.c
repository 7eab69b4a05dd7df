/* A concrete next step for each failure the log classifier recognises, from the plan's
 * numbers (pure). */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

static const char *plan_arg(const ps_plan *plan, const char *name) {
  for (int i = 0; plan && i < plan->arg_count; i++)
    if (strcmp(plan->args[i].name, name) == 0) return plan->args[i].value;
  return NULL;
}

static void kv_too_small(const ps_log_summary *s, const ps_plan *plan, char *out, size_t len) {
  const char *util = plan_arg(plan, "--gpu-memory-utilization");
  if (s->estimated_max_len > 0)
    snprintf(out, len,
             "vLLM found less KV memory than planned (%.2f GiB needed, %.2f GiB available): "
             "relaunch with --max-model-len %lld (vLLM's estimate), or raise "
             "--gpu-memory-utilization above %s, or plan more GPUs (--tp).",
             s->kv_needed_gib, s->kv_available_gib, (long long)s->estimated_max_len,
             util ? util : "0.90");
  else
    snprintf(out, len,
             "the KV cache does not hold one request of the planned length: lower "
             "--max-model-len (planned %d), use --kv-cache-dtype fp8, or plan more GPUs.",
             plan ? plan->max_model_len : 0);
}

static const char *plan_env(const ps_plan *plan, const char *name) {
  for (int i = 0; plan && i < plan->env_count; i++)
    if (strcmp(plan->env[i].name, name) == 0) return plan->env[i].value;
  return NULL;
}

static void hang(const ps_plan *plan, char *out, size_t len) {
  const char *p2p_off = plan_env(plan, "NCCL_P2P_DISABLE");
  if (p2p_off && strcmp(p2p_off, "1") == 0 && plan_arg(plan, "--disable-custom-all-reduce"))
    snprintf(out, len,
             "P2P was already off in this plan (NCCL_P2P_DISABLE=1, no custom all-reduce), so "
             "the hang is elsewhere: relaunch with --nccl-debug to see where NCCL stops, try "
             "NCCL_SHM_DISABLE=1 in the environment if /dev/shm is small, or give a large "
             "model a longer --timeout.");
  else
    snprintf(out, len,
             "vLLM did not answer /health in time. A hang in NCCL or custom all-reduce set-up "
             "is the classic broken-P2P symptom: run `peerscope check`, then relaunch with "
             "NCCL_P2P_DISABLE=1 in the environment and `-- --disable-custom-all-reduce`, or "
             "on GPUs whose P2P verified (--gpus); a large model may just need a longer "
             "--timeout.");
}

void ps_log_suggest(const ps_log_summary *s, const ps_plan *plan, char *out, size_t len) {
  if (!out || len == 0) return;
  out[0] = '\0';
  if (!s) return;
  int tp = plan ? plan->tp : 0;
  switch (s->failure) {
  case PS_LOG_FAIL_NONE: break;
  case PS_LOG_FAIL_KV_TOO_SMALL: kv_too_small(s, plan, out, len); break;
  case PS_LOG_FAIL_NO_KV_MEMORY:
  case PS_LOG_FAIL_OOM:
    snprintf(out, len,
             "the weights and activations did not fit: plan with more GPUs (peerscope plan "
             "--tp %d), a lower --max-model-len or --max-num-seqs, or --reserve-gb for the "
             "memory other processes hold; check nvidia-smi for other processes.",
             tp > 0 ? tp * 2 : 2);
    break;
  case PS_LOG_FAIL_HEADS:
    snprintf(out, len,
             "TP %d does not divide the model's %d attention heads: let peerscope choose "
             "(drop --tp / --tensor-parallel-size) or use a divisor of %d.",
             s->heads_tp, s->heads, s->heads);
    break;
  case PS_LOG_FAIL_FREE_MEMORY:
    snprintf(out, len,
             "another process holds memory on a planned GPU: stop it, or plan on the live "
             "machine (peerscope launch --live lowers --gpu-memory-utilization to the free "
             "memory), or pass --reserve-gb.");
    break;
  case PS_LOG_FAIL_PORT_IN_USE:
    snprintf(out, len, "the port is taken: choose another with --port.");
    break;
  case PS_LOG_FAIL_HANG: hang(plan, out, len); break;
  }
}
