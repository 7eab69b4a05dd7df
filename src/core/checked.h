/* Arithmetic on sizes taken from input files (weights, experts, shards, KV bytes, budgets):
 * every sum and product of two figures goes through these, so a hostile or corrupt file can
 * make a figure absurd (and refused) but never wrap it into a small one. */
#ifndef PS_CORE_CHECKED_H
#define PS_CORE_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

/* *out = a + b (a * b); false, with *out = UINT64_MAX, when it does not fit in 64 bits. */
static inline bool ps__add_u64_checked(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_add_overflow(a, b, out)) {
    *out = UINT64_MAX;
    return false;
  }
  return true;
}

static inline bool ps__mul_u64_checked(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_mul_overflow(a, b, out)) {
    *out = UINT64_MAX;
    return false;
  }
  return true;
}

/* Saturating forms, for figures compared against a budget afterwards: UINT64_MAX never fits
 * anything, so a saturated sum reads as "far too large", never as "small". */
static inline uint64_t ps__add_u64_sat(uint64_t a, uint64_t b) {
  uint64_t r;
  ps__add_u64_checked(a, b, &r);
  return r;
}

static inline uint64_t ps__mul_u64_sat(uint64_t a, uint64_t b) {
  uint64_t r;
  ps__mul_u64_checked(a, b, &r);
  return r;
}

/* More weight bytes than this is not a model: 1 PiB, about 250 times the largest open models
 * (2 trillion parameters in 16 bits are 4 TB). Files claiming more are refused as bad input. */
#define PS_MAX_WEIGHT_BYTES (1ull << 50)
/* Elements (parameters) likewise: 2^50, 500 times 2 trillion. */
#define PS_MAX_PARAMS (1ull << 50)

#endif
