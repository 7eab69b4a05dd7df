/* The plain way to time a copy, as the benchmark issue asks to compare with: a loop of
 * synchronous cuMemcpy calls between two wall-clock readings, no events, no spin latch.
 * Built and run on the GPU machine by tests/gpu/bench.sh:
 *   cc -O2 -I/usr/local/cuda/include plain_copy.c -lcuda -o plain_copy
 *   ./plain_copy BYTES ITERS TRIALS  ->  "plain <kind> bytes=N gbps=X" lines (median trial) */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    CUresult rc_ = (call);                                                                         \
    if (rc_ != CUDA_SUCCESS) {                                                                     \
      fprintf(stderr, "%s failed: %d\n", #call, rc_);                                              \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : 64u << 20;
  int iters = argc > 2 ? atoi(argv[2]) : 16, trials = argc > 3 ? atoi(argv[3]) : 5;
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr a, b;
  void *host;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuMemAlloc(&a, bytes));
  CHECK(cuMemAlloc(&b, bytes));
  CHECK(cuMemHostAlloc(&host, bytes, 0));
  CHECK(cuMemsetD8(a, 1, bytes));
  const char *names[] = {"local_ce", "h2d", "d2h"};
  for (int kind = 0; kind < 3; kind++) {
    double gbps[64];
    for (int t = -1; t < trials && t < 64; t++) {
      CHECK(cuCtxSynchronize());
      double t0 = now_s();
      for (int i = 0; i < iters; i++) {
        if (kind == 0) CHECK(cuMemcpyDtoD(b, a, bytes));
        if (kind == 1) CHECK(cuMemcpyHtoD(b, host, bytes));
        if (kind == 2) CHECK(cuMemcpyDtoH(host, a, bytes));
      }
      CHECK(cuCtxSynchronize());
      if (t >= 0) gbps[t] = (double)bytes * iters / (now_s() - t0) / 1e9;
    }
    qsort(gbps, trials, sizeof(double), cmp);
    printf("plain %s bytes=%zu gbps=%.2f\n", names[kind], bytes, gbps[trials / 2]);
  }
  return 0;
}
