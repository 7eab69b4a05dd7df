/* One measurement as the parent asks the bench worker for it. On the worker's command line a
 * job is one token, fields separated by '/':
 *
 *   <kind>/<a>/<b>/<flags>/<bytes>/<iters>/<trials>/<dtype>/<group>
 *
 *   kind    ps_bench_kind_name (copy_ce, allreduce_nccl, ...)
 *   a, b    GPU positions in --gpus (source, destination); -1 when not applicable
 *   flags   letters: b bidirectional, p peer access on, g CUDA graph, v virtual ranks; '-' none
 *   bytes   per copy, or per rank's all-reduce buffer
 *   dtype   fp16, bf16 or '-'
 *   group   all-reduce GPU positions joined by '+' (virtual ranks: one GPU repeated), or '-'
 *
 * Example: copy_ce/0/1/bp/67108864/16/3/-/-   allreduce_oneshot/0/-1/v/262144/20/3/bf16/0+0+0+0 */
#ifndef PS_BENCH_JOB_H
#define PS_BENCH_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"

typedef struct ps__bench_job {
  ps_bench_kind kind;
  int a, b;
  bool bidirectional, p2p, graph, virtual_ranks;
  uint64_t bytes;
  int iters, trials;
  char dtype[8];
  int ranks;
  int group[PS_BENCH_MAX_RANKS];
} ps__bench_job;

/* Writes the token; false when it does not fit. */
bool ps__bench_job_format(const ps__bench_job *job, char *out, size_t len);
/* Parses a token; false on anything malformed. */
bool ps__bench_job_parse(const char *text, ps__bench_job *job);

#endif
