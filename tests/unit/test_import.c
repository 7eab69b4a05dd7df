/* Imports of topologies pasted from other machines: real `nvidia-smi topo -m` dumps from
 * public issues and docs (tests/fixtures/topo/README.md says where each comes from), -p2p
 * claims, --query-gpu CSV, set_gpu_memory, every malformed case's exact message, and JSON.
 *
 * `test_import --dump-json DIR` writes each real dump's imported report as JSON into DIR, for
 * tests/cli/test_import_schema.py (which checks them against docs/topology.schema.json). */
#include "support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerscope/peerscope.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
  text[size] = '\0';
  fclose(f);
  *len = (size_t)size;
  return text;
}

static const char *topo_path(const char *name) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s", ps_test_fixture_path("topo"));
  snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", name);
  return path;
}

static ps_report *import_ok(const char *name) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  ps_status st = ps_import_topology(ctx, topo_path(name), &r);
  if (st != PS_OK) fail_msg("%s: %s", name, ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

static ps_report *import_text_ok(const char *text, size_t len, const char *name) {
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  if (ps_import_topology_text(ctx, text, len, name, &r) != PS_OK)
    fail_msg("%s: %s", name, ps_ctx_error(ctx));
  ps_ctx_free(ctx);
  return r;
}

/* "NV12", "PHB", ... for from -> to. */
static const char *link_of(const ps_report *r, int from, int to) {
  static char buf[8][16];
  static int next;
  const ps_pair *p = ps_report_pair(r, from, to);
  assert_non_null(p);
  assert_true(p->valid & PS_PAIR_LINK);
  char *out = buf[next++ % 8];
  return ps_link_name(p->link, p->nvlink_count, out, 16);
}

static void assert_gpu(const ps_report *r, int g, const char *cpus, int numa) {
  const ps_gpu *gpu = &r->gpus[g];
  assert_int_equal(gpu->index, g);
  if (cpus) {
    assert_true(gpu->valid & PS_GPU_CPU_AFFINITY);
    assert_string_equal(gpu->cpu_affinity, cpus);
  } else {
    assert_false(gpu->valid & PS_GPU_CPU_AFFINITY);
  }
  if (numa >= 0) {
    assert_true(gpu->valid & PS_GPU_NUMA_NODE);
    assert_int_equal(gpu->numa_node, numa);
  } else {
    assert_false(gpu->valid & PS_GPU_NUMA_NODE);
  }
  /* Text imports know nothing else about a GPU. */
  assert_false(gpu->valid & (PS_GPU_NAME | PS_GPU_MEMORY_TOTAL | PS_GPU_PCI_BUS_ID | PS_GPU_UUID));
}

/* What every text import has in common. */
static void assert_imported(const ps_report *r, const char *name, int gpus) {
  char path[PATH_MAX], machine[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s", topo_path(name));
  snprintf(machine, sizeof(machine), "imported from %s", path);
  machine[sizeof(r->machine) - 1] = '\0';
  assert_int_equal(r->gpu_count, gpus);
  assert_int_equal(r->pair_count, gpus * (gpus - 1));
  assert_int_equal(r->source, PS_SOURCE_FILE);
  assert_string_equal(r->origin, path);
  assert_string_equal(r->machine, machine);
  assert_false(r->verified);
  for (int i = 0; i < r->pair_count; i++) {
    const ps_pair *p = &r->pairs[i];
    assert_int_equal(p->verdict, PS_VERDICT_NOT_RUN);
    assert_true(p->valid & PS_PAIR_LINK);
    assert_int_equal(!!(p->valid & PS_PAIR_NVLINK), p->link == PS_LINK_NVLINK);
    /* Symmetric: the same class and count both ways. */
    const ps_pair *back = ps_report_pair(r, p->to, p->from);
    assert_int_equal(back->link, p->link);
    assert_int_equal(back->nvlink_count, p->nvlink_count);
  }
}

static void assert_no_claims(const ps_report *r) {
  for (int i = 0; i < r->pair_count; i++)
    assert_false(r->pairs[i].valid & PS_PAIR_CLAIMS);
}

static void assert_claims(const ps_report *r, int from, int to, ps_claim read, ps_claim write,
                          ps_claim nvlink, ps_claim atomics) {
  const ps_pair *p = ps_report_pair(r, from, to);
  assert_true(p->valid & PS_PAIR_CLAIMS);
  assert_int_equal(p->claim_read, read);
  assert_int_equal(p->claim_write, write);
  assert_int_equal(p->claim_nvlink, nvlink);
  assert_int_equal(p->claim_atomics, atomics);
}

/* ---- the real dumps ----------------------------------------------------------------- */

static void test_tf_gdr_k40m_soc(void **state) {
  (void)state;
  /* Old nvidia-smi: SOC (now SYS), old legend wording, an mlx4_0 NIC, CPU Affinity only. */
  ps_report *r = import_ok("tf-gdr-4x-k40m-soc.txt");
  assert_imported(r, "tf-gdr-4x-k40m-soc.txt", 4);
  assert_string_equal(link_of(r, 0, 1), "PHB");
  assert_string_equal(link_of(r, 0, 2), "SYS");
  assert_string_equal(link_of(r, 1, 3), "SYS");
  assert_string_equal(link_of(r, 2, 3), "PHB");
  assert_gpu(r, 0, "0-5", -1);
  assert_gpu(r, 3, "6-11", -1);
  assert_no_claims(r);
  ps_report_free(r);
}

static void test_rtx4090_8_nics_no_legend(void **state) {
  (void)state;
  /* 8 GeForce cards on PCIe, two NICs (rows and columns), GPU NUMA ID, no legend. */
  ps_report *r = import_ok("go-gpuallocator-17-8x-rtx4090-nics.txt");
  assert_imported(r, "go-gpuallocator-17-8x-rtx4090-nics.txt", 8);
  for (int i = 0; i < r->pair_count; i++)
    assert_int_equal(r->pairs[i].link, PS_LINK_SYS);
  assert_gpu(r, 0, "0-55,112-167", 0);
  assert_gpu(r, 3, "0-55,112-167", 0);
  assert_gpu(r, 4, "56-111,168-223", 1);
  assert_gpu(r, 7, "56-111,168-223", 1);
  assert_no_claims(r);
  ps_report_free(r);
}

static void test_rtx5090_2_with_p2p_section(void **state) {
  (void)state;
  /* topo -m, then (after markdown) a "topo -p2p rw" matrix: GeForce says GPU not supported. */
  ps_report *r = import_ok("club3090-1229-2x-rtx5090-p2p.txt");
  assert_imported(r, "club3090-1229-2x-rtx5090-p2p.txt", 2);
  assert_string_equal(link_of(r, 0, 1), "PHB");
  assert_gpu(r, 0, "0-63", 0);
  assert_gpu(r, 1, "0-63", 0);
  assert_claims(r, 0, 1, PS_CLAIM_GNS, PS_CLAIM_GNS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  assert_claims(r, 1, 0, PS_CLAIM_GNS, PS_CLAIM_GNS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  ps_report_free(r);
}

static void test_four_phb_spaces(void **state) {
  (void)state;
  /* Spaces instead of tabs (copied from a terminal), header with leading spaces. */
  ps_report *r = import_ok("aikitoria-1-4gpu-phb.txt");
  assert_imported(r, "aikitoria-1-4gpu-phb.txt", 4);
  for (int i = 0; i < r->pair_count; i++)
    assert_int_equal(r->pairs[i].link, PS_LINK_PHB);
  for (int g = 0; g < 4; g++)
    assert_gpu(r, g, "0-15", 0);
  ps_report_free(r);
}

static void test_l4_two_numa_nodes(void **state) {
  (void)state;
  /* Two L4 on different sockets (NUMA 0 and 2), no legend. */
  ps_report *r = import_ok("cuda-samples-284-2x-l4.txt");
  assert_imported(r, "cuda-samples-284-2x-l4.txt", 2);
  assert_string_equal(link_of(r, 0, 1), "SYS");
  assert_gpu(r, 0, "0-7,32-39", 0);
  assert_gpu(r, 1, "16-23,48-55", 2);
  ps_report_free(r);
}

static void test_indented_wrapped_unannounced_p2p(void **state) {
  (void)state;
  /* Markdown-indented, the legend wrapped, and a -p2p matrix with no command before it:
   * read and write are assumed. */
  ps_report *r = import_ok("club3090-1125-2gpu-indented-p2p.txt");
  assert_imported(r, "club3090-1125-2gpu-indented-p2p.txt", 2);
  assert_string_equal(link_of(r, 1, 0), "NODE");
  assert_gpu(r, 1, "0-15", 0);
  assert_claims(r, 0, 1, PS_CLAIM_NS, PS_CLAIM_NS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  ps_report_free(r);
}

static void test_p4d_8_nvswitch(void **state) {
  (void)state;
  /* AWS p4d.24xlarge: 8 A100 on NVSwitch, NV12 everywhere. */
  ps_report *r = import_ok("training-on-eks-p4d-8x-a100.txt");
  assert_imported(r, "training-on-eks-p4d-8x-a100.txt", 8);
  for (int i = 0; i < r->pair_count; i++) {
    assert_int_equal(r->pairs[i].link, PS_LINK_NVLINK);
    assert_int_equal(r->pairs[i].nvlink_count, 12);
  }
  assert_string_equal(link_of(r, 0, 3), "NV12");
  assert_string_equal(link_of(r, 7, 0), "NV12");
  assert_gpu(r, 0, "0-23,48-71", 0);
  assert_gpu(r, 4, "24-47,72-95", 1);
  ps_report_free(r);
}

static void test_rtx6000ada_nic_legend(void **state) {
  (void)state;
  /* NIC rows and columns, a NIC Legend, a shell prompt before the header. */
  ps_report *r = import_ok("stelline-4x-rtx6000ada-nics.txt");
  assert_imported(r, "stelline-4x-rtx6000ada-nics.txt", 4);
  assert_string_equal(link_of(r, 0, 1), "NODE");
  assert_string_equal(link_of(r, 0, 2), "SYS");
  assert_string_equal(link_of(r, 1, 3), "SYS");
  assert_string_equal(link_of(r, 2, 3), "NODE");
  assert_gpu(r, 1, "0-31", 0);
  assert_gpu(r, 2, "32-63", 1);
  ps_report_free(r);
}

static void test_five_gpus_p2p_pcie_after_prompts(void **state) {
  (void)state;
  /* A failed "-p2p -p", then "-p2p p": the PCIe claim fills read and write. */
  ps_report *r = import_ok("aikitoria-13-5gpu-p2p-p.txt");
  assert_imported(r, "aikitoria-13-5gpu-p2p-p.txt", 5);
  assert_string_equal(link_of(r, 0, 4), "NODE");
  assert_string_equal(link_of(r, 3, 4), "PHB");
  assert_string_equal(link_of(r, 4, 3), "PHB");
  assert_gpu(r, 4, "0-63", 0);
  for (int i = 0; i < r->pair_count; i++)
    assert_claims(r, r->pairs[i].from, r->pairs[i].to, PS_CLAIM_OK, PS_CLAIM_OK, PS_CLAIM_UNKNOWN,
                  PS_CLAIM_UNKNOWN);
  ps_report_free(r);
}

static void test_a100_pcie_empty_cpu_affinity(void **state) {
  (void)state;
  /* Under Slurm nvidia-smi leaves CPU Affinity empty for GPUs near CPUs not allotted. */
  ps_report *r = import_ok("dask-cuda-1381-8x-a100-pcie-slurm.txt");
  assert_imported(r, "dask-cuda-1381-8x-a100-pcie-slurm.txt", 8);
  assert_string_equal(link_of(r, 0, 1), "NV12");
  assert_string_equal(link_of(r, 2, 3), "NV12");
  assert_string_equal(link_of(r, 6, 7), "NV12");
  assert_string_equal(link_of(r, 0, 2), "NODE");
  assert_string_equal(link_of(r, 5, 7), "NODE");
  assert_gpu(r, 0, "0-15,56-71", 0);
  assert_gpu(r, 3, "0-15,56-71", 0);
  assert_gpu(r, 4, NULL, 1);
  assert_gpu(r, 7, NULL, 1);
  ps_report_free(r);
}

/* ---- variants of real dumps ----------------------------------------------------------- */

static char *replace_first_line(const char *text, const char *prefix, const char *suffix,
                                size_t skip, size_t *len) {
  const char *nl = strchr(text, '\n');
  size_t first = (size_t)(nl - text);
  size_t n = strlen(prefix) + (first - skip) + strlen(suffix) + strlen(nl);
  char *out = malloc(n + 1);
  assert_non_null(out);
  snprintf(out, n + 1, "%s%.*s%s%s", prefix, (int)(first - skip), text + skip, suffix, nl);
  *len = n;
  return out;
}

static void assert_same_links(const ps_report *a, const ps_report *b) {
  assert_int_equal(a->gpu_count, b->gpu_count);
  for (int i = 0; i < a->pair_count; i++) {
    assert_int_equal(a->pairs[i].link, b->pairs[i].link);
    assert_int_equal(a->pairs[i].nvlink_count, b->pairs[i].nvlink_count);
  }
  for (int g = 0; g < a->gpu_count; g++) {
    assert_int_equal(a->gpus[g].valid, b->gpus[g].valid);
    assert_string_equal(a->gpus[g].cpu_affinity, b->gpus[g].cpu_affinity);
    assert_int_equal(a->gpus[g].numa_node, b->gpus[g].numa_node);
  }
}

static void test_ansi_crlf_no_leading_tab(void **state) {
  (void)state;
  size_t len, vlen;
  char *text = read_text(topo_path("training-on-eks-p4d-8x-a100.txt"), &len);
  ps_report *base = import_text_ok(text, len, "p4d");

  /* On a terminal nvidia-smi underlines the header with ANSI escapes. */
  char *ansi = replace_first_line(text, "\x1b[4m", "\x1b[0m", 0, &vlen);
  ps_report *r = import_text_ok(ansi, vlen, "ansi");
  assert_same_links(base, r);
  ps_report_free(r);

  /* The header without its leading tab. */
  char *bare = replace_first_line(text, "", "", 1, &vlen);
  r = import_text_ok(bare, vlen, "bare");
  assert_same_links(base, r);
  ps_report_free(r);

  /* Windows line ends, and a -mp command before it (-mp has the same shape). */
  char *crlf = malloc(2 * len + 32);
  size_t o = (size_t)sprintf(crlf, "C:\\> nvidia-smi topo -mp\r\n");
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n') crlf[o++] = '\r';
    crlf[o++] = text[i];
  }
  r = import_text_ok(crlf, o, "crlf");
  assert_same_links(base, r);
  ps_report_free(r);

  free(crlf);
  free(bare);
  free(ansi);
  ps_report_free(base);
  free(text);
}

static void test_nbsp_and_single_gpu(void **state) {
  (void)state;
  /* Copied from a web page: no-break spaces (U+00A0) between cells. */
  const char *nbsp = "\xC2\xA0\xC2\xA0GPU0\xC2\xA0GPU1\xC2\xA0"
                     "CPU Affinity\n"
                     "GPU0\xC2\xA0X\xC2\xA0NV4\xC2\xA0"
                     "0-7\n"
                     "GPU1\xC2\xA0NV4\xC2\xA0X\xC2\xA0"
                     "0-7\n";
  ps_report *r = import_text_ok(nbsp, strlen(nbsp), "nbsp");
  assert_int_equal(r->gpu_count, 2);
  assert_string_equal(link_of(r, 0, 1), "NV4");
  assert_gpu(r, 1, "0-7", -1);
  ps_report_free(r);

  const char *one = "\tGPU0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\nGPU0\t X \t0-15\t0\t\tN/A\n";
  r = import_text_ok(one, strlen(one), "one");
  assert_int_equal(r->gpu_count, 1);
  assert_int_equal(r->pair_count, 0);
  assert_gpu(r, 0, "0-15", 0);
  ps_report_free(r);

  /* NUMA Affinity as a range (NPS4) is not one node; GPU NUMA ID is then used. */
  const char *range = "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
                      "GPU0\t X \tPIX\t0-47\t0-3\t\t4\nGPU1\tPIX\t X \t0-47\t0-3\t\tN/A\n";
  r = import_text_ok(range, strlen(range), "range");
  assert_gpu(r, 0, "0-47", 4);
  assert_gpu(r, 1, "0-47", -1);
  assert_string_equal(link_of(r, 0, 1), "PIX");
  ps_report_free(r);
}

static void test_large_inputs(void **state) {
  (void)state;
  /* 1 MB: a dump followed by lots of unrelated paste, a 64-GPU matrix (the most one node may
   * have) and a 1024-GPU one, refused at its header. */
  size_t len;
  char *dump = read_text(topo_path("training-on-eks-p4d-8x-a100.txt"), &len);
  size_t cap = (1u << 20) + len + 64, o = 0;
  char *big = malloc(cap);
  memcpy(big, dump, len);
  o = len;
  while (o + 40 < cap)
    o += (size_t)sprintf(big + o, "  NV#  = Connection traversing NVLinks\n");
  ps_report *r = import_text_ok(big, o, "big");
  assert_int_equal(r->gpu_count, 8);
  ps_report_free(r);

  int n = 64;
  o = 0;
  for (int c = 0; c < n; c++)
    o += (size_t)sprintf(big + o, "\tGPU%d", c);
  o += (size_t)sprintf(big + o, "\tCPU Affinity\n");
  for (int row = 0; row < n && o + 8 * (size_t)n + 64 < cap; row++) {
    o += (size_t)sprintf(big + o, "GPU%d", row);
    for (int c = 0; c < n; c++)
      o += (size_t)sprintf(big + o, "\t%s", c == row ? " X " : (c / 8 == row / 8 ? "NV18" : "SYS"));
    o += (size_t)sprintf(big + o, "\t0-%d\n", row);
  }
  r = import_text_ok(big, o, "wide");
  assert_int_equal(r->gpu_count, n);
  assert_string_equal(link_of(r, 9, 10), "NV18");
  assert_string_equal(link_of(r, 7, 8), "SYS");
  assert_gpu(r, 63, "0-63", -1);
  ps_report_free(r);

  n = 1024;
  o = 0;
  for (int c = 0; c < n; c++)
    o += (size_t)sprintf(big + o, "\tGPU%d", c);
  o += (size_t)sprintf(big + o, "\tCPU Affinity\n");
  for (int row = 0; row < n && o + 8 * (size_t)n + 64 < cap; row++) {
    o += (size_t)sprintf(big + o, "GPU%d", row);
    for (int c = 0; c < n; c++)
      o += (size_t)sprintf(big + o, "\t%s", c == row ? "X" : "SYS");
    o += (size_t)sprintf(big + o, "\n");
  }
  ps_ctx *ctx = ps_ctx_new();
  assert_int_equal(ps_import_topology_text(ctx, big, o, "huge", &r), PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx),
                      "huge:1:376: more than 64 GPUs in one node (peerscope handles 64 per "
                      "node; give each node's topo -m as its own --topology)");
  assert_null(r);
  ps_ctx_free(ctx);
  free(big);
  free(dump);
}

/* ---- malformed input: the exact message ------------------------------------------------- */

static void assert_error(ps_status st, const ps_ctx *ctx, ps_status want, const char *path,
                         const char *rest) {
  char expected[PATH_MAX + 512];
  snprintf(expected, sizeof(expected), "%s:%s", path, rest);
  if (st != want)
    fail_msg("%s: status %s, expected %s (%s)", path, ps_status_name(st), ps_status_name(want),
             ps_ctx_error(ctx));
  assert_string_equal(ps_ctx_error(ctx), expected);
  assert_null(strchr(ps_ctx_error(ctx), '\n'));
}

static void test_bad_topologies(void **state) {
  (void)state;
  static const struct {
    const char *file, *message;
  } cases[] = {
      {"bad/row-short.txt", "4:40: row GPU2 has 7 link cells; the header names 8 devices"},
      {"bad/unknown-cell.txt",
       "7:21: unknown link 'NVL' (expected X, NV#, PIX, PXB, PHB, NODE, SYS or SOC)"},
      {"bad/missing-row.txt", "4:1: expected row GPU2, found 'GPU3'"},
      {"bad/missing-last-row.txt", "5:1: missing row GPU3 (the header names 4 GPUs)"},
      {"bad/asymmetric.txt",
       "4:6: GPU1-GPU0 is PIX but GPU0-GPU1 is PHB (a topology matrix is symmetric)"},
      {"bad/diagonal.txt", "3:17: GPU1 to itself must be X, found 'PHB'"},
      {"bad/x-off-diagonal.txt", "6:11: X (self) off the diagonal, in row GPU3 column GPU1"},
      {"bad/header-gpu-order.txt", "1:25: expected GPU2 in the header, found 'GPU3'"},
      {"bad/cpu-affinity.txt", "3:14: CPU Affinity '16-23,,48-55' is not a CPU list (expected "
                               "e.g. 0-15,32-47, or N/A)"},
      {"bad/numa-affinity.txt",
       "3:26: NUMA Affinity '2-' is not a NUMA node (expected e.g. 0, or N/A)"},
      {"bad/too-many-values.txt",
       "2:31: row GPU0 has 4 values after its links; the header names 3 affinity columns"},
      {"bad/no-matrix.txt", "1:1: no nvidia-smi topo -m matrix found (expected a header line "
                            "starting with GPU0, then one row per GPU)"},
      {"bad/two-matrices.txt", "5:1: a second topology matrix (import one machine per file)"},
      {"bad/p2p-unknown-status.txt",
       "7:9: unknown P2P status 'YES' (expected OK, CNS, GNS, TNS, NS, DR or U)"},
      {"bad/p2p-wrong-size.txt", "18:3: the -p2p matrix has 3 GPUs but the topology has 4"},
      {"bad/p2p-missing-row.txt", "8:1: missing row GPU1 of the -p2p matrix (it has 2 GPUs)"},
      {"bad/nic-row-short.txt", "9:59: row NIC2 has 7 link cells; the header names 8 devices"},
      {"bad/extra-gpu-row.txt", "6:1: row GPU4 is not in the header (it names 4 GPUs)"},
      {"bad/header-after-affinity.txt",
       "1:51: column 'Power' after the affinity columns (expected CPU Affinity, NUMA Affinity "
       "or GPU NUMA ID)"},
      /* A real paste whose header merged two cells ("NIC8NIC9"). */
      {"bad/vllm-13855-merged-cells.txt",
       "4:94: row GPU0 has 20 link cells; the header names 19 devices"},
  };
  ps_ctx *ctx = ps_ctx_new();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ps_report *r = (ps_report *)1;
    const char *path = topo_path(cases[i].file);
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    ps_status st = ps_import_topology(ctx, copy, &r);
    assert_null(r);
    assert_error(st, ctx, PS_ERR_BAD_INPUT, copy, cases[i].message);
  }
  ps_ctx_free(ctx);
}

static void test_bad_text_inputs(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  /* Unprintable bytes are escaped in the one-line message. */
  const char *esc = "\tGPU0\tGPU1\nGPU0\t X \tP\x01Q\\\nGPU1\tPIX\t X \n";
  assert_int_equal(ps_import_topology_text(ctx, esc, strlen(esc), "esc.txt", &r), PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "esc.txt:2:10: unknown link 'P\\x01Q\\x5C' (expected X, "
                                         "NV#, PIX, PXB, PHB, NODE, SYS or SOC)");
  static const char nul[] = "\tGPU0\tGPU1\nGPU0\t X \tNV\0\nGPU1\tNV1\t X \n";
  assert_int_equal(ps_import_topology_text(ctx, nul, sizeof(nul) - 1, "nul.txt", &r),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "nul.txt:2:10: unknown link 'NV\\x00' (expected X, NV#, "
                                         "PIX, PXB, PHB, NODE, SYS or SOC)");
  const char *gpu_after_nic = "\tGPU0\tNIC0\tGPU1\nGPU0\t X \tPIX\tPIX\n";
  assert_int_equal(ps_import_topology_text(ctx, gpu_after_nic, strlen(gpu_after_nic), "n.txt", &r),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "n.txt:1:12: GPU column 'GPU1' after the NIC columns");
  const char *twice = "\tGPU0\tCPU Affinity\tCPU Affinity\nGPU0\t X \t0\t1\n";
  assert_int_equal(ps_import_topology_text(ctx, twice, strlen(twice), "t.txt", &r),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "t.txt:1:20: column CPU Affinity appears twice");
  const char *nic_order = "\tGPU0\tNIC0\tNIC1\nGPU0\t X \tPIX\tSYS\nNIC1\tSYS\tPIX\t X \n";
  assert_int_equal(ps_import_topology_text(ctx, nic_order, strlen(nic_order), "o.txt", &r),
                   PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "o.txt:3:1: expected row NIC0, found 'NIC1'");
  assert_int_equal(ps_import_topology_text(ctx, "", 0, "empty.txt", &r), PS_ERR_BAD_INPUT);
  assert_int_equal(ps_import_topology_text(ctx, NULL, 0, NULL, &r), PS_ERR_BAD_INPUT);
  assert_string_equal(ps_ctx_error(ctx), "<input>:1:1: no nvidia-smi topo -m matrix found "
                                         "(expected a header line starting with GPU0, then one "
                                         "row per GPU)");
  assert_int_equal(ps_import_topology_text(ctx, NULL, 3, "x", &r), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_import_topology_text(ctx, "x", 1, "x", NULL), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_import_topology(ctx, NULL, &r), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_import_topology(ctx, "/nonexistent/topo.txt", &r), PS_ERR_IO);
  assert_string_equal(ps_ctx_error(ctx), "/nonexistent/topo.txt: No such file or directory");
  assert_null(r);
  ps_ctx_free(ctx);
}

static void test_size_cap(void **state) {
  (void)state;
  char dir[] = "/tmp/ps-import-XXXXXX", path[PATH_MAX];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/huge.txt", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fseek(f, (16L << 20) + 1, SEEK_SET), 0); /* sparse: one byte past 16 MiB */
  fputc('\n', f);
  fclose(f);
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = NULL;
  assert_int_equal(ps_import_topology(ctx, path, &r), PS_ERR_BAD_INPUT);
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof(expected),
           "%s: larger than 16 MiB; not an nvidia-smi topology or a peerscope report", path);
  assert_string_equal(ps_ctx_error(ctx), expected);
  assert_int_equal(ps_import_topology_text(ctx, "", (16u << 20) + 1, "t", &r), PS_ERR_BAD_INPUT);
  ps_ctx_free(ctx);
  unlink(path);
  rmdir(dir);
}

/* ---- -p2p claims files --------------------------------------------------------------- */

static void test_p2p_claims(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = import_ok("cuda-samples-284-2x-l4.txt");
  assert_int_equal(ps_import_p2p_claims(ctx, r, topo_path("p2p/club3090-1124-2x-rtx5090.txt")),
                   PS_OK);
  assert_claims(r, 0, 1, PS_CLAIM_GNS, PS_CLAIM_GNS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  ps_report_free(r);

  /* One section per capability: r, w, n and (as --p2pstatus) a. */
  r = import_ok("aikitoria-1-4gpu-phb.txt");
  assert_int_equal(ps_import_p2p_claims(ctx, r, topo_path("p2p/4gpu-rwna.txt")), PS_OK);
  assert_claims(r, 0, 1, PS_CLAIM_OK, PS_CLAIM_OK, PS_CLAIM_NS, PS_CLAIM_TNS);
  assert_claims(r, 0, 3, PS_CLAIM_CNS, PS_CLAIM_NS, PS_CLAIM_NS, PS_CLAIM_TNS);
  assert_claims(r, 2, 3, PS_CLAIM_OK, PS_CLAIM_OK, PS_CLAIM_NS, PS_CLAIM_U);
  assert_claims(r, 3, 2, PS_CLAIM_OK, PS_CLAIM_OK, PS_CLAIM_NS, PS_CLAIM_DISABLED);
  ps_report_free(r);

  /* -p2p p fills read and write only where they are unknown. */
  r = import_ok("aikitoria-1-4gpu-phb.txt");
  assert_int_equal(ps_import_p2p_claims(ctx, r, topo_path("p2p/4gpu-read-then-pcie.txt")), PS_OK);
  assert_claims(r, 0, 1, PS_CLAIM_OK, PS_CLAIM_OK, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  assert_claims(r, 0, 2, PS_CLAIM_OK, PS_CLAIM_GNS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);
  assert_claims(r, 0, 3, PS_CLAIM_CNS, PS_CLAIM_GNS, PS_CLAIM_UNKNOWN, PS_CLAIM_UNKNOWN);

  /* A whole topology file also works: its topology matrix is skipped, its -p2p used. A size
   * mismatch changes nothing (all or nothing). */
  ps_report *before = import_ok("aikitoria-1-4gpu-phb.txt");
  assert_int_equal(ps_import_p2p_claims(ctx, before, topo_path("p2p/4gpu-read-then-pcie.txt")),
                   PS_OK);
  const char *path = topo_path("bad/p2p-wrong-size.txt");
  char copy[PATH_MAX];
  snprintf(copy, sizeof(copy), "%s", path);
  assert_error(ps_import_p2p_claims(ctx, r, copy), ctx, PS_ERR_BAD_INPUT, copy,
               "18:3: the -p2p matrix has 3 GPUs but the topology has 4");
  assert_memory_equal(r->pairs, before->pairs, sizeof(ps_pair) * (size_t)r->pair_count);
  ps_report_free(before);

  snprintf(copy, sizeof(copy), "%s", topo_path("p2p/no-matrix.txt"));
  assert_error(ps_import_p2p_claims(ctx, r, copy), ctx, PS_ERR_BAD_INPUT, copy,
               "1:1: no nvidia-smi topo -p2p matrix found (expected a header line starting "
               "with GPU0, then rows like 'GPU0 X OK')");
  snprintf(copy, sizeof(copy), "%s", topo_path("p2p/club3090-1124-2x-rtx5090.txt"));
  assert_error(ps_import_p2p_claims(ctx, r, copy), ctx, PS_ERR_BAD_INPUT, copy,
               "1:3: the -p2p matrix has 2 GPUs but the topology has 4");
  assert_int_equal(ps_import_p2p_claims(ctx, NULL, copy), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_import_p2p_claims(ctx, r, "/nonexistent/p2p.txt"), PS_ERR_IO);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

/* ---- --query-gpu CSV ----------------------------------------------------------------- */

static void test_gpu_info(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = import_ok("training-on-eks-p4d-8x-a100.txt");
  assert_int_equal(ps_import_gpu_info(ctx, r, topo_path("gpu-info/p4d-8x-a100.csv")), PS_OK);
  for (int g = 0; g < 8; g++) {
    const ps_gpu *gpu = &r->gpus[g];
    assert_true(gpu->valid & PS_GPU_NAME);
    assert_true(gpu->valid & PS_GPU_MEMORY_TOTAL);
    assert_true(gpu->valid & PS_GPU_PCI_BUS_ID);
    assert_false(gpu->valid & PS_GPU_UUID);
    assert_string_equal(gpu->name, "NVIDIA A100-SXM4-40GB");
    assert_int_equal(gpu->memory_total_bytes, 40960ull << 20);
    assert_true(gpu->valid & PS_GPU_CPU_AFFINITY); /* kept from the topology */
  }
  assert_string_equal(r->gpus[0].pci_bus_id, "00000000:10:1C.0");
  assert_string_equal(r->gpus[7].pci_bus_id, "00000000:A0:1D.0");
  ps_report_free(r);

  r = import_ok("cuda-samples-284-2x-l4.txt");
  assert_int_equal(ps_import_gpu_info(ctx, r, topo_path("gpu-info/l4-noheader.csv")), PS_OK);
  assert_string_equal(r->gpus[1].name, "NVIDIA L4");
  assert_int_equal(r->gpus[1].memory_total_bytes, 23034ull << 20);
  assert_string_equal(r->gpus[1].pci_bus_id, "00000000:B8:00.0");
  ps_report_free(r);

  /* Any column order with a header, quotes, nounits, uuid, [N/A], the command line. */
  r = import_ok("cuda-samples-284-2x-l4.txt");
  assert_int_equal(ps_import_gpu_info(ctx, r, topo_path("gpu-info/reordered-quoted.csv")), PS_OK);
  assert_string_equal(r->gpus[1].name, "NVIDIA GeForce RTX 4090");
  assert_string_equal(r->gpus[1].pci_bus_id, "00000000:01:00.0");
  assert_string_equal(r->gpus[1].uuid, "GPU-3a1f0c2e-5b7d-4e21-9c44-0f1e2d3c4b5a");
  assert_int_equal(r->gpus[1].memory_total_bytes, 24564ull << 20);
  assert_string_equal(r->gpus[0].name, "NVIDIA RTX A6000, \"blower\"");
  assert_false(r->gpus[0].valid & PS_GPU_MEMORY_TOTAL);
  assert_true(r->gpus[0].valid & PS_GPU_UUID);

  static const struct {
    const char *file, *message;
  } bad[] = {
      {"gpu-info/bad-bus-id.csv",
       "2:26: '0000:38:00' is not a PCI bus id (expected e.g. 00000000:18:00.0)"},
      {"gpu-info/bad-index.csv", "3:1: GPU index 2 is not in the topology (it has 2 GPUs)"},
      {"gpu-info/duplicate.csv", "2:1: GPU 0 listed twice (first on line 1)"},
      {"gpu-info/bad-memory.csv",
       "2:15: memory.total '23 GB' is not a size (expected e.g. '81559 MiB', or [N/A])"},
      {"gpu-info/short-row.csv", "1:1: 3 fields; expected 4 (index, name, memory.total, "
                                 "pci.bus_id)"},
      {"p2p/no-matrix.txt", "2:1: 1 fields; expected 4 (index, name, memory.total, pci.bus_id)"},
  };
  ps_gpu saved[2];
  memcpy(saved, r->gpus, sizeof(saved));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", topo_path(bad[i].file));
    assert_error(ps_import_gpu_info(ctx, r, copy), ctx, PS_ERR_BAD_INPUT, copy, bad[i].message);
    assert_memory_equal(r->gpus, saved, sizeof(saved)); /* all or nothing */
  }
  assert_int_equal(ps_import_gpu_info(ctx, NULL, "x"), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_import_gpu_info(ctx, r, "/nonexistent/gpus.csv"), PS_ERR_IO);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

static void test_set_gpu_memory(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = import_ok("aikitoria-1-4gpu-phb.txt");
  double one = 24;
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, &one, 1), PS_OK);
  for (int g = 0; g < 4; g++) {
    assert_true(r->gpus[g].valid & PS_GPU_MEMORY_TOTAL);
    assert_int_equal(r->gpus[g].memory_total_bytes, 24ull << 30);
  }
  double each[] = {24, 24, 48, 79.5};
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, each, 4), PS_OK);
  assert_int_equal(r->gpus[2].memory_total_bytes, 48ull << 30);
  assert_int_equal(r->gpus[3].memory_total_bytes, (uint64_t)(79.5 * 1073741824.0));

  assert_int_equal(ps_report_set_gpu_memory(ctx, r, each, 3), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx),
                      "3 memory sizes for 4 GPUs: give one for all GPUs, or one per GPU");
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, each, 0), PS_ERR_INVALID_ARG);
  double bad[] = {24, 0, 24, 24};
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, bad, 4), PS_ERR_INVALID_ARG);
  assert_string_equal(ps_ctx_error(ctx),
                      "GPU memory size 0 GiB (one of the per-GPU sizes) is not a size (expected a "
                      "number > 0)");
  assert_int_equal(r->gpus[0].memory_total_bytes, 24ull << 30); /* unchanged */
  double nan = 0.0 / 0.0, huge = 1e12;
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, &nan, 1), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, &huge, 1), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, NULL, 1), PS_ERR_INVALID_ARG);
  assert_int_equal(ps_report_set_gpu_memory(ctx, NULL, &one, 1), PS_ERR_INVALID_ARG);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

/* ---- JSON ------------------------------------------------------------------------- */

static void test_json_round_trip_and_detection(void **state) {
  (void)state;
  ps_ctx *ctx = ps_ctx_new();
  ps_report *r = import_ok("club3090-1229-2x-rtx5090-p2p.txt");
  double gib = 31.5;
  assert_int_equal(ps_report_set_gpu_memory(ctx, r, &gib, 1), PS_OK);
  char *json = NULL;
  assert_int_equal(ps_report_to_json(ctx, r, &json), PS_OK);

  /* The JSON reads back to the same report... */
  ps_report *back = NULL;
  assert_int_equal(ps_report_parse_json(ctx, json, strlen(json), "back.json", &back), PS_OK);
  assert_same_links(r, back);
  assert_int_equal(back->source, PS_SOURCE_FILE);
  assert_string_equal(back->origin, r->origin);
  assert_string_equal(back->machine, r->machine);
  assert_int_equal(back->pairs[0].claim_read, PS_CLAIM_GNS);
  assert_int_equal(back->gpus[1].memory_total_bytes, r->gpus[1].memory_total_bytes);
  ps_report_free(back);

  /* ...and the importer detects JSON (leading blanks allowed), from text and from a file. */
  size_t n = strlen(json) + 8;
  char *padded = malloc(n + 1);
  snprintf(padded, n + 1, " \n\t\r\n%s", json);
  back = import_text_ok(padded, strlen(padded), "padded.json");
  assert_same_links(r, back);
  char *again = NULL;
  assert_int_equal(ps_report_to_json(ctx, back, &again), PS_OK);
  assert_string_equal(again, json); /* kept as the document has it, origin included */
  ps_free(again);
  ps_report_free(back);

  char dir[] = "/tmp/ps-import-XXXXXX", path[PATH_MAX];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/report.json", dir);
  FILE *f = fopen(path, "wb");
  fputs(json, f);
  fclose(f);
  assert_int_equal(ps_import_topology(ctx, path, &back), PS_OK);
  assert_same_links(r, back);
  ps_report_free(back);

  /* A broken JSON document fails with the JSON reader's located message. */
  f = fopen(path, "wb");
  fputs("{\"schema\": ", f);
  fclose(f);
  assert_int_equal(ps_import_topology(ctx, path, &back), PS_ERR_BAD_INPUT);
  assert_non_null(strstr(ps_ctx_error(ctx), "report.json:1:"));
  unlink(path);
  rmdir(dir);
  free(padded);
  ps_free(json);
  ps_report_free(r);
  ps_ctx_free(ctx);
}

/* ---- --dump-json mode for the schema test ------------------------------------------------ */

static const char *const real_dumps[] = {
    "tf-gdr-4x-k40m-soc.txt",           "go-gpuallocator-17-8x-rtx4090-nics.txt",
    "club3090-1229-2x-rtx5090-p2p.txt", "aikitoria-1-4gpu-phb.txt",
    "cuda-samples-284-2x-l4.txt",       "club3090-1125-2gpu-indented-p2p.txt",
    "training-on-eks-p4d-8x-a100.txt",  "stelline-4x-rtx6000ada-nics.txt",
    "aikitoria-13-5gpu-p2p-p.txt",      "dask-cuda-1381-8x-a100-pcie-slurm.txt",
};

static int dump_json(const char *dir) {
  ps_ctx *ctx = ps_ctx_new();
  int failures = 0;
  for (size_t i = 0; i < sizeof(real_dumps) / sizeof(real_dumps[0]); i++) {
    ps_report *r = NULL;
    char *json = NULL, path[PATH_MAX];
    if (ps_import_topology(ctx, topo_path(real_dumps[i]), &r) != PS_OK ||
        (strstr(real_dumps[i], "p4d") &&
         ps_import_gpu_info(ctx, r, topo_path("gpu-info/p4d-8x-a100.csv")) != PS_OK) ||
        ps_report_to_json(ctx, r, &json) != PS_OK) {
      fprintf(stderr, "%s: %s\n", real_dumps[i], ps_ctx_error(ctx));
      failures++;
    } else {
      snprintf(path, sizeof(path), "%s/%s.json", dir, real_dumps[i]);
      FILE *f = fopen(path, "wb");
      if (!f || fputs(json, f) < 0) failures++;
      if (f) fclose(f);
    }
    ps_free(json);
    ps_report_free(r);
  }
  ps_ctx_free(ctx);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--dump-json") == 0) return dump_json(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tf_gdr_k40m_soc),
      cmocka_unit_test(test_rtx4090_8_nics_no_legend),
      cmocka_unit_test(test_rtx5090_2_with_p2p_section),
      cmocka_unit_test(test_four_phb_spaces),
      cmocka_unit_test(test_l4_two_numa_nodes),
      cmocka_unit_test(test_indented_wrapped_unannounced_p2p),
      cmocka_unit_test(test_p4d_8_nvswitch),
      cmocka_unit_test(test_rtx6000ada_nic_legend),
      cmocka_unit_test(test_five_gpus_p2p_pcie_after_prompts),
      cmocka_unit_test(test_a100_pcie_empty_cpu_affinity),
      cmocka_unit_test(test_ansi_crlf_no_leading_tab),
      cmocka_unit_test(test_nbsp_and_single_gpu),
      cmocka_unit_test(test_large_inputs),
      cmocka_unit_test(test_bad_topologies),
      cmocka_unit_test(test_bad_text_inputs),
      cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_p2p_claims),
      cmocka_unit_test(test_gpu_info),
      cmocka_unit_test(test_set_gpu_memory),
      cmocka_unit_test(test_json_round_trip_and_detection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
