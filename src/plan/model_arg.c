/* What `vllm serve` is given as the model: the directory or name as the user gave it (a
 * leading dash made "./-..."); a Hugging Face id with a revision ("org/name@v1") becomes "org/name"
 * and --revision v1, the way vLLM takes them; a model known only by size is "MODEL". */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "plan/plan_internal.h"

void ps__plan_model_arg(const ps_plan_request *req, const ps_model *model, ps_plan *p,
                        bool with_args) {
  /* A model known only by size ("7B bf16") has no name vLLM could load: a placeholder the
   * user recognises, unless --model-name gave one. */
  const char *given = req->model_path          ? req->model_path
                      : model->num_layers <= 0 ? "MODEL"
                                               : model->name;
  ps_model_id *id = NULL;
  /* vLLM would take "-x" for an option: a relative path starting with a dash goes as "./-x",
   * the same directory. (An id or a --model-name cannot start with one either way.) */
  snprintf(p->model_arg, sizeof(p->model_arg), "%s%s", given[0] == '-' ? "./" : "", given);
  if (!strchr(given, '@') || given[0] == '/' || given[0] == '.' ||
      ps_model_id_parse(NULL, given, &id) != PS_OK)
    return;
  if (id->revision[0]) {
    ps__strlcpy(p->model_arg, id->repo, sizeof(p->model_arg));
    if (with_args && p->arg_count < PS_PLAN_MAX_ITEMS) {
      ps_plan_item *it = &p->args[p->arg_count++];
      ps__strlcpy(it->name, "--revision", sizeof(it->name));
      ps__strlcpy(it->value, id->revision, sizeof(it->value));
      snprintf(it->why, sizeof(it->why), "the revision asked for (%.200s)", given);
    }
  }
  ps_model_id_free(id);
}
