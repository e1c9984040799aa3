-- wrk script of bench/waiting_room.py (bench/wrk.py get_for runs it):
--   wrk -t N -c C -d Ss -s bench/poll.lua URL -- DIR USER_AGENT
-- Thread k cycles through DIR/requests-k.txt (path, session cookie, If-None-Match value,
-- tab-separated; "-" for none) for as long as wrk runs, GETting each in turn, and counts
-- the answers' status codes. done() prints "BENCH key value" lines as rush.lua does.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests, index = {}, 0

function init(args)
  local dir, user_agent = args[1], args[2]
  for line in io.lines(dir .. "/requests-" .. id .. ".txt") do
    local path, cookie, etag = line:match("^(%S+)\t(%S+)\t(%S+)$")
    local headers = {["Host"] = "127.0.0.1", ["User-Agent"] = user_agent}
    if cookie ~= "-" then headers["Cookie"] = "session=" .. cookie end
    if etag ~= "-" then headers["If-None-Match"] = '"' .. etag .. '"' end
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  bench_counts, bench_received = {}, 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  bench_counts[status] = (bench_counts[status] or 0) + 1
  bench_received = bench_received + 1
end

function done(summary, latency, requests)
  local counts, received = {}, 0
  for _, thread in ipairs(threads) do
    received = received + thread:get("bench_received")
    for code, n in pairs(thread:get("bench_counts")) do
      counts[code] = (counts[code] or 0) + n
    end
  end
  local codes = {}
  for code, n in pairs(counts) do codes[#codes + 1] = code .. "=" .. n end
  table.sort(codes)
  local e = summary.errors
  io.write(string.format("BENCH threads %d finished %d\n", #threads, #threads))
  io.write(string.format("BENCH sent %d received %d lost %d\n", summary.requests, received, 0))
  io.write(string.format("BENCH statuses %s\n", table.concat(codes, ",")))
  io.write(string.format("BENCH elapsed_us %d\n", summary.duration))
  io.write(string.format("BENCH wrk_p50_us %d\n", latency:percentile(50)))
  io.write(string.format("BENCH wrk_p99_us %d\n", latency:percentile(99)))
  io.write(string.format("BENCH max_us %d\n", latency.max))
  io.write(string.format("BENCH errors connect=%d,read=%d,write=%d,timeout=%d\n",
                         e.connect, e.read, e.write, e.timeout))
end
