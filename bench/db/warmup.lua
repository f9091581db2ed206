-- Warm-up: round-robin over GET /db and GET /fortunes, with TFB's Accept headers.
local reqs = {}
local i = 0

function init(args)
  reqs[1] = wrk.format("GET", "/db", {["Accept"] =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"})
  reqs[2] = wrk.format("GET", "/fortunes", {["Accept"] =
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
