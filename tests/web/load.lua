-- wrk script for tests/web/load.sh: rotates over the dashboard's read-only routes (each
-- connection starts at a different one) and prints one machine-readable summary line.
local paths = {"/api/v1/topology", "/api/v1/job", "/api/v1/launch", "/"}
local counter = 0
local token = os.getenv("PS_LOAD_TOKEN") or ""

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end

local i = 0
function request()
  i = i + 1
  local path = paths[((i + (offset or 0)) % #paths) + 1]
  return wrk.format("GET", path, {["Host"] = wrk.host .. ":" .. wrk.port,
                                  ["X-Peerscope-Token"] = token})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD requests=%d duration_s=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
