/* The version of the vLLM that `launch` would run, for the plan's default --vllm-version:
 * read from the package metadata beside the executable (vllm-X.dist-info/METADATA in the
 * site-packages of its Python prefix: no Python started), else from `vllm --version` (it
 * imports torch: seconds), whose answer is cached per executable, size and mtime. */
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/spawn.h"
#include "hub/hub_internal.h"

#define VERSION_TIMEOUT_MS 10000
#define CACHE_SCHEMA "peerscope.vllm-version/1"

extern char **environ;

/* `name` in PATH (or as given when it has a slash), as an executable path. */
static bool find_exe(const char *name, char *out, size_t len) {
  if (strchr(name, '/')) {
    ps__strlcpy(out, name, len);
    return access(out, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  while (path && *path) {
    size_t n = strcspn(path, ":");
    if (n > 0 && snprintf(out, len, "%.*s/%s", (int)n, path, name) < (int)len &&
        access(out, X_OK) == 0)
      return true;
    path += n + (path[n] == ':');
  }
  return false;
}

static void parent(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash)
    ps__strlcpy(path, ".", 2);
  else if (slash == path)
    path[1] = '\0';
  else
    *slash = '\0';
}

/* "Version: X" of one METADATA file. */
static bool metadata_version(const char *file, char *out, size_t len) {
  FILE *f = fopen(file, "r");
  if (!f) return false;
  char line[256];
  bool found = false;
  while (!found && fgets(line, sizeof(line), f)) {
    if (line[0] == '\n') break; /* the headers end at the first blank line */
    if (strncmp(line, "Version: ", 9) == 0) {
      line[strcspn(line, "\r\n")] = '\0';
      found = line[9] != '\0' && strlen(line + 9) < len;
      if (found) ps__strlcpy(out, line + 9, len);
    }
  }
  fclose(f);
  return found;
}

/* vllm-*.dist-info/METADATA under prefix/lib/python3.../{site,dist}-packages. */
static bool prefix_version(const char *prefix, char *out, size_t len, char *where, size_t wlen) {
  static const char *const dirs[] = {
      "%s/lib/python3*/site-packages/vllm-*.dist-info/METADATA",
      "%s/lib/python3*/dist-packages/vllm-*.dist-info/METADATA",
      "%s/local/lib/python3*/dist-packages/vllm-*.dist-info/METADATA"};
  for (size_t i = 0; i < PS_ARRAY_LEN(dirs); i++) {
    char pattern[PATH_MAX + 96];
    snprintf(pattern, sizeof(pattern), dirs[i], prefix);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) continue;
    bool found = false;
    for (size_t k = g.gl_pathc; k-- > 0 && !found;) /* the newest name sorts last */
      if (metadata_version(g.gl_pathv[k], out, len)) {
        found = true;
        ps__strlcpy(where, g.gl_pathv[k], wlen);
      }
    globfree(&g);
    if (found) return true;
  }
  return false;
}

/* The executable's Python prefix: its own bin/.. and its interpreter's (the #! line). */
static bool metadata(const char *exe, char *out, size_t len, char *where, size_t wlen) {
  char prefix[PATH_MAX];
  ps__strlcpy(prefix, exe, sizeof(prefix));
  parent(prefix);
  parent(prefix);
  if (prefix_version(prefix, out, len, where, wlen)) return true;
  FILE *f = fopen(exe, "r");
  char line[PATH_MAX];
  bool got = f && fgets(line, sizeof(line), f) && strncmp(line, "#!/", 3) == 0;
  if (f) fclose(f);
  if (!got) return false;
  line[strcspn(line, " \t\r\n")] = '\0';
  if (strstr(line, "/env")) return false; /* #!/usr/bin/env python3: no fixed prefix */
  ps__strlcpy(prefix, line + 2, sizeof(prefix));
  parent(prefix);
  parent(prefix);
  return prefix_version(prefix, out, len, where, wlen);
}

/* `exe --version`, at most VERSION_TIMEOUT_MS: the last line of its output that starts with a
 * digit. */
static bool ask(const char *exe, char *out, size_t len) {
  char *argv[] = {(char *)exe, "--version", NULL};
  ps__spawned child;
  if (ps__spawn_grouped(argv, environ, false, &child) != 0) return false;
  char buf[4096];
  size_t n = 0;
  double end = ps__now_ms() + VERSION_TIMEOUT_MS;
  bool open_out = true;
  while (open_out && ps__now_ms() < end) {
    struct pollfd p = {child.out_fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t got = read(child.out_fd, buf + n, sizeof(buf) - 1 - n);
    if (got > 0) n += (size_t)got;
    if (got <= 0 && errno != EINTR) open_out = false;
    if (n == sizeof(buf) - 1) open_out = false;
  }
  kill(-child.pid, SIGKILL); /* whatever is left of it */
  waitpid(child.pid, NULL, 0);
  close(child.out_fd);
  close(child.err_fd);
  buf[n] = '\0';
  bool found = false;
  for (char *line = strtok(buf, "\r\n"); line; line = strtok(NULL, "\r\n"))
    if (line[0] >= '0' && line[0] <= '9' && strlen(line) < len && !strchr(line, ' ')) {
      ps__strlcpy(out, line, len);
      found = true;
    }
  return found;
}

/* The cache of `vllm --version` answers, keyed by the executable's path, size and mtime. */
static void cache_key(const char *exe, char *key, size_t len) {
  struct stat st;
  if (stat(exe, &st) != 0) memset(&st, 0, sizeof(st));
  snprintf(key, len, "%s|%lld|%lld", exe, (long long)st.st_size, (long long)st.st_mtime);
}

static bool cached(const char *path, const char *key, char *out, size_t len) {
  json_t *doc = json_load_file(path, 0, NULL);
  const char *schema = json_string_value(json_object_get(doc, "schema"));
  const char *v = schema && strcmp(schema, CACHE_SCHEMA) == 0
                      ? json_string_value(json_object_get(json_object_get(doc, "answers"), key))
                      : NULL;
  bool ok = v && *v && strlen(v) < len;
  if (ok) ps__strlcpy(out, v, len);
  json_decref(doc);
  return ok;
}

static void remember(const char *path, const char *key, const char *version) {
  json_t *doc = json_load_file(path, 0, NULL);
  const char *schema = json_string_value(json_object_get(doc, "schema"));
  if (!schema || strcmp(schema, CACHE_SCHEMA) != 0 ||
      !json_is_object(json_object_get(doc, "answers"))) {
    json_decref(doc);
    doc = json_pack("{s:s, s:{}}", "schema", CACHE_SCHEMA, "answers");
  }
  json_object_set_new(json_object_get(doc, "answers"), key, json_string(version));
  char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
  if (text) ps__hub_write_atomic(NULL, path, text, strlen(text)); /* best effort */
  free(text);
  json_decref(doc);
}

bool ps_vllm_installed_version(const char *vllm, char *version, size_t len, char *why,
                               size_t why_len) {
  if (!version || !len) return false;
  version[0] = '\0';
  char where_buf[PATH_MAX + 64];
  char *where = why && why_len ? why : where_buf;
  size_t wlen = why && why_len ? why_len : sizeof(where_buf);
  where[0] = '\0';
  const char *name = vllm && *vllm ? vllm : getenv("PEERSCOPE_VLLM");
  if (!name || !*name) name = "vllm";
  if (strcmp(name, "none") == 0) return false;
  char exe[PATH_MAX];
  if (!find_exe(name, exe, sizeof(exe))) return false;
  char meta[PATH_MAX + 64];
  if (metadata(exe, version, len, meta, sizeof(meta))) {
    char *end = strrchr(meta, '/'), *dist;
    if (end) *end = '\0'; /* .../vllm-X.dist-info/METADATA -> vllm-X.dist-info */
    dist = strrchr(meta, '/');
    snprintf(where, wlen, "installed: %s (%s)", exe, dist ? dist + 1 : meta);
    return true;
  }
  char dir[1024], path[1100], key[PATH_MAX + 48];
  cache_key(exe, key, sizeof(key));
  bool cache = ps__cache_dir(NULL, dir, sizeof(dir)) &&
               snprintf(path, sizeof(path), "%s/vllm-version.json", dir) < (int)sizeof(path);
  if (cache && cached(path, key, version, len)) {
    snprintf(where, wlen, "installed: %s (its --version, cached)", exe);
    return true;
  }
  if (!ask(exe, version, len)) return false;
  if (cache) remember(path, key, version);
  snprintf(where, wlen, "installed: %s (its --version)", exe);
  return true;
}
