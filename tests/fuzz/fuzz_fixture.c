/* libFuzzer target: the fixture parser must never crash, leak or read out of bounds on
 * any input, and a fixture it accepts must be internally consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture/fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  ps_fixture *f = ps__fixture_parse((const char *)data, size, "fuzz.topo", err, sizeof(err));
  if (!f) {
    /* Every failure is located: "fuzz.topo:LINE:COL: ...". */
    if (strncmp(err, "fuzz.topo:", 10) != 0) abort();
    return 0;
  }
  if (f->gpu_count < 0 || f->gpu_count > PS_FIX_MAX_GPUS) abort();
  if (f->fault_count < 0 || f->fault_count > PS_FIX_MAX_FAULTS) abort();
  for (int a = 0; a < f->gpu_count; a++) {
    for (int b = 0; b < f->gpu_count; b++) {
      if (a == b) continue;
      const ps_fix_pair *p = ps__fixture_pair(f, a, b), *q = ps__fixture_pair(f, b, a);
      if (p->link == PS_FIX_LINK_UNSET || p->link != q->link || p->nvlinks != q->nvlinks) abort();
      if (p->pcie < PS_FIX_LINK_PIX || p->pcie > PS_FIX_LINK_SYS) abort();
    }
  }
  for (int i = 0; i < f->fault_count; i++) {
    const ps_fix_fault *ft = &f->faults[i];
    if (ft->gpu_a >= f->gpu_count || ft->gpu_b >= f->gpu_count) abort();
  }
  ps__fixture_free(f);
  return 0;
}
