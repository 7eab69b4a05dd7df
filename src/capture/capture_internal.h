/* The capture's parts: the member list being built, the sysfs recorder, nvidia-smi. */
#ifndef PS_CAPTURE_INTERNAL_H
#define PS_CAPTURE_INTERNAL_H

#include "capture/capture.h"
#include "core/internal.h"

typedef enum ps__member_type { PS_MEMBER_FILE, PS_MEMBER_DIR, PS_MEMBER_LINK } ps__member_type;

typedef struct ps__member {
  char *path; /* relative, no leading '/' */
  ps__member_type type;
  char *data; /* file contents, or a link's target */
  size_t len;
} ps__member;

typedef struct ps__members {
  ps__member *items;
  int count, cap;
  bool oom;
} ps__members;

/* Adds a member, taking `data` (may be NULL). A file or link replaces a directory of the
 * same path (a listed name that is also read); otherwise the first one stays. */
void ps__members_add(ps__members *m, const char *path, ps__member_type type, char *data,
                     size_t len);
void ps__members_free(ps__members *m);

/* Records the files behind one path the doctor read, under `root` ("" = the real tree),
 * links included, as members under "root/". `list`: the directory's entry names too. */
void ps__capture_record_path(ps__members *m, const char *root, const char *path, bool list);

/* Runs `nvidia-smi args...` (no shell); its output, or NULL when it is not there or fails. */
char *ps__capture_run_smi(const char *const *args, size_t *len);

#endif
