-- wrk script for CreatorFlow's ingest benchmark (bench/ingest.py): posts pre-signed webhook
-- bodies, each request a different order, and counts what the answers say.
--
-- Environment (read by every wrk thread): CF_REQUESTS a file of "signature body" lines,
-- CF_PATH the route, CF_THREADS the -t value, CF_RATE the total requests/s to pace at (0 or
-- unset: closed loop, each connection sends its next request when the last is answered).
-- Thread n sends lines n, n + threads, ...; a thread that runs out starts again (the
-- duplicates are counted, and answered "duplicate" by CreatorFlow).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cf_timespec;
int clock_gettime(int clk_id, cf_timespec *tp);
]]
local clock = ffi.new("cf_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local RATE = tonumber(os.getenv("CF_RATE") or "0") or 0
local THREADS = tonumber(os.getenv("CF_THREADS") or "1")
local COUNTERS = { "processed", "queued", "duplicate", "failed", "other_ok", "non_2xx", "wrapped" }

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  local path = os.getenv("CF_PATH")
  local line_number = 0
  for line in io.lines(os.getenv("CF_REQUESTS")) do
    if line_number % THREADS == id then
      local signature, body = line:match("^(%S+) (.*)$")
      requests[#requests + 1] = wrk.format("POST", path,
        { ["Content-Type"] = "application/json", ["Authorization"] = signature }, body)
    end
    line_number = line_number + 1
  end
  index = 0
  for _, name in ipairs(COUNTERS) do _G[name] = 0 end
  interval = RATE > 0 and (1000 * THREADS / RATE) or 0
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end

if RATE > 0 then
  -- Paced: this thread's requests leave on a fixed schedule (rate / threads per second) whenever
  -- a connection is free; wrk's latency counts from the send, so a slow server also shows in
  -- the achieved rate.
  function delay()
    local now = now_ms()
    next_at = (next_at or now) + interval
    local wait = next_at - now
    if wait < 0 then return 0 end
    return wait
  end
end

function response(status, headers, body)
  if status ~= 200 then
    non_2xx = non_2xx + 1
  elseif body:find('"processed"', 1, true) then
    processed = processed + 1
  elseif body:find('"queued"', 1, true) then
    queued = queued + 1
  elseif body:find('"duplicate"', 1, true) then
    duplicate = duplicate + 1
  elseif body:find('"failed"', 1, true) then
    failed = failed + 1
  else
    other_ok = other_ok + 1
  end
end

function done(summary, latency, requests_stats)
  local totals = {}
  for _, name in ipairs(COUNTERS) do totals[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(COUNTERS) do totals[name] = totals[name] + (thread:get(name) or 0) end
  end
  local errors = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_s":%.3f', summary.duration / 1e6),
    string.format('"errors":%d', errors.connect + errors.read + errors.write + errors.timeout),
    string.format('"timeouts":%d', errors.timeout),
    string.format('"mean_ms":%.3f', latency.mean / 1000),
    string.format('"p50_ms":%.3f', latency:percentile(50) / 1000),
    string.format('"p90_ms":%.3f', latency:percentile(90) / 1000),
    string.format('"p99_ms":%.3f', latency:percentile(99) / 1000),
    string.format('"max_ms":%.3f', latency.max / 1000),
  }
  for _, name in ipairs(COUNTERS) do parts[#parts + 1] = string.format('"%s":%d', name, totals[name]) end
  io.write("CFJSON {" .. table.concat(parts, ",") .. "}\n")
end
