-- wrk script for tests/bench/web_load.py: one request over and over, from the environment
-- (PS_WRK_METHOD, PS_WRK_PATH, PS_WRK_BODY, PS_WRK_TOKEN), and one machine-readable line.
local method = os.getenv("PS_WRK_METHOD") or "GET"
local path = os.getenv("PS_WRK_PATH") or "/api/v1/topology"
local body = os.getenv("PS_WRK_BODY")
local token = os.getenv("PS_WRK_TOKEN") or ""
if body == "" then body = nil end

function request()
  local headers = {["Host"] = wrk.host .. ":" .. wrk.port, ["X-Peerscope-Token"] = token}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
