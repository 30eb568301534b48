-- wrk script of the gateway benchmarks (benchmarks/http_load.py runs it).
--
--   wrk -t2 -c32 -d10s --latency -s benchmarks/wrk_query.lua URL -- METHOD BODY MODE [TOKEN [RUN]]
--
-- METHOD  GET or POST.
-- BODY    the JSON request body ("" for none). "__N__" in it is replaced by a literal:
--         0 in MODE "fixed" (every request identical: warm plan cache), a fresh
--         negative number per request in MODE "vary" (every SQL text new: cold plans).
-- TOKEN   an access token, sent as "Authorization: Bearer TOKEN" (optional, "" for none).
-- RUN     a number unique to this wrk run (default 0), so that MODE "vary" never repeats
--         a literal of an earlier run against the same server: -((RUN * 100 + thread) *
--         1e7 + request number).
--
-- done() prints one line "BENCH_JSON {...}" with exact counts and latency percentiles
-- (microseconds), which the harness parses instead of wrk's rounded text report.

local method, template, mode, token, run_id
local fixed_request
local counter = 0
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

function init(args)
  method = args[1] or "GET"
  template = args[2] or ""
  mode = args[3] or "fixed"
  token = args[4]
  run_id = tonumber(args[5] or "0") or 0
  wrk.method = method
  if template ~= "" then
    wrk.headers["Content-Type"] = "application/json"
  end
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  if mode == "fixed" then
    local body = nil
    if template ~= "" then
      body = (template:gsub("__N__", "0"))
    end
    fixed_request = wrk.format(method, nil, nil, body)
  end
end

function request()
  if fixed_request then
    return fixed_request
  end
  counter = counter + 1
  -- Unique across runs and threads (exact in a double up to RUN ~ 9e6).
  local n = string.format("%.0f", -((run_id * 100 + (thread_id or 1)) * 10000000 + counter))
  return wrk.format(method, nil, nil, (template:gsub("__N__", n)))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f,' ..
    '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,' ..
    '"status_errors":%.0f,"timeouts":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
