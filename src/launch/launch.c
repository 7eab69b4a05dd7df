/* The launch loop: stream vLLM's log line by line, poll /health until the deadline, stop
 * the whole process group on request or at the deadline, and report how it ended. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "launch/launch_internal.h"

#define LINE_MAX_LEN 4096
#define POLL_MS 100
#define HEALTH_EVERY_MS 500
#define HEALTH_TIMEOUT_MS 500

typedef struct line_buf {
  char text[LINE_MAX_LEN];
  size_t len;
} line_buf;

typedef struct run_state {
  const ps_launch_opts *opts;
  ps_launch_result *result;
  line_buf bufs[2];
  char last[256]; /* vLLM's last log line: where a hang stopped */
} run_state;

static void emit(run_state *st, int stream, const char *line) {
  if (stream > 0) {
    ps_log_classify_line(&st->result->summary, line);
    ps__strlcpy(st->last, line, sizeof(st->last));
  }
  if (st->opts->on_line) st->opts->on_line(st->opts->user, stream, line);
}

static void event(run_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(run_state *st, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  emit(st, 0, text);
}

/* Splits what arrived into lines; an over-long line is passed on in pieces. Carriage
 * returns (tqdm progress bars) end a line too. */
static void take(run_state *st, int stream, const char *data, size_t n) {
  line_buf *b = &st->bufs[stream - 1];
  for (size_t i = 0; i < n; i++) {
    char c = data[i];
    if (c == '\n' || c == '\r' || b->len == LINE_MAX_LEN - 1) {
      if (c != '\n' && c != '\r') b->text[b->len++] = c;
      b->text[b->len] = '\0';
      if (b->len > 0) emit(st, stream, b->text);
      b->len = 0;
    } else {
      b->text[b->len++] = c;
    }
  }
}

static void flush_partial(run_state *st) {
  for (int s = 1; s <= 2; s++) {
    line_buf *b = &st->bufs[s - 1];
    if (b->len == 0) continue;
    b->text[b->len] = '\0';
    emit(st, s, b->text);
    b->len = 0;
  }
}

/* Reads whatever is ready on the pipes for up to wait_ms; closes a pipe at EOF. */
static void pump(run_state *st, ps__vllm_proc *proc, int wait_ms) {
  struct pollfd fds[2] = {{proc->out_fd, POLLIN, 0}, {proc->err_fd, POLLIN, 0}};
  if (proc->out_fd < 0 && proc->err_fd < 0) {
    if (wait_ms > 0) usleep((useconds_t)wait_ms * 1000);
    return;
  }
  if (poll(fds, 2, wait_ms) <= 0) return; /* timeout, or EINTR from a signal: loop again */
  for (int i = 0; i < 2; i++) {
    if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char data[8192];
    ssize_t n = read(fds[i].fd, data, sizeof(data));
    if (n > 0) {
      take(st, i + 1, data, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close(fds[i].fd);
      if (i == 0)
        proc->out_fd = -1;
      else
        proc->err_fd = -1;
    }
  }
}

/* The last value of --host / --port in argv (the user's, when given twice). */
static const char *argv_value(const ps_launch_cmd *cmd, const char *flag, const char *alias) {
  const char *v = NULL;
  size_t n = strlen(flag);
  for (int i = 1; i < cmd->argc; i++) {
    const char *a = cmd->argv[i];
    if (strncmp(a, flag, n) == 0 && a[n] == '=')
      v = a + n + 1;
    else if ((strcmp(a, flag) == 0 || (alias && strcmp(a, alias) == 0)) && i + 1 < cmd->argc)
      v = cmd->argv[i + 1];
  }
  return v;
}

static bool argv_has(const ps_launch_cmd *cmd, const char *flag) {
  for (int i = 1; i < cmd->argc; i++)
    if (strcmp(cmd->argv[i], flag) == 0) return true;
  return false;
}

/* vLLM logs custom all-reduce only when it disables it; say what silence means. */
static void finish_summary(const ps_launch_cmd *cmd, ps_launch_result *r) {
  ps_log_summary *s = &r->summary;
  if (s->custom_all_reduce >= 0) return;
  const char *tp = argv_value(cmd, "--tensor-parallel-size", "-tp");
  if (argv_has(cmd, "--disable-custom-all-reduce")) {
    s->custom_all_reduce = 0;
    ps__strlcpy(s->custom_all_reduce_reason, "--disable-custom-all-reduce was given",
                sizeof(s->custom_all_reduce_reason));
  } else if (r->came_up && tp && atoi(tp) > 1) {
    s->custom_all_reduce = 1;
  }
}

/* Taken ports fail late in vLLM (after the model loads), and a server already there would
 * answer /health for it: check by binding first. Numeric IPv4 hosts only; others pass. */
static bool port_taken(const char *host, int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  bool taken = bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno == EADDRINUSE;
  close(fd);
  return taken;
}

static bool group_gone(pid_t pgid) { return kill(-pgid, 0) != 0 && errno == ESRCH; }

/* What the watch loop learnt about the run. */
typedef struct vllm_watch {
  const char *host;
  int port;
  bool hung, user_stop;
  int status; /* the leader's wait status */
} vllm_watch;

/* Asks a running vLLM to stop (SIGTERM), then SIGKILL after the grace period. */
typedef struct stopper {
  bool stopping, killed;
  double stop_at, grace;
} stopper;

static void stop_step(run_state *st, ps__vllm_proc *proc, stopper *s, double now) {
  if (s->stopping && s->stop_at == 0) {
    ps__vllm_signal(proc, SIGTERM);
    s->stop_at = now + s->grace;
  }
  if (s->stopping && !s->killed && now >= s->stop_at) {
    event(st, "vLLM still running %.0f s after SIGTERM: SIGKILL", s->grace / 1000);
    ps__vllm_signal(proc, SIGKILL);
    s->killed = true;
  }
}

/* Streams the log, polls /health until it answers, stops vLLM on request or at the deadline,
 * and returns when the leader has exited. */
static void watch_until_exit(run_state *st, const ps_launch_cmd *cmd, ps__vllm_proc *proc,
                             vllm_watch *w) {
  const ps_launch_opts *opts = st->opts;
  ps_launch_result *result = st->result;
  double t0 = ps__now_ms();
  double deadline = t0 + 1000.0 * (opts->health_timeout_s > 0 ? opts->health_timeout_s : 900);
  double next_health = t0 + HEALTH_EVERY_MS;
  stopper s = {.grace = 1000.0 * (opts->stop_grace_s > 0 ? opts->stop_grace_s : 15)};
  for (;;) {
    double now = ps__now_ms();
    if (!s.stopping && opts->stop && __atomic_load_n(opts->stop, __ATOMIC_SEQ_CST)) {
      s.stopping = w->user_stop = true;
      event(st, "stopping vLLM (process group %d): SIGTERM, SIGKILL after %.0f s", (int)proc->pid,
            s.grace / 1000);
    } else if (!s.stopping && !result->came_up && now >= deadline) {
      s.stopping = w->hung = true;
      event(st, "no answer from %s/health after %d s: stopping vLLM", result->url,
            (int)((now - t0) / 1000));
    }
    stop_step(st, proc, &s, now);
    pump(st, proc, POLL_MS);
    if (ps__vllm_reaped(proc, &w->status)) return;
    if (result->came_up || s.stopping || ps__now_ms() < next_health) continue;
    if (ps__health_get(w->host, w->port, HEALTH_TIMEOUT_MS) == 1) {
      result->came_up = true;
      result->up_after_s = (ps__now_ms() - t0) / 1000;
      event(st, "ready %s (after %.1f s)", result->url, result->up_after_s);
      finish_summary(cmd, result);
      if (opts->on_ready) opts->on_ready(opts->user, result);
    }
    next_health = ps__now_ms() + HEALTH_EVERY_MS;
  }
}

/* The leader is gone: take its workers with it, then read what they had written. */
static void reap_group(run_state *st, ps__vllm_proc *proc) {
  pid_t pgid = proc->pid;
  kill(-pgid, SIGKILL);
  for (double end = ps__now_ms() + 3000; ps__now_ms() < end;) {
    pump(st, proc, 50);
    if (proc->out_fd < 0 && proc->err_fd < 0 && group_gone(pgid)) break;
  }
  flush_partial(st);
  ps__vllm_cleanup(proc);
}

static void set_outcome(run_state *st, const vllm_watch *w) {
  ps_launch_result *result = st->result;
  const ps_launch_opts *opts = st->opts;
  int status = w->status;
  result->exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                      : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                            : 1;
  if (w->hung) {
    result->outcome = PS_LAUNCH_HUNG;
    if (result->summary.failure == PS_LOG_FAIL_NONE) {
      result->summary.failure = PS_LOG_FAIL_HANG;
      snprintf(result->summary.failure_line, sizeof(result->summary.failure_line),
               "no answer from %s/health within %d s; vLLM's last line: %s", result->url,
               opts->health_timeout_s > 0 ? opts->health_timeout_s : 900,
               st->last[0] ? st->last : "(none)");
    }
  } else if (w->user_stop) {
    result->outcome = result->came_up ? PS_LAUNCH_STOPPED : PS_LAUNCH_INTERRUPTED;
  } else {
    result->outcome = PS_LAUNCH_EXITED;
  }
}

static ps_status run_into(ps_ctx *ctx, const ps_launch_cmd *cmd, const ps_launch_opts *opts,
                          ps_launch_result *result) {
  if (!cmd || !opts || !result || cmd->argc < 1)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "command, options and result are required");
  ps_launch_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_launch_opts");
  if (ost != PS_OK) return ost;
  opts = &o;
  memset(result, 0, sizeof(*result));
  ps__log_summary_init(&result->summary);
  if (!ps__health_available())
    return ps__fail(ctx, PS_ERR_INTERNAL,
                    "this peerscope was built without libcurl (PS_WITH_CURL=OFF), so launch "
                    "cannot watch vLLM's /health; rebuild with libcurl4-openssl-dev");
  run_state *st = ps__calloc(1, sizeof(*st));
  if (!st) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  st->opts = opts;
  st->result = result;

  const char *host = argv_value(cmd, "--host", NULL);
  const char *port_text = argv_value(cmd, "--port", NULL);
  int port = port_text ? atoi(port_text) : 8000;
  if (!host) host = "127.0.0.1";
  snprintf(result->url, sizeof(result->url), "http://%s:%d", host, port);

  if (port_taken(host, port)) {
    result->outcome = PS_LAUNCH_PORT_IN_USE;
    result->summary.failure = PS_LOG_FAIL_PORT_IN_USE;
    snprintf(result->summary.failure_line, sizeof(result->summary.failure_line),
             "%s:%d is already in use", host, port);
    ps__free(st);
    return PS_OK;
  }
  ps__vllm_proc proc;
  int rc = ps__vllm_spawn(cmd, &proc);
  if (rc == ENOENT || rc == EACCES) {
    result->outcome = PS_LAUNCH_NOT_FOUND;
    ps__free(st);
    return PS_OK;
  }
  if (rc != 0) {
    ps__free(st);
    return ps__fail(ctx, PS_ERR_IO, "cannot start %s: %s", cmd->argv[0], strerror(rc));
  }
  ps__health_global_init();
  vllm_watch w = {.host = host, .port = port};
  watch_until_exit(st, cmd, &proc, &w);
  reap_group(st, &proc);
  set_outcome(st, &w);
  finish_summary(cmd, result);
  ps__free(st);
  return PS_OK;
}

ps_status ps_launch_run(ps_ctx *ctx, const ps_launch_cmd *cmd, const ps_launch_opts *opts,
                        ps_launch_result **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_launch_run: out is NULL");
  *out = NULL;
  ps_launch_result *result = ps__calloc(1, sizeof(*result));
  if (!result) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = run_into(ctx, cmd, opts, result);
  if (st != PS_OK) {
    ps__free(result);
    return st;
  }
  *out = result;
  return PS_OK;
}

void ps_launch_result_free(ps_launch_result *result) { ps__free(result); }
