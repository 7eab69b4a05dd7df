/* The registry of tmpdir.h (directories and files) and its signal handler. */
#include "core/tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PATH_LEN 512
#define MAX_DEPTH 64

static char paths[PS_TMPDIR_SLOTS][PATH_LEN];
/* A slot's path is complete before `used` is set (release), and `used` is cleared before it
 * changes: the handler, on any thread, reads a slot only while it is set (acquire). Lock-free
 * atomics are safe in a handler; the mutex only orders registering threads. */
static int used[PS_TMPDIR_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;
static const int signals[] = {SIGINT, SIGTERM, SIGHUP};

/* What getdents64 returns (the kernel's struct linux_dirent64). */
struct dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* Removes `name` under `parent`: a file or link at once, a directory after its entries.
 * Only openat, getdents64, lseek, unlinkat and close: all safe in a signal handler. */
static void remove_at(int parent, const char *name, int depth) {
  if (unlinkat(parent, name, 0) == 0 || (errno != EISDIR && errno != EPERM)) return;
  if (depth >= MAX_DEPTH) return;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  char buf[1024] __attribute__((aligned(8)));
  /* Removing entries while reading may hide others from the same pass: read again from the
   * start until a pass finds nothing to remove. */
  for (int pass = 0; pass < 1000; pass++) {
    bool removed = false;
    lseek(fd, 0, SEEK_SET);
    for (;;) {
      long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
        off += d->d_reclen;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
        remove_at(fd, d->d_name, depth + 1);
        removed = true;
      }
    }
    if (!removed) break;
  }
  close(fd);
  unlinkat(parent, name, AT_REMOVEDIR);
}

void ps__tmpdir_remove_tree(const char *path) {
  if (path && path[0]) remove_at(AT_FDCWD, path, 0);
}

static void on_signal(int sig) {
  int saved = errno;
  for (int i = 0; i < PS_TMPDIR_SLOTS; i++)
    if (__atomic_exchange_n(&used[i], 0, __ATOMIC_ACQ_REL)) ps__tmpdir_remove_tree(paths[i]);
  /* Die of the signal as if no handler had run: the default action, raised again (it is
   * delivered when this handler returns and unblocks it). */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  raise(sig);
  errno = saved;
}

static void install(void) {
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
    struct sigaction old, act;
    if (sigaction(signals[i], NULL, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_signal;
    sigemptyset(&act.sa_mask);
    for (size_t j = 0; j < sizeof(signals) / sizeof(signals[0]); j++)
      sigaddset(&act.sa_mask, signals[j]); /* one clean-up at a time */
    sigaction(signals[i], &act, NULL);
  }
}

bool ps__tmpdir_register(const char *path) {
  if (!path || strlen(path) >= PATH_LEN) return false;
  bool ok = false;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < PS_TMPDIR_SLOTS && !ok; i++)
    if (!__atomic_load_n(&used[i], __ATOMIC_ACQUIRE)) {
      memcpy(paths[i], path, strlen(path) + 1);
      __atomic_store_n(&used[i], 1, __ATOMIC_RELEASE);
      ok = true;
    }
  if (ok && !installed) {
    install();
    installed = true;
  }
  pthread_mutex_unlock(&lock);
  return ok;
}

static void block_signals(sigset_t *old) {
  sigset_t block;
  sigemptyset(&block);
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
    sigaddset(&block, signals[i]);
  pthread_sigmask(SIG_BLOCK, &block, old);
}

char *ps__tmpdir_make(char *templ) {
  sigset_t old;
  block_signals(&old);
  char *dir = mkdtemp(templ);
  int saved = errno;
  if (dir) ps__tmpdir_register(dir);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return dir;
}

int ps__tmpfile_make(char *templ) {
  sigset_t old;
  block_signals(&old);
  int fd = mkstemp(templ);
  int saved = errno;
  if (fd >= 0) ps__tmpdir_register(templ);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return fd;
}

void ps__tmpdir_unregister(const char *path) {
  if (!path) return;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < PS_TMPDIR_SLOTS; i++)
    if (__atomic_load_n(&used[i], __ATOMIC_ACQUIRE) && strcmp(paths[i], path) == 0) {
      __atomic_store_n(&used[i], 0, __ATOMIC_RELEASE);
      break;
    }
  pthread_mutex_unlock(&lock);
}
