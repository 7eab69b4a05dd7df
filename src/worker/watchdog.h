/* The parent's side of one worker run: spawn it, read its protocol lines, and kill it when a
 * deadline passes. One loop for every kind of job; what a line means, and what a hang or an
 * early death does to the results, is the caller's (verify.c: per-pair steps, bench.c:
 * measurements), through callbacks. */
#ifndef PS_WORKER_WATCHDOG_H
#define PS_WORKER_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/spawn.h"

typedef struct ps__watch {
  ps__spawned child;
  double spawn_ms;    /* ps__now_ms() just before the spawn */
  double deadline_ms; /* moved by the line callback as steps start and end */
  bool finished;      /* `done` seen */
  char err_tail[256]; /* the last line the worker wrote on stderr */
  char line[2048];
  size_t line_len;
} ps__watch;

/* The worker's command line: path, the mode's options, then the common ones (protocol.h). */
typedef struct ps__worker_cmd {
  const char *path;           /* peerscope-worker */
  const char *const *options; /* the mode's NAME VALUE pairs, NULL-terminated; may be NULL */
  const char *driver_dir;     /* --driver-dir, or NULL */
  const char *gpus, *jobs;    /* --gpus and --jobs, comma-joined (arglist.h); NULL: later */
  const char *const *env;     /* NAME=value entries replacing the caller's; may be NULL */
  const char *fixture;        /* a fixture for the fake drivers: PEERSCOPE_FIXTURE in the worker's
                                 own environment (never the caller's); NULL = none */
  bool caller_devices;        /* keep the caller's CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER
                                 (ps__worker_spawn); false: every GPU, PCI order */
} ps__worker_cmd;

typedef struct ps__watch_ops {
  /* Every line but `done`, without its newline. */
  void (*line)(void *user, ps__watch *w, const char *line);
  /* The deadline passed: record what hung. The worker is killed after. */
  void (*deadline)(void *user, ps__watch *w);
  /* stdout closed before `done`; status is the reaped worker's wait status. */
  void (*exited)(void *user, ps__watch *w, int status);
  /* Optional: true ends the run at once, the worker killed (a caller's fatal error, or a
   * stop asked by another thread). Asked after every wake-up. */
  bool (*quit)(void *user, ps__watch *w);
  /* > 0: wake at least this often to ask quit (a flag no line will announce). */
  int quit_poll_ms;
} ps__watch_ops;

/* Spawns the worker (ps__worker_spawn) and watches it until it ends, is killed at a deadline
 * or quit says so; the first deadline is setup_ms after the spawn. Returns the spawn's errno
 * value: 0 when the worker ran (nothing is called back otherwise). On return the worker is
 * reaped and its descriptors closed. */
int ps__watch_run(ps__watch *w, const ps__worker_cmd *cmd, int setup_ms, const ps__watch_ops *ops,
                  void *user);

/* ps__watch_run in parts, for a worker started before its lists are known: start spawns it
 * (with cmd->gpus or cmd->jobs NULL, as `--gpus - --jobs -`: it reads both lines on stdin
 * after cuInit), send_lists hands them over (false: the worker could not take them; abandon
 * it), loop watches it as ps__watch_run does, its first deadline setup_ms after the spawn.
 * abandon kills a started worker that will not be used. */
int ps__watch_start(ps__watch *w, const ps__worker_cmd *cmd);
bool ps__watch_send_lists(ps__watch *w, const char *gpus, const char *jobs);
void ps__watch_loop(ps__watch *w, int setup_ms, const ps__watch_ops *ops, void *user);
void ps__watch_abandon(ps__watch *w);

#endif
