/* The plan request's field table and the input object built on it (request_fields.c,
 * request.c, request_json.c). */
#ifndef PS_PLAN_REQUEST_INTERNAL_H
#define PS_PLAN_REQUEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "peerscope/peerscope.h"

#define PS__FIELD_MAX 48
#define PS__STRING_MAX 1024

/* A table row: the public part, and where the value goes in ps_plan_request (-1: nowhere,
 * a model source). GPU lists also fill the int count at count_offset. */
typedef struct ps__field {
  ps_plan_field pub;
  long offset;
  long count_offset;
} ps__field;

extern const ps__field ps__fields[];
extern const int ps__field_count;

/* The row index for a JSON name or a flag (with or without "--"); -1 if none. */
int ps__field_index(const char *key);

struct ps_plan_input {
  bool given[PS__FIELD_MAX];
  double num[PS__FIELD_MAX]; /* int, number, bool, and an enum's choice index */
  char *str[PS__FIELD_MAX];
  int gpus[PS_PLAN_MAX_GPUS];
  int gpu_count;
  bool cli_names; /* fields were set by flag: cross-field messages name flags */
  /* what the request borrows, loaded by ps_plan_input_request (request_measured.c) */
  ps_vllm_log *log;
  ps_vllm_calibration **cals;
  int cal_count;
  bool measured_loaded;
  char installed[32]; /* the installed vLLM's version, "" none */
  char installed_why[600];
};

/* request_measured.c: the log of the vllm_log field, the cache's records and the installed
 * vLLM's version into `req` (loaded once, owned by `in`). PS_ERR_BAD_INPUT for a bad log. */
ps_status ps__input_measured(ps_ctx *ctx, ps_plan_input *in, ps_plan_request *req);
void ps__input_measured_free(ps_plan_input *in);

/* Stores a checked value of row i (takes nothing: strings are copied). */
ps_status ps__input_store_num(ps_ctx *ctx, ps_plan_input *in, int i, double v);
ps_status ps__input_store_str(ps_ctx *ctx, ps_plan_input *in, int i, const char *s);
ps_status ps__input_store_gpus(ps_ctx *ctx, ps_plan_input *in, int i, const int *g, int n);

#endif
