/* The options every command that reads a machine shares: where the report comes from
 * (--fixture, --live, --refresh, --timeout-ms, --modes, --no-verify) and which GPUs (--gpus). One
 * table and one handler, so the commands cannot drift apart (plan_args.h does the same for
 * the plan request). */
#ifndef PS_CLI_SOURCE_ARGS_H
#define PS_CLI_SOURCE_ARGS_H

#include <getopt.h>

#include "cli.h"

/* getopt ids of the shared options; a command's own ids stay below this. */
#define CLI_SOURCE_OPTION_BASE 2000

enum {
  CLI_SRC_FIXTURE = 1u << 0,   /* --fixture FILE */
  CLI_SRC_LIVE = 1u << 1,      /* --live */
  CLI_SRC_REFRESH = 1u << 2,   /* --refresh */
  CLI_SRC_TIMEOUT = 1u << 3,   /* --timeout-ms N */
  CLI_SRC_NO_VERIFY = 1u << 4, /* --no-verify */
  CLI_SRC_GPUS = 1u << 5,      /* --gpus LIST (and --all-gpus) */
  CLI_SRC_ALL_GPUS = 1u << 6,  /* --all-gpus: ignore the caller's CUDA_VISIBLE_DEVICES */
  CLI_SRC_MODES = 1u << 7,     /* --modes LIST */
  CLI_SRC_MACHINE =
      CLI_SRC_FIXTURE | CLI_SRC_LIVE | CLI_SRC_REFRESH | CLI_SRC_TIMEOUT | CLI_SRC_MODES
};
#define CLI_SOURCE_MAX_OPTIONS 8

/* Appends the getopt entries of the shared options in `which` to out[n..cap); returns the new
 * count. The caller adds the terminating zero entry. */
int cli_source_options(struct option *out, int n, int cap, unsigned which);

/* Handles shared option `id` with `arg` into source (and sel for --gpus, which may be NULL
 * when the command has no --gpus). Returns -1 when `id` is not a shared option, else an exit
 * code (0 = fine). */
int cli_source_option(const char *cmd, int id, const char *arg, cli_source *source,
                      cli_selection *sel);

/* The one message for what getopt refused: "option '--x' needs a value" or "unknown option
 * '--x' (see peerscope CMD --help)". Returns EXIT_USAGE. */
int cli_option_error(const char *cmd, char **argv);

#endif
