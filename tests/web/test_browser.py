#!/usr/bin/env python3
"""The dashboard in a real browser: `peerscope web` on fixtures with the fake vLLM, driven by
Selenium in headless Chromium. The page loads with no console error; the P2P matrix has a
cell per pair whose class matches the report; the plan form shows a plan and marks the
chosen GPUs; an uploaded `nvidia-smi topo -m` replaces the matrix; the benchmark shows its
heatmaps; the Run tab launches the fake vLLM, streams its log and stops it; screenshots of
every tab (1280x800) and of the Machine tab on a phone (390x844) are saved for a person to
look at. Run by scripts/test-web.sh (not by ctest: it needs Chromium and Selenium).

Environment: PEERSCOPE_CLI (the peerscope binary), PEERSCOPE_SOURCE_DIR (the repository),
PEERSCOPE_WEB_ARTIFACTS (where screenshots go; default <cli's build dir>/web-artifacts),
CHROMIUM / CHROMEDRIVER (default /usr/bin/chromium, /usr/bin/chromedriver)."""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

SOURCE = os.environ.get("PEERSCOPE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("PEERSCOPE_CLI") or os.path.join(SOURCE, "build", "bin", "peerscope")
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
FAKE_VLLM = os.path.join(SOURCE, "tests", "fake", "vllm")
ARTIFACTS = os.environ.get("PEERSCOPE_WEB_ARTIFACTS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(CLI))), "web-artifacts")
MODEL_70B = os.path.join(FIXTURES, "models", "Llama-3.1-70B-Instruct")
MODEL_8B = os.path.join(FIXTURES, "models", "Llama-3.1-8B-Instruct")
TOPO_TEXT_5GPU = os.path.join(FIXTURES, "topo", "aikitoria-13-5gpu-p2p-p.txt")
MARKER = "PEERSCOPE_TEST_MARKER=web-browser-%d-%d" % (os.getpid(), int(time.time()))

results = {"passed": 0, "failed": 0}
TMP = tempfile.mkdtemp(prefix="peerscope-web-browser-")
console = []  # every browser log entry of the run


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, str(detail)[-2000:]), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, fixture, env_extra=None):
        self.port = free_port()
        env = dict(os.environ)
        for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "FAKE_VLLM_MODE", "NCCL_DEBUG"):
            env.pop(key, None)
        env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
        key, value = MARKER.split("=")
        env[key] = value
        env["FAKE_VLLM_MODE"] = "ok"
        env.update(env_extra or {})
        self.proc = subprocess.Popen(
            [CLI, "web", "--port", str(self.port), "--fixture", fixture, "--vllm", FAKE_VLLM],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.base = "http://127.0.0.1:%d/" % self.port
        self.url = None  # the start-up URL, with the token
        self.token = None
        self.up = self._wait()

    def _read(self):
        for line in iter(self.proc.stdout.readline, ""):
            self.lines.put(line)
        self.lines.put(None)

    def _wait(self, timeout=20):
        deadline = time.monotonic() + timeout
        announced = False
        while time.monotonic() < deadline and not announced:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            announced = line.startswith("peerscope web: http://")
            if announced:
                self.url = line.split()[2]
                self.token = self.url.split("?token=")[-1]
        while time.monotonic() < deadline:  # answered (the line may come before the bind)
            try:
                self.api("/api/v1/job")
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def api(self, path):
        req = urllib.request.Request(self.base.rstrip("/") + path,
                                     headers={"X-Peerscope-Token": self.token or ""})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def vllm_left():
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if MARKER.encode() not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv[0].endswith(b"/peerscope") and any(b"vllm" in a for a in argv):
            left.append(pid)
    return left


def wait(driver, condition, timeout=20):
    """True once condition(driver) is truthy; False after timeout (never raises)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition(driver):
                return True
        except WebDriverException:
            pass
        time.sleep(0.1)
    return False


def drain_console(driver):
    try:
        console.extend(driver.get_log("browser"))
    except WebDriverException as exc:
        console.append({"level": "SEVERE", "message": "cannot read the console: %s" % exc})


def severe(entries):
    return [e["message"] for e in entries if e.get("level") == "SEVERE"]


def cells(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#matrix td.cell")


def selfs(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#matrix td.self")


def expected_class(pair):
    """The class the page must give a pair (docs/web.md: verified, failed, unsupported,
    claimed): what a real transfer showed, else what the driver claims."""
    v = pair.get("verdict")
    if v == "ok":
        return "verified"
    if v in ("corrupt", "error", "hang"):
        return "failed"
    if v in ("unsupported", "skipped"):
        return "unsupported"
    claims = pair.get("claims") or {}
    return "claimed" if claims.get("read") == "OK" and claims.get("write") == "OK" else \
        "unsupported"


def check_matrix(driver, server, name):
    report = server.api("/api/v1/topology")
    n = len(report["gpus"])
    ok = wait(driver, lambda d: len(cells(d)) == n * (n - 1) and len(selfs(d)) == n)
    check("%s: matrix has %d x %d cells" % (name, n, n), ok,
          "%d cells, %d self" % (len(cells(driver)), len(selfs(driver))))
    classes = ("verified", "failed", "unsupported", "claimed")
    wrong = []
    for td in cells(driver):
        src, dst = int(td.get_attribute("data-from")), int(td.get_attribute("data-to"))
        pair = next(p for p in report["pairs"] if p["from"] == src and p["to"] == dst)
        have = [c for c in classes if c in td.get_attribute("class").split()]
        if have != [expected_class(pair)]:
            wrong.append("%d->%d %s, want %s" % (src, dst, have, expected_class(pair)))
    check("%s: every cell's class matches its verdict" % name, not wrong and cells(driver),
          wrong)
    return report


def click_tab(driver, tab):
    driver.find_element(By.ID, "tab-" + tab).click()
    return wait(driver, lambda d: d.find_element(By.ID, "panel-" + tab).is_displayed(), 5)


def shot(driver, name):
    path = os.path.join(ARTIFACTS, name + ".png")
    time.sleep(0.3)  # transitions
    ok = driver.save_screenshot(path)
    check("screenshot %s" % name, ok and os.path.getsize(path) > 5000, path)


def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1280,800",
                "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--user-data-dir=" + tempfile.mkdtemp(dir=TMP)):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    # The viewport itself is 1280x800 (the window's frame would take some of it).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1,
                            "mobile": False})
    return driver


def test_faulty_machine(driver):
    """fault-corrupt.topo: a corrupt pair shows as failed; then an upload replaces it."""
    s = Server(os.path.join(FIXTURES, "fault-corrupt.topo"))
    check("fault-corrupt server up", s.up)
    try:
        driver.get(s.url)
        check_matrix(driver, s, "fault-corrupt")
        failed = driver.find_elements(By.CSS_SELECTOR, "#matrix td.cell.failed")
        check("fault-corrupt: the corrupt pairs 1<->2 are failed",
              sorted((int(t.get_attribute("data-from")), int(t.get_attribute("data-to")))
                     for t in failed) == [(1, 2), (2, 1)], [t.get_attribute("title")
                                                             for t in failed])
        drain_console(driver)
        check("fault-corrupt: no console error", not severe(console), severe(console))
        if failed:
            failed[0].click()
            check("clicking a failed cell explains it",
                  wait(driver, lambda d: "corrupt" in d.find_element(By.ID, "cell-detail")
                       .text.lower(), 5), driver.find_element(By.ID, "cell-detail").text)
        shot(driver, "machine-fault-corrupt-1280x800")
        # Upload nvidia-smi topo -m text of a 5-GPU machine: the matrix becomes 5 x 5.
        before = len(cells(driver))
        driver.find_element(By.ID, "topology-file").send_keys(TOPO_TEXT_5GPU)
        driver.find_element(By.ID, "upload-btn").click()
        ok = wait(driver, lambda d: len(cells(d)) == 20 and len(selfs(d)) == 5, 15)
        check("upload topo -m: the matrix is replaced (%d -> 20 cells)" % before, ok,
              "%d cells; upload-error: %s" % (len(cells(driver)),
                                              driver.find_element(By.ID, "upload-error").text))
        check("upload: the server has the 5 GPUs", len(s.api("/api/v1/topology")["gpus"]) == 5)
        check("upload: the page's error box stays hidden",
              not driver.find_element(By.ID, "upload-error").is_displayed(),
              driver.find_element(By.ID, "upload-error").text)
        check("upload: verify is disabled for an imported topology",
              not driver.find_element(By.ID, "verify-btn").is_enabled())
        check_matrix(driver, s, "uploaded topo -m")
        shot(driver, "machine-uploaded-5gpu-1280x800")
    finally:
        drain_console(driver)
        check("fault-corrupt server: exit 0 on SIGTERM", s.stop() == 0)


def test_example_machine(driver):
    s = Server(os.path.join(FIXTURES, "example-4x-a100.topo"))
    check("example server up", s.up)
    try:
        driver.get(s.url)
        check_matrix(driver, s, "example-4x-a100")
        check("example: every pair verified",
              len(driver.find_elements(By.CSS_SELECTOR, "#matrix td.cell.verified")) == 12)
        check("example: 4 GPU cards", len(driver.find_elements(By.CSS_SELECTOR,
                                                               "#gpu-list .gpu")) == 4)
        check("example: logged in by the URL (no token box)",
              not driver.find_element(By.ID, "token-box").is_displayed())
        check("example: the token left the address bar", "token" not in driver.current_url and
              driver.current_url == s.base, driver.current_url)
        check("example: the token is nowhere in the page", s.token not in driver.page_source and
              s.token not in (driver.execute_script("return document.cookie") or ""))
        cookie = next((c for c in driver.get_cookies()
                       if c["name"] == "peerscope-%d" % s.port), {})
        check("example: the session cookie is HttpOnly, SameSite=Strict",
              cookie.get("httpOnly") is True and cookie.get("sameSite") == "Strict" and
              cookie.get("value") and cookie.get("value") != s.token, cookie)
        drain_console(driver)
        check("page load: no console error", not severe(console), severe(console))
        shot(driver, "machine-1280x800")

        # Bandwidth: run the quick benchmark, see the heatmaps.
        click_tab(driver, "bandwidth")
        driver.find_element(By.ID, "bench-btn").click()
        ok = wait(driver, lambda d: d.find_element(By.ID, "bench-body").is_displayed() and
                  d.execute_script("var i = document.getElementById('bench-svg');"
                                   "return i.complete && i.naturalWidth > 0;"), 90)
        check("bench: heatmaps shown", ok, s.api("/api/v1/job"))
        check("bench: SIMULATED banner (fake drivers)",
              driver.find_element(By.ID, "bench-simulated").is_displayed())
        check("bench: a results table", len(driver.find_elements(
            By.CSS_SELECTOR, "#bench-table tr")) > 1)
        shot(driver, "bandwidth-1280x800")

        # Plan: 70B on 4 A100s is tp 4; the chosen GPUs are marked.
        click_tab(driver, "plan")
        field = driver.find_element(By.ID, "model_dir")
        field.clear()
        field.send_keys(MODEL_70B)
        driver.find_element(By.ID, "plan-btn").click()
        ok = wait(driver, lambda d: d.find_element(By.ID, "plan-result").is_displayed() and
                  "vllm serve" in d.find_element(By.ID, "plan-shell").text, 15)
        check("plan: the result is shown", ok, driver.find_element(By.ID, "plan-error").text)
        shell = driver.find_element(By.ID, "plan-shell").text
        check("plan: tp 4 in the command", "--tensor-parallel-size 4" in shell, shell)
        check("plan: 4 chosen GPUs", wait(driver, lambda d: len(d.find_elements(
            By.CSS_SELECTOR, ".gpu.chosen")) == 4, 5),
            len(driver.find_elements(By.CSS_SELECTOR, ".gpu.chosen")))
        check("plan: memory bars", len(driver.find_elements(By.CSS_SELECTOR,
                                                            "#memory-bars *")) > 0)
        shot(driver, "plan-1280x800")

        # Run: launch the fake vLLM, its log streams in, then stop it.
        click_tab(driver, "run")
        port = free_port()
        driver.find_element(By.ID, "launch-model").send_keys(MODEL_8B)
        driver.find_element(By.ID, "launch-port").send_keys(str(port))
        driver.find_element(By.ID, "launch-btn").click()
        log = lambda d: d.find_element(By.ID, "launch-log").text  # noqa: E731
        state = lambda d: d.find_element(By.ID, "launch-state").text.lower()  # noqa: E731
        ok = wait(driver, lambda d: "Application startup complete" in log(d) and
                  "ready" in state(d), 40)
        check("run: vLLM's log lines and state ready", ok,
              "state %r, error %r, log tail %r" % (state(driver),
                                                   driver.find_element(By.ID, "launch-error")
                                                   .text, log(driver)[-500:]))
        check("run: health ok", "health ok" in state(driver), state(driver))
        check("run: the log has vLLM's own lines", "Starting vLLM API server" in log(driver),
              log(driver)[-300:])
        shot(driver, "run-1280x800")
        driver.find_element(By.ID, "stop-btn").click()
        ok = wait(driver, lambda d: "stopped" in state(d), 20)
        check("run: stopped", ok, state(driver))
        deadline = time.monotonic() + 5
        while vllm_left() and time.monotonic() < deadline:
            time.sleep(0.1)
        check("run: no vLLM process left", not vllm_left(), vllm_left())
        shot(driver, "run-stopped-1280x800")

        click_tab(driver, "diagnose")
        ok = wait(driver, lambda d: d.find_element(By.ID, "doctor").text.strip() != "", 15)
        check("diagnose: the doctor's findings", ok)
        shot(driver, "diagnose-1280x800")

        # The Machine tab on a phone.
        click_tab(driver, "machine")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 1,
                                "mobile": True})
        time.sleep(0.5)
        width = driver.execute_script("return document.documentElement.scrollWidth;")
        check("phone: no sideways scrolling of the page", width <= 390, width)
        shot(driver, "machine-390x844")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1,
                                "mobile": False})
        drain_console(driver)
        check("the whole session: no console error", not severe(console), severe(console))
    finally:
        drain_console(driver)
        check("example server: exit 0 on SIGTERM", s.stop() == 0)
        check("no vLLM left after the server stopped", not vllm_left(), vllm_left())


def test_token_box(driver):
    """The page opened without the start-up URL: no session, the token box asks; a wrong token
    is refused, the right one logs in (the cookie), and the matrix loads."""
    s = Server(os.path.join(FIXTURES, "example-4x-a100.topo"))
    check("token-box server up", s.up)
    try:
        driver.get(s.base)
        box = lambda d: d.find_element(By.ID, "token-box").is_displayed()
        check("no session: the token box shows", wait(driver, box, 10))
        check("no session: no matrix", not cells(driver))
        field = driver.find_element(By.ID, "token-input")
        field.send_keys("0" * 32)
        driver.find_element(By.ID, "token-save").click()
        check("wrong token: refused, the box stays", wait(driver, lambda d: "wrong token" in
              d.find_element(By.ID, "global-error").text, 10) and box(driver))
        field.clear()
        field.send_keys(s.token)
        driver.find_element(By.ID, "token-save").click()
        check("right token: the box goes", wait(driver, lambda d: not box(d), 10))
        check_matrix(driver, s, "logged in by the token box")
        check("token box: the field is emptied, the token not kept in the page",
              driver.find_element(By.ID, "token-input").get_attribute("value") == "" and
              s.token not in driver.page_source)
        # The 401s before the log-in are console errors by design: not counted.
        driver.get_log("browser")
    finally:
        check("token-box server: exit 0 on SIGTERM", s.stop() == 0)


def main():
    t0 = time.monotonic()
    os.makedirs(ARTIFACTS, exist_ok=True)
    for old in os.listdir(ARTIFACTS):
        if old.endswith(".png"):
            os.remove(os.path.join(ARTIFACTS, old))
    driver = make_driver()
    try:
        test_token_box(driver)
        test_example_machine(driver)
        test_faulty_machine(driver)
    finally:
        driver.quit()
        shutil.rmtree(TMP, True)
    others = [e for e in console if e.get("level") != "SEVERE"]
    if others:
        print("console (not errors):")
        for e in others[:20]:
            print("  %s %s" % (e.get("level"), e.get("message")))
    print("screenshots in %s (%.1f s)" % (ARTIFACTS, time.monotonic() - t0))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    if results["passed"] == 0:
        print("no checks ran")
        return 1
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
