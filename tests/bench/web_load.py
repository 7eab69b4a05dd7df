#!/usr/bin/env python3
"""The dashboard under hostile local load (issue 18), run by hand; timings live here, not in
ctest. Starts `peerscope web` on the example fixture (no verification: nothing but the server
is measured) and reports, each as one line:

  held     another process holds IDLE plain connections (reopened when the server drops them)
           and tries to hold STREAMS event streams; meanwhile GET / and POST /api/v1/plan on
           fresh connections: median, p95 and max latency, failures (no answer in 10 s)
  upload   a ~1 MB `nvidia-smi topo -m` text of GPUS GPUs is being uploaded and processed;
           meanwhile GET /api/v1/topology every 20 ms: median, p95, max
  wrk      wrk -t2 -c50 -d10s on GET /api/v1/topology, then on POST /api/v1/plan: requests/s,
           p50, p99, non-2xx answers and socket errors

usage: tests/bench/web_load.py [--cli build/bin/peerscope] [--idle 1000] [--streams 500]
                               [--gpus 450] [--seconds 10] [--only held,upload,wrk]

Works against an older server too (token from the page's meta tag, or from the start-up URL).
The targets of issue 18: held < 100 ms, upload < 50 ms, wrk p99 < 20 ms (topology) and
< 30 ms (plan) with 0 errors."""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SOURCE, "tests", "fixtures", "example-4x-a100.topo")
MODEL = os.path.join(SOURCE, "tests", "fixtures", "models", "Llama-3.1-70B-Instruct")
WRK_LUA = os.path.join(SOURCE, "tests", "bench", "web_wrk.lua")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, cli, extra):
        self.port = free_port()
        env = dict(os.environ)
        env["PEERSCOPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="peerscope-load-")
        self.proc = subprocess.Popen(
            [cli, "web", "--port", str(self.port), "--fixture", EXAMPLE, "--no-verify",
             "--vllm", os.path.join(SOURCE, "tests", "fake", "vllm")] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.token = ""
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            m = re.search(r"[?&]token=([0-9A-Za-z_-]+)", line)
            if m:
                self.token = m.group(1)
            if line.startswith("peerscope web: http://") or time.monotonic() > deadline:
                break
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        if not self.token:  # an older server: the token is in the page (loopback)
            body = self.request("GET", "/")[2]
            m = re.search(r'name="peerscope-token" content="([^"]*)"', body)
            self.token = m.group(1) if m else ""

    def headers(self):
        return {"Host": "127.0.0.1:%d" % self.port, "X-Peerscope-Token": self.token,
                "Content-Type": "application/json"}

    def request(self, method, path, body=None, timeout=10):
        """(status or None, seconds, body) on a fresh connection."""
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            c.request(method, path, body=body, headers=self.headers() if self.token else
                      {"Host": "127.0.0.1:%d" % self.port})
            r = c.getresponse()
            text = r.read().decode(errors="replace")
            c.close()
            return r.status, time.monotonic() - t0, text
        except (OSError, http.client.HTTPException):
            return None, time.monotonic() - t0, ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def summary(name, samples):
    ok = [t * 1000 for s, t, _ in samples if s is not None and s < 500]
    failed = len(samples) - len(ok)
    if not ok:
        return "%s: all %d failed" % (name, failed)
    ok.sort()
    p95 = ok[min(len(ok) - 1, int(len(ok) * 0.95))]
    return "%s: median %.1f ms, p95 %.1f ms, max %.1f ms, %d failed of %d" % (
        name, statistics.median(ok), p95, ok[-1], failed, len(samples))


def hold(port, token, idle, streams, seconds):
    """The hostile process: holds `idle` plain connections and `streams` event streams,
    reopening what the server closes; prints how many it holds."""
    raise_fd_limit()
    sel = selectors.DefaultSelector()
    stream_req = ("GET /api/v1/launch/log HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  "X-Peerscope-Token: %s\r\nAccept: text/event-stream\r\n\r\n" % (port, token))

    def open_one(kind):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE if kind == "stream" else selectors.EVENT_READ,
                     {"kind": kind, "sent": False, "status": None})

    for _ in range(idle):
        open_one("idle")
    for _ in range(streams):
        open_one("stream")
    end = time.monotonic() + seconds
    reopened = 0
    last = 0
    while time.monotonic() < end:
        for key, ev in sel.select(timeout=0.2):
            s, d = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE and not d["sent"]:
                try:
                    s.send(stream_req.encode())
                except OSError:
                    pass
                d["sent"] = True
                sel.modify(s, selectors.EVENT_READ, d)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data and d["status"] is None:
                d["status"] = data[9:12]
            if not data:
                sel.unregister(s)
                s.close()
                reopened += 1
                open_one(d["kind"])
        if time.monotonic() - last > 1:
            last = time.monotonic()
            keys = sel.get_map().values()
            held = sum(1 for k in keys if k.data["kind"] == "stream" and k.data["status"] == b"200")
            print("HOLD idle=%d streams_200=%d reopened=%d" % (
                sum(1 for k in keys if k.data["kind"] == "idle"), held, reopened), flush=True)


def held_test(srv, args):
    holder = subprocess.Popen([sys.executable, __file__, "--hold", str(srv.port), srv.token,
                               str(args.idle), str(args.streams), str(args.seconds + 8)],
                              stdout=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(x.strip()) for x in holder.stdout],
                     daemon=True).start()
    time.sleep(4)  # every connection opened, the streams answered
    plan = json.dumps({"model_dir": MODEL})
    page, plans = [], []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        page.append(srv.request("GET", "/"))
        plans.append(srv.request("POST", "/api/v1/plan", plan))
        time.sleep(0.1)
    holder.wait()
    print("held: %s" % (lines[-1] if lines else "holder said nothing"))
    print("held: " + summary("GET /", page))
    print("held: " + summary("POST /api/v1/plan", plans))


def topo_text(gpus):
    names = ["GPU%d" % i for i in range(gpus)]
    out = ["\t" + "\t".join(names) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID"]
    for i in range(gpus):
        cells = [" X " if i == j else ("NV12" if i // 8 == j // 8 else "SYS") for j in range(gpus)]
        out.append("GPU%d\t%s\t0-63\t0\t\tN/A" % (i, "\t".join(cells)))
    return "\n".join(out) + "\n"


def upload_test(srv, args):
    text = topo_text(args.gpus)
    result = {}

    def upload():
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
        t0 = time.monotonic()
        h = srv.headers()
        h["Content-Type"] = "text/plain"
        c.request("POST", "/api/v1/topology", body=text.encode(), headers=h)
        r = c.getresponse()
        body = r.read()
        result["status"], result["s"], result["bytes"] = r.status, time.monotonic() - t0, len(body)
        result["body"] = body[:200].decode(errors="replace")

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.3)
    reads = []
    while t.is_alive() and len(reads) < 3000:
        reads.append(srv.request("GET", "/api/v1/topology"))
        time.sleep(0.02)
    t.join()
    print("upload: %d bytes, %d GPUs: answered %s in %.1f s (%d bytes) %s" % (
        len(text), args.gpus, result.get("status"), result.get("s", 0), result.get("bytes", 0),
        result.get("body", "") if result.get("status") != 200 else ""))
    print("upload: " + summary("GET /api/v1/topology during the upload", reads))


def wrk(srv, method, path, body, seconds):
    env = dict(os.environ, PS_WRK_METHOD=method, PS_WRK_PATH=path, PS_WRK_BODY=body or "",
               PS_WRK_TOKEN=srv.token)
    out = subprocess.run(["wrk", "-t2", "-c50", "-d%ds" % seconds, "--latency", "-s", WRK_LUA,
                          "http://127.0.0.1:%d" % srv.port], env=env, capture_output=True,
                         text=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("LOAD ")), out[-400:])
    print("wrk: %s %s: %s" % (method, path, line[5:]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--hold":
        port, token, idle, streams, seconds = sys.argv[2:7]
        return hold(int(port), token, int(idle), int(streams), float(seconds))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cli", default=os.path.join(SOURCE, "build", "bin", "peerscope"))
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--gpus", type=int, default=450)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--only", default="held,upload,wrk")
    p.add_argument("server_args", nargs="*", help="more `peerscope web` options")
    args = p.parse_args()
    raise_fd_limit()
    only = args.only.split(",")
    for name, test in (("wrk", None), ("held", held_test), ("upload", upload_test)):
        if name not in only:
            continue
        srv = Server(args.cli, args.server_args)  # a fresh server each: no leftover load
        try:
            if name == "wrk":
                wrk(srv, "GET", "/api/v1/topology", None, args.seconds)
                wrk(srv, "POST", "/api/v1/plan", json.dumps({"model_dir": MODEL}), args.seconds)
            else:
                test(srv, args)
        finally:
            srv.stop()


if __name__ == "__main__":
    sys.exit(main())
