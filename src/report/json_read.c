/* ps_report_parse_json / ps_report_read_json: the exact inverse of ps_report_to_json
 * (docs/topology-report.md). Strict: every key required, no unknown keys, values in range,
 * every directed pair exactly once; the fields are kept as the document has them. The optional
 * "bench" object is json_bench_read.c's. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "report/json_get.h"
#include "report/json_internal.h"
#include "report/report_internal.h"

/* Reading a file: anything larger is not a topology report. */
#define PS_REPORT_MAX_BYTES (1u << 30)

static const char verdict_list[] =
    "not_run, ok, corrupt, error, hang, unsupported, skipped or unavailable";

static ps_status get_verdict(const ps__jreader *r, const json_t *obj, const char *path,
                             const char *key, ps_verdict *out) {
  char name[32], at[PS_JPATH_LEN];
  ps_status st = ps__jstr(r, obj, path, key, false, name, sizeof(name), NULL);
  if (st == PS_OK && !ps__verdict_parse(name, out))
    st = ps__jfail(r, ps__jpath_key(at, path, key), "unknown verdict '%s' (expected %s)", name,
                   verdict_list);
  return st;
}

static ps_status get_claim(const ps__jreader *r, const json_t *obj, const char *path,
                           const char *key, ps_claim *out) {
  char name[32], at[PS_JPATH_LEN];
  bool set;
  *out = PS_CLAIM_UNKNOWN;
  ps_status st = ps__jstr(r, obj, path, key, true, name, sizeof(name), &set);
  if (st == PS_OK && set && !ps__claim_parse(name, out))
    st = ps__jfail(r, ps__jpath_key(at, path, key),
                   "unknown claim '%s' (expected OK, CNS, GNS, TNS, DIS, NS, U or null)", name);
  return st;
}

/* An int member; the reader's int fields all fit an int. */
static ps_status get_int(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                         bool nullable, long long min, int *out, bool *set) {
  long long value;
  bool present = true;
  ps_status st = ps__jint(r, obj, path, key, nullable, min, INT_MAX, &value, &present);
  if (st == PS_OK && present) *out = (int)value;
  if (set) *set = present;
  return st;
}

static ps_status get_u64(const ps__jreader *r, const json_t *obj, const char *path, const char *key,
                         uint64_t *out, uint32_t *valid, uint32_t bit) {
  long long value;
  bool set;
  ps_status st = ps__jint(r, obj, path, key, true, 0, LLONG_MAX, &value, &set);
  if (st == PS_OK && set) {
    *out = (uint64_t)value;
    *valid |= bit;
  }
  return st;
}

static ps_status get_opt_str(const ps__jreader *r, const json_t *obj, const char *path,
                             const char *key, char *out, size_t cap, uint32_t *valid,
                             uint32_t bit) {
  bool set;
  ps_status st = ps__jstr(r, obj, path, key, true, out, cap, &set);
  if (st == PS_OK && set && valid) *valid |= bit;
  return st;
}

/* A decimal number without sign or leading zeros (one spelling per value); *p moves past. */
static bool parse_decimal(const char **p, int *out) {
  const char *s = *p;
  if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) return false;
  long value = 0;
  for (; *s >= '0' && *s <= '9'; s++)
    if ((value = value * 10 + (*s - '0')) > 9999) return false;
  *out = (int)value;
  *p = s;
  return true;
}

/* "9.0", as the writer prints cc_major.cc_minor. */
static bool parse_cc(const char *text, int *major, int *minor) {
  return parse_decimal(&text, major) && *text++ == '.' && parse_decimal(&text, minor) &&
         *text == '\0';
}

/* One mode's result: {"verdict", "from_cache", "reason", "error_name"}. */
static ps_status read_mode(const ps__jreader *r, const json_t *o, const char *path,
                           ps_mode_result *out) {
  ps_status st;
  KEYS(o, path, "verdict", "from_cache", "reason", "error_name");
  CHECK(get_verdict(r, o, path, "verdict", &out->verdict));
  CHECK(ps__jbool(r, o, path, "from_cache", false, &out->from_cache, NULL));
  CHECK(get_opt_str(r, o, path, "reason", out->reason, sizeof(out->reason), NULL, 0));
  CHECK(get_opt_str(r, o, path, "error_name", out->error_name, sizeof(out->error_name), NULL, 0));
cleanup:
  return st;
}

/* "modes": {"sm": {...}, "ipc": {...}} of a pair or a local control; reports written before
 * the modes existed have no "modes" key (the caller's key lists make it the optional last). */
static ps_status read_modes(const ps__jreader *r, const json_t *o, const char *path,
                            ps_mode_result *sm, ps_mode_result *ipc) {
  ps_status st = PS_OK;
  json_t *modes, *sub;
  char modes_path[PS_JPATH_LEN], sub_path[PS_JPATH_LEN];
  if (!json_object_get(o, "modes")) return PS_OK;
  CHECK(ps__jobj(r, o, path, "modes", false, &modes));
  ps__jpath_key(modes_path, path, "modes");
  KEYS(modes, modes_path, "sm", "ipc");
  CHECK(ps__jobj(r, modes, modes_path, "sm", false, &sub));
  CHECK(read_mode(r, sub, ps__jpath_key(sub_path, modes_path, "sm"), sm));
  CHECK(ps__jobj(r, modes, modes_path, "ipc", false, &sub));
  CHECK(read_mode(r, sub, ps__jpath_key(sub_path, modes_path, "ipc"), ipc));
cleanup:
  return st;
}

/* ps__jkeys over keys, the last of which ("modes") may be absent. */
static ps_status keys_modes_optional(const ps__jreader *r, const json_t *o, const char *path,
                                     const char *const *keys, size_t count) {
  return ps__jkeys(r, o, path, keys, count - (json_object_get(o, "modes") ? 0 : 1));
}

static ps_status read_gpu(const ps__jreader *r, const json_t *o, const char *path, int position,
                          ps_gpu *gpu) {
  ps_status st;
  char at[PS_JPATH_LEN], text[32];
  bool set, set2;
  json_t *sub;
  /* visible_ordinal: only where the caller's CUDA_VISIBLE_DEVICES was applied. */
  if (json_is_object(o) && json_object_get(o, "visible_ordinal"))
    KEYS(o, path, "index", "name", "uuid", "pci_bus_id", "memory_total_bytes", "memory_free_bytes",
         "compute_capability", "numa_node", "cpu_affinity", "pcie", "bar1_total_bytes",
         "cuda_ordinal", "local_copy", "visible_ordinal");
  else
    KEYS(o, path, "index", "name", "uuid", "pci_bus_id", "memory_total_bytes", "memory_free_bytes",
         "compute_capability", "numa_node", "cpu_affinity", "pcie", "bar1_total_bytes",
         "cuda_ordinal", "local_copy");
  int index = -1;
  CHECK(get_int(r, o, path, "index", false, 0, &index, NULL));
  if (index != position) {
    st = ps__jfail(r, ps__jpath_key(at, path, "index"),
                   "%d but the GPU is at position %d (gpus are listed by index)", index, position);
    goto cleanup;
  }
  gpu->valid = 0;
  CHECK(get_opt_str(r, o, path, "name", gpu->name, sizeof(gpu->name), &gpu->valid, PS_GPU_NAME));
  CHECK(get_opt_str(r, o, path, "uuid", gpu->uuid, sizeof(gpu->uuid), &gpu->valid, PS_GPU_UUID));
  CHECK(get_opt_str(r, o, path, "pci_bus_id", gpu->pci_bus_id, sizeof(gpu->pci_bus_id), &gpu->valid,
                    PS_GPU_PCI_BUS_ID));
  CHECK(get_u64(r, o, path, "memory_total_bytes", &gpu->memory_total_bytes, &gpu->valid,
                PS_GPU_MEMORY_TOTAL));
  CHECK(get_u64(r, o, path, "memory_free_bytes", &gpu->memory_free_bytes, &gpu->valid,
                PS_GPU_MEMORY_FREE));
  CHECK(ps__jstr(r, o, path, "compute_capability", true, text, sizeof(text), &set));
  if (set) {
    if (!parse_cc(text, &gpu->cc_major, &gpu->cc_minor)) {
      st = ps__jfail(r, ps__jpath_key(at, path, "compute_capability"),
                     "'%s' is not major.minor such as '9.0'", text);
      goto cleanup;
    }
    gpu->valid |= PS_GPU_COMPUTE_CAP;
  }
  CHECK(get_int(r, o, path, "numa_node", true, 0, &gpu->numa_node, &set));
  if (set) gpu->valid |= PS_GPU_NUMA_NODE;
  CHECK(get_opt_str(r, o, path, "cpu_affinity", gpu->cpu_affinity, sizeof(gpu->cpu_affinity),
                    &gpu->valid, PS_GPU_CPU_AFFINITY));

  CHECK(ps__jobj(r, o, path, "pcie", false, &sub));
  char pcie_path[PS_JPATH_LEN];
  ps__jpath_key(pcie_path, path, "pcie");
  KEYS(sub, pcie_path, "gen_current", "width_current", "gen_max", "width_max");
  /* One valid bit covers gen and width: either one known sets it, the other stays 0. */
  gpu->pcie_gen_current = gpu->pcie_width_current = gpu->pcie_gen_max = gpu->pcie_width_max = 0;
  CHECK(get_int(r, sub, pcie_path, "gen_current", true, 1, &gpu->pcie_gen_current, &set));
  CHECK(get_int(r, sub, pcie_path, "width_current", true, 1, &gpu->pcie_width_current, &set2));
  if (set || set2) gpu->valid |= PS_GPU_PCIE_CURRENT;
  CHECK(get_int(r, sub, pcie_path, "gen_max", true, 1, &gpu->pcie_gen_max, &set));
  CHECK(get_int(r, sub, pcie_path, "width_max", true, 1, &gpu->pcie_width_max, &set2));
  if (set || set2) gpu->valid |= PS_GPU_PCIE_MAX;

  CHECK(get_u64(r, o, path, "bar1_total_bytes", &gpu->bar1_total_bytes, &gpu->valid, PS_GPU_BAR1));
  CHECK(get_int(r, o, path, "cuda_ordinal", true, 0, &gpu->cuda_ordinal, &set));
  if (set) gpu->valid |= PS_GPU_CUDA_ORDINAL;
  /* Present (a number, or null for hidden) only where CUDA_VISIBLE_DEVICES was applied. */
  if (json_object_get(o, "visible_ordinal")) {
    gpu->visible_ordinal = -1;
    CHECK(get_int(r, o, path, "visible_ordinal", true, 0, &gpu->visible_ordinal, &set));
    gpu->valid |= PS_GPU_VISIBLE;
  }

  CHECK(ps__jobj(r, o, path, "local_copy", false, &sub));
  char local_path[PS_JPATH_LEN];
  ps__jpath_key(local_path, path, "local_copy");
  static const char *const local_keys[] = {"verdict", "reason", "modes"};
  CHECK(keys_modes_optional(r, sub, local_path, local_keys, PS_ARRAY_LEN(local_keys)));
  CHECK(get_verdict(r, sub, local_path, "verdict", &gpu->local_verdict));
  CHECK(get_opt_str(r, sub, local_path, "reason", gpu->local_reason, sizeof(gpu->local_reason),
                    NULL, 0));
  CHECK(read_modes(r, sub, local_path, &gpu->local_sm, &gpu->local_ipc));
cleanup:
  return st;
}

static ps_status read_link(const ps__jreader *r, const json_t *o, const char *path, ps_pair *pair) {
  ps_status st;
  char at[PS_JPATH_LEN], link[32], cls[32], expect[32];
  bool has_link, has_class;
  CHECK(ps__jstr(r, o, path, "link", true, link, sizeof(link), &has_link));
  CHECK(ps__jstr(r, o, path, "link_class", true, cls, sizeof(cls), &has_class));
  if (has_link != has_class) {
    st = ps__jfail(r, path, "link and link_class must both be null or both be set");
    goto cleanup;
  }
  if (!has_class) goto cleanup;
  if (!ps__link_class_parse(cls, &pair->link)) {
    st = ps__jfail(r, ps__jpath_key(at, path, "link_class"),
                   "unknown link class '%s' (expected nvlink, internal, pix, pxb, phb, node, "
                   "sys, self, unknown or null)",
                   cls);
    goto cleanup;
  }
  pair->valid |= PS_PAIR_LINK;
  /* "link" is derived; a hand edit that contradicts link_class must not pass silently. */
  int count = (pair->valid & PS_PAIR_NVLINK) ? pair->nvlink_count : 0;
  ps_link_name(pair->link, count, expect, sizeof(expect));
  if (strcmp(link, expect) != 0) {
    st = ps__jfail(r, ps__jpath_key(at, path, "link"),
                   "'%s' does not match link_class '%s' and nvlink.count %d (expected '%s')", link,
                   cls, count, expect);
    goto cleanup;
  }
cleanup:
  return st;
}

static ps_status read_pair(const ps__jreader *r, const json_t *o, const char *path, ps_pair *pair) {
  ps_status st;
  char sub_path[PS_JPATH_LEN];
  bool set;
  json_t *sub;
  static const char *const pair_keys[] = {
      "from",    "to",         "link",   "link_class", "nvlink",  "claims",  "cuda_can_access",
      "verdict", "from_cache", "reason", "error_name", "corrupt", "copy_us", "modes"};
  CHECK(keys_modes_optional(r, o, path, pair_keys, PS_ARRAY_LEN(pair_keys)));
  pair->valid = 0;
  /* nvlink first: the link name check needs its count. */
  CHECK(ps__jobj(r, o, path, "nvlink", true, &sub));
  if (sub) {
    ps__jpath_key(sub_path, path, "nvlink");
    KEYS(sub, sub_path, "count", "version", "nvswitch");
    CHECK(get_int(r, sub, sub_path, "count", false, 0, &pair->nvlink_count, NULL));
    pair->nvlink_version = 0;
    CHECK(get_int(r, sub, sub_path, "version", true, 1, &pair->nvlink_version, NULL));
    CHECK(ps__jbool(r, sub, sub_path, "nvswitch", false, &pair->nvswitch, NULL));
    pair->valid |= PS_PAIR_NVLINK;
  }
  CHECK(read_link(r, o, path, pair));

  CHECK(ps__jobj(r, o, path, "claims", true, &sub));
  if (sub) {
    ps__jpath_key(sub_path, path, "claims");
    KEYS(sub, sub_path, "read", "write", "nvlink", "atomics");
    CHECK(get_claim(r, sub, sub_path, "read", &pair->claim_read));
    CHECK(get_claim(r, sub, sub_path, "write", &pair->claim_write));
    CHECK(get_claim(r, sub, sub_path, "nvlink", &pair->claim_nvlink));
    CHECK(get_claim(r, sub, sub_path, "atomics", &pair->claim_atomics));
    pair->valid |= PS_PAIR_CLAIMS;
  }
  pair->cuda_can_access = false;
  CHECK(ps__jbool(r, o, path, "cuda_can_access", true, &pair->cuda_can_access, &set));
  if (set) pair->valid |= PS_PAIR_CUDA_CLAIM;
  CHECK(get_verdict(r, o, path, "verdict", &pair->verdict));
  CHECK(ps__jbool(r, o, path, "from_cache", false, &pair->from_cache, NULL));
  CHECK(get_opt_str(r, o, path, "reason", pair->reason, sizeof(pair->reason), NULL, 0));
  CHECK(get_opt_str(r, o, path, "error_name", pair->error_name, sizeof(pair->error_name), NULL, 0));
  CHECK(ps__jobj(r, o, path, "corrupt", true, &sub));
  if (sub) {
    ps__jpath_key(sub_path, path, "corrupt");
    KEYS(sub, sub_path, "offset", "expected", "seen");
    long long offset, expected, seen;
    CHECK(ps__jint(r, sub, sub_path, "offset", false, 0, LLONG_MAX, &offset, NULL));
    CHECK(ps__jint(r, sub, sub_path, "expected", false, 0, 255, &expected, NULL));
    CHECK(ps__jint(r, sub, sub_path, "seen", false, 0, 255, &seen, NULL));
    pair->corrupt_offset = (uint64_t)offset;
    pair->corrupt_expected = (uint8_t)expected;
    pair->corrupt_seen = (uint8_t)seen;
    pair->valid |= PS_PAIR_CORRUPT_DETAIL;
  }
  pair->copy_us = -1;
  CHECK(ps__jreal(r, o, path, "copy_us", true, &pair->copy_us, &set));
  if (set) pair->valid |= PS_PAIR_COPY_TIME;
  CHECK(read_modes(r, o, path, &pair->sm, &pair->ipc));
cleanup:
  return st;
}

/* Before anything is allocated: every entry names two distinct GPUs, no directed pair twice,
 * none missing. Keeps a hostile document from making us allocate for pairs it lacks. */
static ps_status check_pair_set(const ps__jreader *r, const json_t *pairs, int n) {
  ps_status st = PS_OK;
  char path[PS_JPATH_LEN], at[PS_JPATH_LEN];
  int *first = NULL; /* first[from * n + to]: position + 1 of the entry naming it, 0 if none */
  if (n > 0 && !(first = ps__calloc((size_t)n * (size_t)n, sizeof(int)))) {
    st = ps__fail(r->ctx, PS_ERR_NO_MEMORY, "%s: out of memory", r->name);
    goto cleanup;
  }
  size_t i;
  json_t *entry;
  json_array_foreach(pairs, i, entry) {
    ps__jpath_index(path, "pairs", i);
    if (!json_is_object(entry)) {
      st = ps__jfail(r, path, "expected an object");
      goto cleanup;
    }
    int ends[2];
    static const char *const keys[2] = {"from", "to"};
    for (int k = 0; k < 2; k++) {
      if (!json_object_get(entry, keys[k])) {
        st = ps__jfail(r, path, "missing key '%s'", keys[k]);
        goto cleanup;
      }
      CHECK(get_int(r, entry, path, keys[k], false, 0, &ends[k], NULL));
      if (ends[k] >= n) {
        st = ps__jfail(r, ps__jpath_key(at, path, keys[k]), "no GPU %d (the report has %d)",
                       ends[k], n);
        goto cleanup;
      }
    }
    if (ends[0] == ends[1]) {
      st = ps__jfail(r, path, "from and to are both %d", ends[0]);
      goto cleanup;
    }
    int *slot = &first[ends[0] * n + ends[1]];
    if (*slot) {
      st =
          ps__jfail(r, path, "duplicate pair %d->%d (also pairs[%d])", ends[0], ends[1], *slot - 1);
      goto cleanup;
    }
    *slot = (int)i + 1;
  }
  for (int from = 0; from < n; from++) {
    for (int to = 0; to < n; to++) {
      if (from != to && !first[from * n + to]) {
        st = ps__jfail(r, "pairs", "missing pair %d->%d", from, to);
        goto cleanup;
      }
    }
  }
cleanup:
  ps__free(first);
  return st;
}

static ps_status read_header(const ps__jreader *r, const json_t *doc, ps_report *rep) {
  ps_status st;
  char kind[32];
  json_t *o;
  CHECK(ps__jobj(r, doc, "", "generator", false, &o));
  KEYS(o, "generator", "name", "version");
  char ignored[128];
  CHECK(ps__jstr(r, o, "generator", "name", false, ignored, sizeof(ignored), NULL));
  CHECK(ps__jstr(r, o, "generator", "version", false, ignored, sizeof(ignored), NULL));

  CHECK(ps__jobj(r, doc, "", "source", false, &o));
  KEYS(o, "source", "kind", "origin", "machine");
  CHECK(ps__jstr(r, o, "source", "kind", false, kind, sizeof(kind), NULL));
  if (!ps__source_parse(kind, &rep->source)) {
    st = ps__jfail(r, "source.kind", "unknown source '%s' (expected live, fixture or file)", kind);
    goto cleanup;
  }
  CHECK(get_opt_str(r, o, "source", "origin", rep->origin, sizeof(rep->origin), NULL, 0));
  CHECK(get_opt_str(r, o, "source", "machine", rep->machine, sizeof(rep->machine), NULL, 0));

  CHECK(ps__jobj(r, doc, "", "host", false, &o));
  KEYS(o, "host", "hostname", "boot_id");
  CHECK(get_opt_str(r, o, "host", "hostname", rep->hostname, sizeof(rep->hostname), NULL, 0));
  CHECK(get_opt_str(r, o, "host", "boot_id", rep->boot_id, sizeof(rep->boot_id), NULL, 0));

  CHECK(ps__jobj(r, doc, "", "driver", false, &o));
  KEYS(o, "driver", "version", "cuda_driver_version", "nvml_version");
  CHECK(get_opt_str(r, o, "driver", "version", rep->driver_version, sizeof(rep->driver_version),
                    NULL, 0));
  CHECK(get_int(r, o, "driver", "cuda_driver_version", true, 1, &rep->cuda_driver_version, NULL));
  CHECK(get_opt_str(r, o, "driver", "nvml_version", rep->nvml_version, sizeof(rep->nvml_version),
                    NULL, 0));
  CHECK(get_opt_str(r, doc, "", "cuda_visible_devices", rep->cuda_visible_devices,
                    sizeof(rep->cuda_visible_devices), NULL, 0));
cleanup:
  return st;
}

/* verification.modes: the names of the modes that ran, each once; absent in older reports,
 * which verified in the ce mode only. */
static ps_status read_modes_ran(const ps__jreader *r, const json_t *o, ps_report *rep) {
  const json_t *list = json_object_get(o, "modes");
  rep->modes = rep->verified ? PS_MODE_BIT(PS_MODE_CE) : 0;
  if (!list) return PS_OK;
  if (!json_is_array(list)) return ps__jfail(r, "verification.modes", "expected an array");
  rep->modes = 0;
  size_t i;
  const json_t *item;
  json_array_foreach(list, i, item) {
    char at[PS_JPATH_LEN];
    ps_verify_mode mode;
    ps__jpath_index(at, "verification.modes", i);
    if (!json_is_string(item) || !ps__mode_parse(json_string_value(item), &mode))
      return ps__jfail(r, at, "expected a mode name (ce, sm or ipc)");
    if (rep->modes & PS_MODE_BIT(mode))
      return ps__jfail(r, at, "mode '%s' listed twice", ps_mode_name(mode));
    rep->modes |= PS_MODE_BIT(mode);
  }
  return PS_OK;
}

static ps_status read_trailer(const ps__jreader *r, const json_t *doc, ps_report *rep) {
  ps_status st;
  json_t *o;
  CHECK(ps__jobj(r, doc, "", "verification", false, &o));
  /* modes and worker_restarts are optional: reports written before the modes lack the first,
   * the second is written only when a worker was restarted. */
  const json_t *restarts = json_object_get(o, "worker_restarts");
  const char *ver_keys[5] = {"ran", "cache_used", "hang_workers"};
  size_t ver_count = 3;
  if (json_object_get(o, "modes")) ver_keys[ver_count++] = "modes";
  if (restarts) ver_keys[ver_count++] = "worker_restarts";
  CHECK(ps__jkeys(r, o, "verification", ver_keys, ver_count));
  CHECK(ps__jbool(r, o, "verification", "ran", false, &rep->verified, NULL));
  CHECK(ps__jbool(r, o, "verification", "cache_used", false, &rep->cache_used, NULL));
  CHECK(get_int(r, o, "verification", "hang_workers", false, 0, &rep->hang_workers, NULL));
  CHECK(read_modes_ran(r, o, rep));
  if (restarts) CHECK(ps__restarts_read(r, restarts, rep));

  CHECK(ps__jobj(r, doc, "", "timings_ms", false, &o));
  KEYS(o, "timings_ms", "driver_init", "probe", "worker_spawn", "cuda_init", "contexts", "copies",
       "total");
  ps_timings *t = &rep->timings;
  CHECK(ps__jreal(r, o, "timings_ms", "driver_init", true, &t->driver_init_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "probe", true, &t->probe_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "worker_spawn", true, &t->worker_spawn_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "cuda_init", true, &t->cuda_init_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "contexts", true, &t->contexts_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "copies", true, &t->copies_ms, NULL));
  CHECK(ps__jreal(r, o, "timings_ms", "total", true, &t->total_ms, NULL));
cleanup:
  return st;
}

static ps_status read_document(const ps__jreader *r, const json_t *doc, ps_report **out) {
  ps_status st = PS_OK;
  ps_report *rep = NULL;
  char path[PS_JPATH_LEN];
  if (!json_is_object(doc)) {
    st = ps__jfail(r, "", "expected a JSON object at the top level");
    goto cleanup;
  }
  /* The schema first: a document of another version may differ anywhere else. */
  const json_t *schema = json_object_get(doc, "schema");
  if (!schema) {
    st = ps__jfail(r, "", "missing key 'schema' (not a peerscope topology report?)");
    goto cleanup;
  }
  if (!json_is_string(schema) || strcmp(json_string_value(schema), PS_REPORT_SCHEMA) != 0) {
    st = json_is_string(schema)
             ? ps__jfail(r, "", "unsupported schema '%s' (this peerscope reads %s)",
                         json_string_value(schema), PS_REPORT_SCHEMA)
             : ps__jfail(r, "schema", "expected a string");
    goto cleanup;
  }
  /* "bench" is the one optional key: only reports with benchmarks have it. */
  static const char *const top_keys[] = {
      "schema", "generator", "source",       "host",       "driver", "cuda_visible_devices",
      "gpus",   "pairs",     "verification", "timings_ms", "bench"};
  const json_t *bench = json_object_get(doc, "bench");
  CHECK(ps__jkeys(r, doc, "", top_keys, PS_ARRAY_LEN(top_keys) - (bench ? 0 : 1)));

  const json_t *gpus = json_object_get(doc, "gpus"), *pairs = json_object_get(doc, "pairs");
  if (!json_is_array(gpus)) {
    st = ps__jfail(r, "gpus", "expected an array");
    goto cleanup;
  }
  if (!json_is_array(pairs)) {
    st = ps__jfail(r, "pairs", "expected an array");
    goto cleanup;
  }
  size_t n = json_array_size(gpus);
  if (n > PS_REPORT_MAX_GPUS) {
    st = ps__jfail(r, "gpus", "%zu GPUs is more than one node has (peerscope handles %d per node)",
                   n, PS_REPORT_MAX_GPUS);
    goto cleanup;
  }
  CHECK(check_pair_set(r, pairs, (int)n));
  if (!(rep = ps__report_new((int)n))) {
    st = ps__fail(r->ctx, PS_ERR_NO_MEMORY, "%s: out of memory for %zu GPUs", r->name, n);
    goto cleanup;
  }
  CHECK(read_header(r, doc, rep));
  for (size_t g = 0; g < n; g++)
    CHECK(read_gpu(r, json_array_get(gpus, g), ps__jpath_index(path, "gpus", g), (int)g,
                   &rep->gpus[g]));
  size_t i;
  json_t *entry;
  json_array_foreach(pairs, i, entry) {
    int from = (int)json_integer_value(json_object_get(entry, "from"));
    int to = (int)json_integer_value(json_object_get(entry, "to"));
    CHECK(read_pair(r, entry, ps__jpath_index(path, "pairs", i),
                    &rep->pairs[ps__pair_slot((int)n, from, to)]));
  }
  CHECK(read_trailer(r, doc, rep));
  if (bench) {
    if (!json_is_object(bench)) {
      st = ps__jfail(r, "bench", "expected an object");
      goto cleanup;
    }
    CHECK(ps__bench_read(r, bench, (int)n, &rep->bench));
  }
  *out = rep;
  rep = NULL;
cleanup:
  ps_report_free(rep);
  return st;
}

ps_status ps_report_parse_json(ps_ctx *ctx, const char *text, size_t len, const char *name,
                               ps_report **out) {
  ps_status st = PS_OK;
  json_t *doc = NULL;
  json_error_t err;
  ps__jreader r = {ctx, name ? name : "<input>"};
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_parse_json: out is NULL");
  *out = NULL;
  if (!text && len) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_parse_json: no text");
  if (!text) text = "";
  /* Duplicate keys are ambiguous (which one wins?), so they are an error. */
  size_t skip = 0;
  while (skip < len &&
         (text[skip] == ' ' || text[skip] == '\t' || text[skip] == '\r' || text[skip] == '\n'))
    skip++;
  if (skip == len) {
    st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: empty document (not a topology report)", r.name);
    goto cleanup;
  }
  doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  if (!doc) {
    enum json_error_code code = json_error_code(&err);
    if (code == json_error_out_of_memory)
      st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory parsing JSON", r.name);
    else if (code == json_error_null_character) /* jansson's text names its own flag */
      st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: \\u0000 is not allowed in strings", r.name,
                    err.line, err.column);
    else
      st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s:%d:%d: %s", r.name, err.line, err.column, err.text);
    goto cleanup;
  }
  st = read_document(&r, doc, out);
cleanup:
  json_decref(doc);
  return st;
}

ps_status ps_report_read_json(ps_ctx *ctx, const char *path, ps_report **out) {
  ps_status st = PS_OK;
  FILE *f = NULL;
  char *text = NULL;
  size_t len = 0, cap = 0;
  if (!out || !path) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_report_read_json: NULL argument");
  *out = NULL;
  errno = 0;
  if (!(f = fopen(path, "rb"))) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno));
    goto cleanup;
  }
  for (;;) {
    if (len == cap) {
      if (cap >= PS_REPORT_MAX_BYTES) {
        st = ps__fail(ctx, PS_ERR_BAD_INPUT, "%s: larger than %u MiB; not a topology report", path,
                      PS_REPORT_MAX_BYTES >> 20);
        goto cleanup;
      }
      size_t grown = cap ? cap * 2 : 64 * 1024;
      char *bigger = ps__realloc(text, grown);
      if (!bigger) {
        st = ps__fail(ctx, PS_ERR_NO_MEMORY, "%s: out of memory reading the file", path);
        goto cleanup;
      }
      text = bigger;
      cap = grown;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    st = ps__fail(ctx, PS_ERR_IO, "%s: %s", path, strerror(errno ? errno : EIO));
    goto cleanup;
  }
  st = ps_report_parse_json(ctx, text, len, path, out);
cleanup:
  if (f) fclose(f);
  ps__free(text);
  return st;
}
