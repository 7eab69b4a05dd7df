/* safetensors headers: exact weight bytes and element counts without reading a weight.
 *
 * A file is an 8-byte little-endian length N, N bytes of JSON
 *   {"name": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [a, b]}, ...,
 *    "__metadata__": {...}}
 * (padded with spaces), then the tensor data, whose offsets count from the end of the header.
 * The checks are the safetensors library's own: the header starts with '{', every tensor's
 * byte range matches dtype x shape, and the ranges tile the data from 0 with no gap or
 * overlap. Files come from the network and from half-finished downloads, so every length is
 * bounded before it is trusted and every error names the byte offset. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checked.h"
#include "core/internal.h"
#include "model/model_internal.h"

static const struct {
  const char *name;
  int bits;
} dtypes[] = {{"BF16", 16},   {"F16", 16},    {"F32", 32},    {"F64", 64},    {"F8_E4M3", 8},
              {"F8_E5M2", 8}, {"F8_E8M0", 8}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"F4", 4},
              {"I8", 8},      {"U8", 8},      {"I16", 16},    {"U16", 16},    {"I32", 32},
              {"U32", 32},    {"I64", 64},    {"U64", 64},    {"BOOL", 8},    {"C64", 64}};

typedef struct range {
  uint64_t begin, end;
  const char *tensor;
} range;

static ps_status st_fail(ps_ctx *ctx, const char *name, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ps_status st_fail(ps_ctx *ctx, const char *name, uint64_t offset, const char *fmt, ...) {
  char msg[PS_ERRBUF_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: offset %llu: %s", name, (unsigned long long)offset,
                  msg);
}

/* A tensor name fit for a one-line message: printable, at most 60 bytes. */
static const char *shown(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] && i + 4 < len && i < 60; i++)
    buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* Where the tensor's key sits in the file, for messages: 8 + its position in the header, or
 * 8 (the header's start) when its JSON spelling differs from the name (escapes). */
static uint64_t key_offset(const char *header, size_t len, const char *key) {
  char needle[300];
  int n = snprintf(needle, sizeof(needle), "\"%s\"", key);
  if (n <= 0 || (size_t)n >= sizeof(needle)) return 8;
  const char *at = memmem(header, len, needle, (size_t)n);
  return at ? 8 + (uint64_t)(at - header) : 8;
}

static uint64_t read_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* The header length against its bound and the bytes there are after the 8-byte prefix. */
static ps_status check_length(ps_ctx *ctx, const char *name, uint64_t n, uint64_t size) {
  /* The value is not shown: in a file that is not safetensors it is 8 bytes of its text. */
  if (n > PS_SAFETENSORS_HEADER_MAX)
    return st_fail(ctx, name, 0,
                   "the header length is absurd (over %u MiB; not a safetensors file?)",
                   PS_SAFETENSORS_HEADER_MAX >> 20);
  if (n > size - 8)
    return st_fail(ctx, name, 0,
                   "header length %llu runs past the end of the file (%llu bytes; truncated?)",
                   (unsigned long long)n, (unsigned long long)size);
  return PS_OK;
}

static ps_status get_u64(const json_t *v, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return PS_ERR_BAD_INPUT;
  *out = (uint64_t)json_integer_value(v);
  return PS_OK;
}

/* One tensor entry: its byte range, checked against dtype x shape. */
static ps_status read_tensor(ps_ctx *ctx, const char *name, uint64_t at, const char *key,
                             const json_t *t, range *r, uint64_t *elements) {
  char k[72];
  const char *dtype = json_string_value(json_object_get(t, "dtype"));
  const json_t *shape = json_object_get(t, "shape");
  const json_t *offsets = json_object_get(t, "data_offsets");
  if (!json_is_object(t) || !dtype || !json_is_array(shape) || !json_is_array(offsets))
    return st_fail(ctx, name, at,
                   "tensor '%s': expected an object with dtype, shape and data_offsets",
                   shown(key, k, sizeof(k)));
  int bits = 0;
  for (size_t i = 0; i < PS_ARRAY_LEN(dtypes) && !bits; i++)
    if (strcmp(dtype, dtypes[i].name) == 0) bits = dtypes[i].bits;
  if (!bits) {
    char d[72];
    return st_fail(ctx, name, at, "tensor '%s': unknown dtype '%s'", shown(key, k, sizeof(k)),
                   shown(dtype, d, sizeof(d)));
  }
  uint64_t count = 1, dim;
  for (size_t i = 0; i < json_array_size(shape); i++) {
    if (get_u64(json_array_get(shape, i), &dim) != PS_OK)
      return st_fail(ctx, name, at, "tensor '%s': shape: expected non-negative integers",
                     shown(key, k, sizeof(k)));
    if (__builtin_mul_overflow(count, dim, &count))
      return st_fail(ctx, name, at, "tensor '%s': shape has more than 2^64 elements",
                     shown(key, k, sizeof(k)));
  }
  if (count > PS_MAX_PARAMS)
    return st_fail(
        ctx, name, at, "tensor '%s': %llu elements; no model is that large (at most %llu)",
        shown(key, k, sizeof(k)), (unsigned long long)count, (unsigned long long)PS_MAX_PARAMS);
  if (json_array_size(offsets) != 2 || get_u64(json_array_get(offsets, 0), &r->begin) != PS_OK ||
      get_u64(json_array_get(offsets, 1), &r->end) != PS_OK || r->end < r->begin)
    return st_fail(ctx, name, at,
                   "tensor '%s': data_offsets: expected [begin, end], 0 <= begin <= end",
                   shown(key, k, sizeof(k)));
  uint64_t total_bits;
  if (__builtin_mul_overflow(count, (uint64_t)bits, &total_bits) || total_bits % 8 != 0)
    return st_fail(ctx, name, at,
                   "tensor '%s': %llu elements of %s are not a whole number of bytes",
                   shown(key, k, sizeof(k)), (unsigned long long)count, dtype);
  if (r->end - r->begin != total_bits / 8)
    return st_fail(ctx, name, at,
                   "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %llu elements of "
                   "%s need %llu",
                   shown(key, k, sizeof(k)), (unsigned long long)r->begin,
                   (unsigned long long)r->end, (unsigned long long)(r->end - r->begin),
                   (unsigned long long)count, dtype, (unsigned long long)(total_bits / 8));
  r->tensor = key;
  *elements = count;
  return PS_OK;
}

static int by_offset(const void *a, const void *b) {
  const range *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

ps_status ps__safetensors_parse_header(ps_ctx *ctx, const uint8_t *buf, size_t len,
                                       const char *name, ps__st_sum *out) {
  ps_status st = PS_OK;
  json_t *doc = NULL;
  range *ranges = NULL;
  json_error_t err;
  char k[72];
  if (!out || (!buf && len))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps__safetensors_parse_header: NULL argument");
  memset(out, 0, sizeof(*out));
  if (!name) name = "<safetensors>";
  if (len < 8)
    return st_fail(ctx, name, 0,
                   "%zu bytes is too short for a safetensors file (an 8-byte header length "
                   "comes first)",
                   len);
  uint64_t n = read_le64(buf);
  st = check_length(ctx, name, n, len);
  if (st != PS_OK) return st;
  const char *header = (const char *)buf + 8;
  if (n == 0 || header[0] != '{')
    return st_fail(ctx, name, 8, "the header does not start with '{'");
  doc = json_loadb(header, (size_t)n, JSON_REJECT_DUPLICATES, &err);
  if (!doc) {
    if (json_error_code(&err) == json_error_out_of_memory)
      return ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory parsing the header", name);
    return st_fail(ctx, name, 8 + (uint64_t)err.position, "header JSON: %s", err.text);
  }
  if (!json_is_object(doc)) {
    st = st_fail(ctx, name, 8, "the header is not a JSON object");
    goto cleanup;
  }
  ranges = ps__calloc(json_object_size(doc) + 1, sizeof(*ranges));
  if (!ranges) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory", name);
    goto cleanup;
  }
  size_t count = 0;
  const char *key;
  json_t *value;
  json_object_foreach(doc, key, value) {
    uint64_t at = key_offset(header, (size_t)n, key), elements = 0;
    if (strcmp(key, "__metadata__") == 0) {
      if (!json_is_object(value)) {
        st = st_fail(ctx, name, at, "__metadata__: expected an object");
        goto cleanup;
      }
      continue;
    }
    st = read_tensor(ctx, name, at, key, value, &ranges[count], &elements);
    if (st != PS_OK) goto cleanup;
    out->params = ps__add_u64_sat(out->params, elements);
    count++;
  }
  /* The data must be tiled exactly, as the safetensors library checks on load. */
  qsort(ranges, count, sizeof(*ranges), by_offset);
  /* Sorted by offset, so tensors may be listed in any order; one that overlaps (or nests in)
   * the previous starts before its end. */
  uint64_t expected = 0;
  for (size_t i = 0; i < count; i++) {
    if (ranges[i].begin != expected) {
      char prev[72];
      if (ranges[i].begin < expected)
        st = st_fail(ctx, name, key_offset(header, (size_t)n, ranges[i].tensor),
                     "tensor '%s': data starts at byte %llu, inside tensor '%s' (which ends at "
                     "%llu): tensors must not overlap",
                     shown(ranges[i].tensor, k, sizeof(k)), (unsigned long long)ranges[i].begin,
                     shown(ranges[i - 1].tensor, prev, sizeof(prev)), (unsigned long long)expected);
      else
        st = st_fail(ctx, name, key_offset(header, (size_t)n, ranges[i].tensor),
                     "tensor '%s': data starts at byte %llu, expected %llu (tensors must tile "
                     "the data with no gap or overlap)",
                     shown(ranges[i].tensor, k, sizeof(k)), (unsigned long long)ranges[i].begin,
                     (unsigned long long)expected);
      goto cleanup;
    }
    expected = ranges[i].end;
  }
  if (expected > PS_MAX_WEIGHT_BYTES || out->params > PS_MAX_PARAMS) {
    st = st_fail(ctx, name, 8,
                 "the tensors claim %llu bytes of data; no model is that large (at most %llu)",
                 (unsigned long long)expected, (unsigned long long)PS_MAX_WEIGHT_BYTES);
    goto cleanup;
  }
  out->data_bytes = expected;
  out->tensors = count;
cleanup:
  if (st != PS_OK) memset(out, 0, sizeof(*out));
  ps__free(ranges);
  json_decref(doc);
  return st;
}

/* pread until `len` bytes or the end of the file; the bytes read, or -1 with errno. */
static ssize_t read_at(int fd, uint8_t *buf, size_t len, off_t at) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, buf + got, len - got, at + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

ps_status ps__safetensors_read(ps_ctx *ctx, const char *path, ps__st_sum *sum) {
  ps_status st = PS_OK;
  uint8_t head[8], *buf = NULL;
  struct stat sb;
  ps__st_sum one;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
  if (fstat(fd, &sb) != 0) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
    goto cleanup;
  }
  ssize_t got = read_at(fd, head, sizeof(head), 0);
  if (got < 0) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
    goto cleanup;
  }
  if (got < 8) {
    st = ps__safetensors_parse_header(ctx, head, (size_t)got, path, &one);
    goto cleanup;
  }
  uint64_t n = read_le64(head), size = sb.st_size > 8 ? (uint64_t)sb.st_size : 8;
  st = check_length(ctx, path, n, size); /* before trusting n with an allocation */
  if (st != PS_OK) goto cleanup;
  buf = ps__calloc(1, 8 + (size_t)n);
  if (!buf) {
    st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory for a %llu-byte header", path,
                  (unsigned long long)n);
    goto cleanup;
  }
  memcpy(buf, head, 8);
  got = read_at(fd, buf + 8, (size_t)n, 8);
  if (got < 0) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
    goto cleanup;
  }
  /* A file that shrank since fstat reads short: the parser reports the truncation. */
  st = ps__safetensors_parse_header(ctx, buf, 8 + (size_t)got, path, &one);
  if (st != PS_OK) goto cleanup;
  /* As the safetensors library checks on load: the data ends where the file does. A 100-byte
   * file whose header claims a terabyte is cut short or forged, never that many weights. */
  if (one.data_bytes != size - 8 - n) {
    st = st_fail(ctx, path, 8 + n,
                 "the tensors need %llu bytes of data, but the file has %llu after the header "
                 "(%s)",
                 (unsigned long long)one.data_bytes, (unsigned long long)(size - 8 - n),
                 one.data_bytes > size - 8 - n ? "cut short: an interrupted download?"
                                               : "bytes no tensor describes");
    goto cleanup;
  }
  sum->data_bytes = ps__add_u64_sat(sum->data_bytes, one.data_bytes);
  sum->params = ps__add_u64_sat(sum->params, one.params);
  sum->tensors = ps__add_u64_sat(sum->tensors, one.tensors);
cleanup:
  ps__free(buf);
  close(fd);
  return st;
}
