#include "source_args.h"

#include <string.h>

enum {
  O_FIXTURE = CLI_SOURCE_OPTION_BASE,
  O_LIVE,
  O_REFRESH,
  O_TIMEOUT_MS,
  O_NO_VERIFY,
  O_GPUS,
  O_ALL_GPUS,
  O_MODES
};

static const struct {
  unsigned bit;
  struct option opt;
} shared[] = {
    {CLI_SRC_GPUS, {"gpus", required_argument, 0, O_GPUS}},
    {CLI_SRC_GPUS | CLI_SRC_ALL_GPUS, {"all-gpus", no_argument, 0, O_ALL_GPUS}},
    {CLI_SRC_NO_VERIFY, {"no-verify", no_argument, 0, O_NO_VERIFY}},
    {CLI_SRC_REFRESH, {"refresh", no_argument, 0, O_REFRESH}},
    {CLI_SRC_TIMEOUT, {"timeout-ms", required_argument, 0, O_TIMEOUT_MS}},
    {CLI_SRC_FIXTURE, {"fixture", required_argument, 0, O_FIXTURE}},
    {CLI_SRC_LIVE, {"live", no_argument, 0, O_LIVE}},
    {CLI_SRC_MODES, {"modes", required_argument, 0, O_MODES}},
};

int cli_source_options(struct option *out, int n, int cap, unsigned which) {
  for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]) && n < cap; i++)
    if (which & shared[i].bit) out[n++] = shared[i].opt;
  return n;
}

int cli_source_option(const char *cmd, int id, const char *arg, cli_source *source,
                      cli_selection *sel) {
  switch (id) {
  case O_FIXTURE: source->fixture = arg; return EXIT_VERIFIED;
  case O_LIVE: source->live = true; return EXIT_VERIFIED;
  case O_REFRESH: source->refresh = true; return EXIT_VERIFIED;
  case O_NO_VERIFY: source->verify = false; return EXIT_VERIFIED;
  case O_ALL_GPUS: source->all_gpus = true; return EXIT_VERIFIED;
  case O_TIMEOUT_MS:
    if (!cli_parse_int(arg, 1, 3600000, &source->timeout_ms))
      return cli_fail(cmd, EXIT_USAGE, "--timeout-ms: '%s' is not a positive integer", arg);
    return EXIT_VERIFIED;
  case O_MODES:
    if (!ps_modes_parse(NULL, arg, &source->modes))
      return cli_fail(cmd, EXIT_USAGE, "--modes: '%s' is not a list of ce, sm, ipc (or all)", arg);
    return EXIT_VERIFIED;
  case O_GPUS:
    if (!sel) return -1;
    sel->text = arg;
    return EXIT_VERIFIED;
  default: return -1;
  }
}

int cli_option_error(const char *cmd, char **argv) {
  /* getopt_long leaves optopt 0 for an unknown long option and sets it to the option's id when
   * a known one lacks its value; an unknown short option is "-x". */
  const char *opt = argv[optind - 1];
  if (optopt && strncmp(opt, "--", 2) == 0)
    return cli_fail(cmd, EXIT_USAGE, "option '%s' needs a value", opt);
  return cli_fail(cmd, EXIT_USAGE, "unknown option '%s' (see peerscope %s --help)", opt, cmd);
}
