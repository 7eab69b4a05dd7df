/* The wire between a verification worker and its ipc peer (worker_ipc.c, ipc_peer.c): a
 * SOCK_SEQPACKET unix socket on the peer's stdin and stdout, one text line per record (the
 * peer's protocol lines as ps__worker_emit writes them, the worker's `open` and `quit`
 * commands), and a file descriptor riding along with SCM_RIGHTS where a cuMem export
 * travels, as NCCL passes them. Runs in peerscope-worker only.
 *
 *   worker -> peer:  open legacy <a> <b> <offset> <128 hex digits of the CUDA IPC handle>
 *                    open cumem <a> <b> <offset> <size>      (+ the POSIX file descriptor)
 *                    (offset: GPU a's slice of GPU b's export; the worker sends a window of
 *                    jobs ahead and reads the answers in order)
 *                    quit
 *   peer -> worker:  hello, init ok|fail, map (the skeleton's), then per open:
 *                    result ipc <a> <b> <verdict> <fields> reason=...   (protocol.h's fields)
 *                    done                                              (after quit) */
#ifndef PS_VERIFY_IPC_WIRE_H
#define PS_VERIFY_IPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Sends one record; fd >= 0 goes along (the caller keeps its own copy). */
bool ps__ipc_send(int sock, const char *line, int fd);
/* Receives one record into buf (NUL-terminated, trailing newline removed); *fd is a received
 * descriptor or -1 (extra descriptors are closed). Returns the record's size as sent (> 0),
 * 0 at the end of the stream, -1 on an error. */
ssize_t ps__ipc_recv(int sock, char *buf, size_t cap, int *fd);

#endif
