/* libFuzzer target: vLLM start-up logs (what --vllm-log reads, untrusted). The reader must
 * never crash, read past the text or hang; a refusal is one line that names the log and a
 * line number; an accepted log then goes through the calibration against Llama-3.1-8B on one
 * H100, which must accept it or refuse it in one line as well. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerscope/peerscope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ps_model *model_once(void) {
  static ps_model *m;
  if (!m && ps_model_synthetic(NULL, 8.03, "bf16", 0, &m) != PS_OK) abort();
  return m;
}

static ps_report *report_once(void) {
  static ps_report *r;
  if (!r) {
    static const char topo[] = "\tGPU0\tCPU Affinity\tNUMA Affinity\nGPU0\t X \t0-7\t0\n";
    char path[] = "/tmp/fuzz_vllm_log_topoXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, topo, sizeof(topo) - 1) < 0) abort();
    close(fd);
    double gb[1] = {80};
    if (ps_import_topology(NULL, path, &r) != PS_OK || ps_report_set_gpu_memory(NULL, r, gb, 1))
      abort();
    unlink(path);
  }
  return r;
}

static void one_line(ps_ctx *ctx) {
  const char *e = ps_ctx_error(ctx);
  if (strchr(e, '\n') || strncmp(e, "fuzz.log:", 9) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps_ctx *ctx = ps_ctx_new();
  ps_vllm_log *log = NULL;
  if (ps_vllm_log_read(ctx, (const char *)data, size, "fuzz.log", &log) != PS_OK) {
    if (log) abort();
    one_line(ctx);
  } else {
    ps_plan_request req = PS_INIT(ps_plan_request);
    req.model = model_once();
    req.vllm_log = log;
    ps_vllm_calibration *cal = NULL;
    if (ps_vllm_calibration_make(ctx, report_once(), &req, "log", &cal) != PS_OK) one_line(ctx);
    ps_vllm_calibration_free(cal);
  }
  ps_vllm_log_free(log);
  ps_ctx_free(ctx);
  return 0;
}
