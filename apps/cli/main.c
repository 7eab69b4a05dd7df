/* peerscope CLI entry point (placeholder while the commands are written). */
#include <stdio.h>

#include "peerscope/peerscope.h"

int main(void) {
  printf("peerscope %s\n", ps_version());
  return 0;
}
