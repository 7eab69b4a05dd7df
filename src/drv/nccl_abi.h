/* Minimal declarations of the NCCL API the all-reduce benchmark uses, written from NCCL's
 * public documentation so the build needs no NCCL headers. libnccl.so.2 is loaded with
 * dlopen at run time (src/drv/nccl.c); the fake libnccl.so.2 in tests/fake exports exactly
 * these signatures. All of them are stable since NCCL 2.0 (bfloat16 since 2.10). */
#ifndef PS_DRV_NCCL_ABI_H
#define PS_DRV_NCCL_ABI_H

#include <stddef.h>

#include "drv/cuda_abi.h"

typedef struct ncclComm *ncclComm_t;
typedef int ncclResult_t; /* ncclSuccess = 0 */

enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
};

typedef enum { ncclSum = 0 } ncclRedOp_t;
typedef enum { ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9 } ncclDataType_t;

typedef ncclResult_t (*PFN_ncclGetVersion)(int *version);
typedef ncclResult_t (*PFN_ncclCommInitAll)(ncclComm_t *comms, int ndev, const int *devlist);
typedef ncclResult_t (*PFN_ncclCommDestroy)(ncclComm_t comm);
typedef ncclResult_t (*PFN_ncclGroupStart)(void);
typedef ncclResult_t (*PFN_ncclGroupEnd)(void);
typedef ncclResult_t (*PFN_ncclAllReduce)(const void *send, void *recv, size_t count,
                                          ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                                          CUstream stream);
typedef const char *(*PFN_ncclGetErrorString)(ncclResult_t result);

#endif
