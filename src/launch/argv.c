/* The vllm serve command for a plan: argv array and environment additions (pure, no I/O).
 * What --dry-run prints and what ps_launch_run executes are the same arrays. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

/* Flags whose value the plan and the user may both give. Aliases map to the long name
 * (vllm/engine/arg_utils.py: "--tensor-parallel-size", "-tp"). */
static const struct {
  const char *alias, *name;
} aliases[] = {{"-tp", "--tensor-parallel-size"}, {"-pp", "--pipeline-parallel-size"}};

/* "--max_model_len" and "--max-model-len" are the same flag to vLLM (FlexibleArgumentParser). */
static void canonical(const char *arg, char *out, size_t len) {
  size_t n = strcspn(arg, "=");
  if (n >= len) n = len - 1;
  memcpy(out, arg, n);
  out[n] = '\0';
  for (char *p = out + 2; p < out + n && out[0] == '-' && out[1] == '-'; p++)
    if (*p == '_') *p = '-';
  for (size_t i = 0; i < PS_ARRAY_LEN(aliases); i++)
    if (strcmp(out, aliases[i].alias) == 0) ps__strlcpy(out, aliases[i].name, len);
}

/* The user's value of `flag` among the extras, or NULL; *found tells a valueless flag. */
static const char *user_value(const ps_launch_opts *o, const char *flag, bool *found) {
  char name[128];
  *found = false;
  for (int i = 0; i < o->extra_count; i++) {
    const char *a = o->extra[i];
    if (!a || a[0] != '-') continue;
    canonical(a, name, sizeof(name));
    if (strcmp(name, flag) != 0) continue;
    *found = true;
    const char *eq = strchr(a, '=');
    if (eq) return eq + 1;
    if (i + 1 < o->extra_count && o->extra[i + 1] && o->extra[i + 1][0] != '-')
      return o->extra[i + 1];
    return "";
  }
  return NULL;
}

static ps_status push(ps_ctx *ctx, ps_launch_cmd *cmd, const char *text) {
  if (cmd->argc >= PS_LAUNCH_MAX_ARGV)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "more than %d vllm arguments", PS_LAUNCH_MAX_ARGV);
  char *copy = ps__strdup(text);
  if (!copy) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  cmd->argv[cmd->argc++] = copy;
  return PS_OK;
}

static ps_status push_env(ps_ctx *ctx, ps_launch_cmd *cmd, const char *name, const char *value) {
  size_t len = strlen(name) + strlen(value) + 2;
  char *text = ps__calloc(1, len);
  if (!text) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  snprintf(text, len, "%s=%s", name, value);
  cmd->env[cmd->envc++] = text;
  return PS_OK;
}

static void note_conflict(ps_launch_cmd *cmd, const char *flag, const char *plan_value,
                          const char *user) {
  if (strcmp(plan_value, user) == 0 || cmd->conflict_count >= PS_LAUNCH_MAX_CONFLICTS) return;
  ps_launch_conflict *c = &cmd->conflicts[cmd->conflict_count++];
  ps__strlcpy(c->flag, flag, sizeof(c->flag));
  ps__strlcpy(c->plan_value, plan_value[0] ? plan_value : "(set)", sizeof(c->plan_value));
  ps__strlcpy(c->user_value, user[0] ? user : "(set)", sizeof(c->user_value));
}

/* A plan argument the user also gives: the user's copy wins, the plan's is dropped. */
static ps_status plan_arg(ps_ctx *ctx, ps_launch_cmd *cmd, const ps_launch_opts *o,
                          const char *flag, const char *value) {
  bool found;
  const char *user = user_value(o, flag, &found);
  if (found) {
    note_conflict(cmd, flag, value, user ? user : "");
    return PS_OK;
  }
  ps_status st = push(ctx, cmd, flag);
  if (st == PS_OK && value[0]) st = push(ctx, cmd, value);
  return st;
}

static void cmd_clear(ps_launch_cmd *cmd) {
  for (int i = 0; i < cmd->argc; i++)
    ps__free(cmd->argv[i]);
  for (int i = 0; i < cmd->envc; i++)
    ps__free(cmd->env[i]);
  cmd->argc = cmd->envc = 0;
  cmd->argv[0] = NULL;
}

static ps_status fill(ps_ctx *ctx, const ps_plan *plan, const ps_launch_opts *opts,
                      ps_launch_cmd *cmd) {
  if (!plan || !opts) return ps__fail(ctx, PS_ERR_INVALID_ARG, "plan and options are required");
  ps_launch_opts o;
  ps_status ost = PS__OPTS_IN(ctx, opts, &o, "ps_launch_opts");
  if (ost != PS_OK) return ost;
  opts = &o;
  if (!plan->feasible)
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "the plan does not fit: %s", plan->summary);
  if (opts->extra_count < 0 || (opts->extra_count > 0 && !opts->extra))
    return ps__fail(ctx, PS_ERR_INVALID_ARG, "extra arguments: bad count");
  ps_status st;
  char port[16];
  snprintf(port, sizeof(port), "%d", opts->port > 0 ? opts->port : 8000);
  if ((st = push(ctx, cmd, opts->vllm ? opts->vllm : "vllm")) != PS_OK) goto fail;
  if ((st = push(ctx, cmd, "serve")) != PS_OK) goto fail;
  if ((st = push(ctx, cmd, plan->model_arg)) != PS_OK) goto fail;
  for (int i = 0; i < plan->arg_count; i++)
    if ((st = plan_arg(ctx, cmd, opts, plan->args[i].name, plan->args[i].value)) != PS_OK)
      goto fail;
  if ((st = plan_arg(ctx, cmd, opts, "--host", opts->host ? opts->host : "127.0.0.1")) != PS_OK)
    goto fail;
  if ((st = plan_arg(ctx, cmd, opts, "--port", port)) != PS_OK) goto fail;
  for (int i = 0; i < opts->extra_count; i++)
    if ((st = push(ctx, cmd, opts->extra[i] ? opts->extra[i] : "")) != PS_OK) goto fail;
  for (int i = 0; i < plan->env_count && i < PS_PLAN_MAX_ITEMS; i++)
    if ((st = push_env(ctx, cmd, plan->env[i].name, plan->env[i].value)) != PS_OK) goto fail;
  if (opts->nccl_debug && (st = push_env(ctx, cmd, "NCCL_DEBUG", "INFO")) != PS_OK) goto fail;
  return PS_OK;
fail:
  cmd_clear(cmd);
  return st;
}

ps_status ps_launch_argv(ps_ctx *ctx, const ps_plan *plan, const ps_launch_opts *opts,
                         ps_launch_cmd **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_launch_argv: out is NULL");
  *out = NULL;
  ps_launch_cmd *cmd = ps__calloc(1, sizeof(*cmd));
  if (!cmd) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = fill(ctx, plan, opts, cmd);
  if (st != PS_OK) {
    ps__free(cmd);
    return st;
  }
  *out = cmd;
  return PS_OK;
}

void ps_launch_cmd_free(ps_launch_cmd *cmd) {
  if (!cmd) return;
  cmd_clear(cmd);
  ps__free(cmd);
}
