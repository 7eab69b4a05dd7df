/* The verification's worker protocol, version 1 (what every mode shares: src/worker/protocol.h):
 * the parent starts `peerscope-worker` with the job in argv and reads one text line per event
 * from its stdout.
 *
 *   argv:  --protocol 1 --bytes N --nonce X [--driver-dir D] [--ipc-early 0|1]
 *          --gpus BUS0,BUS1,... --jobs L0,L1,P0.1,P1.0,S0.0,S0.1,I0.1,...  (or `-`: on stdin)
 *          (ce mode: L<g> local control copy, P<a>.<b> pair a->b; sm mode: S<a>.<b>, ipc mode:
 *           I<a>.<b>, the local control when a == b)
 *   lines: hello 1 <pid> t=<ms>
 *          init ok version=<cuda driver version> count=<cuda devices> ms=<cuInit ms>
 *          init fail <error name> <message>             (fatal: the worker exits 3)
 *          map <gpu> <cuda ordinal|-1>
 *          step ctx <gpu>            ctx <gpu> ok ms=<ms> | ctx <gpu> fail <error name>
 *                                    (several GPUs: every `step ctx` first, then each `ctx`
 *                                    line as its thread ends, in any order)
 *          step local <gpu>          result local <gpu> <verdict> <fields...>
 *          step pair <a> <b>         result pair <a> <b> <verdict> <fields...>
 *          step sm <a> <b>           result sm <a> <b> <verdict> <fields...>
 *          step ipc <a> <b>          result ipc <a> <b> <verdict> <fields...>
 *          poisoned <error name> reason=<text>   (after a result whose error poisoned the
 *                                    process: no more jobs; the parent starts a fresh worker)
 *          done
 *   fields: access=0|1 us=<copy us> offset=<n> expected=<n> seen=<n> error=<name>
 *           reason=<text to the end of the line>  (always last)
 * Every `step` line starts a deadline that the matching result must meet. GPU numbers are
 * positions in --gpus, which the parent fills with NVML indexes' bus ids. */
#ifndef PS_VERIFY_PROTOCOL_H
#define PS_VERIFY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peerscope/peerscope.h"
#include "worker/protocol.h"

typedef struct ps__job {
  ps_verify_mode mode;
  bool local; /* control within gpu a (a == b) */
  int a, b;
} ps__job;

/* The outcome of one job, as carried by a `result` line. */
typedef struct ps__job_result {
  ps_verdict verdict;
  int access;     /* cuDeviceCanAccessPeer, -1 unknown */
  double copy_us; /* < 0 unknown */
  bool has_corrupt;
  uint64_t offset;
  unsigned expected, seen;
  char error[48];
  char reason[160];
} ps__job_result;

/* Parses "L3", "P0.1", "S0.1", "I2.2". */
bool ps__job_parse(const char *text, ps__job *job);
/* Writes a job's token (the inverse of ps__job_parse). */
void ps__job_token(const ps__job *job, char *out, size_t len);
/* The word of a job's step and result lines: "local", "pair", "sm" or "ipc". */
const char *ps__job_word(const ps__job *job);
/* Parses the fields after the verdict of a result line. */
bool ps__result_parse(const char *verdict, const char *fields, ps__job_result *out);

#endif
