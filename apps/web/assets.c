/* The page, embedded with .incbin (web/index.html, its scripts, app.css): no files to install, no
 * CDN, nothing fetched from the internet. Every file is static: no token, no session, nothing
 * another local user could read by fetching it (the session is an HttpOnly cookie). */
#include <string.h>

#include "web/web_internal.h"

#define PS_EMBED(sym, file)                                                                        \
  __asm__(".pushsection .rodata\n.balign 16\n.hidden " #sym "\n.globl " #sym "\n" #sym             \
          ":\n.incbin \"" file "\"\n.byte 0\n.hidden " #sym "_end\n.globl " #sym "_end\n" #sym     \
          "_end:\n.popsection\n");                                                                 \
  extern const char sym[], sym##_end[]

PS_EMBED(ps__asset_index, PS_WEB_ASSET_DIR "/index.html");
PS_EMBED(ps__asset_base_js, PS_WEB_ASSET_DIR "/base.js");
PS_EMBED(ps__asset_machine_js, PS_WEB_ASSET_DIR "/machine.js");
PS_EMBED(ps__asset_bandwidth_js, PS_WEB_ASSET_DIR "/bandwidth.js");
PS_EMBED(ps__asset_plan_js, PS_WEB_ASSET_DIR "/plan.js");
PS_EMBED(ps__asset_run_js, PS_WEB_ASSET_DIR "/run.js");
PS_EMBED(ps__asset_app_js, PS_WEB_ASSET_DIR "/app.js");
PS_EMBED(ps__asset_css, PS_WEB_ASSET_DIR "/app.css");

/* Every file the page loads besides index.html, by its path. */
static const struct {
  const char *path, *type, *text;
} assets[] = {
    {"/base.js", "text/javascript; charset=utf-8", ps__asset_base_js},
    {"/machine.js", "text/javascript; charset=utf-8", ps__asset_machine_js},
    {"/bandwidth.js", "text/javascript; charset=utf-8", ps__asset_bandwidth_js},
    {"/plan.js", "text/javascript; charset=utf-8", ps__asset_plan_js},
    {"/run.js", "text/javascript; charset=utf-8", ps__asset_run_js},
    {"/app.js", "text/javascript; charset=utf-8", ps__asset_app_js},
    {"/app.css", "text/css; charset=utf-8", ps__asset_css},
};

bool ps__web_asset(ps_web *w, const char *path, ps_web_response *resp) {
  (void)w;
  if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
    ps__web_text(resp, 200, "text/html; charset=utf-8", ps__asset_index);
    return true;
  }
  for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
    if (strcmp(path, assets[i].path) != 0) continue;
    ps__web_text(resp, 200, assets[i].type, assets[i].text);
    resp->asset = true;
    return true;
  }
  return false;
}
