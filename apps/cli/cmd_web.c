/* peerscope web: the local dashboard (docs/web.md). The server lives in apps/web/; this file
 * parses the options, loads the report like every other command, and runs until Ctrl-C. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "source_args.h"

#if PS_HAVE_WEB
#include <arpa/inet.h>

#include "web/web.h"

static const char web_usage[] =
    "usage: peerscope web [--port N] [--listen ADDR|unix:PATH] [--token TOKEN] [--topology FILE]\n"
    "                     [--vllm PATH] [--no-verify] [--refresh] [--fixture FILE] [--live]\n"
    "                     [--max-connections N] [--max-per-client N] [--max-streams N]\n"
    "                     [--idle-timeout SECONDS] [--all-gpus]\n"
    "\n"
    "A local dashboard in the browser: the GPUs and the verified P2P matrix, the benchmark,\n"
    "a plan form with the vllm serve command, launching vLLM with its live log, the doctor.\n"
    "Works offline: the page is built in.\n"
    "\n"
    "  --port N          port (default 8321)\n"
    "  --listen ADDR     address to bind (default 127.0.0.1); unix:PATH: a unix socket of mode\n"
    "                    0600 that only you can connect to\n"
    "  --token TOKEN     the token (default: a random one, printed once in the start-up URL);\n"
    "                    every API request needs it or the session cookie the URL sets\n"
    "  --topology FILE   start on a saved report or `nvidia-smi topo -m` text (offline mode)\n"
    "  --vllm PATH       the vLLM executable launch may start (default: vllm in PATH)\n"
    "  --no-verify       do not verify the pairs at start\n"
    "  --refresh         ignore cached verdicts\n"
    "  --fixture FILE    play back a described machine through the fake drivers\n"
    "  --live            use this machine's driver or fail; never the bundled example\n"
    "  --max-connections N  open connections in all (default 4096)\n"
    "  --max-per-client N   connections per client address (default 64; none on loopback\n"
    "                    or a unix socket, where every local process has the same address)\n"
    "  --max-streams N   open event streams (launch logs; default 64)\n"
    "  --idle-timeout SECONDS  close a connection idle this long (default 5)\n"
    "  --all-gpus        the whole machine; by default only the GPUs CUDA_VISIBLE_DEVICES\n"
    "                    allows are touched and planned (nvidia-smi's numbers)\n"
    "\n"
    "Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 usage error (or the port is taken),\n"
    "3 bad input file, 4 driver unavailable, 5 internal error.\n";

static volatile int stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

typedef struct web_cli {
  cli_source source;
  cli_selection sel; /* all GPUs: the page selects per request */
  ps_web_config cfg;
  const char *topology;
  bool token_given;
} web_cli;

static bool is_loopback(const char *addr) {
  struct in_addr v4;
  struct in6_addr v6;
  if (inet_pton(AF_INET, addr, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return inet_pton(AF_INET6, addr, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

/* --listen: an IP address, or unix:PATH. */
static int set_listen(web_cli *o, const char *arg) {
  if (strncmp(arg, "unix:", 5) == 0) {
    const char *path = arg + 5;
    if (!path[0] || strlen(path) >= sizeof(o->cfg.unix_path))
      return cli_fail("web", EXIT_USAGE, "--listen unix:PATH: a path of 1 to %zu bytes",
                      sizeof(o->cfg.unix_path) - 1);
    snprintf(o->cfg.unix_path, sizeof(o->cfg.unix_path), "%s", path);
    snprintf(o->cfg.listen, sizeof(o->cfg.listen), "unix");
    return 0;
  }
  if (strlen(arg) >= sizeof(o->cfg.listen))
    return cli_fail("web", EXIT_USAGE, "--listen: '%s' is too long", arg);
  o->cfg.unix_path[0] = '\0';
  snprintf(o->cfg.listen, sizeof(o->cfg.listen), "%s", arg);
  return 0;
}

/* --max-*, --idle-timeout: a positive count. */
static int set_limit(int *field, const char *flag, const char *arg, int max) {
  if (!cli_parse_int(arg, 1, max, field))
    return cli_fail("web", EXIT_USAGE, "%s: '%s' is not a number from 1 to %d", flag, arg, max);
  return 0;
}

/* --token: it goes into HTTP headers and the start-up URL, so letters, digits, '-', '_' only. */
static int set_token(web_cli *o, const char *token) {
  size_t len = strlen(token);
  if (len < 16 || len > PS_WEB_TOKEN_HEX ||
      strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != len)
    return cli_fail("web", EXIT_USAGE, "--token: 16 to %d letters, digits, '-' or '_'",
                    PS_WEB_TOKEN_HEX);
  snprintf(o->cfg.token, sizeof(o->cfg.token), "%s", token);
  o->token_given = true;
  return EXIT_VERIFIED;
}

static int parse(int argc, char **argv, web_cli *o) {
  struct option longs[11 + CLI_SOURCE_MAX_OPTIONS] = {
      {"port", required_argument, 0, 'p'},
      {"listen", required_argument, 0, 'L'},
      {"token", required_argument, 0, 't'},
      {"topology", required_argument, 0, 'T'},
      {"vllm", required_argument, 0, 'v'},
      {"help", no_argument, 0, 'h'},
      {"max-connections", required_argument, 0, 'C'},
      {"max-per-client", required_argument, 0, 'P'},
      {"max-streams", required_argument, 0, 'S'},
      {"idle-timeout", required_argument, 0, 'I'}};
  longs[cli_source_options(longs, 10, 10 + CLI_SOURCE_MAX_OPTIONS,
                           CLI_SRC_FIXTURE | CLI_SRC_LIVE | CLI_SRC_REFRESH | CLI_SRC_NO_VERIFY |
                               CLI_SRC_ALL_GPUS)] = (struct option){0, 0, 0, 0};
  memset(o, 0, sizeof(*o));
  o->source.verify = true;
  o->cfg.port = 8321;
  o->cfg.jobs = true;
  snprintf(o->cfg.listen, sizeof(o->cfg.listen), "127.0.0.1");
  snprintf(o->cfg.vllm, sizeof(o->cfg.vllm), "vllm");
  opterr = 0;
  optind = 1;
  int c, code;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (!cli_parse_int(optarg, 1, 65535, &o->cfg.port))
        return cli_fail("web", EXIT_USAGE, "--port: '%s' is not a port (1-65535)", optarg);
      break;
    case 'L':
      if ((code = set_listen(o, optarg))) return code;
      break;
    case 'C':
      if ((code = set_limit(&o->cfg.limits.connections, "--max-connections", optarg, 1 << 20)))
        return code;
      break;
    case 'P':
      if ((code = set_limit(&o->cfg.limits.per_client, "--max-per-client", optarg, 1 << 20)))
        return code;
      break;
    case 'S':
      if ((code = set_limit(&o->cfg.limits.streams, "--max-streams", optarg, 1 << 20))) return code;
      break;
    case 'I':
      if ((code = set_limit(&o->cfg.limits.idle_s, "--idle-timeout", optarg, 3600))) return code;
      break;
    case 't':
      if ((code = set_token(o, optarg))) return code;
      break;
    case 'T': o->topology = optarg; break;
    case 'v': snprintf(o->cfg.vllm, sizeof(o->cfg.vllm), "%s", optarg); break;
    case 'h': fputs(web_usage, stdout); return -1;
    default:
      code = c == '?' ? -1 : cli_source_option("web", c, optarg, &o->source, NULL);
      if (code) return code < 0 ? cli_option_error("web", argv) : code;
    }
  }
  if (optind < argc) return cli_fail("web", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
  if (o->topology && (o->source.fixture || o->source.live))
    return cli_fail("web", EXIT_USAGE, "--topology excludes --fixture and --live");
  struct in_addr v4;
  struct in6_addr v6;
  if (!o->cfg.unix_path[0] && inet_pton(AF_INET, o->cfg.listen, &v4) != 1 &&
      inet_pton(AF_INET6, o->cfg.listen, &v6) != 1)
    return cli_fail("web", EXIT_USAGE, "--listen: '%s' is not an IP address or unix:PATH",
                    o->cfg.listen);
  o->cfg.loopback = !o->cfg.unix_path[0] && is_loopback(o->cfg.listen);
  if (!o->token_given && !ps_web_make_token(o->cfg.token))
    return cli_fail("web", EXIT_INTERNAL, "cannot read random bytes for the token");
  return 0;
}

static int load(web_cli *o, ps_report **out) {
  if (!o->topology) {
    int code =
        cli_load_report("web", &o->source, &o->sel, out, o->cfg.notice, sizeof(o->cfg.notice));
    /* The server's own verifications and benchmarks run on the same drivers. */
    snprintf(o->cfg.driver_dir, sizeof(o->cfg.driver_dir), "%s", o->source.drivers.dir);
    snprintf(o->cfg.fixture, sizeof(o->cfg.fixture), "%s", o->source.drivers.fixture);
    o->cfg.all_gpus = o->source.all_gpus;
    return code;
  }
  ps_ctx *ctx = ps_ctx_new();
  int code = ctx && ps_import_topology(ctx, o->topology, out) == PS_OK
                 ? EXIT_VERIFIED
                 : cli_fail("web", EXIT_BAD_INPUT, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
  ps_ctx_free(ctx);
  return code;
}

/* Printed once the socket is bound: the address works the moment it is shown. The token is
 * in it, once (Jupyter's way): opening the URL exchanges it for the session cookie. A token
 * given with --token is the caller's: not printed. */
static void announce(void *user) {
  const web_cli *o = user;
  const char *token = o->token_given ? "" : o->cfg.token;
  const char *query = o->token_given ? "" : "?token=";
  if (o->cfg.unix_path[0]) {
    printf("peerscope web: http://localhost/%s%s on unix:%s (Ctrl-C stops)\n", query, token,
           o->cfg.unix_path);
  } else {
    bool v6 = strchr(o->cfg.listen, ':') != NULL;
    printf("peerscope web: http://%s%s%s:%d/%s%s (Ctrl-C stops)\n", v6 ? "[" : "", o->cfg.listen,
           v6 ? "]" : "", o->cfg.port, query, token);
  }
  fflush(stdout);
}

int cmd_web(int argc, char **argv) {
  web_cli o;
  int code = parse(argc, argv, &o);
  if (code) return code < 0 ? EXIT_VERIFIED : code;
  ps_report *r = NULL;
  if ((code = load(&o, &r))) return code;
  ps_web *w = ps_web_new(&o.cfg, r);
  if (!w) {
    ps_report_free(r);
    return cli_fail("web", EXIT_INTERNAL, "out of memory");
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a browser that goes away must not kill the server */
  if (o.cfg.notice[0]) printf("%s\n", o.cfg.notice);
  fflush(stdout);
  char err[256];
  int rc = ps_web_serve(w, &stop_requested, announce, &o, err, sizeof(err));
  ps_web_free(w);
  if (rc) return cli_fail("web", EXIT_USAGE, "%s", err);
  printf("peerscope web: stopped\n");
  return EXIT_VERIFIED;
}

#else

int cmd_web(int argc, char **argv) {
  (void)argc, (void)argv;
  return cli_fail("web", EXIT_USAGE,
                  "this peerscope was built without the web dashboard "
                  "(PS_WITH_WEB=OFF: libmicrohttpd was not available)");
}

#endif
