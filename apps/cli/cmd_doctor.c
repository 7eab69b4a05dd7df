/* peerscope doctor: why P2P is broken on this machine and how to fix it. Each finding has
 * the evidence read, what it breaks, the fix and a vendor document; exit 1 on an error. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "source_args.h"

static const char doctor_usage[] =
    "usage: peerscope doctor [--json] [--sysfs-root DIR] [--no-verify] [--refresh]\n"
    "                        [--timeout-ms N] [--fixture FILE] [--live]\n"
    "                       [--all-gpus]\n"
    "                        [--replay CAPTURE.tar.gz]\n"
    "\n"
    "Says why peer-to-peer is broken or slow, most serious first: ACS on the PCIe bridges\n"
    "between GPUs, the IOMMU mode, pairs the driver claims but a real transfer failed, driver\n"
    "refusals and BAR1 size, downtrained links, mixed GPUs, contradicting NCCL/vLLM\n"
    "variables, MIG, persistence and displays. Each finding shows the evidence read, what it\n"
    "breaks, the fix (a command or BIOS setting) and a vendor document.\n"
    "\n"
    "  --json            write the findings as JSON (peerscope.doctor/1)\n"
    "  --sysfs-root DIR  read /sys and /proc under DIR (a recorded tree); default\n"
    "                    $PEERSCOPE_SYSFS_ROOT, else this machine's\n"
    "  --no-verify       skip the real transfers (the driver-claim check then cannot run)\n"
    "  --refresh         ignore cached verdicts and test again\n"
    "  --timeout-ms N    deadline for each copy step (default 2000)\n"
    "  --fixture FILE    play back a described machine through the fake drivers\n"
    "  --live            use this machine's driver or fail; never the bundled example\n"
    "  --all-gpus        the whole machine; by default only the GPUs CUDA_VISIBLE_DEVICES\n"
    "                    allows are touched and planned (nvidia-smi's numbers)\n"
    "  --replay FILE     diagnose a peerscope capture (another machine): its recorded\n"
    "                    verdicts, sysfs, /proc, variables and NVML facts; nothing re-run\n"
    "\n"
    "ACS registers are in PCI extended config space, which only root can read.\n"
    "\n"
    "Exit codes: 0 no error found, 1 an error finding, 2 usage error, 3 bad input (fixture,\n"
    "sysfs root), 4 driver unavailable, 5 internal error.\n";

typedef struct doctor_opts {
  cli_source source;
  cli_selection sel;
  const char *sysfs_root;
  const char *replay;
  bool json;
} doctor_opts;

static int parse(int argc, char **argv, doctor_opts *o) {
  struct option longs[5 + CLI_SOURCE_MAX_OPTIONS] = {{"json", no_argument, 0, 'j'},
                                                     {"sysfs-root", required_argument, 0, 's'},
                                                     {"replay", required_argument, 0, 'R'},
                                                     {"help", no_argument, 0, 'h'}};
  longs[cli_source_options(longs, 4, 4 + CLI_SOURCE_MAX_OPTIONS,
                           CLI_SRC_MACHINE | CLI_SRC_NO_VERIFY | CLI_SRC_ALL_GPUS)] =
      (struct option){0, 0, 0, 0};
  memset(o, 0, sizeof(*o));
  o->source.verify = true;
  opterr = 0;
  optind = 1;
  int c, code;
  while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
    switch (c) {
    case 'j': o->json = true; break;
    case 's': o->sysfs_root = optarg; break;
    case 'R': o->replay = optarg; break;
    case 'h': fputs(doctor_usage, stdout); return -1;
    default:
      code = c == '?' ? -1 : cli_source_option("doctor", c, optarg, &o->source, NULL);
      if (code) return code < 0 ? cli_option_error("doctor", argv) : code;
    }
  }
  if (optind < argc)
    return cli_fail("doctor", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
  if (o->replay && (o->sysfs_root || o->source.fixture || o->source.live))
    return cli_fail(
        "doctor", EXIT_USAGE,
        "--replay brings its own sysfs and machine: no --sysfs-root, --fixture, --live");
  if (o->replay) return EXIT_VERIFIED;
  const char *root = o->sysfs_root ? o->sysfs_root : getenv("PEERSCOPE_SYSFS_ROOT");
  struct stat st;
  if (root && *root && (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)))
    return cli_fail("doctor", EXIT_BAD_INPUT, "%s '%s' is not a directory",
                    o->sysfs_root ? "--sysfs-root" : "PEERSCOPE_SYSFS_ROOT", root);
  return EXIT_VERIFIED;
}

static const char *source_name(ps_source s) {
  return s == PS_SOURCE_LIVE ? "live" : s == PS_SOURCE_FIXTURE ? "fixture" : "file";
}

static void print_text(const ps_report *r, const ps_doctor_result *res) {
  printf("peerscope doctor: %s, %s%s%s\n", r->machine[0] ? r->machine : "this machine",
         source_name(r->source), r->origin[0] ? " " : "", r->origin);
  if (res->sysfs_root[0]) printf("sysfs and /proc read under %s\n", res->sysfs_root);
  if (res->count == 0)
    printf("\nNo findings.\n");
  else
    printf("\n%d finding%s: %d error%s, %d warning%s, %d info\n", res->count,
           res->count == 1 ? "" : "s", res->errors, res->errors == 1 ? "" : "s", res->warnings,
           res->warnings == 1 ? "" : "s", res->infos);
  for (int i = 0; i < res->count; i++) {
    const ps_finding *f = &res->findings[i];
    char sev[16];
    snprintf(sev, sizeof(sev), "%s", ps_severity_name(f->severity));
    for (char *p = sev; *p; p++)
      *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    printf("\n%s %s: %s\n", sev, f->code, f->title);
    printf("  evidence: %s\n", f->evidence);
    printf("  breaks:   %s\n", f->breaks);
    printf("  fix:      %s\n", f->fix);
    printf("  see:      %s\n", f->link);
  }
  printf("\nChecks:\n");
  for (int i = 0; i < res->check_count; i++)
    printf("  %-10s %-12s %s\n", res->checks[i].name, ps_check_state_name(res->checks[i].state),
           res->checks[i].note);
}

static int print_json(const ps_report *r, const ps_doctor_result *res) {
  ps_ctx *ctx = ps_ctx_new();
  char *text = NULL;
  if (!ctx || ps_doctor_to_json(ctx, r, res, &text) != PS_OK) {
    int code = cli_fail("doctor", EXIT_INTERNAL, "%s", ctx ? ps_ctx_error(ctx) : "out of memory");
    ps_ctx_free(ctx);
    return code;
  }
  puts(text);
  ps_free(text);
  ps_ctx_free(ctx);
  return EXIT_VERIFIED;
}

/* "<tmp>/root/sys/..." -> "CAPTURE.tar.gz:/sys/...": the temporary directory is gone by the
 * time anyone reads the evidence. */
static void replace_root(char *field, size_t len, const char *root, const char *archive) {
  char out[2048] = "";
  size_t rl = strlen(root), used = 0;
  for (const char *p = field; *p && used + 1 < sizeof(out);) {
    if (strncmp(p, root, rl) == 0) {
      used += (size_t)snprintf(out + used, sizeof(out) - used, "%s:", archive);
      p += rl;
    } else {
      out[used++] = *p++;
      out[used] = '\0';
    }
  }
  if (used >= sizeof(out)) used = sizeof(out) - 1;
  if (used >= len) used = len - 1; /* cut to the field, as its other writers do */
  memcpy(field, out, used);
  field[used] = '\0';
}

static void replay_paths(ps_doctor_result *res, const char *root, const char *archive) {
  snprintf(res->sysfs_root, sizeof(res->sysfs_root), "%s:/", archive);
  for (int i = 0; i < res->count; i++)
    replace_root(res->findings[i].evidence, sizeof(res->findings[i].evidence), root, archive);
  for (int i = 0; i < res->check_count; i++)
    replace_root(res->checks[i].note, sizeof(res->checks[i].note), root, archive);
}

int cmd_doctor(int argc, char **argv) {
  doctor_opts o;
  int code = parse(argc, argv, &o);
  if (code) return code < 0 ? EXIT_VERIFIED : code;

  ps_report *r = NULL;
  char notice[1024] = "";
  ps_capture *cap = NULL;
  cli_drivers *drv = &o.source.drivers; /* the fixture's, the example's or the capture's */
  memset(drv, 0, sizeof(*drv));
  if (o.replay)
    code = cli_replay_open("doctor", o.replay, drv, &cap, &r);
  else
    code = cli_load_report("doctor", &o.source, &o.sel, &r, notice, sizeof(notice));
  if (code) return code;
  if (notice[0]) fprintf(o.json ? stderr : stdout, "%s\n", notice);

  ps_ctx *ctx = ps_ctx_new();
  ps_doctor_result *res = NULL;
  ps_doctor_opts dopts = PS_INIT(ps_doctor_opts);
  dopts.sysfs_root = o.replay ? cap->sysfs_root : o.sysfs_root;
  dopts.driver_dir = cli_opt(drv->dir);
  dopts.fixture = cli_opt(drv->fixture);
  /* A capture without sysfs (taken from a fixture without --sysfs-root) reads none now either. */
  bool replay_root = o.replay && access(cap->sysfs_root, F_OK) == 0;
  if (o.replay && !replay_root) dopts.sysfs_root = "";
  if (o.replay) dopts.env = (const char *const *)cap->env;
  /* The replayed GPUs are the capture's fixture, played by the fake drivers: the NVML check
   * may ask them, as it would a fixture's. Shown as a file again below. */
  if (o.replay) r->source = PS_SOURCE_FIXTURE;
  ps_status st = ctx ? ps_doctor_run(ctx, r, &dopts, &res) : PS_ERR_NO_MEMORY;
  if (o.replay) r->source = PS_SOURCE_FILE;
  if (st == PS_OK && replay_root) replay_paths(res, cap->sysfs_root, o.replay);
  ps_capture_free(cap);
  if (!ctx) {
    code = cli_fail("doctor", EXIT_INTERNAL, "out of memory");
  } else if (st != PS_OK) {
    code = cli_fail("doctor", EXIT_INTERNAL, "%s", ps_ctx_error(ctx));
  } else {
    code = o.json ? print_json(r, res) : (print_text(r, res), EXIT_VERIFIED);
    if (!code) code = res->errors ? EXIT_FINDING : EXIT_VERIFIED;
  }
  ps_doctor_result_free(res);
  ps_ctx_free(ctx);
  ps_report_free(r);
  return code;
}
