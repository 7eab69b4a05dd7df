/* `nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id --format=csv` -> names, memory
 * and bus ids of a report's GPUs, matched by index. With a header the columns may come in any
 * order (and unknown ones are skipped); without one they must be exactly those four. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/busid.h"
#include "core/internal.h"
#include "import/import_internal.h"
#include "report/report_internal.h"

enum { COL_INDEX, COL_NAME, COL_MEMORY, COL_BUS_ID, COL_UUID, COL_KINDS, COL_OTHER = -1 };

#define MAX_FIELDS 64

typedef struct field {
  char text[128]; /* unquoted and trimmed; longer values are an error */
  int col;
} field;

typedef struct csv {
  ps_ctx *ctx;
  const char *name;
  int kind[MAX_FIELDS]; /* column kinds, COL_OTHER for skipped ones */
  int columns;
  char memory_unit[8]; /* from "memory.total [MiB]" */
  field f[MAX_FIELDS];
  int count;
} csv;

static ps_status fail_at(csv *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ps_status fail_at(csv *c, int line, int col, const char *fmt, ...) {
  char msg[PS_ERRBUF_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return ps__fail(c->ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", c->name, line, col, msg);
}

/* A field quoted for a message (escaped, cut). */
static const char *show(const field *f, char *buf, size_t len) {
  ps__tok t = {f->text, strlen(f->text), f->col};
  return ps__tok_show(&t, buf, len);
}

/* Splits a line at commas; fields may be "quoted" ("" inside is a quote). */
static ps_status split(csv *c, const ps__line *line) {
  size_t i = 0;
  c->count = 0;
  for (;;) {
    if (c->count == MAX_FIELDS)
      return fail_at(c, line->number, (int)i + 1, "more than %d fields", MAX_FIELDS);
    field *f = &c->f[c->count++];
    size_t o = 0;
    while (i < line->len && (line->text[i] == ' ' || line->text[i] == '\t'))
      i++;
    f->col = (int)i + 1;
    if (i < line->len && line->text[i] == '"') {
      for (i++;; i++) {
        if (i >= line->len) return fail_at(c, line->number, f->col, "unterminated quoted field");
        if (line->text[i] == '"' && !(i + 1 < line->len && line->text[i + 1] == '"')) break;
        if (line->text[i] == '"') i++;
        if (o + 1 >= sizeof(f->text))
          return fail_at(c, line->number, f->col, "field longer than %zu characters",
                         sizeof(f->text) - 1);
        f->text[o++] = line->text[i];
      }
      i++;
      while (i < line->len && (line->text[i] == ' ' || line->text[i] == '\t'))
        i++;
      if (i < line->len && line->text[i] != ',')
        return fail_at(c, line->number, (int)i + 1, "text after a quoted field");
    } else {
      size_t start = i;
      while (i < line->len && line->text[i] != ',')
        i++;
      size_t end = i;
      while (end > start && (line->text[end - 1] == ' ' || line->text[end - 1] == '\t'))
        end--;
      if (end - start >= sizeof(f->text))
        return fail_at(c, line->number, f->col, "field longer than %zu characters",
                       sizeof(f->text) - 1);
      memcpy(f->text, line->text + start, end - start);
      o = end - start;
    }
    f->text[o] = '\0';
    if (memchr(f->text, '\0', o)) return fail_at(c, line->number, f->col, "NUL byte in a field");
    if (i >= line->len) return PS_OK;
    i++; /* the comma */
  }
}

/* "memory.total [MiB]" -> COL_MEMORY with unit "MiB". */
static int column_kind(const char *text, char *unit, size_t unit_len) {
  static const struct {
    const char *name;
    int kind;
  } names[] = {{"index", COL_INDEX},         {"name", COL_NAME},         {"gpu_name", COL_NAME},
               {"memory.total", COL_MEMORY}, {"pci.bus_id", COL_BUS_ID}, {"gpu_bus_id", COL_BUS_ID},
               {"uuid", COL_UUID},           {"gpu_uuid", COL_UUID}};
  size_t len = strcspn(text, " [");
  const char *bracket = strchr(text, '[');
  if (bracket) {
    size_t n = strcspn(bracket + 1, "]");
    if (n < unit_len) {
      memcpy(unit, bracket + 1, n);
      unit[n] = '\0';
    }
  }
  for (size_t i = 0; i < PS_ARRAY_LEN(names); i++)
    if (strlen(names[i].name) == len && strncasecmp(text, names[i].name, len) == 0)
      return names[i].kind;
  return COL_OTHER;
}

static bool unknown_value(const char *text) { return text[0] == '[' || strcmp(text, "N/A") == 0; }

static ps_status parse_memory(csv *c, int line, const field *f, uint64_t *bytes) {
  const char *p = f->text;
  uint64_t value = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    if (value > (UINT64_MAX - 9) / 10) digits = 99;
    value = value * 10 + (uint64_t)(*p - '0');
  }
  while (*p == ' ')
    p++;
  const char *unit = *p ? p : c->memory_unit[0] ? c->memory_unit : "MiB";
  unsigned shift = strcmp(unit, "MiB") == 0   ? 20
                   : strcmp(unit, "GiB") == 0 ? 30
                   : strcmp(unit, "KiB") == 0 ? 10
                                              : 0;
  char shown[64];
  if (digits == 0 || digits > 18 || shift == 0 || value == 0 ||
      value > ((uint64_t)INT64_MAX >> shift))
    return fail_at(c, line, f->col,
                   "memory.total '%s' is not a size (expected e.g. '81559 MiB', or [N/A])",
                   show(f, shown, sizeof(shown)));
  *bytes = value << shift;
  return PS_OK;
}

static ps_status parse_row(csv *c, const ps__line *line, ps_report *report, int *seen_on) {
  int index = -1;
  char shown[64];
  ps_gpu gpu;
  for (int k = 0; k < c->columns; k++)
    if (c->kind[k] == COL_INDEX) {
      ps__tok t = {c->f[k].text, strlen(c->f[k].text), c->f[k].col};
      if (!ps__tok_uint(&t, PS_REPORT_MAX_GPUS, &index))
        return fail_at(c, line->number, c->f[k].col, "GPU index '%s' is not a number",
                       show(&c->f[k], shown, sizeof(shown)));
      if (index >= report->gpu_count)
        return fail_at(c, line->number, c->f[k].col,
                       "GPU index %d is not in the topology (it has %d GPUs)", index,
                       report->gpu_count);
      if (seen_on[index])
        return fail_at(c, line->number, c->f[k].col, "GPU %d listed twice (first on line %d)",
                       index, seen_on[index]);
      seen_on[index] = line->number;
    }
  if (index < 0) return fail_at(c, line->number, 1, "no index column");
  gpu = report->gpus[index];
  for (int k = 0; k < c->columns; k++) {
    const field *f = &c->f[k];
    if (c->kind[k] == COL_OTHER || c->kind[k] == COL_INDEX || unknown_value(f->text)) continue;
    if (c->kind[k] == COL_NAME || c->kind[k] == COL_UUID) {
      char *dst = c->kind[k] == COL_NAME ? gpu.name : gpu.uuid;
      if (!f->text[0]) continue;
      if (strlen(f->text) >= sizeof(gpu.name))
        return fail_at(c, line->number, f->col, "longer than %zu characters", sizeof(gpu.name) - 1);
      ps__strlcpy(dst, f->text, sizeof(gpu.name));
      gpu.valid |= c->kind[k] == COL_NAME ? PS_GPU_NAME : PS_GPU_UUID;
    } else if (c->kind[k] == COL_MEMORY) {
      ps_status st = parse_memory(c, line->number, f, &gpu.memory_total_bytes);
      if (st != PS_OK) return st;
      gpu.valid |= PS_GPU_MEMORY_TOTAL;
    } else if (c->kind[k] == COL_BUS_ID) {
      if (!ps__busid_canonical(f->text, gpu.pci_bus_id, sizeof(gpu.pci_bus_id)))
        return fail_at(c, line->number, f->col,
                       "'%s' is not a PCI bus id (expected e.g. 00000000:18:00.0)",
                       show(f, shown, sizeof(shown)));
      gpu.valid |= PS_GPU_PCI_BUS_ID;
    }
  }
  report->gpus[index] = gpu;
  return PS_OK;
}

/* The first line is a header when one of its fields names the index column. */
static bool is_header(csv *c) {
  char unit[8];
  for (int k = 0; k < c->count; k++)
    if (column_kind(c->f[k].text, unit, sizeof(unit)) == COL_INDEX) return true;
  return false;
}

/* Lines that are not CSV: blanks, the command itself, markdown fences. */
static bool skipped(const ps__line *line) {
  size_t i = 0;
  while (i < line->len && (line->text[i] == ' ' || line->text[i] == '\t'))
    i++;
  if (i == line->len) return true;
  if (line->len - i >= 3 && memcmp(line->text + i, "```", 3) == 0) return true;
  for (size_t k = i; k + 10 <= line->len; k++)
    if (memcmp(line->text + k, "nvidia-smi", 10) == 0) return true;
  return false;
}

ps_status ps__import_gpu_info_text(ps_ctx *ctx, ps_report *report, const char *text, size_t len,
                                   const char *name) {
  ps_status st = PS_OK;
  size_t bytes = (size_t)report->gpu_count * sizeof(ps_gpu);
  int *seen_on = ps__calloc((size_t)report->gpu_count + 1, sizeof(int)), rows = 0;
  ps_gpu *saved = bytes ? ps__calloc(1, bytes) : NULL;
  csv *c = ps__calloc(1, sizeof(*c));
  if (!c || !seen_on || (bytes && !saved)) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", name);
    goto cleanup;
  }
  if (bytes) memcpy(saved, report->gpus, bytes); /* all or nothing */
  c->ctx = ctx;
  c->name = name;
  ps__lines it;
  ps__line line;
  ps__lines_init(&it, text, len);
  while (ps__lines_next(&it, &line)) {
    if (skipped(&line)) continue;
    if ((st = split(c, &line)) != PS_OK) goto cleanup;
    if (c->columns == 0 && is_header(c)) {
      bool have[COL_KINDS] = {false};
      for (int k = 0; k < c->count; k++) {
        int kind = column_kind(c->f[k].text, c->memory_unit, sizeof(c->memory_unit));
        if (kind != COL_OTHER && have[kind]) {
          char shown[64];
          st = fail_at(c, line.number, c->f[k].col, "column '%s' appears twice",
                       show(&c->f[k], shown, sizeof(shown)));
          goto cleanup;
        }
        if (kind != COL_OTHER) have[kind] = true;
        c->kind[k] = kind;
      }
      c->columns = c->count;
      continue;
    }
    if (c->columns == 0) { /* noheader: the documented column order */
      static const int order[] = {COL_INDEX, COL_NAME, COL_MEMORY, COL_BUS_ID};
      memcpy(c->kind, order, sizeof(order));
      c->columns = 4;
    }
    if (c->count != c->columns) {
      st = fail_at(c, line.number, c->f[c->count < c->columns ? 0 : c->columns].col,
                   "%d fields; expected %d (index, name, memory.total, pci.bus_id)", c->count,
                   c->columns);
      goto cleanup;
    }
    if ((st = parse_row(c, &line, report, seen_on)) != PS_OK) goto cleanup;
    rows++;
  }
  if (rows == 0)
    st = ps__fail(ctx, PS_ERR_BAD_INPUT,
                  "%s:1:1: no GPU rows (expected the output of nvidia-smi "
                  "--query-gpu=index,name,memory.total,pci.bus_id --format=csv)",
                  name);
cleanup:
  if (st != PS_OK && saved) memcpy(report->gpus, saved, bytes);
  ps__free(saved);
  ps__free(seen_on);
  ps__free(c);
  return st;
}

ps_status ps_import_gpu_info(ps_ctx *ctx, ps_report *report, const char *path) {
  char *text = NULL;
  size_t len = 0;
  if (!report || !path)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_import_gpu_info: NULL argument");
  ps_status st = ps__import_read(ctx, path, "nvidia-smi --query-gpu CSV", &text, &len);
  if (st == PS_OK) st = ps__import_gpu_info_text(ctx, report, text, len, path);
  ps__free(text);
  return st;
}
