/* The worker-main skeleton: what every peerscope-worker mode does around its jobs (argv,
 * `hello`, the driver, mapping bus ids to CUDA ordinals, the job loop, release). A mode (the
 * verification's pair tests, src/verify/worker.c; the benchmarks, src/bench/bench_worker.c)
 * plugs in through ps__worker_mode. Runs only inside peerscope-worker; never linked into
 * libpeerscope. */
#ifndef PS_WORKER_MAIN_H
#define PS_WORKER_MAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "drv/cuda.h"
#include "worker/protocol.h"

typedef struct ps__worker_gpu {
  char bus_id[32];
  int ordinal; /* CUDA ordinal, -1 when CUDA does not see this GPU */
} ps__worker_gpu;

/* The state every mode shares; a mode's own state starts with it (`ps__worker base;`). */
typedef struct ps__worker {
  ps__cuda cuda;
  const char *driver_dir;
  int gpu_count;
  ps__worker_gpu *gpus; /* --gpus, in order */
  int job_count;
  char **jobs; /* --jobs tokens, in order */
  /* Set by a mode's job when the process can do no more CUDA work (a sticky error): the
   * jobs left are not run and nothing is released through the driver; the parent starts a
   * fresh worker for them. */
  bool stop;
} ps__worker;

typedef struct ps__worker_mode {
  const char *usage;    /* on stderr when the arguments are unusable */
  const char *job_word; /* "job", "bench job": the stderr line for a malformed token */
  int max_gpus, max_jobs;
  /* One of the mode's own options; false when the name is not one. */
  bool (*option)(ps__worker *w, const char *name, const char *value);
  /* After argv: whether the mode's options are usable. */
  bool (*valid)(ps__worker *w);
  /* After `hello`: the mode's memory; false (having written `init fail`, or not) ends it. */
  bool (*prepare)(ps__worker *w);
  /* Optional, after the driver library opened and before cuInit: more entry points; false
   * after writing `init fail`. */
  bool (*opened)(ps__worker *w);
  /* After cuInit: whatever the mode opens first (NCCL) and its fields of `init ok`. */
  void (*started)(ps__worker *w, double init_ms, char *fields, size_t len);
  /* Runs job index (its token); false when the token is malformed (the worker exits 2). */
  bool (*run)(ps__worker *w, int index, const char *token);
  /* After the jobs, when the driver started: frees what they set up (contexts, NCCL); the
   * driver is closed after. */
  void (*release)(ps__worker *w);
  /* Last, whatever happened: frees prepare's memory. */
  void (*free_host)(ps__worker *w);
} ps__worker_mode;

/* The whole worker: returns its exit code (0, PS_WORKER_EXIT_USAGE, ..._INIT_FAILED). */
int ps__worker_run(ps__worker *w, const ps__worker_mode *mode, int argc, char **argv);

/* Writes one protocol line (with its newline) to stdout in a single write; exits the worker
 * when the parent has gone. Lines longer than 1 KiB are cut. */
void ps__worker_emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
