-- wrk script of bench/http_rush.py (bench/wrk.py runs it):
--   wrk -t N -c N -s bench/rush.lua URL -- DIR USER_AGENT
-- Thread k sends every request of DIR/requests-k.txt (path, session cookie and form body,
-- tab-separated) exactly once on its one connection, times each one with a monotonic clock,
-- writes DIR/done-k after its last answer and stops. done() prints "BENCH key value" lines.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: one clock for every thread
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local DIR, USER_AGENT -- set by init() from the arguments after "--"

-- main state: every thread, for done()
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread state; the bench_* globals are what done() reads through thread:get()
local requests, total, sent = {}, 0, 0
local awaiting, probing, started, probe = false, false, 0, nil
local running = false -- wrk calls request() once before the run, to check its format

function init(args)
  DIR, USER_AGENT = args[1], args[2]
  for line in io.lines(DIR .. "/requests-" .. id .. ".txt") do
    local path, cookie, body = line:match("^(%S+)\t(%S+)\t(%S+)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Host"] = "127.0.0.1",
      ["Cookie"] = "session=" .. cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["User-Agent"] = USER_AGENT,
    }, body)
  end
  probe = wrk.format("GET", "/healthz", {["Host"] = "127.0.0.1"})
  total = #requests
  bench_counts, bench_latencies = {}, {}
  bench_sent, bench_received, bench_lost, bench_finished = 0, 0, 0, false
end

local function finish()
  bench_finished = true
  local marker = io.open(DIR .. "/done-" .. id, "w")
  marker:write("done")
  marker:close()
  wrk.thread:stop()
end

function delay()
  -- before each request: go at once while this thread has users left, else park
  running = true
  if sent < total then return 0 end
  return 3600000
end

function request()
  if not running then return probe end
  if awaiting then
    bench_lost = bench_lost + 1 -- the connection dropped before this request was answered
  end
  awaiting = true
  started = now_us()
  if sent >= total then
    probing = true -- nothing left to send: a GET whose answer just ends the thread
    return probe
  end
  probing = false
  sent = sent + 1
  bench_sent = sent
  if bench_first == nil then bench_first = started end
  return requests[sent]
end

function response(status, headers, body)
  local t = now_us()
  awaiting = false
  if not probing then
    bench_latencies[#bench_latencies + 1] = math.floor(t - started + 0.5)
    bench_counts[status] = (bench_counts[status] or 0) + 1
    bench_received = bench_received + 1
    bench_last = t
  end
  if bench_received + bench_lost >= total then finish() end
end

function done(summary, latency, requests)
  local counts, all, first, last = {}, {}, nil, nil
  local sent, received, lost, finished = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("bench_sent")
    received = received + thread:get("bench_received")
    lost = lost + thread:get("bench_lost")
    if thread:get("bench_finished") then finished = finished + 1 end
    for code, n in pairs(thread:get("bench_counts")) do
      counts[code] = (counts[code] or 0) + n
    end
    for _, value in ipairs(thread:get("bench_latencies")) do all[#all + 1] = value end
    local f, l = thread:get("bench_first"), thread:get("bench_last")
    if f and (first == nil or f < first) then first = f end
    if l and (last == nil or l > last) then last = l end
  end
  table.sort(all)
  local function exact(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(p / 100 * #all))]
  end
  local codes = {}
  for code, n in pairs(counts) do codes[#codes + 1] = code .. "=" .. n end
  table.sort(codes)
  local e = summary.errors
  io.write(string.format("BENCH threads %d finished %d\n", #threads, finished))
  io.write(string.format("BENCH sent %d received %d lost %d\n", sent, received, lost))
  io.write(string.format("BENCH statuses %s\n", table.concat(codes, ",")))
  local elapsed = (first and last) and math.floor(last - first) or 0
  io.write(string.format("BENCH elapsed_us %d\n", elapsed))
  io.write(string.format("BENCH wrk_p50_us %d\n", latency:percentile(50)))
  io.write(string.format("BENCH wrk_p99_us %d\n", latency:percentile(99)))
  io.write(string.format("BENCH exact_p50_us %d\n", exact(50)))
  io.write(string.format("BENCH exact_p99_us %d\n", exact(99)))
  io.write(string.format("BENCH max_us %d\n", #all > 0 and all[#all] or 0))
  io.write(string.format("BENCH errors connect=%d,read=%d,write=%d,timeout=%d\n",
                         e.connect, e.read, e.write, e.timeout))
end
