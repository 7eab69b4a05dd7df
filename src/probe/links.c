/* Per-pair link facts from NVML: PCIe common ancestor, NVLink counts (direct or through
 * NVSwitch) and the driver's P2P claims. nvidia-smi topo -m derives its matrix the same way. */
#include <string.h>

#include "core/busid.h"
#include "core/internal.h"
#include "probe/probe_internal.h"

/* What one GPU's NVLinks end at. */
typedef struct nvlink_ends {
  int to_gpu[PS_PROBE_MAX_NVLINK_PEERS]; /* links ending directly at each GPU */
  int to_switch;                         /* links ending at NVSwitches */
  int version;                           /* NVML version number of the first active link */
} nvlink_ends;

static ps_link_class level_to_class(nvmlGpuTopologyLevel_t level) {
  switch (level) {
  case NVML_TOPOLOGY_INTERNAL: return PS_LINK_INTERNAL;
  case NVML_TOPOLOGY_SINGLE: return PS_LINK_PIX;
  case NVML_TOPOLOGY_MULTIPLE: return PS_LINK_PXB;
  case NVML_TOPOLOGY_HOSTBRIDGE: return PS_LINK_PHB;
  case NVML_TOPOLOGY_NODE: return PS_LINK_NODE;
  case NVML_TOPOLOGY_SYSTEM: return PS_LINK_SYS;
  }
  return PS_LINK_UNKNOWN;
}

static ps_claim status_to_claim(nvmlGpuP2PStatus_t status) {
  switch (status) {
  case NVML_P2P_STATUS_OK: return PS_CLAIM_OK;
  case NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED: return PS_CLAIM_CNS;
  case NVML_P2P_STATUS_GPU_NOT_SUPPORTED: return PS_CLAIM_GNS;
  case NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED: return PS_CLAIM_TNS;
  case NVML_P2P_STATUS_DISABLED_BY_REGKEY: return PS_CLAIM_DISABLED;
  case NVML_P2P_STATUS_NOT_SUPPORTED: return PS_CLAIM_NS;
  case NVML_P2P_STATUS_UNKNOWN: return PS_CLAIM_U;
  }
  return PS_CLAIM_UNKNOWN;
}

static void read_nvlinks(const ps__nvml *nvml, const ps_report *report, nvmlDevice_t dev,
                         nvlink_ends *ends) {
  memset(ends, 0, sizeof(*ends));
  if (!dev || !nvml->DeviceGetNvLinkState || !nvml->DeviceGetNvLinkRemotePciInfo) return;
  for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; link++) {
    nvmlEnableState_t state;
    nvmlReturn_t rc = nvml->DeviceGetNvLinkState(dev, link, &state);
    if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_INVALID_ARGUMENT) break;
    if (rc != NVML_SUCCESS || state != NVML_FEATURE_ENABLED) continue;
    if (!ends->version && nvml->DeviceGetNvLinkVersion) {
      unsigned version;
      if (nvml->DeviceGetNvLinkVersion(dev, link, &version) == NVML_SUCCESS)
        ends->version = (int)version;
    }
    nvmlIntNvLinkDeviceType_t type = NVML_NVLINK_DEVICE_TYPE_GPU;
    if (nvml->DeviceGetNvLinkRemoteDeviceType &&
        nvml->DeviceGetNvLinkRemoteDeviceType(dev, link, &type) == NVML_SUCCESS &&
        type == NVML_NVLINK_DEVICE_TYPE_SWITCH) {
      ends->to_switch++;
      continue;
    }
    nvmlPciInfo_t remote;
    memset(&remote, 0, sizeof(remote));
    if (nvml->DeviceGetNvLinkRemotePciInfo(dev, link, &remote) != NVML_SUCCESS) continue;
    remote.busIdLegacy[sizeof(remote.busIdLegacy) - 1] = '\0'; /* v1 fills only these 16 */
    remote.busId[sizeof(remote.busId) - 1] = '\0';
    int peer = -1;
    for (int g = 0; g < report->gpu_count && g < PS_PROBE_MAX_NVLINK_PEERS; g++)
      if ((report->gpus[g].valid & PS_GPU_PCI_BUS_ID) &&
          (ps__busid_equal(remote.busId, report->gpus[g].pci_bus_id) ||
           ps__busid_equal(remote.busIdLegacy, report->gpus[g].pci_bus_id)))
        peer = g;
    /* Without the remote-type query (old NVML), a link to no known GPU is a switch. */
    if (peer >= 0)
      ends->to_gpu[peer]++;
    else if (!nvml->DeviceGetNvLinkRemoteDeviceType)
      ends->to_switch++;
  }
}

static void read_claims(const ps__nvml *nvml, nvmlDevice_t a, nvmlDevice_t b, ps_pair *pair) {
  if (!nvml->DeviceGetP2PStatus || !a || !b) return;
  static const nvmlGpuP2PCapsIndex_t caps[] = {NVML_P2P_CAPS_INDEX_READ, NVML_P2P_CAPS_INDEX_WRITE,
                                               NVML_P2P_CAPS_INDEX_NVLINK,
                                               NVML_P2P_CAPS_INDEX_ATOMICS};
  ps_claim *out[] = {&pair->claim_read, &pair->claim_write, &pair->claim_nvlink,
                     &pair->claim_atomics};
  bool any = false;
  for (size_t i = 0; i < PS_ARRAY_LEN(caps); i++) {
    nvmlGpuP2PStatus_t status;
    if (nvml->DeviceGetP2PStatus(a, b, caps[i], &status) == NVML_SUCCESS) {
      *out[i] = status_to_claim(status);
      any = true;
    }
  }
  if (any) pair->valid |= PS_PAIR_CLAIMS;
}

void ps__probe_links(const ps__nvml *nvml, ps_report *report, const nvmlDevice_t *handles) {
  int n = report->gpu_count;
  nvlink_ends *ends = ps__calloc((size_t)(n ? n : 1), sizeof(*ends));
  if (!ends) return; /* links stay unknown; the report says so */
  for (int g = 0; g < n; g++)
    read_nvlinks(nvml, report, handles[g], &ends[g]);

  for (int i = 0; i < report->pair_count; i++) {
    ps_pair *pair = &report->pairs[i];
    nvmlDevice_t a = handles[pair->from], b = handles[pair->to];
    read_claims(nvml, a, b, pair);

    nvmlGpuTopologyLevel_t level;
    if (a && b && nvml->DeviceGetTopologyCommonAncestor &&
        nvml->DeviceGetTopologyCommonAncestor(a, b, &level) == NVML_SUCCESS) {
      pair->link = level_to_class(level);
      pair->valid |= PS_PAIR_LINK;
    }
    if (!nvml->DeviceGetNvLinkState) continue;
    const nvlink_ends *from = &ends[pair->from], *to = &ends[pair->to];
    int direct = pair->to < PS_PROBE_MAX_NVLINK_PEERS ? from->to_gpu[pair->to] : 0;
    /* Through NVSwitch every switch-attached GPU reaches every other over all its links
     * (nvidia-smi prints NV18 on HGX H100); NVML's NVLink P2P claim confirms the path. */
    bool switched = from->to_switch > 0 && to->to_switch > 0 &&
                    (!(pair->valid & PS_PAIR_CLAIMS) || pair->claim_nvlink == PS_CLAIM_OK);
    pair->nvlink_count = direct + (switched ? from->to_switch : 0);
    pair->nvswitch = switched;
    pair->nvlink_version = from->version;
    pair->valid |= PS_PAIR_NVLINK;
    if (pair->nvlink_count > 0) {
      pair->link = PS_LINK_NVLINK;
      pair->valid |= PS_PAIR_LINK;
    }
  }
  ps__free(ends);
}
