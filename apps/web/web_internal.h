/* The dashboard's shared state (state.c) and the pieces of the router (api_*.c). One mutex
 * guards the job, the launch and the pointer to the current snapshot, and is held only for
 * moments: the report itself is immutable and reference-counted (web_snapshot), so readers
 * never wait on a writer's long job; background work (verify, bench, an upload, vLLM) builds a
 * new snapshot on its own and swaps it in under the lock. */
#ifndef PS_WEB_INTERNAL_H
#define PS_WEB_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "web/web.h"

#define PS_WEB_LOG_LINES 4000 /* the launch log kept for late SSE clients */
#ifndef PS_ARRAY_LEN
#define PS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#endif

typedef enum web_job_kind { JOB_NONE, JOB_VERIFY, JOB_BENCH } web_job_kind;
typedef enum web_job_state { JOB_IDLE, JOB_RUNNING, JOB_DONE, JOB_FAILED } web_job_state;

typedef struct web_job {
  int id;
  web_job_kind kind;
  web_job_state state;
  int done, total;
  char label[64];
  char error[256];
  bool thread_live;
  pthread_t thread;
  /* bench request */
  unsigned tests;
  bool quick;
  int gpus[PS_PLAN_MAX_GPUS];
  int gpu_count;
} web_job;

typedef enum web_launch_state {
  LAUNCH_IDLE,
  LAUNCH_STARTING,
  LAUNCH_READY,
  LAUNCH_EXITED,
  LAUNCH_STOPPING,
  LAUNCH_STOPPED,
  LAUNCH_FAILED
} web_launch_state;

typedef struct web_launch {
  int id;
  web_launch_state state;
  char url[128];
  char command[4096];
  int health; /* 0 unknown, 1 waiting, 2 ok, 3 failed */
  bool has_exit;
  int exit_code;
  char error[256];
  ps_log_summary *summary; /* never NULL once ps_web_new succeeded */
  char suggestion[512];
  ps_plan *plan;
  ps_launch_cmd *cmd;
  char *lines[PS_WEB_LOG_LINES]; /* ring: line i at i % PS_WEB_LOG_LINES */
  size_t line_count;             /* lines ever appended */
  unsigned seq;                  /* bumped on every status change */
  volatile int stop;
  bool thread_live;
  pthread_t thread;
} web_launch;

/* A report and its JSON (what GET /api/v1/topology answers), never changed once made. */
typedef struct web_snapshot {
  int refs; /* atomic */
  ps_report *report;
  char *json;
  size_t json_len;
} web_snapshot;

struct ps_web {
  ps_web_config cfg;
  char session[PS_WEB_TOKEN_HEX + 1]; /* the session cookie's value: random, never printed */
  pthread_mutex_t lock;
  pthread_cond_t changed; /* a log line or a status change (event streams wake on it) */
  web_snapshot *snap;     /* the current report: ps__web_snapshot_get, never used directly */
  web_job job;
  web_launch launch;
  volatile int closing; /* the server is stopping: event streams end */
};

/* Snapshots (state.c). _new takes report (freed on failure) and writes its JSON: NULL with
 * ctx's error, or when the JSON passes PS_WEB_MAX_ANSWER (*too_large). _get: a reference to
 * the current one (lock not held); _put drops one; _swap makes s current (lock held) and
 * returns the old one, for the caller to _put after unlocking. */
web_snapshot *ps__web_snapshot_new(ps_ctx *ctx, ps_report *report, bool *too_large);
web_snapshot *ps__web_snapshot_get(ps_web *w);
void ps__web_snapshot_put(web_snapshot *s);
web_snapshot *ps__web_snapshot_swap(ps_web *w, web_snapshot *s);

/* Copies src into dst (size dst_len), always terminating; returns dst (router.c). The server
 * uses libc and the public API only, not libpeerscope's internal helpers. */
char *ps__web_strlcpy(char *dst, const char *src, size_t dst_len);

/* Responses (router.c). */
void ps__web_json(ps_web_response *resp, int status, json_t *doc); /* steals doc */
void ps__web_text(ps_web_response *resp, int status, const char *type, const char *text);
void ps__web_error(ps_web_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A JSON object body, strictly: false with a 400 in resp for malformed JSON, a field not in
 * `allowed` (NULL-terminated) or a body that is not an object. */
/* allowed == NULL: any key (the plan fields are checked by the library). */
json_t *ps__web_body_object(const ps_web_request *req, const char *const *allowed,
                            ps_web_response *resp);
/* Typed fields of a body: false with a 400 naming the field when present but of the wrong
 * type or out of range; absent leaves *out as it is. */
bool ps__web_get_int(json_t *o, const char *key, int lo, int hi, int *out, ps_web_response *r);
bool ps__web_get_bool(json_t *o, const char *key, bool *out, ps_web_response *r);
bool ps__web_get_gpus(json_t *o, const char *key, int *gpus, int *count, ps_web_response *r);

/* Handlers (api_*.c); called with the lock NOT held. */
void ps__web_topology_get(ps_web *w, ps_web_response *resp);
void ps__web_topology_post(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps__web_verify_post(ps_web *w, ps_web_response *resp);
void ps__web_job_get(ps_web *w, ps_web_response *resp);
void ps__web_plan_post(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps__web_bench_get(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps__web_bench_post(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps__web_doctor_get(ps_web *w, ps_web_response *resp);
void ps__web_launch_get(ps_web *w, ps_web_response *resp);
void ps__web_launch_post(ps_web *w, const ps_web_request *req, ps_web_response *resp);
void ps__web_stop_post(ps_web *w, ps_web_response *resp);
bool ps__web_asset(ps_web *w, const char *path, ps_web_response *resp);

/* Shared by the plan and launch handlers (api_plan.c): a plan from a body's plan fields
 * (ps_plan_input_from_json; `own` = the handler's own fields; dir_only refuses a model given
 * by size). Returns false with the response filled. Lock not held; takes it for the report. */
bool ps__web_make_plan(ps_web *w, const ps_web_request *req, const char *const *own, bool dir_only,
                       ps_plan **plan, ps_web_response *resp);
void ps__web_plan_fields_get(ps_web *w, ps_web_response *resp);

/* Starts a background job (state.c): 202 with the job, 409 when one runs or the report is
 * an uploaded topology. `request` carries the bench options. */
void ps__web_start_job(ps_web *w, web_job_kind kind, const web_job *request, ps_web_response *resp);
/* Stops vLLM and joins its thread (api_launch.c; ps_web_free). */
void ps__web_launch_shutdown(ps_web *w);

/* Job and launch JSON (lock held). */
json_t *ps__web_job_json(const ps_web *w);
json_t *ps__web_launch_json(const ps_web *w);

#endif
