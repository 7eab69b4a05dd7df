/* peerscope/launch.h: start `vllm serve` with a plan and watch it come up (docs/launch.md).
 * Part of the public API; include <peerscope/peerscope.h> (which includes every topic
 * header) or this header alone. */
#ifndef PEERSCOPE_LAUNCH_H
#define PEERSCOPE_LAUNCH_H

#include "plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- launch: start `vllm serve` with a plan and watch it come up ------------------- */

#define PS_LAUNCH_MAX_ARGV 320
#define PS_LAUNCH_MAX_CONFLICTS 8

/* One line of vLLM's start-up log, classified (pure; see docs/launch.md). */
enum {
  PS_NCCL_P2P = 1u << 0, /* NCCL INFO "... via P2P/IPC" or "via P2P/direct pointer" */
  PS_NCCL_SHM = 1u << 1, /* "... via SHM/..." */
  PS_NCCL_NET = 1u << 2  /* "... via NET/..." */
};

typedef enum ps_log_failure {
  PS_LOG_FAIL_NONE = 0,
  PS_LOG_FAIL_OOM = 1,          /* CUDA out of memory while loading or profiling */
  PS_LOG_FAIL_KV_TOO_SMALL = 2, /* "KV cache is needed, which is larger than the available ..." */
  PS_LOG_FAIL_NO_KV_MEMORY = 3, /* "No available memory for the cache blocks" */
  PS_LOG_FAIL_HEADS = 4,        /* "Total number of attention heads (N) must be divisible ..." */
  PS_LOG_FAIL_FREE_MEMORY = 5,  /* "Free memory on device ... is less than desired ..." */
  PS_LOG_FAIL_PORT_IN_USE = 6,  /* "[Errno 98] Address already in use" */
  PS_LOG_FAIL_HANG = 7          /* no /health before the deadline (set by ps_launch_run) */
} ps_log_failure;

typedef struct ps_log_summary {
  int custom_all_reduce;              /* -1 not stated, 0 disabled, 1 enabled */
  char custom_all_reduce_reason[256]; /* vLLM's stated reason when disabled */
  uint32_t nccl_transports;           /* PS_NCCL_* seen (needs NCCL_DEBUG=INFO) */
  int64_t kv_cache_tokens;            /* "GPU KV cache size: N tokens"; -1 not seen */
  double max_concurrency;             /* "Maximum concurrency for L tokens per request: Xx"; <0 */
  int64_t concurrency_tokens;         /* that L; -1 not seen */
  double kv_available_gib;            /* "Available KV cache memory: X GiB"; <0 not seen */
  ps_log_failure failure;             /* the first failure recognised */
  char failure_line[512];             /* the line that showed it */
  int heads, heads_tp;                /* PS_LOG_FAIL_HEADS: the numbers vLLM gave */
  double kv_needed_gib;               /* PS_LOG_FAIL_KV_TOO_SMALL: needed vs available */
  int64_t estimated_max_len;          /* vLLM's estimate of the longest context that fits; -1 */
  bool ready;                         /* "Application startup complete." */
} ps_log_summary;

/* A summary with nothing seen yet (every number -1, "not seen"), for a caller classifying a
 * log itself; NULL only when out of memory. ps_launch_run's result carries its own. */
PS_API ps_log_summary *ps_log_summary_new(void);
PS_API void ps_log_summary_free(ps_log_summary *summary);
/* Adds what one log line (without its newline) says to the summary. */
PS_API void ps_log_classify_line(ps_log_summary *summary, const char *line);
/* A concrete next step for summary->failure, using the plan (may be NULL): writes one or
 * two sentences to out ("" when there is no failure). */
PS_API void ps_log_suggest(const ps_log_summary *summary, const ps_plan *plan, char *out,
                           size_t len);

struct ps_launch_result;

typedef struct ps_launch_opts {
  size_t size;              /* sizeof(ps_launch_opts): PS_INIT(ps_launch_opts) */
  const char *vllm;         /* the executable: a path or a name looked up in PATH; NULL = "vllm" */
  const char *host;         /* --host; NULL = "127.0.0.1" */
  int port;                 /* --port; 0 = 8000 */
  const char *const *extra; /* the user's extra vllm arguments (after --) */
  int extra_count;
  int health_timeout_s;     /* deadline for GET /health to answer 200; 0 = 900 */
  int stop_grace_s;         /* SIGTERM to SIGKILL on stop; 0 = 15 */
  bool nccl_debug;          /* add NCCL_DEBUG=INFO (to see the transports) */
  const volatile int *stop; /* set non-zero (e.g. by a signal handler) to stop vLLM */
  /* Called for every log line (stream 1 stdout, 2 stderr) and, with stream 0, for
   * peerscope's own events ("ready http://...", "stopping ..."). May be NULL. */
  void (*on_line)(void *user, int stream, const char *line);
  /* Called once when /health first answers 200, with the result so far (url, summary of
   * the log up to now). May be NULL. */
  void (*on_ready)(void *user, const struct ps_launch_result *result);
  void *user;
} ps_launch_opts;

/* A user argument that contradicts the plan: the user's value wins. */
typedef struct ps_launch_conflict {
  char flag[64];
  char plan_value[128];
  char user_value[128];
} ps_launch_conflict;

/* What would run: argv (argv[0] = the executable as given, "serve", the model, the plan's
 * arguments, --host/--port, then the user's extras) and the environment additions. */
typedef struct ps_launch_cmd {
  int argc;
  char *argv[PS_LAUNCH_MAX_ARGV + 1]; /* NULL-terminated */
  int envc;
  char *env[PS_PLAN_MAX_ITEMS + 2]; /* "NAME=value", added to the caller's environment */
  int conflict_count;
  ps_launch_conflict conflicts[PS_LAUNCH_MAX_CONFLICTS];
} ps_launch_cmd;

/* Pure: the command for `plan` (feasible) with `opts`. A plan argument that the user also
 * gives is dropped from the plan's part and reported as a conflict when the values differ.
 * PS_ERR_INVALID_ARG for an infeasible plan or too many arguments. *out (its strings
 * included): ps_launch_cmd_free. */
PS_API ps_status ps_launch_argv(ps_ctx *ctx, const ps_plan *plan, const ps_launch_opts *opts,
                                ps_launch_cmd **out);
PS_API void ps_launch_cmd_free(ps_launch_cmd *cmd);

typedef enum ps_launch_outcome {
  PS_LAUNCH_EXITED = 0,      /* vLLM exited by itself: exit_code */
  PS_LAUNCH_STOPPED = 1,     /* it came up and was stopped through opts->stop */
  PS_LAUNCH_INTERRUPTED = 2, /* stopped through opts->stop before it came up */
  PS_LAUNCH_HUNG = 3,        /* no healthy /health before the deadline; killed */
  PS_LAUNCH_NOT_FOUND = 4,   /* the executable does not exist */
  PS_LAUNCH_PORT_IN_USE = 5  /* --port was taken before vLLM started; not started */
} ps_launch_outcome;

typedef struct ps_launch_result {
  ps_launch_outcome outcome;
  bool came_up;      /* /health answered 200 */
  double up_after_s; /* seconds from start to healthy */
  int exit_code;     /* vLLM's exit status; 128 + signal when a signal ended it */
  char url[128];     /* "http://127.0.0.1:8000" */
  ps_log_summary summary;
} ps_launch_result;

/* Runs `cmd` (posix_spawnp, own process group, never a shell), streams its log to
 * opts->on_line, polls GET /health until 200 or the deadline, and returns when vLLM exits
 * or is stopped; the whole process group is gone on return. PS_OK whenever an outcome is
 * set (a vLLM failure is an outcome, not an error). *out: ps_launch_result_free. */
PS_API ps_status ps_launch_run(ps_ctx *ctx, const ps_launch_cmd *cmd, const ps_launch_opts *opts,
                               ps_launch_result **out);
PS_API void ps_launch_result_free(ps_launch_result *result);

#ifdef __cplusplus
}
#endif
#endif
