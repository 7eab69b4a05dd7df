/* The verification's worker modes: `peerscope-worker` without --mode, and its ipc peer
 * (apps/worker/main.c).
 * Runs only inside peerscope-worker; never linked into libpeerscope. */
#ifndef PS_VERIFY_WORKER_H
#define PS_VERIFY_WORKER_H

int ps__verify_worker_main(int argc, char **argv);
/* The second process of the ipc mode: `peerscope-worker --mode ipc-peer`, started by a
 * verification worker with a socket on its stdin and stdout (src/verify/ipc_peer.c). */
int ps__verify_ipc_peer_main(int argc, char **argv);

#endif
