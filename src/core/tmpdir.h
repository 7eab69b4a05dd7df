/* Temporary directories and files this process made (a replayed capture's extraction, a Hub
 * file being written): removed on SIGINT, SIGTERM and SIGHUP as well as by their owner, so an
 * interrupted run leaves nothing in /tmp or half-written in a cache. The handlers are installed
 * only where the signal's action is still the default (an application's own handler, or SIG_IGN
 * under nohup, is left alone); they remove every registered directory with async-signal-safe calls
 * only, then die of the signal as before. */
#ifndef PS_CORE_TMPDIR_H
#define PS_CORE_TMPDIR_H

#include <stdbool.h>

/* Directories registered at once; more are still made, just not removed on a signal. */
#define PS_TMPDIR_SLOTS 16

/* mkdtemp(templ) and ps__tmpdir_register, with SIGINT, SIGTERM and SIGHUP blocked in between:
 * a signal that comes right after the directory appears is handled once it is registered.
 * NULL (errno set) when mkdtemp fails; the directory stays even when no slot was free. */
char *ps__tmpdir_make(char *templ);

/* mkstemp(templ) and ps__tmpdir_register, signals blocked in between as above: a file being
 * written beside its final name (renamed over it when complete) is removed on a signal too.
 * The fd, or -1 (errno set). The owner unregisters it once renamed or removed. */
int ps__tmpfile_make(char *templ);

/* Registers `path` (absolute, or relative to a working directory that does not change);
 * false when every slot is taken or the path is too long. */
bool ps__tmpdir_register(const char *path);
/* Forgets `path` (before its owner removes it). */
void ps__tmpdir_unregister(const char *path);
/* Removes the tree at `path` (no symlink followed) with async-signal-safe calls only. */
void ps__tmpdir_remove_tree(const char *path);

#endif
