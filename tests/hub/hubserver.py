"""A small stand-in for the Hugging Face Hub, for the tests: 127.0.0.1 only, one thread per
request, bounded (every answer is small; slow answers sleep a few seconds at most).

It serves GET /{org}/{name}/resolve/{revision}/{file} as the Hub does: X-Repo-Commit on every
answer, ETag (the git blob sha1 of the bytes), X-Error-Code on 401/404, Range on
.safetensors files. Each repository's behaviour comes from its name (see REPOS). It counts
requests and the bytes it sent per file, so a test can prove that only config, index and
safetensors-header bytes ever left it (`weight_bytes_served` stays 0)."""
import hashlib
import http.server
import json
import struct
import threading
import time
import urllib.parse

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def safetensors_file(tensors):
    """A real safetensors file: {name: (dtype, shape)} with zero data."""
    sizes = {"BF16": 2, "F32": 4, "F16": 2}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"\0" * offset, 8 + len(text)


class Repo:
    def __init__(self, files, commit=COMMIT_A, refs=("main",), mode="ok"):
        self.files, self.commit, self.refs, self.mode = files, commit, refs, mode


class Hub:
    """The server and what it saw. REPOS maps "org/name" to a Repo."""

    def __init__(self, repos, token="hf_good_token"):
        self.repos, self.token = repos, token
        self.lock = threading.Lock()
        self.requests = []  # (path, range header)
        self.sent = {}  # file -> bytes of body sent
        self.weight_bytes_served = 0  # body bytes past a safetensors header
        self.hits = {}  # repo -> requests
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.requests, self.sent, self.hits = [], {}, {}
            self.weight_bytes_served = 0

    def count(self, repo):
        with self.lock:
            return self.hits.get(repo, 0)

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                hub._answer(self)

        return Handler

    def _answer(self, h):
        parts = urllib.parse.unquote(h.path).split("/")
        # /org/name/resolve/<revision...>/<file>
        if len(parts) < 6 or parts[3] != "resolve":
            return self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"})
        repo_id, rev, file = parts[1] + "/" + parts[2], "/".join(parts[4:-1]), parts[-1]
        with self.lock:
            self.requests.append((h.path, h.headers.get("Range")))
            self.hits[repo_id] = self.hits.get(repo_id, 0) + 1
            hits = self.hits[repo_id]
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._send(h, 401, b"", {"X-Error-Code": "RepoNotFound"})
        headers = {"X-Repo-Commit": repo.commit} if repo.mode != "nocommit" else {}
        if repo.mode == "gated" and h.headers.get("Authorization") != "Bearer " + self.token:
            return self._send(h, 401, b"", dict(headers, **{"X-Error-Code": "GatedRepo"}))
        if repo.mode == "ratelimited" or (repo.mode == "flaky" and hits == 1):
            return self._send(h, 429, b"", {"Retry-After": "0"})
        if repo.mode == "slow":
            time.sleep(3)
        if rev not in repo.refs and rev != repo.commit:
            return self._send(h, 404, b"", {"X-Error-Code": "RevisionNotFound"})
        if file not in repo.files:
            return self._send(h, 404, b"", dict(headers, **{"X-Error-Code": "EntryNotFound"}))
        data = repo.files[file]
        headers["ETag"] = '"%s"' % git_blob_sha1(data)
        if repo.mode == "huge" and file == "config.json":
            return self._send(h, 200, data * 1, headers, claim=9 << 20)
        rng = h.headers.get("Range")
        if rng and file.endswith(".safetensors") and repo.mode != "norange":
            first, last = (int(x) for x in rng.split("=")[1].split("-"))
            body = data[first : last + 1]
            if repo.mode == "wronglength":
                body = data[first : last + 9]
            headers["Content-Range"] = "bytes %d-%d/%d" % (first, first + len(body) - 1, len(data))
            return self._send(h, 206, body, headers, file=file, at=first, full=data)
        return self._send(h, 200, data, headers, file=file, at=0, full=data)

    def _send(self, h, status, body, headers, file=None, at=0, full=None, claim=None):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(claim if claim else len(body)))
        h.end_headers()
        sent = 0
        try:
            for i in range(0, len(body), 65536):
                h.wfile.write(body[i : i + 65536])
                sent += len(body[i : i + 65536])
            if claim:
                for _ in range((claim - len(body)) // 65536):
                    h.wfile.write(b" " * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if file:
            with self.lock:
                self.sent[file] = self.sent.get(file, 0) + sent
                if file.endswith(".safetensors") and full is not None:
                    header_end = 8 + struct.unpack("<Q", full[:8])[0]
                    self.weight_bytes_served += max(0, at + sent - max(at, header_end))
