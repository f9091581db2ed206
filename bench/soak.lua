-- wrk script for bench/soak.py: GET the paths given after `--` in turn (round robin), and count
-- the answers by status class. Each wrk thread has its own Lua state: setup() keeps every
-- thread, and done() adds up their counters with thread:get().
-- Usage: wrk -t2 -c64 -d60s --latency -s soak.lua http://127.0.0.1:8000 -- / /api/notes ...
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  for _, path in ipairs(args) do
    requests[#requests + 1] = wrk.format("GET", path)
  end
  if #requests == 0 then
    requests[1] = wrk.format("GET", "/")
  end
  -- Globals, so that thread:get() can read them from done().
  s1xx, s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0, 0
  i = 0
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function response(status, headers, body)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  elseif status >= 200 then
    s2xx = s2xx + 1
  else
    s1xx = s1xx + 1
  end
end

function done(summary, latency, requests)
  local total = { s1xx = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do
      total[name] = total[name] + (thread:get(name) or 0)
    end
  end
  io.write(string.format("status: 2xx=%d 3xx=%d 4xx=%d 5xx=%d other=%d\n",
    total.s2xx, total.s3xx, total.s4xx, total.s5xx, total.s1xx))
end
