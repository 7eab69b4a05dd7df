/* What every peerscope-worker mode shares on the wire. The parent starts the worker with the
 * job in argv and reads one text line per event from its stdout:
 *
 *   argv:  [--mode bench] [--protocol 1] [--driver-dir D] --gpus BUS0,BUS1,... --jobs J0,J1,...
 *          and the mode's own options (src/verify/protocol.h, src/bench/bench_worker.c);
 *          `--gpus - --jobs -`: both lists come on stdin, one line each, read after cuInit
 *          (a worker started while the parent still probes)
 *   lines: hello 1 <pid> t=<CLOCK_MONOTONIC ms, when it was written>
 *          init ok version=<cuda driver version> count=<cuda devices> <the mode's fields>
 *          init fail <error name> <message>             (fatal: the worker exits 3)
 *          map <gpu> <cuda ordinal|-1>
 *          step ...  /  result ...                      (the mode's)
 *          done
 *
 * GPU numbers are positions in --gpus. Every `step` line arms a deadline in the parent
 * (src/worker/watchdog.h); the worker never decides about deadlines itself. */
#ifndef PS_WORKER_PROTOCOL_H
#define PS_WORKER_PROTOCOL_H

#define PS_WORKER_PROTOCOL 1
#define PS_WORKER_EXIT_USAGE 2
#define PS_WORKER_EXIT_INIT_FAILED 3
#define PS_WORKER_EXIT_PARENT_GONE 4

#endif
