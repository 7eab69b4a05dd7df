/* The plan request, defined once: every input's JSON name, CLI flag, type, range, default and
 * help. The CLI's options and --help, the web API, the dashboard's form (GET
 * /api/v1/plan/fields) and the Python package read this table; a new input is a new row here
 * (and its member in ps_plan_request). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "plan/request_internal.h"

#define REQ(member) ((long)offsetof(ps_plan_request, member))
#define NOWHERE -1L

static const char *const objectives[] = {"throughput", "latency", NULL};
static const char *const dtypes[] = {"bf16", "fp16", "fp8", "int4", NULL};

/* name, flag, metavar, type, group, min, max, default, choices, expect, help; offsets */
const ps__field ps__fields[] = {
    {{"model_dir", "model", "DIR|ID", PS_FIELD_STRING, "model", 0, 0, NULL, NULL,
      "a directory or a Hugging Face id",
      "a model directory, or a Hugging Face id org/name[@revision] (from the HF cache, the "
      "catalog, or the Hub's config and index); weights are never read"},
     NOWHERE,
     NOWHERE},
    {{"model_size_gb", "model-size-gb", "X", PS_FIELD_NUMBER, "model", 0.001, 1e6, NULL, NULL,
      "a size in GB from 0.001 to 1000000", "a model known only by its weight size"},
     NOWHERE,
     NOWHERE},
    {{"params_b", "params-b", "N", PS_FIELD_NUMBER, "model", 0.001, 1e5, NULL, NULL,
      "billions of parameters from 0.001 to 100000",
      "a model known by its parameter count, in billions (with --dtype)"},
     NOWHERE,
     NOWHERE},
    {{"model_name", "model-name", "NAME", PS_FIELD_STRING, "model", 0, 0, NULL, NULL, "a name",
      "what vllm serve is given for a model known only by --model-size-gb or --params-b"},
     NOWHERE,
     NOWHERE},
    {{"dtype", "dtype", "D", PS_FIELD_ENUM, "model", 0, 0, "bf16", dtypes,
      "bf16, fp16, fp8 or int4", "the weights' dtype of a model given by --params-b"},
     NOWHERE,
     NOWHERE},
    {{"tp", "tp", "N", PS_FIELD_INT, "plan", 1, PS_PLAN_MAX_GPUS, NULL, NULL,
      "an integer from 1 to 64", "fix the tensor parallel size"},
     REQ(tp),
     NOWHERE},
    {{"pp", "pp", "N", PS_FIELD_INT, "plan", 1, PS_PLAN_MAX_GPUS, NULL, NULL,
      "an integer from 1 to 64", "fix the pipeline parallel size"},
     REQ(pp),
     NOWHERE},
    {{"gpus", "gpus", "LIST", PS_FIELD_GPUS, "plan", 0, PS_PLAN_MAX_GPUS - 1, NULL, NULL,
      "a list of at most 64 GPU indexes", "only these GPUs (indexes, ranges or UUIDs)"},
     REQ(gpus),
     REQ(gpu_count)},
    {{"gpu_memory_utilization", "gpu-memory-utilization", "F", PS_FIELD_NUMBER, "plan", 0.01, 1,
      NULL, NULL, "a fraction from 0.01 to 1",
      "vLLM's budget fraction (default: the version's, 0.9; 0.92 from 0.22)"},
     REQ(gpu_memory_utilization),
     NOWHERE},
    {{"max_model_len", "max-model-len", "N", PS_FIELD_INT, "plan", 1, 1 << 30, NULL, NULL,
      "an integer from 1 to 1073741824", "context length to fit (default: the longest that fits)"},
     REQ(max_model_len),
     NOWHERE},
    {{"max_num_seqs", "max-num-seqs", "N", PS_FIELD_INT, "plan", 1, 1 << 20, "1", NULL,
      "an integer from 1 to 1048576", "sequences of that length that must fit at once"},
     REQ(max_num_seqs),
     NOWHERE},
    {{"kv_cache_dtype", "kv-cache-dtype", "D", PS_FIELD_STRING, "plan", 0, 0, "auto", NULL,
      "a KV cache dtype", "auto, fp8, fp8_e4m3, fp8_e5m2"},
     REQ(kv_cache_dtype),
     NOWHERE},
    {{"vllm_version", "vllm-version", "V", PS_FIELD_STRING, "plan", 0, 0, NULL, NULL,
      "a version as vLLM prints it",
      "the vLLM whose memory accounting to model, as it prints it (0.10.1.1); default: the "
      "installed one, else the newest modelled"},
     REQ(vllm_version),
     NOWHERE},
    {{"vllm_log", "vllm-log", "FILE", PS_FIELD_STRING, "plan", 0, 0, NULL, NULL,
      "a vLLM start-up log file",
      "vLLM's start-up log of this setup: its measured memory figures calibrate the plan and "
      "are kept for later plans (CLI and Python; the web API does not read files)"},
     NOWHERE,
     NOWHERE},
    {{"enforce_eager", "enforce-eager", NULL, PS_FIELD_BOOL, "plan", 0, 0, NULL, NULL,
      "true or false", "vLLM runs without CUDA graphs: no graph memory is reserved"},
     REQ(enforce_eager),
     NOWHERE},
    {{"max_num_batched_tokens", "max-num-batched-tokens", "N", PS_FIELD_INT, "plan", 1, 1 << 24,
      NULL, NULL, "an integer from 1 to 16777216",
      "tokens per batch, which vLLM's profile run uses (default: the version's for the GPU)"},
     REQ(max_num_batched_tokens),
     NOWHERE},
    {{"block_size", "block-size", "N", PS_FIELD_INT, "plan", 1, 1 << 16, NULL, NULL,
      "an integer from 1 to 65536", "tokens per KV-cache block (default 16; 64 for MLA)"},
     REQ(block_size),
     NOWHERE},
    {{"reserve_gb", "reserve-gb", "X", PS_FIELD_NUMBER, "plan", 0, 1e4, "0", NULL,
      "GB from 0 to 10000", "memory per GPU kept for other processes"},
     REQ(reserve_gib),
     NOWHERE},
    {{"objective", "objective", "O", PS_FIELD_ENUM, "plan", 0, 0, "throughput", objectives,
      "throughput or latency",
      "throughput (fewest GPUs, replicas) or latency (larger TP over NVLink)"},
     REQ(objective),
     NOWHERE},
};
const int ps__field_count = (int)PS_ARRAY_LEN(ps__fields);

_Static_assert(PS_ARRAY_LEN(ps__fields) <= PS__FIELD_MAX, "raise PS__FIELD_MAX");

int ps__field_index(const char *key) {
  if (!key) return -1;
  if (key[0] == '-' && key[1] == '-') key += 2;
  for (int i = 0; i < ps__field_count; i++)
    if (strcmp(key, ps__fields[i].pub.name) == 0 || strcmp(key, ps__fields[i].pub.flag) == 0)
      return i;
  return -1;
}

int ps_plan_field_count(void) { return ps__field_count; }

const ps_plan_field *ps_plan_field_at(int i) {
  return i >= 0 && i < ps__field_count ? &ps__fields[i].pub : NULL;
}

const ps_plan_field *ps_plan_field_find(const char *name) {
  return ps_plan_field_at(ps__field_index(name));
}

static const char *type_name(ps_field_type t) {
  static const char *const names[] = {"integer", "number", "string", "enum", "gpus", "boolean"};
  return (size_t)t < PS_ARRAY_LEN(names) ? names[t] : "unknown";
}

static json_t *field_json(const ps_plan_field *f) {
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(f->name));
  json_object_set_new(o, "flag", json_sprintf("--%s", f->flag));
  json_object_set_new(o, "metavar", f->metavar ? json_string(f->metavar) : json_null());
  json_object_set_new(o, "type", json_string(type_name(f->type)));
  json_object_set_new(o, "group", json_string(f->group));
  bool ranged = f->type == PS_FIELD_INT || f->type == PS_FIELD_NUMBER || f->type == PS_FIELD_GPUS;
  bool whole = f->type != PS_FIELD_NUMBER;
  json_object_set_new(o, "min",
                      !ranged ? json_null()
                      : whole ? json_integer((json_int_t)f->min)
                              : json_real(f->min));
  json_object_set_new(o, "max",
                      !ranged ? json_null()
                      : whole ? json_integer((json_int_t)f->max)
                              : json_real(f->max));
  json_object_set_new(o, "default", f->def ? json_string(f->def) : json_null());
  json_t *choices = f->choices ? json_array() : json_null();
  for (int k = 0; f->choices && f->choices[k]; k++)
    json_array_append_new(choices, json_string(f->choices[k]));
  json_object_set_new(o, "choices", choices);
  json_object_set_new(o, "expect", json_string(f->expect));
  json_object_set_new(o, "help", json_string(f->help));
  return o;
}

ps_status ps_plan_fields_json(ps_ctx *ctx, char **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_plan_fields_json: out is NULL");
  *out = NULL;
  json_t *doc = json_object(), *fields = json_array();
  json_object_set_new(doc, "schema", json_string("peerscope.plan-fields/1"));
  for (int i = 0; i < ps__field_count; i++)
    json_array_append_new(fields, field_json(&ps__fields[i].pub));
  json_object_set_new(doc, "fields", fields);
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(doc);
  if (text) *out = ps__strdup(text);
  free(text);
  return *out ? PS_OK : ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
}
