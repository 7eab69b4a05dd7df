#include "worker/arglist.h"

#include <string.h>

#include "core/internal.h"

void ps__arglist_add(ps__arglist *list, const char *item) {
  if (list->failed) return;
  size_t need = list->len + strlen(item) + 2;
  if (need > list->cap) {
    size_t cap = list->cap ? list->cap : 64;
    while (cap < need)
      cap *= 2;
    char *grown = ps__realloc(list->text, cap);
    if (!grown) {
      list->failed = true;
      return;
    }
    list->text = grown;
    list->cap = cap;
  }
  if (list->len) list->text[list->len++] = ',';
  memcpy(list->text + list->len, item, strlen(item) + 1);
  list->len += strlen(item);
}

char *ps__arglist_take(ps__arglist *list) {
  char *text = list->failed ? NULL : list->text ? list->text : ps__calloc(1, 1);
  if (list->failed) ps__free(list->text);
  memset(list, 0, sizeof(*list));
  return text;
}

char *ps__arglist_gpus(const ps_report *report) {
  ps__arglist list = {0};
  for (int g = 0; g < report->gpu_count; g++) {
    const ps_gpu *gpu = &report->gpus[g];
    ps__arglist_add(&list, (gpu->valid & PS_GPU_PCI_BUS_ID) ? gpu->pci_bus_id : "none");
  }
  return ps__arglist_take(&list);
}
