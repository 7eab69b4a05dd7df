/* peerscope-worker: runs the CUDA side of verification (src/verify/worker.c; its ipc mode's
 * second process is `--mode ipc-peer`, src/verify/ipc_peer.c) or of the benchmarks (`--mode
 * bench`, src/bench/bench_worker.c) in its own process, each a mode of the worker-main skeleton
 * (src/worker/main.c). */
#include <string.h>

#include "bench/worker_internal.h"
#include "verify/worker.h"

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "bench") == 0)
      return ps__bench_worker_main(argc, argv);
    if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "ipc-peer") == 0)
      return ps__verify_ipc_peer_main(argc, argv);
  }
  return ps__verify_worker_main(argc, argv);
}
