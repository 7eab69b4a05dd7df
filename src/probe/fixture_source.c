/* Choosing a described machine: a fixture file or the bundled example, and the fake drivers
 * that play it. The choice is returned to the caller, who hands it on in the options: the
 * library sets no environment variable (the caller's environment is not ours to change). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "fixture/fixture.h"

/* Reads the fixture through once, so that a typo is reported with its line and column before
 * any driver is loaded (the fake driver would only print it on stderr). */
static ps_status check_fixture(ps_ctx *ctx, const char *path) {
  char err[PS_ERRBUF_LEN];
  ps_fixture *f = ps__fixture_load(path, err, sizeof(err));
  if (!f) return ps__fail(ctx, PS_ERR_BAD_INPUT, "%s", err);
  ps__fixture_free(f);
  return PS_OK;
}

static ps_status example_path(ps_ctx *ctx, char *out, size_t len) {
  char dir[PATH_MAX], why[PS_ERRBUF_LEN];
  if (ps_bundled_path(ctx, PS_BUNDLED_FIXTURES, dir, sizeof(dir)) != PS_OK) {
    ps__strlcpy(why, ps_ctx_error(ctx), sizeof(why));
    return ps__fail(ctx, PS_ERR_NOT_FOUND, "the bundled example is missing: %s", why);
  }
  if (snprintf(out, len, "%s/%s", dir, PS_EXAMPLE_FIXTURE) >= (int)len)
    return ps__fail(ctx, PS_ERR_NOT_FOUND, "the bundled example's path is too long: %s", dir);
  return PS_OK;
}

ps_status ps_fixture_select(ps_ctx *ctx, const char *fixture, const char *driver_dir,
                            ps_fixture_source **out) {
  if (!out) return ps__fail(ctx, PS_ERR_INVALID_ARG, "ps_fixture_select: NULL argument");
  *out = NULL;
  ps_fixture_source *src = ps__calloc(1, sizeof(*src));
  if (!src) return ps__fail(ctx, PS_ERR_NO_MEMORY, "out of memory");
  ps_status st = PS_OK;
  src->example = !fixture;
  if (fixture && strlen(fixture) >= sizeof(src->fixture))
    st = ps__fail(ctx, PS_ERR_INVALID_ARG, "fixture path too long: %.64s...", fixture);
  else if (fixture)
    ps__strlcpy(src->fixture, fixture, sizeof(src->fixture));
  else
    st = example_path(ctx, src->fixture, sizeof(src->fixture));
  if (st == PS_OK) st = check_fixture(ctx, src->fixture);
  if (st == PS_OK && driver_dir && *driver_dir) {
    if (strlen(driver_dir) >= sizeof(src->driver_dir))
      st = ps__fail(ctx, PS_ERR_INVALID_ARG, "driver directory too long: %.64s...", driver_dir);
    else
      ps__strlcpy(src->driver_dir, driver_dir, sizeof(src->driver_dir));
  } else if (st == PS_OK && ps_bundled_path(ctx, PS_BUNDLED_FAKE_DRIVERS, src->driver_dir,
                                            sizeof(src->driver_dir)) != PS_OK) {
    char why[PS_ERRBUF_LEN];
    ps__strlcpy(why, ps_ctx_error(ctx), sizeof(why));
    st = ps__fail(ctx, PS_ERR_NOT_FOUND, "fake drivers missing: %s", why);
  }
  if (st != PS_OK) {
    ps__free(src);
    return st;
  }
  *out = src;
  return PS_OK;
}

void ps_fixture_source_free(ps_fixture_source *source) { ps__free(source); }
