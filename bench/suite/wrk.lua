-- wrk script of the rsgate benchmark suite: method, path and body from the environment (SUITE_METHOD,
-- SUITE_PATH, SUITE_BODY = a file), and one machine-readable line at the end with percentiles from wrk's
-- histogram (wrk's own --latency table stops at p99).
local method = os.getenv("SUITE_METHOD") or "GET"
local path = os.getenv("SUITE_PATH") or "/"
local bodyfile = os.getenv("SUITE_BODY")
local body = nil
if bodyfile and bodyfile ~= "" then
  local f = assert(io.open(bodyfile, "rb"))
  body = f:read("*a")
  f:close()
end
wrk.method = method
wrk.path = path
if body then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  local pct = {50, 75, 90, 95, 99, 99.5, 99.9, 99.99}
  local curve = {}
  for _, p in ipairs(pct) do
    curve[#curve + 1] = string.format("%g:%.1f", p, latency:percentile(p))
  end
  io.write(string.format(
    "SUITE_SUMMARY requests=%d duration_us=%d bytes=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%d errors=%d curve=%s\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status + e.connect + e.read + e.write + e.timeout, table.concat(curve, ",")))
end
