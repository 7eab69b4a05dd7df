/* Shared parts of the peerscope commands: exit codes, option helpers, and getting a
 * verified report (live, from a fixture, or from the bundled example machine). */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "peerscope/peerscope.h"

/* Stable exit codes (documented in --help and the README). */
enum {
  EXIT_VERIFIED = 0,  /* every pair verified, or no P2P claimed and none found */
  EXIT_FINDING = 1,   /* a pair failed verification */
  EXIT_USAGE = 2,     /* bad command line */
  EXIT_BAD_INPUT = 3, /* a file given to peerscope is malformed */
  EXIT_NO_DRIVER = 4, /* the GPU driver is unavailable */
  EXIT_INTERNAL = 5,  /* anything else */
  /* 6 is `peerscope cluster`'s: the Ray cluster could not be reached */
  EXIT_NETWORK = 7 /* the Hugging Face Hub could not answer for a model id */
};

#define CLI_MAX_GPUS 1024

/* The drivers a command runs on, as chosen by cli_load_report or cli_replay_open: the fake
 * drivers' directory and the fixture they play, "" for the live driver. Handed on to the
 * library in every call's options (driver_dir, fixture); the environment is left alone. */
typedef struct cli_drivers {
  char dir[4096];
  char fixture[4096];
} cli_drivers;

/* NULL for "", for the options' "not given". */
static inline const char *cli_opt(const char *s) { return s && s[0] ? s : NULL; }

typedef struct cli_source {
  const char *fixture; /* --fixture FILE */
  bool live;           /* --live: never fall back to the bundled example */
  bool verify;         /* run the worker */
  bool refresh;
  int timeout_ms;
  unsigned modes; /* --modes: PS_MODE_BIT of each verification mode; 0 = the default */
  bool quiet;
  bool all_gpus;       /* --all-gpus: the whole machine, whatever CUDA_VISIBLE_DEVICES says */
  cli_drivers drivers; /* set by cli_load_report */
} cli_source;

typedef struct cli_selection {
  const char *text; /* --gpus as given */
  int gpus[CLI_MAX_GPUS];
  int count; /* 0 = all */
} cli_selection;

/* Prints "peerscope <cmd>: message" to stderr and returns code. */
int cli_fail(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a non-negative integer option value; false if not one. */
bool cli_parse_int(const char *text, int min, int max, int *out);

/* Probes and (unless source->verify is false) verifies. On success *out is the report,
 * source->drivers the drivers it used, and *notice may hold a line to print first (bundled
 * example). Returns an exit code. */
int cli_load_report(const char *cmd, cli_source *source, const cli_selection *sel, ps_report **out,
                    char *notice, size_t notice_len);

/* Resolves --gpus (indexes, ranges, UUIDs) against the report; exit code. Where the report
 * records the caller's CUDA_VISIBLE_DEVICES, --gpus must stay within the GPUs it allows, and
 * without --gpus the selection is those GPUs. */
int cli_resolve_gpus(const char *cmd, const ps_report *report, cli_selection *sel);

bool cli_selected(const cli_selection *sel, int gpu);

/* --replay ARCHIVE: extracts a capture (refusing hostile ones, exit 3) and loads its recorded
 * report (no probing, no verification); with `drivers` (may be NULL), chooses the fake drivers
 * playing its fixture. The caller frees *cap (ps_capture_free removes the temporary
 * directory). Exit code. */
int cli_replay_open(const char *cmd, const char *archive, cli_drivers *drivers, ps_capture **cap,
                    ps_report **out);

/* Terminal symbols: ✓/✗ or, with --ascii, OK/FAIL. */
typedef struct cli_style {
  bool ascii;
} cli_style;

int cmd_check(int argc, char **argv);
int cmd_topo(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_launch(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_web(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
/* peerscope cluster's own help and command check, without Python (cluster_usage.c): an exit
 * code when it answered (help, no or unknown command), -1 when Python must run the command. */
int cli_cluster_usage(int argc, char **argv);

#endif
