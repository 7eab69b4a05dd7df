/* The verification worker's contexts, made in parallel: cuDevicePrimaryCtxRetain costs about
 * 100 ms per GPU, and the driver can make several at once. One thread per GPU the jobs use;
 * the rest of the worker stays single-threaded (the threads end before the first job). */
#include <pthread.h>
#include <stdlib.h>

#include "verify/protocol.h"
#include "verify/worker_internal.h"

typedef struct ctx_thread {
  vw_worker *w;
  int gpu;
  pthread_t thread;
  bool started;
} ctx_thread;

static void *make_one(void *arg) {
  ctx_thread *t = arg;
  ps__vw_create_ctx(t->w, t->gpu);
  return NULL;
}

/* needed[g]: a job uses GPU g. */
static int gpus_used(const vw_worker *w, bool *needed) {
  int n = 0;
  for (int j = 0; j < w->base.job_count; j++) {
    ps__job job;
    if (!ps__job_parse(w->base.jobs[j], &job) || job.a >= w->base.gpu_count ||
        job.b >= w->base.gpu_count)
      continue;
    int ends[2] = {job.a, job.b};
    for (int e = 0; e < 2; e++)
      if (ends[e] >= 0 && !needed[ends[e]] && !w->gpus[ends[e]].ctx_state) {
        needed[ends[e]] = true;
        n++;
      }
  }
  return n;
}

void ps__vw_make_contexts(vw_worker *w) {
  bool *needed = calloc((size_t)w->base.gpu_count + 1, sizeof(*needed));
  if (needed && gpus_used(w, needed) >= 2) ps__vw_make_contexts_of(w, needed);
  free(needed); /* fewer than two: made one by one, lazily */
}

void ps__vw_make_contexts_of(vw_worker *w, const bool *needed) {
  int count = w->base.gpu_count;
  ctx_thread *threads = calloc((size_t)count + 1, sizeof(*threads));
  if (!threads) return; /* made one by one, lazily */
  /* Every `step ctx` first: the parent then knows which GPUs a hang could be on. */
  for (int g = 0; g < count; g++)
    if (needed[g]) vw_emit("step ctx %d", g);
  for (int g = 0; g < count; g++) {
    if (!needed[g]) continue;
    threads[g] = (ctx_thread){.w = w, .gpu = g};
    threads[g].started = pthread_create(&threads[g].thread, NULL, make_one, &threads[g]) == 0;
    if (!threads[g].started) ps__vw_create_ctx(w, g); /* no thread: here, in turn */
  }
  for (int g = 0; g < count; g++)
    if (threads[g].started) pthread_join(threads[g].thread, NULL);
  free(threads);
}
