/* The files behind the paths the doctor read: each path is resolved component by component
 * like the kernel does, every symlink on the way becomes a relative link member, and the
 * file or directory it ends at becomes a member at its real place. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture_internal.h"

#define MAX_HOPS 40

void ps__members_add(ps__members *m, const char *path, ps__member_type type, char *data,
                     size_t len) {
  for (int i = 0; i < m->count; i++) {
    ps__member *e = &m->items[i];
    if (strcmp(e->path, path) != 0) continue;
    if (e->type == PS_MEMBER_DIR && type != PS_MEMBER_DIR) {
      ps__free(e->data);
      e->type = type, e->data = data, e->len = len;
    } else {
      ps__free(data);
    }
    return;
  }
  if (m->count == m->cap) {
    int cap = m->cap ? m->cap * 2 : 64;
    ps__member *grown = ps__realloc(m->items, (size_t)cap * sizeof(*grown));
    if (!grown) goto oom;
    m->items = grown;
    m->cap = cap;
  }
  char *copy = ps__strdup(path);
  if (!copy) goto oom;
  m->items[m->count++] = (ps__member){copy, type, data, len};
  return;
oom:
  m->oom = true;
  ps__free(data);
}

void ps__members_free(ps__members *m) {
  for (int i = 0; i < m->count; i++) {
    ps__free(m->items[i].path);
    ps__free(m->items[i].data);
  }
  ps__free(m->items);
  memset(m, 0, sizeof(*m));
}

/* Reads a whole (sysfs or proc) file: their sizes in stat are not the truth. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, used = 0;
  char *data = ps__calloc(1, cap);
  while (data) {
    size_t n = fread(data + used, 1, cap - used, f);
    used += n;
    if (n == 0 || used >= PS_CAPTURE_MAX_MEMBER) break;
    if (used == cap) {
      char *grown = ps__realloc(data, cap * 2);
      if (!grown) {
        ps__free(data);
        data = NULL;
        break;
      }
      data = grown;
      cap *= 2;
    }
  }
  fclose(f);
  *len = used;
  return data;
}

static void member_name(char *out, size_t len, const char *rel) {
  snprintf(out, len, PS_CAPTURE_ROOT "%s", rel);
}

/* "/a/b" -> "../.." from inside "/a/b" back to the root. */
static void up_to_root(const char *dir, char *out, size_t len) {
  out[0] = '\0';
  for (const char *p = dir; *p; p++)
    if (*p == '/') ps__strlcpy(out + strlen(out), "../", len - strlen(out));
}

/* Records the symlink at `next` (its target as read: `target`) as a link member, stored
 * relative so it means the same inside the extracted tree. False when out of memory. */
static bool record_link(ps__members *m, const char *cur, const char *next, const char *target) {
  char rel_target[PATH_MAX * 2], name[PATH_MAX + 16];
  if (target[0] == '/') {
    char up[PATH_MAX];
    up_to_root(cur, up, sizeof(up));
    snprintf(rel_target, sizeof(rel_target), "%s%s", up[0] ? up : "./", target + 1);
  } else {
    ps__strlcpy(rel_target, target, sizeof(rel_target));
  }
  member_name(name, sizeof(name), next);
  char *data = ps__strdup(rel_target);
  if (!data) {
    m->oom = true;
    return false;
  }
  ps__members_add(m, name, PS_MEMBER_LINK, data, strlen(data));
  return true;
}

/* Walks `path` under root component by component, recording every symlink on the way, and
 * leaves the path it ends at in cur (cur_len bytes). False when it cannot be followed (not
 * there, above the root, too many links, too long): then nothing more is recorded. */
static bool follow(ps__members *m, const char *root, const char *path, char *cur, size_t cur_len) {
  char todo[PATH_MAX], full[PATH_MAX + 512];
  if (strlen(path) >= sizeof(todo) || path[0] != '/') return false;
  ps__strlcpy(todo, path, sizeof(todo));
  cur[0] = '\0';
  int hops = 0;
  size_t pos = 0;
  while (todo[pos]) {
    while (todo[pos] == '/')
      pos++;
    size_t n = strcspn(todo + pos, "/");
    if (n == 0) break;
    char comp[NAME_MAX + 1];
    if (n > NAME_MAX) return false;
    memcpy(comp, todo + pos, n);
    comp[n] = '\0';
    pos += n;
    if (strcmp(comp, ".") == 0) continue;
    if (strcmp(comp, "..") == 0) {
      char *slash = strrchr(cur, '/');
      if (!slash) return false; /* above the root: not recorded */
      *slash = '\0';
      continue;
    }
    char next[PATH_MAX];
    if (snprintf(next, sizeof(next), "%s/%s", cur, comp) >= (int)sizeof(next)) return false;
    snprintf(full, sizeof(full), "%s%s", root, next);
    struct stat st;
    if (lstat(full, &st) != 0) return false; /* not there: the replay finds it missing too */
    if (!S_ISLNK(st.st_mode)) {
      ps__strlcpy(cur, next, cur_len);
      continue;
    }
    char target[PATH_MAX], rest[PATH_MAX];
    ssize_t tl = readlink(full, target, sizeof(target) - 1);
    if (tl <= 0 || ++hops > MAX_HOPS) return false;
    target[tl] = '\0';
    if (!record_link(m, cur, next, target)) return false;
    /* Go on from the link's target, then the rest of the path. */
    if (snprintf(rest, sizeof(rest), "%s/%s", target, todo + pos) >= (int)sizeof(rest))
      return false;
    ps__strlcpy(todo, rest, sizeof(todo));
    pos = 0;
    if (target[0] == '/') cur[0] = '\0';
  }
  return true;
}

void ps__capture_record_path(ps__members *m, const char *root, const char *path, bool list) {
  char cur[PATH_MAX], full[PATH_MAX + 512], name[PATH_MAX + 16];
  if (!follow(m, root, path, cur, sizeof(cur))) return;
  snprintf(full, sizeof(full), "%s%s", root, cur[0] ? cur : "/");
  struct stat st;
  if (stat(full, &st) != 0) return;
  member_name(name, sizeof(name), cur);
  if (S_ISREG(st.st_mode)) {
    size_t len = 0;
    char *data = slurp(full, &len);
    if (data) ps__members_add(m, name, PS_MEMBER_FILE, data, len);
    return;
  }
  if (!S_ISDIR(st.st_mode)) return;
  ps__members_add(m, name, PS_MEMBER_DIR, NULL, 0);
  if (!list) return;
  DIR *dir = opendir(full);
  if (!dir) return;
  struct dirent *e;
  /* Only the names matter to the doctor: each entry becomes an empty directory. */
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char entry[PATH_MAX + 300];
    snprintf(entry, sizeof(entry), "%s/%s", name, e->d_name);
    ps__members_add(m, entry, PS_MEMBER_DIR, NULL, 0);
  }
  closedir(dir);
}
