#include "drv/nccl.h"

#include <stdio.h>
#include <string.h>

#include "core/internal.h"

bool ps__nccl_open(ps__nccl *nccl, const char *path, const char *dir, char *err, size_t err_len) {
  static const char *const sonames[] = {"libnccl.so.2", "libnccl.so", NULL};
  memset(nccl, 0, sizeof(*nccl));
  char why[PS_ERRBUF_LEN];
  bool opened;
  if (path && *path) {
    opened = ps__lib_open_path(&nccl->lib, path, why, sizeof(why));
  } else {
    opened = ps__lib_open(&nccl->lib, sonames, dir, why, sizeof(why));
  }
  if (!opened) {
    snprintf(err, err_len, "NCCL not found (%s)", why);
    return false;
  }
  ps__sym table[] = {
      {(void **)&nccl->GetVersion, {"ncclGetVersion"}, true, NULL},
      {(void **)&nccl->CommInitAll, {"ncclCommInitAll"}, true, NULL},
      {(void **)&nccl->CommDestroy, {"ncclCommDestroy"}, true, NULL},
      {(void **)&nccl->GroupStart, {"ncclGroupStart"}, true, NULL},
      {(void **)&nccl->GroupEnd, {"ncclGroupEnd"}, true, NULL},
      {(void **)&nccl->AllReduce, {"ncclAllReduce"}, true, NULL},
      {(void **)&nccl->GetErrorString, {"ncclGetErrorString"}, true, NULL},
  };
  if (!ps__lib_resolve(&nccl->lib, table, PS_ARRAY_LEN(table), err, err_len) ||
      nccl->GetVersion(&nccl->version) != ncclSuccess) {
    if (!err[0] || !strstr(err, "has no")) snprintf(err, err_len, "ncclGetVersion failed");
    ps__lib_close(&nccl->lib);
    return false;
  }
  return true;
}

void ps__nccl_close(ps__nccl *nccl) { ps__lib_close(&nccl->lib); }

const char *ps__nccl_error(const ps__nccl *nccl, ncclResult_t rc) {
  static __thread char buf[48];
  const char *text = nccl->GetErrorString ? nccl->GetErrorString(rc) : NULL;
  if (text) return text;
  snprintf(buf, sizeof(buf), "NCCL error %d", rc);
  return buf;
}
