/* Status names and texts, generated from the one PS_STATUS_MAP list. */
#include "peerscope/peerscope.h"

const char *ps_status_name(ps_status st) {
  switch (st) {
#define PS_STATUS_NAME(name, num, text)                                                            \
  case PS_##name: return #name;
    PS_STATUS_MAP(PS_STATUS_NAME)
#undef PS_STATUS_NAME
  default: return "UNKNOWN_STATUS";
  }
}

const char *ps_status_str(ps_status st) {
  switch (st) {
#define PS_STATUS_TEXT(name, num, text)                                                            \
  case PS_##name: return text;
    PS_STATUS_MAP(PS_STATUS_TEXT)
#undef PS_STATUS_TEXT
  default: return "unknown status";
  }
}

#define PS_STR2(x) #x
#define PS_STR(x) PS_STR2(x)

const char *ps_version(void) {
  return PS_STR(PS_VERSION_MAJOR) "." PS_STR(PS_VERSION_MINOR) "." PS_STR(PS_VERSION_PATCH);
}

int ps_abi_version(void) { return PS_ABI_VERSION; }
