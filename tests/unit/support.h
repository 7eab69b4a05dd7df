/* Helpers shared by the unit tests: cmocka, paths to the fake drivers and fixtures. */
#ifndef PS_UNIT_SUPPORT_H
#define PS_UNIT_SUPPORT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first. */
#include <cmocka.h>

#include "peerscope/peerscope.h"

/* Points the library at the fake drivers (variant "fake", "fake-legacy", ...) driven by
 * tests/fixtures/<fixture>; returns the fixture's full path (static buffer). */
const char *ps_test_use_fixture(const char *variant, const char *fixture);

/* $PEERSCOPE_FIXTURES/<name> in a static buffer. */
const char *ps_test_fixture_path(const char *name);

/* The fixture's machine through the fake drivers, probed and verified (cache bypassed); the
 * test frees it with ps_report_free. Fails the test on an error. */
ps_report *ps_test_verified_machine(const char *fixture);

/* A new scratch directory $TMPDIR/ps-<tag>-XXXXXX written into root (PATH_MAX bytes);
 * false if it cannot be made. ps_test_remove_tree deletes it with all it holds. */
bool ps_test_scratch_dir(const char *tag, char *root);
int ps_test_remove_tree(const char *root);

/* Environment variable or fail the test. */
const char *ps_test_env(const char *name);

/* The public model functions return library memory; these copy the model into the test's
 * struct (zeroed on failure) and free it, so tests compare plain values. */
/* Llama-3.1-8B- and 70B-Instruct as their config.json files give them, with their exact
 * weight totals (tests/fixtures/models/README.md cites them). */
ps_model ps_test_llama8b(void);
ps_model ps_test_llama70b(void);
ps_status ps_test_model_load(ps_ctx *ctx, const char *dir, ps_model *m);
ps_status ps_test_model_synthetic(ps_ctx *ctx, double params_b, const char *dtype, double size_gb,
                                  ps_model *m);
ps_status ps_test_model_resolve(ps_ctx *ctx, const char *dir_or_id,
                                const ps_model_resolve_opts *opts, ps_model *m,
                                ps_model_source **source);

/* The item called `name` among a plan's n args or env, or NULL. */
const ps_plan_item *ps_test_plan_item(const ps_plan_item *items, int n, const char *name);

#endif
