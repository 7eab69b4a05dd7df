/* The --help text of the plan request's options, written from the library's field table so a
 * new field documents itself in `peerscope plan --help` and `peerscope launch --help`. */
#include <stdio.h>
#include <string.h>

#include "plan_args.h"

#define HELP_WIDTH 98
#define HELP_COLUMN 27
#define NBSP '\x1f'

static bool in_group(const ps_plan_field *f, const char *group) {
  return !group || strcmp(f->group, group) == 0;
}

/* "--tp N" */
static void flag_text(const ps_plan_field *f, char *out, size_t len) {
  snprintf(out, len, "--%s%s%s", f->flag, f->metavar ? " " : "", f->metavar ? f->metavar : "");
}

/* Writes `text` from column `col`, wrapping at HELP_WIDTH onto lines indented by `indent`. */
static void wrap(FILE *f, const char *text, int col, int indent) {
  const char *p = text;
  while (*p) {
    size_t word = strcspn(p, " ");
    if (col > indent && col + 1 + (int)word > HELP_WIDTH) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', f);
      col++;
    }
    for (size_t k = 0; k < word; k++) /* NBSP: a space that does not break */
      fputc(p[k] == NBSP ? ' ' : p[k], f);
    col += (int)word;
    p += word;
    while (*p == ' ')
      p++;
  }
}

void cli_plan_help(FILE *f, const char *group) {
  for (int i = 0; i < ps_plan_field_count(); i++) {
    const ps_plan_field *fl = ps_plan_field_at(i);
    if (!in_group(fl, group)) continue;
    char flag[96], help[512];
    flag_text(fl, flag, sizeof(flag));
    int col = fprintf(f, "  %-*s", HELP_COLUMN - 2, flag);
    snprintf(help, sizeof(help), "%s%s%s%s", fl->help, fl->def ? " (default " : "",
             fl->def ? fl->def : "", fl->def ? ")" : "");
    wrap(f, help, col, HELP_COLUMN);
    fputc('\n', f);
  }
}

/* The group's flags joined into all (cap bytes), each as "[flag]" (bracketed) or separated by
 * ", "; spaces inside a flag become NBSP so it wraps as one word. Returns the length. */
static size_t join_flags(const char *group, bool bracketed, char *all, size_t cap) {
  size_t used = 0;
  all[0] = '\0';
  for (int i = 0; i < ps_plan_field_count() && used < cap; i++) {
    const ps_plan_field *fl = ps_plan_field_at(i);
    if (!in_group(fl, group)) continue;
    char flag[96];
    flag_text(fl, flag, sizeof(flag));
    for (char *p = flag; *p; p++)
      if (*p == ' ') *p = NBSP;
    used += (size_t)snprintf(all + used, cap - used, bracketed ? "%s[%s]" : "%s%s",
                             used ? (bracketed ? " " : ", ") : "", flag);
  }
  return used < cap ? used : cap - 1;
}

void cli_plan_synopsis(FILE *f, const char *group, int indent) {
  char all[2048];
  join_flags(group, true, all, sizeof(all));
  fprintf(f, "%*s", indent, "");
  wrap(f, all, indent, indent);
  fputc('\n', f);
}

void cli_plan_flags(FILE *f, const char *group, const char *then) {
  char all[2048];
  size_t used = join_flags(group, false, all, sizeof(all));
  snprintf(all + used, sizeof(all) - used, "   %s", then);
  fputs("  ", f);
  wrap(f, all, 2, 2);
  fputc('\n', f);
}
