/* The verification's worker mode: `peerscope-worker` without --mode (apps/worker/main.c).
 * Runs only inside peerscope-worker; never linked into libpeerscope. */
#ifndef PS_VERIFY_WORKER_H
#define PS_VERIFY_WORKER_H

int ps__verify_worker_main(int argc, char **argv);

#endif
