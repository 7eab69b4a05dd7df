/* ps_plan_write: a plan as text, JSON ("peerscope.plan/1"), shell, vLLM arguments or a
 * `vllm serve --config` YAML file. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/ebuf.h"

#define PLAN_SCHEMA "peerscope.plan/1"

/* Single-quoted for POSIX shells unless plainly safe. */
static void put_quoted(ps__ebuf *b, const char *s) {
  bool plain = *s != '\0';
  for (const char *p = s; *p; p++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=+@%", *p))
      plain = false;
  if (plain) {
    ps__eput(b, "%s", s);
    return;
  }
  ps__eput(b, "'");
  for (const char *p = s; *p; p++) {
    if (*p == '\'')
      ps__eput(b, "'\\''");
    else
      ps__eput(b, "%c", *p);
  }
  ps__eput(b, "'");
}

/* Free text (a summary, a reason, a path) on one line of output: control characters as \xNN,
 * so a newline in a model's name cannot end a comment and start a key or a command. */
static void put_text(ps__ebuf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7F)
      ps__eput(b, "\\x%02X", *p);
    else
      ps__eput(b, "%c", *p);
  }
}

/* put_quoted, for a comment line: the shell word, then through put_text. */
static void put_quoted_text(ps__ebuf *b, const char *s) {
  ps__ebuf word = {0};
  put_quoted(&word, s);
  if (word.failed) b->failed = true;
  put_text(b, word.data ? word.data : "");
  ps__free(word.data);
}

static double gib(uint64_t v) { return (double)v / (1024.0 * 1024.0 * 1024.0); }

static void put_command(ps__ebuf *b, const ps_plan *p, const char *sep) {
  ps__eput(b, "vllm serve ");
  put_quoted(b, p->model_arg);
  for (int i = 0; i < p->arg_count; i++) {
    ps__eput(b, "%s%s", sep, p->args[i].name);
    if (p->args[i].value[0]) {
      ps__eput(b, " ");
      put_quoted(b, p->args[i].value);
    }
  }
}

/* The command on one line of text (the text format): quoted, control characters shown. */
static void put_command_text(ps__ebuf *b, const ps_plan *p) {
  ps__ebuf line = {0};
  put_command(&line, p, " ");
  if (line.failed) b->failed = true;
  put_text(b, line.data ? line.data : "");
  ps__free(line.data);
}

/* "<lead>name: value\n<indent>why\n", all three as text (a cluster step, in a comment). */
static void put_comment_item(ps__ebuf *b, const char *lead, const ps_plan_item *it,
                             const char *indent) {
  ps__eput(b, "%s", lead);
  put_text(b, it->name);
  ps__eput(b, ": ");
  put_text(b, it->value);
  ps__eput(b, "\n%s", indent);
  put_text(b, it->why);
  ps__eput(b, "\n");
}

static void put_gpus(ps__ebuf *b, const int *gpus, int n) {
  for (int i = 0; i < n; i++)
    ps__eput(b, "%s%d", i ? "," : "", gpus[i]);
}

/* vLLM's own terms, as its start-up log prints them (docs/vllm-memory.md). */
static void add_vllm_memory(json_t *memory, const ps_plan *p) {
  json_object_set_new(memory, "visible_bytes", json_integer((json_int_t)p->visible_bytes));
  json_object_set_new(memory, "activation_bytes", json_integer((json_int_t)p->activation_bytes));
  json_object_set_new(memory, "non_torch_bytes", json_integer((json_int_t)p->non_torch_bytes));
  json_object_set_new(memory, "graphs_bytes", json_integer((json_int_t)p->graphs_bytes));
  json_object_set_new(memory, "encoder_profile_bytes",
                      json_integer((json_int_t)p->encoder_profile_bytes));
  json_object_set_new(memory, "encoder_profile",
                      p->encoder_profile[0] ? json_string(p->encoder_profile) : json_null());
  json_object_set_new(memory, "max_num_batched_tokens", json_integer(p->max_num_batched_tokens));
  json_object_set_new(memory, "block_size", json_integer(p->block_size));
  json_object_set_new(memory, "kv_blocks", json_integer((json_int_t)p->kv_blocks));
  json_object_set_new(memory, "kv_groups", json_integer(p->kv_groups));
  json_object_set_new(memory, "kv_group_tokens", json_integer((json_int_t)p->kv_group_tokens));
  json_object_set_new(memory, "max_concurrency",
                      p->max_concurrency > 0 ? json_real(p->max_concurrency) : json_null());
  json_object_set_new(memory, "error_band",
                      p->error_band[0] ? json_string(p->error_band) : json_null());
  json_object_set_new(memory, "kv_band_pct",
                      p->kv_band_pct > 0 ? json_real(p->kv_band_pct) : json_null());
  json_object_set_new(memory, "calibration",
                      p->calibration[0] ? json_string(p->calibration) : json_null());
  json_object_set_new(memory, "safe_max_model_len",
                      p->safe_max_model_len > 0 ? json_integer(p->safe_max_model_len)
                                                : json_null());
  json_object_set_new(memory, "safe_max_num_seqs",
                      p->safe_max_num_seqs > 0 ? json_integer(p->safe_max_num_seqs) : json_null());
}

static void write_text(ps__ebuf *b, const ps_plan *p) {
  ps__eput(b, "%s: ", p->feasible ? "Plan" : "No plan");
  put_text(b, p->summary);
  ps__eput(b, "\n");
  if (p->feasible) {
    ps__eput(b,
             "\nMemory per GPU (tightest GPU): budget %.1f GiB = weights %.1f + overhead %.1f + KV "
             "%.1f GiB",
             gib(p->budget_bytes), gib(p->weights_bytes), gib(p->overhead_bytes), gib(p->kv_bytes));
    /* 0 tokens with room left means the KV size per token is unknown (a synthetic model). */
    if (p->kv_tokens || !p->kv_bytes)
      ps__eput(b, " (%llu tokens)\n", (unsigned long long)p->kv_tokens);
    else
      ps__eput(b, " (tokens unknown: no layers or heads without the model's config)\n");
    if (p->max_concurrency > 0)
      ps__eput(b, "vLLM %s would log: GPU KV cache size %llu tokens, maximum concurrency %.2fx\n",
               p->vllm_version, (unsigned long long)p->kv_tokens, p->max_concurrency);
    if (p->error_band[0]) ps__eput(b, "  (%s)\n", p->error_band);
    if (p->calibration[0]) ps__eput(b, "  (figures %s)\n", p->calibration);
    if (p->env_count) {
      ps__eput(b, "\nEnvironment:\n");
      for (int i = 0; i < p->env_count; i++) {
        ps__eput(b, "  %s=", p->env[i].name);
        put_text(b, p->env[i].value);
        ps__eput(b, "\n      ");
        put_text(b, p->env[i].why);
        ps__eput(b, "\n");
      }
    }
    if (p->command_count) {
      ps__eput(b, "\nCluster: start Ray on every node of the instance first (HEAD_IP = the head's "
                  "address):\n");
      for (int i = 0; i < p->command_count; i++)
        put_comment_item(b, "  ", &p->commands[i], "      ");
    }
    ps__eput(b, "\nCommand%s:\n  ", p->command_count ? " (on the head)" : "");
    put_command_text(b, p);
    ps__eput(b, "\n\nArguments:\n");
    for (int i = 0; i < p->arg_count; i++) {
      ps__eput(b, "  %s", p->args[i].name);
      if (p->args[i].value[0]) {
        ps__eput(b, " ");
        put_text(b, p->args[i].value);
      }
      ps__eput(b, "\n      ");
      put_text(b, p->args[i].why);
      ps__eput(b, "\n");
    }
    ps__eput(b, "\nWhy:\n");
    for (int i = 0; i < p->reason_count; i++) {
      ps__eput(b, "  - ");
      put_text(b, p->reasons[i]);
      ps__eput(b, "\n");
    }
  }
  if (p->alt_count) {
    ps__eput(b, "\nConsidered:\n");
    for (int i = 0; i < p->alt_count; i++) {
      const ps_plan_option *o = &p->alts[i];
      ps__eput(b, "  %d. TP=%d PP=%d", i + 1, o->tp, o->pp);
      if (o->gpu_count) {
        ps__eput(b, " on GPUs ");
        put_gpus(b, o->gpus, o->gpu_count);
      }
      ps__eput(b, ": ");
      put_text(b, o->why);
      ps__eput(b, "\n");
    }
  }
}

static void write_shell(ps__ebuf *b, const ps_plan *p) {
  ps__eput(b, "# peerscope plan: ");
  put_text(b, p->summary);
  ps__eput(b, "\n");
  if (!p->feasible) {
    ps__eput(b, "echo 'peerscope: no plan fits' >&2; exit 1\n");
    return;
  }
  for (int i = 0; i < p->command_count; i++)
    put_comment_item(b, "# ", &p->commands[i], "#   ");
  for (int i = 0; i < p->env_count; i++) {
    ps__eput(b, "# ");
    put_text(b, p->env[i].why);
    ps__eput(b, "\nexport %s=", p->env[i].name);
    put_quoted(b, p->env[i].value);
    ps__eput(b, "\n");
  }
  put_command(b, p, " \\\n    ");
  ps__eput(b, "\n");
}

static void write_args(ps__ebuf *b, const ps_plan *p) {
  for (int i = 0; i < p->arg_count; i++) {
    ps__eput(b, "%s%s", i ? " " : "", p->args[i].name);
    if (p->args[i].value[0]) {
      ps__eput(b, " ");
      put_quoted(b, p->args[i].value);
    }
  }
  ps__eput(b, "\n");
}

static void write_yaml(ps__ebuf *b, const ps_plan *p) {
  ps__eput(b, "# peerscope plan: ");
  put_text(b, p->summary);
  ps__eput(b, "\n# Use: ");
  for (int i = 0; i < p->env_count; i++) {
    ps__eput(b, "%s=", p->env[i].name);
    put_quoted_text(b, p->env[i].value);
    ps__eput(b, " ");
  }
  ps__eput(b, "vllm serve ");
  put_quoted_text(b, p->model_arg);
  ps__eput(b, " --config this-file.yaml\n");
  for (int i = 0; i < p->arg_count; i++) {
    const ps_plan_item *it = &p->args[i];
    ps__eput(b, "# ");
    put_text(b, it->why);
    ps__eput(b, "\n%s: ", it->name + 2);
    if (!it->value[0]) {
      ps__eput(b, "true\n");
      continue;
    }
    /* numbers bare, everything else double-quoted with JSON escapes (valid YAML) */
    const char *v = it->value;
    bool number = strspn(v, "0123456789.") == strlen(v) && strchr("0123456789", v[0]);
    if (number) {
      ps__eput(b, "%s\n", v);
    } else {
      json_t *str = json_string(v);
      char *quoted = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
      ps__eput(b, "%s\n", quoted ? quoted : "\"\"");
      free(quoted);
      json_decref(str);
    }
  }
}

static json_t *items_json(const ps_plan_item *items, int n) {
  json_t *arr = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, json_pack("{s:s, s:s?, s:s}", "name", items[i].name, "value",
                                         items[i].value[0] ? items[i].value : NULL, "why",
                                         items[i].why));
  return arr;
}

static json_t *gpus_json(const int *gpus, int n) {
  json_t *arr = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, json_integer(gpus[i]));
  return arr;
}

static char *write_json(const ps_plan *p) {
  ps__ebuf cmd = {0};
  if (p->feasible) put_command(&cmd, p, " ");
  json_t *reasons = json_array(), *alts = json_array();
  for (int i = 0; i < p->reason_count; i++)
    json_array_append_new(reasons, json_string(p->reasons[i]));
  for (int i = 0; i < p->alt_count; i++) {
    const ps_plan_option *o = &p->alts[i];
    json_array_append_new(alts, json_pack("{s:i, s:i, s:o, s:b, s:s}", "tp", o->tp, "pp", o->pp,
                                          "gpus", gpus_json(o->gpus, o->gpu_count), "feasible",
                                          o->feasible, "why", o->why));
  }
  json_t *memory = json_pack(
      "{s:I, s:I, s:I, s:I, s:I}", "budget_bytes", (json_int_t)p->budget_bytes, "weights_bytes",
      (json_int_t)p->weights_bytes, "overhead_bytes", (json_int_t)p->overhead_bytes, "kv_bytes",
      (json_int_t)p->kv_bytes, "kv_tokens", (json_int_t)p->kv_tokens);
  add_vllm_memory(memory, p);
  json_t *doc = json_pack(
      "{s:s, s:s, s:b, s:s, s:i, s:i, s:o, s:i, s:o, s:o, s:i, s:f, s:b, s:s?, s:s, s:o, s:o, "
      "s:s?, "
      "s:o, s:o, s:i, s:o, s:o}",
      "schema", PLAN_SCHEMA, "vllm_version", p->vllm_version, "feasible", p->feasible, "summary",
      p->summary, "tp", p->tp, "pp", p->pp, "gpus", gpus_json(p->gpus, p->gpu_count), "replicas",
      p->replicas, "memory", memory, "max_model_len",
      p->max_model_len > 0 ? json_integer(p->max_model_len) : json_null(), "max_num_seqs",
      p->max_num_seqs, "gpu_memory_utilization", p->gpu_memory_utilization, "custom_all_reduce",
      p->custom_all_reduce, "pp_layer_partition",
      p->pp_layer_partition[0] ? p->pp_layer_partition : NULL, "model", p->model_arg, "env",
      items_json(p->env, p->env_count), "args", items_json(p->args, p->arg_count), "command",
      p->feasible && cmd.data ? cmd.data : NULL, "reasons", reasons, "alternatives", alts, "nodes",
      p->node_count > 0 ? p->node_count : 1, "gpu_node", gpus_json(p->gpu_node, p->gpu_count),
      "node_commands", items_json(p->commands, p->command_count));
  char *text =
      doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4)) : NULL;
  json_decref(doc);
  ps__free(cmd.data);
  return text;
}

ps_status ps_plan_write(ps_ctx *ctx, const ps_plan *plan, ps_plan_format format, char **out) {
  *out = NULL;
  ps__ebuf b = {0};
  switch (format) {
  case PS_PLAN_TEXT: write_text(&b, plan); break;
  case PS_PLAN_SHELL: write_shell(&b, plan); break;
  case PS_PLAN_ARGS: write_args(&b, plan); break;
  case PS_PLAN_YAML: write_yaml(&b, plan); break;
  case PS_PLAN_JSON: {
    char *text = write_json(plan);
    if (!text) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the plan");
    ps__eput(&b, "%s\n", text);
    free(text);
    break;
  }
  default: return ps__fail(ctx, PS_ERR_INVALID_ARG, "unknown plan format %d", (int)format);
  }
  if (b.failed || !b.data) {
    ps__free(b.data);
    return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory writing the plan");
  }
  *out = b.data;
  return PS_OK;
}
