/* ps_layout: sizeof and every field's offsetof and size of each public struct the Python
 * package mirrors (python/peerscope/_lib.py, cluster/clib.py), one line each, for
 * tests/layout/check_layout.py. A field appended to a header goes into its list here too
 * (the check compares these lists with the headers' declarations). */
#include <stddef.h>
#include <stdio.h>

#include "peerscope/peerscope.h"

#define FIELD(T, f) printf(#T "." #f " %zu %zu\n", offsetof(T, f), sizeof(((T *)0)->f));
#define STRUCT(T, LIST)                                                                            \
  printf(#T " %zu\n", sizeof(T));                                                                  \
  LIST(T, FIELD)

/* clang-format off */
#define PS_GPU_FIELDS(T, X)                                                                        \
  X(T, valid) X(T, index) X(T, name) X(T, uuid) X(T, pci_bus_id) X(T, memory_total_bytes)          \
  X(T, memory_free_bytes) X(T, cc_major) X(T, cc_minor) X(T, numa_node) X(T, cpu_affinity)         \
  X(T, pcie_gen_current) X(T, pcie_width_current) X(T, pcie_gen_max) X(T, pcie_width_max)          \
  X(T, bar1_total_bytes) X(T, cuda_ordinal) X(T, local_verdict) X(T, local_reason)               \
  X(T, visible_ordinal) X(T, local_sm) X(T, local_ipc)
#define PS_MODE_RESULT_FIELDS(T, X)                                                                \
  X(T, verdict) X(T, from_cache) X(T, reason) X(T, error_name)
#define PS_PAIR_FIELDS(T, X)                                                                       \
  X(T, valid) X(T, from) X(T, to) X(T, link) X(T, nvlink_count) X(T, nvlink_version)               \
  X(T, nvswitch) X(T, claim_read) X(T, claim_write) X(T, claim_nvlink) X(T, claim_atomics)         \
  X(T, cuda_can_access) X(T, verdict) X(T, from_cache) X(T, reason) X(T, error_name)               \
  X(T, corrupt_offset) X(T, corrupt_expected) X(T, corrupt_seen) X(T, copy_us) X(T, sm)           \
  X(T, ipc)
#define PS_TIMINGS_FIELDS(T, X)                                                                    \
  X(T, driver_init_ms) X(T, probe_ms) X(T, worker_spawn_ms) X(T, cuda_init_ms)                     \
  X(T, contexts_ms) X(T, copies_ms) X(T, total_ms)
#define PS_REPORT_FIELDS(T, X)                                                                     \
  X(T, source) X(T, origin) X(T, machine) X(T, hostname) X(T, boot_id) X(T, driver_version)        \
  X(T, cuda_driver_version) X(T, nvml_version) X(T, gpu_count) X(T, gpus) X(T, pair_count)         \
  X(T, pairs) X(T, verified) X(T, cache_used) X(T, hang_workers) X(T, timings)                     \
  X(T, cuda_visible_devices) X(T, bench) X(T, restart_count) X(T, restarts) X(T, modes)
#define PS_RESTART_FIELDS(T, X)                                                                    \
  X(T, cause) X(T, from) X(T, to) X(T, error_name) X(T, reason)
#define PS_PROBE_OPTS_FIELDS(T, X)                                                                 \
  X(T, size) X(T, driver_dir) X(T, fixture)
#define PS_VERIFY_OPTS_FIELDS(T, X)                                                                \
  X(T, size) X(T, timeout_ms) X(T, copy_bytes) X(T, refresh) X(T, cache_dir) X(T, worker_path)     \
  X(T, driver_dir) X(T, gpus) X(T, gpu_count) X(T, fixture) X(T, modes)
#define PS_VISIBLE_OPTS_FIELDS(T, X)                                                               \
  X(T, size) X(T, worker_path) X(T, driver_dir) X(T, fixture) X(T, cuda_visible_devices)           \
  X(T, cuda_device_order)
#define PS_BENCH_OPTS_FIELDS(T, X)                                                                 \
  X(T, size) X(T, tests) X(T, gpus) X(T, gpu_count) X(T, sizes) X(T, size_count)                   \
  X(T, copy_bytes) X(T, iters) X(T, trials) X(T, quick) X(T, timeout_ms) X(T, worker_path)         \
  X(T, driver_dir) X(T, nccl_path) X(T, progress) X(T, progress_user) X(T, stop) X(T, fixture)
#define PS_MODEL_FIELDS(T, X)                                                                      \
  X(T, valid) X(T, name) X(T, architecture) X(T, model_type) X(T, num_layers) X(T, hidden_size)    \
  X(T, num_heads) X(T, num_kv_heads) X(T, head_dim) X(T, vocab_size) X(T, intermediate_size)       \
  X(T, max_position_embeddings) X(T, tied_embeddings) X(T, num_experts) X(T, experts_per_token)    \
  X(T, dtype) X(T, dtype_bytes) X(T, quantization) X(T, weight_bytes) X(T, param_count)            \
  X(T, attention) X(T, kv_lora_rank) X(T, qk_rope_head_dim) X(T, sliding_window)                   \
  X(T, sliding_layers) X(T, estimate_note) X(T, attention_layers) X(T, vision)
#define PS_PLAN_REQUEST_FIELDS(T, X)                                                               \
  X(T, size) X(T, model) X(T, tp) X(T, pp) X(T, gpus) X(T, gpu_count)                              \
  X(T, gpu_memory_utilization) X(T, max_model_len) X(T, max_num_seqs) X(T, kv_cache_dtype)         \
  X(T, reserve_gib) X(T, objective) X(T, model_path) X(T, vllm_version) X(T, enforce_eager)        \
  X(T, max_num_batched_tokens) X(T, block_size) X(T, vllm_log) X(T, calibrations)                 \
  X(T, calibration_count) X(T, vllm_version_note)
#define PS_PLAN_ITEM_FIELDS(T, X)                                                                  \
  X(T, name) X(T, value) X(T, why)
#define PS_PLAN_OPTION_FIELDS(T, X)                                                                \
  X(T, tp) X(T, pp) X(T, gpu_count) X(T, gpus) X(T, feasible) X(T, why)
#define PS_PLAN_FIELDS(T, X)                                                                       \
  X(T, feasible) X(T, summary) X(T, tp) X(T, pp) X(T, gpu_count) X(T, gpus) X(T, replicas)         \
  X(T, budget_bytes) X(T, weights_bytes) X(T, overhead_bytes) X(T, kv_bytes) X(T, kv_tokens)       \
  X(T, max_model_len) X(T, max_num_seqs) X(T, gpu_memory_utilization) X(T, custom_all_reduce)      \
  X(T, pp_layer_partition) X(T, env_count) X(T, env) X(T, arg_count) X(T, args) X(T, model_arg)    \
  X(T, reason_count) X(T, reasons) X(T, alt_count) X(T, alts) X(T, node_count) X(T, gpu_node)      \
  X(T, command_count) X(T, commands) X(T, vllm_version) X(T, vllm_version_note)                    \
  X(T, visible_bytes) X(T, activation_bytes) X(T, non_torch_bytes) X(T, graphs_bytes)              \
  X(T, max_num_batched_tokens) X(T, block_size) X(T, kv_groups) X(T, kv_blocks)                    \
  X(T, kv_group_tokens) X(T, max_concurrency) X(T, error_band) X(T, calibration)                  \
  X(T, kv_band_pct) X(T, safe_max_model_len) X(T, safe_max_num_seqs)  \
  X(T, encoder_profile_bytes) X(T, encoder_profile)
#define PS_LOG_SUMMARY_FIELDS(T, X)                                                                \
  X(T, custom_all_reduce) X(T, custom_all_reduce_reason) X(T, nccl_transports)                     \
  X(T, kv_cache_tokens) X(T, max_concurrency) X(T, concurrency_tokens) X(T, kv_available_gib)      \
  X(T, failure) X(T, failure_line) X(T, heads) X(T, heads_tp) X(T, kv_needed_gib)                  \
  X(T, estimated_max_len) X(T, ready)
#define PS_LAUNCH_RESULT_FIELDS(T, X)                                                              \
  X(T, outcome) X(T, came_up) X(T, up_after_s) X(T, exit_code) X(T, url) X(T, summary)
#define PS_LAUNCH_OPTS_FIELDS(T, X)                                                                \
  X(T, size) X(T, vllm) X(T, host) X(T, port) X(T, extra) X(T, extra_count)                        \
  X(T, health_timeout_s) X(T, stop_grace_s) X(T, nccl_debug) X(T, stop) X(T, on_line)              \
  X(T, on_ready) X(T, user)
#define PS_LAUNCH_CONFLICT_FIELDS(T, X)                                                            \
  X(T, flag) X(T, plan_value) X(T, user_value)
#define PS_LAUNCH_CMD_FIELDS(T, X)                                                                 \
  X(T, argc) X(T, argv) X(T, envc) X(T, env) X(T, conflict_count) X(T, conflicts)
/* clang-format on */

int main(void) {
  STRUCT(ps_mode_result, PS_MODE_RESULT_FIELDS)
  STRUCT(ps_gpu, PS_GPU_FIELDS)
  STRUCT(ps_pair, PS_PAIR_FIELDS)
  STRUCT(ps_timings, PS_TIMINGS_FIELDS)
  STRUCT(ps_report, PS_REPORT_FIELDS)
  STRUCT(ps_restart, PS_RESTART_FIELDS)
  STRUCT(ps_probe_opts, PS_PROBE_OPTS_FIELDS)
  STRUCT(ps_verify_opts, PS_VERIFY_OPTS_FIELDS)
  STRUCT(ps_visible_opts, PS_VISIBLE_OPTS_FIELDS)
  STRUCT(ps_bench_opts, PS_BENCH_OPTS_FIELDS)
  STRUCT(ps_model, PS_MODEL_FIELDS)
  STRUCT(ps_plan_request, PS_PLAN_REQUEST_FIELDS)
  STRUCT(ps_plan_item, PS_PLAN_ITEM_FIELDS)
  STRUCT(ps_plan_option, PS_PLAN_OPTION_FIELDS)
  STRUCT(ps_plan, PS_PLAN_FIELDS)
  STRUCT(ps_log_summary, PS_LOG_SUMMARY_FIELDS)
  STRUCT(ps_launch_result, PS_LAUNCH_RESULT_FIELDS)
  STRUCT(ps_launch_opts, PS_LAUNCH_OPTS_FIELDS)
  STRUCT(ps_launch_conflict, PS_LAUNCH_CONFLICT_FIELDS)
  STRUCT(ps_launch_cmd, PS_LAUNCH_CMD_FIELDS)
  return 0;
}
