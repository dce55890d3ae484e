-- wrk script for the rsgate HTTP benchmark: POST a fixed JSON body (the file named by $RSGATE_BODY, 1 KiB by
-- default) with Content-Type: application/json, and print one machine-readable summary line at the end with
-- the exact latency percentiles from wrk's histogram (wrk's --latency table has no p99.9).
local path = os.getenv("RSGATE_BODY")
local body
if path then
  local f = assert(io.open(path, "rb"))
  body = f:read("*a")
  f:close()
else
  body = '{"msg":"' .. string.rep("x", 1014) .. '"}'
end

wrk.method = "POST"
wrk.path = os.getenv("RSGATE_PATH") or "/api/echo"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("RSGATE_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth -- peer gateway-jwt
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RSGATE_SUMMARY requests=%d duration_us=%d bytes=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%d mean_us=%.1f err_status=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d body_bytes=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout, #body))
end
