#include "verify/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "probe/key.h"
#include "report/report_internal.h"

#define CACHE_SCHEMA "peerscope.verify-cache/1"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint64_t cache_key(const ps_report *r, size_t bytes) {
  uint64_t h = PS_HASH_SEED;
  char buf[64];
  snprintf(buf, sizeof(buf), "%zu", bytes);
  h = ps__hash_str(h, CACHE_SCHEMA);
  h = ps__hash_str(h, buf);
  h = ps__hash_str(h, r->driver_version);
  h = ps__hash_str(h, r->boot_id);
  const char **uuids = ps__calloc((size_t)r->gpu_count + 1, sizeof(*uuids));
  if (uuids) {
    for (int g = 0; g < r->gpu_count; g++)
      uuids[g] = r->gpus[g].uuid;
    qsort(uuids, (size_t)r->gpu_count, sizeof(*uuids), cmp_str);
    for (int g = 0; g < r->gpu_count; g++)
      h = ps__hash_str(h, uuids[g]);
    ps__free(uuids);
  }
  if (r->source == PS_SOURCE_FIXTURE) h = ps__hash_file(h, r->origin);
  return h;
}

static bool cache_dir(const ps_verify_opts *opts, char *out, size_t len) {
  return ps__cache_dir(opts->cache_dir, out, len);
}

void ps__cache_open(ps__cache *cache, const ps_report *report, const ps_verify_opts *opts,
                    size_t bytes) {
  memset(cache, 0, sizeof(*cache));
  char dir[768];
  bool usable = true;
  for (int g = 0; g < report->gpu_count; g++)
    if (!(report->gpus[g].valid & PS_GPU_UUID)) usable = false; /* no stable key */
  if (!usable || !cache_dir(opts, dir, sizeof(dir))) return;
  snprintf(cache->path, sizeof(cache->path), "%s/verify-%016" PRIx64 ".json", dir,
           cache_key(report, bytes));
  json_t *doc = json_load_file(cache->path, 0, NULL);
  if (doc) {
    const char *schema = json_string_value(json_object_get(doc, "schema"));
    if (!schema || strcmp(schema, CACHE_SCHEMA) != 0) {
      json_decref(doc);
      doc = NULL;
    }
  }
  cache->doc = doc;
}

static void pair_key(const ps_report *r, bool local, int a, int b, char *out, size_t len) {
  if (local)
    snprintf(out, len, "%s", r->gpus[a].uuid);
  else
    snprintf(out, len, "%s>%s", r->gpus[a].uuid, r->gpus[b].uuid);
}

static const char *get_str(json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

/* The cache's object for a mode's local controls or pairs: "local", "pairs" (ce), "sm_local",
 * "sm_pairs", "ipc_local", "ipc_pairs". */
static const char *section(ps_verify_mode mode, bool local) {
  static const char *const names[PS_MODE_COUNT][2] = {[PS_MODE_CE] = {"pairs", "local"},
                                                      [PS_MODE_SM] = {"sm_pairs", "sm_local"},
                                                      [PS_MODE_IPC] = {"ipc_pairs", "ipc_local"}};
  return names[mode][local];
}

/* Whether a verdict is worth keeping: not one that says nothing was tested, nor one that
 * depends on the build (unavailable). */
static bool cacheable(ps_verdict v) {
  return v != PS_VERDICT_NOT_RUN && v != PS_VERDICT_SKIPPED && v != PS_VERDICT_UNAVAILABLE;
}

static bool lookup_mode(json_t *entry, ps_verdict verdict, ps_mode_result *m) {
  m->verdict = verdict;
  m->from_cache = true;
  ps__strlcpy(m->reason, get_str(entry, "reason"), sizeof(m->reason));
  ps__strlcpy(m->error_name, get_str(entry, "error"), sizeof(m->error_name));
  return true;
}

bool ps__cache_lookup(ps__cache *cache, ps_report *report, ps_verify_mode mode, bool local, int a,
                      int b) {
  if (!cache->doc) return false;
  char key[256];
  pair_key(report, local, a, b, key, sizeof(key));
  json_t *entry = json_object_get(json_object_get(cache->doc, section(mode, local)), key);
  ps_verdict verdict;
  if (!json_is_object(entry) || !ps__verdict_parse(get_str(entry, "verdict"), &verdict) ||
      !cacheable(verdict))
    return false;
  if (mode != PS_MODE_CE) {
    ps_pair *pair = local ? NULL : (ps_pair *)ps_report_pair(report, a, b);
    ps_gpu *gpu = &report->gpus[a];
    ps_mode_result *m = mode == PS_MODE_SM ? (local ? &gpu->local_sm : &pair->sm)
                                           : (local ? &gpu->local_ipc : &pair->ipc);
    return lookup_mode(entry, verdict, m);
  }
  if (local) {
    report->gpus[a].local_verdict = verdict;
    ps__strlcpy(report->gpus[a].local_reason, get_str(entry, "reason"),
                sizeof(report->gpus[a].local_reason));
    return true;
  }
  ps_pair *pair = (ps_pair *)ps_report_pair(report, a, b);
  pair->verdict = verdict;
  pair->from_cache = true;
  ps__strlcpy(pair->reason, get_str(entry, "reason"), sizeof(pair->reason));
  ps__strlcpy(pair->error_name, get_str(entry, "error"), sizeof(pair->error_name));
  json_t *access = json_object_get(entry, "access");
  if (json_is_boolean(access)) {
    pair->cuda_can_access = json_is_true(access);
    pair->valid |= PS_PAIR_CUDA_CLAIM;
  }
  json_t *us = json_object_get(entry, "copy_us");
  if (json_is_number(us)) {
    pair->copy_us = json_number_value(us);
    pair->valid |= PS_PAIR_COPY_TIME;
  }
  json_t *offset = json_object_get(entry, "offset");
  if (json_is_integer(offset)) {
    pair->corrupt_offset = (uint64_t)json_integer_value(offset);
    pair->corrupt_expected = (uint8_t)json_integer_value(json_object_get(entry, "expected"));
    pair->corrupt_seen = (uint8_t)json_integer_value(json_object_get(entry, "seen"));
    pair->valid |= PS_PAIR_CORRUPT_DETAIL;
  }
  return true;
}

static json_t *pair_entry(const ps_pair *p) {
  json_t *e = json_pack("{s:s, s:s, s:s}", "verdict", ps_verdict_name(p->verdict), "reason",
                        p->reason, "error", p->error_name);
  if (!e) return NULL;
  if (p->valid & PS_PAIR_CUDA_CLAIM)
    json_object_set_new(e, "access", json_boolean(p->cuda_can_access));
  if (p->valid & PS_PAIR_COPY_TIME) json_object_set_new(e, "copy_us", json_real(p->copy_us));
  if (p->valid & PS_PAIR_CORRUPT_DETAIL) {
    json_object_set_new(e, "offset", json_integer((json_int_t)p->corrupt_offset));
    json_object_set_new(e, "expected", json_integer(p->corrupt_expected));
    json_object_set_new(e, "seen", json_integer(p->corrupt_seen));
  }
  return e;
}

static json_t *mode_entry(const ps_mode_result *m) {
  return json_pack("{s:s, s:s, s:s}", "verdict", ps_verdict_name(m->verdict), "reason", m->reason,
                   "error", m->error_name);
}

/* The sm and ipc verdicts of the report into their sections. */
static void store_modes(json_t *doc, const ps_report *report) {
  char key[256];
  for (int m = PS_MODE_SM; m < PS_MODE_COUNT; m++) {
    json_t *locals = json_object_get(doc, section(m, true)),
           *pairs = json_object_get(doc, section(m, false));
    if (!json_is_object(locals)) json_object_set_new(doc, section(m, true), locals = json_object());
    if (!json_is_object(pairs)) json_object_set_new(doc, section(m, false), pairs = json_object());
    for (int g = 0; g < report->gpu_count; g++) {
      const ps_gpu *gpu = &report->gpus[g];
      const ps_mode_result *r = m == PS_MODE_SM ? &gpu->local_sm : &gpu->local_ipc;
      if (!cacheable(r->verdict)) continue;
      pair_key(report, true, g, g, key, sizeof(key));
      json_object_set_new(locals, key, mode_entry(r));
    }
    for (int i = 0; i < report->pair_count; i++) {
      const ps_pair *p = &report->pairs[i];
      const ps_mode_result *r = m == PS_MODE_SM ? &p->sm : &p->ipc;
      if (!cacheable(r->verdict)) continue;
      pair_key(report, false, p->from, p->to, key, sizeof(key));
      json_object_set_new(pairs, key, mode_entry(r));
    }
  }
}

void ps__cache_store(ps__cache *cache, const ps_report *report) {
  if (!cache->path[0]) return;
  json_t *doc = cache->doc ? json_deep_copy(cache->doc) : json_object();
  if (!doc) return;
  json_object_set_new(doc, "schema", json_string(CACHE_SCHEMA));
  json_t *locals = json_object_get(doc, "local"), *pairs = json_object_get(doc, "pairs");
  if (!json_is_object(locals)) json_object_set_new(doc, "local", locals = json_object());
  if (!json_is_object(pairs)) json_object_set_new(doc, "pairs", pairs = json_object());
  char key[256];
  for (int g = 0; g < report->gpu_count; g++) {
    const ps_gpu *gpu = &report->gpus[g];
    if (gpu->local_verdict == PS_VERDICT_NOT_RUN || gpu->local_verdict == PS_VERDICT_SKIPPED)
      continue;
    pair_key(report, true, g, g, key, sizeof(key));
    json_object_set_new(locals, key,
                        json_pack("{s:s, s:s}", "verdict", ps_verdict_name(gpu->local_verdict),
                                  "reason", gpu->local_reason));
  }
  for (int i = 0; i < report->pair_count; i++) {
    const ps_pair *p = &report->pairs[i];
    if (p->verdict == PS_VERDICT_NOT_RUN || p->verdict == PS_VERDICT_SKIPPED) continue;
    pair_key(report, false, p->from, p->to, key, sizeof(key));
    json_object_set_new(pairs, key, pair_entry(p));
  }
  store_modes(doc, report);
  char dir[1024], tmp[1100];
  ps__strlcpy(dir, cache->path, sizeof(dir));
  char *slash = strrchr(dir, '/');
  if (slash) {
    *slash = '\0';
    ps__make_dirs(dir);
  }
  snprintf(tmp, sizeof(tmp), "%s.%d.tmp", cache->path, (int)getpid());
  if (json_dump_file(doc, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) == 0) {
    if (rename(tmp, cache->path) != 0) unlink(tmp);
  } else {
    unlink(tmp);
  }
  json_decref(doc);
}

void ps__cache_close(ps__cache *cache) {
  json_decref((json_t *)cache->doc);
  cache->doc = NULL;
}
