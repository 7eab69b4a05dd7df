/* ps_doctor_run: runs every check, then orders the findings most serious first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor_internal.h"

extern char **environ;

const char *ps_severity_name(ps_severity severity) {
  switch (severity) {
  case PS_SEVERITY_ERROR: return "error";
  case PS_SEVERITY_WARNING: return "warning";
  case PS_SEVERITY_INFO: return "info";
  }
  return "unknown";
}

const char *ps_check_state_name(ps_check_state state) {
  switch (state) {
  case PS_CHECK_OK: return "ok";
  case PS_CHECK_FINDING: return "finding";
  case PS_CHECK_NOT_CHECKED: return "not checked";
  }
  return "unknown";
}

void ps__dset(char *dst, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, len, fmt, ap);
  va_end(ap);
}

void ps__dcat(char *dst, size_t len, const char *fmt, ...) {
  size_t used = strlen(dst);
  if (used + 1 >= len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst + used, len - used, fmt, ap);
  va_end(ap);
}

ps_finding *ps__doctor_add(ps__doctor *d, ps_severity severity, const char *code) {
  ps_doctor_result *r = d->res;
  if (r->count == d->cap) {
    int cap = d->cap ? d->cap * 2 : 16;
    ps_finding *grown = ps__realloc(r->findings, (size_t)cap * sizeof(*grown));
    if (!grown) {
      d->oom = true;
      return NULL;
    }
    r->findings = grown;
    d->cap = cap;
  }
  ps_finding *f = &r->findings[r->count++];
  memset(f, 0, sizeof(*f));
  f->severity = severity;
  f->gpu_a = f->gpu_b = -1;
  ps__strlcpy(f->code, code, sizeof(f->code));
  return f;
}

void ps__doctor_check(ps__doctor *d, const char *name, ps_check_state state, const char *fmt, ...) {
  ps_doctor_result *r = d->res;
  if (r->check_count >= PS_DOCTOR_MAX_CHECKS) return;
  ps_doctor_check *c = &r->checks[r->check_count++];
  ps__strlcpy(c->name, name, sizeof(c->name));
  c->state = state;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->note, sizeof(c->note), fmt, ap);
  va_end(ap);
}

const char *ps__doctor_env(const ps__doctor *d, const char *name) {
  if (d->record) d->record(d->record_user, PS_DOCTOR_READ_ENV, name);
  size_t n = strlen(name);
  const char *const *env = d->opts && d->opts->env ? d->opts->env : (const char *const *)environ;
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') return env[i] + n + 1;
  return NULL;
}

const char *ps__doctor_gpu_label(const ps_report *r, int gpu, char *buf, size_t len) {
  const ps_gpu *g = &r->gpus[gpu];
  snprintf(buf, len, "GPU %d (%s, %s)", gpu, (g->valid & PS_GPU_NAME) ? g->name : "n/a",
           (g->valid & PS_GPU_PCI_BUS_ID) ? g->pci_bus_id : "bus n/a");
  return buf;
}

/* The project's one definition (ps_pair_failed), so doctor and check never disagree. */
bool ps__doctor_ipc_only(const ps_pair *p) {
  return p && p->verdict == PS_VERDICT_OK && !ps_verdict_failed(p->sm.verdict) &&
         ps_verdict_failed(p->ipc.verdict);
}

bool ps__doctor_pair_failed(const ps_pair *p) {
  return ps_pair_failed(NULL, p) && !ps__doctor_ipc_only(p);
}

/* Stable: equal severities keep the order the checks produced them in. */
static void sort_findings(ps_doctor_result *r) {
  for (int i = 1; i < r->count; i++) {
    ps_finding tmp = r->findings[i];
    int j = i - 1;
    while (j >= 0 && r->findings[j].severity < tmp.severity) {
      r->findings[j + 1] = r->findings[j];
      j--;
    }
    r->findings[j + 1] = tmp;
  }
}

void ps_doctor_result_free(ps_doctor_result *result) {
  if (!result) return;
  ps__free(result->findings);
  ps__free(result);
}

ps_status ps_doctor_run(ps_ctx *ctx, const ps_report *report, const ps_doctor_opts *opts,
                        ps_doctor_result **out) {
  if (out) *out = NULL;
  ps_doctor_opts o;
  ps_status st = PS__OPTS_IN(ctx, opts, &o, "ps_doctor_opts");
  if (st != PS_OK) return st;
  return ps__doctor_run_recorded(ctx, report, &o, NULL, NULL, out);
}

ps_status ps__doctor_run_recorded(ps_ctx *ctx, const ps_report *report, const ps_doctor_opts *opts,
                                  ps__doctor_recorder record, void *user, ps_doctor_result **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_doctor_run: out is NULL");
  *out = NULL;
  if (!report) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_doctor_run: report is NULL");
  ps__doctor d;
  memset(&d, 0, sizeof(d));
  d.ctx = ctx;
  d.report = report;
  d.opts = opts;
  d.record = record;
  d.record_user = user;
  d.res = ps__calloc(1, sizeof(*d.res));
  if (!d.res) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");

  const char *root = opts && opts->sysfs_root ? opts->sysfs_root : getenv("PEERSCOPE_SYSFS_ROOT");
  if (root && strlen(root) >= sizeof(d.root)) {
    ps_doctor_result_free(d.res);
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "sysfs root too long: %.80s...", root);
  }
  ps__strlcpy(d.root, root ? root : "", sizeof(d.root));
  /* Strip trailing slashes: "/" and "" both mean the real tree. */
  for (size_t n = strlen(d.root); n > 0 && d.root[n - 1] == '/'; n--)
    d.root[n - 1] = '\0';
  /* A fixture's or a file's GPUs are not this machine's: its sysfs would describe others. */
  d.use_sysfs = d.root[0] || (root && *root) || report->source == PS_SOURCE_LIVE;
  ps__strlcpy(d.res->sysfs_root, d.root, sizeof(d.res->sysfs_root));

  ps__check_verify(&d);
  ps__check_ipc(&d);
  ps__check_acs(&d);
  ps__check_iommu(&d);
  ps__check_driver(&d);
  ps__check_pcie_link(&d);
  ps__check_gpus(&d);
  ps__check_env(&d);
  ps__check_nvml(&d);

  if (d.oom) {
    ps_doctor_result_free(d.res);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  }
  sort_findings(d.res);
  for (int i = 0; i < d.res->count; i++) {
    switch (d.res->findings[i].severity) {
    case PS_SEVERITY_ERROR: d.res->errors++; break;
    case PS_SEVERITY_WARNING: d.res->warnings++; break;
    default: d.res->infos++; break;
    }
  }
  *out = d.res;
  return PS_OK;
}
