/* NCCL binding for the all-reduce benchmark, used only inside the bench worker. NCCL is
 * optional: without libnccl.so.2 the NCCL measurements are waived, never failed. */
#ifndef PS_DRV_NCCL_H
#define PS_DRV_NCCL_H

#include <stdbool.h>
#include <stddef.h>

#include "drv/loader.h"
#include "drv/nccl_abi.h"

typedef struct ps__nccl {
  ps__lib lib;
  int version; /* ncclGetVersion: 22809 */
  PFN_ncclGetVersion GetVersion;
  PFN_ncclCommInitAll CommInitAll;
  PFN_ncclCommDestroy CommDestroy;
  PFN_ncclGroupStart GroupStart;
  PFN_ncclGroupEnd GroupEnd;
  PFN_ncclAllReduce AllReduce;
  PFN_ncclGetErrorString GetErrorString;
} ps__nccl;

/* Loads `path` when given, else libnccl.so.2 from `dir` (the driver directory: the fake
 * drivers keep a fake NCCL there), else from the system search path. False with the loader's
 * reason in err. */
bool ps__nccl_open(ps__nccl *nccl, const char *path, const char *dir, char *err, size_t err_len);
void ps__nccl_close(ps__nccl *nccl);
const char *ps__nccl_error(const ps__nccl *nccl, ncclResult_t rc);

#endif
