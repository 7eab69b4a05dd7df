/* ps_best_group and ps_recommend_tp on hand-built reports, and against a brute-force search
 * on random small reports. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "support.h"

#include "report/report_internal.h"

/* ---- building reports ------------------------------------------------------------------ */

static void set_link(ps_report *r, int a, int b, ps_link_class link, int nvlinks) {
  ps_pair *p = &r->pairs[ps__pair_slot(r->gpu_count, a, b)];
  p->valid |= PS_PAIR_LINK | PS_PAIR_NVLINK;
  p->link = link;
  p->nvlink_count = link == PS_LINK_NVLINK ? nvlinks : 0;
}

/* Both directions a <-> b: link, claims, verdict. */
static void set_edge(ps_report *r, int a, int b, ps_link_class link, int nvlinks, ps_claim claim,
                     ps_verdict verdict) {
  for (int d = 0; d < 2; d++) {
    int from = d ? b : a, to = d ? a : b;
    set_link(r, from, to, link, nvlinks);
    ps_pair *p = &r->pairs[ps__pair_slot(r->gpu_count, from, to)];
    p->valid |= PS_PAIR_CLAIMS;
    p->claim_read = p->claim_write = claim;
    p->verdict = verdict;
  }
}

static ps_report *machine(int n, bool verified) {
  ps_report *r = ps__report_new(n);
  assert_non_null(r);
  r->verified = verified;
  for (int g = 0; g < n; g++) {
    r->gpus[g].valid |= PS_GPU_NAME | PS_GPU_NUMA_NODE;
    snprintf(r->gpus[g].name, sizeof(r->gpus[g].name), "NVIDIA H100 80GB HBM3");
    r->gpus[g].numa_node = 0;
    r->gpus[g].local_verdict = verified ? PS_VERDICT_OK : PS_VERDICT_NOT_RUN;
  }
  return r;
}

/* Every pair: NVLink x18 through NVSwitch, claimed and verified ok. */
static ps_report *hgx8(void) {
  ps_report *r = machine(8, true);
  for (int a = 0; a < 8; a++)
    for (int b = a + 1; b < 8; b++)
      set_edge(r, a, b, PS_LINK_NVLINK, 18, PS_CLAIM_OK, PS_VERDICT_OK);
  return r;
}

/* Two NVLink islands {0..3} and {4..7} (NV4 / `nv_b` links), joined over SYS, which the driver
 * reports as CNS and CUDA refuses. */
static ps_report *two_islands(bool verified, int nv_b) {
  ps_report *r = machine(8, verified);
  for (int a = 0; a < 8; a++) {
    r->gpus[a].numa_node = a / 4;
    for (int b = a + 1; b < 8; b++) {
      if (a / 4 == b / 4)
        set_edge(r, a, b, PS_LINK_NVLINK, a < 4 ? 4 : nv_b, PS_CLAIM_OK,
                 verified ? PS_VERDICT_OK : PS_VERDICT_NOT_RUN);
      else
        set_edge(r, a, b, PS_LINK_SYS, 0, PS_CLAIM_CNS,
                 verified ? PS_VERDICT_UNSUPPORTED : PS_VERDICT_NOT_RUN);
    }
  }
  return r;
}

static void expect_group(const ps_report *r, const int *allowed, int allowed_count, int size,
                         const int *want, int want_count) {
  int got[PS_REPORT_MAX_GPUS];
  int n = ps_best_group(r, allowed, allowed_count, size, got, PS_REPORT_MAX_GPUS);
  char gs[512] = "", ws[512] = "";
  for (int i = 0; i < n && i < 64; i++)
    snprintf(gs + strlen(gs), sizeof(gs) - strlen(gs), "%s%d", i ? "," : "", got[i]);
  for (int i = 0; i < want_count; i++)
    snprintf(ws + strlen(ws), sizeof(ws) - strlen(ws), "%s%d", i ? "," : "", want[i]);
  if (n != want_count || (want_count && memcmp(got, want, (size_t)want_count * sizeof(int))))
    fail_msg("size %d: got {%s}, want {%s}", size, gs, ws);
}

#define GROUP(r, size, ...)                                                                        \
  do {                                                                                             \
    static const int want_[] = {__VA_ARGS__};                                                      \
    expect_group(r, NULL, 0, size, want_, (int)(sizeof(want_) / sizeof(int)));                     \
  } while (0)

/* ---- hand-built machines ------------------------------------------------------------------ */

static void test_full_nvlink_8(void **state) {
  (void)state;
  ps_report *r = hgx8();
  GROUP(r, 0, 0, 1, 2, 3, 4, 5, 6, 7);
  GROUP(r, 8, 0, 1, 2, 3, 4, 5, 6, 7);
  GROUP(r, 4, 0, 1, 2, 3);
  GROUP(r, 1, 0);
  expect_group(r, NULL, 0, 9, NULL, 0);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 8);
  /* Selections: out-of-range and repeated indexes are ignored. */
  static const int allowed[] = {5, 3, 99, -1, 1, 3};
  static const int want[] = {1, 3, 5};
  expect_group(r, allowed, 6, 0, want, 3);
  assert_int_equal(ps_recommend_tp(r, allowed, 6), 2);
  assert_int_equal(ps_recommend_tp(r, allowed, 0), 0);
  /* A short output buffer still gets the group's size back. */
  int out[2] = {-1, -1};
  assert_int_equal(ps_best_group(r, NULL, 0, 0, out, 2), 8);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  assert_int_equal(ps_best_group(r, NULL, 0, 0, NULL, 0), 8);
  ps_report_free(r);
}

static void test_two_islands(void **state) {
  (void)state;
  for (int verified = 0; verified < 2; verified++) {
    ps_report *r = two_islands(verified, 4);
    GROUP(r, 0, 0, 1, 2, 3); /* equal islands: the lower indexes */
    GROUP(r, 4, 0, 1, 2, 3);
    GROUP(r, 2, 0, 1);
    expect_group(r, NULL, 0, 5, NULL, 0);
    assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
    static const int upper[] = {2, 3, 4, 5, 6};
    static const int want[] = {4, 5, 6};
    expect_group(r, upper, 5, 0, want, 3);
    assert_int_equal(ps_recommend_tp(r, upper, 5), 2);
    ps_report_free(r);

    /* Wider links win over lower indexes. */
    r = two_islands(verified, 12);
    GROUP(r, 0, 4, 5, 6, 7);
    GROUP(r, 2, 4, 5);
    ps_report_free(r);
  }
}

static void test_corrupt_pair_breaks_clique(void **state) {
  (void)state;
  ps_report *r = machine(4, true);
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      set_edge(r, a, b, PS_LINK_NVLINK, 12, PS_CLAIM_OK, PS_VERDICT_OK);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  /* One direction corrupt: the driver still claims OK, but the pair is out. */
  r->pairs[ps__pair_slot(4, 2, 1)].verdict = PS_VERDICT_CORRUPT;
  GROUP(r, 0, 0, 1, 3);
  GROUP(r, 3, 0, 1, 3);
  GROUP(r, 2, 0, 1);
  expect_group(r, NULL, 0, 4, NULL, 0);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 2);
  /* A pair never tested in a verified report is not usable either. */
  r->pairs[ps__pair_slot(4, 0, 3)].verdict = PS_VERDICT_NOT_RUN;
  GROUP(r, 0, 0, 1);
  ps_report_free(r);
}

static void test_local_copy_failure_excludes_gpu(void **state) {
  (void)state;
  ps_report *r = hgx8();
  r->gpus[0].local_verdict = PS_VERDICT_CORRUPT;
  r->gpus[5].local_verdict = PS_VERDICT_HANG;
  GROUP(r, 0, 1, 2, 3, 4, 6, 7);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  GROUP(r, 4, 1, 2, 3, 4);
  r->gpus[1].local_verdict = PS_VERDICT_ERROR;
  r->gpus[2].local_verdict = PS_VERDICT_SKIPPED; /* not a failure of the GPU */
  GROUP(r, 0, 2, 3, 4, 6, 7);
  ps_report_free(r);
}

static void test_claims_when_not_verified(void **state) {
  (void)state;
  ps_report *r = machine(4, false);
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      set_edge(r, a, b, PS_LINK_PIX, 0, PS_CLAIM_OK, PS_VERDICT_NOT_RUN);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  /* Read OK but write not supported in one direction. */
  r->pairs[ps__pair_slot(4, 3, 0)].claim_write = PS_CLAIM_NS;
  GROUP(r, 0, 0, 1, 2);
  /* Claims unknown (topo -m without -p2p): PIX means probably P2P. */
  r->pairs[ps__pair_slot(4, 1, 2)].valid &= ~(uint32_t)PS_PAIR_CLAIMS;
  assert_true(ps_pair_assumed(r, ps_report_pair(r, 1, 2)));
  assert_false(ps_pair_assumed(r, ps_report_pair(r, 2, 1)));
  GROUP(r, 0, 0, 1, 2);
  for (int i = 0; i < r->pair_count; i++)
    r->pairs[i].valid &= ~(uint32_t)PS_PAIR_CLAIMS;
  GROUP(r, 0, 0, 1, 2, 3);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  /* ... NVLink means P2P; PHB and beyond are unknown, so not counted on. */
  set_edge(r, 0, 1, PS_LINK_PHB, 0, PS_CLAIM_OK, PS_VERDICT_NOT_RUN);
  set_edge(r, 2, 3, PS_LINK_NVLINK, 4, PS_CLAIM_OK, PS_VERDICT_NOT_RUN);
  for (int i = 0; i < r->pair_count; i++)
    r->pairs[i].valid &= ~(uint32_t)PS_PAIR_CLAIMS;
  assert_false(ps_pair_usable(r, ps_report_pair(r, 0, 1)));
  assert_true(ps_pair_usable(r, ps_report_pair(r, 2, 3)));
  GROUP(r, 2, 2, 3);
  /* Verified: verdicts count, not claims. */
  r->verified = true;
  GROUP(r, 0, 0);
  ps_report_free(r);
}

static void test_tie_breaks(void **state) {
  (void)state;
  /* 0-1 and 2-3 PIX, the rest SYS, all verified ok. */
  ps_report *r = machine(4, true);
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      set_edge(r, a, b, a / 2 == b / 2 ? PS_LINK_PIX : PS_LINK_SYS, 0, PS_CLAIM_OK, PS_VERDICT_OK);
  GROUP(r, 2, 0, 1);
  GROUP(r, 3, 0, 1, 2); /* the worst link is SYS in every triple: lowest indexes */
  GROUP(r, 0, 0, 1, 2, 3);
  /* Same links: one NUMA node beats two. */
  r->gpus[1].numa_node = 1;
  GROUP(r, 2, 2, 3);
  /* Unknown NUMA nodes are not "the same node". */
  r->gpus[1].numa_node = 0;
  r->gpus[0].valid &= ~(uint32_t)PS_GPU_NUMA_NODE;
  r->gpus[1].valid &= ~(uint32_t)PS_GPU_NUMA_NODE;
  GROUP(r, 2, 2, 3);
  /* Same NUMA: identical GPUs beat mixed ones. */
  r->gpus[0].valid |= PS_GPU_NUMA_NODE;
  r->gpus[1].valid |= PS_GPU_NUMA_NODE;
  snprintf(r->gpus[0].name, sizeof(r->gpus[0].name), "NVIDIA H100 PCIe");
  GROUP(r, 2, 2, 3);
  /* The link class comes before NUMA and names: PIX 0-1 beats SYS 2-3. */
  set_edge(r, 2, 3, PS_LINK_SYS, 0, PS_CLAIM_OK, PS_VERDICT_OK);
  GROUP(r, 2, 0, 1);
  /* Only the worst link counts: every triple has a SYS edge, so identical GPUs decide. */
  GROUP(r, 3, 1, 2, 3);
  /* An unknown link ranks below SYS: 0-1 is out, and among the SYS pairs the ones without
   * the odd GPU 0 win (one name), lowest first. */
  r->pairs[ps__pair_slot(4, 1, 0)].valid &= ~(uint32_t)PS_PAIR_LINK;
  GROUP(r, 2, 1, 2);
  ps_report_free(r);
}

static void test_nvlink_ranking(void **state) {
  (void)state;
  /* DGX-1-like: NVLink everywhere but with different widths; 0-1, 2-3 NV2, others NV1;
   * 4 and 5 reachable only over PXB. */
  ps_report *r = machine(6, true);
  for (int a = 0; a < 6; a++)
    for (int b = a + 1; b < 6; b++) {
      bool nv = a < 4 && b < 4;
      set_edge(r, a, b, nv ? PS_LINK_NVLINK : PS_LINK_PXB, (a / 2 == b / 2) ? 2 : 1, PS_CLAIM_OK,
               PS_VERDICT_OK);
    }
  GROUP(r, 2, 0, 1);
  GROUP(r, 4, 0, 1, 2, 3);
  GROUP(r, 5, 0, 1, 2, 3, 4);
  GROUP(r, 0, 0, 1, 2, 3, 4, 5);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  /* The thinnest edge decides, not the sum: 2-3 NV2 vs 0-1 NV2, both equal -> lowest. */
  set_link(r, 0, 1, PS_LINK_NVLINK, 1); /* one direction thinner */
  GROUP(r, 2, 2, 3);
  ps_report_free(r);
}

static void test_edge_cases(void **state) {
  (void)state;
  assert_int_equal(ps_best_group(NULL, NULL, 0, 0, NULL, 0), 0);
  assert_int_equal(ps_recommend_tp(NULL, NULL, 0), 0);
  ps_report *r = ps__report_new(0);
  assert_int_equal(ps_best_group(r, NULL, 0, 0, NULL, 0), 0);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 0);
  ps_report_free(r);
  r = machine(1, true);
  GROUP(r, 0, 0);
  GROUP(r, 1, 0);
  expect_group(r, NULL, 0, 2, NULL, 0);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 1);
  r->gpus[0].local_verdict = PS_VERDICT_CORRUPT;
  expect_group(r, NULL, 0, 0, NULL, 0);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 0);
  ps_report_free(r);
  /* 6 fully connected GPUs: TP is a power of two. */
  r = machine(6, true);
  for (int a = 0; a < 6; a++)
    for (int b = a + 1; b < 6; b++)
      set_edge(r, a, b, PS_LINK_PHB, 0, PS_CLAIM_OK, PS_VERDICT_OK);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 4);
  GROUP(r, 0, 0, 1, 2, 3, 4, 5);
  ps_report_free(r);
}

/* ---- random reports against brute force ---------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t below) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % below);
}

static ps_report *random_report(int n, int ok_percent) {
  static const ps_link_class links[] = {PS_LINK_NVLINK, PS_LINK_NVLINK,   PS_LINK_PIX,
                                        PS_LINK_PXB,    PS_LINK_PHB,      PS_LINK_NODE,
                                        PS_LINK_SYS,    PS_LINK_INTERNAL, PS_LINK_UNKNOWN};
  static const char *const names[] = {"A100", "H100", "L40S"};
  ps_report *r = ps__report_new(n);
  r->verified = rnd(4) != 0;
  for (int g = 0; g < n; g++) {
    ps_gpu *gpu = &r->gpus[g];
    if (rnd(5)) gpu->valid |= PS_GPU_NUMA_NODE;
    gpu->numa_node = (int)rnd(3);
    if (rnd(5)) gpu->valid |= PS_GPU_NAME;
    snprintf(gpu->name, sizeof(gpu->name), "%s", names[rnd(3)]);
    gpu->local_verdict = rnd(12) == 0 ? PS_VERDICT_CORRUPT : PS_VERDICT_OK;
  }
  /* Mostly symmetric links (as on real machines), sometimes not. */
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      ps_link_class link = links[rnd(9)];
      int count = 1 + (int)rnd(3) * 4;
      for (int d = 0; d < 2; d++) {
        ps_pair *p = &r->pairs[ps__pair_slot(n, d ? b : a, d ? a : b)];
        if (rnd(10) == 0) link = links[rnd(9)];
        if (rnd(10) == 0) count = 1 + (int)rnd(3) * 4;
        if (rnd(15)) p->valid |= PS_PAIR_LINK;
        if (rnd(10)) p->valid |= PS_PAIR_NVLINK;
        p->link = link;
        p->nvlink_count = link == PS_LINK_NVLINK ? count : 0;
        bool ok = (int)rnd(100) < ok_percent;
        p->verdict = ok ? PS_VERDICT_OK : (ps_verdict)(2 + rnd(5));
        if (rnd(12)) p->valid |= PS_PAIR_CLAIMS;
        p->claim_read = ok || rnd(2) ? PS_CLAIM_OK : PS_CLAIM_CNS;
        p->claim_write = ok || rnd(2) ? PS_CLAIM_OK : PS_CLAIM_NS;
      }
    }
  return r;
}

/* The documented order, computed the slow and obvious way. */
static int rank_of(const ps_pair *p) {
  if (!(p->valid & PS_PAIR_LINK)) return 7;
  switch (p->link) {
  case PS_LINK_NVLINK: return 0;
  case PS_LINK_INTERNAL: return 1;
  case PS_LINK_PIX: return 2;
  case PS_LINK_PXB: return 3;
  case PS_LINK_PHB: return 4;
  case PS_LINK_NODE: return 5;
  case PS_LINK_SYS: return 6;
  default: return 7;
  }
}

static bool usable_dir(const ps_report *r, const ps_pair *p) {
  if (r->verified) return p->verdict == PS_VERDICT_OK;
  if (!(p->valid & PS_PAIR_CLAIMS))
    return (p->valid & PS_PAIR_LINK) &&
           (p->link == PS_LINK_NVLINK || p->link == PS_LINK_PIX || p->link == PS_LINK_PXB);
  return (p->valid & PS_PAIR_CLAIMS) && p->claim_read == PS_CLAIM_OK &&
         p->claim_write == PS_CLAIM_OK;
}

typedef struct brute_score {
  int worst, neg_min_nv, numa, names;
} brute_score;

/* Score of the set `mask`, or false when it is not a usable group. */
static bool brute_eval(const ps_report *r, uint32_t mask, uint32_t allowed, brute_score *s) {
  int n = r->gpu_count, members[32], k = 0;
  for (int g = 0; g < n; g++)
    if (mask >> g & 1) {
      ps_verdict lv = r->gpus[g].local_verdict;
      if (!(allowed >> g & 1) || lv == PS_VERDICT_CORRUPT || lv == PS_VERDICT_ERROR ||
          lv == PS_VERDICT_HANG)
        return false;
      members[k++] = g;
    }
  memset(s, 0, sizeof(*s));
  s->worst = -1;
  int min_nv = 1 << 30;
  for (int i = 0; i < k; i++)
    for (int j = i + 1; j < k; j++) {
      const ps_pair *p = ps_report_pair(r, members[i], members[j]);
      const ps_pair *q = ps_report_pair(r, members[j], members[i]);
      if (!usable_dir(r, p) || !usable_dir(r, q)) return false;
      int rp = rank_of(p), rq = rank_of(q), e = rp > rq ? rp : rq;
      if (e > s->worst) s->worst = e;
      if (e == 0) {
        int cp = (p->valid & PS_PAIR_NVLINK) ? p->nvlink_count : 0;
        int cq = (q->valid & PS_PAIR_NVLINK) ? q->nvlink_count : 0;
        int c = cp < cq ? cp : cq;
        if (c < min_nv) min_nv = c;
      }
    }
  s->neg_min_nv = s->worst == 0 ? -min_nv : 0;
  for (int i = 0; i < k; i++) {
    const ps_gpu *a = &r->gpus[members[i]];
    bool seen_numa = false, seen_name = false;
    for (int j = 0; j < i; j++) {
      const ps_gpu *b = &r->gpus[members[j]];
      if ((a->valid & PS_GPU_NUMA_NODE) && (b->valid & PS_GPU_NUMA_NODE) &&
          a->numa_node == b->numa_node)
        seen_numa = true;
      if ((a->valid & PS_GPU_NAME) && (b->valid & PS_GPU_NAME) && strcmp(a->name, b->name) == 0)
        seen_name = true;
    }
    s->numa += !seen_numa;
    s->names += !seen_name;
  }
  return true;
}

static int brute_cmp(const brute_score *a, const brute_score *b) {
  const int x[] = {a->worst, a->neg_min_nv, a->numa, a->names};
  const int y[] = {b->worst, b->neg_min_nv, b->numa, b->names};
  for (int i = 0; i < 4; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/* Lexicographic order of the sorted member lists. */
static bool lex_less(uint32_t a, uint32_t b) {
  while (a && b) {
    int x = __builtin_ctz(a), y = __builtin_ctz(b);
    if (x != y) return x < y;
    a &= a - 1;
    b &= b - 1;
  }
  return false;
}

static uint32_t brute_best(const ps_report *r, uint32_t allowed, int size) {
  int n = r->gpu_count, largest = 0;
  for (uint32_t m = 1; m < (1u << n); m++) {
    brute_score s;
    if (__builtin_popcount(m) > largest && brute_eval(r, m, allowed, &s))
      largest = __builtin_popcount(m);
  }
  int k = size > 0 ? size : largest;
  uint32_t best = 0;
  brute_score best_s = {0, 0, 0, 0};
  for (uint32_t m = 1; m < (1u << n); m++) {
    brute_score s;
    if (__builtin_popcount(m) != k || !brute_eval(r, m, allowed, &s)) continue;
    int c = best ? brute_cmp(&s, &best_s) : -1;
    if (c < 0 || (c == 0 && lex_less(m, best))) {
      best = m;
      best_s = s;
    }
  }
  return best;
}

static void test_random_vs_brute_force(void **state) {
  (void)state;
  rng_state = 0x9e3779b97f4a7c15ull;
  int checked = 0;
  for (int iter = 0; iter < 400; iter++) {
    int n = 1 + (int)rnd(10);
    ps_report *r = random_report(n, 40 + (int)rnd(60));
    uint32_t allowed = (1u << n) - 1;
    int allowed_list[16], allowed_count = 0;
    bool restrict_ = rnd(4) == 0;
    if (restrict_) {
      allowed = 0;
      for (int g = 0; g < n; g++)
        if (rnd(3)) {
          allowed |= 1u << g;
          allowed_list[allowed_count++] = g;
        }
    }
    int largest = 0;
    for (int size = 0; size <= n + 1; size++) {
      uint32_t want = brute_best(r, allowed, size);
      int got[16];
      int k = ps_best_group(r, restrict_ ? allowed_list : NULL, allowed_count, size, got, 16);
      uint32_t got_mask = 0;
      for (int i = 0; i < k; i++) {
        if (i > 0 && got[i] <= got[i - 1]) fail_msg("iteration %d: group not ascending", iter);
        got_mask |= 1u << got[i];
      }
      if (got_mask != want)
        fail_msg("iteration %d (n %d, size %d, verified %d): got 0x%x, brute force 0x%x", iter, n,
                 size, r->verified, got_mask, want);
      if (size == 0) largest = k;
      checked++;
    }
    int tp = 1;
    while (tp * 2 <= largest)
      tp *= 2;
    assert_int_equal(ps_recommend_tp(r, restrict_ ? allowed_list : NULL, allowed_count),
                     largest ? tp : 0);
    ps_report_free(r);
  }
  assert_true(checked > 2000);
}

/* Largest clique size, by plain recursion (independent of the library's search). */
static int simple_max(const ps_report *r, const bool *adj, int n, int *cand, int count, int depth) {
  int best = depth;
  for (int i = 0; i < count; i++) {
    if (depth + (count - i) <= best) break;
    int next[64], m = 0;
    for (int j = i + 1; j < count; j++)
      if (adj[cand[i] * n + cand[j]]) next[m++] = cand[j];
    int got = simple_max(r, adj, n, next, m, depth + 1);
    if (got > best) best = got;
  }
  return best;
}

static void test_random_64(void **state) {
  (void)state;
  rng_state = 0x2545f4914f6cdd1dull;
  /* Densities the plain reference search proves in well under a second. */
  static const int densities[] = {50, 60, 70, 75, 80, 85, 88, 90, 92, 93};
  for (int iter = 0; iter < 10; iter++) {
    int n = 64;
    int ok_percent = densities[iter];
    ps_report *r = random_report(n, ok_percent);
    for (int g = 0; g < n; g++)
      r->gpus[g].local_verdict = PS_VERDICT_OK;
    bool adj[64 * 64];
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++)
        adj[a * n + b] = a != b && usable_dir(r, ps_report_pair(r, a, b)) &&
                         usable_dir(r, ps_report_pair(r, b, a));
    int all[64];
    for (int g = 0; g < n; g++)
      all[g] = g;
    int omega = simple_max(r, adj, n, all, n, 0);

    clock_t t0 = clock();
    int group[64];
    int k = ps_best_group(r, NULL, 0, 0, group, 64);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (k != omega) fail_msg("iteration %d: group of %d, largest clique %d", iter, k, omega);
    for (int i = 0; i < k; i++)
      for (int j = i + 1; j < k; j++)
        assert_true(adj[group[i] * n + group[j]]);
    int tp = 1;
    while (tp * 2 <= k)
      tp *= 2;
    assert_int_equal(ps_recommend_tp(r, NULL, 0), tp);
    /* A smaller size on the same graph. */
    int half = k / 2 > 0 ? k / 2 : 1;
    assert_int_equal(ps_best_group(r, NULL, 0, half, group, 64), half);
    if (secs > 10) fail_msg("iteration %d: %.1f s for 64 GPUs", iter, secs);
    ps_report_free(r);
  }
}

/* 64 GPUs as 8 NVLink islands of 8 joined over SYS (verified ok too): the best groups stay
 * inside islands; a corrupt pair in island 0 sends an 8-GPU request to island 1. */
static void test_islands_64(void **state) {
  (void)state;
  ps_report *r = machine(64, true);
  for (int a = 0; a < 64; a++) {
    r->gpus[a].numa_node = a / 32;
    for (int b = a + 1; b < 64; b++)
      set_edge(r, a, b, a / 8 == b / 8 ? PS_LINK_NVLINK : PS_LINK_SYS, 18, PS_CLAIM_OK,
               PS_VERDICT_OK);
  }
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 64);
  GROUP(r, 8, 0, 1, 2, 3, 4, 5, 6, 7);
  GROUP(r, 4, 0, 1, 2, 3);
  r->pairs[ps__pair_slot(64, 6, 3)].verdict = PS_VERDICT_CORRUPT;
  GROUP(r, 8, 8, 9, 10, 11, 12, 13, 14, 15);
  GROUP(r, 7, 0, 1, 2, 3, 4, 5, 7);
  /* Beyond one island the worst link is SYS whatever the choice; then one NUMA node. */
  GROUP(r, 9, 0, 1, 2, 3, 4, 5, 7, 8, 9);
  /* NUMA node 0 holds 32 GPUs but not 32 joined ones (3-6); node 1 does. */
  int group[64];
  assert_int_equal(ps_best_group(r, NULL, 0, 32, group, 64), 32);
  for (int i = 0; i < 32; i++)
    assert_int_equal(group[i], 32 + i);
  /* Without node 1's last GPU: two nodes, lowest indexes (0..5, 7, then 8..32). */
  static const int no63[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                             16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                             32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                             48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62};
  assert_int_equal(ps_best_group(r, no63, 63, 32, group, 64), 32);
  assert_int_equal(group[5], 5);
  assert_int_equal(group[6], 7);
  assert_int_equal(group[31], 32);
  assert_int_equal(ps_best_group(r, NULL, 0, 0, group, 64), 63);
  assert_int_equal(ps_recommend_tp(r, NULL, 0), 32);
  ps_report_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_nvlink_8),
      cmocka_unit_test(test_two_islands),
      cmocka_unit_test(test_corrupt_pair_breaks_clique),
      cmocka_unit_test(test_local_copy_failure_excludes_gpu),
      cmocka_unit_test(test_claims_when_not_verified),
      cmocka_unit_test(test_tie_breaks),
      cmocka_unit_test(test_nvlink_ranking),
      cmocka_unit_test(test_edge_cases),
      cmocka_unit_test(test_random_vs_brute_force),
      cmocka_unit_test(test_random_64),
      cmocka_unit_test(test_islands_64),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
