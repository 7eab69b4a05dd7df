/* ps_capture_write: the report, its fixture, the doctor's files and variables, and
 * nvidia-smi's topology, into one gzip'd tar (pax headers: sysfs paths pass 100 bytes). */
#if PS_HAVE_ARCHIVE
#include <archive.h>
#include <archive_entry.h>
#endif
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture_internal.h"
#include "doctor/doctor.h"

extern char **environ;

typedef struct recording {
  ps__members *members;
  const char *root;
  char names[32][64]; /* the variables the doctor looked up */
  int name_count;
} recording;

static void on_read(void *user, ps__doctor_read kind, const char *what) {
  recording *rec = user;
  if (kind != PS_DOCTOR_READ_ENV) {
    ps__capture_record_path(rec->members, rec->root, what, kind == PS_DOCTOR_READ_LIST);
    return;
  }
  for (int i = 0; i < rec->name_count; i++)
    if (strcmp(rec->names[i], what) == 0) return;
  if (rec->name_count < 32 && strlen(what) < sizeof(rec->names[0]))
    ps__strlcpy(rec->names[rec->name_count++], what, sizeof(rec->names[0]));
}

static const char *env_value(const char *const *env, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') return env[i] + n + 1;
  return NULL;
}

/* "NAME=value" lines for the variables the doctor read that are set. */
static void add_env(ps__members *m, const recording *rec, const char *const *env) {
  size_t cap = 64, used = 0;
  char *text = ps__calloc(1, cap);
  for (int i = 0; text && i < rec->name_count; i++) {
    const char *v = env_value(env, rec->names[i]);
    if (!v || strchr(v, '\n')) continue;
    size_t need = strlen(rec->names[i]) + strlen(v) + 3;
    if (used + need > cap) {
      char *grown = ps__realloc(text, cap + need + 64);
      if (!grown) {
        ps__free(text);
        text = NULL;
        break;
      }
      text = grown;
      cap += need + 64;
    }
    used += (size_t)snprintf(text + used, cap - used, "%s=%s\n", rec->names[i], v);
  }
  if (!text) {
    m->oom = true;
    return;
  }
  ps__members_add(m, PS_CAPTURE_ENV, PS_MEMBER_FILE, text, used);
}

static void add_text(ps__members *m, const char *name, const char *text) {
  char *copy = ps__strdup(text);
  if (!copy) {
    m->oom = true;
    return;
  }
  ps__members_add(m, name, PS_MEMBER_FILE, copy, strlen(copy));
}

static void add_smi(ps__members *m) {
  static const char *const topo[] = {"topo", "-m", NULL};
  static const char *const p2p[] = {"topo", "-p2p", "r", NULL};
  size_t len = 0;
  char *out = ps__capture_run_smi(topo, &len);
  if (out) ps__members_add(m, "nvidia-smi-topo-m.txt", PS_MEMBER_FILE, out, len);
  out = ps__capture_run_smi(p2p, &len);
  if (out) ps__members_add(m, "nvidia-smi-topo-p2p-r.txt", PS_MEMBER_FILE, out, len);
}

/* Config space of every GPU and every PCI device above it, up to the host bridge: more than
 * the doctor reads (only bridges between two GPUs), for whoever reads the bug report. */
static void add_pci_configs(ps__members *m, const ps_report *r, const char *root) {
  for (int g = 0; g < r->gpu_count; g++) {
    ps__pci_path path;
    char why[256], rel[96];
    if (!(r->gpus[g].valid & PS_GPU_PCI_BUS_ID) ||
        !ps__pci_path_under(root, r->gpus[g].pci_bus_id, &path, why, sizeof(why)))
      continue;
    for (int i = 0; i < path.count; i++) {
      snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/config", path.dev[i]);
      ps__capture_record_path(m, root, rel, false);
    }
  }
}

/* The report as it goes into the archive (and its fixture): no hostname unless asked. */
static void strip_hostname(ps_report *copy) {
  if (strcmp(copy->machine, copy->hostname) == 0)
    ps__strlcpy(copy->machine, "captured machine", sizeof(copy->machine));
  copy->hostname[0] = '\0';
}

#if PS_HAVE_ARCHIVE
static ps_status write_archive(ps_ctx *ctx, const ps__members *m, const char *path) {
  struct archive *a = archive_write_new();
  if (!a) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = PS_OK;
  if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_open_filename(a, path) != ARCHIVE_OK) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, archive_error_string(a));
    archive_write_free(a);
    return st;
  }
  for (int i = 0; i < m->count && st == PS_OK; i++) {
    const ps__member *e = &m->items[i];
    struct archive_entry *ent = archive_entry_new();
    if (!ent) {
      st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
      break;
    }
    archive_entry_set_pathname(ent, e->path);
    archive_entry_set_mtime(ent, 0, 0); /* the same machine gives the same archive */
    if (e->type == PS_MEMBER_DIR) {
      archive_entry_set_filetype(ent, AE_IFDIR);
      archive_entry_set_perm(ent, 0755);
    } else if (e->type == PS_MEMBER_LINK) {
      archive_entry_set_filetype(ent, AE_IFLNK);
      archive_entry_set_perm(ent, 0777);
      archive_entry_set_symlink(ent, e->data);
    } else {
      archive_entry_set_filetype(ent, AE_IFREG);
      archive_entry_set_perm(ent, 0644);
      archive_entry_set_size(ent, (la_int64_t)e->len);
    }
    if (archive_write_header(a, ent) != ARCHIVE_OK ||
        (e->type == PS_MEMBER_FILE && e->len &&
         archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len))
      st = ps__fail(ctx, PS_ERR_IO, "%s: %s: %s", path, e->path, archive_error_string(a));
    archive_entry_free(ent);
  }
  if (archive_write_close(a) != ARCHIVE_OK && st == PS_OK)
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, archive_error_string(a));
  archive_write_free(a);
  if (st != PS_OK) unlink(path);
  return st;
}

#else
static ps_status write_archive(ps_ctx *ctx, const ps__members *m, const char *path) {
  (void)m;
  return ps__fail(ctx, PS_ERR_NOT_FOUND,
                  "%s: this peerscope was built without libarchive (PS_WITH_ARCHIVE=OFF)", path);
}
#endif

ps_status ps_capture_write(ps_ctx *ctx, const ps_report *report, const ps_capture_opts *opts,
                           const char *path) {
  if (!report || !opts || !path)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_capture_write: NULL argument");
  ps_capture_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_capture_opts");
  if (ost != PS_OK) return ost;
  opts = &o;
  ps__members m = {0};
  recording rec = {.members = &m, .root = opts->sysfs_root ? opts->sysfs_root : ""};
  const char *const *env = opts->env ? opts->env : (const char *const *)environ;
  char *json = NULL, *fixture = NULL;
  ps__gpu_flags *flags = NULL;
  ps_doctor_result *res = NULL;
  ps_status st;

  add_text(&m, PS_CAPTURE_MANIFEST, PS_CAPTURE_MAGIC "\n");
  ps_report shown = *report; /* shallow: the arrays stay the caller's */
  if (!opts->keep_hostname) strip_hostname(&shown);
  if ((st = ps_report_to_json(ctx, &shown, &json)) != PS_OK) goto out;
  ps__members_add(&m, PS_CAPTURE_REPORT, PS_MEMBER_FILE, json, strlen(json));
  json = NULL;
  flags = ps__calloc(report->gpu_count ? (size_t)report->gpu_count : 1, sizeof(*flags));
  if (!flags) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
    goto out;
  }
  char why[PS_ERRBUF_LEN]; /* no NVML: the flags stay unknown, not an error */
  ps__probe_gpu_flags(report, opts->driver_dir, opts->fixture, flags, why, sizeof(why));
  if ((st = ps__capture_fixture(ctx, &shown, flags, &fixture)) != PS_OK) goto out;
  ps__members_add(&m, PS_CAPTURE_FIXTURE, PS_MEMBER_FILE, fixture, strlen(fixture));
  fixture = NULL;
  /* The doctor itself says what it reads: run it and record every path and variable. */
  ps_doctor_opts dopts = {
      .size = sizeof(dopts), .sysfs_root = rec.root, .env = env, .driver_dir = opts->driver_dir};
  if ((st = ps__doctor_run_recorded(ctx, report, &dopts, on_read, &rec, &res)) != PS_OK) goto out;
  add_env(&m, &rec, env);
  add_pci_configs(&m, report, rec.root);
  if (opts->run_nvidia_smi) add_smi(&m);
  if (m.oom) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
    goto out;
  }
  st = write_archive(ctx, &m, path);
out:
  ps_doctor_result_free(res);
  ps__free(flags);
  ps__free(json);
  ps__free(fixture);
  ps__members_free(&m);
  return st;
}
