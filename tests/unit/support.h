/* Helpers shared by the unit tests: cmocka, paths to the fake drivers and fixtures. */
#ifndef PS_UNIT_SUPPORT_H
#define PS_UNIT_SUPPORT_H

#include <setjmp.h>
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

/* Environment variable or fail the test. */
const char *ps_test_env(const char *name);

#endif
