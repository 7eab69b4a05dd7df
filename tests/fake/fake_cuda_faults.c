/* The fake libcuda's hostile side, as real drivers behave (docs/fixture-format.md):
 * sticky errors that poison the process, a lost GPU's code, the per-context peer limit.
 * Every function expects the lock held. */
#include "fake_cuda_internal.h"

/* The code every CUDA call returns once a sticky error happened in this process; 0 = none. */
static CUresult sticky;

CUresult ps__cuda_sticky(void) { return sticky; }

void ps__cuda_sticky_reset(void) { sticky = CUDA_SUCCESS; }

CUresult ps__cuda_copy_fault(int src_gpu, int dst_gpu) {
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_COPY_ERROR, src_gpu, dst_gpu);
  if (!ft) return CUDA_SUCCESS;
  if (ft->sticky > 0 || (ft->sticky < 0 && ps__cuda_error_sticky((CUresult)ft->code)))
    sticky = (CUresult)ft->code;
  return (CUresult)ft->code;
}

CUresult ps__cuda_lost(int gpu) {
  if (!ps__fake_gpu_lost(gpu)) return CUDA_SUCCESS;
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_GPU_LOST, gpu, gpu);
  return ft ? (CUresult)ft->code : (CUresult)PS_FIX_LOST_CUDA_CODE;
}

CUresult ps__cuda_peer_limit(const struct CUctx_st *ctx) {
  const ps_fix_fault *ft = ps__fake_fault(PS_FAULT_PEER_LIMIT, -1, -1);
  int max = ft ? ft->max_peers : PS_FIX_DEFAULT_MAX_PEERS, enabled = 0;
  if (max == 0) return CUDA_SUCCESS; /* no limit */
  for (int i = 0; i < PS_FIX_MAX_GPUS; i++)
    enabled += ctx->peer[i];
  return enabled >= max ? CUDA_ERROR_TOO_MANY_PEERS : CUDA_SUCCESS;
}

/* ---- for the fake NCCL ------------------------------------------------------------------ */

PS_FAKE_EXPORT int ps_fake_nccl_fault(int kind, CUdevice a, CUdevice b, unsigned long long *offset,
                                      unsigned *xor_mask) {
  ps__fake_lock();
  int ga = -1, gb = -1;
  const ps_fix_fault *ft = NULL;
  if (ps__cuda_device_gpu(a, &ga) == CUDA_SUCCESS && ps__cuda_device_gpu(b, &gb) == CUDA_SUCCESS)
    ft = ps__fake_fault(kind ? PS_FAULT_NCCL_CORRUPT : PS_FAULT_NCCL_HANG, ga, gb);
  if (ft && offset) *offset = ft->offset;
  if (ft && xor_mask) *xor_mask = ft->xor_mask;
  ps__fake_unlock();
  return ft != NULL;
}

PS_FAKE_EXPORT int ps_fake_path_rank(CUdevice a, CUdevice b) {
  ps__fake_lock();
  int ga = -1, gb = -1, rank = -1;
  const ps_fixture *f = ps__cuda_fixture();
  if (f && ps__cuda_device_gpu(a, &ga) == CUDA_SUCCESS &&
      ps__cuda_device_gpu(b, &gb) == CUDA_SUCCESS) {
    const ps_fix_pair *p = ga == gb ? NULL : ps__fixture_pair(f, ga, gb);
    ps_fix_link pcie = !p ? PS_FIX_LINK_UNSET : p->link == PS_FIX_LINK_NV ? p->pcie : p->link;
    if (!p)
      rank = 0; /* LOC */
    else if (ps__fake_nvlinks_up(f, ga, gb) > 0)
      rank = 1; /* NVL */
    else
      rank = pcie == PS_FIX_LINK_PIX   ? 2
             : pcie == PS_FIX_LINK_PXB ? 3
             : pcie == PS_FIX_LINK_SYS ? 5
                                       : 4;
  }
  ps__fake_unlock();
  return rank;
}
