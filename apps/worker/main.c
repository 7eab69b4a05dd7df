/* peerscope-worker: runs the CUDA side of verification in its own process (protocol.h). */
#include "verify/protocol.h"

int main(int argc, char **argv) { return ps__worker_main(argc, argv); }
