#!/usr/bin/env python3
"""`peerscope web` over real HTTP: every route of docs/web-api.yaml, every bad input (a JSON
error with the right 4xx, and the server keeps answering), the security checks (the session:
token once in the start-up URL, exchanged for an HttpOnly SameSite=Strict cookie, never in a
page, every route refused without one of them; Host, duplicate headers, Origin,
Sec-Fetch-Site, the listen address, a unix socket of mode 0600), the limits (event streams,
connections per client, idle timeout), background jobs that leave the server
responsive, launching the fake vLLM (tests/fake/vllm) with its log as server-sent events,
bad command lines, and process hygiene (SIGTERM, no worker or vLLM left). Every server runs
on a free port of 127.0.0.1 (one on 0.0.0.0, token required) with the fake drivers. Run by
ctest (tests/CMakeLists.txt)."""
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
import schema_check  # noqa: E402
from clitest import CLI, MARKER, TMP, check, fixture  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

SOURCE = clitest.SOURCE
FAKE_VLLM = os.path.join(SOURCE, "tests", "fake", "vllm")
EXAMPLE = fixture("example-4x-a100.topo")
MODEL_70B = fixture(os.path.join("models", "Llama-3.1-70B-Instruct"))
MODEL_8B = fixture(os.path.join("models", "Llama-3.1-8B-Instruct"))
TOPO_TEXT_5GPU = fixture(os.path.join("topo", "aikitoria-13-5gpu-p2p-p.txt"))
REPORT_3GPU = os.path.join(SOURCE, "tests", "golden", "examples", "imported-3gpu-nulls.json")


def sanitized():
    """An ASan/UBSan build: the fake NCCL's all-reduce is ~15x slower there."""
    try:
        with open(os.path.join(os.environ.get("PEERSCOPE_BUILD_DIR", ""), "CMakeCache.txt")) as f:
            return re.search(r"^PS_SANITIZE:STRING=.+$", f.read(), re.M) is not None
    except OSError:
        return False


# The whole quick benchmark takes ~7 s on the fake drivers, ~100 s under ASan: there, the
# copy and latency tests only (~2 s).
BENCH_BODY = {"quick": True, "tests": ["copy", "latency"]} if sanitized() else {"quick": True}


def schema(name):
    with open(os.path.join(SOURCE, "docs", name)) as f:
        doc = json.load(f)
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc)


PLAN_SCHEMA = schema("plan.schema.json")
DOCTOR_SCHEMA = schema("doctor.schema.json")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(extra=None):
    env = dict(os.environ)
    for key in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_NCCL",
                "PEERSCOPE_MIN_P2P_GBPS", "FAKE_VLLM_MODE", "FAKE_VLLM_RECORD", "NCCL_DEBUG"):
        env.pop(key, None)
    env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(dir=TMP)
    key, value = MARKER.split("=")
    env[key] = value
    env["FAKE_VLLM_MODE"] = "ok"
    env.update(extra or {})
    return env


def left_behind(word):
    """Live processes of this run (they inherit MARKER) whose command line has `word`."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if MARKER.encode() not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone already
        argv0 = cmdline.split(" ", 1)[0]
        if word in cmdline and not argv0.endswith("/peerscope"):  # the server names --vllm
            left.append("%s %s" % (pid, cmdline))
    return left


def check_none_left(name, words=("vllm", "peerscope-worker")):
    for word in words:
        deadline = time.monotonic() + 3
        while left_behind(word) and time.monotonic() < deadline:
            time.sleep(0.05)
        check("%s: no %s process left" % (name, word), not left_behind(word), left_behind(word))


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return "%d %s" % (self.status, self.body[:400])


class Server:
    """`peerscope web` as a subprocess: its stdout and stderr read by threads, requests by
    http.client (any Host header, any method)."""

    def __init__(self, args, env_extra=None, port=None, wait=True):
        self.port = port or free_port()
        listen = args[args.index("--listen") + 1] if "--listen" in args else "127.0.0.1"
        self.unix = listen[5:] if listen.startswith("unix:") else None
        self.address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen, listen)
        self.args = ["web", "--port", str(self.port)] + args
        self.proc = subprocess.Popen([CLI] + self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=environment(env_extra))
        self.out, self.err = [], []
        self.lines = queue.Queue()
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out, True),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False),
                                         daemon=True)]
        for t in self.readers:
            t.start()
        self.token = None  # from the start-up URL
        self.up = self.wait_up() if wait else False

    def _read(self, pipe, into, signal_lines):
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            into.append(line)
            if signal_lines:
                self.lines.put(line)
        if signal_lines:
            self.lines.put(None)

    def wait_up(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                return False
            if line.startswith("peerscope web: http://"):
                m = re.search(r"\?token=([0-9A-Za-z_-]+)", line)
                self.token = m.group(1) if m else None
                return self._connectable(deadline)
        return False

    def _connectable(self, deadline):
        """The line promises a listening server: a connection right after it must succeed.
        (Checked once; then retried so that the other checks still run.)"""
        first = True
        while True:
            try:
                self.connect(2).close()
                if not first:
                    check("a connection right after the announced URL is accepted", False,
                          "refused at first: the URL was printed before the port was bound")
                return True
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    return False
                first = False
                time.sleep(0.02)

    def wait_exit(self, timeout=10):
        """Waits for the process and for its output to be read to the end (a loaded machine
        can leave the reader threads behind the exit)."""
        self.proc.wait(timeout)
        for t in self.readers:
            t.join(timeout)

    def output(self):
        return "stdout: %s\nstderr: %s" % ("\n".join(self.out), "\n".join(self.err))

    def connect(self, timeout=5):
        """A plain socket to the server (TCP, or its unix socket)."""
        if self.unix:
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(timeout)
            c.connect(self.unix)
            return c
        return socket.create_connection((self.address, self.port), timeout=timeout)

    def host(self):
        if self.unix:
            return "localhost"
        if ":" in self.address:
            return "[%s]:%d" % (self.address, self.port)
        return "%s:%d" % (self.address, self.port)

    def request(self, method, path, body=None, headers=None, token=True, host=None,
                timeout=15, address=None, cookie=None):
        """token: True sends the server's token (X-Peerscope-Token), a string sends that,
        False none; cookie: a Cookie header."""
        conn = http.client.HTTPConnection(address or self.address, self.port, timeout=timeout)
        if self.unix:
            conn.sock = self.connect(timeout)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if host is not False:
                conn.putheader("Host", host or self.host())
            if token is True and self.token:
                conn.putheader("X-Peerscope-Token", self.token)
            elif isinstance(token, str):
                conn.putheader("X-Peerscope-Token", token)
            if cookie:
                conn.putheader("Cookie", cookie)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            if body is not None or method in ("POST", "PUT"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                            data.decode(errors="replace"))
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def login(self, token=None):
        """Opens the start-up URL as a browser would: (response, "name=value" of the session
        cookie or None)."""
        r = self.get("/?token=" + (token or self.token or ""), token=False)
        m = re.match(r"(peerscope-[0-9a-z]+=[0-9a-f]+);", r.header("Set-Cookie") or "")
        return r, m.group(1) if m else None

    def wait_job(self, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.get("/api/v1/job").json() or {}
            if j.get("state") != "running":
                return j
            time.sleep(0.1)
        return {"state": "timeout"}

    def wait_launch(self, states, timeout=30):
        deadline = time.monotonic() + timeout
        doc = {}
        while time.monotonic() < deadline:
            doc = self.get("/api/v1/launch").json() or {}
            if doc.get("state") in states:
                return doc
            time.sleep(0.05)
        return doc

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig; returns (exit code or None when it had to be killed, seconds taken)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        for t in self.readers:  # the reader threads see the end of the pipes
            t.join(5)
        return code, time.monotonic() - t0


def is_error(name, r, status, mentions=None):
    """A JSON error {"error": "...", "status": N} with the right status."""
    doc = r.json()
    ok = (r.status == status and isinstance(doc, dict) and isinstance(doc.get("error"), str) and
          doc.get("error") and doc.get("status") == status and
          (r.header("Content-Type") or "").startswith("application/json"))
    if ok and mentions:
        ok = mentions in doc["error"]
    check("%s: %d JSON error%s" % (name, status, " naming %r" % mentions if mentions else ""),
          ok, r)


def raw(s, data, timeout=5):
    """Sends bytes as they are; (status or None, {header: value}, body) of the answer."""
    with s.connect(timeout) as c:
        c.sendall(data)
        got = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
                head, sep, body = got.partition(b"\r\n\r\n")
                m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                if sep and m and len(body) >= int(m.group(1)):
                    break
        except OSError:
            pass
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    parts = lines[0].split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (x.partition(":") for x in lines[1:]))
    return status, headers, body.decode(errors="replace")


def json_error_with_headers(name, status, headers, body, want):
    """Every error: a JSON body naming its status, and the security headers."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    check("%s: %d JSON error with CSP, nosniff, DENY, no-store" % (name, want),
          status == want and isinstance(doc, dict) and doc.get("status") == want and
          isinstance(doc.get("error"), str) and
          headers.get("content-type", "").startswith("application/json") and
          "default-src 'self'" in headers.get("content-security-policy", "") and
          headers.get("x-content-type-options") == "nosniff" and
          headers.get("x-frame-options") == "DENY" and headers.get("cache-control") == "no-store",
          (status, headers, body[:300]))


def still_healthy(name, s):
    r = s.get("/api/v1/job")
    check("%s: server still answers" % name, r.status == 200 and r.json() is not None, r)


def sse_collect(s, path, events, done, timeout=30, cookie=None):
    """Reads an event stream into `events` ([(event, data)]) until it ends or timeout; logged
    in with the cookie (a browser) or else the token header."""
    conn = http.client.HTTPConnection(s.address, s.port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", s.host())
        conn.putheader("Accept", "text/event-stream")
        if cookie:
            conn.putheader("Cookie", cookie)
        elif s.token:
            conn.putheader("X-Peerscope-Token", s.token)
        conn.endheaders()
        r = conn.getresponse()
        events.append(("http", "%d %s" % (r.status, r.getheader("Content-Type"))))
        event, data = None, []
        deadline = time.monotonic() + timeout
        ended = False
        while time.monotonic() < deadline:
            raw = r.readline()
            if not raw:
                ended = True
                break
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "":
                if event:
                    events.append((event, "\n".join(data)))
                event, data = None, []
        events.append(("end" if ended else "timeout", ""))
    except (OSError, http.client.HTTPException) as exc:
        events.append(("exception", repr(exc)))
    finally:
        conn.close()
        done.set()


# ---- the routes ---------------------------------------------------------------------------


def test_page_and_assets(s):
    r = s.get("/", token=False)
    csp = r.header("Content-Security-Policy") or ""
    check("GET /: 200 html", r.status == 200 and
          (r.header("Content-Type") or "").startswith("text/html"), r)
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    check("GET /: CSP strict", directives.get("default-src") == "'self'" and
          directives.get("script-src") == "'self'" and
          directives.get("frame-ancestors") == "'none'" and
          "unsafe" not in csp and "*" not in csp and "http" not in csp, csp)
    check("GET /: nosniff", r.header("X-Content-Type-Options") == "nosniff", r.headers)
    check("GET /: no framing", r.header("X-Frame-Options") == "DENY", r.headers)
    check("the start-up URL has the token", re.fullmatch(r"[0-9a-f]{32}", s.token or ""),
          s.output())
    check("GET /: no inline script", not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.body) and
          not re.search(r"<[^>]*\son[a-z]+=", r.body), r.body[:200])
    r2 = s.get("/index.html", token=False)
    check("GET /index.html is the page", r2.status == 200 and r2.body == r.body, r2)
    # Every script the page names is served (the front end is split by tab).
    scripts = re.findall(r'<script src="(/[a-z]+\.js)"', r.body)
    check("GET /: names its scripts, app.js last", len(scripts) >= 6 and scripts[-1] == "/app.js",
          scripts)
    pages = [(p, "text/javascript") for p in scripts] + [("/app.css", "text/css")]
    for path in ["/", "/index.html"] + [p for p, _ in pages]:
        for kw in ({"token": False}, {}):  # with the token in a header too: never echoed
            body = s.get(path, **kw).body
            check("GET %s: no token, no session in it" % path, s.token and s.token not in body
                  and "peerscope-token" not in body and "{{TOKEN}}" not in body, body[:200])
    for path, ctype in pages:
        r = s.get(path, token=False)
        check("GET %s" % path, r.status == 200 and len(r.body) > 0 and
              (r.header("Content-Type") or "").startswith(ctype) and
              r.header("X-Content-Type-Options") == "nosniff" and
              r.header("Content-Security-Policy"), r.headers)
    r = s.request("HEAD", "/", token=False)
    check("HEAD /: 200 without a body", r.status == 200 and r.body == "", r)
    r = s.get("/favicon.ico", token=False)
    check("the page names no favicon the server lacks (data: icon)",
          'rel="icon" href="data:' in s.get("/", token=False).body or r.status == 200, r)


def test_read_routes(s):
    r = s.get("/api/v1/topology")
    doc = r.json()
    check("GET topology: 200 JSON", r.status == 200 and isinstance(doc, dict) and
          (r.header("Content-Type") or "").startswith("application/json"), r)
    check("GET topology: not cached", r.header("Cache-Control") == "no-store", r.headers)
    check("GET topology: CSP and nosniff on the API too",
          r.header("Content-Security-Policy") and r.header("X-Content-Type-Options") == "nosniff",
          r.headers)
    if doc:
        errors = schema_check.errors(doc)
        check("GET topology: valid peerscope.topology/1", not errors, errors[:3])
        check("GET topology: the fixture's 4 GPUs", len(doc.get("gpus", [])) == 4, doc.get("gpus"))
    r = s.get("/api/v1/job")
    j = r.json() or {}
    check("GET job: idle before any job", r.status == 200 and j.get("id") == 0 and
          j.get("kind") == "none" and j.get("state") == "idle" and "error" in j, r)
    r = s.get("/api/v1/launch")
    L = r.json() or {}
    keys = {"state", "pid", "url", "command", "health", "exit_code", "summary", "lines"}
    check("GET launch: idle", r.status == 200 and keys <= set(L) and L.get("state") == "idle" and
          L.get("health") == "unknown" and L.get("lines") == 0, r)
    summary = L.get("summary") or {}
    # Nothing has run: nothing is known (null), not "custom all-reduce off, 0 KV tokens".
    check("GET launch: idle summary is all unknown",
          summary.get("custom_all_reduce") is None and summary.get("kv_cache_tokens") is None and
          summary.get("max_concurrency") is None and summary.get("ready") is False, summary)
    r = s.get("/api/v1/bench")
    is_error("GET bench before any", r, 404)
    for fmt in ("svg", "text", "json"):
        is_error("GET bench?format=%s before any" % fmt, s.get("/api/v1/bench?format=" + fmt), 404)
    r = s.get("/api/v1/doctor")
    doc = r.json()
    check("GET doctor: 200 JSON", r.status == 200 and isinstance(doc, dict), r)
    if isinstance(doc, dict):
        errors = [e.message for e in DOCTOR_SCHEMA.iter_errors(doc)]
        check("GET doctor: valid peerscope.doctor/1", not errors, errors[:3])
    # Loopback is no reason to trust: another user on the machine reaches it too.
    is_error("GET topology without a token on loopback", s.get("/api/v1/topology", token=False),
             401)


def test_plan(s):
    r = s.get("/api/v1/plan/fields")
    fields = (r.json() or {}).get("fields") or []
    check("GET plan/fields: the request's table", r.status == 200 and
          {"model_dir", "tp", "gpus", "objective"} <= {f.get("name") for f in fields} and
          all(f.get("flag", "").startswith("--") and f.get("help") for f in fields), r)
    r = s.post("/api/v1/plan", {"model_dir": MODEL_70B})
    doc = r.json() or {}
    plan = doc.get("plan") or {}
    check("POST plan 70B: 200", r.status == 200, r)
    check("POST plan 70B: feasible, tp 4", plan.get("feasible") is True and plan.get("tp") == 4,
          {k: plan.get(k) for k in ("feasible", "tp", "pp", "summary")})
    check("POST plan 70B: shell, yaml, args",
          "vllm serve" in (doc.get("shell") or "") and
          "tensor-parallel-size: 4" in (doc.get("yaml") or "").replace('"', "") and
          "--tensor-parallel-size 4" in (doc.get("args") or ""),
          {k: doc.get(k) for k in ("shell", "yaml", "args")})
    errors = [e.message for e in PLAN_SCHEMA.iter_errors(plan)]
    check("POST plan 70B: valid peerscope.plan/1", plan and not errors, errors[:3])
    r = s.post("/api/v1/plan", {"params_b": 8, "dtype": "bf16", "tp": 2, "objective": "latency"})
    plan = (r.json() or {}).get("plan") or {}
    check("POST plan params_b 8 tp 2", r.status == 200 and plan.get("tp") == 2, r)
    # A Hugging Face id: from the catalog (tests run with HF_HUB_OFFLINE=1), served as given.
    r = s.post("/api/v1/plan", {"model_dir": "meta-llama/Llama-3.1-70B-Instruct"})
    plan = (r.json() or {}).get("plan") or {}
    check("POST plan by id", r.status == 200 and plan.get("tp") == 4 and
          plan.get("model") == "meta-llama/Llama-3.1-70B-Instruct", r)
    r = s.post("/api/v1/plan", {"model_dir": "bad--org/x"})
    check("POST plan malformed id: 400", r.status == 400 and
          "not a Hugging Face model id" in str(r.json()), r)
    r = s.post("/api/v1/plan", {"model_size_gb": 5000})
    plan = (r.json() or {}).get("plan") or {}
    check("POST plan 5 TB: 200, not feasible", r.status == 200 and plan.get("feasible") is False, r)
    # GPU 0 twice is GPU 0 once (as `peerscope plan --gpus 0,0` has it), or an error: never
    # two replicas on one GPU.
    r = s.post("/api/v1/plan", {"params_b": 8, "gpus": [0, 0]})
    plan = (r.json() or {}).get("plan") or {}
    check("POST plan gpus [0, 0]: no second replica on GPU 0", r.status == 400 or
          (r.status == 200 and plan.get("gpus") == [0] and plan.get("replicas") == 1),
          {k: plan.get(k) for k in ("gpus", "replicas", "summary")} if plan else r)
    r = s.post("/api/v1/plan", {"params_b": 8, "gpus": [7]})
    is_error("POST plan on GPU 7 of 4", r, 400, "7")
    # vllm_log names a file: the server reads none (peerscope plan --vllm-log does)
    r = s.post("/api/v1/plan", {"params_b": 8, "vllm_log": "/etc/passwd"})
    is_error("POST plan with vllm_log", r, 400, "reads none")
    r = s.post("/api/v1/plan", {"model_dir": MODEL_70B},
               headers={"Authorization": "Bearer " + s.token}, token=False)
    check("POST plan with Authorization: Bearer", r.status == 200, r)
    r = s.post("/api/v1/plan", {"model_dir": MODEL_70B},
               headers={"Origin": "http://" + s.host(), "Sec-Fetch-Site": "same-origin"})
    check("POST plan from our own origin", r.status == 200, r)


def bad_inputs(s):
    """Every bad request: a JSON error with its status, then the server still answers."""
    big = "x" * ((1 << 20) + 1)
    too_large_json = '{"model_dir": "' + "a" * (1 << 20) + '"}'
    missing = os.path.join(TMP, "no-such-model")
    no_config = fixture("topo")  # a directory without config.json
    own = {"port": s.port}
    cases = [
        # (name, method, path, body, kwargs, status, mentions)
        ("malformed JSON", "POST", "/api/v1/plan", "{model_dir: 1}", {}, 400, "line"),
        ("truncated JSON", "POST", "/api/v1/plan", '{"model_dir": "%s"' % MODEL_70B, {}, 400,
         None),
        ("not an object", "POST", "/api/v1/plan", "[1, 2]", {}, 400, None),
        ("a bare string", "POST", "/api/v1/plan", '"hello"', {}, 400, None),
        ("duplicate key", "POST", "/api/v1/plan", '{"tp": 1, "tp": 2, "params_b": 8}', {}, 400,
         None),
        ("unknown field", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "colour": 1}, {}, 400,
         "colour"),
        ("string for tp", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "tp": "4"}, {}, 400,
         "tp"),
        ("float for tp", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "tp": 2.5}, {}, 400,
         "tp"),
        ("tp 4.0", "POST", "/api/v1/plan", '{"model_dir": "%s", "tp": 4.0}' % MODEL_70B, {}, 400,
         "tp"),
        ("negative tp", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "tp": -1}, {}, 400, "tp"),
        ("tp out of range", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "tp": 100000}, {},
         400, "tp"),
        ("tp huge", "POST", "/api/v1/plan", '{"params_b": 8, "tp": 99999999999999999999}', {},
         400, None),
        ("utilization 1.5", "POST", "/api/v1/plan",
         {"model_dir": MODEL_70B, "gpu_memory_utilization": 1.5}, {}, 400,
         "gpu_memory_utilization"),
        ("string for utilization", "POST", "/api/v1/plan",
         {"model_dir": MODEL_70B, "gpu_memory_utilization": "0.9"}, {}, 400,
         "gpu_memory_utilization"),
        ("objective unknown", "POST", "/api/v1/plan",
         {"model_dir": MODEL_70B, "objective": "fast"}, {}, 400, "objective"),
        ("gpus not a list", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "gpus": "0,1"}, {},
         400, "gpus"),
        ("gpus negative", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "gpus": [0, -1]}, {},
         400, "gpus"),
        ("empty model_dir", "POST", "/api/v1/plan", {"model_dir": ""}, {}, 400, "model_dir"),
        ("NUL in model_dir", "POST", "/api/v1/plan", '{"model_dir": "/tmp/a\\u0000b"}', {}, 400,
         None),
        ("empty body on plan", "POST", "/api/v1/plan", "", {}, 400, "model"),
        ("empty object on plan", "POST", "/api/v1/plan", {}, {}, 400, "model"),
        ("two models", "POST", "/api/v1/plan", {"model_dir": MODEL_70B, "params_b": 70}, {}, 400,
         None),
        ("dtype without params_b", "POST", "/api/v1/plan",
         {"model_dir": MODEL_70B, "dtype": "fp8"}, {}, 400, "dtype"),
        ("model_dir missing", "POST", "/api/v1/plan", {"model_dir": missing}, {}, 400, missing),
        ("model_dir without config.json", "POST", "/api/v1/plan", {"model_dir": no_config}, {},
         400, no_config),
        ("body over 1 MiB (plan)", "POST", "/api/v1/plan", too_large_json, {}, 413, None),
        ("body over 1 MiB (topology)", "POST", "/api/v1/topology", big, {}, 413, None),
        ("missing token", "POST", "/api/v1/plan", {"model_dir": MODEL_70B}, {"token": False},
         401, None),
        ("wrong token", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"token": "0" * 32}, 401, None),
        ("token prefix", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"token": (s.token or "")[:16]}, 401, None),
        ("token plus a byte", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"token": (s.token or "") + "0"}, 401, None),
        ("wrong Bearer", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"token": False, "headers": {"Authorization": "Bearer " + "1" * 32}}, 401, None),
        ("Basic instead of Bearer", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"token": False, "headers": {"Authorization": "Basic " + (s.token or "")}}, 401, None),
        ("token in the query of a POST", "POST", "/api/v1/plan?token=%s" % s.token,
         {"model_dir": MODEL_70B}, {"token": False}, 401, None),
        ("token in the query of POST verify", "POST", "/api/v1/verify?token=%s" % s.token, None,
         {"token": False}, 401, None),
        ("foreign Host (GET)", "GET", "/api/v1/topology", None, {"host": "evil.example:%d" %
                                                                  s.port}, 403, None),
        ("foreign Host (page)", "GET", "/", None, {"host": "evil.example"}, 403, None),
        ("foreign Host (POST)", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"host": "rebind.evil.example:%d" % s.port}, 403, None),
        ("Host without the port", "GET", "/api/v1/job", None, {"host": "127.0.0.1"}, 403, None),
        ("Host with another port", "GET", "/api/v1/job", None,
         {"host": "127.0.0.1:%d" % (s.port + 1)}, 403, None),
        ("Host 0.0.0.0 on a loopback server", "GET", "/api/v1/job", None,
         {"host": "0.0.0.0:%d" % s.port}, 403, None),
        ("cross-origin Origin on POST", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"headers": {"Origin": "http://evil.example"}}, 403, None),
        ("Origin of another port", "POST", "/api/v1/verify", None,
         {"headers": {"Origin": "http://127.0.0.1:%d" % (s.port + 1)}}, 403, None),
        ("Origin null", "POST", "/api/v1/stop", None, {"headers": {"Origin": "null"}}, 403, None),
        ("Sec-Fetch-Site: cross-site", "POST", "/api/v1/plan", {"model_dir": MODEL_70B},
         {"headers": {"Sec-Fetch-Site": "cross-site"}}, 403, None),
        # Errors quote what the client sent: bytes that are not UTF-8 (MHD unescapes %XX), or
        # a quote cut inside a character, must still give an "error" message.
        ("a path that is not UTF-8", "GET", "/%CF%28", None, {}, 404, None),
        ("an API path that is not UTF-8", "GET", "/api/v1/%FF", None, {}, 404, None),
        ("a Host that is not UTF-8", "GET", "/api/v1/job", None, {"host": "\xcf:%d" % s.port},
         403, None),
        ("an Origin that is not UTF-8", "POST", "/api/v1/stop", None,
         {"headers": {"Origin": "http://\xcf"}}, 403, None),
        ("an unknown field cut inside a character", "POST", "/api/v1/plan",
         {"a" + "\u00e9" * 40: 1}, {}, 400, None),
        ("a long path of 2-byte characters", "GET", "/" + "%C3%A9" * 150, None, {}, 404, None),
        ("unknown route", "GET", "/api/v1/nothing", None, {}, 404, None),
        ("unknown API version", "GET", "/api/v2/topology", None, {}, 404, None),
        ("unknown page", "GET", "/secret.txt", None, {}, 404, None),
        ("path traversal", "GET", "/../../etc/passwd", None, {}, 404, None),
        ("GET plan", "GET", "/api/v1/plan", None, {}, 405, None),
        ("GET verify", "GET", "/api/v1/verify", None, {}, 405, None),
        ("GET stop", "GET", "/api/v1/stop", None, {}, 405, None),
        ("DELETE job", "DELETE", "/api/v1/job", None, {}, 405, None),
        ("POST job", "POST", "/api/v1/job", None, {}, 405, None),
        ("PUT topology", "PUT", "/api/v1/topology", "{}", {}, 405, None),
        ("POST doctor", "POST", "/api/v1/doctor", None, {}, 405, None),
        ("POST launch/log", "POST", "/api/v1/launch/log", None, {}, 405, None),
        ("POST the page", "POST", "/", "x", {}, 405, None),
        ("unknown format", "GET", "/api/v1/bench?format=xml", None, {}, 400, "xml"),
        ("empty format", "GET", "/api/v1/bench?format=", None, {}, 400, None),
        ("bench quick as a string", "POST", "/api/v1/bench", {"quick": "yes"}, {}, 400, "quick"),
        ("bench unknown test", "POST", "/api/v1/bench", {"tests": ["copy", "warp"]}, {}, 400,
         "tests"),
        ("bench tests not a list", "POST", "/api/v1/bench", {"tests": "copy"}, {}, 400, "tests"),
        ("bench GPU 9 of 4", "POST", "/api/v1/bench", {"gpus": [0, 9]}, {}, 400, "9"),
        ("bench unknown field", "POST", "/api/v1/bench", {"fast": True}, {}, 400, "fast"),
        # A GPU twice is a mistake to refuse at once, not a job that fails later.
        ("bench GPU 0 twice", "POST", "/api/v1/bench", {"gpus": [0, 0], "tests": ["copy"]}, {},
         400, None),
        ("empty upload", "POST", "/api/v1/topology", "", {}, 400, None),
        ("upload of garbage text", "POST", "/api/v1/topology", "hello\nworld\n", {}, 400, None),
        ("upload of a bad report", "POST", "/api/v1/topology", '{"schema": "nope"}', {}, 400,
         None),
        ("upload of truncated JSON", "POST", "/api/v1/topology",
         open(REPORT_3GPU).read()[:500], {}, 400, None),
        ("launch without model_dir", "POST", "/api/v1/launch", {"port": free_port()}, {}, 400,
         "model_dir"),
        ("launch on the dashboard's port", "POST", "/api/v1/launch",
         dict(own, model_dir=MODEL_8B), {}, 400, str(s.port)),
        ("launch port 0", "POST", "/api/v1/launch", {"model_dir": MODEL_8B, "port": 0}, {}, 400,
         "port"),
        ("launch port 70000", "POST", "/api/v1/launch", {"model_dir": MODEL_8B, "port": 70000},
         {}, 400, "port"),
        ("launch port as a string", "POST", "/api/v1/launch",
         {"model_dir": MODEL_8B, "port": "8000"}, {}, 400, "port"),
        ("launch names a program", "POST", "/api/v1/launch",
         {"model_dir": MODEL_8B, "vllm": "/bin/sh"}, {}, 400, "vllm"),
        ("launch model_dir missing", "POST", "/api/v1/launch",
         {"model_dir": missing, "port": free_port()}, {}, 400, missing),
        ("launch model_dir without config.json", "POST", "/api/v1/launch",
         {"model_dir": no_config, "port": free_port()}, {}, 400, no_config),
        ("launch model_size_gb (plan only)", "POST", "/api/v1/launch", {"model_size_gb": 10}, {},
         400, None),
        ("launch no plan fits", "POST", "/api/v1/launch",
         {"model_dir": MODEL_70B, "tp": 1, "pp": 1, "port": free_port()}, {}, 400, None),
    ]
    for name, method, path, body, kw, status, mentions in cases:
        r = s.request(method, path, body=body, **kw)
        is_error(name, r, status, mentions)
        still_healthy(name, s)
    # No Host at all (HTTP/1.0 allows that; 1.1 clients always send one).
    with socket.create_connection((s.address, s.port), timeout=5) as c:
        c.sendall(b"GET /api/v1/topology HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    check("no Host header: 403", head.split(b" ")[1:2] == [b"403"], data[:300])
    still_healthy("no Host header", s)
    # The names a loopback server answers to.
    for host in ("localhost:%d" % s.port, "127.0.0.1:%d" % s.port):
        r = s.get("/api/v1/job", host=host)
        check("Host %s accepted" % host, r.status == 200, r)


def test_verify_and_bench(s):
    r = s.post("/api/v1/verify")
    j = r.json() or {}
    check("POST verify: 202 with the job", r.status == 202 and j.get("kind") == "verify" and
          j.get("id") == 1, r)
    j = s.wait_job()
    check("verify: done", j.get("state") == "done" and j.get("id") == 1, j)
    doc = s.get("/api/v1/topology").json() or {}
    check("after verify: report still valid", not schema_check.errors(doc),
          schema_check.errors(doc)[:3])
    check("after verify: verified", (doc.get("verification") or {}).get("ran") is True,
          doc.get("verification"))

    r = s.post("/api/v1/bench", BENCH_BODY)
    j = r.json() or {}
    check("POST bench: 202", r.status == 202 and j.get("kind") == "bench" and
          j.get("state") == "running", r)
    is_error("POST verify while a bench runs", s.post("/api/v1/verify"), 409)
    is_error("POST bench while a bench runs", s.post("/api/v1/bench", {"quick": True}), 409)
    is_error("upload while a bench runs",
             s.post("/api/v1/topology", open(REPORT_3GPU).read()), 409)
    # The server keeps answering while the bench runs.
    slowest, running_seen = 0.0, False
    for _ in range(10):
        t0 = time.monotonic()
        r = s.get("/api/v1/topology")
        slowest = max(slowest, time.monotonic() - t0)
        if r.status != 200:
            break
        running_seen = running_seen or (s.get("/api/v1/job").json() or {}).get("state") == \
            "running"
        time.sleep(0.05)
    check("GET topology during a bench answers in < 1 s", r.status == 200 and slowest < 1.0,
          "%.3f s, %r" % (slowest, r))
    check("the bench was still running while we asked", running_seen)
    return time.monotonic()


def test_bench_results(s):
    j = s.wait_job(120)
    check("bench: done with progress", j.get("state") == "done" and j.get("kind") == "bench" and
          j.get("done") == j.get("total") and j.get("total", 0) > 0, j)
    r = s.get("/api/v1/bench")
    doc = r.json()
    check("GET bench: JSON after the run", r.status == 200 and isinstance(doc, dict) and doc, r)
    r = s.get("/api/v1/bench?format=json")
    check("GET bench?format=json", r.status == 200 and r.json() == doc, r)
    r = s.get("/api/v1/bench?format=svg")
    check("GET bench?format=svg: image/svg+xml", r.status == 200 and
          (r.header("Content-Type") or "").startswith("image/svg+xml"), r)
    try:
        root = ET.fromstring(r.body.encode())
        check("GET bench?format=svg: well-formed SVG", root.tag.endswith("svg"), root.tag)
        check("GET bench?format=svg: no script in the SVG", "<script" not in r.body)
    except ET.ParseError as exc:
        check("GET bench?format=svg: well-formed XML", False, exc)
    r = s.get("/api/v1/bench?format=text")
    check("GET bench?format=text", r.status == 200 and
          (r.header("Content-Type") or "").startswith("text/plain") and
          "Copy bandwidth" in r.body and "SIMULATED" in r.body, r.body[:300])
    doc = s.get("/api/v1/topology").json() or {}
    check("after bench: the report has the bench and is valid",
          "bench" in doc and not schema_check.errors(doc), schema_check.errors(doc)[:3])
    # A verification keeps the benchmark of the same GPUs.
    s.post("/api/v1/verify")
    j = s.wait_job()
    check("verify after bench: done, bench kept", j.get("state") == "done" and
          s.get("/api/v1/bench").status == 200, j)


def test_launch(s):
    port = free_port()
    events, done = [], threading.Event()
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": port})
    L = r.json() or {}
    check("POST launch: 202 starting", r.status == 202 and L.get("state") == "starting" and
          "vllm serve" in (L.get("command") or "") and str(port) in (L.get("command") or ""), r)
    _, cookie = s.login()  # the browser's way: the session cookie
    threading.Thread(target=sse_collect, daemon=True,
                     args=(s, "/api/v1/launch/log", events, done, 30, cookie)).start()
    is_error("a second launch while one runs", s.post("/api/v1/launch",
             {"model_dir": MODEL_8B, "port": free_port()}), 409)
    L = s.wait_launch(("ready", "exited", "failed"), 30)
    check("launch: ready, health ok", L.get("state") == "ready" and L.get("health") == "ok" and
          L.get("url") and str(port) in L.get("url"), L)
    summary = L.get("summary") or {}
    check("launch: summary from vLLM's log", summary.get("ready") is True and
          summary.get("kv_cache_tokens") == 435216, summary)
    try:
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/models" % port, timeout=5) as resp:
            models = json.load(resp)
        check("launch: vLLM serves the model", models["data"][0]["id"] == MODEL_8B, models)
    except OSError as exc:
        check("launch: vLLM serves the model", False, exc)
    is_error("launch while ready", s.post("/api/v1/launch",
             {"model_dir": MODEL_8B, "port": free_port()}), 409)
    r = s.post("/api/v1/plan", {"model_dir": MODEL_8B})
    check("POST plan while vLLM runs", r.status == 200, r)
    r = s.post("/api/v1/stop")
    check("POST stop: 200", r.status == 200 and (r.json() or {}).get("state") in
          ("stopping", "stopped"), r)
    L = s.wait_launch(("stopped", "exited", "failed"), 30)
    check("stop: stopped", L.get("state") == "stopped", L)
    # Nothing answers /health any more: "ok" would be stale.
    check("stop: health no longer ok", L.get("health") != "ok", L.get("health"))
    done.wait(10)
    names = [e for e, _ in events]
    lines = [d for e, d in events if e == "line"]
    statuses = [json.loads(d) for e, d in events if e == "status"]
    check("SSE: 200 text/event-stream", events[:1] and events[0][1].startswith("200") and
          "text/event-stream" in events[0][1], events[:1])
    check("SSE: status events", statuses and statuses[0].get("state") in ("starting", "ready") and
          any(st.get("state") == "stopped" for st in statuses), names)
    check("SSE: vLLM's log lines", any("Starting vLLM API server" in x for x in lines) and
          any("Application startup complete" in x for x in lines), lines[-5:])
    check("SSE: the stream ends once vLLM is gone", done.is_set() and names[-1:] == ["end"],
          names[-3:])
    check("GET launch: every line counted", L.get("lines", 0) >= len(lines) > 0,
          (L.get("lines"), len(lines)))
    check_none_left("after stop", ("vllm",))
    r = s.post("/api/v1/stop")
    check("POST stop again: 200, still stopped", r.status == 200 and
          (r.json() or {}).get("state") == "stopped", r)
    # A late reader gets the whole log of the finished launch, then the end.
    events2, done2 = [], threading.Event()
    sse_collect(s, "/api/v1/launch/log", events2, done2, timeout=10)
    check("SSE after the end: the whole log, then the end",
          len([1 for e, _ in events2 if e == "line"]) == L.get("lines") and
          events2[-1][0] == "end", [e for e, _ in events2][-3:])


def test_uploads(s, own_report):
    r = s.post("/api/v1/topology", open(REPORT_3GPU).read(),
               headers={"Content-Type": "application/json"})
    doc = r.json() or {}
    check("upload report JSON: 200, 3 GPUs", r.status == 200 and len(doc.get("gpus", [])) == 3, r)
    check("upload report JSON: marked as a file", (doc.get("source") or {}).get("kind") == "file",
          doc.get("source"))
    check("upload report JSON: valid", not schema_check.errors(doc), schema_check.errors(doc)[:3])
    doc = s.get("/api/v1/topology").json() or {}
    check("GET topology after upload: 3 GPUs", len(doc.get("gpus", [])) == 3)
    r = s.post("/api/v1/topology", open(TOPO_TEXT_5GPU).read(),
               headers={"Content-Type": "text/plain"})
    doc = r.json() or {}
    check("upload nvidia-smi topo -m: 200, 5 GPUs", r.status == 200 and
          len(doc.get("gpus", [])) == 5 and len(doc.get("pairs", [])) == 20, r)
    check("upload topo -m: valid", not schema_check.errors(doc), schema_check.errors(doc)[:3])
    # This machine's own report, uploaded: now it describes "another machine" (a file).
    r = s.post("/api/v1/topology", own_report)
    doc = r.json() or {}
    check("upload a live report: 200, 4 GPUs, a file now", r.status == 200 and
          len(doc.get("gpus", [])) == 4 and (doc.get("source") or {}).get("kind") == "file", r)
    is_error("verify after an upload", s.post("/api/v1/verify"), 409)
    is_error("bench after an upload", s.post("/api/v1/bench", {"quick": True}), 409)
    is_error("launch after an upload", s.post("/api/v1/launch",
             {"model_dir": MODEL_8B, "port": free_port()}), 409)
    r = s.post("/api/v1/plan", {"model_dir": MODEL_70B})
    check("plan on the uploaded topology", r.status == 200 and
          ((r.json() or {}).get("plan") or {}).get("tp") == 4, r)
    check("GET job after the upload", s.get("/api/v1/job").status == 200)


def test_crash():
    s = Server(["--fixture", EXAMPLE, "--vllm", FAKE_VLLM], {"FAKE_VLLM_MODE": "crash"})
    check("crash server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": free_port()})
    check("crash: 202", r.status == 202, r)
    L = s.wait_launch(("exited", "failed", "stopped"), 30)
    summary = L.get("summary") or {}
    check("crash: state exited, exit code 1", L.get("state") == "exited" and
          L.get("exit_code") == 1 and L.get("health") == "failed", L)
    check("crash: the failure and a suggestion", "out of memory" in (summary.get("failure") or "")
          and summary.get("suggestion"), summary)
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": free_port()})
    check("launch again after a crash: 202", r.status == 202, r)
    L = s.wait_launch(("exited", "failed", "stopped"), 30)
    check("crash again: exited", L.get("state") == "exited", L)
    code, took = s.stop()
    check("crash server: SIGTERM exit 0", code == 0, s.output())
    check_none_left("crash server", ("vllm",))


def test_not_loopback():
    """--listen 0.0.0.0: the token only in the start-up URL, the page has none, every /api
    needs it (or the cookie it is exchanged for)."""
    s = Server(["--listen", "0.0.0.0", "--fixture", EXAMPLE, "--vllm", FAKE_VLLM])
    check("0.0.0.0: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    time.sleep(0.05)
    token = s.token or ""
    check("0.0.0.0: token printed once, in the URL", re.fullmatch(r"[0-9a-f]{32}", token) and
          sum(x.count(token) for x in s.out) == 1, s.output())
    check("0.0.0.0: the page carries no token", token not in s.get("/", token=False).body)
    check("0.0.0.0: the page itself needs no token", s.get("/app.js", token=False).status == 200)
    for path in ("/api/v1/topology", "/api/v1/job", "/api/v1/launch", "/api/v1/doctor",
                 "/api/v1/bench", "/api/v1/launch/log"):
        is_error("0.0.0.0: GET %s without token" % path, s.get(path, token=False), 401)
    is_error("0.0.0.0: GET with a wrong token", s.get("/api/v1/job", token="f" * 32), 401)
    is_error("0.0.0.0: ?token= on a plain GET", s.get("/api/v1/job?token=" + token,
                                                     token=False), 401)
    r = s.get("/api/v1/job", token=token)
    check("0.0.0.0: the printed token works", r.status == 200, r)
    r = s.get("/api/v1/topology", token=False, headers={"Authorization": "Bearer " + token})
    check("0.0.0.0: Bearer works", r.status == 200, r)
    r = s.post("/api/v1/plan", {"model_dir": MODEL_70B}, token=token)
    check("0.0.0.0: POST plan with the token", r.status == 200, r)
    _, cookie = s.login()
    events, done = [], threading.Event()
    t = threading.Thread(target=sse_collect, daemon=True,
                         args=(s, "/api/v1/launch/log", events, done, 2, cookie))
    t.start()
    t.join(4)
    check("0.0.0.0: SSE with the cookie", events[:1] and events[0][1].startswith("200"),
          events[:2])
    events, done = [], threading.Event()
    sse_collect(s, "/api/v1/launch/log?token=" + token, events, done, 2, "x=y")
    check("0.0.0.0: SSE with ?token= refused (a URL is logged)",
          events[:1] and events[0][1].startswith("401"), events[:2])
    for host in ("0.0.0.0:%d" % s.port, "127.0.0.1:%d" % s.port):
        check("0.0.0.0: Host %s" % host, s.get("/api/v1/job", token=token, host=host).status ==
              200)
    # Only literal addresses: a name made of hex digits (bad.cafe, dead.beef) is a name too.
    for host in ("evil.example:%d" % s.port, "bad.cafe:%d" % s.port, "dead.beef:%d" % s.port,
                 "127.0.0.1:%d" % (s.port + 1)):
        is_error("0.0.0.0: Host %s" % host, s.get("/api/v1/job", token=token, host=host), 403)
    code, took = s.stop()
    check("0.0.0.0: SIGTERM exit 0 in < 2 s", code == 0 and took < 2, (code, took))

    given = "given-token-0123456789"
    s = Server(["--listen", "0.0.0.0", "--token", given, "--fixture", EXAMPLE])
    check("--token: up", s.up, s.output())
    time.sleep(0.05)
    check("--token: not printed", not any(given in x for x in s.out) and
          any(x.startswith("peerscope web: http://0.0.0.0:%d/ " % s.port) for x in s.out),
          s.output())
    check("--token: used", s.get("/api/v1/job", token=given).status == 200 and
          s.get("/api/v1/job", token=False).status == 401)
    s.stop()

    # Another loopback address: the same rules, the page has no token.
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.2", 0))
        have_127_0_0_2 = True
    except OSError:
        have_127_0_0_2 = False
    finally:
        probe.close()
    if have_127_0_0_2:
        s = Server(["--listen", "127.0.0.2", "--token", given, "--fixture", EXAMPLE])
        check("127.0.0.2: up", s.up, s.output())
        r = s.get("/", token=False)
        check("127.0.0.2: the page has no token", r.status == 200 and given not in r.body, r)
        r = s.post("/api/v1/plan", {"params_b": 8}, token=given)
        check("127.0.0.2: POST with Host 127.0.0.2", r.status == 200, r)
        s.stop()

    # IPv6 loopback, where the machine has it: Host [::1]:port.
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        have_v6 = True
    except OSError:
        have_v6 = False
    if have_v6:
        s = Server(["--listen", "::1", "--token", given, "--fixture", EXAMPLE])
        check("::1: up, URL in brackets", s.up and any("http://[::1]:%d/" % s.port in x
                                                        for x in s.out), s.output())
        if s.up:
            r = s.get("/", token=False)
            check("::1: the page has no token", r.status == 200 and given not in r.body, r)
            r = s.post("/api/v1/plan", {"params_b": 8}, token=given)
            check("::1: POST with Host [::1]", r.status == 200, r)
            is_error("::1: Host evil.example", s.get("/api/v1/job", host="evil.example:%d" %
                                                      s.port), 403)
        s.stop()


def test_command_lines():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    cases = [
        ("unknown option", ["web", "--colour"], 2, "--colour"),
        ("bad port", ["web", "--port", "http"], 2, "http"),
        ("port 0", ["web", "--port", "0"], 2, "--port"),
        ("port 65536", ["web", "--port", "65536"], 2, "65536"),
        ("--listen not an IP", ["web", "--listen", "localhost"], 2, "localhost"),
        ("--listen a name", ["web", "--listen", "example.com"], 2, "example.com"),
        ("--token too short", ["web", "--token", "abc"], 2, "--token"),
        ("an extra argument", ["web", "extra"], 2, "extra"),
        ("--topology with --fixture", ["web", "--topology", REPORT_3GPU, "--fixture", EXAMPLE],
         2, "--topology"),
        ("--topology missing file", ["web", "--topology", os.path.join(TMP, "missing.json"),
                                     "--port", str(free_port())], 3, "missing.json"),
        ("port taken", ["web", "--port", str(port), "--fixture", EXAMPLE], 2, str(port)),
    ]
    for name, args, code, mentions in cases:
        p = clitest.run(args, timeout=20)
        err = p.stderr.strip().splitlines()
        check("web %s: exit %d" % (name, code), p.returncode == code,
              (p.returncode, p.stdout, p.stderr))
        check("web %s: one line naming %s" % (name, mentions), len(err) == 1 and
              mentions in err[0] and err[0].startswith("peerscope web"), p.stderr)
        # A server that could not start must not have announced a URL.
        check("web %s: no URL announced" % name, "http://" not in p.stdout, p.stdout)
    taken.close()
    p = clitest.run(["web", "--help"], timeout=10)
    check("web --help", p.returncode == 0 and "--listen" in p.stdout, p)
    # Offline mode: --topology with a topo -m text, then verify is refused.
    s = Server(["--topology", TOPO_TEXT_5GPU])
    check("--topology: up", s.up, s.output())
    if s.up:
        doc = s.get("/api/v1/topology").json() or {}
        check("--topology: 5 GPUs", len(doc.get("gpus", [])) == 5, doc.get("gpus"))
        is_error("--topology: verify refused", s.post("/api/v1/verify"), 409)
    code, _ = s.stop()
    check("--topology: SIGTERM exit 0", code == 0, s.output())


def kill_left(word):
    """Ends what a failed check left behind (this run's processes only, by pid)."""
    for entry in left_behind(word):
        try:
            os.kill(int(entry.split()[0]), signal.SIGKILL)
        except OSError:
            pass


def test_sigterm_during_bench():
    """Ctrl-C must not wait for a benchmark to finish (a full one takes minutes)."""
    s = Server(["--fixture", EXAMPLE])
    check("bench server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    r = s.post("/api/v1/bench", {"quick": True})  # 7 s, 100 s under ASan
    check("bench server: bench started", r.status == 202, r)
    time.sleep(0.5)
    running = (s.get("/api/v1/job").json() or {}).get("state") == "running"
    code, took = s.stop(timeout=15)
    check("SIGTERM during a bench: exit 0 in < 2 s", running and code == 0 and took < 2,
          "running %s, exit %s after %.1f s" % (running, code, took))
    check_none_left("SIGTERM during a bench", ("peerscope-worker",))
    kill_left("peerscope-worker")


def test_launch_failures():
    """vLLM missing, its port taken: the launch fails with a reason, the server carries on."""
    s = Server(["--fixture", EXAMPLE, "--vllm", os.path.join(TMP, "no-vllm-here")])
    check("no-vllm server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": free_port()})
    L = s.wait_launch(("failed", "exited", "stopped"), 15)
    check("vLLM missing: failed, naming it", r.status == 202 and L.get("state") == "failed" and
          "not found" in (L.get("error") or ""), L)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": taken.getsockname()[1]})
    L = s.wait_launch(("failed", "exited", "stopped"), 15)
    check("launch port taken: failed, saying so", r.status == 202 and
          L.get("state") == "failed" and "in use" in (L.get("error") or ""), L)
    taken.close()
    still_healthy("after failed launches", s)
    code, _ = s.stop()
    check("no-vllm server: SIGTERM exit 0", code == 0, s.output())


def test_token_in_page():
    """A --token with HTML in it is refused at start (it goes into headers and the URL)."""
    given = 'abc"><b>x</b>0123456'
    s = Server(["--token", given, "--fixture", EXAMPLE])
    s.wait_exit(10)
    err = [x for x in s.err if x.strip()]
    check("--token with HTML: refused in one line (exit 2)",
          s.proc.returncode == 2 and len(err) == 1 and "--token" in err[0], s.output())


def test_sigterm_with_streams():
    """SIGTERM with an event stream open and vLLM running: exit 0 within 2 s, nothing left."""
    s = Server(["--fixture", EXAMPLE, "--vllm", FAKE_VLLM])
    check("hygiene server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    events, done = [], threading.Event()
    threading.Thread(target=sse_collect, daemon=True,
                     args=(s, "/api/v1/launch/log", events, done, 20)).start()
    r = s.post("/api/v1/launch", {"model_dir": MODEL_8B, "port": free_port()})
    L = s.wait_launch(("ready", "exited", "failed"), 30)
    check("hygiene: vLLM ready", r.status == 202 and L.get("state") == "ready", L)
    code, took = s.stop()
    # vLLM's own shutdown, then its orphaned workers must be gone (launch waits up to 3 s
    # for the group: an orphan is a zombie until init reaps it).
    check("SIGTERM with vLLM and a stream: exit 0 in < 5 s", code == 0 and took < 5,
          (code, round(took, 2), s.output()))
    check("SIGTERM: says stopped", any("stopped" in x for x in s.out), s.output())
    done.wait(5)
    check("SIGTERM: the stream ended", done.is_set(), events[-3:])
    check_none_left("SIGTERM")


# ---- the session, errors, limits ------------------------------------------------------------

GET_ROUTES = ("/api/v1/topology", "/api/v1/job", "/api/v1/plan/fields", "/api/v1/bench",
              "/api/v1/doctor", "/api/v1/launch", "/api/v1/launch/log")
POST_ROUTES = ("/api/v1/topology", "/api/v1/verify", "/api/v1/plan", "/api/v1/bench",
               "/api/v1/launch", "/api/v1/stop", "/api/v1/session")


def test_session(s):
    """Jupyter's model: GET /?token= sets an HttpOnly, SameSite=Strict cookie and redirects
    to / (the token leaves the address bar); the cookie or the token opens every route."""
    r, cookie = s.login()
    setc = r.header("Set-Cookie") or ""
    attrs = [a.strip().lower() for a in setc.split(";")[1:]]
    check("GET /?token=: 303 to /", r.status == 303 and r.header("Location") == "/", r)
    check("session cookie: HttpOnly, SameSite=Strict, Path=/, named for the port",
          cookie and cookie.startswith("peerscope-%d=" % s.port) and "httponly" in attrs and
          "samesite=strict" in attrs and "path=/" in attrs, setc)
    check("session cookie: not the token", cookie and s.token not in setc, setc)
    check("GET /?token=: the answer does not echo the token", s.token not in r.body, r.body)
    r2, _ = s.login()
    check("a second exchange gives the same session", r2.header("Set-Cookie") == setc,
          r2.headers)
    r = s.get("/index.html?token=" + s.token, token=False)
    check("GET /index.html?token=: the exchange too", r.status == 303 and
          r.header("Set-Cookie") == setc, r)
    r, bad = s.login("0" * 32)
    is_error("GET /?token=<wrong>", r, 401)
    check("wrong token: no cookie", bad is None and not r.header("Set-Cookie"), r.headers)
    r, bad = s.login(s.token[:-1])
    check("token less a character: no cookie", r.status == 401 and bad is None, r)
    # The cookie alone, as a browser sends it.
    r = s.get("/api/v1/job", token=False, cookie=cookie)
    check("GET with the cookie: 200", r.status == 200, r)
    r = s.post("/api/v1/plan", {"params_b": 8}, token=False, cookie=cookie,
               headers={"Origin": "http://" + s.host(), "Sec-Fetch-Site": "same-origin"})
    check("POST plan with the cookie: 200", r.status == 200, r)
    is_error("POST with the cookie from another site", s.post(
        "/api/v1/plan", {"params_b": 8}, token=False, cookie=cookie,
        headers={"Origin": "http://evil.example"}), 403)
    name, value = cookie.split("=", 1)
    for label, c in (("wrong value", name + "=" + "0" * 32),
                     ("another port's name", "peerscope-%d=%s" % (s.port + 1, value)),
                     ("the token as the cookie", name + "=" + s.token),
                     ("empty", name + "=")):
        is_error("cookie %s" % label, s.get("/api/v1/job", token=False, cookie=c), 401)
    r = s.post("/api/v1/session", token=True)
    check("POST /api/v1/session with the token: the cookie", r.status == 200 and
          (r.header("Set-Cookie") or "").startswith(cookie + ";"), r)
    # Every route, without cookie or token: 401 and nothing done.
    for path in GET_ROUTES:
        r = s.get(path, token=False)
        json_error_with_headers("GET %s without a session" % path, r.status,
                                r.headers, r.body, 401)
    for path in POST_ROUTES:
        r = s.post(path, {}, token=False)
        json_error_with_headers("POST %s without a session" % path, r.status,
                                r.headers, r.body, 401)
    check("nothing started by the refused POSTs",
          (s.get("/api/v1/job").json() or {}).get("state") == "idle" and
          (s.get("/api/v1/launch").json() or {}).get("state") == "idle")


def test_error_answers(s):
    """Our JSON and security headers on every status the server sends itself, from raw
    sockets (http.client would fix some of these requests)."""
    host = s.host().encode()
    tok = s.token.encode()
    get = b"GET %s HTTP/1.1\r\nHost: " + host + b"\r\nX-Peerscope-Token: " + tok + b"\r\n"
    cases = [
        ("two Host headers", b"GET /api/v1/job HTTP/1.1\r\nHost: " + host + b"\r\nHost: "
         b"evil.example\r\nX-Peerscope-Token: " + tok + b"\r\n\r\n", 400),
        ("two Host headers, the foreign one first", b"GET /api/v1/job HTTP/1.1\r\nHost: "
         b"evil.example\r\nHost: " + host + b"\r\nX-Peerscope-Token: " + tok + b"\r\n\r\n", 400),
        ("two token headers", get % b"/api/v1/job" + b"X-Peerscope-Token: x\r\n\r\n", 400),
        ("two Cookie headers", get % b"/api/v1/job" + b"Cookie: a=b\r\nCookie: c=d\r\n\r\n",
         400),
        ("two Origin headers", b"POST /api/v1/stop HTTP/1.1\r\nHost: " + host +
         b"\r\nX-Peerscope-Token: " + tok + b"\r\nOrigin: http://" + host +
         b"\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n", 400),
        ("unknown route", get % b"/api/v1/nothing" + b"\r\n", 404),
        ("unknown page", get % b"/nothing.html" + b"\r\n", 404),
        ("DELETE", (get % b"/api/v1/job").replace(b"GET", b"DELETE", 1) + b"\r\n", 405),
        ("announced body over 16 MiB", b"POST /api/v1/topology HTTP/1.1\r\nHost: " + host +
         b"\r\nX-Peerscope-Token: " + tok + b"\r\nContent-Length: 40000000\r\n\r\n", 413),
        ("path over 2 KiB", get % (b"/" + b"a" * 3000) + b"\r\n", 414),
        ("headers over 16 KiB", get % b"/api/v1/job" + b"X-Filler: " + b"a" * 20000 +
         b"\r\n\r\n", 431),
    ]
    for name, data, want in cases:
        status, headers, body = raw(s, data)
        json_error_with_headers(name, status, headers, body, want)
        still_healthy(name, s)
    # An announced body that is too large is refused before it is read: the answer comes
    # although the body never does, and the connection closes.
    status, headers, _ = raw(s, b"POST /api/v1/plan HTTP/1.1\r\nHost: " + host +
                             b"\r\nX-Peerscope-Token: " + tok +
                             b"\r\nContent-Length: 99999999999\r\n\r\n")
    check("a huge Content-Length: 413 at once, connection closed", status == 413 and
          headers.get("connection") == "close", (status, headers))


def open_stream(s, cookie):
    """An event stream on a raw socket: (socket, status line)."""
    c = s.connect(10)
    c.sendall(b"GET /api/v1/launch/log HTTP/1.1\r\nHost: " + s.host().encode() +
              b"\r\nCookie: " + cookie.encode() + b"\r\nAccept: text/event-stream\r\n\r\n")
    first = c.recv(65536).decode(errors="replace")
    return c, first.split("\r\n", 1)[0]


def test_limits():
    """--max-streams, --max-per-client, --idle-timeout: what one local process can hold."""
    s = Server(["--fixture", EXAMPLE, "--no-verify", "--max-streams", "2",
                "--max-per-client", "6"])
    check("limits server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    _, cookie = s.login()
    held = [open_stream(s, cookie) for _ in range(2)]
    check("two event streams open", all(" 200 " in line for _, line in held),
          [line for _, line in held])
    status, headers, body = raw(s, b"GET /api/v1/launch/log HTTP/1.1\r\nHost: " +
                                s.host().encode() + b"\r\nCookie: " + cookie.encode() + b"\r\n\r\n")
    json_error_with_headers("a third event stream (--max-streams 2)", status, headers, body, 503)
    still_healthy("with the streams held", s)
    # Six connections from 127.0.0.1 in all, two of them the streams: of ten more, made
    # at once and all kept open, at most four are answered (fewer while the server still
    # closes the connections of the checks above; on a loaded machine none yet: then the
    # round is tried again after a pause, up to three times), the rest closed unanswered.
    for _ in range(3):
        more = [s.connect(10) for _ in range(10)]
        answered = 0
        for c in more:
            try:
                c.sendall(b"GET /api/v1/job HTTP/1.1\r\nHost: " + s.host().encode() +
                          b"\r\nCookie: " + cookie.encode() + b"\r\n\r\n")
                answered += c.recv(100).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        for c in more:
            c.close()
        if answered:
            break
        time.sleep(1.0)
    check("--max-per-client 6: 1 to 4 of 10 more connections answered", 1 <= answered <= 4,
          answered)
    time.sleep(0.3)
    still_healthy("the connections closed", s)
    for c, _ in held:
        c.close()
    code, _ = s.stop()
    check("limits server: SIGTERM exit 0", code == 0, s.output())

    s = Server(["--fixture", EXAMPLE, "--no-verify", "--idle-timeout", "1"])
    check("idle server: up", s.up, s.output())
    if not s.up:
        s.stop()
        return
    for name, data in (("an idle connection", b""),
                       ("half a request (slowloris)", b"GET /api/v1/job HTTP/1.1\r\nHost: ")):
        c = s.connect(10)
        c.sendall(data)
        t0 = time.monotonic()
        try:
            got = c.recv(100)
        except OSError:
            got = b""
        took = time.monotonic() - t0
        c.close()
        check("--idle-timeout 1: %s is closed in seconds" % name, got == b"" and took < 8,
              (got, round(took, 2)))
    still_healthy("after the idle timeouts", s)
    s.stop()


def test_unix_socket():
    """--listen unix:PATH: a socket of mode 0600, the same session rules, removed at exit."""
    path = os.path.join(tempfile.mkdtemp(dir=TMP), "web.sock")
    s = Server(["--listen", "unix:" + path, "--fixture", EXAMPLE, "--no-verify"])
    check("unix: up", s.up, s.output())
    if s.up:
        st = os.stat(path)
        check("unix: mode 0600, ours", (st.st_mode & 0o777) == 0o600 and st.st_uid == os.getuid(),
              oct(st.st_mode))
        check("unix: URL with the token", any("unix:" + path in x and "?token=" in x
                                              for x in s.out), s.output())
        is_error("unix: without the token", s.get("/api/v1/job", token=False), 401)
        check("unix: with the token", s.get("/api/v1/job").status == 200)
        r, cookie = s.login()
        check("unix: the cookie", r.status == 303 and cookie and
              s.get("/api/v1/job", token=False, cookie=cookie).status == 200, r)
    code, _ = s.stop()
    check("unix: SIGTERM exit 0, the socket removed", code == 0 and not os.path.exists(path),
          s.output())
    with open(path, "w") as f:
        f.write("not a socket")
    p = clitest.run(["web", "--listen", "unix:" + path, "--fixture", EXAMPLE], timeout=20)
    check("unix: a file in the way: exit 2, one line, the file kept",
          p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and path in p.stderr and
          os.path.exists(path), (p.returncode, p.stderr))


def main():
    t_start = time.monotonic()
    s = Server(["--fixture", EXAMPLE, "--vllm", FAKE_VLLM])
    check("server up", s.up, s.output())
    if not s.up:
        s.stop()
        return clitest.finish()
    test_page_and_assets(s)
    test_session(s)
    test_error_answers(s)
    test_read_routes(s)
    own_report = s.get("/api/v1/topology").body
    test_plan(s)
    test_verify_and_bench(s)  # leaves a bench running: the rest runs meanwhile
    bad_inputs(s)
    test_launch(s)
    test_bench_results(s)
    test_uploads(s, own_report)
    code, took = s.stop()
    check("SIGTERM: exit 0 in < 2 s", code == 0 and took < 2, (code, round(took, 2)))
    check("SIGTERM: said stopped", s.out[-1:] == ["peerscope web: stopped"], s.output())
    check("SIGTERM: nothing on stderr", not s.err, s.output())
    check_none_left("main server")
    test_crash()
    test_not_loopback()
    test_command_lines()
    test_sigterm_with_streams()
    test_sigterm_during_bench()
    test_launch_failures()
    test_token_in_page()
    test_limits()
    test_unix_socket()
    print("took %.1f s" % (time.monotonic() - t_start))
    return clitest.finish()


if __name__ == "__main__":
    sys.exit(main())
