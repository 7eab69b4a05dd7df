/* The listening socket and the daemon on it. The socket is ours (MHD_OPTION_LISTEN_SOCKET):
 * TCP on cfg.listen:port, or with --listen unix:PATH a unix socket created with mode 0600, so
 * that only its owner can connect. The daemon: epoll on a few threads, suspendable
 * connections, an idle timeout of seconds and caps on connections, in all and per client. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "web/http_internal.h"

/* Room for the connections: the soft limit on open files raised to the hard one; the
 * connection cap stays below what is left. */
static int connection_room(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t room = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
  return room > 1 << 20 ? 1 << 20 : (int)room;
}

static void fill_limits(web_http *h) {
  const ps_web_config *c = ps_web_config_of(h->w);
  ps_web_limits *l = &h->limits;
  *l = c->limits;
  int room = connection_room();
  if (l->connections <= 0) l->connections = 4096;
  if (l->connections > room) l->connections = room;
  /* On loopback and a unix socket every local process shares one address (and may pick any
   * 127.x source address): a per-client cap there would only let one process lock out the
   * rest. */
  bool shared = c->loopback || c->unix_path[0];
  if (l->per_client <= 0) l->per_client = shared ? 0 : 64;
  if (l->streams <= 0) l->streams = 64;
  if (l->idle_s <= 0) l->idle_s = 5;
  if (l->threads <= 0) l->threads = 4;
}

/* A stale socket file (nothing accepts on it) may go; anything else at the path stays. */
static int clear_unix_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISSOCK(st.st_mode)) return EEXIST;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int live = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  if (fd >= 0) close(fd);
  if (live) return EADDRINUSE;
  return unlink(path) == 0 ? 0 : errno;
}

static int bind_unix(const char *path, int *fd) {
  int e = clear_unix_path(path);
  if (e) return e;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
  *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (*fd < 0) return errno;
  mode_t old = umask(0177); /* created 0600: never a moment when others could connect */
  int rc = bind(*fd, (struct sockaddr *)&a, sizeof(a));
  umask(old);
  if (rc != 0 || chmod(path, 0600) != 0) return errno;
  return 0;
}

static int bind_ip(const ps_web_config *cfg, int *fd) {
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)cfg->port)};
  bool is_v6 = inet_pton(AF_INET6, cfg->listen, &v6.sin6_addr) == 1;
  if (!is_v6 && inet_pton(AF_INET, cfg->listen, &v4.sin_addr) != 1) return EINVAL;
  *fd = socket(is_v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (*fd < 0) return errno;
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (is_v6) setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  int rc = is_v6 ? bind(*fd, (struct sockaddr *)&v6, sizeof(v6))
                 : bind(*fd, (struct sockaddr *)&v4, sizeof(v4));
  return rc == 0 ? 0 : errno;
}

struct MHD_Daemon *ps__http_start(web_http *h, MHD_AccessHandlerCallback on_request,
                                  MHD_RequestCompletedCallback on_completed, int *code, char *err,
                                  size_t err_len) {
  const ps_web_config *cfg = ps_web_config_of(h->w);
  fill_limits(h);
  int fd = -1;
  *code = cfg->unix_path[0] ? bind_unix(cfg->unix_path, &fd) : bind_ip(cfg, &fd);
  if (!*code && listen(fd, 1024) != 0) *code = errno;
  struct MHD_Daemon *d = NULL;
  if (!*code) {
    /* No MHD_USE_ERROR_LOG: a failure is reported once, by the caller, in one line. */
    d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)h->limits.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)h->limits.idle_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->limits.connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)h->limits.per_client, MHD_OPTION_END);
    if (!d) *code = errno ? errno : EINVAL;
  }
  if (!d) {
    if (fd >= 0) close(fd);
    if (cfg->unix_path[0] && *code != EEXIST && *code != EADDRINUSE) unlink(cfg->unix_path);
    if (cfg->unix_path[0])
      snprintf(err, err_len, "cannot listen on unix:%s: %s", cfg->unix_path,
               *code == EEXIST ? "the path exists and is not a socket" : strerror(*code));
    else
      snprintf(err, err_len, "cannot listen on %s port %d: %s", cfg->listen, cfg->port,
               strerror(*code));
  }
  h->d = d;
  return d;
}

void ps__http_stop(web_http *h) {
  const ps_web_config *cfg = ps_web_config_of(h->w);
  /* Quiesced, the daemon accepts no more and hands the socket back to be closed here. */
  MHD_socket fd = MHD_quiesce_daemon(h->d);
  MHD_stop_daemon(h->d);
  h->d = NULL;
  if (fd >= 0) close(fd);
  if (cfg->unix_path[0]) unlink(cfg->unix_path);
}
