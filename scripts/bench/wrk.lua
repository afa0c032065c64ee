-- wrk script for the iot-api benchmark. Configured through the environment:
--   BENCH_TOKEN   bearer token
--   BENCH_MODE    get (default): GET a random line of BENCH_PATHS
--                 single: POST {"value": x} to a random line of BENCH_PATHS (device readings URL)
--                 bulk: POST /api/readings with 10,000 readings of the devices in BENCH_DEVICES,
--                       at instants going back from BENCH_BULK_BASE (epoch seconds), never repeated
--   BENCH_PATHS   file with one request path per line
--   BENCH_DEVICES file with one device id per line (bulk)
-- At the end prints one parseable line:
--   BENCH_RESULT requests=… duration_s=… rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… errors=… non2xx=…

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local mode, token, paths, devices, headers
local k = 0
local bulk_base, per_request, instants

function init(args)
  mode = os.getenv("BENCH_MODE") or "get"
  token = os.getenv("BENCH_TOKEN")
  headers = { ["Authorization"] = "Bearer " .. token }
  math.randomseed(os.time() + (tid or 0) * 7919)
  paths = {}
  local pf = os.getenv("BENCH_PATHS")
  if pf then
    for line in io.lines(pf) do
      if #line > 0 then paths[#paths + 1] = line end
    end
  end
  if mode == "single" or mode == "bulk" then
    headers["Content-Type"] = "application/json"
  end
  if mode == "bulk" then
    devices = {}
    for line in io.lines(os.getenv("BENCH_DEVICES")) do
      if #line > 0 then devices[#devices + 1] = '{"device_id":"' .. line .. '","timestamp":"' end
    end
    bulk_base = tonumber(os.getenv("BENCH_BULK_BASE"))
    per_request = tonumber(os.getenv("BENCH_BULK_SIZE") or "10000")
    instants = math.ceil(per_request / #devices)
  end
end

local function bulk_body()
  -- Request k of thread tid: `instants` distinct seconds, none shared with another request.
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local first = (k * nthreads + tid) * instants
  k = k + 1
  local parts, n = {}, 0
  parts[1] = '{"readings":['
  local i = 2
  for j = 0, instants - 1 do
    local ts = os.date("!%Y-%m-%dT%H:%M:%SZ", bulk_base - first - j)
    for d = 1, #devices do
      if n >= per_request then break end
      if n > 0 then parts[i] = ","; i = i + 1 end
      parts[i] = devices[d]; parts[i + 1] = ts
      parts[i + 2] = '","value":' .. (20 + (d % 7)) .. '}'
      i = i + 3
      n = n + 1
    end
  end
  parts[i] = "]}"
  return table.concat(parts)
end

function request()
  if mode == "bulk" then
    return wrk.format("POST", "/api/readings", headers, bulk_body())
  end
  local path = paths[math.random(#paths)]
  if mode == "single" then
    return wrk.format("POST", path, headers, '{"value":' .. (20 + math.random() * 5) .. '}')
  end
  return wrk.format("GET", path, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
