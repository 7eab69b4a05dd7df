/* The Hugging Face cache exactly as huggingface_hub lays it out (file_download.py):
 *   <cache>/models--org--name/refs/<revision>        the commit a branch or tag points to
 *   <cache>/models--org--name/snapshots/<commit>/f   a relative symlink to ../../blobs/<etag>
 *   <cache>/models--org--name/blobs/<etag>           the file's bytes
 * Reading follows refs; writing puts every file in place by rename, so an interrupted run
 * leaves nothing that huggingface_hub, vLLM or the next plan would take for a whole file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/tmpdir.h"
#include "hub/hub_internal.h"

void ps__hub_repo_dir(const ps__hub_env *env, const char *repo, char *out, size_t len) {
  const char *slash = strchr(repo, '/');
  int org = slash ? (int)(slash - repo) : 0;
  ps__hub_fmt(out, len, "%s/models--%.*s--%s", env->cache, org, repo, slash ? slash + 1 : repo);
}

static bool is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

ps_status ps__hub_cache_snapshot(const ps__hub_env *env, const char *repo, const char *revision,
                                 char *commit, size_t commit_len, char *dir, size_t dir_len) {
  char base[PATH_MAX], path[PATH_MAX + 300], sha[64] = "";
  const char *rev = revision && *revision ? revision : "main";
  ps__hub_repo_dir(env, repo, base, sizeof(base));
  if (ps__hub_is_commit(rev)) {
    ps__strlcpy(sha, rev, sizeof(sha));
  } else {
    ps__hub_fmt(path, sizeof(path), "%s/refs/%s", base, rev);
    FILE *f = fopen(path, "r");
    if (!f) return PS_ERR_NOT_FOUND;
    size_t n = fread(sha, 1, sizeof(sha) - 1, f);
    fclose(f);
    sha[n] = '\0';
    while (n && (sha[n - 1] == '\n' || sha[n - 1] == '\r' || sha[n - 1] == ' '))
      sha[--n] = '\0';
    if (!ps__hub_is_commit(sha)) return PS_ERR_NOT_FOUND;
  }
  ps__hub_fmt(path, sizeof(path), "%s/snapshots/%s", base, sha);
  if (!is_dir(path) || strlen(path) >= dir_len) return PS_ERR_NOT_FOUND;
  ps__strlcpy(dir, path, dir_len);
  ps__strlcpy(commit, sha, commit_len);
  return PS_OK;
}

bool ps__hub_mkdirs(const char *path) {
  char buf[PATH_MAX];
  if (strlen(path) >= sizeof(buf)) {
    errno = ENAMETOOLONG;
    return false;
  }
  ps__strlcpy(buf, path, sizeof(buf));
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
    *p = '/';
  }
  return (mkdir(buf, 0755) == 0 || errno == EEXIST) && is_dir(buf);
}

static void parent_of(const char *path, char *out, size_t len) {
  ps__strlcpy(out, path, len);
  char *slash = strrchr(out, '/');
  if (slash && slash != out) *slash = '\0';
}

ps_status ps__hub_write_atomic(ps_ctx *ctx, const char *path, const void *data, size_t len) {
  char dir[PATH_MAX], tmp[PATH_MAX + 32];
  parent_of(path, dir, sizeof(dir));
  if (!ps__hub_mkdirs(dir)) return ps__fail(ctx, PS_ERR_IO, "%s: %s", dir, strerror(errno));
  ps__hub_fmt(tmp, sizeof(tmp), "%s.incomplete.XXXXXX", path);
  int fd = ps__tmpfile_make(tmp); /* removed on SIGINT/SIGTERM/SIGHUP: nothing partial stays */
  if (fd < 0) return ps__fail(ctx, PS_ERR_IO, "%s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= (size_t)n;
  }
  int err = left ? errno : 0;
  if (!err && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && fchmodat(AT_FDCWD, tmp, 0644, 0) != 0) err = errno;
  if (!err && rename(tmp, path) != 0) err = errno;
  if (err) unlink(tmp);
  ps__tmpdir_unregister(tmp);
  if (err) return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(err ? err : EIO));
  return PS_OK;
}

/* A symlink at `path` to `target`, made beside it and renamed over it. */
static ps_status link_atomic(ps_ctx *ctx, const char *target, const char *path) {
  char tmp[PATH_MAX + 32];
  for (int attempt = 0; attempt < 100; attempt++) {
    ps__hub_fmt(tmp, sizeof(tmp), "%s.incomplete.%ld.%d", path, (long)getpid(), attempt);
    if (symlink(target, tmp) == 0) break;
    if (errno != EEXIST) return ps__fail(ctx, PS_ERR_IO, "%s: %s", tmp, strerror(errno));
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    unlink(tmp);
    return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(err));
  }
  return PS_OK;
}

/* An etag usable as a blob name: hex only (git sha1 or sha256), as the Hub sends them. */
static bool blob_name_ok(const char *etag) {
  size_t n = strlen(etag);
  if (n < 32 || n > 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", etag[i])) return false;
  return true;
}

ps_status ps__hub_cache_put(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                            const char *commit, const char *file, const char *etag,
                            const void *data, size_t len) {
  char base[PATH_MAX], snap[PATH_MAX + 200], blob[PATH_MAX + 200], target[200];
  ps__hub_repo_dir(env, repo, base, sizeof(base));
  ps__hub_fmt(snap, sizeof(snap), "%s/snapshots/%s/%s", base, commit, file);
  if (!etag || !blob_name_ok(etag)) return ps__hub_write_atomic(ctx, snap, data, len);
  ps__hub_fmt(blob, sizeof(blob), "%s/blobs/%s", base, etag);
  struct stat sb;
  ps_status st = PS_OK;
  if (stat(blob, &sb) != 0 || (size_t)sb.st_size != len)
    st = ps__hub_write_atomic(ctx, blob, data, len);
  if (st != PS_OK) return st;
  char dir[PATH_MAX + 200];
  parent_of(snap, dir, sizeof(dir));
  if (!ps__hub_mkdirs(dir)) return ps__fail(ctx, PS_ERR_IO, "%s: %s", dir, strerror(errno));
  ps__hub_fmt(target, sizeof(target), "../../blobs/%s", etag);
  return link_atomic(ctx, target, snap);
}

ps_status ps__hub_cache_ref(ps_ctx *ctx, const ps__hub_env *env, const char *repo,
                            const char *revision, const char *commit) {
  const char *rev = revision && *revision ? revision : "main";
  if (strcmp(rev, commit) == 0) return PS_OK;
  char base[PATH_MAX], path[PATH_MAX + 300];
  ps__hub_repo_dir(env, repo, base, sizeof(base));
  ps__hub_fmt(path, sizeof(path), "%s/refs/%s", base, rev);
  return ps__hub_write_atomic(ctx, path, commit, strlen(commit));
}
