/* Opening a capture someone attached to a bug report: it may be malformed or hostile. Every
 * member is checked before anything is written, files and directories are written first into
 * a fresh mkdtemp directory (no symlink exists yet, so no write can be redirected), symlinks
 * last, each one kept only if it resolves inside that directory. Any refusal removes it. */
#define _XOPEN_SOURCE 700
#if PS_HAVE_ARCHIVE
#include <archive.h>
#include <archive_entry.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture_internal.h"
#include "core/tmpdir.h"

/* Room for the temporary directory in front of a member name of up to PATH_MAX. */
#define PATH_BUF (PATH_MAX + 1024)

typedef struct link_todo {
  char *path, *target;
} link_todo;

typedef struct extraction {
  ps_ctx *ctx;
  const char *archive;
  char dir[512];
  link_todo *links;
  int link_count, link_cap;
} extraction;

bool ps_capture_is_archive(const char *path) {
  if (!path) return false;
  unsigned char magic[2] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t n = fread(magic, 1, 2, f);
  fclose(f);
  return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

void ps__capture_rmtree(const char *dir) {
  if (dir && dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#if PS_HAVE_ARCHIVE
static ps_status refuse(extraction *x, const char *member, const char *why) {
  char shown[201];
  size_t n = 0;
  /* A hostile name may hold newlines or escapes: the message stays one plain line. */
  for (; member[n] && n < sizeof(shown) - 1; n++)
    shown[n] = (unsigned char)member[n] < 0x20 || member[n] == 0x7f ? '?' : member[n];
  shown[n] = '\0';
  return ps__fail(x->ctx, PS_ERR_BAD_INPUT, "%s: member '%s': %s", x->archive, shown, why);
}

/* A relative path of plain names: no leading '/', no "." or ".." component, no empty one. */
static bool safe_name(const char *p) {
  if (!p[0] || p[0] == '/') return false;
  while (*p) {
    size_t n = strcspn(p, "/");
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
    p += n;
    if (*p == '/') p++;
  }
  return true;
}

/* Creates the directories above `rel` (none of them can be a symlink yet). */
static bool make_parents(const char *dir, const char *rel) {
  char path[PATH_BUF];
  if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path)) return false;
  for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return false;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    *p = '/';
  }
  return true;
}

static ps_status write_file(extraction *x, struct archive *a, const char *name, int64_t size) {
  char path[PATH_BUF];
  snprintf(path, sizeof(path), "%s/%s", x->dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return refuse(x, name, errno == EEXIST ? "listed twice" : strerror(errno));
  ps_status st = PS_OK;
  int64_t written = 0;
  char chunk[16384];
  for (;;) {
    la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
    if (n < 0) {
      st = refuse(x, name, archive_error_string(a) ? archive_error_string(a) : "read error");
      break;
    }
    if (n == 0) break;
    written += n;
    if (written > size || written > (int64_t)PS_CAPTURE_MAX_MEMBER) {
      st = refuse(x, name, "larger than its header says");
      break;
    }
    if (write(fd, chunk, (size_t)n) != n) {
      st = ps__fail(x->ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
      break;
    }
  }
  close(fd);
  return st;
}

static ps_status keep_link(extraction *x, const char *name, const char *target) {
  if (!target || !target[0] || target[0] == '/')
    return refuse(x, name, "symlink to an absolute path");
  /* Lexically first: a target that climbs above the root is refused outright. */
  int depth = 0;
  for (const char *p = name; *p; p++)
    if (*p == '/') depth++;
  for (const char *p = target; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.')
      depth--;
    else if (n && !(n == 1 && p[0] == '.'))
      depth++;
    if (depth < 0) return refuse(x, name, "symlink pointing outside the archive");
    p += n;
    if (*p == '/') p++;
  }
  if (x->link_count == x->link_cap) {
    int cap = x->link_cap ? x->link_cap * 2 : 32;
    link_todo *grown = ps__realloc(x->links, (size_t)cap * sizeof(*grown));
    if (!grown) return ps__fail(x->ctx, PS_ERR_NO_MEMORY, "out of memory");
    x->links = grown;
    x->link_cap = cap;
  }
  link_todo *l = &x->links[x->link_count];
  l->path = ps__strdup(name);
  l->target = ps__strdup(target);
  if (!l->path || !l->target) {
    ps__free(l->path);
    ps__free(l->target);
    return ps__fail(x->ctx, PS_ERR_NO_MEMORY, "out of memory");
  }
  x->link_count++;
  return PS_OK;
}

static ps_status one_member(extraction *x, struct archive *a, struct archive_entry *e,
                            uint64_t *total) {
  const char *raw = archive_entry_pathname(e);
  char name[PATH_MAX];
  if (!raw) return refuse(x, "?", "no name");
  /* "./a" and "a/" are ordinary spellings of "a". */
  while (raw[0] == '.' && raw[1] == '/')
    raw += 2;
  /* "./" or ".": the archive's root itself, as `tar czf x -C dir .` writes it first. */
  if ((raw[0] == '\0' || strcmp(raw, ".") == 0) && archive_entry_filetype(e) == AE_IFDIR)
    return PS_OK;
  if (strlen(raw) >= sizeof(name) - 600) return refuse(x, raw, "name too long");
  ps__strlcpy(name, raw, sizeof(name));
  size_t nl = strlen(name);
  while (nl > 1 && name[nl - 1] == '/')
    name[--nl] = '\0';
  const char *shown = archive_entry_pathname(e);
  if (name[0] == '/') return refuse(x, shown, "absolute path");
  if (!safe_name(name)) return refuse(x, shown, "path with '..' or empty components");
  if (archive_entry_hardlink(e)) return refuse(x, shown, "hard link (not allowed)");
  mode_t type = archive_entry_filetype(e);
  if (!make_parents(x->dir, name)) return refuse(x, shown, "cannot create its directory");
  if (type == AE_IFDIR) {
    char path[PATH_BUF];
    snprintf(path, sizeof(path), "%s/%s", x->dir, name);
    struct stat st;
    if (mkdir(path, 0755) != 0 &&
        !(errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)))
      return refuse(x, shown, "cannot create the directory");
    return PS_OK;
  }
  if (type == AE_IFLNK) return keep_link(x, name, archive_entry_symlink(e));
  if (type != AE_IFREG)
    return refuse(x, shown,
                  "not a regular file, directory or symlink (devices, fifos and "
                  "sockets are refused)");
  int64_t size = archive_entry_size(e);
  if (size < 0 || (uint64_t)size > PS_CAPTURE_MAX_MEMBER) {
    char why[96];
    snprintf(why, sizeof(why), "%lld bytes, more than the %u MiB a member may have",
             (long long)size, PS_CAPTURE_MAX_MEMBER >> 20);
    return refuse(x, shown, why);
  }
  *total += (uint64_t)size;
  if (*total > PS_CAPTURE_MAX_TOTAL) {
    char why[96];
    snprintf(why, sizeof(why), "archive holds more than %u MiB", PS_CAPTURE_MAX_TOTAL >> 20);
    return refuse(x, shown, why);
  }
  return write_file(x, a, name, size);
}

/* Now that every file is in place: the links, each checked where it really leads. */
static ps_status make_links(extraction *x) {
  char real_dir[PATH_MAX];
  if (!realpath(x->dir, real_dir))
    return ps__fail(x->ctx, PS_ERR_IO, "%s: %s", x->dir, strerror(errno));
  for (int i = 0; i < x->link_count; i++) {
    char path[PATH_BUF];
    snprintf(path, sizeof(path), "%s/%s", x->dir, x->links[i].path);
    if (symlink(x->links[i].target, path) != 0)
      return refuse(x, x->links[i].path, errno == EEXIST ? "listed twice" : strerror(errno));
  }
  size_t rl = strlen(real_dir);
  for (int i = 0; i < x->link_count; i++) {
    char path[PATH_BUF], real[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", x->dir, x->links[i].path);
    if (!realpath(path, real))
      return refuse(x, x->links[i].path, "symlink that does not resolve inside the archive");
    if (strncmp(real, real_dir, rl) != 0 || (real[rl] != '/' && real[rl] != '\0'))
      return refuse(x, x->links[i].path, "symlink pointing outside the archive");
  }
  return PS_OK;
}

static ps_status extract(extraction *x) {
  struct archive *a = archive_read_new();
  if (!a) return ps__fail(x->ctx, PS_ERR_NO_MEMORY, "out of memory");
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ps_status st = PS_OK;
  if (archive_read_open_filename(a, x->archive, 65536) != ARCHIVE_OK) {
    st = ps__fail(x->ctx, PS_ERR_BAD_INPUT, "%s: not a peerscope capture (%s)", x->archive,
                  archive_error_string(a));
    goto out;
  }
  uint64_t total = 0;
  int members = 0;
  struct archive_entry *e;
  for (;;) {
    int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      st = ps__fail(x->ctx, PS_ERR_BAD_INPUT, "%s: malformed archive after %d members (%s)",
                    x->archive, members, archive_error_string(a));
      goto out;
    }
    if (++members > PS_CAPTURE_MAX_MEMBERS) {
      char why[96];
      snprintf(why, sizeof(why), "more than %d members", PS_CAPTURE_MAX_MEMBERS);
      st = refuse(x, archive_entry_pathname(e) ? archive_entry_pathname(e) : "?", why);
      goto out;
    }
    if ((st = one_member(x, a, e, &total)) != PS_OK) goto out;
  }
  st = make_links(x);
out:
  archive_read_free(a);
  return st;
}

#else
static ps_status extract(extraction *x) {
  return ps__fail(x->ctx, PS_ERR_NOT_FOUND,
                  "%s: this peerscope was built without libarchive (PS_WITH_ARCHIVE=OFF)",
                  x->archive);
}
#endif

static ps_status check_manifest(extraction *x) {
  char path[PATH_BUF], line[64] = "";
  snprintf(path, sizeof(path), "%s/" PS_CAPTURE_MANIFEST, x->dir);
  FILE *f = fopen(path, "r");
  if (f) {
    if (!fgets(line, sizeof(line), f)) line[0] = '\0';
    fclose(f);
  }
  line[strcspn(line, "\r\n")] = '\0';
  if (strcmp(line, PS_CAPTURE_MAGIC) != 0)
    return ps__fail(x->ctx, PS_ERR_BAD_INPUT, "%s: not a peerscope capture (no %s saying '%s')",
                    x->archive, PS_CAPTURE_MANIFEST, PS_CAPTURE_MAGIC);
  return PS_OK;
}

/* env.txt: "NAME=value" lines into a NULL-terminated array. */
static ps_status read_env(extraction *x, ps_capture *cap) {
  char path[PATH_BUF];
  snprintf(path, sizeof(path), "%s/" PS_CAPTURE_ENV, x->dir);
  cap->env = ps__calloc(33, sizeof(char *));
  if (!cap->env) return ps__fail(x->ctx, PS_ERR_NO_MEMORY, "out of memory");
  FILE *f = fopen(path, "r");
  if (!f) return PS_OK;
  char line[1024];
  int n = 0;
  while (n < 32 && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!strchr(line, '=') || line[0] == '=') continue;
    if (!(cap->env[n] = ps__strdup(line))) break;
    n++;
  }
  fclose(f);
  return PS_OK;
}

ps_status ps_capture_open(ps_ctx *ctx, const char *path, const char *tmp_dir, ps_capture **out) {
  if (!path || !out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_capture_open: NULL argument");
  *out = NULL;
  if (tmp_dir && (!tmp_dir[0] || strlen(tmp_dir) > 400))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_capture_open: temporary directory '%s'", tmp_dir);
  const char *tmp = tmp_dir ? tmp_dir : getenv("TMPDIR");
  if (!tmp || !tmp[0] || strlen(tmp) > 400) tmp = "/tmp";
  ps_capture *cap = ps__calloc(1, sizeof(*cap));
  if (!cap) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  extraction x = {.ctx = ctx, .archive = path};
  snprintf(x.dir, sizeof(x.dir), "%s/peerscope-replay-XXXXXX", tmp);
  /* Registered at once: gone on SIGINT, SIGTERM or SIGHUP too, not only in ps_capture_free. */
  if (!ps__tmpdir_make(x.dir)) {
    ps__free(cap);
    return ps__fail(ctx, PS_ERR_IO, "%s: cannot make a temporary directory: %s", x.dir,
                    strerror(errno));
  }
  ps_status st = extract(&x);
  if (st == PS_OK) st = check_manifest(&x);
  for (int i = 0; i < x.link_count; i++) {
    ps__free(x.links[i].path);
    ps__free(x.links[i].target);
  }
  ps__free(x.links);
  ps__strlcpy(cap->archive, path, sizeof(cap->archive));
  ps__strlcpy(cap->dir, x.dir, sizeof(cap->dir));
  snprintf(cap->report, sizeof(cap->report), "%s/" PS_CAPTURE_REPORT, x.dir);
  snprintf(cap->fixture, sizeof(cap->fixture), "%s/" PS_CAPTURE_FIXTURE, x.dir);
  snprintf(cap->sysfs_root, sizeof(cap->sysfs_root), "%s/" PS_CAPTURE_ROOT, x.dir);
  if (st == PS_OK) st = read_env(&x, cap);
  if (st != PS_OK) {
    ps_capture_free(cap);
    return st;
  }
  *out = cap;
  return PS_OK;
}

ps_status ps_capture_report(ps_ctx *ctx, const ps_capture *cap, ps_report **out) {
  if (!cap || !out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_capture_report: NULL argument");
  ps_status st = ps_report_read_json(ctx, cap->report, out);
  if (st != PS_OK) return st;
  (*out)->source = PS_SOURCE_FILE;
  ps__strlcpy((*out)->origin, cap->archive, sizeof((*out)->origin));
  return PS_OK;
}

void ps_capture_free(ps_capture *cap) {
  if (!cap) return;
  ps__tmpdir_unregister(cap->dir);
  ps__capture_rmtree(cap->dir);
  for (int i = 0; cap->env && cap->env[i]; i++)
    ps__free(cap->env[i]);
  ps__free(cap->env);
  ps__free(cap);
}
