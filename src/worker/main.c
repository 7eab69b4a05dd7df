/* The worker-main skeleton (main.h). */
#include "worker/main.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/busid.h"

void ps__worker_emit(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  /* One write per line: the parent may be reading while we hang in the next step. */
  ssize_t off = 0;
  while (off < n) {
    ssize_t got = write(STDOUT_FILENO, line + off, (size_t)(n - off));
    if (got <= 0) _exit(PS_WORKER_EXIT_PARENT_GONE);
    off += got;
  }
}

/* argv is NAME VALUE pairs; the common ones here, the rest the mode's. */
static bool parse_args(ps__worker *w, const ps__worker_mode *mode, int argc, char **argv,
                       char **gpu_list, char **job_list) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *name = argv[i], *value = argv[i + 1];
    if (strcmp(name, "--driver-dir") == 0)
      w->driver_dir = value;
    else if (strcmp(name, "--gpus") == 0)
      *gpu_list = argv[i + 1];
    else if (strcmp(name, "--jobs") == 0)
      *job_list = argv[i + 1];
    else if (strcmp(name, "--protocol") == 0 && atoi(value) != PS_WORKER_PROTOCOL) {
      fprintf(stderr, "peerscope-worker: protocol %s unsupported (speaks %d)\n", value,
              PS_WORKER_PROTOCOL);
      return false;
    } else if (mode->option) {
      mode->option(w, name, value); /* unknown names (--mode) are skipped */
    }
  }
  if (*gpu_list && *job_list && (!mode->valid || mode->valid(w))) return true;
  fputs(mode->usage, stderr);
  return false;
}

static int split(char *list, char **items, int cap) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < cap;
       tok = strtok_r(NULL, ",", &save))
    items[n++] = tok;
  return n;
}

/* The --gpus and --jobs lists; false when out of memory. */
static bool take_lists(ps__worker *w, const ps__worker_mode *mode, char *gpu_list, char *job_list) {
  char **bus_ids = calloc((size_t)mode->max_gpus, sizeof(*bus_ids));
  w->jobs = calloc((size_t)mode->max_jobs, sizeof(*w->jobs));
  bool ok = bus_ids && w->jobs;
  if (ok) {
    w->gpu_count = split(gpu_list, bus_ids, mode->max_gpus);
    w->job_count = split(job_list, w->jobs, mode->max_jobs);
    w->gpus = calloc((size_t)w->gpu_count + 1, sizeof(*w->gpus));
    ok = w->gpus != NULL;
  }
  for (int g = 0; ok && g < w->gpu_count; g++)
    ps__strlcpy(w->gpus[g].bus_id, bus_ids[g], sizeof(w->gpus[g].bus_id));
  free(bus_ids);
  return ok;
}

/* Maps each requested bus id to its CUDA ordinal. */
static void map_devices(ps__worker *w, int cuda_count) {
  for (int g = 0; g < w->gpu_count; g++) {
    w->gpus[g].ordinal = -1;
    for (int o = 0; o < cuda_count; o++) {
      CUdevice dev;
      char bus[32];
      if (w->cuda.DeviceGet(&dev, o) != CUDA_SUCCESS) continue;
      if (w->cuda.DeviceGetPCIBusId(bus, sizeof(bus), dev) != CUDA_SUCCESS) continue;
      if (ps__busid_equal(bus, w->gpus[g].bus_id)) w->gpus[g].ordinal = o;
    }
    ps__worker_emit("map %d %d", g, w->gpus[g].ordinal);
  }
}

/* `--gpus -` and `--jobs -`: the parent started us before it knew them (its NVML probe runs
 * while we start CUDA) and writes them on stdin, one line each. */
static bool lists_later(char *const *gpu_list, char *const *job_list) {
  return strcmp(*gpu_list, "-") == 0 || strcmp(*job_list, "-") == 0;
}

static bool read_lists(char **gpu_list, char **job_list) {
  size_t cap[2] = {0, 0};
  *gpu_list = *job_list = NULL;
  ssize_t a = getline(gpu_list, &cap[0], stdin);
  ssize_t b = a > 0 ? getline(job_list, &cap[1], stdin) : -1;
  if (a <= 0 || b <= 0) return false;
  (*gpu_list)[strcspn(*gpu_list, "\n")] = '\0';
  (*job_list)[strcspn(*job_list, "\n")] = '\0';
  return true;
}

/* take_lists and the mode's prepare; false after `init fail` (or prepare's silence). */
static bool prepare_lists(ps__worker *w, const ps__worker_mode *mode, char *gpu_list,
                          char *job_list) {
  if (!take_lists(w, mode, gpu_list, job_list)) {
    ps__worker_emit("init fail OUT_OF_MEMORY host memory for the GPU and job lists");
    return false;
  }
  return mode->prepare(w);
}

/* The driver library, cuInit (and, when they come late, the lists), `init ok` and the device
 * map; false after `init fail` (the library is closed again). */
static bool start_driver(ps__worker *w, const ps__worker_mode *mode, char **gpu_list,
                         char **job_list, bool later) {
  char err[PS_ERRBUF_LEN];
  double t0 = ps__now_ms();
  if (!ps__cuda_open(&w->cuda, w->driver_dir, err, sizeof(err))) {
    ps__worker_emit("init fail DRIVER_UNAVAILABLE %s", err);
    return false;
  }
  int version = 0, count = 0;
  bool opened = !mode->opened || mode->opened(w);
  CUresult rc = opened ? w->cuda.Init(0) : CUDA_SUCCESS;
  if (opened && rc == CUDA_SUCCESS) rc = w->cuda.DriverGetVersion(&version);
  if (opened && rc == CUDA_SUCCESS) rc = w->cuda.DeviceGetCount(&count);
  if (opened && rc != CUDA_SUCCESS)
    ps__worker_emit("init fail %s cuInit failed", ps__cuda_error_name(&w->cuda, rc));
  double init_ms = ps__now_ms() - t0;
  if (opened && rc == CUDA_SUCCESS && later) {
    opened = read_lists(gpu_list, job_list);
    if (!opened) fputs("peerscope-worker: no GPU and job lists on stdin\n", stderr);
    opened = opened && prepare_lists(w, mode, *gpu_list, *job_list);
  }
  if (!opened || rc != CUDA_SUCCESS) {
    ps__cuda_close(&w->cuda);
    return false;
  }
  char fields[256] = "";
  mode->started(w, init_ms, fields, sizeof(fields));
  ps__worker_emit("init ok version=%d count=%d%s%s", version, count, fields[0] ? " " : "", fields);
  map_devices(w, count);
  return true;
}

/* Every job in order; the exit code. */
static int run_jobs(ps__worker *w, const ps__worker_mode *mode) {
  for (int j = 0; j < w->job_count && !w->stop; j++) {
    if (!mode->run(w, j, w->jobs[j])) {
      fprintf(stderr, "peerscope-worker: bad %s '%s'\n", mode->job_word, w->jobs[j]);
      return PS_WORKER_EXIT_USAGE;
    }
  }
  ps__worker_emit("done");
  return 0;
}

int ps__worker_run(ps__worker *w, const ps__worker_mode *mode, int argc, char **argv) {
  /* Die with the parent: a worker must never outlive the peerscope that started it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char *gpu_list = NULL, *job_list = NULL;
  if (!parse_args(w, mode, argc, argv, &gpu_list, &job_list)) return PS_WORKER_EXIT_USAGE;
  ps__worker_emit("hello %d %d t=%.3f", PS_WORKER_PROTOCOL, (int)getpid(), ps__now_ms());
  int exit_code = PS_WORKER_EXIT_INIT_FAILED;
  bool later = lists_later(&gpu_list, &job_list);
  if (later) gpu_list = job_list = NULL; /* read_lists allocates them */
  if (later || prepare_lists(w, mode, gpu_list, job_list)) {
    if (start_driver(w, mode, &gpu_list, &job_list, later)) {
      exit_code = run_jobs(w, mode);
      if (!w->stop) mode->release(w); /* a poisoned driver frees it all at exit */
      ps__cuda_close(&w->cuda);
    }
  }
  mode->free_host(w); /* safe on what prepare never filled */
  if (later) {
    free(gpu_list);
    free(job_list);
  }
  free(w->gpus);
  free(w->jobs);
  return exit_code;
}
