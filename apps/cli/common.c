/* Getting a report for a command: choosing the driver (live, --fixture, bundled example),
 * probing, verifying, and mapping library statuses to exit codes. */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "peerscope%s%s: ", cmd ? " " : "", cmd ? cmd : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

bool cli_parse_int(const char *text, int min, int max, int *out) {
  char *end = NULL;
  if (!text || !*text || !isdigit((unsigned char)text[0])) return false;
  long v = strtol(text, &end, 10);
  if (*end || v < min || v > max) return false;
  *out = (int)v;
  return true;
}

static int status_exit(ps_status st) {
  switch (st) {
  case PS_OK: return EXIT_VERIFIED;
  case PS_ERR_INVALID_ARG: return EXIT_USAGE;
  case PS_ERR_BAD_INPUT:
  case PS_ERR_IO: return EXIT_BAD_INPUT;
  case PS_ERR_NO_DRIVER:
  case PS_ERR_DRIVER_UNAVAILABLE:
  case PS_ERR_DRIVER: return EXIT_NO_DRIVER;
  case PS_ERR_NETWORK: return EXIT_NETWORK;
  default: return EXIT_INTERNAL;
  }
}

/* Chooses the fake drivers playing `fixture` (NULL: the bundled example) after the library
 * has read it through (a typo is reported with its line and column, exit 3). The choice goes
 * into `drivers`, for the options of every call; no environment variable is set. */
static ps_status choose_fixture(ps_ctx *ctx, const char *fixture, cli_drivers *drivers) {
  ps_fixture_source *src = NULL;
  ps_status st = ps_fixture_select(ctx, fixture, getenv("PEERSCOPE_DRIVER_DIR"), &src);
  if (st != PS_OK) return st;
  snprintf(drivers->dir, sizeof(drivers->dir), "%s", src->driver_dir);
  snprintf(drivers->fixture, sizeof(drivers->fixture), "%s", src->fixture);
  ps_fixture_source_free(src);
  return PS_OK;
}

static int use_fixture(const char *cmd, ps_ctx *ctx, const char *fixture, cli_drivers *drivers) {
  ps_status st = choose_fixture(ctx, fixture, drivers);
  if (st == PS_OK) return EXIT_VERIFIED;
  return cli_fail(cmd, st == PS_ERR_NOT_FOUND ? EXIT_INTERNAL : status_exit(st), "%s",
                  ps_ctx_error(ctx));
}

static int fall_back_to_example(const char *cmd, ps_ctx *ctx, cli_drivers *drivers, char *notice,
                                size_t len) {
  char why[512];
  snprintf(why, sizeof(why), "%s", ps_ctx_error(ctx));
  ps_status st = choose_fixture(ctx, NULL, drivers);
  if (st == PS_ERR_NOT_FOUND)
    return cli_fail(cmd, EXIT_NO_DRIVER, "%s (and %s)", why, ps_ctx_error(ctx));
  if (st != PS_OK) return cli_fail(cmd, status_exit(st), "%s", ps_ctx_error(ctx));
  /* "no NVIDIA driver: libnvidia-ml.so.1: cannot open..." -> the part after the colon */
  const char *detail = strstr(why, ": ");
  snprintf(notice, len,
           "peerscope: no NVIDIA driver on this machine (%s); running on the bundled example "
           "machine through peerscope's fake drivers, not on this computer's GPUs (--live "
           "refuses this).",
           detail ? detail + 2 : why);
  return EXIT_VERIFIED;
}

/* "4,5,6,7": the GPUs CUDA_VISIBLE_DEVICES allows, by nvidia-smi's numbers, in its order. */
static void allowed_list(const ps_report *r, char *out, size_t len) {
  int gpus[CLI_MAX_GPUS], n = ps_report_allowed_gpus(r, gpus, CLI_MAX_GPUS);
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%d", i ? "," : "", gpus[i]);
}

static void add_notice(char *notice, size_t len, const char *line) {
  size_t used = strlen(notice);
  snprintf(notice + used, len - used, "%s%s", used ? "\n" : "", line);
}

/* The caller's CUDA_VISIBLE_DEVICES, unless --all-gpus: CUDA (in a worker) says which GPUs it
 * allows; the report records it and a notice line says so. Exit code. */
static int apply_visible(const char *cmd, ps_ctx *ctx, const cli_source *source, ps_report *r,
                         char *notice, size_t notice_len) {
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  char line[1024], list[512];
  if (!cvd) return EXIT_VERIFIED;
  if (source->all_gpus) {
    snprintf(line, sizeof(line),
             "peerscope: --all-gpus: using all %d GPUs of the machine; CUDA_VISIBLE_DEVICES=%.200s "
             "is ignored.",
             r->gpu_count, cvd);
    add_notice(notice, notice_len, line);
    return EXIT_VERIFIED;
  }
  ps_visible_opts vo = PS_INIT(ps_visible_opts);
  vo.driver_dir = cli_opt(source->drivers.dir);
  vo.fixture = cli_opt(source->drivers.fixture);
  ps_status st = ps_report_apply_visible(ctx, r, &vo);
  if (st != PS_OK) return cli_fail(cmd, status_exit(st), "%s", ps_ctx_error(ctx));
  if (!ps_report_restricted(r)) return EXIT_VERIFIED;
  allowed_list(r, list, sizeof(list));
  int n = 0;
  for (int g = 0; g < r->gpu_count; g++)
    n += ps_gpu_allowed(r, g);
  snprintf(line, sizeof(line),
           "peerscope: using the %d GPU%s CUDA_VISIBLE_DEVICES allows: %s (nvidia-smi's numbers; "
           "CUDA_VISIBLE_DEVICES=%.200s; --all-gpus for the whole machine).",
           n, n == 1 ? "" : "s", list, cvd);
  add_notice(notice, notice_len, line);
  return EXIT_VERIFIED;
}

int cli_load_report(const char *cmd, cli_source *source, const cli_selection *sel, ps_report **out,
                    char *notice, size_t notice_len) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *report = NULL;
  int code = EXIT_VERIFIED;
  *out = NULL;
  notice[0] = '\0';
  cli_drivers *drv = &source->drivers;
  memset(drv, 0, sizeof(*drv));
  if (!ctx) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");

  const char *fixture = source->fixture ? source->fixture : getenv("PEERSCOPE_FIXTURE");
  if (fixture && *fixture && (code = use_fixture(cmd, ctx, fixture, drv)) != EXIT_VERIFIED)
    goto out;

  ps_probe_opts po = {
      .size = sizeof(po), .driver_dir = cli_opt(drv->dir), .fixture = cli_opt(drv->fixture)};
  ps_verify_opts vo = PS_INIT(ps_verify_opts);
  vo.timeout_ms = source->timeout_ms;
  vo.refresh = source->refresh;
  vo.modes = source->modes;
  vo.driver_dir = po.driver_dir;
  vo.fixture = po.fixture;
  /* check: a cached answer reads only the machine key; else CUDA starts while NVML probes. */
  ps_status st =
      source->verify ? ps_probe_for_verify(ctx, &po, &vo, &report) : ps_probe(ctx, &po, &report);
  if (st == PS_ERR_NO_DRIVER && !source->live && !(fixture && *fixture) &&
      !getenv("PEERSCOPE_DRIVER_DIR")) {
    if ((code = fall_back_to_example(cmd, ctx, drv, notice, notice_len)) != EXIT_VERIFIED) goto out;
    po = (ps_probe_opts){.size = sizeof(ps_probe_opts),
                         .driver_dir = cli_opt(drv->dir),
                         .fixture = cli_opt(drv->fixture)};
    vo.driver_dir = po.driver_dir;
    vo.fixture = po.fixture;
    st = source->verify ? ps_probe_for_verify(ctx, &po, &vo, &report) : ps_probe(ctx, &po, &report);
  }
  if (st != PS_OK) {
    code = cli_fail(cmd, status_exit(st), "%s", ps_ctx_error(ctx));
    goto out;
  }
  if ((code = apply_visible(cmd, ctx, source, report, notice, notice_len)) != EXIT_VERIFIED)
    goto out;
  if ((code = cli_resolve_gpus(cmd, report, (cli_selection *)sel)) != EXIT_VERIFIED) goto out;
  if (source->verify) {
    vo.gpus = sel->count ? sel->gpus : NULL;
    vo.gpu_count = sel->count;
    st = ps_verify(ctx, report, &vo);
    if (st != PS_OK) {
      code = cli_fail(cmd, status_exit(st), "%s", ps_ctx_error(ctx));
      goto out;
    }
  }
  *out = report;
  report = NULL;
out:
  ps_report_free(report);
  ps_ctx_free(ctx);
  return code;
}

static int find_uuid(const ps_report *r, const char *text, size_t len) {
  for (int g = 0; g < r->gpu_count; g++)
    if ((r->gpus[g].valid & PS_GPU_UUID) && strlen(r->gpus[g].uuid) == len &&
        strncmp(r->gpus[g].uuid, text, len) == 0)
      return g;
  return -1;
}

static int add_gpu(const char *cmd, const ps_report *r, cli_selection *sel, int g) {
  if (g < 0 || g >= r->gpu_count)
    return cli_fail(cmd, EXIT_USAGE, "--gpus: GPU %d does not exist (this machine has %d GPU%s%s)",
                    g, r->gpu_count, r->gpu_count == 1 ? "" : "s",
                    r->gpu_count ? ", numbered from 0" : "");
  if (!ps_gpu_allowed(r, g)) {
    char list[512];
    allowed_list(r, list, sizeof(list));
    return cli_fail(cmd, EXIT_USAGE,
                    "--gpus: GPU %d is not among the GPUs CUDA_VISIBLE_DEVICES=%s allows (%s); "
                    "--all-gpus uses the whole machine",
                    g, r->cuda_visible_devices, list);
  }
  for (int i = 0; i < sel->count; i++)
    if (sel->gpus[i] == g) return EXIT_VERIFIED; /* listed twice: harmless */
  sel->gpus[sel->count++] = g;
  return EXIT_VERIFIED;
}

int cli_resolve_gpus(const char *cmd, const ps_report *r, cli_selection *sel) {
  sel->count = 0;
  if (!sel->text && ps_report_restricted(r)) {
    for (int g = 0; g < r->gpu_count && sel->count < CLI_MAX_GPUS; g++)
      if (ps_gpu_allowed(r, g)) sel->gpus[sel->count++] = g;
    return EXIT_VERIFIED;
  }
  if (!sel->text) return EXIT_VERIFIED;
  const char *p = sel->text;
  if (!*p) return cli_fail(cmd, EXIT_USAGE, "--gpus: empty list");
  while (*p) {
    size_t len = strcspn(p, ",");
    char item[128];
    if (len == 0 || len >= sizeof(item))
      return cli_fail(cmd, EXIT_USAGE, "--gpus: bad list '%s'", sel->text);
    memcpy(item, p, len);
    item[len] = '\0';
    int lo, hi, code;
    char *dash = strchr(item, '-');
    if (strncmp(item, "GPU-", 4) == 0 || strncmp(item, "MIG-", 4) == 0) {
      int g = find_uuid(r, item, len);
      if (g < 0) return cli_fail(cmd, EXIT_USAGE, "--gpus: no GPU has UUID %s", item);
      if ((code = add_gpu(cmd, r, sel, g)) != EXIT_VERIFIED) return code;
    } else if (dash) {
      *dash = '\0';
      if (!cli_parse_int(item, 0, INT_MAX, &lo) || !cli_parse_int(dash + 1, 0, INT_MAX, &hi) ||
          hi < lo)
        return cli_fail(cmd, EXIT_USAGE, "--gpus: bad range '%.*s'", (int)len, p);
      for (int g = lo; g <= hi; g++)
        if ((code = add_gpu(cmd, r, sel, g)) != EXIT_VERIFIED) return code;
    } else {
      if (!cli_parse_int(item, 0, INT_MAX, &lo))
        return cli_fail(cmd, EXIT_USAGE, "--gpus: '%s' is not a GPU index or UUID", item);
      if ((code = add_gpu(cmd, r, sel, lo)) != EXIT_VERIFIED) return code;
    }
    p += len;
    if (*p == ',') p++;
  }
  return EXIT_VERIFIED;
}

bool cli_selected(const cli_selection *sel, int gpu) {
  if (sel->count == 0) return true;
  for (int i = 0; i < sel->count; i++)
    if (sel->gpus[i] == gpu) return true;
  return false;
}

int cli_replay_open(const char *cmd, const char *archive, cli_drivers *drivers, ps_capture **cap,
                    ps_report **out) {
  *out = NULL;
  *cap = NULL;
  ps_ctx *ctx = ps_ctx_new();
  if (!ctx) return cli_fail(cmd, EXIT_INTERNAL, "out of memory");
  int code = EXIT_VERIFIED;
  ps_status st = ps_capture_open(ctx, archive, NULL, cap);
  if (st == PS_OK && (st = ps_capture_report(ctx, *cap, out)) != PS_OK) {
    ps_capture_free(*cap);
    *cap = NULL;
  }
  if (st != PS_OK)
    code = cli_fail(cmd, status_exit(st), "%s", ps_ctx_error(ctx));
  else if (drivers && (code = use_fixture(cmd, ctx, (*cap)->fixture, drivers)) != EXIT_VERIFIED) {
    ps_report_free(*out);
    *out = NULL;
    ps_capture_free(*cap);
    *cap = NULL;
  }
  ps_ctx_free(ctx);
  return code;
}
